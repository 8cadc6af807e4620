"""Frame-level ground truth and snippet-to-frame scores (docs/design.md §2, the RTFM/MGFN/UR-DMU protocol).

Annotation lines, three forms, each line's form chosen by its content (fields separated by any whitespace):
    Arson011_x264.mp4  Arson  150  420  680  1267                (UCF-Crime's own file)
    Arson/Arson022_x264.mp4 8640 Arson 3500 4000 -1 -1           (UR-DMU's: path and frame count)
    v=u5SF4SlqNDQ__#00-00-00_00-01-00_label_G-0-0 624 912 950 1441   (XD-Violence's: numbers only)
In UCF-Crime's two forms each [start, end] pair names the first and the last anomalous frame
(inclusive); -1 = no interval. XD-Violence's form has no class column (the class is in the name,
scripts/data/xd_violence.py), any number of pairs, and each pair is half-open, [start, end): the data set's
own make_gt.py sets `gt[start:end] = 1`; it is stored here as the inclusive [start, end - 1]. XD's file
lists only the violent test videos: with it, a normal (label 0) video that it does not list is scored
as normal on every frame. Names keep their dots (`Bad.Boys.1995__#...`); only a known extension is cut.
A file is in XD-Violence's form or in UCF-Crime's (either of its forms), never a mix; the form names
the data set (`dataset_of`), whose headline test.py prints.
An end at or past the last frame is clipped to it: the official intervals of 7 test videos end at
frame N or N + 2 of an N-frame video (e.g. Shooting015_x264, 1,713 frames, ends at 1715).

The frame-count rule (the known off-by-16 of peers' files): a video of N frames is scored on exactly N
frames. Its T snippets cover frames [16i, 16i + 16) (16 = frames per snippet, from the sidecar or
--frames_per_snippet); frame f takes the score of snippet min(f // 16, T - 1). Features made on the clock
in seconds (the sidecar has `window_s` and the video's fps, scripts/extraction/clips.py) map through time instead:
snippet i covers [16i / 30, 16(i + 1) / 30) s and frame f (at f / fps s) takes the snippet that holds it,
the same as f // 16 at 30 fps. Either way the frames of a
last, partial snippet take that snippet's score whether the extractor kept it (T = ceil(N / 16)) or
dropped it (T = floor(N / 16)); when N is a multiple of 16 both are N / 16, never N / 16 + 1.
N comes from the feature's sidecar JSON (`num_frames`), else the annotation's frame count, else
T x 16 (XD-Violence's file has no frame count: without sidecars N = T x 16, the length of the data set's
own ground truth for its features). Any other T is a disagreement between annotation and features
and is reported.
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from scripts.core.errors import MateError
from scripts.core.fileio import read_lines
from scripts.data.sidecar import read_sidecar, video_fps
from scripts.data.xd_violence import DATASET as XD_DATASET, parse_name as parse_xd_name, video_name, video_stem

FORM_UCF = "UCF-Crime"  # Name.mp4 Class s1 e1 s2 e2
FORM_COUNTED = "UR-DMU"  # Class/Name.mp4 NFRAMES Class s1 e1 s2 e2
FORM_XD = XD_DATASET  # name s1 e1 [s2 e2 ...], half-open


@dataclass(frozen=True)
class Annotation:
    """One annotated video: its name (no extension), class, anomalous frame intervals, frame count."""

    name: str
    cls: str
    intervals: tuple[tuple[int, int], ...]  # inclusive [first, last] anomalous frames, whatever the form
    num_frames: int | None = None
    form: str = FORM_UCF
    dataset: str | None = None  # the file's `# dataset: <name>` line (import_peers.py writes one), if any


def _int(value: str, source: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise MateError(f"{source}: '{value}' is not a frame number") from None


def _is_number(value: str) -> bool:
    return value.lstrip("-").isdigit()


def parse_xd_line(name: str, numbers: list[str], source: str) -> Annotation:
    """XD-Violence's `name s1 e1 [s2 e2 ...]`: half-open [start, end) pairs, stored inclusive."""
    if len(numbers) % 2:
        raise MateError(f"{source}: expected '<video> <start> <end> [<start> <end> ...]' (XD-Violence's form), "
                        f"got {len(numbers)} frame numbers")
    values = [_int(v, source) for v in numbers]
    intervals = []
    for start, end in zip(values[::2], values[1::2]):
        if start < 0 or end <= start:
            raise MateError(f"{source}: interval [{start}, {end}) is not a valid frame range")
        intervals.append((start, end - 1))
    xd = parse_xd_name(name)
    cls = "Anomaly" if xd is None else (xd.cls or "Normal")  # the class is in the name, if anywhere
    return Annotation(name=name, cls=cls, intervals=tuple(intervals), form=FORM_XD)


