"""feature_extractor.py against concurrent jobs, kills, full disks and odd paths (scripts/data/feature_folder.py).

A second job is started in-process while the first is writing its first video (a hook on write_features_and_sidecar),
so "at the same time" needs no sleeps; the process boundary (kernel locks released by a kill, two real
processes started together) is checked with real processes. x3d_xs, random weights, tiny videos.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import scripts.extraction.batch as batch
from conftest import ROOT, load_script, run_script
from scripts.data.feature_folder import RECORD_NAME, claim_folder, shard_lock_name
from scripts.core.locks import LOCK_NAME, exclusive_lock
from test_video import write_video

feature_extractor = load_script("feature_extractor.py")
FLAGS = ["--backbone", "x3d_xs", "--crop_size", "64", "--side_size", "72", "--random_weights", "--no_progress"]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


def make_root(root, n=4):
    for i in range(n):
        write_video(root / ("Abuse" if i % 2 else "Normal") / f"V{i:03d}_x264.avi", 30 + i)
    return root


def argv(root, out, *extra):
    return ["--video_root", str(root), "--out_dir", str(out), *FLAGS, *extra]


def cli(root, out, *extra):
    return run_script("feature_extractor.py", *argv(root, out, *extra))


def pairs(out):
    """{video: (sidecar, array)} of every finished output; an array and its sidecar must agree."""
    found = {}
    for npy in sorted(p for p in out.rglob("*.npy") if not p.name.startswith(".")):  # not temp files
        side = json.loads(npy.with_suffix(".json").read_text())
        array = np.load(npy)
        assert side["shape"] == list(array.shape) and side["dtype"] == str(array.dtype), npy
        found[side["video"]] = (side, array)
    return found


def temps(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob(".*.tmp*"))


def during_first_write(monkeypatch, action):
    """Run `action()` once, when the running job is about to write its first video's outputs."""
    original, calls = batch.write_features_and_sidecar, []

    def hooked(*args, **kwargs):
        if not calls:
            calls.append(None)  # before the action: its own writes must not start it again
            calls[0] = action()
        return original(*args, **kwargs)

    monkeypatch.setattr(batch, "write_features_and_sidecar", hooked)
    return calls


def one_line_error(done):
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_other_settings_are_refused_while_and_after_a_job_runs(tmp_path, monkeypatch):
    root, out = make_root(tmp_path / "videos"), tmp_path / "features"
    seen = during_first_write(monkeypatch, lambda: (cli(root, out, "--stride", "24"),
                                                    cli(root, out, "--stride", "24", "--overwrite"),
                                                    cli(root, out, "--stride", "48")))
    assert feature_extractor.main(argv(root, out, "--stride", "48")) == 0
    other, overwrite, same_shard = seen[0]
    assert one_line_error(other).startswith(f"error: {out}: feature folder made with other settings (stride: 48 "
                                            f"there, 24 here; recorded in {RECORD_NAME})")
    assert "--overwrite extracts its videos again" in other.stderr
    assert "in use by pid" in one_line_error(overwrite)  # --overwrite waits for no job, it is refused
    assert f"shard 0 of 1 of feature folder {out} is in use by " in one_line_error(same_shard)
    made = pairs(out)
    assert len(made) == 4 and {side["stride"] for side, _ in made.values()} == {48}  # nothing mixed in

    monkeypatch.undo()
    assert "stride: 48 there, 24 here" in one_line_error(cli(root, out, "--stride", "24"))  # and afterwards
    done = cli(root, out, "--stride", "24", "--overwrite")
    assert done.returncode == 0 and "--overwrite: " in done.stdout and "written 4" in done.stdout
    assert {side["stride"] for side, _ in pairs(out).values()} == {24}
    assert json.loads((out / RECORD_NAME).read_text())["settings"]["stride"] == 24
    assert "weights: 'random' there, 'sha256:" in one_line_error(  # other weights are other features too
        run_script("feature_extractor.py", "--video_root", root, "--out_dir", out, "--stride", "24",
                   *[f for f in FLAGS if f != "--random_weights"], "--checkpoint", checkpoint(tmp_path)))


def checkpoint(tmp_path):
    from scripts.extraction.x3d import create_x3d_network

    torch.manual_seed(3)
    path = tmp_path / "X3D_XS.pyth"
    torch.save({"model_state": create_x3d_network("x3d_xs").state_dict()}, path)
    return path


