"""How many clips go through the X3D backbone at once, per device (docs/extractor.md, "Speed").

On a CPU a batch of clips is slower per clip than one clip (X3D-L, one thread: 1.4 s per clip at batch 1,
2.8 s at batch 8: the activations of eight 320 x 320 clips leave the caches), and torch's threads split
each small operator and meet at a barrier after it. What pays on a CPU is one clip per forward pass and
the cores split between `workers` forward passes that run side by side, each with its share of the torch
threads (two clips in two workers beat one clip on two threads by about 1.2x on a 2-core machine; the
decoding thread runs beside them). On CUDA the batch fills the GPU: 8 clips, one worker.

A flag given by the user wins; what was chosen, and why, is one line for the run header.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from scripts.core.errors import MateError

CPU_BATCH, CUDA_BATCH = 1, 8
CPU_WORKERS = 2  # at most: more clips in flight cost memory (about 0.4 GB each for X3D-L) for no gain


@dataclass(frozen=True)
class ClipBatching:
    batch_size: int  # clips per forward pass
    workers: int  # forward passes running side by side
    threads_per_worker: int  # torch intra-op threads each of them uses (CPU)
    said: str  # what was chosen and why, for the run header


def choose_batching(device: torch.device, *, batch_size: int | None = None, workers: int | None = None,
                    threads: int | None = None, batch_flag: str = "--batch_size", live: bool = False) -> ClipBatching:
    """The clip batch and workers for `device` when the flags leave them unset (None).

    `threads` is the torch thread count the run uses (default: torch's current one); on the CPU the
    workers share it, each taking threads // workers (at least one). `live` (test.py --stream): one
    worker on all the threads, so each clip's latency is one pass, not two sharing the cores.
    """
    for flag, value in ((batch_flag, batch_size), ("--clip_workers", workers)):
        if value is not None and value < 1:
            raise MateError(f"{flag}: must be at least 1, got {value}")
    threads = threads or torch.get_num_threads()
    cuda = device.type == "cuda"
    why = []
    if batch_size is None:
        batch_size = CUDA_BATCH if cuda else CPU_BATCH
        why.append(f"{batch_size} clip(s) per pass ({'CUDA: fills the GPU' if cuda else 'CPU: fastest per clip'})")
    else:
        why.append(f"{batch_size} clip(s) per pass ({batch_flag})")
    if workers is None:
        workers = 1 if cuda or live else max(1, min(CPU_WORKERS, threads))
        how = "CUDA" if cuda else "a stream: lowest latency" if live else f"CPU, {threads} thread(s)"
        why.append(f"{workers} worker(s) ({how})")
    else:
        why.append(f"{workers} worker(s) (--clip_workers)")
    per_worker = 1 if cuda else max(1, threads // workers)
    if workers > 1:
        why.append(f"{per_worker} thread(s) each")
    return ClipBatching(batch_size, workers, per_worker, "clips: " + ", ".join(why))
