"""Stratified K-fold train/val manifests and their check (docs/design.md §2, Folds).

Fold i's val part is the i-th of K stratified parts of the training list; its train part is the rest.
Two rules make the parts:
- "label" (the default, the published rule): scikit-learn's `StratifiedKFold(n_splits=K,
  shuffle=True, random_state=seed)` over the list's lines in file order, stratified by label. With
  seed 42 and the published manifest order it gives AIx699/MATE's published folds exactly.
- "class": stratified by label and, within a label, by class; independent of the list's order.
Videos are compared by name (the feature file's stem, `Abuse001_x264`), never by path, so the same
video listed under another feature folder still counts as the same video (and as a leak).
"""
from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from scripts.core.cli import OneLineParser
from scripts.core.errors import MateError
from scripts.data.crops import crop_groups, crop_video, per_video
from scripts.data.manifest import (VideoEntry, check_both_labels, companion_test_manifest, format_entry,
                              read_manifest, write_manifest)

Fold = tuple[list[VideoEntry], list[VideoEntry]]  # (train, val)
LABEL_NAMES = ("Normal", "Abnormal")  # label 0, label 1: the wording of the published fold summary
STRATIFY_RULES = ("label", "class")
PUBLISHED_SEED = 42  # the random_state of the published folds


def list_args_parser() -> argparse.ArgumentParser:
    """Flags shared by StratifiedKFold.py and StratifiedKFold_verify.py (used through `parents=`)."""
    parser = OneLineParser(add_help=False)
    parser.add_argument("--rgb_list", type=Path, required=True,
                        help="training manifest to split (required); path-only lines get label and "
                             "class from the name, as in the published lists")
    parser.add_argument("--k", type=int, default=5,
                        help="number of folds (default: 5); each label needs at least K videos")
    parser.add_argument("--test_list", type=Path, default=None,
                        help="test manifest, copied to fold{i}_test.txt; no test video may be in any "
                             "train or val part (default: the test manifest named in --rgb_list's "
                             "header by makelist.py, else the file named like it with 'test' for "
                             "'train'; none if neither exists)")
    return parser


def resolve_test_list(rgb_list: Path, test_list: Path | None) -> tuple[Path | None, str]:
    """The test manifest to use and a line saying where it came from (or that there is none)."""
    if test_list is not None:
        return test_list, f"test list: {test_list} (--test_list)"
    found = companion_test_manifest(rgb_list)
    if found is not None:
        return found, f"test list: {found} (the test manifest of {rgb_list.name}; --test_list to choose another)"
    return None, (f"test list: none ({rgb_list.name}'s header names no test manifest and no file named "
                  f"like it with 'test' for 'train' exists); pass --test_list for fold{{i}}_test.txt")


def _sort_key(e: VideoEntry) -> tuple:
    return (e.label, e.cls, e.name)


def check_unique_names(entries: Sequence[VideoEntry], *, source: str) -> None:
    """Folds compare videos by name, so one name listed twice (under two paths) is ambiguous."""
    seen: dict[str, Path] = {}
    for e in entries:
        if e.name in seen:
            raise MateError(f"{source}: video '{e.name}' is listed twice ({seen[e.name]} and {e.path})")
        seen[e.name] = e.path


def _check_foldable(entries: Sequence[VideoEntry], k: int, source: str) -> None:
    if k < 2:
        raise MateError(f"--k {k}: need at least 2 folds")
    check_both_labels(entries, source=source)
    check_unique_names(entries, source=source)
    for label in (0, 1):
        n = sum(e.label == label for e in entries)
        if n < k:
            raise MateError(f"{source}: only {n} {LABEL_NAMES[label].lower()} videos, "
                            f"fewer than --k {k} folds (every val part needs one)")


def label_folds(entries: Sequence[VideoEntry], k: int = 5, seed: int = PUBLISHED_SEED, *,
                source: str = "video list") -> list[Fold]:
    """The published rule: scikit-learn's StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    over `entries` in list order, stratified by label. Both parts keep the list's order."""
    from sklearn.model_selection import StratifiedKFold  # the rule is scikit-learn's, not a copy of it

    _check_foldable(entries, k, source)
    labels = [e.label for e in entries]
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [([entries[i] for i in train], [entries[i] for i in val])
            for train, val in splitter.split(list(range(len(entries))), labels)]


