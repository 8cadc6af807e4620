"""test.py's work: score a test manifest with a checkpoint and write predictions and metrics (docs/design.md §6-7)."""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scripts.model import model_from_checkpoint
from scripts.models.checkpoint import load_checkpoint, output_folder
from scripts.dataset import FeatureDataset
from scripts.data.manifest import read_manifest
from scripts.core.errors import MateError, check_component
from scripts.data.feature_settings import check_test_features
from scripts.core.fileio import save_npy, write_json, write_text
from scripts.core.locks import exclusive_lock
from scripts.data.framegt import FrameGroundTruth, align, dataset_of, read_annotations
from scripts.evaluation.field_metrics import AP_DEFINITIONS as AP_DEFINITIONS_ALL
from scripts.evaluation.field_metrics import alarm_threshold, false_alarm_rate, format_far
from scripts.evaluation.metrics import frame_ap, frame_ap_trapezoid, frame_auc, plot_roc_pr, summarize, trapezoid_ap
from scripts.core.plots import new_figure, save_figure
from scripts.evaluation.scoring import Scores, average_crops, score_dataset
from scripts.core.devices import resolve_device, use_threads
from scripts.data.xd_violence import DATASET as XD_DATASET, parse_name as parse_xd_name


def fold_tag(fold: str | None, test_list: Path, checkpoint: Path) -> str | None:
    """X of preds_fold{X}.npy: --fold, else `fold<N>` in the manifest's name, else in the run's name."""
    if fold is not None:
        return check_component(str(fold), "--fold")  # X is part of a file name in the output folder
    for text in (test_list.stem, checkpoint.parent.name):
        match = re.search(r"fold_?(\d+)", text)
        if match:
            return match.group(1)
    return None


def check_features(ds: FeatureDataset, ckpt: dict[str, Any], test_list: Path, checkpoint: Path) -> None:
    """The test features must have the channels and space the model was trained on."""
    C, _, H, W = ckpt["feature"]["shape"]
    tC, _, tH, tW = ds.feature_shape
    if (tC, tH, tW) != (C, H, W) or ds.is_sequence != ckpt["feature"]["sequence"]:
        kind = lambda seq: "sequence" if seq else "map"  # noqa: E731
        raise MateError(f"{test_list}: {kind(ds.is_sequence)} features [C={tC}, H={tH}, W={tW}] of "
                        f"{ds.entries[0].path.name} differ from the {kind(ckpt['feature']['sequence'])} "
                        f"features [C={C}, H={H}, W={W}] the checkpoint {checkpoint} was trained on")


def plot_frame_curves(gt: FrameGroundTruth, video_scores: dict[str, float], out_dir: Path, n: int) -> list[Path]:
    """Frame-score curves with the annotated intervals shaded, for the n videos scored highest."""
    order = sorted(range(len(gt.names)), key=lambda i: -video_scores[gt.names[i]])[:n]
    paths = []
    for i in order:
        fig = new_figure(8, 2.8)
        ax = fig.add_subplot()
        frames = np.arange(len(gt.scores[i]))
        ax.fill_between(frames, 0, 1, where=gt.labels[i] > 0, color="C3", alpha=0.2, step="mid",
                        label="annotated anomaly")
        ax.plot(frames, gt.scores[i], color="C0", linewidth=1, label="frame score")
        ax.set(xlabel="frame", ylabel="score", ylim=(0, 1.02),
               title=f"{gt.names[i]} ({gt.classes[i]}): video score {video_scores[gt.names[i]]:.3f}")
        ax.legend(loc="upper right", fontsize=8)
        paths.append(save_figure(fig, out_dir / f"{gt.names[i]}.png"))
    return paths


def per_class_frame_metric(gt: FrameGroundTruth, metric) -> dict[str, float]:
    """`metric` (frame_auc or frame_ap) of each anomaly class: its videos' frames plus every normal
    video's frames, concatenated; classes sorted by name."""
    normal = [i for i, c in enumerate(gt.classes) if c == "Normal"]
    result = {}
    for cls in sorted(set(gt.classes) - {"Normal"}):
        keep = [i for i, c in enumerate(gt.classes) if c == cls] + normal
        result[cls] = metric([gt.labels[i] for i in keep], [gt.scores[i] for i in keep])
    return result


