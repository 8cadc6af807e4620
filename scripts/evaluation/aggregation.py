"""Aggregating run folders (aggregate.py): read test.py's outputs, mean ± std over folds, pooled
bootstrap CIs, and the paired comparison of two experiments' fold ensembles on their common videos.

A run folder holds `test_metrics.json` and `predictions.csv` (test.py) and, for older runs whose
test_metrics.json lacks the best validation epoch, `metrics.csv` (main.py). Frame-level ROC-AUC and AP
come from test_metrics.json's `frame` part when test.py ran with --gt (nan otherwise), so folds of
sequence features get their mean ± std too. Faults in those files are MateErrors naming the file (and line).
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scripts.core.errors import MateError
from scripts.evaluation.metrics import bootstrap_ci, delong_test, paired_bootstrap, pr_auc, roc_auc, wilcoxon_signed_rank

PREDICTION_COLUMNS = ("video", "label", "class", "score")
_FOLD_SUFFIX = re.compile(r"[_-]?fold[_-]?(\d+)$")
# run_folds.sh names runs <experiment>_s<seed>_fold<k>; older loops named them <experiment>_fold<k>
_SEED_FOLD_SUFFIX = re.compile(r"_s(\d+)_fold(\d+)$")


# ------------------------------------------------------------------------------------ loading


@dataclass(frozen=True)
class Predictions:
    """One run's predictions.csv: per test video its name, label (0/1), class and score."""

    videos: list[str]
    labels: np.ndarray  # [N] int 0/1
    classes: list[str]
    scores: np.ndarray  # [N] float


@dataclass(frozen=True)
class Run:
    """One run folder's numbers: the best validation epoch's and the test set's."""

    name: str
    path: Path
    best_epoch: int | None
    val_roc_auc: float
    val_pr_auc: float
    test_roc_auc: float
    test_pr_auc: float
    predictions: Predictions
    frame_roc_auc: float = math.nan  # frame level (test.py --gt); nan when the run has none
    frame_pr_auc: float = math.nan  # average_precision_score (column frame_ap_sklearn)
    frame_dataset: str | None = None  # the benchmark the annotation file named: UCF-Crime, XD-Violence
    frame_ap: float = math.nan  # the peers' trapezoidal AP (nan for runs tested before it was recorded)
    oracle: dict | None = None  # main.py --oracle_test_list: the best epoch on the test set and its figures


