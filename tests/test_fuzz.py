"""The fuzz suite (issue #31; docs/design.md §10): property-based tests over what a user hands the scripts
(manifests, configs, feature files, frame annotations, peer lists and GT files, flag values), each run through
the real CLI in-process. The property, for every input: exit 0 with complete, valid outputs (or a documented
exit 1 with its list), or exit 2 with exactly one line on stderr that names the file or flag, never a traceback (run_script lets it through, so hypothesis
reports it), and nothing written outside the example's output folder (nor into the repository).

`make test` runs a fixed, derandomised number of examples per property (FUZZ_EXAMPLES below, a few seconds in
all); `make fuzz` runs MATE_FUZZ_EXAMPLES of them (minutes) and prints what it tried. No example database is
kept (database=None): the examples come from the seed, not from earlier runs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.data.manifest import read_manifest
from scripts.dataset import load_array
from tests.conftest import ROOT, run_script

FUZZ_EXAMPLES = {"manifest": 20, "config": 20, "features": 8, "annotations": 5, "peers": 10, "flags": 30}
EXAMPLES = int(os.environ.get("MATE_FUZZ_EXAMPLES", "0"))  # make fuzz
TALLY: Counter = Counter()


def fuzz(prop: str):
    return settings(max_examples=EXAMPLES or FUZZ_EXAMPLES[prop], derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if EXAMPLES:  # make fuzz: what was tried (pytest -s shows it)
        print("\nfuzz: inputs tried per property and how each ended")
        for prop in FUZZ_EXAMPLES:
            counts = {k[1]: v for k, v in TALLY.items() if k[0] == prop}
            if counts:
                print(f"  {prop:11s} {sum(counts.values()):6d} tried: "
                      + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


def repo_state() -> tuple:
    """What a script could leave in the repository by mistake (run from ROOT: runs/, data/, the root)."""
    return tuple(sorted(os.listdir(ROOT))), tuple(sorted(os.listdir(ROOT / "runs")))


def outcome(prop: str, done, work: Path, names: list[str], before: tuple, reached: str | None = None,
            failure_list: str | None = None) -> bool:
    """Check the property; True for exit 0 (the caller then checks its outputs). `reached`: the missing file
    an accepted input stops at (configs and flags), tallied apart. `failure_list`: the first stderr line of a
    documented exit 1 (outputs written, then the items left out listed one per line)."""
    assert repo_state() == before, "written into the repository"
    stray = [p for p in work.rglob("*") if not (p.is_relative_to(work / "in") or p.is_relative_to(work / "out"))]
    assert not stray, f"written outside the output folder: {stray}"
    if done.returncode == 0:
        TALLY[prop, "exit 0, outputs complete"] += 1
        return True
    if done.returncode == 1 and failure_list is not None:
        first, *listed = done.stderr.splitlines()
        assert failure_list in first and int(first.split()[0]) == len(listed), done.stderr
        TALLY[prop, "exit 1, outputs complete and the videos left out listed"] += 1
        return True
    lines = done.stderr.splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert any(n in lines[0] for n in names), f"names none of {names}: {lines[0]}"
    accepted = reached is not None and reached in lines[0]
    TALLY[prop, "exit 2 at the missing list (input accepted)" if accepted else "exit 2, one line"] += 1
    return False


@contextlib.contextmanager
def workdir():
    """One example's folder: its inputs go in `in/`, the script's outputs in `out/` (outcome checks that
    nothing else appears)."""
    with tempfile.TemporaryDirectory(prefix="mate_fuzz_") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        yield work


# ------------------------------------------------------------------------------------------ shared inputs
@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """12 train and 6 test sequence files [T, 4] and a scoring checkpoint for them (no training: the
    property is about input handling, not the model)."""
    import torch

    from scripts.model import build_model, config_for_variant
    from scripts.models.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("fuzz_features")
    rng = np.random.default_rng(0)
    lines = {"train": [], "test": []}
    for split, n in (("train", 12), ("test", 6)):
        for i in range(n):
            cls = ("Abuse", "Normal")[i % 2]
            path = root / f"{cls}{split}{i:03d}_x264.npy"
            np.save(path, rng.random((int(rng.integers(4, 9)), 4)).astype(np.float32))
            lines[split].append(f"{path} {int(cls != 'Normal')} {cls}")
    for split in lines:
        (root / f"{split}.txt").write_text("\n".join(lines[split]) + "\n")
    torch.manual_seed(0)
    cfg = config_for_variant("fast", in_channels=4)
    save_checkpoint(root / "ckpt.pth", {"model": build_model(cfg).state_dict(), "model_config": dataclasses.asdict(cfg),
                                        "options": {}, "epoch": 1, "metrics": {"val_roc_auc": 0.5},
                                        "feature": {"shape": [4, 8, 1, 1], "sequence": True, "crop_mode": "mean",
                                                    "num_segments": 8, "frames_per_snippet": 16}})
    return root, lines


# ------------------------------------------------------------------------------------------------ manifests
LABELS = st.sampled_from(["0", "1", "2", "-1", "1.0", "abc", "", "True", "0x1"])
CLASSES = st.sampled_from(["Abuse", "Normal", "", "x y", "Ünïcode", "#c", "Normal_Videos"])
ODD_PATHS = ["missing.npy", "../../x.npy", "/", ".", "dir/", "'quoted'.npy", "a b.npy", "\u00e9.npy", "-"]


@st.composite
def manifests(draw, lines):
    """Some of the valid lines in any order, with up to three odd ones put in anywhere."""
    paths = [ln.split()[0] for ln in lines]
    odd = st.one_of(st.builds(lambda p, l, c: f"{p} {l} {c}".strip(), st.sampled_from(paths + ODD_PATHS), LABELS,
                              CLASSES),
                    st.sampled_from(["", "   ", "# a comment", "\t"] + lines),  # a line twice, too
                    st.builds(lambda ln: "'{}'\t{}\t{}".format(*ln.split()), st.sampled_from(lines)),
                    st.builds(lambda ln: "  ".join(ln.split()) + "  ", st.sampled_from(lines)),
                    st.text(max_size=30))
    chosen = draw(st.permutations(lines))[:draw(st.integers(0, len(lines)))]
    for _ in range(draw(st.integers(0, 3))):
        chosen.insert(draw(st.integers(0, len(chosen))), draw(odd))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return newline.join(chosen).encode(encoding, errors="replace")


@fuzz("manifest")
@given(data=st.data())
def test_fuzz_manifests_through_stratified_kfold(features, data):
    root, lines = features
    content = data.draw(manifests(lines["train"]))
    before = repo_state()
    with workdir() as work:
        manifest = work / "in" / "train list.txt"
        manifest.write_bytes(content)
        done = run_script("StratifiedKFold.py", "--rgb_list", manifest, "--test_list", root / "test.txt", "--k", "2",
                          "--out_dir", work / "out", "--seed", "0")
        if outcome("manifest", done, work, [str(manifest), "train list.txt", "--k", ".npy", str(root)], before):
            same = lambda entries: {os.path.normpath(e.path) for e in entries}  # noqa: E731
            listed = same(read_manifest(manifest, check_exists=False))
            for k in range(2):  # complete: each fold's parts read back and hold the listed videos between them
                parts = [read_manifest(work / "out" / f"fold{k}_{p}.txt", check_exists=False) for p in ("train", "val")]
                assert same(parts[0] + parts[1]) == listed


# -------------------------------------------------------------------------------------------------- configs
KEYS = ["lr", "max_epoch", "batch_size", "model_variant", "dropout", "seed", "triplet_margin", "num_segments",
        "warmup_epochs", "cache_dtype", "no_such_key", "_comment", "extends", "Max_Epoch", "crop_mode"]
VALUES = st.one_of(st.integers(-3, 300), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                   st.booleans(), st.none(), st.lists(st.integers(0, 3), max_size=2),
                   st.sampled_from(["fast", "base", "paper_fast", "float16", "base.json", "missing.json",
                                    "config.json", "../../configs/fast.json", "mean"]))


@fuzz("config")
@given(config=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5),
       base=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3),
       broken=st.one_of(st.none(), st.text(max_size=20)))
def test_fuzz_configs_through_main(config, base, broken):
    before = repo_state()
    with workdir() as work:
        path = work / "in" / "config.json"
        path.write_text(broken if broken is not None else json.dumps(config))
        (work / "in" / "base.json").write_text(json.dumps(base))
        missing = work / "in" / "no_train.txt"  # a valid config reaches the lists: this one is not there
        done = run_script("main.py", "--config", path, "--train_list", missing, "--val_list", missing,
                          "--runs_dir", work / "out", "--exp_name", "x", "--no_progress")
        assert not outcome("config", done, work, ["config.json", "base.json", "missing.json", "no_train.txt", "--"],
                           before, reached="no_train.txt")


# ---------------------------------------------------------------------------------------------- feature files
@st.composite
def feature_files(draw):
    """The bytes of a hostile `.npy` (or what is named like one)."""
    kind = draw(st.sampled_from(["ok", "dtype", "shape", "values", "truncated", "bytes", "empty", "pickle"]))
    shape = [draw(st.integers(1, 9)), 4]
    arr = np.ones(shape, np.float32)
    if kind == "dtype":
        arr = arr.astype(draw(st.sampled_from(["float16", "float64", "int8", "int64", "bool", "complex64", "U3"])))
    elif kind == "shape":
        arr = np.ones(draw(st.lists(st.integers(0, 5), max_size=5)), np.float32)
    elif kind == "values":
        arr[draw(st.integers(0, shape[0] - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 3e38, -0.0]))
    elif kind == "pickle":
        arr = np.array([{"a": 1}], dtype=object)
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    raw = buf.getvalue()
    if kind == "truncated":
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif kind == "bytes":
        raw = draw(st.binary(max_size=120))
    elif kind == "empty":
        raw = b""
    return kind, raw


@fuzz("features")
@given(hostile=feature_files())
def test_fuzz_feature_files_through_test_py(features, hostile):
    root, lines = features
    kind, raw = hostile
    before = repo_state()
    with workdir() as work:
        bad = work / "in" / "Abuse999_x264.npy"
        bad.write_bytes(raw)
        manifest = work / "in" / "test.txt"
        manifest.write_text("\n".join(lines["test"] + [f"{bad} 1 Abuse"]) + "\n")
        done = run_script("test.py", "--test_list", manifest, "--checkpoint", root / "ckpt.pth", "--out_dir",
                          work / "out", "--no_progress", "--no_plots", "--n_boot", "5")
        if outcome("features", done, work, [str(bad)], before):
            metrics = json.loads((work / "out" / "test_metrics.json").read_text())
            assert metrics["n_videos"] == 7 and 0 <= metrics["video_roc_auc"] <= 1
            assert len((work / "out" / "predictions.csv").read_text().splitlines()) == 8


# ------------------------------------------------------------------------------------------- annotations
NUMBERS = st.one_of(st.integers(-2, 200).map(str), st.sampled_from(["-1", "1e3", "nan", "x", "", "3.5"]))


@st.composite
def annotation_files(draw, names):
    """UCF-Crime's form for the test videos (an anomalous one with an event, a normal one with -1 -1), some
    lines dropped, some in UR-DMU's or XD-Violence's form, odd numbers and odd lines put in."""
    def valid(name):
        if name.startswith("Normal"):
            return f"{name}.mp4 Normal -1 -1 -1 -1"
        start = draw(st.integers(0, 40))
        return f"{name}.mp4 Abuse {start} {start + draw(st.integers(0, 40))} -1 -1"

    def odd(name):
        form = draw(st.sampled_from(["ucf", "counted", "xd"]))
        middle = {"ucf": [draw(CLASSES)], "counted": [draw(NUMBERS), draw(CLASSES)], "xd": []}[form]
        return " ".join([name + draw(st.sampled_from(["", ".mp4"])), *middle,
                         *draw(st.lists(NUMBERS, min_size=0, max_size=5))])

    lines = [valid(n) for n in names if draw(st.integers(0, 9))]  # a line dropped now and then
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.one_of(
            st.builds(odd, st.sampled_from(names + ["Other001_x264"])),
            st.sampled_from(["", "# comment", "\t"]), st.text(max_size=20))))
    return "\n".join(lines).encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])))


@fuzz("annotations")
@given(data=st.data())
def test_fuzz_annotation_files_through_test_py(features, data):
    root, lines = features
    names = [Path(ln.split()[0]).stem for ln in lines["test"]]
    content = data.draw(annotation_files(names))
    before = repo_state()
    with workdir() as work:
        gt = work / "in" / "annotations.txt"
        gt.write_bytes(content)
        done = run_script("test.py", "--test_list", root / "test.txt", "--checkpoint", root / "ckpt.pth", "--gt", gt,
                          "--out_dir", work / "out", "--no_progress", "--no_plots", "--n_boot", "5")
        if outcome("annotations", done, work, [str(gt), str(root)], before,
                   failure_list="test videos were left out of the frame-level metrics:"):
            frame = json.loads((work / "out" / "test_metrics.json").read_text())["frame"]
            auc = frame["frame_roc_auc"]  # nan when the annotated frames are of one class (metrics.py)
            assert frame["n_frames"] > 0 and (math.isnan(auc) or 0 <= auc <= 1)


# --------------------------------------------------------------------------------------- peer lists and GT
@pytest.fixture(scope="module")
def peer_sets(tmp_path_factory):
    """A UCF set in each family, [T, 3, 4] per video (rtfm: one file per video, a CRLF list of Windows paths;
    wu: a file per crop, UR-DMU's relative paths), and its frame GT."""
    from scripts.data.peer_synthetic import write_rtfm, write_wu

    root = tmp_path_factory.mktemp("fuzz_peers")
    rng = np.random.default_rng(1)
    names = {"train": ["Abuse001_x264", "Arson002_x264", "Normal_Videos003_x264", "Normal_Videos004_x264"],
             "test": ["Abuse050_x264", "Normal_Videos_051_x264"]}
    arrays = {n: rng.random((int(rng.integers(3, 6)), 3, 4)).astype(np.float32) for s in names.values() for n in s}
    sets = {}
    for family, write in (("rtfm", write_rtfm), ("wu", write_wu)):
        folder = root / family
        sets[family] = (folder, {s: write(folder, s, ns, arrays, folder / f"{s}.list") for s, ns in names.items()})
    gt = np.concatenate([np.r_[np.zeros(16), np.ones(16 * (len(arrays["Abuse050_x264"]) - 1))],
                         np.zeros(16 * len(arrays["Normal_Videos_051_x264"]))]).astype(np.float32)
    return sets, gt


@fuzz("peers")
@given(data=st.data())
def test_fuzz_peer_lists_and_gt_through_import_peers(peer_sets, data):
    sets, gt = peer_sets
    family = data.draw(st.sampled_from(["rtfm", "wu"]))
    crops = data.draw(st.sampled_from(["mean", "each"]))
    root, lists = sets[family]
    lines = lists["train"].read_text().splitlines()
    keep = data.draw(st.lists(st.booleans(), min_size=len(lines), max_size=len(lines)))
    mutated = [ln for ln, k in zip(lines, keep) if k]  # some of the lines, in the list's order
    for _ in range(data.draw(st.integers(0, 2))):
        odd = st.one_of(st.sampled_from(lines), st.text(max_size=20),
                        st.sampled_from(["", "G:\\x\\..", "a/", "Normal_Videos001_x264.npy", "x__99.npy"]))
        mutated.insert(data.draw(st.integers(0, len(mutated))), data.draw(odd))
    gt_kind = data.draw(st.sampled_from(["ok", "short", "nan", "two", "text", "2d", "bytes"]))
    g = {"ok": gt, "short": gt[:-16], "nan": np.where(gt > 0, np.nan, 0).astype(np.float32),
         "two": gt * 2, "text": np.array(["1"] * gt.size), "2d": gt.reshape(-1, 16)}.get(gt_kind)
    before = repo_state()
    with workdir() as work:
        train = work / "in" / "train.list"
        train.write_bytes(("\r\n".join(mutated)).encode("utf-8", errors="replace"))
        gt_path = work / "in" / "gt.npy"
        if g is None:
            gt_path.write_bytes(data.draw(st.binary(max_size=60)))
        else:
            np.save(gt_path, g)
        done = run_script("import_peers.py", "--family", family, "--dataset", "ucf", "--train_list", train,
                          "--test_list", lists["test"], "--gt", gt_path, "--features_root", root, "--crops", crops,
                          "--out_dir", work / "out", "--no_progress")
        if outcome("peers", done, work, [str(train), str(gt_path), str(lists["test"]), str(root), "--"], before):
            record = json.loads((work / "out" / "import.json").read_text())
            assert record["test_videos"] == 2 and (work / "out" / "test_gt.txt").is_file()
            entries = read_manifest(work / "out" / "train.txt")  # every line reads back, D = 4 channels
            assert all(load_array(e.path).shape[-1] == 4 for e in entries)
            per_video = len(entries) / record["train_videos"]  # a list may hold fewer crops than the features
            assert per_video == 1 if crops == "mean" else per_video in (1, 2, 3)


# ------------------------------------------------------------------------------------------------ flag values
MAIN_FLAGS = ["--lr", "--max_epoch", "--batch_size", "--seed", "--num_segments", "--dropout", "--triplet_margin",
              "--warmup_epochs", "--grad_clip", "--exp_name", "--model_variant", "--cache_dtype", "--num_workers",
              "--eval_batch_size", "--weight_decay"]
TEST_FLAGS = ["--n_boot", "--threshold", "--batch_size", "--plot_videos", "--fold", "--num_workers"]
FLAG_VALUES = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats().map(repr), st.text(max_size=6),
                        st.sampled_from(["nan", "inf", "-inf", "1e309", "", "-0", "0x10", "..", "a/b", "1_000"]))


@fuzz("flags")
@given(script=st.sampled_from(["main.py", "test.py"]), data=st.data())
def test_fuzz_flag_values(script, data):
    flag = data.draw(st.sampled_from(MAIN_FLAGS if script == "main.py" else TEST_FLAGS))
    value = data.draw(FLAG_VALUES)
    before = repo_state()
    with workdir() as work:
        missing = work / "in" / "no_list.txt"  # valid flags reach the list: this one is not there
        if script == "main.py":
            args = ["--train_list", missing, "--val_list", missing, "--runs_dir", work / "out", "--no_progress"]
            args += [] if flag == "--exp_name" else ["--exp_name", "x"]
        else:
            args = ["--test_list", missing, "--checkpoint", work / "in" / "none.pth", "--out_dir", work / "out",
                    "--no_progress"]
        done = run_script(script, *args, f"{flag}={value}")
        assert not outcome("flags", done, work, [flag, "no_list.txt", "none.pth"], before,
                           reached="no_list.txt" if script == "main.py" else "none.pth")
