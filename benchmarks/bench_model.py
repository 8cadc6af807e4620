"""Speed and memory of the detectors: parameters, training and scoring throughput, one full epoch.

    python benchmarks/bench_model.py                                   # fast, base, mil on CPU
    python benchmarks/bench_model.py --variants fast --threads 2 --iters 50
    python benchmarks/bench_model.py --device cuda --epoch_videos 1610
    python benchmarks/bench_model.py --shape 2048 32 1 1 --epoch_videos 0   # I3D-like sequences
    python benchmarks/bench_model.py --variants fast fast:plain base base:plain   # a TCC mode other than the default
    python benchmarks/bench_model.py --variants fast fast:num_heads=8 --epoch_videos 0   # any config value

Training throughput: forward + loss + backward + AdamW step at --batch_train (videos/s). Scoring
throughput: no_grad forward at --batch_infer. Peak memory: how far the process's resident set rose
above its level before the variant (Linux high-water mark, reset per variant), or torch's peak CUDA
allocation. Epoch: one pass over --epoch_videos UCF-Crime-sized videos held in memory as float16 (as
`--cache_dtype float16` does), balanced batches sliced from it and cast to float32 as the training
loop does. Warm-up iterations are excluded from every timing. Not part of `make test`.
"""
from __future__ import annotations

import argparse
import copy
import gc
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.dataset import BalancedBatchSampler, stacked_motion_maps  # noqa: E402
from scripts.core.errors import MateError  # noqa: E402
from scripts.core.memory import keep_freed_memory, release_freed_memory  # noqa: E402
from scripts.core.devices import resolve_device  # noqa: E402
from scripts.models.losses import LossConfig, MateLoss  # noqa: E402
from scripts.model import (TCC_MODES, VARIANTS, build_model, config_for_variant,  # noqa: E402
                          count_parameters, feature_motion_map)
from scripts.models.motion import motion_map  # noqa: E402
from scripts.training.training import build_optimizer  # noqa: E402


def variant_overrides(text: str) -> tuple[str, dict]:
    """`fast` -> ("fast", {}); `fast:plain` -> a TCC mode; `fast:num_heads=8,dropout=0.4` -> config values
    (ints and floats as written, other values as strings)."""
    variant, _, rest = text.partition(":")
    overrides: dict = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            key, value = "tcc_mode", item
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        overrides[key] = value
    return variant, overrides


def variant_spec(text: str) -> str:
    """A variant, optionally with config values after a colon; refused unless it builds."""
    variant, overrides = variant_overrides(text)
    try:
        config_for_variant(variant, **overrides)
    except (MateError, TypeError, KeyError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc} (variants: {', '.join(VARIANTS)}; a TCC mode "
                                         f"of {', '.join(TCC_MODES)} or key=value pairs after ':')") from None
    return text


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("bench_model.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["fast", "base", "mil"], type=variant_spec,
                        help="variants, each optionally with a TCC mode or config values after a colon, e.g. "
                             f"fast:plain or fast:num_heads=8,tcc_bottleneck=32 (variants: {', '.join(VARIANTS)}; "
                             f"modes: {', '.join(TCC_MODES)}) (default: fast base mil; paper_fast, paper_base: "
                             "the published model)")
    parser.add_argument("--shape", nargs=4, type=int, default=[192, 16, 10, 10], metavar=("C", "T", "H", "W"),
                        help="one video's features (default: 192 16 10 10, an X3D-L map)")
    parser.add_argument("--batch_train", type=int, default=16, help="training batch (default: 16)")
    parser.add_argument("--batch_infer", type=int, default=32, help="scoring batch (default: 32)")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per round (default: 20)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; each times every variant once, so slow spells of a shared machine hit "
                             "all variants alike; the median counts (default: 3)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default: 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    parser.add_argument("--epoch_videos", type=int, default=1610,
                        help="videos of the timed epoch, after the rounds; 0 skips it (default: 1610, "
                             "UCF-Crime's training set)")
    parser.add_argument("--lambda_triplet", type=float, default=0.1,
                        help="triplet weight of the loss for fast/base, as configs/fast.json; mil uses 0 "
                             "(default: 0.1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:<i> or auto (default: cpu)")
    parser.add_argument("--model_motion", action="store_true",
                        help="let fast/base compute their MotionMap in every step instead of taking it "
                             "from the data set as main.py and test.py do (default: off)")
    return parser


