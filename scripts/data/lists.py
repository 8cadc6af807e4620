"""Building manifests from a feature folder: official UCF-Crime splits, other split files (XD-Violence's
lists too) or a stratified split. Labels and classes come from the names (scripts/manifest.infer_label,
infer_class: UCF-Crime's rule, XD-Violence's label codes).

The official split files ship in data/ucf_crime/ (docs/design.md §2), so a folder of UCF-Crime
features gets the split every published number used, with no download and no flag.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from sklearn.model_selection import train_test_split

from scripts.core.errors import MateError
from scripts.core.fileio import read_lines
from scripts.data.manifest import VideoEntry, infer_class, infer_label
from scripts.data.xd_violence import video_name

UCF_CRIME_DIR = Path(__file__).resolve().parents[2] / "data" / "ucf_crime"
OFFICIAL_TRAIN = UCF_CRIME_DIR / "Anomaly_Train.txt"  # 1,610 videos: 810 anomalous, 800 normal
OFFICIAL_TEST = UCF_CRIME_DIR / "Anomaly_Test.txt"  # 290 videos: 140 anomalous, 150 normal


def scan_features(features_dir: str | Path) -> dict[str, Path]:
    """Every `.npy` under `features_dir` by video name (file stem); a name found twice is an error."""
    root = Path(features_dir)
    if not root.is_dir():
        raise MateError(f"{root}: features folder not found")
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.npy")):
        if path.name.startswith("."):
            continue  # temp files of an interrupted atomic write
        if path.stem in found:
            raise MateError(f"{root}: video '{path.stem}' has two feature files: {found[path.stem]} and {path}")
        found[path.stem] = path
    if not found:
        raise MateError(f"{root}: no .npy feature files found")
    return found


def entry_for(path: Path, root: Path) -> VideoEntry:
    rel = path.relative_to(root)
    label = infer_label(rel)
    return VideoEntry(path=path, label=label, cls=infer_class(rel, label))


def read_split(path: str | Path) -> list[str]:
    """Video names of a split file, in its order: `Abuse/Abuse001_x264.mp4` -> `Abuse001_x264`; an
    XD-Violence list of per-crop feature files (`.../Bad.Boys.1995__#01-11-55_01-12-40_label_B2-0-0__0.npy`,
    `__1` ...) names each video once, without the crop and with the dots of its name."""
    lines = read_lines(path, "split file")
    names = list(dict.fromkeys(video_name(line.strip()) for line in lines
                               if line.strip() and not line.startswith("#")))
    if not names:
        raise MateError(f"{path}: split file lists no videos")
    return names


def holds_ucf_crime(features_dir: str | Path) -> bool:
    """Whether at least half of the folder's feature files are named like UCF-Crime's official videos."""
    found = scan_features(features_dir)
    official = set(read_split(OFFICIAL_TRAIN)) | set(read_split(OFFICIAL_TEST))
    return 2 * sum(name in official for name in found) >= len(found)


@dataclass
class SplitResult:
    train: list[VideoEntry]
    test: list[VideoEntry]
    missing: dict[str, list[str]] = field(default_factory=dict)  # split file -> names without features
    unused: list[str] = field(default_factory=list)  # feature files in no split


def split_official(features_dir: str | Path, train_split: str | Path = OFFICIAL_TRAIN,
                   test_split: str | Path = OFFICIAL_TEST) -> SplitResult:
    """Map each video of the official split files to its feature file; report the missing ones.

    Each list holds the anomalous videos in the split file's order, then the normal ones in its
    order: the order of the published manifests, on which the published folds depend (UCF-Crime's
    Anomaly_Train.txt lists Vandalism after the normal videos, so file order alone differs).
    """
    root = Path(features_dir)
    found = scan_features(root)
    result = SplitResult(train=[], test=[])
    for split_file, target in ((train_split, result.train), (test_split, result.test)):
        for name in read_split(split_file):
            if name in found:
                target.append(entry_for(found[name], root))
            else:
                result.missing.setdefault(str(split_file), []).append(name)
        target.sort(key=lambda e: -e.label)  # stable: anomalous first, each part in file order
    listed = {e.name for e in result.train + result.test}
    both = listed & set(read_split(train_split)) & set(read_split(test_split))
    if both:
        raise MateError(f"{train_split}: {len(both)} videos are also in {test_split}, e.g. {sorted(both)[:3]}")
    result.unused = sorted(set(found) - listed)
    return result


def split_stratified(features_dir: str | Path, *, test_ratio: float = 0.2, seed: int = 0) -> SplitResult:
    """A stratified train/test split of every feature file, by class (by label if a class is tiny)."""
    if not 0.0 < test_ratio < 1.0:
        raise MateError(f"--test_ratio: must lie in (0, 1), got {test_ratio}")
    root = Path(features_dir)
    entries = [entry_for(p, root) for p in scan_features(root).values()]
    strata = [e.cls for e in entries]
    counts = {c: strata.count(c) for c in set(strata)}
    if min(counts.values()) < 2:
        strata = [str(e.label) for e in entries]  # a class with one video cannot be split by class
    labels = {e.label for e in entries}
    if len(labels) < 2:
        raise MateError(f"{root}: every feature file is {'normal' if labels == {0} else 'anomalous'}; "
                        "a split needs both")
    try:
        train, test = train_test_split(entries, test_size=test_ratio, random_state=seed, stratify=strata)
    except ValueError as exc:
        raise MateError(f"{root}: cannot split {len(entries)} videos with --test_ratio {test_ratio} ({exc})") from None
    order = {e.path: i for i, e in enumerate(entries)}
    return SplitResult(train=sorted(train, key=lambda e: order[e.path]),
                       test=sorted(test, key=lambda e: order[e.path]))
