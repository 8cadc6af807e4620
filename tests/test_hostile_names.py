"""Issue #31, first items: a name that becomes a path component cannot leave its folder, and a count
flag out of range is one line (scripts/core/errors.check_component)."""
import pytest

from scripts.core.errors import MateError, check_component
from tests.conftest import run_script


@pytest.mark.parametrize("name", ["", ".", "..", "../../escape", "a/b", "/abs"])
def test_a_name_that_is_not_one_folder_is_refused(name):
    with pytest.raises(MateError, match="is not a plain name"):
        check_component(name, "--exp_name")
    assert check_component("fast_fold0", "--exp_name") == "fast_fold0"


@pytest.mark.parametrize("name", ["../../escape", ""])
def test_main_writes_nothing_outside_runs_dir(tmp_path, name):
    runs = tmp_path / "a" / "runs"
    done = run_script("main.py", "--train_list", "none.txt", "--val_list", "none.txt", "--runs_dir", runs,
                      "--exp_name", name, "--no_progress")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "--exp_name" in done.stderr and "is not a plain name" in done.stderr
    assert not any(tmp_path.rglob("*"))  # nothing written anywhere


def test_test_py_refuses_a_negative_bootstrap_count(tmp_path):
    done = run_script("test.py", "--test_list", tmp_path / "t.txt", "--checkpoint", tmp_path / "c.pth",
                      "--n_boot", "-5")
    assert done.returncode == 2 and done.stderr.strip() == "error: --n_boot: must be at least 1, got -5"


@pytest.mark.parametrize("relative", ["..", "a/../..", "", "/abs/x", "."])
def test_a_mirrored_path_stays_in_its_folder(tmp_path, relative):
    from scripts.core.errors import mirrored_path

    with pytest.raises(MateError, match="v.mp4: its output folder"):
        mirrored_path(tmp_path / "out", relative, "v.mp4: its output folder")
    assert mirrored_path(tmp_path / "out", "Abuse/v", "x") == tmp_path / "out/Abuse/v"


def test_a_mirrored_path_through_a_link_out_of_the_folder_is_refused(tmp_path):
    from scripts.core.errors import mirrored_path

    (tmp_path / "out").mkdir()
    (tmp_path / "out/Abuse").symlink_to(tmp_path)
    with pytest.raises(MateError, match="leads outside"):
        mirrored_path(tmp_path / "out", "Abuse/v", "v.mp4: its output folder")


def test_a_video_named_dot_dot_is_not_scored_outside_out_dir(tmp_path):
    """test.py --video `...avi`: its folder would be `<out_dir>/..`."""
    video = tmp_path / "in" / "...avi"
    video.parent.mkdir()
    video.write_bytes(b"x")
    done = run_script("test.py", "--video", video, "--checkpoint", "data/published/MATE_base.pkl", "--random_weights",
                      "--out_dir", tmp_path / "a" / "out", "--no_progress", "--no_overlay")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "...avi: its output folder: '..' is not a plain name" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.parametrize("line", ["features/..", "features/", "features/.npy", "..npy"])
def test_a_peer_list_line_whose_video_name_is_no_file_name_is_refused(tmp_path, line):
    from scripts.data.peers import FileFinder, read_peer_list

    listing = tmp_path / "x.list"
    listing.write_text(line + "\n")
    with pytest.raises(MateError, match=r"x.list:1: .*its video name: '\.{0,2}' is not a plain name"):
        read_peer_list(listing, "rtfm", "ucf", FileFinder(None))


def test_test_py_fold_tag_cannot_leave_the_output_folder(tmp_path):
    """--fold X names preds_fold{X}.npy: `--fold /../../esc` wrote tmp/esc.npy."""
    done = run_script("test.py", "--test_list", tmp_path / "t.txt", "--checkpoint", tmp_path / "c.pth", "--out_dir",
                      tmp_path / "a" / "out", "--fold", "/../../esc")
    assert done.returncode == 2 and done.stderr.startswith("error: --fold: '/../../esc' is not a plain name")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("script", ["test1.py", "test2.py", "motion_map_analyze.py"])
def test_the_diagnostics_take_exp_name_as_one_folder_of_runs_dir(tmp_path, script):
    done = run_script(script, "--exp_name", "../../esc", "--runs_dir", tmp_path / "runs")
    assert done.returncode == 2 and done.stderr.startswith("error: --exp_name: '../../esc' is not a plain name")
    assert not any(tmp_path.iterdir())
