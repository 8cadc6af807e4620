#!/usr/bin/env bash
# The 5-fold x 150-epoch study of the fast model on 1,610 UCF-Crime-sized synthetic videos (290 test),
# through the CLI, timed: the figure of docs/speed.md. Not part of `make test`.
#   bash benchmarks/fold_study.sh [JOBS] [EPOCHS] [MODE]  # default: 5 jobs (all folds at once), 150 epochs, study
# MODE study: main.py --folds_dir, all five folds in one process over one feature cache, JOBS worker threads
# (make folds); MODE separate: run_folds.sh, one process per fold, JOBS at a time (one thread each).
# Makes data/synthetic_ucf (2 GB of float32 maps) and data/manifests/synthetic_ucf once; runs go to
# runs/study_fast_s0_fold<k> (removed first), then test.py and aggregate.py; prints the wall time, the peak
# resident set of the largest process (the study's workers share its feature cache's pages, so theirs count
# them again), and the machine's peak memory in use above its level at the start (MemAvailable, sampled
# every second): what the whole study takes.
set -euo pipefail
JOBS=${1:-5}; EPOCHS=${2:-150}; MODE=${3:-study}
PY=${PY:-.venv/bin/python}
DATA=data/synthetic_ucf; LISTS=data/manifests/synthetic_ucf
if [ ! -f "$LISTS/fold4_test.txt" ]; then
  "$PY" makelist.py --synthetic "$DATA" --n_train 1610 --n_test 290 --seed 0 --overwrite
  "$PY" StratifiedKFold.py --rgb_list "$DATA/train.txt" --test_list "$DATA/test.txt" --k 5 --out_dir "$LISTS" \
      --seed 0 --overwrite
fi
rm -rf runs/study_fast_s0_fold*  # a timing starts from scratch (tested runs are skipped)
peak=$(mktemp); machine=$(mktemp)
available() { awk '/MemAvailable/ {print $2}' /proc/meminfo; }
base=$(available)
( lowest=$base; while sleep 1; do a=$(available); [ "$a" -lt "$lowest" ] && lowest=$a && echo $((base - a)) > "$machine"; done ) &
sampler=$!
start=$(date +%s)
if [ "$MODE" = study ]; then
  /usr/bin/time -f "%M" -o "$peak" "$PY" main.py --config configs/fast.json --folds_dir "$LISTS" --folds 5 \
      --exp_name study_fast --max_epoch "$EPOCHS" --study_workers "$JOBS" --no_progress > /dev/null
  for k in 0 1 2 3 4; do
    "$PY" test.py --test_list "$LISTS/fold${k}_test.txt" --checkpoint "runs/study_fast_s0_fold$k/checkpoint_best.pth" \
        --no_progress --n_boot 200 > /dev/null
  done
else
  wrapper=$(mktemp)  # python under /usr/bin/time: every process's peak appended to $peak
  printf '#!/usr/bin/env bash\nexec /usr/bin/time -a -f %%M -o %s %s "$@"\n' "$peak" "$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" > "$wrapper"
  chmod +x "$wrapper"
  PY=$wrapper bash run_folds.sh "$LISTS" 5 "$EPOCHS" "$JOBS" study_fast=configs/fast.json
  rm -f "$wrapper"
fi
"$PY" aggregate.py --runs runs/study_fast_s0_fold* --overwrite
end=$(date +%s)
kill $sampler
echo "5 folds x $EPOCHS epochs, $MODE, $JOBS at a time: $((end - start)) s wall, peak $(sort -n "$peak" | tail -1) KB" \
     "in one process, machine $(cat "$machine" 2>/dev/null || echo 0) KB in use at the peak ($(nproc) cores," \
     "$(git rev-parse --short HEAD))"
rm -f "$peak" "$machine"
