"""Where a training step (or a scoring batch) of a model spends its time: torch.profiler's operator table.

    python benchmarks/profile_model.py                                  # fast, training step, 1 thread
    python benchmarks/profile_model.py --variant base --threads 2
    python benchmarks/profile_model.py --variant fast --mode score --plain   # the plain formulas instead

The step is the training loop's: forward with the MotionMap from the data (as FeatureDataset.motion_maps
hands it), BCE + triplet loss, backward, AdamW. Operators are grouped by input shape, so the table
names the tensor each cost belongs to (e.g. [16, 16, 10, 10, 8]: the tokens of a fast batch). The
profiler adds its own overhead; rates come from bench_model.py. Not part of `make test`.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.core.memory import keep_freed_memory  # noqa: E402
from scripts.models.fast_paths import plain_paths  # noqa: E402
from scripts.models.losses import LossConfig, MateLoss  # noqa: E402
from scripts.model import VARIANTS, build_model, config_for_variant, feature_motion_map  # noqa: E402
from scripts.models.motion import motion_map  # noqa: E402
from scripts.training.training import build_optimizer  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("profile_model.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS, default="fast", help="(default: fast)")
    parser.add_argument("--mode", choices=("train", "score"), default="train",
                        help="a training step at --batch 16, or scoring at --batch 32 (default: train)")
    parser.add_argument("--batch", type=int, default=None, help="videos per step (default: 16 train, 32 score)")
    parser.add_argument("--shape", nargs=4, type=int, default=[192, 16, 10, 10], metavar=("C", "T", "H", "W"),
                        help="one video's features (default: 192 16 10 10)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("--steps", type=int, default=10, help="profiled steps, after 3 untimed (default: 10)")
    parser.add_argument("--rows", type=int, default=25, help="operators listed (default: 25)")
    parser.add_argument("--plain", action="store_true",
                        help="the plain formulas and the model's own MotionMap (scripts/models/fast_paths.py)")
    return parser


def main(argv=None) -> None:
    args = get_args_parser().parse_args(argv)
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(config_for_variant(args.variant, in_channels=args.shape[0]))
    loss_fn = MateLoss(LossConfig(lambda_triplet=0.0 if args.variant == "mil" else 0.1))
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.002, device=torch.device("cpu"))
    B = args.batch or (16 if args.mode == "train" else 32)
    x = torch.rand(B, *args.shape)
    y = torch.tensor([0.0, 1.0] * (B // 2) + [1.0] * (B % 2))
    key = None if args.plain else feature_motion_map(model)
    motion = motion_map(x, *key) if key else None

    def step() -> None:
        if args.mode == "train":
            model.train()
            out = model(x, motion=motion)
            loss, _ = loss_fn(out.video_logit, out.snippet_logits, out.embedding, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            model.eval()
            with torch.no_grad():
                model(x, motion=motion)

    with plain_paths() if args.plain else contextlib.nullcontext():
        for _ in range(3):
            step()
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(args.steps):
                step()
    table = prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total",
                                                               row_limit=args.rows, max_name_column_width=40,
                                                               max_shapes_column_width=60)
    print(f"{args.variant}, {args.mode}, batch {B}, {torch.get_num_threads()} threads, "
          f"{'plain formulas' if args.plain else 'fast paths'}; {args.steps} steps (times are totals over them)")
    print(table)


if __name__ == "__main__":
    main()