def test_shards_of_one_extraction_run_side_by_side(tmp_path, monkeypatch):
    root, out = make_root(tmp_path / "videos", 5), tmp_path / "features"
    seen = during_first_write(monkeypatch, lambda: (cli(root, out, "--num_shards", "2", "--shard_id", "1"),
                                                    cli(root, out)))
    assert feature_extractor.main(argv(root, out, "--num_shards", "2", "--shard_id", "0")) == 0
    shard1, unsharded = seen[0]
    assert shard1.returncode == 0 and "written 2" in shard1.stdout, shard1.stderr  # ran while shard 0 ran
    assert "(a job with 2 shards) is in use by pid" in one_line_error(unsharded)  # would redo shard 0's videos
    assert sorted(pairs(out)) == [f"{c}/V{i:03d}_x264.avi" for c, i in
                                  (("Abuse", 1), ("Abuse", 3), ("Normal", 0), ("Normal", 2), ("Normal", 4))]
    assert sorted(p.name for p in out.glob("failures*")) == ["failures_shard0_of_2.csv", "failures_shard1_of_2.csv"]
    monkeypatch.undo()
    done = cli(root, out)  # once the shards are done, another split resumes: nothing left to do
    assert done.returncode == 0 and "written 0, skipped 5" in done.stdout


def test_torchrun_ranks_starting_together_wait_for_the_start_lock(tmp_path):
    out, record = tmp_path / "features", {"stride": 48}
    finished = threading.Event()

    def rank1():
        with claim_folder(out, record, shard_id=1, num_shards=2):
            finished.set()

    with exclusive_lock(out / LOCK_NAME, what="a starting rank"):
        thread = threading.Thread(target=rank1)
        thread.start()
        time.sleep(0.2)
        assert not finished.is_set()  # it waits for the start lock, it is not refused
    thread.join(timeout=60)
    assert finished.is_set() and json.loads((out / RECORD_NAME).read_text()) == {"format": 1, "settings": record}


def test_a_killed_jobs_lock_is_taken_over(tmp_path):
    root, out = make_root(tmp_path / "videos", 2), tmp_path / "features"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from scripts.core.locks import exclusive_lock\n"
         f"with exclusive_lock({str(out / shard_lock_name(0, 1))!r}, what='x'):\n"
         "    print('held', flush=True); time.sleep(600)"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert f"is in use by pid {holder.pid}" in one_line_error(cli(root, out))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    done = cli(root, out)
    assert done.returncode == 0 and "written 2" in done.stdout  # the kernel freed its lock: taken over


def test_temp_files_of_a_killed_job_are_removed_on_the_next_start(tmp_path):
    root, out = make_root(tmp_path / "videos", 2), tmp_path / "features"
    left = [out / "Normal" / ".V000_x264.npy.k1ll3d.tmp.npy", out / "Normal" / ".V000_x264.json.k1ll3d.tmp.json",
            out / f".{RECORD_NAME}.k1ll3d.tmp.json", out / ".failures.csv.k1ll3d.tmp.csv"]
    others = out / "Normal" / ".V999_x264.npy.0ther.tmp.npy"  # not this job's video: maybe another job's
    for path in left + [others]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 4096)
    done = cli(root, out)
    assert done.returncode == 0 and "removed 3 temp file(s) left by a killed job" in done.stdout
    assert temps(out) == ["Normal/.V999_x264.npy.0ther.tmp.npy"]
    assert len(pairs(out)) == 2


def fill_disk_on(monkeypatch, call: int, error=errno.ENOSPC):
    """np.save writes part of the array, then fails as a full disk does, on its `call`-th use."""
    real_save, calls = np.save, []

    def save(f, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            f.write(b"\x93NUMPY" + b"\0" * 4000)
            raise OSError(error, os.strerror(error))
        real_save(f, array, *args, **kwargs)

    monkeypatch.setattr(np, "save", save)


def test_a_full_disk_stops_the_run_keeping_the_files_there(tmp_path, monkeypatch):
    root, out = make_root(tmp_path / "videos", 4), tmp_path / "features"
    assert cli(root, out).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.suffix in (".npy", ".json")}
    fill_disk_on(monkeypatch, call=2)
    err = one_line_error(cli(root, out, "--overwrite"))
    second = out / "Abuse" / "V003_x264.npy"  # sorted: Abuse/V001, Abuse/V003, Normal/V000, Normal/V002
    assert err.startswith(f"error: {second}: no space left on the device that holds {second.parent}")
    assert "stopped after 1 video(s) written this run, 2 not tried (they would fail alike); run again" in err
    assert temps(out) == [] and {p: p.read_bytes() for p in before} == before  # the old pairs, whole
    monkeypatch.undo()
    done = cli(root, out)
    assert done.returncode == 0 and "skipped 4" in done.stdout


def test_another_write_fault_fails_that_video_only(tmp_path, monkeypatch):
    root, out = make_root(tmp_path / "videos", 3), tmp_path / "features"
    fill_disk_on(monkeypatch, call=1, error=errno.EIO)
    done = cli(root, out)
    assert done.returncode == 1 and "written 2, skipped 0" in done.stdout and "failed 1" in done.stdout
    assert f"Abuse/V001_x264.avi: {out / 'Abuse' / 'V001_x264.npy'}: cannot write (Input/output error)" in done.stderr
    assert temps(out) == [] and sorted(pairs(out)) == ["Normal/V000_x264.avi", "Normal/V002_x264.avi"]
    assert not (out / "Abuse" / "V001_x264.json").exists() and not (out / "Abuse" / "V001_x264.npy").exists()


