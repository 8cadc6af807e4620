"""The X3D backbone flags that feature_extractor.py and test.py (--video / --video_root) share: one
definition, one name for the weights file, `--backbone_checkpoint` (test.py's `--checkpoint` is the MATE
checkpoint; feature_extractor.py keeps `--checkpoint` as an alias of it)."""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.extraction.x3d import CHECKPOINT_FILES, PRESETS, PYTORCHVIDEO_X3D_L
from scripts.extraction.video import DECODERS


def add_backbone_arguments(group: argparse._ArgumentGroup, *, from_checkpoint: bool) -> None:
    """--backbone, --backbone_checkpoint, --pretrained, --random_weights, --crops, --decoder.

    from_checkpoint: the MATE checkpoint decides the backbone and crops (test.py), so their defaults are
    None (the checkpoint's); else (feature_extractor.py) x3d_l with one crop, the shared features'.
    """
    sizes = "; ".join(f"{p.name[4:]} {p.num_frames}x{p.sampling_rate}, {p.side_size}, {p.crop_size}"
                      for p in PRESETS.values())
    hub_l = PYTORCHVIDEO_X3D_L
    backbone_default = "the checkpoint's, from its training features' sidecars; x3d_l with the shared " \
                       "features' preprocessing for map features without sidecars" if from_checkpoint else "x3d_l"
    group.add_argument("--backbone", choices=tuple(PRESETS), default=None if from_checkpoint else "x3d_l",
                       help=f"X3D size; frames x sampling rate, short side, crop: {sizes}. x3d_l's are the "
                            f"shared UCF-Crime features' (map [192, 16, 10, 10]); pytorchvideo's own X3D-L "
                            f"transform is --side_size {hub_l['side_size']} --crop_size {hub_l['crop_size']}"
                            + ("; it must be the one the checkpoint's training features were made with"
                               if from_checkpoint else "") + f" (default: {backbone_default})")
    names = ["--backbone_checkpoint"] + ([] if from_checkpoint else ["--checkpoint"])
    group.add_argument(*names, dest="backbone_checkpoint", type=Path, default=None, metavar="PATH",
                       help="local X3D weights instead of the download, no network needed: pytorchvideo's model "
                            f"zoo file ({', '.join(CHECKPOINT_FILES.values())}; {{'model_state': ...}}) or a "
                            "plain state dict" + ("" if from_checkpoint else "; --checkpoint is the older name")
                            + " (default: none, the official weights as with --pretrained)")
    group.add_argument("--pretrained", action="store_true",
                       help="pytorchvideo's official Kinetics-400 weights, which the shared features were made "
                            "with: the model zoo file in torch's hub cache ($TORCH_HOME/hub/checkpoints, "
                            "~/.cache/torch/hub/checkpoints), downloaded there the first time; offline and not "
                            "cached, pass the file with --backbone_checkpoint (default: on unless "
                            "--backbone_checkpoint or --random_weights is given; the flag only says so explicitly)")
    group.add_argument("--random_weights", action="store_true",
                       help="random weights, for tests and smoke runs only: the features mean nothing"
                            + ("; every output says so" if from_checkpoint else "") + " (default: off)")
    group.add_argument("--crops", type=int, choices=(1, 3, 10), default=None if from_checkpoint else 1,
                       help="spatial crops per clip: 1 centre; 3 along the long side; 10 = 4 corners + centre, "
                            "and flipped (default: " + ("the checkpoint's, else 1)" if from_checkpoint else "1)"))
    group.add_argument("--decoder", choices=DECODERS, default="cv2",
                       help="video decoder: OpenCV or PyAV; both give the same frames and timestamps "
                            "(default: cv2)")


def add_clip_batching_arguments(group: argparse._ArgumentGroup, batch_flag: str) -> None:
    """The clip batch (`batch_flag`: feature_extractor.py --batch_size, test.py --clip_batch_size, where
    --batch_size counts videos) and --clip_workers, both chosen per device when unset
    (scripts/extraction/batching.py)."""
    from scripts.extraction.batching import CPU_BATCH, CPU_WORKERS, CUDA_BATCH

    group.add_argument(batch_flag, type=int, default=None, dest="clip_batch_size",
                       help=f"clips per forward pass of the backbone; each holds `crops` views (default: per "
                            f"device: {CPU_BATCH} on a CPU, the fastest per clip there; {CUDA_BATCH} on CUDA)")
    group.add_argument("--clip_workers", type=int, default=None,
                       help="forward passes run side by side, sharing the CPU threads; results stay in order "
                            f"(default: per device: {CPU_WORKERS} on a CPU with at least {CPU_WORKERS} threads, "
                            "else 1; 1 on CUDA)")