# Frame AP both ways, named (the peers' "AP" is the trapezoidal one; docs/benchmarks.md)
AP_DEFINITIONS = {"frame_ap": "auc(recall, precision) over precision_recall_curve, trapezoidal (RTFM, MGFN, UR-DMU, "
                              "PEL4VAD, BN-WVAD, XDVioDet)",
                  "frame_ap_sklearn": "average_precision_score, step-wise (scikit-learn; VadCLIP)"}


def frame_headline(dataset: str) -> str:
    """The frame-level figure a benchmark's peers publish: AP for XD-Violence, ROC-AUC otherwise
    (UCF-Crime, ShanghaiTech)."""
    return "frame_ap" if dataset == XD_DATASET else "frame_roc_auc"


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The one figure to quote for an evaluation, with its level and how its checkpoint was chosen: the
    benchmark's frame-level figure when frame GT and snippets exist, else video-level ROC-AUC (map
    features: one score per video), named so."""
    chosen = ("validation: the best epoch by validation ROC-AUC" if metrics.get("val_roc_auc") is not None
              else "none recorded (a checkpoint without validation numbers)")
    frame = metrics.get("frame")
    if frame:
        key = frame["headline"]
        return {"metric": key, "level": "frame", "value": frame[key], "benchmark": frame["dataset"],
                "selection": chosen}
    return {"metric": "video_roc_auc", "level": "video", "value": metrics["video_roc_auc"], "benchmark": None,
            "selection": chosen}


def frames_of(ds: FeatureDataset, scores: Scores, annotations: dict, gt_file: Path,
              frames_per_snippet: int) -> FrameGroundTruth:
    """Every test video's frame labels and frame scores (its snippet scores spread over its frames); sequence
    features only (frame_metrics and the oracle check that first)."""
    gt = align([e.name for e in ds.entries], [e.cls for e in ds.entries], scores.snippets,
               [e.path for e in ds.entries], annotations, labels=[e.label for e in ds.entries],
               unannotated_normal=dataset_of(annotations) == XD_DATASET, frames_per_snippet=frames_per_snippet,
               source=gt_file.name)
    if not gt.labels:
        raise MateError(f"{gt_file}: no test video could be matched to its annotation")
    return gt


def frame_metrics(ds: FeatureDataset, scores: Scores, gt_file: Path, frames_per_snippet: int,
                  plot_dir: Path | None = None, plot_videos: int = 0,
                  alarm: tuple[float | None, str] | None = None,
                  annotations: dict | None = None) -> dict[str, Any]:
    """Frame-level ROC-AUC and AP over all frames concatenated, on anomalous videos only, per class
    (`annotations`: gt_file already read, by run_test before the scoring).

    The annotation file's form names the benchmark (scripts/framegt.dataset_of): XD-Violence's form
    makes frame AP the headline (the number its peers publish) and scores normal videos the file does
    not list as normal on every frame; per-class tables use each video's manifest class (for XD-Violence
    names the first of their label codes), and videos with several classes are recorded with all of them."""
    if not ds.is_sequence:
        raise MateError(f"{gt_file}: frame-level metrics need sequence features [T, D]; these are maps")
    annotations = read_annotations(gt_file) if annotations is None else annotations
    dataset = dataset_of(annotations)
    gt = frames_of(ds, scores, annotations, gt_file, frames_per_snippet)
    result: dict[str, Any] = {"dataset": dataset, "headline": frame_headline(dataset),
                              "frame_roc_auc": frame_auc(gt.labels, gt.scores),
                              "frame_ap": frame_ap_trapezoid(gt.labels, gt.scores),
                              "frame_ap_sklearn": frame_ap(gt.labels, gt.scores), "ap_definitions": AP_DEFINITIONS}
    result.update(roc_auc=result["frame_roc_auc"], pr_auc=result["frame_ap_sklearn"])  # the older names
    anomalous = [i for i, lab in enumerate(gt.labels) if lab.any()]
    result["roc_auc_anomalous_videos"] = frame_auc([gt.labels[i] for i in anomalous], [gt.scores[i] for i in anomalous])
    result["per_class_roc_auc"] = per_class_frame_metric(gt, frame_auc)
    result["per_class_ap"] = per_class_frame_metric(gt, frame_ap)
    result["per_class_ap_trapezoid"] = per_class_frame_metric(gt, frame_ap_trapezoid)
    if alarm is not None:  # normal videos: those without an annotated frame
        normal = [s for lab, s in zip(gt.labels, gt.scores) if not lab.any()]
        result["false_alarm_rate"] = false_alarm_rate(np.concatenate(normal) if normal else np.zeros(0),
                                                      level="frame", threshold=alarm[0], threshold_from=alarm[1])
    if dataset == XD_DATASET:
        several = {name: list(xd.classes) for name in gt.names
                   for xd in [parse_xd_name(name)] if xd is not None and len(xd.classes) > 1}
        result["several_classes"] = several  # per-class tables count them under their first class
    result.update(n_videos=len(gt.labels), n_frames=int(sum(len(lab) for lab in gt.labels)),
                  n_unannotated_normal=len(gt.unannotated_normal), problems=gt.problems, unlisted=gt.unlisted)
    if plot_dir is not None and plot_videos > 0:
        by_name = {e.name: float(v) for e, v in zip(ds.entries, scores.video)}
        result["curves"] = [str(p) for p in plot_frame_curves(gt, by_name, plot_dir, plot_videos)]
    return result


def predictions_csv(ds: FeatureDataset, video_scores: np.ndarray) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["video", "label", "class", "score"])
    for entry, score in zip(ds.entries, video_scores):
        writer.writerow([entry.name, entry.label, entry.cls, f"{float(score):.9g}"])
    return buf.getvalue()


def load_for_scoring(checkpoint: Path, manifest: Path, *, device: torch.device, progress: bool = True,
                     require_both_labels: bool = True, force_settings: bool = False,
                     workers: int = 0) -> tuple[torch.nn.Module, dict[str, Any], FeatureDataset, str]:
    """The model rebuilt from a checkpoint (on `device`), a manifest's features checked against it (their
    extraction settings, from the sidecars, must be the training features'; `force_settings` only warns),
    and the line saying what that check found."""
    ckpt = load_checkpoint(checkpoint)
    model, _ = model_from_checkpoint(ckpt, source=checkpoint)
    entries = read_manifest(manifest, require_both_labels=require_both_labels)
    settings_check = check_test_features(entries, ckpt["feature"], test_list=manifest, checkpoint=checkpoint,
                                         force=force_settings)
    if settings_check.startswith("warning"):
        print(settings_check, file=sys.stderr)
    ds = FeatureDataset(entries, num_segments=None, crop_mode=ckpt["feature"]["crop_mode"], progress=progress,
                        workers=workers)
    check_features(ds, ckpt, manifest, checkpoint)
    return model.to(device), ckpt, ds, settings_check


ORACLE_FILE = "oracle.json"  # main.py --oracle_test_list's record in the run folder (scripts/training/oracle.py)


def oracle_for(checkpoint: Path, test_list: Path) -> dict[str, Any] | None:
    """The test-oracle record of a checkpoint's run folder when it was made on this same test list."""
    path = Path(checkpoint).parent / ORACLE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MateError(f"{path}: not readable JSON ({exc})") from None
    same = Path(record.get("test_list_resolved", "")).resolve() == Path(test_list).resolve()
    return record if same else None