def parse_annotation_line(line: str, source: str) -> Annotation | None:
    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return None
    name = video_stem(fields[0])  # not Path.stem: XD-Violence's names hold dots
    num_frames = None
    rest = fields[1:]
    if rest and all(_is_number(v) for v in rest):  # no class column: XD-Violence's form
        return parse_xd_line(name, rest, source)
    if rest and _is_number(rest[0]):  # the form with a frame count after the path
        num_frames = _int(rest[0], source)
        rest = rest[1:]
    if len(rest) < 3 or (len(rest) - 1) % 2:
        raise MateError(f"{source}: expected '<video> [<frames>] <class> <start> <end> [<start> <end> ...]'")
    cls, numbers = rest[0], [_int(v, source) for v in rest[1:]]
    intervals = []
    for start, end in zip(numbers[::2], numbers[1::2]):
        if start < 0 and end < 0:
            continue
        if start < 0 or end < start:
            raise MateError(f"{source}: interval [{start}, {end}] is not a valid frame range")
        if num_frames is not None and start >= num_frames:
            raise MateError(f"{source}: interval start {start} lies beyond the video's {num_frames} frames")
        intervals.append((start, end))
    if cls.lower().startswith("normal"):
        cls = "Normal"
    return Annotation(name=name, cls=cls, intervals=tuple(intervals), num_frames=num_frames,
                      form=FORM_COUNTED if num_frames is not None else FORM_UCF)


def read_annotations(path: str | Path) -> dict[str, Annotation]:
    """All annotations of a file by video name; a name annotated twice, or XD-Violence's form mixed with
    UCF-Crime's, is an error."""
    path = Path(path)
    lines = read_lines(path, "annotation file")
    found: dict[str, Annotation] = {}
    first_line: dict[bool, int] = {}  # is XD-Violence's form -> its first line
    declared = None
    for lineno, line in enumerate(lines, start=1):
        if line.lower().startswith("# dataset:"):
            declared = line.split(":", 1)[1].strip() or None
            continue
        ann = parse_annotation_line(line, f"{path}:{lineno}")
        if ann is None:
            continue
        if ann.name in found:
            raise MateError(f"{path}:{lineno}: video '{ann.name}' is annotated twice")
        first_line.setdefault(ann.form == FORM_XD, lineno)
        if len(first_line) > 1:
            raise MateError(f"{path}:{lineno}: XD-Violence's form (no class column, line {first_line[True]}) "
                            f"mixed with UCF-Crime's (a class column, line {first_line[False]})")
        found[ann.name] = dataclasses.replace(ann, dataset=declared) if declared else ann
    if not found:
        raise MateError(f"{path}: annotation file lists no videos")
    return found


def dataset_of(annotations: dict[str, Annotation]) -> str:
    """The benchmark an annotation file belongs to: the one its `# dataset:` line names (e.g. ShanghaiTech),
    else by its form: 'XD-Violence' or 'UCF-Crime'."""
    declared = {a.dataset for a in annotations.values()}
    if len(declared) == 1 and None not in declared:
        return declared.pop()
    return XD_DATASET if all(a.form == FORM_XD for a in annotations.values()) else FORM_UCF


def frame_labels(ann: Annotation, num_frames: int) -> np.ndarray:
    """0/1 per frame, 1 on every annotated interval (inclusive ends, clipped to the video)."""
    labels = np.zeros(num_frames, dtype=np.int8)
    for start, end in ann.intervals:
        labels[start:min(end, num_frames - 1) + 1] = 1
    return labels


