"""Atomic writes keep the old file whole when writing fails; the CLI boundary prints one line."""
import os
import stat

import numpy as np
import pytest

from scripts.core.cli import run
from scripts.core.errors import MateError
from scripts.core.fileio import atomic_write, save_npy, write_json, write_text


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"auc": 0.9})

    def broken(tmp):
        tmp.write_text("{half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == '{\n  "auc": 0.9\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left


def test_save_npy_keeps_name_and_content(tmp_path):
    arr = np.arange(6, dtype=np.float16).reshape(2, 3)
    path = save_npy(tmp_path / "sub" / "x.npy", arr)
    assert path.name == "x.npy" and np.array_equal(np.load(path), arr)
    assert write_text(tmp_path / "a.txt", "hi").read_text() == "hi"


def test_cli_boundary_one_line_exit_2(capsys):
    def main(argv):
        raise MateError("list.txt: manifest lists no videos")

    with pytest.raises(SystemExit) as stop:
        run(main, [])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: list.txt: manifest lists no videos\n"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    import torch

    from scripts.models.checkpoint import save_checkpoint

    old = os.umask(umask)
    try:
        paths = [write_text(tmp_path / "a.txt", "x\n"), save_npy(tmp_path / "b.npy", np.zeros(3)),
                 save_checkpoint(tmp_path / "c.pth", {"w": torch.zeros(2)})]
    finally:
        os.umask(old)
    assert [stat.S_IMODE(p.stat().st_mode) for p in paths] == [mode] * 3
