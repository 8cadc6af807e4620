"""Issue #31: around a one-line error nothing else reaches the terminal (docs/design.md §10): argparse's
errors are one line in every script (scripts/core/cli.py: OneLineParser), Python warnings raised before a
MateError are dropped (and shown when the run ends otherwise), FFmpeg's own log lines are silenced."""
import warnings

import pytest

from scripts.core.cli import run
from scripts.core.errors import MateError
from tests.conftest import run_script

SCRIPTS = ["main.py", "test.py", "feature_extractor.py", "makelist.py", "StratifiedKFold.py",
           "StratifiedKFold_verify.py", "aggregate.py", "import_peers.py", "snr_experiment.py", "test1.py",
           "test2.py", "motion_map_analyze.py"]  # train.py is main.py


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unknown_flag_is_one_line_in_every_script(script):
    done = run_script(script, "--no_such_flag", "3")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {script}: ") and "usage:" not in done.stderr
    assert "unrecognized arguments: --no_such_flag" in done.stderr or "arguments are required" in done.stderr


def test_a_bad_value_names_its_flag_in_one_line():
    done = run_script("main.py", "--max_epoch", "abc")
    assert done.returncode == 2
    assert done.stderr == "error: main.py: argument --max_epoch: invalid int value: 'abc' (see --help)\n"


def raises_after_warning(argv):
    warnings.warn("torch says something long", UserWarning)
    raise MateError("data.npy: the fault")


def warns_and_succeeds(argv):
    for _ in range(3):
        warnings.warn("kept for a finished run", UserWarning)
    return 0


def test_warnings_are_dropped_around_an_error_and_shown_once_after_success(capsys):
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")  # as a run that warns from many places: the held list decides
        with pytest.raises(SystemExit) as stop:
            run(raises_after_warning, [])
        assert stop.value.code == 2 and capsys.readouterr().err == "error: data.npy: the fault\n"
        assert shown == []
        with pytest.raises(SystemExit) as stop:
            run(warns_and_succeeds, [])
    assert stop.value.code == 0 and [str(w.message) for w in shown] == ["kept for a finished run"]


def test_ffmpeg_is_silenced_for_opencv():
    import os

    assert os.environ["OPENCV_FFMPEG_LOGLEVEL"] == "-8"  # AV_LOG_QUIET, set when scripts.core.cli is imported


@pytest.mark.slow
@pytest.mark.parametrize("content", [b"", b"hello world\n", b"\x00\x00\x00\x18ftypmp42" + bytes(200)])
def test_broken_videos_print_no_ffmpeg_lines_around_the_error(tmp_path, content):
    """Item 16: FFmpeg writes to the process's stderr (fd 2) itself, so only a real process shows it."""
    from tests.conftest import run_subprocess

    video = tmp_path / "broken.mp4"
    video.write_bytes(content)
    done = run_subprocess("feature_extractor.py", "--video", video, "--out_dir", tmp_path / "o", "--backbone",
                          "x3d_xs", "--random_weights", "--no_progress")
    assert "moov atom" not in done.stderr and "@ 0x" not in done.stderr, done.stderr
    if done.returncode == 2:  # the empty file, named before a decoder sees it
        assert done.stderr.count("\n") == 1 and "empty file (0 bytes)" in done.stderr
    else:  # the batch's documented exit 1: its failure list, one video
        assert done.returncode == 1 and done.stderr.startswith("1 video(s) failed") and done.stderr.count("\n") == 2
        assert "cannot open video (corrupt, truncated or unsupported format)" in done.stderr


def test_a_message_holding_line_breaks_is_still_one_line(capsys):
    def fails(argv):
        raise MateError("x\n\x1e\u2028\x85\ty.npy: the fault")

    with pytest.raises(SystemExit):
        run(fails, [])
    assert capsys.readouterr().err == "error: x\\n\\x1e\\u2028\\x85\\ty.npy: the fault\n"