def read_predictions(path: Path) -> Predictions:
    """Read test.py's predictions.csv (header video,label,class,score); a fault names the file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise MateError(f"{path}: cannot read ({exc.strerror})") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in PREDICTION_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise MateError(f"{path}: missing column(s) {', '.join(missing)}; expected the header "
                        f"{','.join(PREDICTION_COLUMNS)}")
    videos, labels, classes, scores = [], [], [], []
    for line_no, row in enumerate(reader, start=2):
        where = f"{path}:{line_no}"
        if row["label"] not in ("0", "1"):
            raise MateError(f"{where}: label '{row['label']}' is not 0 or 1")
        try:
            score = float(row["score"])
        except (TypeError, ValueError):
            raise MateError(f"{where}: score '{row['score']}' is not a number") from None
        if not math.isfinite(score):
            raise MateError(f"{where}: score is {score}")
        videos.append(row["video"])
        labels.append(int(row["label"]))
        classes.append(row["class"])
        scores.append(score)
    if not videos:
        raise MateError(f"{path}: no predictions")
    if len(set(videos)) != len(videos):
        dup = next(v for v in videos if videos.count(v) > 1)
        raise MateError(f"{path}: video '{dup}' appears more than once")
    if len(set(labels)) < 2:
        raise MateError(f"{path}: only one class (all labels {labels[0]}); ROC-AUC needs normal "
                        f"and anomalous test videos")
    return Predictions(videos, np.array(labels, dtype=np.int64), classes, np.array(scores, dtype=np.float64))


def best_validation(path: Path) -> tuple[int, float, float] | None:
    """(epoch, val_roc_auc, val_pr_auc) of metrics.csv's best val_roc_auc row (the earliest on a
    tie, as training keeps the first best); None when the file or any validation number is absent."""
    if not path.is_file():
        return None
    reader = csv.DictReader(io.StringIO(path.read_text()))
    missing = [c for c in ("epoch", "val_roc_auc", "val_pr_auc") if c not in (reader.fieldnames or [])]
    if missing:
        raise MateError(f"{path}: missing column(s) {', '.join(missing)}")
    best = None
    for line_no, row in enumerate(reader, start=2):
        try:
            epoch, roc, pr = int(row["epoch"]), float(row["val_roc_auc"]), float(row["val_pr_auc"] or "nan")
        except (TypeError, ValueError):
            if not row["val_roc_auc"]:  # an epoch without validation
                continue
            raise MateError(f"{path}:{line_no}: epoch or validation AUC is not a number") from None
        if math.isfinite(roc) and (best is None or roc > best[1]):
            best = (epoch, roc, pr)
    return best


def _float(value, path: Path, key: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MateError(f"{path}: '{key}' is not a number: {value!r}") from None


def load_run(folder: Path) -> Run:
    """A run folder's numbers and predictions; a missing file is a one-line MateError."""
    if not folder.is_dir():
        raise MateError(f"{folder}: no such run folder (a shell glob that matched nothing?)")
    metrics_path, predictions_path = folder / "test_metrics.json", folder / "predictions.csv"
    for path in (metrics_path, predictions_path):
        if not path.is_file():
            raise MateError(f"{path}: missing; run test.py on this run first")
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError) as exc:
        raise MateError(f"{metrics_path}: not readable JSON ({exc})") from None
    if not isinstance(metrics, dict):
        raise MateError(f"{metrics_path}: expected a JSON object")
    for key in ("roc_auc", "pr_auc"):
        if key not in metrics:
            raise MateError(f"{metrics_path}: no '{key}'; run test.py on this run again")
    if "best_epoch" in metrics and "val_roc_auc" in metrics:
        epoch = metrics["best_epoch"]
        best = (None if epoch is None else int(epoch), _float(metrics["val_roc_auc"], metrics_path, "val_roc_auc"),
                _float(metrics.get("val_pr_auc"), metrics_path, "val_pr_auc"))
    else:
        best = best_validation(folder / "metrics.csv") or (None, math.nan, math.nan)
    frame = metrics.get("frame") or {}
    if not isinstance(frame, dict):
        raise MateError(f"{metrics_path}: 'frame' must be a JSON object")
    return Run(name=folder.name, path=folder, best_epoch=best[0], val_roc_auc=best[1], val_pr_auc=best[2],
               test_roc_auc=_float(metrics["roc_auc"], metrics_path, "roc_auc"),
               test_pr_auc=_float(metrics["pr_auc"], metrics_path, "pr_auc"),
               predictions=read_predictions(predictions_path),
               frame_roc_auc=_float(frame.get("roc_auc"), metrics_path, "frame.roc_auc"),
               frame_pr_auc=_float(frame.get("pr_auc"), metrics_path, "frame.pr_auc"),
               # test.py before XD-Violence support read UCF-Crime's forms only
               frame_dataset=frame.get("dataset", "UCF-Crime") if frame else None,
               frame_ap=_float(frame.get("frame_ap"), metrics_path, "frame.frame_ap"),
               oracle=metrics.get("oracle"))


def load_runs(folders: list[Path], flag: str) -> list[Run]:
    """Load run folders in the given order, each once."""
    unique = list(dict.fromkeys(f.resolve() for f in folders))
    if not unique:
        raise MateError(f"no runs given: pass {flag} runs/<exp_name>_fold*")
    return [load_run(f) for f in unique]


# ---------------------------------------------------------------------------------- numbers


def experiment_name(run_name: str) -> str:
    """The experiment a run belongs to: its name without the `_s<seed>_fold<k>` or `_fold<k>` suffix."""
    suffix = _SEED_FOLD_SUFFIX if _SEED_FOLD_SUFFIX.search(run_name) else _FOLD_SUFFIX
    return suffix.sub("", run_name) or run_name


def seed_and_fold(run_name: str) -> tuple[int | None, int] | None:
    """(seed, fold) of `<experiment>_s<seed>_fold<k>`, (None, fold) of `<experiment>_fold<k>`, else None."""
    m = _SEED_FOLD_SUFFIX.search(run_name)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = _FOLD_SUFFIX.search(run_name)
    return (None, int(m.group(1))) if m else None


