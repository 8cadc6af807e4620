"""Scoring a live source as it streams (test.py --stream SOURCE): a camera, a network stream, or an
MPEG-TS on standard input, with one JSON line per point (README, "Score your own video"; docs/extractor.md).

SOURCE is anything PyAV opens as a live source: an rtsp://, udp://, http:// (...) URL, a V4L2 device
(/dev/video0), `-` for an MPEG-TS on standard input, or a file. Stream time is seconds since the first
frame's timestamp; windows are cut from it exactly as for a file (scripts/extraction/clips.py), so a
piped file gives the points and scores of test.py --video on it (map checkpoints; for sequence
checkpoints a live point is the newest snippet scored on the snippets so far, at most `history`, where
--video also sees the ones after it).

A reader thread decodes the source and assembles clips, holding at most one clip window's frames; the
main thread runs the backbone and the detector on each clip as it comes. Between them a queue of at most
QUEUE_CLIPS clips: when compute falls behind a live source (URL, device), a new clip that finds the queue
full pushes out the oldest waiting one (its frames counted as dropped, a line on stderr and the JSON
lines say how far behind the scoring is), so memory stays bounded and the points stay recent; a pipe or file is read losslessly, at the consumer's pace.

Each point is one JSON line on standard output (then it carries nothing else) or in --events FILE:
    {"event": "score", "start_s", "end_s", "score", "threshold", "wall_time", "latency_s", "behind_s",
     "dropped_frames"}
    {"event": "alert", "state": "start" | "end", "at_s", "score", "threshold", "wall_time"}
    {"event": "end", "reason": "eof" | "interrupted" | "timeout" | "error", "points", "frames",
     "dropped_frames", "stream_s", "compute_s", "peak_memory_gib", "wall_time"}
latency_s: from the arrival of the frame that completed the point's last clip to its line; behind_s: the
stream time of the newest frame read minus the point's end. scores.csv is rewritten (atomically) after
every point and timeline.png every 10 s (scripts/evaluation/stream_outputs.py), both complete at the end: EOF, Ctrl-C or SIGTERM.
A source that sends nothing for --stream_timeout seconds is reopened --reconnect times, then the run ends
with one line.
"""
from __future__ import annotations

import contextlib
import queue
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import torch

from scripts.core.errors import MateError
from scripts.core.producer import END, Producer
from scripts.evaluation.single_video import VideoScorer
from scripts.evaluation.stream_outputs import StreamOutputs
from scripts.extraction.clips import CLOCK_FPS, ClipAssembler, preprocess_frame
from scripts.extraction.extraction import forward_clips

STDIN = "-"
LIVE_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "rtp://", "tcp://", "srt://", "http://", "https://",
                 "/dev/")
QUEUE_CLIPS = 2  # clips waiting for the model at most


def is_live(source: str) -> bool:
    """A network stream or a device: its frames come whether or not they are read, so a slow reader drops."""
    return source.startswith(LIVE_PREFIXES)


PROBE_S = 1.0  # seconds of a live stream FFmpeg reads to learn its format before the first frame


def wait_s(timeout: float) -> float:
    """How long FFmpeg waits for a live source before giving up: --stream_timeout plus the probing's time."""
    return timeout + PROBE_S + 1.0


def open_source(source: str, timeout: float):
    """The PyAV container of SOURCE. FFmpeg waits at most `wait_s(timeout)` = timeout + PROBE_S + 1 s for
    the opening and for each read: the opening reads the stream's first second to learn its format, and
    PyAV may count the first read's wait from the start of the opening (measured: a read timeout shorter
    than a slow opening ended the stream at its first frames), so reads get the same bound."""
    import av

    try:
        if source == STDIN:
            return av.open(sys.stdin.buffer, format="mpegts")
        options = {"analyzeduration": str(int(PROBE_S * 1e6))}
        if source.startswith("udp://"):
            options["overrun_nonfatal"] = "1"
        fmt = "v4l2" if source.startswith("/dev/video") else None
        return av.open(source, format=fmt, options=options, timeout=wait_s(timeout))
    except (av.FFmpegError, OSError, ValueError) as exc:
        text = " ".join(str(exc).split())
        if "exit requested" in text.lower() or "timed out" in text.lower():
            raise MateError(f"{source}: nothing received for {wait_s(timeout):g} s (--stream_timeout "
                            f"{timeout:g} + {PROBE_S + 1.0:g} s to open)") from None
        raise MateError(f"{source}: cannot open the stream ({text})") from None


def clip_times(spec) -> Iterator[tuple[float, float]]:
    """[start, end) in stream seconds of clip 0, 1, 2, ... (scripts/extraction/clips.py's rules)."""
    if spec.sampling == "uniform":
        for start, end in spec.windows():
            yield float(start), float(end)
        return
    span = ((spec.num_frames - 1) * spec.sampling_rate + 1) / CLOCK_FPS
    i = 0
    while True:
        yield i * spec.stride_s, i * spec.stride_s + span
        i += 1