def snippet_index(num_frames: int, frames_per_snippet: int, fps: Fraction | None = None) -> np.ndarray:
    """The snippet of each frame f: f // frames_per_snippet, or with `fps` (features made in seconds)
    the snippet whose time span holds the frame's time, floor((f / fps) / (frames_per_snippet / 30 s)),
    exactly; at 30 fps the two are equal."""
    f = np.arange(num_frames, dtype=np.int64)
    if fps is None:
        return f // frames_per_snippet
    return (f * 30 * fps.denominator) // (fps.numerator * frames_per_snippet)


def snippet_to_frames(snippet_scores: np.ndarray, num_frames: int, frames_per_snippet: int,
                      fps: Fraction | None = None) -> np.ndarray:
    """Frame f takes the score of snippet min(snippet_index(f), T - 1); exactly num_frames values."""
    T = len(snippet_scores)
    index = np.minimum(snippet_index(num_frames, frames_per_snippet, fps), T - 1)
    return np.asarray(snippet_scores)[index]


def snippet_count_agrees(T: int, num_frames: int, frames_per_snippet: int, fps: Fraction | None = None) -> bool:
    """T must be floor or ceil of the video's length in snippets (a dropped or a padded last snippet)."""
    length = Fraction(num_frames, frames_per_snippet) * (1 if fps is None else Fraction(30) / fps)
    return T in (math.floor(length), math.ceil(length))


@dataclass
class FrameGroundTruth:
    """Per-video frame labels and frame scores aligned by the rule above, plus what did not fit."""

    labels: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # manifest videos that could not be evaluated
    unlisted: list[str] = field(default_factory=list)  # annotated videos absent from the manifest
    unannotated_normal: list[str] = field(default_factory=list)  # normal videos the file need not list


def align(names: Sequence[str], classes: Sequence[str], snippet_scores: Sequence[np.ndarray],
          feature_paths: Sequence[Path], annotations: dict[str, Annotation], *,
          labels: Sequence[int] | None = None, unannotated_normal: bool = False,
          frames_per_snippet: int = 16, source: str = "annotation") -> FrameGroundTruth:
    """Build frame labels and frame scores for every scored video that has an annotation.

    Args:
        labels (sequence of int or None): the videos' manifest labels; a normal (0) video annotated with
            anomalous frames is then reported.
        unannotated_normal (bool): a normal video absent from `annotations` is normal on every frame
            (XD-Violence's file lists only violent videos); else it is reported as missing.
    A name is looked up as it is, then as its video (an XD-Violence crop file `..._label_A__0`).
    """
    gt = FrameGroundTruth()
    labels = [None] * len(names) if labels is None else labels
    for name, cls, scores, path, label in zip(names, classes, snippet_scores, feature_paths, labels):
        ann = annotations.get(name) or annotations.get(video_name(name))
        if ann is None and unannotated_normal and label == 0:
            ann = Annotation(name=name, cls=cls, intervals=())
            gt.unannotated_normal.append(name)
        if ann is None:
            gt.problems.append(f"{name}: not in {source}")
            continue
        if label == 0 and ann.intervals:
            gt.problems.append(f"{name}: listed as normal (label 0) but {source} marks anomalous frames")
            continue
        sidecar = read_sidecar(path) or {}
        span = int(sidecar.get("stride") or sidecar.get("frames_per_clip") or frames_per_snippet)
        n = sidecar.get("num_frames") or ann.num_frames or len(scores) * span
        if ann.num_frames and sidecar.get("num_frames") and ann.num_frames != sidecar["num_frames"]:
            gt.problems.append(f"{name}: {source} says {ann.num_frames} frames, the sidecar {sidecar['num_frames']}")
            continue
        fps = video_fps(sidecar)
        if not snippet_count_agrees(len(scores), int(n), span, fps):
            at = f" at {float(fps):g} fps" if fps is not None else ""
            gt.problems.append(f"{name}: {len(scores)} snippets of {span} frames{' / 30 s' if at else ''} "
                               f"cannot cover {n} frames{at}")
            continue
        if ann.intervals and max(start for start, _ in ann.intervals) >= n:
            gt.problems.append(f"{name}: an annotated interval starts beyond its {n} frames")
            continue
        gt.labels.append(frame_labels(ann, int(n)))
        gt.scores.append(snippet_to_frames(scores, int(n), span, fps))
        gt.classes.append(cls)
        gt.names.append(name)
    gt.unlisted = sorted(set(annotations) - set(names) - {video_name(n) for n in names})
    return gt