TEST_LOCK_NAME = ".mate.test.lock"  # test.py's own lock in its output folder (main.py's is .mate.lock)


def run_test(args: argparse.Namespace) -> dict[str, Any]:
    """Score `args.test_list` with `args.checkpoint`; write the outputs; return test_metrics."""
    device = resolve_device(args.device)
    use_threads(args.threads)
    fold_tag(args.fold, Path(args.test_list), Path(args.checkpoint))  # a bad --fold refused before the work
    if args.out_dir:
        check_other_list(Path(args.out_dir), args.test_list, args.overwrite)  # before the work, when known
    model, ckpt, ds, settings_check = load_for_scoring(args.checkpoint, args.test_list, device=device,
                                                       progress=not args.no_progress, workers=args.num_workers,
                                                       force_settings=args.force_settings)
    annotations = None
    if args.gt is not None:  # the annotation read and matched before the scoring, not after it
        if not ds.is_sequence:
            raise MateError(f"{args.gt}: frame-level metrics need sequence features [T, D]; these are maps")
        annotations = read_annotations(args.gt)
    scores = score_dataset(model, ds, device=device, batch_size=args.batch_size, progress=not args.no_progress)
    ds, scores = average_crops(ds, scores, source=str(args.test_list))  # a per-crop list: the mean per video
    entries = ds.entries
    labels = ds.labels.numpy().astype(int)
    metrics = summarize(labels, scores.video, [e.cls for e in entries], n_boot=args.n_boot, seed=args.seed)
    stored = ckpt.get("metrics") or {}
    metrics["video_pr_auc_trapezoid"] = trapezoid_ap(labels, scores.video)
    metrics["ap_definitions"] = AP_DEFINITIONS_ALL
    alarm = alarm_threshold(args.threshold, known(stored.get("val_threshold")))
    metrics["false_alarm_rate"] = false_alarm_rate(scores.video[labels == 0], level="video", threshold=alarm[0],
                                                   threshold_from=alarm[1])
    metrics.update(best_epoch=ckpt.get("epoch"), val_roc_auc=known(stored.get("val_roc_auc")),
                   val_pr_auc=known(stored.get("val_pr_auc")), checkpoint=str(args.checkpoint),
                   test_list=str(args.test_list), extraction_check=settings_check,
                   # absolute too: the diagnostics find this evaluation from any folder (analysis_inputs.py)
                   checkpoint_resolved=str(Path(args.checkpoint).resolve()),
                   test_list_resolved=str(Path(args.test_list).resolve()))
    oracle = oracle_for(args.checkpoint, args.test_list)
    if oracle is not None:  # beside the validation-selected numbers, labelled; never the headline
        metrics["oracle"] = oracle
    out_dir = Path(args.out_dir) if args.out_dir else output_folder(args.checkpoint, ckpt)
    with exclusive_lock(out_dir / TEST_LOCK_NAME, what=f"test.py's output folder {out_dir}"):  # one writer at a time
        check_other_list(out_dir, args.test_list, args.overwrite)
        return write_results(args, ds, ckpt, scores, labels, metrics, out_dir, annotations)


