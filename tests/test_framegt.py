"""Frame ground truth: both annotation forms, the frame-count rule, and what does not match."""
import json

import numpy as np
import pytest

from scripts.core.errors import MateError
from scripts.data.framegt import (align, frame_labels, parse_annotation_line, read_annotations,
                             snippet_count_agrees, snippet_to_frames)
from tests.conftest import SHARED_DATA


def test_both_line_forms():
    a = parse_annotation_line("Arson011_x264.mp4  Arson  150  420  680  1267  ", "f:1")
    assert (a.name, a.cls, a.intervals, a.num_frames) == ("Arson011_x264", "Arson", ((150, 420), (680, 1267)), None)
    b = parse_annotation_line("Arson/Arson022_x264.mp4 8640 Arson 3500 4000 -1 -1 ", "f:2")
    assert (b.name, b.cls, b.intervals, b.num_frames) == ("Arson022_x264", "Arson", ((3500, 4000),), 8640)
    n = parse_annotation_line("Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1", "f:3")
    assert (n.cls, n.intervals) == ("Normal", ())


@pytest.mark.parametrize("line, fault", [
    ("Abuse001.mp4 Abuse 10", "expected"),
    ("Abuse001.mp4 Abuse 30 10 -1 -1", "not a valid frame range"),
    ("Abuse/Abuse001.mp4 100 Abuse 130 150 -1 -1", "start 130 lies beyond the video's 100 frames"),
    ("Abuse001.mp4 Abuse x 10", "'x' is not a frame number"),
])
def test_bad_annotation_lines(line, fault):
    with pytest.raises(MateError, match=fault):
        parse_annotation_line(line, "gt.txt:4")


def test_real_ucf_files_parse():
    plain = read_annotations(SHARED_DATA / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt")
    counted = read_annotations(SHARED_DATA / "UCF_Annotation_with_frame_counts.txt")
    assert len(plain) == len(counted) == 290
    assert sum(1 for a in plain.values() if a.cls == "Normal") == 150
    assert counted["Arson022_x264"].num_frames == 8640
    late = counted["Shooting015_x264"]  # its interval ends 2 frames past the video: clipped
    assert late.intervals == ((855, 1715),) and frame_labels(late, late.num_frames)[855:].all()
    assert len(frame_labels(late, late.num_frames)) == 1713
    shared = set(plain) & set(counted)
    assert len(shared) >= 280 and all(plain[k].intervals == counted[k].intervals for k in shared)


def test_frame_labels_hand_built_not_divisible_by_16():
    ann = parse_annotation_line("RoadAccidents021_x264.mp4  RoadAccidents  30  90  120  150", "f")
    labels = frame_labels(ann, 155)  # 155 = 9 * 16 + 11
    expected = np.zeros(155, np.int8)
    expected[30:91] = 1
    expected[120:151] = 1
    assert np.array_equal(labels, expected)
    normal = parse_annotation_line("Normal_Videos_1.mp4  Normal  -1  -1  -1  -1", "f")
    assert frame_labels(normal, 40).sum() == 0 and len(frame_labels(normal, 40)) == 40


def test_snippet_to_frames_rule():
    # 155 frames: 10 snippets (the last one padded) or 9 (the tail dropped) both give 155 frame scores
    ten = np.arange(10, dtype=float)
    frames = snippet_to_frames(ten, 155, 16)
    assert len(frames) == 155 and frames[0] == 0 and frames[143] == 8 and frames[144] == 9 and frames[154] == 9
    nine = snippet_to_frames(ten[:9], 155, 16)
    assert len(nine) == 155 and nine[143] == 8 and nine[154] == 8  # tail takes the last snippet's score
    # a multiple of 16: exactly N / 16 snippets, never N / 16 + 1
    assert snippet_count_agrees(100, 1600, 16) and not snippet_count_agrees(101, 1600, 16)
    assert snippet_count_agrees(9, 155, 16) and snippet_count_agrees(10, 155, 16)
    assert not snippet_count_agrees(11, 155, 16)


def test_align_reports_what_does_not_fit(tmp_path):
    anns = read_annotations_text(tmp_path, [
        "A/Abuse001_x264.mp4 155 Abuse 30 90 -1 -1",
        "N/Normal_Videos_1_x264.mp4 64 Normal -1 -1 -1 -1",
        "A/Abuse002_x264.mp4 1600 Abuse 0 15 -1 -1",
        "A/Abuse003_x264.mp4 320 Abuse 0 15 -1 -1",  # not in the manifest
    ])
    paths = [tmp_path / f"{n}.npy" for n in ("Abuse001_x264", "Normal_Videos_1_x264", "Abuse002_x264", "Shooting001_x264")]
    json.dump({"num_frames": 64, "stride": 16}, open(paths[1].with_suffix(".json"), "w"))
    scores = [np.linspace(0, 1, 10), np.zeros(4), np.zeros(101), np.zeros(5)]
    gt = align(["Abuse001_x264", "Normal_Videos_1_x264", "Abuse002_x264", "Shooting001_x264"],
               ["Abuse", "Normal", "Abuse", "Shooting"], scores, paths, anns, source="gt.txt")
    assert gt.names == ["Abuse001_x264", "Normal_Videos_1_x264"]
    assert [len(x) for x in gt.labels] == [155, 64] and gt.labels[0].sum() == 61
    assert gt.problems == ["Abuse002_x264: 101 snippets of 16 frames cannot cover 1600 frames",
                           "Shooting001_x264: not in gt.txt"]
    assert gt.unlisted == ["Abuse003_x264"]


def read_annotations_text(tmp_path, lines):
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(lines) + "\n")
    return read_annotations(path)
