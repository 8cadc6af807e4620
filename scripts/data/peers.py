"""The peers' feature lists and frame ground truth as they are published (import_peers.py; docs/benchmarks.md
has each fact's source repository).

Two UCF-Crime I3D families, never mixed:
    rtfm  RTFM, MGFN, S3R: one file per video, [T, 10, 2048] (ten crops), `Abuse001_x264_i3d.npy`; lists of
          one line per video (RTFM's are CRLF with Windows paths); UCF-Crime GT 1,114,144 frames (T = ceil(n/16)),
          ShanghaiTech `gt-sh.npy` 142,912 or per-video masks in `test_frame_mask/` (padded with their last label).
    wu    DeepMIL, UR-DMU, PEL4VAD, BN-WVAD (Wu et al.'s I3D): one file per crop, [T, 1024], `..._x264__3.npy`
          (PEL4VAD: crop 0 without `__0`; its ShanghaiTech crops `_3`); lists of one line per crop, the crops
          of a video on consecutive lines; UCF-Crime GT 1,109,680 frames, XD-Violence's `gt.npy` 2,330,384
          (five crops), ShanghaiTech (PEL4VAD's re-extraction) 140,112.
Labels follow the repos' own rules: UCF-Crime `Normal` in the name, XD-Violence `_label_A` normal, ShanghaiTech
`SS_VVVV` (four digits) anomalous and `SS_VVV` normal. The repos' index rule (the first 810 / 63 / 1,905 videos,
8,100 / 630 / 9,525 crop lines, are anomalous) is only cross-checked against the names: a list whose
anomalous videos do not all come first is refused in one line naming the first video that breaks it; a
list with its own 0/1 column (PEL4VAD's ShanghaiTech) is labelled by it, checked against the names.
A concatenated GT must have 16 x the summed snippet counts of its features (the peers repeat every snippet
score 16 times); a GT of the other family's length is named as such, never paired.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scripts.core.errors import MateError, check_component
from scripts.core.fileio import read_text
from scripts.data.manifest import NORMAL_CLASS, infer_class
from scripts.data.xd_violence import parse_name as parse_xd_name

FAMILIES = {"rtfm": "one [T, K, D] file per video (RTFM, MGFN, S3R)",
            "wu": "one [T, D] file per crop (DeepMIL, UR-DMU, PEL4VAD, BN-WVAD, XDVioDet)"}
DATASETS = {"ucf": "UCF-Crime", "xd": "XD-Violence", "shanghaitech": "ShanghaiTech"}
FRAMES_PER_SNIPPET = 16  # every peer's snippet, and its np.repeat(pred, 16)
# the published training lists: videos, and how many of them (first) the repos' index rule reads as anomalous
PUBLISHED_TRAIN = {"ucf": (1610, 810), "xd": (3954, 1905), "shanghaitech": (238, 63)}
# the concatenated test GT of each (dataset, family), in frames (docs/benchmarks.md: how each is known)
KNOWN_GT_FRAMES = {("ucf", "rtfm"): 1_114_144, ("ucf", "wu"): 1_109_680, ("xd", "wu"): 2_330_384,
                   ("shanghaitech", "rtfm"): 142_912, ("shanghaitech", "wu"): 140_112}
_CROP = re.compile(r"^(?P<video>.+?)__(?P<crop>\d+)$")
_SH_CROP = re.compile(r"^(?P<video>\d\d_\d{3,4})_(?P<crop>\d)$")  # PEL4VAD's ShanghaiTech: 01_0014_0.npy
_SH_ANOMALOUS = re.compile(r"^\d\d_\d{4}$")


@dataclass
class PeerVideo:
    """One video of a peer list: its name, label and class by the dataset's rule, and its feature file(s)
    (one per crop for the wu family, in list order)."""

    name: str
    label: int
    cls: str
    line: int  # its first line in the list
    files: list[Path] = field(default_factory=list)
    snippets: int = 0  # T
    labelled: bool = False  # the list gave its label in a column (then no index rule applies)


def list_lines(path: Path) -> list[tuple[int, str, int | None]]:
    """(line number, the feature path, the line's own 0/1 label or None) of a list file as published: CRLF or
    LF, a numeric label column (PEL4VAD's ShanghaiTech: `train/01_0014_0.npy 1.0`) read, a CSV `path,label`
    header and its text labels (VadCLIP) or S3R's `video-id` header skipped, blank lines skipped."""
    text = read_text(path, "list")
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or line.lower() in ("path,label", "video-id"):
            continue
        fields = line.split(",") if "," in line else line.split()
        label = None
        if len(fields) > 1 and fields[1].strip().replace(".", "", 1).isdigit():
            value = float(fields[1])
            if value not in (0.0, 1.0):
                raise MateError(f"{path}:{number}: label '{fields[1].strip()}' is not 0 or 1")
            label = int(value)
        out.append((number, fields[0].strip(), label))
    if not out:
        raise MateError(f"{path}: the list names no feature files")
    return out


def video_and_crop(raw: str, dataset: str) -> tuple[str, int | None]:
    """`G:\\UCF_Train_ten_crop_i3d\\Abuse001_x264_i3d.npy` -> (Abuse001_x264, None);
    `.../Abuse001_x264__3.npy` -> (Abuse001_x264, 3); PEL4VAD's `01_0014_3.npy` -> (01_0014, 3)."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    stem = name[:-4] if name.endswith(".npy") else name
    m = _CROP.match(stem) or (_SH_CROP.match(stem) if dataset == "shanghaitech" else None)
    video, crop = (m.group("video"), int(m.group("crop"))) if m else (stem, None)
    return video.removesuffix("_i3d"), crop


def label_and_class(video: str, dataset: str) -> tuple[int, str]:
    """The repos' label rule of each data set, and the class the tables use."""
    if dataset == "shanghaitech":
        return (1, "Anomaly") if _SH_ANOMALOUS.match(video) else (0, NORMAL_CLASS)
    if dataset == "xd":
        xd = parse_xd_name(video)
        if xd is None:
            raise MateError(f"{video}: not an XD-Violence name (no '_label_<codes>')")
        return xd.label, (xd.cls or NORMAL_CLASS)
    label = 0 if "normal" in video.lower() else 1
    return label, infer_class(video, label)


class FileFinder:
    """Where a list's path lies on this machine: as written (absolute, or relative to the working folder or
    the list's folder), under --features_root, or else by its file name anywhere under --features_root."""

    def __init__(self, features_root: Path | None):
        self.root, self._by_name = features_root, None

    def find(self, raw: str, list_path: Path, number: int) -> Path:
        posix = raw.replace("\\", "/")
        candidates = [Path(posix), list_path.parent / posix]
        if self.root is not None:
            candidates.append(self.root / posix.lstrip("/"))
        for c in candidates:
            if c.is_file():
                return c
        if self.root is not None:
            if self._by_name is None:
                self._by_name = {}
                for p in sorted(self.root.rglob("*.npy")):
                    self._by_name.setdefault(p.name, []).append(p)
            name = posix.rsplit("/", 1)[-1]
            # S3R's lists hold bare ids (`Abuse001_x264`); its files are `<id>_i3d.npy`
            found = next((self._by_name[n] for n in ([name] if name.endswith(".npy") else
                                                     [name + ".npy", name + "_i3d.npy"]) if n in self._by_name), [])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise MateError(f"{list_path}:{number}: {raw}: {len(found)} files of that name under "
                                f"{self.root} ({found[0]}, {found[1]}); pass the folder that holds this list's")
        where = f" or under {self.root}" if self.root is not None else " (pass --features_root)"
        raise MateError(f"{list_path}:{number}: {raw}: no such feature file as written, beside the list{where}")


def read_peer_list(path: Path, family: str, dataset: str, finder: FileFinder) -> list[PeerVideo]:
    """The videos of a peer list in its order, each with its file(s); crops grouped and checked."""
    videos: list[PeerVideo] = []
    for number, raw, given in list_lines(path):
        video, crop = video_and_crop(raw, dataset)
        check_component(video, f"{path}:{number}: {raw}: its video name")  # it names features/<video>.npy
        if family == "rtfm" and crop is not None:
            raise MateError(f"{path}:{number}: {raw}: a per-crop file ('__{crop}') in a list of the rtfm family "
                            "(one [T, 10, 2048] file per video); use --family wu")
        if videos and videos[-1].name == video and family == "wu":
            videos[-1].files.append(finder.find(raw, path, number))
            continue
        if any(v.name == video for v in videos[-3:]):
            raise MateError(f"{path}:{number}: {video} appears again after other videos; a video's lines must "
                            "be consecutive")
        label, cls = label_and_class(video, dataset)
        if given is not None and given != label:
            raise MateError(f"{path}:{number}: {video} is labelled {given} by the list but {label} by its name "
                            f"({DATASETS[dataset]}'s rule): list and name disagree")
        videos.append(PeerVideo(video, label, cls, number, [finder.find(raw, path, number)], labelled=given is not None))
    if family == "wu":
        crops = {len(v.files) for v in videos}
        if len(crops) > 1:
            odd = next(v for v in videos if len(v.files) != len(videos[0].files))
            raise MateError(f"{path}:{odd.line}: {odd.name} has {len(odd.files)} crop files, "
                            f"{videos[0].name} {len(videos[0].files)}: every video needs the same crops")
    if len({v.name for v in videos}) != len(videos):
        dup = next(v for i, v in enumerate(videos) if v.name in {w.name for w in videos[:i]})
        raise MateError(f"{path}:{dup.line}: video {dup.name} is listed twice")
    return videos


def check_index_rule(videos: list[PeerVideo], path: Path, dataset: str, family: str) -> None:
    """The repos split a training list by index (anomalous first); the names must agree with it. A list that
    labels its lines itself (PEL4VAD's alphabetical ShanghaiTech list) has no index rule to check."""
    if all(v.labelled for v in videos):
        return
    n_anomalous = sum(v.label for v in videos)
    per = len(videos[0].files) if family == "wu" else 1
    breaks = next((v for i, v in enumerate(videos) if v.label != (i < n_anomalous)), None)
    if breaks is not None:
        raise MateError(f"{path}:{breaks.line}: {breaks.name} is {'anomalous' if breaks.label else 'normal'} by its "
                        f"name, but the peers' index rule reads the first {n_anomalous * per} lines as the anomalous "
                        "videos: names and index disagree; reorder the list (anomalous videos first)")
    total, published = PUBLISHED_TRAIN[dataset]
    if len(videos) == total and n_anomalous != published:
        raise MateError(f"{path}: {n_anomalous} anomalous videos by name, but the published split's index rule "
                        f"is {published} of {total}")


def count_snippets(videos: list[PeerVideo], path: Path, family: str) -> None:
    """Each video's T from its array's header (memory-mapped, nothing read); the crops of a video must agree,
    and an rtfm-family file must be [T, K, D]."""
    for v in videos:
        shapes = []
        for f in v.files:
            try:
                shapes.append(np.load(f, mmap_mode="r").shape)
            except (OSError, ValueError) as exc:
                raise MateError(f"{f}: not a readable .npy array ({exc})") from None
        if family == "rtfm" and len(shapes[0]) != 3:
            raise MateError(f"{v.files[0]}: shape {list(shapes[0])}, but the rtfm family's files are [T, crops, D]")
        if family == "wu" and (len(shapes[0]) != 2 or len(set(shapes)) > 1):
            raise MateError(f"{v.files[0]}: crop shapes {sorted(set(shapes))} of {v.name}: the wu family's crop "
                            "files are [T, D], all of one video alike")
        v.snippets = int(shapes[0][0])


def check_gt_length(frames: int, videos: list[PeerVideo], gt_path: Path, dataset: str, family: str,
                    gt: np.ndarray | None = None) -> None:
    """A concatenated GT covers 16 x the summed snippet counts of exactly these features."""
    expected = FRAMES_PER_SNIPPET * sum(v.snippets for v in videos)
    if frames == expected:
        return
    for (ds, other), known in KNOWN_GT_FRAMES.items():
        if ds == dataset and other != family and frames == known:
            raise MateError(f"{gt_path}: {frames:,} frames is the GT of the {other} family's features "
                            f"({FAMILIES[other]}); these {family} features need 16 x {expected // 16:,} = "
                            f"{expected:,}: a GT is never paired with the other family")
    where = ""
    if gt is not None:
        start = 0
        for v in videos:
            span = gt[start:start + FRAMES_PER_SNIPPET * v.snippets]
            if span.size < FRAMES_PER_SNIPPET * v.snippets or (v.label == 0 and span.any()) or \
                    (v.label == 1 and dataset != "xd" and not span.any()):
                where = f"; it first breaks at {v.name} (frames {start:,}-{start + 16 * v.snippets - 1:,})"
                break
            start += FRAMES_PER_SNIPPET * v.snippets
    raise MateError(f"{gt_path}: {frames:,} frames, but 16 x the {sum(v.snippets for v in videos):,} snippets of "
                    f"the test list's features are {expected:,}{where}")


def read_frame_labels(path: Path) -> np.ndarray:
    """A frame-label .npy (a concatenated GT or one video's mask) as a flat 0/1 array; anything else (not
    an array, NaN, a value other than 0 and 1, empty) is one MateError, not an annotation with no events."""
    try:
        gt = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise MateError(f"{path}: not a readable .npy array ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(gt, np.ndarray) or gt.dtype.kind not in "biuf" or gt.size == 0:
        raise MateError(f"{path}: expected a non-empty numeric array of frame labels, got "
                        f"{getattr(gt, 'dtype', type(gt).__name__)} {list(getattr(gt, 'shape', []))}")
    gt = gt.reshape(-1)
    bad = np.flatnonzero((gt != 0) & (gt != 1))
    if bad.size:
        raise MateError(f"{path}: frame labels must be 0 or 1; frame {bad[0]:,} holds {gt[bad[0]]} "
                        f"({bad.size:,} such frames)")
    return gt


def gt_from_concatenated(gt_path: Path, videos: list[PeerVideo], dataset: str, family: str) -> list[np.ndarray]:
    """The peers' concatenated GT (`gt-ucf.npy`, `gt.npy`, `gt-sh.npy`) cut into per-video frame labels."""
    gt = read_frame_labels(gt_path)
    check_gt_length(gt.size, videos, gt_path, dataset, family, gt)
    bounds = np.cumsum([0] + [FRAMES_PER_SNIPPET * v.snippets for v in videos])
    return [(gt[a:b] > 0.5).astype(np.int8) for a, b in zip(bounds[:-1], bounds[1:])]


def gt_from_masks(mask_dir: Path, videos: list[PeerVideo]) -> list[np.ndarray]:
    """ShanghaiTech's per-video frame masks (RTFM's `test_frame_mask/<video>.npy`, n frames) brought to the
    features' 16 x T frames as RTFM's make_gt_sh.py does: padded with the last label (T = ceil(n/16)), or
    cut (a re-extraction with T = floor(n/16)); a normal video without a mask is all zeros."""
    out = []
    for v in videos:
        frames = FRAMES_PER_SNIPPET * v.snippets
        path = mask_dir / f"{v.name}.npy"
        if not path.is_file():
            if v.label:
                raise MateError(f"{path}: missing: the anomalous test video {v.name} needs its frame mask")
            out.append(np.zeros(frames, np.int8))
            continue
        mask = read_frame_labels(path).astype(np.int8)
        if v.snippets not in (math.ceil(mask.size / 16), mask.size // 16):
            raise MateError(f"{path}: {mask.size} frames, but {v.name}'s features have {v.snippets} snippets "
                            f"(ceil({mask.size}/16) = {math.ceil(mask.size / 16)}): mask and features disagree")
        out.append(np.concatenate([mask, np.full(frames - mask.size, mask[-1], np.int8)])[:frames]
                   if mask.size < frames else mask[:frames])
    return out


def intervals(labels: np.ndarray) -> list[tuple[int, int]]:
    """The runs of 1s as inclusive [first, last] frame pairs."""
    padded = np.concatenate([[0], labels.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def annotation_text(videos: list[PeerVideo], gt: list[np.ndarray], dataset: str) -> str:
    """The frame GT in this repo's annotation forms (scripts/data/framegt.py), exactly the peers' frames:
    XD-Violence's form (half-open pairs, violent videos only) for XD-Violence; else the counted form
    `<video> <16 x T> <class> s1 e1 ...` (inclusive), every test video listed, under a `# dataset:` line."""
    lines = [f"# dataset: {DATASETS[dataset]}",
             "# made by import_peers.py from the peers' frame GT: each video's 16 x T frames, exactly theirs"]
    for v, labels in zip(videos, gt):
        runs = intervals(labels)
        if dataset == "xd":
            if runs:
                lines.append(f"{v.name} " + " ".join(f"{a} {b + 1}" for a, b in runs))
            continue
        pairs = " ".join(f"{a} {b}" for a, b in runs) or "-1 -1"
        lines.append(f"{v.name} {labels.size} {v.cls} {pairs}")
    return "\n".join(lines) + "\n"


def relative_link(target: Path, link: Path) -> None:
    """`link` -> `target` (a relative symlink, so the imported folder moves with its features' folder)."""
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(target.resolve(), link.parent.resolve()))
