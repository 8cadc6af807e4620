"""feature_extractor.py's run: settings and videos from the flags, the backbone, the claimed output
folder, the extraction and failures.csv (docs/extractor.md)."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from scripts.core.devices import resolve_device, use_threads
from scripts.core.errors import MateError
from scripts.extraction.batching import choose_batching
from scripts.extraction.batch import (Summary, extract_all, failures_csv, jobs_from_args, settings_from_args,
                                     settings_record, shard_jobs)
from scripts.data.feature_folder import claim_folder, remove_stale_temps_of
from scripts.core.fileio import write_text
from scripts.core.runlog import git_commit
from scripts.extraction.x3d import load_backbone


def run_extraction(args: argparse.Namespace) -> tuple[Summary, Path]:
    """Extract this shard's videos into --out_dir; returns the summary and the failures.csv written.
    Progress lines (what runs where, links skipped, stale temp files removed) are printed on the way."""
    settings_from_args(args)  # the clip flags checked before the videos are searched
    jobs, duplicates = jobs_from_args(args)
    if args.decode_workers < 0:
        raise MateError(f"--decode_workers: must be 0 or more, got {args.decode_workers}")
    mine, shard_id, num_shards = shard_jobs(jobs, args.num_shards, args.shard_id)
    device = resolve_device(args.device)
    threads = use_threads(args.threads)
    batching = choose_batching(device, batch_size=args.clip_batch_size, workers=args.clip_workers)
    if device.type == "cpu":
        torch.set_num_threads(batching.threads_per_worker)  # each worker's share of the threads
    settings = settings_from_args(args, batching.batch_size, batching.workers)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # one GPU per torchrun rank: its allocations and streams stay there
    backbone = load_backbone(args.backbone, checkpoint=args.backbone_checkpoint, pretrained=args.pretrained,
                             random_weights=args.random_weights, layout=args.layout,
                             sequence_feature=args.sequence_feature, random_seed=args.seed).to(device)
    torch.backends.cudnn.benchmark = True  # fixed clip sizes: let cuDNN pick its fastest kernels
    print(f"git {git_commit()} | {args.backbone} ({backbone.weights}) {args.layout} on {device} ({threads}; {batching.said}) | "
          f"shard {shard_id}/{num_shards}: {len(mine)} of {len(jobs)} videos | {settings}", flush=True)
    if duplicates:
        twice, first = next(iter(duplicates.items()))
        print(f"note: {len(duplicates)} path(s) lead to a video listed already (symbolic or hard links), "
              f"extracted once: e.g. {twice} is {first}")

    name = "failures.csv" if num_shards == 1 else f"failures_shard{shard_id}_of_{num_shards}.csv"
    with claim_folder(args.out_dir, settings_record(settings, backbone), shard_id=shard_id,
                      num_shards=num_shards, overwrite=args.overwrite) as replaced:
        if replaced:
            print(f"--overwrite: {args.out_dir} held features of other settings ({'; '.join(replaced)}); "
                  "its settings record now holds these")
        outputs = [p for job in mine for p in (job.out, job.out.with_suffix(".json"))] + [args.out_dir / name]
        removed = remove_stale_temps_of(outputs)
        if removed:
            print(f"removed {len(removed)} temp file(s) left by a killed job, e.g. {removed[0]}")
        summary = extract_all(mine, backbone, settings, device, overwrite=args.overwrite,
                              workers=args.decode_workers, progress=not args.no_progress)
        write_text(args.out_dir / name, failures_csv(summary.failures))
    return summary, args.out_dir / name
