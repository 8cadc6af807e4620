#!/usr/bin/env bash
# The GPU figures of docs/speed.md in one prepared command, sized for under 8 minutes on one GPU (issue #20):
#   bash benchmarks/gpu.sh [DEVICE] [SCALE]      # DEVICE auto|cuda|cuda:<i>|cpu (default auto), SCALE full|tiny
# 1. fast and base training and scoring speed (bench_model.py, batch 16 / 32, UCF-Crime X3D-L maps);
# 2. the fold study in one process (main.py --folds_dir): 5 folds x STUDY_EPOCHS epochs of 1,610 UCF-sized
#    synthetic videos (2 GB of maps, generated here: nothing is downloaded), wall time and per-epoch time,
#    extrapolated to 150 epochs;
# 3. x3d_l extraction in clips/s (bench_extractor.py, random weights, the repo's clip looped; the goal is
#    UCF-Crime's ~173k clips in <= 1 h, i.e. >= 50 clips/s);
# 4. scoring one video (test.py --video, map checkpoint: the detector outside autocast) and a live stream
#    (test.py --stream - on an MPEG-TS of the same clip): seconds, points, and that both give the same scores.
# SCALE tiny is the CPU fallback the tests run: the same three steps on a few videos, clips and iterations.
# A device machine lacks pytorchvideo and av (its README): carry the venv, e.g. `run` with carry [".venv"].
set -euo pipefail
DEVICE=${1:-auto}; SCALE=${2:-full}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/gpu_bench}
if [ "$DEVICE" = auto ]; then
  DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
fi
if [ "$SCALE" = tiny ]; then
  ITERS="--iters 1 --rounds 1 --warmup 0 --epoch_videos 0 --threads 1 --shape 16 8 4 4"; VARIANTS="fast"
  EXTRA="--threads 1"; DIM=16 N_TRAIN=24; N_TEST=8; STUDY_EPOCHS=1; FOLDS=2
  BACKBONE=x3d_xs; CLIPS=2; BATCH=2; STREAM_SECONDS=5
else
  ITERS="--iters 20 --rounds 3"; VARIANTS="fast base"; EXTRA=""; DIM=192 N_TRAIN=1610; N_TEST=290; STUDY_EPOCHS=${STUDY_EPOCHS:-10}; FOLDS=5
  BACKBONE=x3d_l; CLIPS=96; BATCH=16; STREAM_SECONDS=30
fi
mkdir -p "$OUT"
echo "== device $DEVICE, scale $SCALE, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

echo "== 1. model speed (videos/s)"
# shellcheck disable=SC2086
"$PY" benchmarks/bench_model.py --variants $VARIANTS --device "$DEVICE" $ITERS

echo "== 2. fold study in one process"
if [ ! -f "$OUT/folds/fold$((FOLDS - 1))_test.txt" ]; then  # makelist.py --synthetic + StratifiedKFold.py
  "$PY" -c "
from pathlib import Path
import torch
print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'on the CPU')
from scripts.data.folds import make_folds, write_folds
from scripts.data.manifest import read_manifest
from scripts.data.synthetic import make_synthetic
out = Path('$OUT')
make_synthetic(out / 'data', n_train=$N_TRAIN, n_test=$N_TEST, seed=0, feature_dim=$DIM, progress=False)
write_folds(make_folds(read_manifest(out / 'data/train.txt'), $FOLDS), out / 'folds', read_manifest(out / 'data/test.txt'))"
fi
rm -rf "$OUT"/runs
start=$(date +%s.%N)
"$PY" main.py --config configs/fast.json --folds_dir "$OUT/folds" --folds "$FOLDS" --exp_name study \
    --runs_dir "$OUT/runs" --max_epoch "$STUDY_EPOCHS" --device "$DEVICE" --batch_size 16 --no_progress --no_plots
end=$(date +%s.%N)
"$PY" -c "
s = $end - $start
print(f'fold study: {$FOLDS} folds x {$STUDY_EPOCHS} epochs in {s:.1f} s; 150 epochs ~ {s / $STUDY_EPOCHS * 150 / 60:.1f} min')"

echo "== 3. extraction ($BACKBONE, clips/s)"
"$PY" benchmarks/bench_extractor.py --backbone "$BACKBONE" --device "$DEVICE" --clips "$CLIPS" \
    --batch_size "$BATCH" --repeats 1 $EXTRA
echo "== 4. one video and a stream ($BACKBONE, test.py --video / --stream)"
"$PY" - "$OUT" "$BACKBONE" "$DEVICE" "$STREAM_SECONDS" <<'PYEOF'
import dataclasses, json, subprocess, sys, time
from pathlib import Path
import torch
from scripts.evaluation.demo_video import transport_stream
from scripts.model import build_model, config_for_variant
from scripts.models.checkpoint import save_checkpoint
out, backbone, device, seconds = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
shape = {"x3d_xs": [192, 4, 5, 5], "x3d_l": [192, 16, 10, 10]}[backbone]
torch.manual_seed(0)
cfg = config_for_variant("fast", in_channels=192)
ckpt = out / "video_ckpt.pth"
save_checkpoint(ckpt, {"model": build_model(cfg).state_dict(), "model_config": dataclasses.asdict(cfg), "options": {},
                       "feature": {"shape": shape, "sequence": False, "crop_mode": "mean"}, "epoch": 0, "metrics": {}})
ts = transport_stream(out / "street.ts", seconds)
common = ["--checkpoint", str(ckpt), "--backbone", backbone, "--random_weights", "--device", device,
          "--window_clips", "2", "--no_progress"]
start = time.perf_counter()
subprocess.run([sys.executable, "test.py", "--video", str(ts), "--decoder", "av", "--no_overlay",
                "--out_dir", str(out / "video"), *common], check=True, stdout=subprocess.DEVNULL)
video_s = time.perf_counter() - start
start = time.perf_counter()
with open(ts, "rb") as stdin:
    done = subprocess.run([sys.executable, "test.py", "--stream", "-", "--out_dir", str(out / "stream"), *common],
                          stdin=stdin, capture_output=True, text=True, check=True)
stream_s = time.perf_counter() - start
points = [e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "score"]
rows = (out / "video" / "street" / "scores.csv").read_text().splitlines()[2:]
video_scores = [float(r.split(",")[-1]) for r in rows]
diff = max((abs(a - p["score"]) for a, p in zip(video_scores, points)), default=float("nan"))
print(f"--video {video_s:.1f} s, --stream {stream_s:.1f} s for {seconds:g} s of video; {len(points)} stream points, "
      f"{len(video_scores)} video points, max |score difference| {diff:.2e}")
PYEOF
echo "== done"
