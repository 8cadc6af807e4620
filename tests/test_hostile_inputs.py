"""Issue #31: hostile and careless input files get one line naming the file and the fault, exit 2, and
nothing half-written (docs/design.md §10). Items: 5 (a GT of NaN), 8 (NaN weights), 10 (a binary list),
11/12 (NaN flags, a NaN loss, a float16 overflow), 13 (checkpoints that are text or hostile pickles),
15 (byte-order marks)."""
import json
import os

import numpy as np
import pytest
import torch

from scripts.core.errors import MateError
from scripts.data.synthetic import make_synthetic
from scripts.models.checkpoint import load_checkpoint
from tests.conftest import run_script


def one_line(done, *needles):
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for n in needles:
        assert str(n) in done.stderr, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    make_synthetic(root, n_train=24, n_test=12, seed=0, feature_dim=4, progress=False)
    return root


def train(synthetic, runs, *extra):
    return run_script("main.py", "--train_list", synthetic / "train.txt", "--val_list", synthetic / "test.txt",
                      "--runs_dir", runs, "--exp_name", "x", "--max_epoch", "2", "--no_progress", "--no_plots",
                      *extra)


@pytest.mark.parametrize("flag", ["--lr", "--triplet_margin", "--warmup_epochs"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_float_flag_that_is_not_finite_is_one_line(flag, value, tmp_path):
    done = run_script("main.py", f"{flag}={value}", "--train_list", "x", "--val_list", "y", "--runs_dir", tmp_path)
    one_line(done, f"argument {flag}: must be a finite number, got '{value}'")
    assert not any(tmp_path.iterdir())


def test_snr_experiment_sigma_nan_is_one_line():
    one_line(run_script("snr_experiment.py", "--sigma", "nan"), "argument --sigma: must be a finite number")


def test_a_config_value_that_is_not_finite_is_one_line(tmp_path, synthetic):
    config = tmp_path / "c.json"
    config.write_text('{"lr": NaN}')
    one_line(train(synthetic, tmp_path / "runs", "--config", config), "c.json: key 'lr' must be a finite number")


def test_a_nan_loss_names_the_file_and_the_flag(tmp_path, synthetic):
    err = one_line(train(synthetic, tmp_path / "runs", "--lr", "1e30", "--grad_clip", "0"),
                   "the loss became nan", "--lr (1e+30)", ".npy")
    assert "UserWarning" not in err


def test_float16_overflow_is_named_at_load(tmp_path, synthetic):
    features = tmp_path / "f.npy"
    np.save(features, np.full((8, 4), 1e5, np.float32))
    manifest = tmp_path / "train.txt"
    manifest.write_text(f"{features} 1 Abuse\n" + (synthetic / "train.txt").read_text().replace(
        "features/", f"{synthetic}/features/"))
    done = run_script("main.py", "--train_list", manifest, "--val_list", synthetic / "test.txt", "--runs_dir",
                      tmp_path / "runs", "--exp_name", "x", "--max_epoch", "1", "--no_progress", "--cache_dtype",
                      "float16", "--config", "configs/sequence.json")
    one_line(done, "f.npy: values up to 1e+05 overflow --cache_dtype float16")


def test_a_checkpoint_with_nan_weights_is_refused_naming_a_tensor(tmp_path, synthetic):
    assert train(synthetic, tmp_path / "runs").returncode == 0
    ckpt = tmp_path / "runs/x/checkpoint_best.pth"
    state = torch.load(ckpt, weights_only=True)
    name = next(iter(state["model"]))
    state["model"][name] = torch.full_like(state["model"][name], float("nan"))
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(MateError, match=f"nan.pth: 1 weight tensor\\(s\\) hold NaN or Inf \\(first: {name}\\)"):
        load_checkpoint(tmp_path / "nan.pth")
    done = run_script("test.py", "--test_list", synthetic / "test.txt", "--checkpoint", tmp_path / "nan.pth",
                      "--no_progress", "--no_plots")
    one_line(done, "hold NaN or Inf")


class Payload:
    def __reduce__(self):
        return (os.system, ("echo hostile > /dev/null",))


@pytest.mark.parametrize("what", ["text", "hostile", "pickle"])
def test_checkpoints_that_are_text_or_hostile_pickles(tmp_path, what, short_clip):
    import pickle

    ckpt = tmp_path / "x.pyth"
    if what == "text":
        ckpt.write_text("weights\n")
    elif what == "hostile":
        torch.save({"model": Payload()}, ckpt)
    else:  # a plain pickle.dump (protocol 4+): torch would warn about the protocol, then fail
        ckpt.write_bytes(pickle.dumps({"model": [1, 2]}, protocol=4))
    for script, flag in (("test.py", "--checkpoint"), ("feature_extractor.py", "--backbone_checkpoint")):
        args = ("--test_list", "t.txt") if script == "test.py" else ("--video", short_clip, "--out_dir", tmp_path / "o")
        err = one_line(run_script(script, *args, flag, ckpt, "--no_progress"), "x.pyth: not a ")
        assert len(err) < 300 and "weights_only set to False" not in err and "pop from empty list" not in err
        assert ("a text file starting 'weights'" in err) == (what == "text")
        assert ("holds Python objects other than tensors" in err) == (what == "hostile")
        assert ("a plain Python pickle, not a file torch.save wrote" in err) == (what == "pickle")
        assert "UserWarning" not in err and "protocol" not in err


def test_a_binary_peer_list_is_one_line(tmp_path):
    listing = tmp_path / "bin.list"
    listing.write_bytes(bytes(range(256)) * 4)
    done = run_script("import_peers.py", "--family", "rtfm", "--dataset", "ucf", "--train_list", listing,
                      "--test_list", listing, "--gt", tmp_path / "gt.npy", "--out_dir", tmp_path / "out")
    one_line(done, "bin.list: list is not UTF-8 text (byte 0x80 at offset 128); a binary file?")
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".mate.lock"]  # the folder's lock, nothing else


@pytest.mark.parametrize("gt", [np.full(32, np.nan, np.float32), np.full(32, 0.7, np.float32),
                                np.array(["a"] * 32)])
def test_a_peer_gt_that_is_not_frame_labels_is_one_line(tmp_path, gt):
    from scripts.data.peers import read_frame_labels

    np.save(tmp_path / "gt.npy", gt)
    with pytest.raises(MateError, match="gt.npy: (frame labels must be 0 or 1|expected a non-empty numeric)"):
        read_frame_labels(tmp_path / "gt.npy")


def test_byte_order_marks_are_read_as_text(tmp_path, synthetic):
    bom = b"\xef\xbb\xbf"
    manifest = tmp_path / "train.txt"
    manifest.write_bytes(bom + (synthetic / "train.txt").read_text().replace(
        "features/", f"{synthetic}/features/").encode())
    config = tmp_path / "c.json"
    config.write_bytes(bom + json.dumps({"max_epoch": 1}).encode())
    done = run_script("main.py", "--train_list", manifest, "--val_list", synthetic / "test.txt", "--runs_dir",
                      tmp_path / "runs", "--exp_name", "bom", "--config", config, "--no_progress", "--no_plots")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "runs/bom/config.json").read_text())["options"]["max_epoch"] == 1


