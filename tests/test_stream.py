"""test.py --stream: a live source scored as it streams (scripts/evaluation/stream.py).

The fast tests read a 5 s MPEG-TS of the repo's clip losslessly (a file, or `-` on standard input) and
compare with test.py --video; the `slow` ones (make test-slow) need real-time seconds: a loopback UDP
stream, SIGINT mid-stream, a silent source, a source faster than compute, and `-` read from a real pipe."""
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from scripts.evaluation import stream as live
from scripts.evaluation.demo_video import send_udp, transport_stream
from scripts.evaluation.single_video import VideoScorer
from test_single_video import make_checkpoint
from tests.conftest import ROOT

MAP, SEQUENCE = [192, 4, 5, 5], [2048, 32, 1, 1]


@pytest.fixture(scope="module")
def clip_ts(tmp_path_factory):
    """5 s of the street clip at 10 fps as an MPEG-TS: x3d_xs's 1.6 s windows give 3 clips."""
    return transport_stream(tmp_path_factory.mktemp("ts") / "street.ts", 5.0)


def scorer_for(tmp_path, shape, **options):
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", shape, shape == SEQUENCE)
    return VideoScorer(ckpt, backbone="x3d_xs", random_weights=True, decoder="av", clip_workers=1, **options)


def lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_stream(scorer, source, out_dir, threshold=0.5, **options):
    events = io.StringIO()
    reason, written = live.score_stream(scorer, str(source), out_dir, threshold=threshold, said="test threshold",
                                        events=events, **options)
    return reason, written, lines(events.getvalue())


def test_a_piped_file_gives_the_points_and_scores_of_video(clip_ts, tmp_path):
    """Map checkpoint, windows of 2 clips sliding by one: 3 clips, 2 points, the same as --video."""
    scorer = scorer_for(tmp_path, MAP, window_clips=2)
    expected = scorer.score(clip_ts, progress=False)
    reason, written, events = run_stream(scorer, clip_ts, tmp_path / "out")
    points = [e for e in events if e["event"] == "score"]
    assert reason == "eof" and events[-1]["event"] == "end" and events[-1]["reason"] == "eof"
    assert [(p["start_s"], p["end_s"]) for p in points] == [(0.0, 3.2), (1.6, 4.8)]
    assert expected.starts.tolist() == pytest.approx([p["start_s"] for p in points])
    assert expected.ends.tolist() == pytest.approx([p["end_s"] for p in points])
    assert np.abs(expected.scores - [p["score"] for p in points]).max() < 1e-5
    assert all(p["dropped_frames"] == 0 and p["latency_s"] >= 0 for p in points)
    rows = (tmp_path / "out" / "scores.csv").read_text().splitlines()
    assert rows[1] == "start_s,end_s,start_frame,end_frame,score" and len(rows) == 2 + len(points)
    assert {p.name for p in written} == {"scores.csv", "timeline.png"}


def test_alert_lines_where_the_score_crosses_the_threshold(clip_ts, tmp_path):
    scorer = scorer_for(tmp_path, MAP, window_clips=1)
    _, _, first = run_stream(scorer, clip_ts, tmp_path / "a")
    scores = [e["score"] for e in first if e["event"] == "score"]
    assert len(scores) == 3 and len(set(scores)) == 3
    middle = sorted(scores)[1]
    _, _, events = run_stream(scorer, clip_ts, tmp_path / "b", threshold=middle)
    kinds = [(e["event"], e.get("state")) for e in events]
    above = [s >= middle for s in scores]
    expected = []
    state = False
    for s, up in zip(scores, above):
        expected.append(("score", None))
        if up != state:
            expected.append(("alert", "start" if up else "end"))
            state = up
    if state:
        expected.append(("alert", "end"))  # the stream ended during an alert
    assert kinds == expected + [("end", None)]
    assert all(e["threshold"] == middle for e in events if e["event"] in ("score", "alert"))


def test_a_sequence_checkpoint_scores_each_snippet_as_it_arrives(clip_ts, tmp_path):
    scorer = scorer_for(tmp_path, SEQUENCE)
    expected = scorer.score(clip_ts, progress=False)
    _, _, events = run_stream(scorer, clip_ts, tmp_path / "s")
    points = [e for e in events if e["event"] == "score"]
    assert [p["start_s"] for p in points] == pytest.approx(expected.starts.tolist())
    assert all(0 <= p["score"] <= 1 for p in points)
    # the newest snippet sees the snippets before it only; the last one sees what --video sees
    assert points[-1]["score"] == pytest.approx(float(expected.scores[-1]), abs=1e-5)