def mean_ci(values, level: float = 0.95, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """Student-t confidence interval of the mean of the finite values (seeds x folds as samples of the
    training's variation), clipped to `bounds` (every figure here is an AUC or AP in [0, 1]); nan with fewer
    than two values."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(max(bounds[0], v.mean() - half)), float(min(bounds[1], v.mean() + half))


def mean_std(values) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for one value) of the finite values; nan when there are none."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def pooled(runs: list[Run], n_boot: int, seed: int) -> dict:
    """ROC-AUC and AP of all runs' predictions concatenated, with stratified-bootstrap 95% CIs."""
    y = np.concatenate([r.predictions.labels for r in runs])
    s = np.concatenate([r.predictions.scores for r in runs])
    names = [v for r in runs for v in r.predictions.videos]
    return {"roc_auc": roc_auc(y, s), "pr_auc": pr_auc(y, s),
            "roc_auc_ci": bootstrap_ci(y, s, roc_auc, n_boot=n_boot, seed=seed),
            "pr_auc_ci": bootstrap_ci(y, s, pr_auc, n_boot=n_boot, seed=seed),
            "n": int(y.size), "n_videos": len(set(names)), "n_repeated": len(names) - len(set(names))}


def fold_ensemble(runs: list[Run]) -> dict[str, tuple[int, float]]:
    """{video: (label, score averaged over the runs that scored it)}; a video whose label differs
    between runs is an error."""
    labels: dict[str, tuple[int, Path]] = {}
    sums: dict[str, list[float]] = {}
    for r in runs:
        p = r.predictions
        for video, label, score in zip(p.videos, p.labels.tolist(), p.scores.tolist()):
            if video in labels and labels[video][0] != label:
                raise MateError(f"{r.path / 'predictions.csv'}: video '{video}' has label {label}, but "
                                f"{labels[video][1] / 'predictions.csv'} gives {labels[video][0]}")
            labels.setdefault(video, (label, r.path))
            sums.setdefault(video, []).append(score)
    return {v: (labels[v][0], float(np.mean(sums[v]))) for v in labels}


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def pair_runs(runs_a: list[Run], runs_b: list[Run]) -> list[tuple[Run, Run]] | None:
    """Pair the runs of two experiments: by (seed, fold) when both name them (`_s<seed>_fold<k>` or
    `_fold<k>`, no seed matching no seed), keeping the pairs both have; else in natural name order when
    the counts agree; None when they cannot be paired."""
    def keyed(runs):
        found = [seed_and_fold(r.name) for r in runs]
        return None if None in found or len(set(found)) < len(runs) else dict(zip(found, runs))

    ka, kb = keyed(runs_a), keyed(runs_b)
    if ka and kb:
        common = sorted(set(ka) & set(kb), key=lambda k: (k[0] is not None, k[0] or 0, k[1]))
        if common:
            return [(ka[k], kb[k]) for k in common]
    if len(runs_a) == len(runs_b):
        key = lambda r: _natural_key(r.name)  # noqa: E731
        return list(zip(sorted(runs_a, key=key), sorted(runs_b, key=key)))
    return None


def compare(runs_a: list[Run], runs_b: list[Run], n_boot: int, seed: int) -> dict:
    """Paired comparison of two experiments' fold ensembles on their common test videos."""
    ens_a, ens_b = fold_ensemble(runs_a), fold_ensemble(runs_b)
    common = sorted(set(ens_a) & set(ens_b))
    name_a, name_b = experiment_name(runs_a[0].name), experiment_name(runs_b[0].name)
    if not common:
        raise MateError(f"no test video in common between {name_a} ({runs_a[0].path / 'predictions.csv'}, "
                        f"...) and {name_b} ({runs_b[0].path / 'predictions.csv'}, ...); compare runs "
                        f"scored on the same test list")
    for v in common:
        if ens_a[v][0] != ens_b[v][0]:
            raise MateError(f"video '{v}' has label {ens_a[v][0]} in {name_a}'s predictions but "
                            f"{ens_b[v][0]} in {name_b}'s")
    y = np.array([ens_a[v][0] for v in common])
    if y.min() == y.max():
        raise MateError(f"the {len(common)} videos common to {name_a} and {name_b} have only one class "
                        f"(all labels {y[0]}); ROC-AUC needs both")
    sa = np.array([ens_a[v][1] for v in common])
    sb = np.array([ens_b[v][1] for v in common])
    delong = delong_test(y, sa, sb)
    half = 1.959963984540054 * delong["se"]  # z of the two-sided 95% normal interval
    pairs = pair_runs(runs_a, runs_b)
    fold_deltas = [(a.name, b.name, a.test_roc_auc - b.test_roc_auc) for a, b in pairs or []]
    return {"name_a": name_a, "name_b": name_b, "n_common": len(common),
            "dropped_a": len(ens_a) - len(common), "dropped_b": len(ens_b) - len(common),
            "roc_auc_a": roc_auc(y, sa), "roc_auc_b": roc_auc(y, sb),
            "pr_auc_a": pr_auc(y, sa), "pr_auc_b": pr_auc(y, sb),
            "delong": {**delong, "ci_low": delong["delta"] - half, "ci_high": delong["delta"] + half},
            "bootstrap": paired_bootstrap(y, sa, sb, n_boot=n_boot, seed=seed),
            "fold_deltas": fold_deltas if pairs else None,
            "fold_delta_mean_std": mean_std([d for *_, d in fold_deltas]) if pairs else None,
            # the test over matched (seed, fold) pairs: each pair trained on the same data with the same seed
            "wilcoxon": wilcoxon_signed_rank([d for *_, d in fold_deltas]) if pairs else None}


# Run attribute -> the level-named column (the CSV also keeps the attribute's older name, which scripts read)
SUMMARY_COLUMNS = {"val_roc_auc": "val_video_roc_auc", "val_pr_auc": "val_video_pr_auc",
                   "test_roc_auc": "test_video_roc_auc", "test_pr_auc": "test_video_pr_auc",
                   "frame_roc_auc": "frame_roc_auc", "frame_ap": "frame_ap", "frame_pr_auc": "frame_ap_sklearn"}
# main.py --oracle_test_list: the test figure at the epoch best on the test set (not a headline; docs/benchmarks.md)
ORACLE_COLUMNS = ("oracle_video_roc_auc", "oracle_frame_roc_auc", "oracle_frame_ap")


def oracle_value(run: Run, column: str) -> float:
    return math.nan if not run.oracle else float(run.oracle.get(column.removeprefix("oracle_"), math.nan) or math.nan)


def experiment_summary(runs: list[Run], n_boot: int, seed: int) -> dict:
    """Per-column mean ± std and a t-interval of the mean over the runs (seeds x folds; frame and oracle
    columns over the runs that have them), the pooled test numbers, the seeds and folds counted, and the
    benchmark(s) the frame numbers were measured on."""
    framed = [r for r in runs if math.isfinite(r.frame_roc_auc) or math.isfinite(r.frame_pr_auc)]
    values = {c: [getattr(r, c) for r in runs] for c in SUMMARY_COLUMNS}
    values.update({c: [oracle_value(r, c) for r in runs] for c in ORACLE_COLUMNS})
    keys = [seed_and_fold(r.name) for r in runs]
    return {"name": experiment_name(runs[0].name),
            "mean_std": {c: mean_std(v) for c, v in values.items()},
            "ci": {c: mean_ci(v) for c, v in values.items()},
            "n_seeds": len({k[0] for k in keys if k}) or 1, "n_folds": len({k[1] for k in keys if k}) or len(runs),
            "pooled": pooled(runs, n_boot, seed),
            "n_frame_runs": len(framed), "n_oracle_runs": sum(r.oracle is not None for r in runs),
            "frame_datasets": sorted({r.frame_dataset for r in framed if r.frame_dataset})}


def default_out(runs: list[Path], other: list[Path] | None) -> Path:
    """runs/aggregate_<experiment>[_vs_<other>].csv: beside the first run folder."""
    name = experiment_name(runs[0].resolve().name)
    if other:
        name += "_vs_" + experiment_name(other[0].resolve().name)
    return runs[0].resolve().parent / f"aggregate_{name}.csv"