def make_folds(entries: Sequence[VideoEntry], k: int = 5, seed: int = PUBLISHED_SEED, *,
               stratify: str = "label", source: str = "video list") -> list[Fold]:
    """K (train, val) folds by `stratify` rule: "label" (published) or "class"."""
    assert stratify in STRATIFY_RULES, f"stratify must be one of {STRATIFY_RULES}, got {stratify!r}"
    groups = crop_groups(entries, source=source)
    if groups is not None:  # a per-crop list: fold its videos, then give each fold part all their crops
        crops = {v: [entries[i] for i in idx] for v, idx in groups}
        folds = make_folds(per_video(entries, groups), k, seed, stratify=stratify, source=source)
        expand = lambda part: [c for e in part for c in crops[e.name]]  # noqa: E731
        return [(expand(train), expand(val)) for train, val in folds]
    if stratify == "label":
        return label_folds(entries, k, seed, source=source)
    return stratified_folds(entries, k, seed, source=source)


def stratified_folds(entries: Sequence[VideoEntry], k: int = 5, seed: int = 0, *,
                     source: str = "video list") -> list[Fold]:
    """Split `entries` into K (train, val) folds, stratified by label and, within a label, by class.

    Each label's videos are grouped by class, shuffled within the class with `seed`, and dealt
    round-robin to the K val parts. The deal continues across classes and labels, so every
    contiguous run (a class, a label) lands as evenly as possible: counts differ by at most 1
    across folds, and with 800 normal / 810 anomalous videos each val part is exactly 160 / 162.

    Args:
        entries (Sequence[VideoEntry]): the training list.
        k (int): number of folds, at least 2.
        seed (int): shuffling seed; the same seed gives the same folds.
        source (str): the list's file name, for error messages.
    """
    _check_foldable(entries, k, source)
    # Sorting by name first makes the folds independent of the list's order and of its folder.
    entries = sorted(entries, key=lambda e: e.name)
    rng = random.Random(seed)
    parts: list[list[VideoEntry]] = [[] for _ in range(k)]
    deal = 0
    for label in (0, 1):
        members = [e for e in entries if e.label == label]
        for cls in sorted({e.cls for e in members}):
            group = [e for e in members if e.cls == cls]
            rng.shuffle(group)
            for e in group:
                parts[deal % k].append(e)
                deal += 1
    folds = []
    for i in range(k):
        train = [e for j, part in enumerate(parts) if j != i for e in part]
        folds.append((sorted(train, key=_sort_key), sorted(parts[i], key=_sort_key)))
    return folds


def fold_paths(folds_dir: str | Path, i: int) -> dict[str, Path]:
    """The files of fold i (0-based): train, val and (optional) test manifests."""
    d = Path(folds_dir)
    return {part: d / f"fold{i}_{part}.txt" for part in ("train", "val", "test")}


def label_counts(entries: Sequence[VideoEntry]) -> tuple[int, int]:
    """(normal, abnormal) counts."""
    n_abnormal = sum(e.label for e in entries)
    return len(entries) - n_abnormal, n_abnormal


def _same_lines(path: Path, entries: Sequence[VideoEntry]) -> bool:
    """Whether an existing manifest lists exactly these entries (comments, the header, ignored)."""
    old = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return old == [format_entry(e, path.parent) for e in entries]


def write_folds(folds: Sequence[Fold], out_dir: str | Path, test_entries: Sequence[VideoEntry] | None = None,
                *, header: str = "", overwrite: bool = False) -> list[Path]:
    """Write fold{i}_train.txt, fold{i}_val.txt (and fold{i}_test.txt) for i = 0..K-1; return the paths.

    A fold file that already exists with other videos (another seed, K or list) is only replaced
    with `overwrite`: runs trained on the old folds would otherwise silently lose their split. All
    files are checked before any is written, so a refusal leaves the folder as it was.
    """
    plan: list[tuple[Path, list[VideoEntry], str]] = []
    for i, (train, val) in enumerate(folds):
        paths = fold_paths(out_dir, i)
        parts = {"train": train, "val": val}
        if test_entries is not None:
            parts["test"] = list(test_entries)
        for part, entries in parts.items():
            n0, n1 = label_counts(entries)
            note = f"fold{i} {part}: {len(entries)} videos (Normal {n0}, Abnormal {n1})"
            plan.append((paths[part], entries, f"{header}\n{note}" if header else note))
    if not overwrite:
        for path, entries, _ in plan:
            if path.exists() and not _same_lines(path, entries):
                raise MateError(f"{path}: already exists with other videos (another --seed, --k or "
                                f"list?); pass --overwrite to replace it")
    return [write_manifest(path, entries, header=h) for path, entries, h in plan]