@pytest.mark.slow  # processes and their timing: make test-slow
def test_stream_from_standard_input_writes_only_json_lines(clip_ts, tmp_path):
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", MAP, False)
    with open(clip_ts, "rb") as source:
        done = subprocess.run([sys.executable, "test.py", "--stream", "-", "--checkpoint", str(ckpt),
                               "--backbone", "x3d_xs", "--random_weights", "--window_clips", "2",
                               "--out_dir", str(tmp_path / "live"), "--threads", "1"],
                              stdin=source, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    events = lines(done.stdout)  # every stdout line is JSON
    assert [e["event"] for e in events] == ["score", "score", "end"]
    assert "stream ended (eof)" in done.stderr
    assert (tmp_path / "live" / "scores.csv").is_file() and (tmp_path / "live" / "timeline.png").is_file()


def test_bad_stream_flags_are_one_line(tmp_path, clip_ts):
    scorer = scorer_for(tmp_path, MAP)
    with pytest.raises(live.MateError, match="--stream_timeout: must be a positive"):
        run_stream(scorer, clip_ts, tmp_path / "x", timeout=float("nan"))
    with pytest.raises(live.MateError, match="--reconnect: must be 0 or more"):
        run_stream(scorer, clip_ts, tmp_path / "x", reconnect=-1)


def test_a_missing_source_ends_in_one_line(tmp_path):
    scorer = scorer_for(tmp_path, MAP)
    reason, _, events = run_stream(scorer, tmp_path / "nothing.ts", tmp_path / "m")
    assert reason == "error" and events[-1] == {**events[-1], "event": "end", "points": 0}


# ------------------------------------------------------------------------------- real time (make test-slow)
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def play(path, port, seconds, delay=0.5):
    """A thread sending the TS to the port in real time, after `delay` s (the reader opens first)."""
    def go():
        time.sleep(delay)
        send_udp(path, port, seconds=seconds)
    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_loopback_udp_stream_is_scored_live(clip_ts, tmp_path):
    port = free_port()
    scorer = scorer_for(tmp_path, MAP, window_clips=1)
    sender = play(clip_ts, port, seconds=5.0)
    reason, _, events = run_stream(scorer, f"udp://127.0.0.1:{port}", tmp_path / "u", timeout=3.0)
    sender.join()
    points = [e for e in events if e["event"] == "score"]
    assert reason == "timeout"  # UDP has no end: the silence after the last datagram ends it
    assert len(points) >= 2  # UDP may lose packets: points arrive, equality is not required
    assert all(p["latency_s"] < 5 for p in points)


@pytest.mark.slow
def test_sigint_mid_stream_leaves_complete_scores(tmp_path):
    ts = transport_stream(tmp_path / "long.ts", 90.0)  # long enough for a slow start; cut short by `stop`
    port = free_port()
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", MAP, False)
    proc = subprocess.Popen([sys.executable, "test.py", "--stream", f"udp://127.0.0.1:{port}", "--checkpoint",
                             str(ckpt), "--backbone", "x3d_xs", "--random_weights", "--window_clips", "1",
                             "--out_dir", str(tmp_path / "live"), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    # like a camera, the sender streams from the start; the scorer (slow to start on a loaded machine) joins
    # whenever it listens
    stop = threading.Event()
    sender = threading.Thread(target=send_udp, args=(ts, port), kwargs={"seconds": 90.0, "stop": stop}, daemon=True)
    sender.start()
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 2 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(json.loads(line))
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"no exit 60 s after SIGINT; stderr:\n{err[-3000:]}")
    stop.set()
    events = seen + lines(out)
    assert proc.returncode == 0, err
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "interrupted"
    points = [e for e in events if e["event"] == "score"]
    rows = (tmp_path / "live" / "scores.csv").read_text().splitlines()
    assert len(rows) == 2 + len(points) and len(points) >= 2


@pytest.mark.slow
def test_a_silent_source_ends_after_the_timeout_in_one_line(tmp_path):
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", MAP, False)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "test.py", "--stream", f"udp://127.0.0.1:{free_port()}", "--checkpoint",
                           str(ckpt), "--backbone", "x3d_xs", "--random_weights", "--stream_timeout", "1",
                           "--reconnect", "1", "--out_dir", str(tmp_path / "quiet"), "--threads", "1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1
    assert time.monotonic() - start < 30
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nothing received for 3 s (--stream_timeout 1 + 2 s to open)" in errors[0]
    assert lines(done.stdout)[-1]["reason"] == "timeout"


@pytest.mark.slow
def test_a_source_faster_than_compute_drops_frames_with_memory_bounded(tmp_path, monkeypatch):
    """A backbone stand-in that takes 3 s per 1.6 s clip: the reader drops whole clips, never queues more
    than QUEUE_CLIPS, and holds at most one window's frames."""
    ts = transport_stream(tmp_path / "fast.ts", 12.0)
    real = live.forward_clips
    waiting = []

    def slow(net, batch, settings, device):
        waiting.append(reader_ref[0].queue.qsize() if reader_ref else 0)
        time.sleep(3.0)
        return real(net, batch, settings, device)

    reader_ref = []
    original = live.LiveReader.start

    def keep(self):
        reader_ref.append(self)
        return original(self)

    monkeypatch.setattr(live, "forward_clips", slow)
    monkeypatch.setattr(live.LiveReader, "start", keep)
    port = free_port()
    scorer = scorer_for(tmp_path, MAP, window_clips=1)
    sender = play(ts, port, seconds=12.0)
    reason, _, events = run_stream(scorer, f"udp://127.0.0.1:{port}", tmp_path / "f", timeout=2.0)
    sender.join()
    reader = reader_ref[0]
    points = [e for e in events if e["event"] == "score"]
    assert reader.dropped_clips >= 1 and events[-1]["dropped_frames"] > 0
    assert max(waiting) <= live.QUEUE_CLIPS
    assert reader.assembler.peak_buffer <= 16 + 2  # 1.6 s at 10 fps, plus the frame that completes it
    assert points and points[-1]["dropped_frames"] > 0
