"""Exclusive locks: a second holder is refused naming the first; a dead holder's lock is taken over;
write failures (a full disk) are one line and keep what was there; stale temp files are removed."""
import errno
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from scripts.core.errors import MateError
from scripts.core.fileio import remove_stale_temps, save_npy, write_text
from scripts.core.locks import exclusive_lock
from tests.conftest import ROOT


def test_second_holder_is_refused_and_named(tmp_path):
    lock = tmp_path / "run" / ".mate.lock"
    with exclusive_lock(lock, what="run folder run"):
        assert f"pid {os.getpid()} on " in lock.read_text()
        # another process tries the same lock while this one holds it
        code = textwrap.dedent(f"""
            import sys; sys.path.insert(0, {str(ROOT)!r})
            from scripts.core.errors import MateError
            from scripts.core.locks import exclusive_lock
            try:
                with exclusive_lock({str(lock)!r}, what="run folder run"):
                    print("got it")
            except MateError as exc:
                print(exc)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        assert out.startswith(f"run folder run is in use by pid {os.getpid()} on ") and str(lock) in out
        assert f"pid {os.getpid()} on " in lock.read_text()  # the refused job left the record alone
    assert lock.read_text() == ""  # released: empty


def test_lock_of_a_dead_job_is_taken_over(tmp_path):
    lock = tmp_path / ".mate.lock"
    # a job that took the lock and was killed (-9) while holding it
    code = f"import sys, os; sys.path.insert(0, {str(ROOT)!r}); from scripts.core.locks import exclusive_lock\n" \
           f"with exclusive_lock({str(lock)!r}, what='x'):\n    os.kill(os.getpid(), 9)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    assert "pid " in lock.read_text()  # its record is still there ...
    with exclusive_lock(lock, what="x"):  # ... but the kernel released its lock
        assert f"pid {os.getpid()} " in lock.read_text()


def test_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "preds.npy"
    save_npy(target, np.arange(3.0))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", no_space)
    with pytest.raises(MateError) as err:
        save_npy(target, np.zeros(5))
    assert str(err.value) == (f"{target}: no space left on the device that holds {tmp_path} (free some space or "
                              "write elsewhere; files already there are unchanged)")
    monkeypatch.undo()
    assert np.load(target).tolist() == [0.0, 1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["preds.npy"]  # no temp file left


def test_unwritable_folder_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(MateError, match="cannot write"):
        write_text(folder / "a.txt", "x")


def test_stale_temps_are_removed_by_target(tmp_path):
    names = [".checkpoint_last.pth.ab12.tmp.pth", ".metrics.csv.x9.tmp.csv", ".Abuse002_x264.npy.k2.tmp.npy",
             "checkpoint_last.pth"]
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_stale_temps(tmp_path, ["checkpoint_last.pth", "metrics.csv"])
    assert sorted(p.name for p in removed) == sorted(names[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