@dataclass
class Clip:
    index: int
    start: float
    end: float
    tensor: torch.Tensor  # [3, T, h, w]
    arrived: float  # time.monotonic() when the frame completing it was read
    frames: int  # frames read since the clip before it


class LiveReader(Producer):
    """Decodes SOURCE in a background thread into clips on a bounded queue (see the module docstring)."""

    def __init__(self, source: str, scorer: VideoScorer, *, timeout: float, reconnect: int):
        self.source, self.timeout, self.reconnect = source, timeout, reconnect
        self.live = is_live(source)
        s = scorer.extract
        center = s.crop_size if s.crops == 1 else None
        self.assembler = ClipAssembler(s.spec, partial(preprocess_frame, side_size=s.side_size, crop_size=center))
        self.times = clip_times(s.spec)
        super().__init__(QUEUE_CLIPS, name="stream reader")
        self.frames = self.dropped_frames = self.dropped_clips = 0
        self.fps: float | None = None
        self.newest = 0.0  # stream time of the newest frame read
        self.last_read = time.monotonic()
        self.end_reason = "eof"
        self._window_frames = 0  # frames read since the last clip completed

    def produce(self) -> None:
        self._read()
        for tensor in self.assembler.finish():
            self._offer(tensor, lossless=True)

    def _read(self) -> None:
        import av

        attempts, offset, origin = 0, Fraction(0), None
        while not self.stopping.is_set():
            container = None
            try:
                container = open_source(self.source, self.timeout)
                stream = container.streams.video[0]
                self.fps = self.fps or (float(stream.average_rate) if stream.average_rate else None)
                for frame in container.decode(video=0):
                    if self.stopping.is_set():
                        return
                    if frame.pts is None:
                        continue
                    t = Fraction(frame.pts) * frame.time_base
                    if origin is None:
                        origin = t - offset  # after a reconnect the stream time goes on from where it was
                    now = t - origin
                    if self.frames and now <= self.assembler.last_time:
                        continue  # a repeated or reordered timestamp (e.g. after a reconnect)
                    self.last_read, self.newest, attempts = time.monotonic(), float(now), 0
                    self.frames += 1
                    self._window_frames += 1
                    for tensor in self.assembler.push(frame.to_ndarray(format="bgr24"), now):
                        self._offer(tensor, lossless=not self.live)
                return  # the source ended
            except MateError:
                if attempts >= self.reconnect:
                    self.end_reason = "timeout" if self.live else "error"
                    raise
            except av.FFmpegError as exc:  # a read that timed out, a connection reset
                if attempts >= self.reconnect:
                    text = " ".join(str(exc).split())
                    timed_out = "exit requested" in text.lower() or "timed out" in text.lower()
                    self.end_reason = "timeout" if timed_out else "error"
                    why = f"no frame for {wait_s(self.timeout):g} s" if timed_out else f"the stream broke ({text})"
                    raise MateError(f"{self.source}: {why}; stopped after {self.reconnect} reconnect "
                                    "attempt(s)") from None
            finally:
                if container is not None:
                    container.close()
            attempts += 1
            step = Fraction(1) / Fraction(self.fps or 30).limit_denominator(1000)
            offset, origin = (self.assembler.last_time or Fraction(0)) + step, None
            print(f"{self.source}: reconnecting ({attempts} of {self.reconnect})", file=sys.stderr, flush=True)

    def _offer(self, tensor: torch.Tensor, lossless: bool) -> None:
        start, end = next(self.times)
        clip = Clip(self.assembler.next_clip - 1, start, end, tensor, time.monotonic(), self._window_frames)
        self._window_frames = 0
        if lossless:
            self.put(clip)
            return
        while True:
            try:
                self.queue.put_nowait(clip)
                return
            except queue.Full:  # compute is behind a live source: drop the oldest waiting window
                try:
                    old = self.queue.get_nowait()
                except queue.Empty:  # the model just took it
                    continue
                self.dropped_clips += 1
                self.dropped_frames += old.frames
                print(f"{self.source}: scoring is {self.newest - old.end:.1f} s behind the stream; dropped the clip "
                      f"{old.start:.2f}-{old.end:.2f} s ({self.dropped_frames} frames dropped so far)",
                      file=sys.stderr, flush=True)

    def close(self) -> None:
        super().close(timeout=1.0)  # a read still blocked after that is left to its (daemon) thread


class _Stop:
    """Ctrl-C and SIGTERM ask the stream to stop; the main loop ends after the clip in hand, so no
    signal lands inside a write, a plot or a lock (a lock left held there once hung the finish). A second
    signal interrupts at once."""

    def __init__(self):
        self.requested = threading.Event()
        self._previous: dict = {}

    def __enter__(self) -> "_Stop":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def check_stream_flags(timeout: float, reconnect: int) -> None:
    """--stream_timeout and --reconnect, checked before the backbone loads (test.py) and here."""
    if not timeout > 0:
        raise MateError(f"--stream_timeout: must be a positive number of seconds, got {timeout}")
    if reconnect < 0:
        raise MateError(f"--reconnect: must be 0 or more, got {reconnect}")


