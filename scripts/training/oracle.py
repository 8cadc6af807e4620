"""The test-oracle figure (main.py --oracle_test_list, docs/benchmarks.md): the test set scored after every
epoch and the epoch best on it, the way all seven public peer repositories (RTFM, MGFN, UR-DMU, S3R,
BN-WVAD, PEL4VAD, VadCLIP) choose their checkpoint, none of which has a validation split.

It is recorded beside the validation-selected result, never instead of it: the checkpoint main.py keeps
is still the best on validation, metrics.csv gains the per-epoch test columns (oracle_video_roc_auc, and
with --oracle_gt oracle_frame_roc_auc, oracle_frame_ap), and oracle.json in the run folder names the
oracle epoch (the first epoch with the highest figure: the benchmark's frame-level headline with
--oracle_gt, else video ROC-AUC), its figures, and the test figures at the validation epoch. test.py copies
it into test_metrics.json ("oracle") when it scores the same test list; aggregate.py shows it as
oracle columns.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from scripts.core.errors import MateError
from scripts.data.crops import crop_video
from scripts.data.framegt import dataset_of, read_annotations
from scripts.data.manifest import read_manifest
from scripts.dataset import FeatureDataset
from scripts.evaluation.evaluation import frame_headline, frames_of
from scripts.evaluation.metrics import frame_ap_trapezoid, frame_auc, roc_auc
from scripts.evaluation.scoring import average_crops, score_dataset

SELECTION = ("test-oracle: the epoch with the highest {metric} on {test_list} itself, as the peers select; an "
             "upper bound on what the model can reach, not a result")


class Oracle:
    """The test manifest of --oracle_test_list, scored after every epoch."""

    def __init__(self, args: argparse.Namespace, train_entries: list, frames_per_snippet: int):
        self.test_list, self.gt = Path(args.oracle_test_list), args.oracle_gt
        entries = read_manifest(self.test_list, require_both_labels=True)
        video = lambda e: crop_video(e.name) or e.name  # noqa: E731
        shared = sorted({video(e) for e in entries} & {video(e) for e in train_entries})
        if shared:
            raise MateError(f"{self.test_list}: {len(shared)} videos are also in {args.train_list} (e.g. "
                            f"{shared[:3]}); an oracle test list must be the held-out test set")
        self.ds = FeatureDataset(entries, num_segments=None, crop_mode=args.crop_mode, cache_dtype=args.cache_dtype,
                                 progress=not args.no_progress, workers=args.num_workers)
        self.metric = "video_roc_auc"
        if self.gt is not None:
            if not self.ds.is_sequence:
                raise MateError(f"--oracle_gt {self.gt}: frame-level metrics need sequence features [T, D]; "
                                f"{self.test_list} holds maps")
            self.annotations = read_annotations(self.gt)  # read once, aligned every epoch
            self.metric = frame_headline(dataset_of(self.annotations))
        self.frames_per_snippet, self.batch_size = frames_per_snippet, args.eval_batch_size

    def check_shape(self, train_ds: FeatureDataset) -> None:
        (C, _, H, W), (tC, _, tH, tW) = train_ds.feature_shape, self.ds.feature_shape
        if (C, H, W) != (tC, tH, tW) or train_ds.is_sequence != self.ds.is_sequence:
            raise MateError(f"{self.test_list}: features [C={tC}, H={tH}, W={tW}] differ from the training "
                            f"features [C={C}, H={H}, W={W}]")

    def score(self, model, device) -> dict[str, float]:
        """This epoch's test figures: oracle_video_roc_auc, and with --oracle_gt the frame-level ones."""
        view, scores = average_crops(self.ds, score_dataset(model, self.ds, device=device, batch_size=self.batch_size),
                                     source=str(self.test_list))
        row = {"oracle_video_roc_auc": roc_auc(view.labels.numpy(), scores.video)}
        if self.gt is not None:
            # the two figures only: test.py's per-class tables would cost seconds per epoch on UCF-Crime's 1.1M frames
            gt = frames_of(view, scores, self.annotations, self.gt, self.frames_per_snippet)
            row.update(oracle_frame_roc_auc=frame_auc(gt.labels, gt.scores),
                       oracle_frame_ap=frame_ap_trapezoid(gt.labels, gt.scores))
        return row

    def record(self, history: list[dict[str, Any]], val_epoch: int) -> dict[str, Any]:
        """oracle.json: the oracle epoch (first argmax of the per-epoch test figure) and its figures, and the
        test figures at the validation-selected epoch."""
        key = f"oracle_{self.metric}"
        scored = [row for row in history if key in row and not math.isnan(row[key])]
        if not scored:
            raise MateError(f"{self.test_list}: no epoch has a finite {self.metric}")
        best = max(scored, key=lambda row: row[key])  # max keeps the first of equal values
        figures = lambda row: {k.removeprefix("oracle_"): v for k, v in row.items() if k.startswith("oracle_")}  # noqa: E731
        at_val = next((row for row in history if row["epoch"] == val_epoch), None)
        return {"selection": SELECTION.format(metric=self.metric, test_list=self.test_list), "metric": self.metric,
                "epoch": best["epoch"], **figures(best), "value": best[key], "val_epoch": val_epoch,
                "at_val_epoch": figures(at_val) if at_val else None, "test_list": str(self.test_list),
                "test_list_resolved": str(self.test_list.resolve()), "gt": None if self.gt is None else str(self.gt)}