def check_other_list(out_dir: Path, test_list: Path, overwrite: bool) -> None:
    """The fixed output names (docs/design.md §6) hold one test list's results: a folder holding another
    list's is refused without --overwrite (aggregate.py would compare the wrong scores); the same list
    again replaces its own, so a rerun (make demo) needs no flag."""
    path = out_dir / "test_metrics.json"
    if overwrite or not path.is_file():
        return
    try:
        record = json.loads(path.read_text())
        old = record.get("test_list_resolved") or str(Path(record["test_list"]).resolve())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise MateError(f"{path}: holds outputs test.py cannot read back; pass --overwrite to replace them, or "
                        "--out_dir elsewhere") from None
    if Path(old) != Path(test_list).resolve():
        raise MateError(f"{out_dir}: holds test.py's outputs for another test list ({old}); pass --overwrite to "
                        f"replace them with {test_list}'s, or --out_dir elsewhere")


def write_results(args: argparse.Namespace, ds, ckpt: dict[str, Any], scores: Scores, labels: np.ndarray,
                  metrics: dict[str, Any], out_dir: Path, annotations: dict | None = None) -> dict[str, Any]:
    """predictions.csv, preds_fold{X}.npy, test_metrics.json and the plots of one evaluation."""
    if args.gt is not None:
        far = metrics["false_alarm_rate"]
        metrics["frame"] = frame_metrics(ds, scores, args.gt, ckpt["feature"].get("frames_per_snippet", 16),
                                         plot_dir=out_dir / "plots" / "videos",
                                         plot_videos=0 if args.no_plots else args.plot_videos,
                                         alarm=(far["threshold"], far["threshold_from"]), annotations=annotations)
        metrics["false_alarm_rate"] = metrics["frame"]["false_alarm_rate"]  # the frame level, when there are frames
    metrics["headline"] = headline(metrics)
    tag = fold_tag(args.fold, Path(args.test_list), Path(args.checkpoint))
    preds = out_dir / (f"preds_fold{tag}.npy" if tag is not None else "preds.npy")
    write_text(out_dir / "predictions.csv", predictions_csv(ds, scores.video))
    save_npy(preds, scores.video.astype(np.float32))
    write_json(out_dir / "test_metrics.json", metrics)
    metrics["written"] = [str(out_dir / "predictions.csv"), str(preds), str(out_dir / "test_metrics.json")]
    if ds.is_sequence:  # the scores behind every frame figure, for the peers' eval code and aggregate.py
        from scripts.evaluation.snippet_outputs import write_snippet_scores

        suffix = f"_fold{tag}" if tag is not None else ""
        metrics["written"] += map(str, write_snippet_scores(out_dir, suffix, [e.name for e in ds.entries],
                                                            scores.snippets,
                                                            ckpt["feature"].get("frames_per_snippet", 16)))
    if not args.no_plots:
        metrics["written"] += map(str, plot_roc_pr(labels, scores.video, out_dir / "plots",
                                                   title=f"{out_dir.name}: {Path(args.test_list).name}"))
    return metrics


