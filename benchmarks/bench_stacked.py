"""K models stacked along a leading axis (torch.func stack_module_state + functional_call + vmap) against the
same K models stepped one after another: the measurement behind docs/speed.md's "Stacking models".

    python benchmarks/bench_stacked.py                 # 5 fast models, batch 16 of UCF-Crime X3D-L maps, 1 thread
    python benchmarks/bench_stacked.py --models 10 --variant base

Both use the plain paths (scripts/models/fast_paths.py: vmap has no batching rule for the fused projection's
out= arithmetic), the MotionMap computed outside (as training does), the loss per model and one backward. It
prints the forward's largest difference to the separate models and the step time per model both ways.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.func import functional_call, stack_module_state, vmap  # noqa: E402

from scripts.model import build_model, config_for_variant  # noqa: E402
from scripts.models.fast_paths import plain_paths  # noqa: E402
from scripts.models.losses import LossConfig, MateLoss  # noqa: E402
from scripts.models.motion import motion_map  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser("bench_stacked.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=5, help="models stacked (default: 5)")
    parser.add_argument("--variant", default="fast", help="model variant (default: fast)")
    parser.add_argument("--batch", type=int, default=16, help="videos per model and step (default: 16)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps after 2 untimed (default: 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    M, B = args.models, args.batch
    models = []
    for seed in range(M):
        torch.manual_seed(seed)
        models.append(build_model(config_for_variant(args.variant)))
    params, buffers = stack_module_state(models)  # leaves that require grad, [M, ...] each
    base = copy.deepcopy(models[0]).to("meta")
    x = torch.randn(M, B, 192, 16, 10, 10)
    motion = torch.stack([motion_map(x[i]) for i in range(M)])
    y = torch.tensor([0.0] * (B // 2) + [1.0] * (B - B // 2))
    loss_fn = MateLoss(LossConfig())

    def forward(p, b, xi, mi):
        out = functional_call(base, (p, b), (xi,), {"motion": mi})
        return out.video_logit, out.snippet_logits, out.embedding

    def stacked_step():
        v, s, e = vmap(forward)(params, buffers, x, motion)
        sum(loss_fn(v[i], s[i], e[i], y)[0] for i in range(M)).backward()

    def separate_step():
        for i in range(M):
            out = models[i](x[i], motion=motion[i])
            loss_fn(out.video_logit, out.snippet_logits, out.embedding, y)[0].backward()

    with plain_paths():
        v, _, _ = vmap(forward)(params, buffers, x, motion)
        diff = max(float((models[i](x[i], motion=motion[i]).video_logit - v[i]).abs().max().detach()) for i in range(M))
        rates = {}
        for name, step in (("stacked (vmap)", stacked_step), ("separate", separate_step)):
            for _ in range(2):
                step()
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[name] = (time.perf_counter() - start) / args.steps / M * 1000
    print(f"{M} x {args.variant}, batch {B}, {args.threads} thread(s): forward max |diff| {diff:.2e}")
    for name, ms in rates.items():
        print(f"{name:15s} {ms:7.1f} ms per model and step")
    print(f"stacked / separate: {rates['stacked (vmap)'] / rates['separate']:.2f}x")


if __name__ == "__main__":
    main()