def test_test_py_keeps_another_lists_outputs_unless_overwrite(tmp_path, synthetic):
    """Item 2: the fixed output names hold one test list's results; another list into the same folder is
    refused without --overwrite (nothing replaced), the same list again replaces its own (make demo)."""
    assert train(synthetic, tmp_path / "runs").returncode == 0
    run_dir, other = tmp_path / "runs/x", tmp_path / "other.txt"
    other.write_text("\n".join((synthetic / "test.txt").read_text().replace(
        "features/", f"{synthetic}/features/").splitlines()[:-2]) + "\n")
    test = lambda listing, *extra: run_script(  # noqa: E731
        "test.py", "--test_list", listing, "--checkpoint", run_dir / "checkpoint_best.pth", "--no_progress",
        "--no_plots", "--n_boot", "10", *extra)
    assert test(synthetic / "test.txt").returncode == 0
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    one_line(test(other), f"{run_dir}: holds test.py's outputs for another test list", "--overwrite")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    assert test(synthetic / "test.txt").returncode == 0  # the same list replaces its own
    assert test(other, "--overwrite").returncode == 0
    assert json.loads((run_dir / "test_metrics.json").read_text())["test_list"] == str(other)


def test_more_flags_and_files_are_one_line_before_any_work(tmp_path):
    """Found by probing every script: a stream flag checked before the backbone loads (its stderr held
    the set-up lines), a false rate above 1 that ran, a text file as aggregate.py's GT misread as pickled."""
    done = run_script("test.py", "--stream", "udp://127.0.0.1:9", "--checkpoint", "data/published/MATE_base.pkl",
                      "--random_weights", "--stream_timeout", "-1")
    assert done.stderr == "error: --stream_timeout: must be a positive number of seconds, got -1.0\n"
    one_line(run_script("snr_experiment.py", "--false_rate", "2"), "--false_rate 2: must lie in [0, 1]")
    np.save(tmp_path / "p.npy", np.zeros(32, np.float32))
    (tmp_path / "gt.npy").write_text("0 1\n")
    one_line(run_script("aggregate.py", "--frame_compare", tmp_path / "p.npy", tmp_path / "p.npy", "--gt",
                        tmp_path / "gt.npy"), "gt.npy: not a .npy array (no .npy header")
    np.save(tmp_path / "gt.npy", np.full(32, np.nan, np.float32))
    one_line(run_script("aggregate.py", "--frame_compare", tmp_path / "p.npy", tmp_path / "p.npy", "--gt",
                        tmp_path / "gt.npy"), "gt.npy: frame labels must be 0 or 1")