def test_unreadable_broken_and_twice_reached_videos(tmp_path, monkeypatch):
    root, out = make_root(tmp_path / "videos", 2), tmp_path / "features"
    locked = write_video(root / "Abuse" / "Locked_x264.avi", 20)
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads any file: refuse it as the OS refuses everyone else
        import builtins

        def refuse(path, *args, **kwargs):
            if os.fspath(path) == os.fspath(locked):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return builtins.open(path, *args, **kwargs)

        monkeypatch.setattr("scripts.extraction.video.open", refuse, raising=False)
    (root / "Abuse" / "Gone_x264.mp4").symlink_to(tmp_path / "moved_away.mp4")
    (root / "Everything").symlink_to(root / "Normal")  # the same video reached a second time
    done = cli(root, out)
    assert done.returncode == 1 and "written 2, skipped 0 " in done.stdout and "failed 2 ->" in done.stdout
    assert "note: 1 path(s) lead to a video listed already" in done.stdout
    errors = dict(line.strip().split(": ", 1) for line in done.stderr.splitlines()[1:])
    assert errors["Abuse/Locked_x264.avi"] == f"{locked}: unreadable (Permission denied), not a decoding fault"
    assert errors["Abuse/Gone_x264.mp4"].startswith(f"{root / 'Abuse' / 'Gone_x264.mp4'}: broken symbolic link")
    assert sorted(pairs(out)) == ["Abuse/V001_x264.avi", "Normal/V000_x264.avi"]  # nothing under Everything/
    assert not (out / "Everything").exists()


def test_paths_with_spaces_and_non_ascii(tmp_path):
    root, out = tmp_path / "vidéos root", tmp_path / "features é日本 out"
    video = write_video(root / "dir with spaces é日本" / "Abuse 004 ü x264.mp4", 30, fourcc="mp4v")
    done = cli(root, out)
    assert done.returncode == 0, done.stderr
    made = pairs(out)
    assert list(made) == ["dir with spaces é日本/Abuse 004 ü x264.mp4"]
    assert (out / "dir with spaces é日本" / "Abuse 004 ü x264.npy").is_file()
    single = run_script("feature_extractor.py", "--video", video, "--out_dir", out / "one", *FLAGS)
    assert single.returncode == 0 and (out / "one" / "Abuse 004 ü x264.npy").is_file()


@pytest.mark.slow  # processes and their timing: make test-slow
def test_two_processes_with_other_settings_started_together(tmp_path):
    """Real processes, no hook: whichever starts first sets the folder; the other is refused in one line."""
    root, out = make_root(tmp_path / "videos", 2), tmp_path / "features"
    procs = [subprocess.Popen([sys.executable, "feature_extractor.py", *map(str, argv(root, out, "--stride", s))],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in ("48", "24")]
    results = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close(), p.stderr.close()
    assert sorted(code for code, _, _ in results) == [0, 2], results
    (won, _, _), = [r for r in results if r[0] == 0]
    (_, _, refused), = [r for r in results if r[0] == 2]
    assert refused.count("\n") == 1 and "other settings (stride: " in refused
    strides = {side["stride"] for side, _ in pairs(out).values()}
    assert len(pairs(out)) == 2 and len(strides) == 1
    assert json.loads((out / RECORD_NAME).read_text())["settings"]["stride"] in strides


def test_resume_redoes_a_kept_array_its_sidecar_does_not_describe(tmp_path):
    """Issue #31 item 3: a rerun checks each kept .npy against its sidecar (header shape and dtype, file size;
    no full read), extracts a damaged one again and says so; the sound ones are skipped."""
    root, out = make_root(tmp_path / "videos", 4), tmp_path / "features"
    assert cli(root, out).returncode == 0
    good = pairs(out)
    cut, text, other = (out / "Abuse/V001_x264.npy", out / "Abuse/V003_x264.npy", out / "Normal/V000_x264.npy")
    cut.write_bytes(cut.read_bytes()[:-40])
    text.write_text("not features\n")
    np.save(other, np.zeros((3, 3), np.float16))
    done = cli(root, out)
    assert done.returncode == 0 and "written 3, skipped 1 " in done.stdout, done.stdout
    assert "Abuse/V001_x264.avi: extracted again: the kept features were damaged (shorter than its header " \
           "promises (truncated))" in done.stdout
    assert "Abuse/V003_x264.avi: extracted again: the kept features were damaged (not a .npy array (no .npy " \
           "header: it starts with b'not fe'))" in done.stdout
    assert "Normal/V000_x264.avi: extracted again: the kept features were damaged (float16 [3, 3] where its " \
           "sidecar records float32" in done.stdout
    again = pairs(out)
    assert all(np.array_equal(again[v][1], good[v][1]) for v in good)