# --- memory --------------------------------------------------------------------------------------

def _vm_hwm_mb() -> float | None:
    """The process's resident-set high-water mark (Linux), or None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak(device: torch.device) -> float:
    """Start a new peak-memory window; returns the baseline (MB) the peak is measured from."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    gc.collect()
    release_freed_memory()  # the previous variant's freed heap goes back, so it does not hide this one's peak
    try:  # "5" resets the high-water mark to the current RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _rss_mb()


def peak_above(device: torch.device, baseline: float) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20 - baseline
    hwm = _vm_hwm_mb()
    if hwm is None:  # no /proc: ru_maxrss never resets, so this is a lifetime peak
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return hwm - baseline


# --- timing --------------------------------------------------------------------------------------

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(fn, n_videos: int, iters: int, warmup: int, device: torch.device) -> float:
    """Videos per second of `fn` (which handles n_videos per call), after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return n_videos * iters / (time.perf_counter() - start)


def train_step(model, loss_fn, opt, x, y, motion=None) -> None:
    out = model(x, motion=motion)
    loss, _ = loss_fn(out.video_logit, out.snippet_logits, out.embedding, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def make_cache(n: int, shape: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """n random float16 videos [n, C, T, H, W] (filled in chunks: no float32 copy of the whole set)."""
    g = torch.Generator().manual_seed(0)
    cache = torch.empty(n, *shape, dtype=torch.float16)
    for i in range(0, n, 64):
        cache[i:i + 64] = torch.rand(min(64, n - i), *shape, generator=g).half()
    return cache, torch.tensor([i % 2 for i in range(n)], dtype=torch.float32)


class Bench:
    """One variant ready to time: model, loss, optimiser, random batches and their MotionMaps."""

    def __init__(self, variant: str, args, device: torch.device):
        C, T, H, W = args.shape
        torch.manual_seed(0)
        self.variant, self.args, self.device = variant, args, device
        name, overrides = variant_overrides(variant)
        self.model = build_model(config_for_variant(name, **{"in_channels": C, **overrides}))
        self.model = self.model.to(device)
        self.loss_fn = MateLoss(LossConfig(lambda_triplet=0.0 if name == "mil" else args.lambda_triplet))
        self.opt = build_optimizer(self.model, lr=1e-3, weight_decay=0.002, device=device)
        self.xt = torch.rand(args.batch_train, C, T, H, W, device=device)
        self.yt = torch.tensor([0.0, 1.0] * (args.batch_train // 2), device=device)
        self.xi = torch.rand(args.batch_infer, C, T, H, W, device=device)
        # as the training loop and scoring: a MotionMap that depends on the features alone comes from
        # the data set, computed once per video (--model_motion: the model computes it in every step)
        self.key = None if args.model_motion else feature_motion_map(self.model)
        self.mt, self.mi = ((motion_map(self.xt, *self.key), motion_map(self.xi, *self.key)) if self.key
                            else (None, None))
        self.train_rates: list[float] = []
        self.score_rates: list[float] = []
        self.peak = float("nan")

    def round(self, warmup: int) -> None:
        """One timed round of training steps and of scoring batches."""
        args, model = self.args, self.model
        model.train()
        self.train_rates.append(throughput(
            lambda: train_step(model, self.loss_fn, self.opt, self.xt, self.yt, self.mt), args.batch_train,
            args.iters, warmup, self.device))
        model.eval()
        with torch.no_grad():
            self.score_rates.append(throughput(lambda: model(self.xi, motion=self.mi), args.batch_infer,
                                               args.iters, warmup, self.device))

    def flops(self) -> tuple[float, float]:
        """Floating-point operations per video of a training step and of scoring (matmuls and
        convolutions, as torch's FlopCounterMode counts them; the elementwise work is not counted)."""
        from torch.utils.flop_counter import FlopCounterMode

        state = copy.deepcopy((self.model.state_dict(), self.opt.state_dict()))
        self.model.train()
        with FlopCounterMode(display=False) as counter:
            train_step(self.model, self.loss_fn, self.opt, self.xt, self.yt, self.mt)
        train = counter.get_total_flops() / self.args.batch_train
        self.model.eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            self.model(self.xi, motion=self.mi)
        self.model.load_state_dict(state[0]), self.opt.load_state_dict(state[1])
        return train, counter.get_total_flops() / self.args.batch_infer

    def epoch(self, cache: torch.Tensor, labels: torch.Tensor) -> float:
        """Seconds of one epoch of balanced batches from the float16 cache, as the training loop."""
        device, model = self.device, self.model
        sampler = BalancedBatchSampler(labels, batch_size=self.args.batch_train, seed=0)
        maps = stacked_motion_maps(cache, *self.key) if self.key else None  # once, as FeatureDataset does

        def step(idx: torch.Tensor) -> None:
            train_step(model, self.loss_fn, self.opt, cache[idx].float().to(device), labels[idx].to(device),
                       None if maps is None else maps[idx].to(device))

        model.train()
        step(torch.arange(self.args.batch_train))  # warm-up
        sync(device)
        start = time.perf_counter()
        for idx in sampler:
            step(torch.tensor(idx))
        sync(device)
        return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv=None) -> None:
    args = get_args_parser().parse_args(argv)
    keep_freed_memory()  # as every script (scripts/core/cli.py)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    C, T, H, W = args.shape
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"{name}; device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; input "
          f"[B, {C}, {T}, {H}, {W}]; train batch {args.batch_train}, score batch {args.batch_infer}; "
          f"{args.rounds} rounds of {args.iters} timed iterations per variant, the variants interleaved, "
          f"median reported")
    benches = [Bench(v, args, device) for v in args.variants]
    for b in benches:  # warm-up, and the memory each variant's steps add
        baseline = reset_peak(device)
        b.round(args.warmup)
        b.peak = peak_above(device, baseline)
        b.train_rates.clear(), b.score_rates.clear()
    for _ in range(args.rounds):
        for b in benches:
            b.round(0)
    epochs = {b.variant: float("nan") for b in benches}
    if args.epoch_videos:
        cache, labels = make_cache(args.epoch_videos, args.shape)
        print(f"epoch: {args.epoch_videos} videos held as float16 ({cache.numel() * 2 / 1e9:.2f} GB)")
        for b in benches:
            epochs[b.variant] = b.epoch(cache, labels)
        del cache
    rates = {b.variant: (median(b.train_rates), median(b.score_rates)) for b in benches}
    flops = {b.variant: b.flops() for b in benches}
    print(f"{'variant':<11}{'params':>8}{'train videos/s':>16}{'score videos/s':>16}{'vs published':>14}"
          f"{'epoch s':>9}{'peak MB':>9}")
    for b in benches:
        train, score = rates[b.variant]
        paper = rates.get(PAPER_OF.get(b.variant.partition(":")[0], ""))
        ratio = f"{train / paper[0]:.1f}x {score / paper[1]:.1f}x" if paper else "-"
        print(f"{b.variant:<11}{count_parameters(b.model):>8,}{train:>16.0f}{score:>16.0f}{ratio:>14}"
              f"{epochs[b.variant]:>9.1f}{b.peak:>9.0f}", flush=True)
    video_mb = C * T * H * W * 4 / 1e6
    print(f"floor: a video is {video_mb:.2f} MB of float32 ({video_mb / 2:.2f} MB as float16 in the cache); "
          "a training step reads it twice (forward, weight gradient of the input projection), scoring once")
    print(f"{'variant':<11}{'train MFLOP/video':>19}{'score MFLOP/video':>19}{'train GFLOP/s':>15}"
          f"{'score GFLOP/s':>15}")
    for b in benches:
        (ft, fs), (train, score) = flops[b.variant], rates[b.variant]
        print(f"{b.variant:<11}{ft / 1e6:>19.1f}{fs / 1e6:>19.1f}{ft * train / 1e9:>15.1f}{fs * score / 1e9:>15.1f}")
    print("vs published: train and score rate over the published architecture of the same size "
          "(fast/paper_fast, base/paper_base); peak MB: rise of the "
          f"{'CUDA allocation' if device.type == 'cuda' else 'resident set'} during a variant's first "
          "training and scoring iterations")


PAPER_OF = {"fast": "paper_fast", "base": "paper_base"}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"CPU ({os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