@pytest.mark.parametrize("extra, needle", [
    (("--seed", "-1"), "argument --seed: a seed must lie in [0, 2**32 - 1], got -1"),
    (("--frames_per_snippet", "0"), "--frames_per_snippet: must be at least 1, got 0"),
    (("--batch_size", "100000"), "--batch_size 100000: a batch would hold every one of the 12 normal and 12 "
                                 "anomalous training videos more than twice; use at most 48"),
    (("--crop_mode", "score_mean"), "--crop_mode score_mean acts on multi-crop [T, K, D] files"),
])
def test_training_values_that_made_a_traceback_or_a_blow_up(tmp_path, synthetic, extra, needle):
    """--seed -1 was numpy's traceback, --batch_size 100000 filled the memory (every video 2,500 times a
    batch), score_mean on maps a reshape error, a snippet of 0 frames ran."""
    one_line(train(synthetic, tmp_path / "runs", *extra), needle)
    written = [p.name for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert written in ([], [".mate.lock"])  # no file of a run that cannot train (the run folder's lock aside)


def test_an_audio_only_file_is_named_as_such(tmp_path):
    import av

    from scripts.extraction.video import VideoReader

    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(MateError, match="audio.mp4: no video stream"):
        VideoReader(path, decoder="av")  # was "cannot open video with PyAV (tuple index out of range)"


def test_an_output_folder_that_is_a_file_is_named_as_such(tmp_path, synthetic):
    """It said "(File exists)" or "(Not a directory)", naming no culprit."""
    blocker = tmp_path / "out"
    blocker.write_text("")
    one_line(run_script("StratifiedKFold.py", "--rgb_list", synthetic / "train.txt", "--out_dir", blocker),
             f"({blocker} is a file, not a folder)")
    one_line(train(synthetic, blocker), f"({blocker} is a file, not a folder)")
    assert blocker.read_text() == ""


def test_a_feature_path_that_is_a_pipe_or_a_folder_is_named_and_never_waited_on(tmp_path):
    from scripts.dataset import load_array

    os.mkfifo(tmp_path / "pipe.npy")  # opening it would wait for a writer forever
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(MateError, match="pipe.npy: a named pipe, not a .npy file"):
        load_array(tmp_path / "pipe.npy")
    with pytest.raises(MateError, match="dir.npy: a folder, not a .npy file"):
        load_array(tmp_path / "dir.npy")


def test_a_clip_larger_than_the_machine_is_refused_before_decoding(tmp_path, short_clip):
    """--num_frames 100000 asked for a 29 GiB clip and was killed for memory (here 10x that: any machine)."""
    done = run_script("feature_extractor.py", "--video", short_clip, "--out_dir", tmp_path / "o", "--backbone",
                      "x3d_xs", "--random_weights", "--no_progress", "--num_frames", "1000000")
    one_line(done, "--num_frames 1000000 x --crop_size 160 x --crops 1: one clip alone is 286.1 GiB, more than "
                   "an eighth of this machine's")


def test_a_second_job_on_a_manifest_or_import_folder_is_refused(tmp_path, synthetic):
    """One writer per output folder (as main.py's run folder, the extractor's shard, test.py's folder): two
    StratifiedKFold.py, makelist.py --synthetic or import_peers.py jobs on one folder would interleave."""
    from scripts.core.locks import LOCK_NAME, exclusive_lock

    out = tmp_path / "out"
    jobs = [("StratifiedKFold.py", "--rgb_list", synthetic / "train.txt", "--out_dir", out),
            ("makelist.py", "--synthetic", out, "--n_train", "8", "--n_test", "4", "--feature_dim", "4"),
            ("import_peers.py", "--family", "rtfm", "--dataset", "ucf", "--train_list", tmp_path / "x.list",
             "--test_list", tmp_path / "x.list", "--gt", tmp_path / "gt.npy", "--out_dir", out)]
    with exclusive_lock(out / LOCK_NAME, what="held by this test"):
        for job in jobs:
            err = one_line(run_script(*job), "is in use by pid", str(out))
            assert "folder" in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written beside the lock
