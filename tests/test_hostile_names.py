"""Issue #31, first items: a name that becomes a path component cannot leave its folder, and a count
flag out of range is one line (scripts/core/errors.check_component)."""
import pytest

from scripts.core.errors import MateError, check_component
from tests.conftest import run_script


@pytest.mark.parametrize("name", ["", ".", "..", "../../escape", "a/b", "/abs"])
def test_a_name_that_is_not_one_folder_is_refused(name):
    with pytest.raises(MateError, match="is not a folder name"):
        check_component(name, "--exp_name")
    assert check_component("fast_fold0", "--exp_name") == "fast_fold0"


@pytest.mark.parametrize("name", ["../../escape", ""])
def test_main_writes_nothing_outside_runs_dir(tmp_path, name):
    runs = tmp_path / "a" / "runs"
    done = run_script("main.py", "--train_list", "none.txt", "--val_list", "none.txt", "--runs_dir", runs,
                      "--exp_name", name, "--no_progress")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "--exp_name" in done.stderr and "is not a folder name" in done.stderr
    assert not any(tmp_path.rglob("*"))  # nothing written anywhere


def test_test_py_refuses_a_negative_bootstrap_count(tmp_path):
    done = run_script("test.py", "--test_list", tmp_path / "t.txt", "--checkpoint", tmp_path / "c.pth",
                      "--n_boot", "-5")
    assert done.returncode == 2 and done.stderr.strip() == "error: --n_boot: must be at least 1, got -5"
