"""Manifest parsing: every line form of docs/design.md §2 and each bad-input error."""
from pathlib import Path

import pytest

from scripts.core.errors import MateError
from scripts.data.manifest import (VideoEntry, format_count_table, infer_class, infer_label, parse_line,
                              read_manifest, write_manifest)


def touch(root: Path, rel: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


@pytest.mark.parametrize("line, expected", [
    ("X3D_Videos/Abuse/Abuse001_x264.npy", ("X3D_Videos/Abuse/Abuse001_x264.npy", 1, "Abuse")),
    ("X3D_Videos/Training_Normal_Videos_Anomaly/Normal_Videos308_x264.npy",
     ("X3D_Videos/Training_Normal_Videos_Anomaly/Normal_Videos308_x264.npy", 0, "Normal")),
    ("feats/RoadAccidents012_x264.npy", ("feats/RoadAccidents012_x264.npy", 1, "RoadAccidents")),
    ("a/b.npy 1", ("a/b.npy", 1, "b")),
    ("a/Normal_Videos_003_x264.npy 0", ("a/Normal_Videos_003_x264.npy", 0, "Normal")),
    ("x/Arson011_x264.npy 1 Arson", ("x/Arson011_x264.npy", 1, "Arson")),
    ("x/v.npy\t0\tnormal", ("x/v.npy", 0, "Normal")),
    ("   x/Stealing001.npy   1   Stealing   ", ("x/Stealing001.npy", 1, "Stealing")),
])
def test_line_forms(line, expected):
    assert parse_line(line) == expected


@pytest.mark.parametrize("line", ["", "   ", "# a comment", "  # indented comment"])
def test_blank_and_comment_lines(line):
    assert parse_line(line) is None


@pytest.mark.parametrize("line, fault", [
    ("a.npy 2", "label '2' is not 0 or 1"),
    ("a.npy yes", "label 'yes' is not 0 or 1"),
    ("a.npy 1 Abuse extra", "got 4 fields"),
    ("a.npy 1 Normal", "contradicts class 'Normal'"),
    ("a.npy 0 Arson", "contradicts class 'Arson'"),
])
def test_bad_lines_name_file_and_line(line, fault):
    with pytest.raises(MateError, match=fault) as err:
        parse_line(line, source="list.txt:7")
    assert str(err.value).startswith("list.txt:7: ")


def test_inference_rules():
    assert infer_label("Normal_Videos_003_x264.npy") == 0
    assert infer_label("Abuse/Abuse001_x264.npy") == 1
    assert infer_class("Some/Shooting033_x264.npy", 1) == "Shooting"
    assert infer_class("Vandalism/clip7.npy", 1) == "Vandalism"  # parent folder wins
    assert infer_class("Testing_Normal_Videos_Anomaly/Normal_Videos_1_x264.npy", 0) == "Normal"


def test_relative_paths_resolve_cwd_then_manifest_folder(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    in_lists = touch(lists, "feats/Abuse/Abuse001_x264.npy")
    in_cwd = touch(tmp_path / "work", "feats/Arson/Arson001_x264.npy")
    touch(lists, "feats/Arson/Arson001_x264.npy")  # cwd must win over the manifest's folder
    manifest = lists / "m.txt"
    manifest.write_text("# test list\n\nfeats/Abuse/Abuse001_x264.npy\nfeats/Arson/Arson001_x264.npy 1 Arson\n")
    monkeypatch.chdir(tmp_path / "work")
    entries = read_manifest(manifest)
    assert [e.path for e in entries] == [in_lists, in_cwd]
    assert [(e.label, e.cls, e.name) for e in entries] == [(1, "Abuse", "Abuse001_x264"),
                                                           (1, "Arson", "Arson001_x264")]


def test_missing_feature_names_both_candidates(tmp_path, monkeypatch):
    manifest = tmp_path / "m.txt"
    manifest.write_text("nowhere/Abuse001_x264.npy 1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MateError) as err:
        read_manifest(manifest)
    msg = str(err.value)
    assert "m.txt" in msg and "not found" in msg and msg.count("nowhere/Abuse001_x264.npy") == 3


def test_manifest_level_errors(tmp_path):
    with pytest.raises(MateError, match="manifest not found"):
        read_manifest(tmp_path / "absent.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(MateError, match="lists no videos"):
        read_manifest(empty)
    touch(tmp_path, "a/Normal_1.npy")
    touch(tmp_path, "a/Normal_2.npy")
    one_class = tmp_path / "one.txt"
    one_class.write_text("a/Normal_1.npy\na/Normal_2.npy\n")
    with pytest.raises(MateError, match="all 2 videos are normal"):
        read_manifest(one_class, require_both_labels=True)
    dup = tmp_path / "dup.txt"
    dup.write_text("a/Normal_1.npy\na/Normal_1.npy 0\n")
    with pytest.raises(MateError, match=r"dup.txt:2: .* listed twice \(first on line 1,"):
        read_manifest(dup)
    (tmp_path / "via").symlink_to(tmp_path / "a")  # the same file through a symlinked folder
    dup.write_text("a/Normal_1.npy\nvia/Normal_1.npy\n")
    with pytest.raises(MateError, match=r"dup.txt:2: 'via/Normal_1.npy' is listed twice .*the same file"):
        read_manifest(dup)


def test_write_then_read_round_trip_is_relative(tmp_path, monkeypatch):
    feats = [touch(tmp_path, "data/f/Abuse/Abuse001_x264.npy"), touch(tmp_path, "data/f/Normal/Normal_Videos_1.npy")]
    entries = [VideoEntry(feats[0], 1, "Abuse"), VideoEntry(feats[1], 0, "Normal")]
    out = tmp_path / "data" / "lists" / "train.txt"
    write_manifest(out, entries, header="made in a test")
    text = out.read_text().splitlines()
    assert text == ["# made in a test", "../f/Abuse/Abuse001_x264.npy 1 Abuse", "../f/Normal/Normal_Videos_1.npy 0 Normal"]
    monkeypatch.chdir(tmp_path)
    assert read_manifest(out) == entries


def test_count_table():
    entries = [VideoEntry(Path(f"{c}{i}.npy"), int(c != "Normal"), c)
               for c, n in (("Abuse", 2), ("Normal", 3), ("Zebra", 1)) for i in range(n)]
    table = format_count_table({"train": entries, "test": entries[:2]}).splitlines()
    assert table[0].split() == ["class", "train", "test"]
    assert table[2].split() == ["Abuse", "2", "2"]
    assert table[3].split() == ["Normal", "3", "0"]
    assert table[4].split() == ["Zebra", "1", "0"]
    assert table[-1].split() == ["total", "6", "2"]


@pytest.mark.parametrize("line, fields", [
    ("a/b.npy 1 Abuse", ["a/b.npy", "1", "Abuse"]),
    ("'dir with spaces é日本/Abuse 004 ü x264.npy' 1 Abuse", ["dir with spaces é日本/Abuse 004 ü x264.npy", "1", "Abuse"]),
    ("dir with spaces/Abuse 004.npy\t1\tAbuse", ["dir with spaces/Abuse 004.npy", "1", "Abuse"]),
    ('"it\'s here/x.npy" 0', ["it's here/x.npy", "0"]),
    ("v=u5SF4SlqNDQ__#00-00-00_00-01-00_label_G-0-0.npy 1", ["v=u5SF4SlqNDQ__#00-00-00_00-01-00_label_G-0-0.npy", "1"]),
])
def test_fields_plain_quoted_or_tab_separated(line, fields):
    from scripts.data.manifest import split_fields
    assert split_fields(line) == fields


@pytest.mark.parametrize("path", ["plain/Abuse001_x264.npy", "dir with spaces é日本/Abuse 004 ü x264.npy",
                                  "it's/a \"quoted\" name.npy", "#hash first.npy"])
def test_written_paths_read_back(tmp_path, path):
    from scripts.data.manifest import quote_path, split_fields
    assert split_fields(f"{quote_path(path)} 1 Abuse") == [path, "1", "Abuse"]
    if " " not in path and "'" not in path and not path.startswith("#"):
        assert quote_path(path) == path  # plain paths stay as they are
