r"""Raw videos -> one .npy of X3D features per video, plus a `<name>.json` sidecar (docs/design.md §2).

    # UCF-Crime as the shared features were made: [192, 16, 10, 10] per video
    python feature_extractor.py --video_root data/UCF_Crimes/Videos --out_dir data/ucf_x3d
    # offline: pass pytorchvideo's model-zoo file (X3D_L.pyth) yourself
    python feature_extractor.py --video_root data/UCF_Crimes/Videos --out_dir data/ucf_x3d \
        --backbone_checkpoint checkpoints/X3D_L.pyth
    # pytorchvideo's own X3D-L transform instead of the shared features' (short side 356, 312 crop)
    python feature_extractor.py --video_root ... --out_dir ... --side_size 356 --crop_size 312
    # one vector per clip for frame-level scores, every frame in a clip: [n_clips, 2048]
    python feature_extractor.py --video_root data/UCF_Crimes/Videos --out_dir data/ucf_x3d_seq \
        --layout sequence
    # one file; a smoke run without weights
    python feature_extractor.py --video tests/data/vtest_clip.avi --out_dir /tmp/feat \
        --backbone x3d_xs --random_weights
    # 4 GPUs on one node; a SLURM array adds --num_shards $SLURM_ARRAY_TASK_COUNT --shard_id $SLURM_ARRAY_TASK_ID
    torchrun --nproc_per_node 4 feature_extractor.py --video_root ... --out_dir ...

The defaults are the published extractor's, so new features come from the distribution of the shared
UCF-Crime ones (data/published/README.md) and a detector trained on those applies to them: X3D-L with
pytorchvideo's Kinetics-400 weights (X3D_L.pyth, downloaded once into torch's hub cache,
$TORCH_HOME/hub/checkpoints; offline, pass it with --backbone_checkpoint), the head removed; the short side
scaled to 320 (bilinear) and a 320 x 320 centre crop; windows of 80 frames one after another, 16 frames
spread evenly over each (--clip_sampling uniform; --layout sequence takes every 5th frame and keeps
every frame in a clip), only whole windows; RGB / 255, mean 0.45, std 0.225;
the element-wise maximum over all clips. The sidecar records every one of these settings.

Finished videos are skipped, so a killed job just runs again; failures are listed at the end and in
<out_dir>/failures.csv (exit 1); a full disk stops the run in one line (exit 2); --out_dir records its
settings and refuses a job with others. Details: docs/extractor.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.core.cli import OneLineParser, run
from scripts.option import get_runtime_parser
from scripts.extraction.clips import CLIP_SAMPLINGS
from scripts.data.feature_settings import CLOCK_FPS
from scripts.extraction.backbone_args import add_backbone_arguments, add_clip_batching_arguments
from scripts.extraction.x3d import PRESETS, PYTORCHVIDEO_X3D_L


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser("feature_extractor.py", description=__doc__, add_help=add_help,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           parents=[get_runtime_parser(loading=False)])  # --seed: random weights
    io = parser.add_argument_group("videos and outputs")
    source = io.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", type=Path, default=None, help="one video file (default: none)")
    source.add_argument("--video_root", type=Path, default=None,
                        help="folder searched recursively for videos (.mp4, .avi, .mkv, .mov, ...); its "
                             "sub-folders are mirrored into --out_dir (default: none)")
    io.add_argument("--out_dir", type=Path, required=True,
                    help="where <relative path>.npy, <relative path>.json and failures.csv go (required)")
    io.add_argument("--overwrite", action="store_true",
                    help="extract again videos whose .npy and sidecar exist, and replace the folder's recorded "
                         "settings if they differ (refused while another job runs on it; with shards, give "
                         "it to every shard) (default: skip them, resume; other settings are refused)")
    io.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                    help="dtype of the saved arrays; float16 halves the disk space (default: float32)")
    io.add_argument("--num_shards", type=int, default=1,
                    help="split the sorted video list into this many shards, e.g. a SLURM array's "
                         "task count; under torchrun each shard is split again between the ranks (default: 1)")
    io.add_argument("--shard_id", type=int, default=0,
                    help="this process's shard, 0 .. num_shards-1, e.g. $SLURM_ARRAY_TASK_ID; it takes "
                         "videos shard_id, shard_id + num_shards, ... (default: 0)")

    model = parser.add_argument_group("backbone and weights")
    add_backbone_arguments(model, from_checkpoint=False)
    model.add_argument("--layout", choices=("map", "sequence"), default="map",
                       help="map: the trunk's [192, T, H/32, W/32] map per clip, max-pooled over all clips "
                            "(and crops) of a video, the shared UCF-Crime format; sequence: one vector per "
                            "clip, [n_clips, D] or [n_clips, crops, D] (default: map)")
    model.add_argument("--sequence_feature", choices=("head", "stem"), default="head",
                       help="sequence vectors: head = the head's 2048-d pre-projection features; stem = "
                            "the 192-d trunk map averaged over time and space (default: head)")

    clips = parser.add_argument_group(
        "clips and preprocessing (default: the backbone preset's values; x3d_l's are the shared features'); "
        f"frames are counted at the published clock of {CLOCK_FPS} fps, so windows are times at any frame rate")
    l = PRESETS["x3d_l"]
    clips.add_argument("--num_frames", type=int, default=None,
                       help=f"frames per clip (default: preset, x3d_l {l.num_frames})")
    clips.add_argument("--sampling_rate", type=int, default=None,
                       help=f"a clip's window is num_frames x sampling_rate / {CLOCK_FPS} s; strided: a frame every "
                            f"sampling_rate / {CLOCK_FPS} s (default: preset, x3d_l {l.sampling_rate})")
    clips.add_argument("--stride", type=int, default=None,
                       help=f"clip starts every stride / {CLOCK_FPS} s (default: num_frames x sampling_rate, clips "
                            "one after another)")
    clips.add_argument("--clip_sampling", choices=CLIP_SAMPLINGS, default=None,
                       help="uniform: the published extractor's rule, which the shared features were made with "
                            "(pytorchvideo's UniformClipSampler + UniformTemporalSubsample): num_frames of the frames "
                            "whose timestamps fall in each window spread evenly (x3d_l at 30 fps: 16 of 80, frames 0, "
                            "5, 10, ..., 79); only windows that end within the video, the frames after the last one "
                            "are left out (the sidecar's dropped_frames), and a video shorter than one window gives "
                            "one clip over all its frames. strided: the frame shown every sampling_rate / 30 s from "
                            "each clip start, the times past the end taking the last frame, so every moment is in a "
                            "clip (frame-level scores; clip i stands for [i, i + 1) x stride / 30 s) (default: "
                            "uniform for --layout map, strided for --layout sequence)")
    hub_l = PYTORCHVIDEO_X3D_L
    clips.add_argument("--crop_size", type=int, default=None,
                       help=f"square centre crop in pixels (default: preset, x3d_l {l.crop_size} as the shared "
                            f"features; pytorchvideo's X3D-L: {hub_l['crop_size']})")
    clips.add_argument("--side_size", type=int, default=None,
                       help=f"the short side is scaled to this before cropping (default: preset, x3d_l "
                            f"{l.side_size} as the shared features; pytorchvideo's X3D-L: {hub_l['side_size']})")
    add_clip_batching_arguments(clips, "--batch_size")
    clips.add_argument("--decoder_threads", type=int, default=1,
                       help="FFmpeg threads per video decoder: 1 is fastest for small videos such as "
                            "UCF-Crime's 320x240 (decode several in parallel with --decode_workers instead); "
                            "0 = FFmpeg's choice, for a few large videos (default: 1)")
    clips.add_argument("--decode_workers", type=int, default=0,
                       help="videos decoded ahead in parallel, each in its own thread, while the model runs; "
                            "0 = only the current video, still decoded in a background thread; raise it "
                            "when one decoder cannot feed a GPU (default: 0)")
    clips.add_argument("--allow_truncated", action="store_true",
                       help="extract what decodes from a video with fewer frames than its container "
                            "declares, flagged in the sidecar (default: report it as a failure)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from scripts.extraction.extraction_run import run_extraction

    summary, failures_csv = run_extraction(args)
    for video, why in summary.redone:
        print(f"{video}: extracted again: the kept features were damaged ({why})")
    print(f"written {len(summary.written)}, skipped {len(summary.skipped)} (already extracted; "
          f"--overwrite redoes them), failed {len(summary.failures)} -> {args.out_dir}")
    for video in summary.truncated:
        print(f"warning: {video}: fewer frames decoded than declared (--allow_truncated)", file=sys.stderr)
    if summary.failures:
        print(f"{len(summary.failures)} video(s) failed (listed in {failures_csv}):", file=sys.stderr)
        for video, error in summary.failures:
            print(f"  {video}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
