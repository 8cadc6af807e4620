"""Speed and memory of the detector: parameters, training and scoring throughput, one full epoch.

    python benchmarks/bench_model.py                       # fast, base, mil on [B, 192, 16, 10, 10], CPU
    python benchmarks/bench_model.py --variants fast --threads 2 --device cuda

Training throughput: forward + backward + AdamW step at batch 16 (videos/s). Scoring throughput:
no_grad forward at batch 32. Peak memory: the process's maximum resident set (CPU) or torch's peak
allocation (CUDA). Epoch: one pass over --epoch_videos UCF-Crime-sized videos held in memory as float16
(as --cache_dtype float16 does), batches sliced and cast to float32 as the training loop does.
Warm-up iterations are excluded. Not part of `make test`.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.dataset import BalancedBatchSampler  # noqa: E402
from scripts.devices import resolve_device  # noqa: E402
from scripts.losses import LossConfig, MateLoss  # noqa: E402
from scripts.model import build_model, config_for_variant, count_parameters  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("bench_model.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["fast", "base", "mil"], help="(default: fast base mil)")
    parser.add_argument("--batch_train", type=int, default=16, help="training batch (default: 16)")
    parser.add_argument("--batch_infer", type=int, default=32, help="scoring batch (default: 32)")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations (default: 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default: 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--epoch_videos", type=int, default=1610,
                        help="videos of the timed epoch; 0 skips it (default: 1610, UCF-Crime's training set)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    return parser


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(model, loss_fn, opt, x, y):
    out = model(x)
    loss, _ = loss_fn(out.video_logit, out.snippet_logits, out.embedding, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def throughput(fn, n_videos: int, iters: int, warmup: int, device) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return n_videos * iters / (time.perf_counter() - start)


def bench_variant(variant: str, args, device) -> dict:
    torch.manual_seed(0)
    model = build_model(config_for_variant(variant)).to(device)
    loss_fn = MateLoss(LossConfig(lambda_triplet=0.0 if variant == "mil" else 0.1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    xt = torch.randn(args.batch_train, 192, 16, 10, 10, device=device)
    yt = torch.tensor([0.0, 1.0] * (args.batch_train // 2), device=device)
    xi = torch.randn(args.batch_infer, 192, 16, 10, 10, device=device)
    model.train()
    train = throughput(lambda: train_step(model, loss_fn, opt, xt, yt), args.batch_train, args.iters, args.warmup, device)
    model.eval()
    with torch.no_grad():
        infer = throughput(lambda: model(xi), args.batch_infer, args.iters, args.warmup, device)
    return {"variant": variant, "params": count_parameters(model), "train": train, "infer": infer,
            "model": model, "loss_fn": loss_fn, "opt": opt}


def bench_epoch(row: dict, args, device) -> float:
    """One epoch over UCF-Crime-sized maps cached as float16, as main.py trains."""
    g = torch.Generator().manual_seed(0)
    cache = torch.empty(args.epoch_videos, 192, 16, 10, 10, dtype=torch.float16)
    for i in range(0, args.epoch_videos, 64):  # filled in chunks: no float32 copy of the whole set
        cache[i:i + 64] = torch.randn(min(64, args.epoch_videos - i), 192, 16, 10, 10, generator=g).half()
    labels = torch.tensor([i % 2 for i in range(args.epoch_videos)], dtype=torch.float32)
    sampler = BalancedBatchSampler(labels, batch_size=args.batch_train, seed=0)
    model, loss_fn, opt = row["model"], row["loss_fn"], row["opt"]
    model.train()
    start = time.perf_counter()
    for idx in sampler:
        idx = torch.tensor(idx)
        train_step(model, loss_fn, opt, cache[idx].float().to(device), labels[idx].to(device))
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    args = get_args_parser().parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, input [B, 192, 16, 10, 10]")
    print(f"{'variant':<8}{'params':>9}{'train videos/s':>16}{'score videos/s':>16}{'epoch s':>9}{'peak MB':>9}")
    for variant in args.variants:
        row = bench_variant(variant, args, device)
        epoch = bench_epoch(row, args, device) if args.epoch_videos else float("nan")
        print(f"{variant:<8}{row['params']:>9,}{row['train']:>16.0f}{row['infer']:>16.0f}{epoch:>9.1f}"
              f"{peak_mb(device):>9.0f}", flush=True)


if __name__ == "__main__":
    main()