def known(value: Any) -> Any:
    """None for an unknown number (None or NaN: a published checkpoint has no validation metrics)."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def format_report(metrics: dict[str, Any]) -> str:
    """The short table test.py prints; unknown checkpoint numbers print as n/a."""
    lo, hi = metrics["roc_auc_ci"]
    plo, phi = metrics["pr_auc_ci"]
    val, epoch = known(metrics.get("val_roc_auc")), known(metrics.get("best_epoch"))
    lines = [f"{'videos':<22}{metrics['n_videos']} ({metrics['n_normal']} normal, {metrics['n_anomalous']} anomalous)",
             f"{'video ROC-AUC':<22}{metrics['roc_auc']:.4f}  [95% CI {lo:.4f}-{hi:.4f}]",
             f"{'video PR-AUC':<22}{metrics['pr_auc']:.4f}  [95% CI {plo:.4f}-{phi:.4f}]",
             f"{'val ROC-AUC (ckpt)':<22}{'n/a' if val is None else f'{val:.4f}'}  "
             f"(epoch {'n/a' if epoch is None else epoch})"]
    if metrics.get("false_alarm_rate"):
        lines.append(format_far(metrics["false_alarm_rate"]))
    if metrics.get("extraction_check"):
        lines.append(metrics["extraction_check"])
    per_class = {k: v for k, v in metrics.get("per_class_roc_auc", {}).items() if v == v}
    if per_class:
        lines.append("per-class ROC-AUC     " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(per_class.items())))
    frame = metrics.get("frame")
    if frame:
        lines += format_frame(frame)
    if metrics.get("headline"):
        h = metrics["headline"]
        lines.append(f"{'headline':<22}{h['metric']} {h['value']:.4f} ({h['level']} level"
                     + (f", {h['benchmark']}" if h["benchmark"] else ", no frame GT: not comparable to "
                        "frame-level results") + f"; checkpoint chosen by {h['selection'].split(':')[0]})")
    return "\n".join(lines)


def format_frame(frame: dict[str, Any]) -> list[str]:
    """The frame-level lines: the data set's headline first (XD-Violence: AP; UCF-Crime: ROC-AUC)."""
    counts = f"{frame['n_videos']} videos, {frame['n_frames']} frames"
    if frame.get("headline") in ("pr_auc", "frame_ap"):
        lines = [f"{'frame AP':<22}{frame.get('frame_ap', frame['pr_auc']):.4f}  ({frame['dataset']}'s headline, "
                 f"trapezoidal as the peers'; average_precision_score {frame['pr_auc']:.4f}; ROC-AUC "
                 f"{frame['roc_auc']:.4f}; {counts}, {frame.get('n_unannotated_normal', 0)} of them normal and "
                 f"not in the annotation file)"]
        per_class, name = frame.get("per_class_ap", {}), "per-class frame AP"
    else:
        lines = [f"{'frame ROC-AUC':<22}{frame['roc_auc']:.4f}  (AP {frame.get('frame_ap', math.nan):.4f} "
                 f"trapezoidal, {frame['pr_auc']:.4f} average_precision_score; anomalous videos "
                 f"only {frame['roc_auc_anomalous_videos']:.4f}; {counts})"]
        per_class, name = frame.get("per_class_roc_auc", {}), "per-class frame AUC"
    shown = {k: v for k, v in per_class.items() if v == v}
    if shown:
        lines.append(f"{name:<22}" + ", ".join(f"{k} {v:.3f}" for k, v in sorted(shown.items())))
    return lines