@dataclass
class FoldReport:
    """What verify_folds found: per-fold (normal, abnormal) counts per part, and every problem."""

    counts: list[dict[str, tuple[int, int]]]  # fold -> {"Train": (n0, n1), "Val": ..., ["Test": ...]}
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def format_fold_summary(counts: Sequence[Mapping[str, tuple[int, int]]]) -> str:
    """The per-fold summary of the published README, folds numbered from 1 (Fold 1 = fold0 files)."""
    blocks = []
    for i, parts in enumerate(counts):
        lines = [f"Fold {i + 1}:"]
        lines += [f"{part} -> Normal: {n0}, Abnormal: {n1}" for part, (n0, n1) in parts.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def fold_counts(train: Sequence[VideoEntry], val: Sequence[VideoEntry],
                test: Sequence[VideoEntry] | None = None) -> dict[str, tuple[int, int]]:
    counts = {"Train": label_counts(train), "Val": label_counts(val)}
    if test is not None:
        counts["Test"] = label_counts(test)
    return counts


def _read_fold(folds_dir: Path, i: int, k: int) -> dict[str, list[VideoEntry]]:
    """Fold i's parts by file name (`fold0_train.txt`: entries); the test file only if present."""
    paths = fold_paths(folds_dir, i)
    for part in ("train", "val"):
        if not paths[part].is_file():
            raise MateError(f"{paths[part]}: fold file not found (write {k} folds with "
                            f"StratifiedKFold.py --k {k} --out_dir {folds_dir})")
    # check_exists=False: checking a split needs the lists, not the feature files.
    return {p.name: read_manifest(p, check_exists=False) for p in paths.values() if p.is_file()}


def verify_folds(entries: Sequence[VideoEntry], folds_dir: str | Path, k: int,
                 test_entries: Sequence[VideoEntry] | None = None, *, source: str = "the list",
                 test_source: str = "the test list") -> FoldReport:
    """Read the K folds' files and check balance and leakage; every violation is one problem line.

    Checks: each fold's train and val are disjoint and together are the list (with its labels); the
    val parts are pairwise disjoint and cover the list; each label's val counts differ by at most 1
    across folds; no test video (from `test_entries` or any fold{i}_test.txt) is in a train or val.
    `source` and `test_source` name the two lists in the problem lines.
    """
    if k < 2:
        raise MateError(f"--k {k}: need at least 2 folds")
    folds_dir = Path(folds_dir)
    check_unique_names(entries, source=source)
    listed = {e.name: e.label for e in entries}
    files = [_read_fold(folds_dir, i, k) for i in range(k)]
    test_from: dict[str, str] = {}  # test video -> the file that lists it (first one wins)
    for fname, es in [(test_source, test_entries or [])] + [
            (n, es) for f in files for n, es in f.items() if n.endswith("_test.txt")]:
        for e in es:
            test_from.setdefault(e.name, fname)

    report = FoldReport(counts=[])
    problems = report.problems
    val_owner: dict[str, str] = {}  # video -> the first val file that lists it
    for i, f in enumerate(files):
        tr_name, va_name, te_name = (p.name for p in fold_paths(folds_dir, i).values())
        tr = {e.name: e.label for e in f[tr_name]}
        va = {e.name: e.label for e in f[va_name]}
        shown_test = test_entries if test_entries is not None else f.get(te_name)
        report.counts.append(fold_counts(f[tr_name], f[va_name], shown_test))
        for name in sorted(tr.keys() & va.keys()):
            problems.append(f"fold {i}: {name} is in both {tr_name} and {va_name}")
        videos = lambda part: {crop_video(n) for n in part} - {None}  # noqa: E731  (per-crop lists)
        for video in sorted(videos(tr) & videos(va)):
            problems.append(f"fold {i}: crops of {video} are in both {tr_name} and {va_name}")
        for name in sorted(listed.keys() - tr.keys() - va.keys()):
            problems.append(f"fold {i}: {name} from {source} is in neither {tr_name} nor {va_name}")
        for fname, part in ((tr_name, tr), (va_name, va)):
            for name in sorted(part):
                if name in test_from:
                    problems.append(f"fold {i}: test video {name} (from {test_from[name]}) is in {fname}")
                elif name not in listed:
                    problems.append(f"fold {i}: {name} in {fname} is not in {source}")
                elif part[name] != listed[name]:
                    problems.append(f"fold {i}: {name} has label {part[name]} in {fname} "
                                    f"but {listed[name]} in {source}")
        for name in sorted(va):
            if name in val_owner:
                problems.append(f"{name} is in both {val_owner[name]} and {va_name}")
            val_owner.setdefault(name, va_name)
    for name in sorted(listed.keys() - val_owner.keys()):
        problems.append(f"{name} from {source} is in no fold's val file")
    crops = max(1, len(entries) // max(1, len({crop_video(e.name) or e.name for e in entries})))
    for label, word in enumerate(LABEL_NAMES):
        per_fold = [c["Val"][label] // crops for c in report.counts]  # videos, for a per-crop list
        if max(per_fold) - min(per_fold) > 1:
            problems.append(f"unbalanced folds: {word} val counts {per_fold} differ by more than 1")
    return report