def score_stream(scorer: VideoScorer, source: str, out_dir: Path, *, threshold: float, said: str,
                 events: IO[str], timeout: float = 10.0, reconnect: int = 0, history: int | None = None,
                 plots: bool = True) -> tuple[str, list[Path]]:
    """Score SOURCE until it ends (EOF, Ctrl-C, SIGTERM, silence); returns why it ended and the files."""
    check_stream_flags(timeout, reconnect)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = StreamOutputs(scorer, out_dir, events, threshold, said, plots)
    history = history or int(scorer.feature.get("num_segments") or 32)
    recent: deque = deque(maxlen=scorer.K if not scorer.sequence else history)  # clip maps or snippet vectors
    windows: deque[Clip] = deque(maxlen=recent.maxlen)
    with _Stop() as stop:  # Ctrl-C and SIGTERM are a request from here on: the files are finished whole
        reader = LiveReader(source, scorer, timeout=timeout, reconnect=reconnect).start()
        reason = _consume(scorer, reader, stop, recent, windows, outputs, timeout, reconnect)
        return reason, outputs.finish(reason, reader)


def _score_clip(scorer: VideoScorer, clip: Clip, recent: deque, windows: deque, outputs: StreamOutputs,
                reader: LiveReader) -> None:
    y = forward_clips(scorer.net, clip.tensor[None], scorer.extract, scorer.device)  # [1, crops, ...]
    windows.append(clip)
    if scorer.sequence:
        recent.append(y[0].cpu().numpy())  # [crops, D]
        features = np.stack(recent)
        features = features[:, 0] if features.shape[1] == 1 else features
        score = float(scorer.snippet_scores(features)[-1])
        outputs.point(clip.start, clip.end, score, latency=time.monotonic() - clip.arrived,
                      behind=reader.newest - clip.end, dropped=reader.dropped_frames)
        return
    recent.append(scorer.clip_maps(y, reader.source)[0])
    if len(recent) == recent.maxlen:
        _emit_window(scorer, recent, windows, outputs, reader)


def _emit_window(scorer, recent, windows, outputs, reader) -> None:
    last = windows[-1]
    outputs.point(windows[0].start, last.end, scorer.window_score(recent), latency=time.monotonic() - last.arrived,
                  behind=reader.newest - last.end, dropped=reader.dropped_frames)


def _consume(scorer, reader: LiveReader, stop: _Stop, recent: deque, windows: deque, outputs: StreamOutputs,
             timeout: float, reconnect: int) -> str:
    """The main loop: score each clip as it comes until the source ends, a stop is asked or an error;
    returns why it ended."""
    source = reader.source
    # a pipe has no FFmpeg timeout: silence there is caught here; a network source's reader gives up first
    limit = wait_s(timeout) * (reconnect + 1) + 2.0 if reader.live else timeout
    reason = "eof"
    try:
        while True:
            if stop.requested.is_set():
                reason = "interrupted"
                break
            try:
                item = reader.queue.get(timeout=0.25)
            except queue.Empty:
                silent = time.monotonic() - reader.last_read
                if silent > limit:  # the reader is stuck in a blocking read
                    reader.end_reason = "timeout"
                    raise MateError(f"{source}: no frame for {silent:.0f} s (--stream_timeout {timeout:g}); stopped")
                continue
            if item is END:
                break
            if isinstance(item, BaseException):
                raise item
            started = time.perf_counter()
            _score_clip(scorer, item, recent, windows, outputs, reader)
            outputs.compute_s += time.perf_counter() - started
        if reason == "eof" and not scorer.sequence and not outputs.scores and recent:  # fewer clips than K
            _emit_window(scorer, recent, windows, outputs, reader)  # one window over all of them
    except KeyboardInterrupt:  # a second Ctrl-C
        reason = "interrupted"
    except MateError as exc:
        reason = reader.end_reason if reader.end_reason != "eof" else "error"
        print(f"error: {exc}", file=sys.stderr, flush=True)
    finally:
        reader.close()
    return reason


def run_stream(args, scorer: VideoScorer, out_dir: Path, threshold: float, said: str) -> int:
    """test.py --stream: JSON lines to stdout or --events until the source ends; returns the exit code."""
    with contextlib.ExitStack() as stack:
        events = sys.stdout
        if args.events is not None:
            args.events.parent.mkdir(parents=True, exist_ok=True)
            events = stack.enter_context(open(args.events, "a", encoding="utf-8"))
        reason, written = score_stream(scorer, args.stream, out_dir, threshold=threshold, said=said, events=events,
                                       timeout=args.stream_timeout, reconnect=args.reconnect,
                                       history=args.window_clips if scorer.sequence else None,
                                       plots=not args.no_plots)
    print(f"stream ended ({reason}); wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0 if reason in ("eof", "interrupted") else 1
