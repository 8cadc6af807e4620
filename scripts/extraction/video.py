"""Streaming video decoding for feature_extractor.py and test.py --video: frames with their presentation
times (cv2 or PyAV), the stream's duration, checks that a file is a complete video, and the recursive
search for video files. What the frames become (X3D preprocessing, windows and clips in seconds) is
scripts/extraction/clips.py.
"""
from __future__ import annotations

import math
import os
import stat
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from scripts.core.errors import MateError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                    ".ts", ".3gp")
DECODERS = ("cv2", "av")


def as_seconds(value: float | Fraction) -> Fraction:
    """A time in seconds as an exact fraction: a float read from a container (OpenCV's milliseconds / 1000)
    is snapped to the nearest fraction with a denominator up to 10^6, which recovers every time base in use
    (1/25, 1/12800, 1001/30000, 1/90000, ...) from its double."""
    return value if isinstance(value, Fraction) else Fraction(value).limit_denominator(10**6)


# ---------------------------------------------------------------------------------------------- decoding
class VideoReader:
    """One video, decoded frame by frame into BGR uint8 arrays [H, W, 3] (OpenCV's convention).

    `fps` and `declared_frames` are the container's claims (None when it has none); the number of frames
    that really decode is what `frames()` yields. `threads` is FFmpeg's thread count for this decoder:
    1 (the default) is fastest for small videos such as UCF-Crime's 320x240, and several videos decode in
    parallel instead (measured: FFmpeg's automatic frame threading made PyAV 6x slower there); 0 lets
    FFmpeg choose, for a few large videos.
    """

    def __init__(self, path: str | Path, decoder: str = "cv2", threads: int = 1):
        if decoder not in DECODERS:
            raise MateError(f"--decoder: '{decoder}' is not one of {', '.join(DECODERS)}")
        self.path, self.decoder, self.threads = Path(path), decoder, threads
        check_video_file(self.path)
        self.fps: float | None = None
        self.declared_frames: int | None = None
        self.decode_error: str | None = None  # why decoding stopped early, when the decoder says so
        self.duration: Fraction | None = None  # seconds, as pytorchvideo reads it (stream_duration)
        self._handle = self._open_cv2() if decoder == "cv2" else self._open_av()
        if decoder == "cv2":
            self.duration = probe_duration(self.path)

    def _open_cv2(self):
        import cv2

        params = [cv2.CAP_PROP_N_THREADS, self.threads] if self.threads > 0 else []
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_ANY, params)
        if not cap.isOpened():
            raise MateError(f"{self.path}: cannot open video (corrupt, truncated or unsupported format)")
        fps, count = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else None
        self.declared_frames = int(count) if count and math.isfinite(count) and count > 0 else None
        return cap

    def _open_av(self):
        import av

        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise MateError(f"{self.path}: cannot open video with PyAV ({_reason(exc)})") from None
        if not container.streams.video:
            container.close()
            raise MateError(f"{self.path}: no video stream (an audio-only or data file?)")
        stream = container.streams.video[0]
        stream.codec_context.thread_count = self.threads
        if self.threads != 1:
            stream.thread_type = "AUTO"  # frame and slice threads inside FFmpeg
        self.fps = float(stream.average_rate) if stream.average_rate else None
        self.declared_frames = int(stream.frames) or None
        self.duration = stream_duration(stream)
        return container

    def frames(self) -> Iterator[np.ndarray]:
        """The frames alone (timed_frames without the times)."""
        return (frame for frame, _ in self.timed_frames())

    def _frames_cv2(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self._handle.read()  # OpenCV stops at the first frame it cannot decode
            if not ok:
                return
            yield frame

    def timed_frames(self) -> Iterator[tuple[np.ndarray, Fraction]]:
        """(frame, time): each frame with its presentation time in seconds from the stream's start, exact
        (PyAV: pts x time base; OpenCV: its position in milliseconds, snapped by as_seconds). A frame
        without a timestamp takes index / fps."""
        if self.decoder == "cv2":
            import cv2

            for index, frame in enumerate(self._frames_cv2()):
                ms = self._handle.get(cv2.CAP_PROP_POS_MSEC)
                yield frame, (as_seconds(ms / 1000) if ms > 0 or index == 0 else self._fallback_time(index))
            return
        import av

        stream = self._handle.streams.video[0]
        start = stream.start_time or 0
        try:
            for index, frame in enumerate(self._handle.decode(video=0)):
                time = (frame.pts - start) * frame.time_base if frame.pts is not None else self._fallback_time(index)
                yield frame.to_ndarray(format="bgr24"), Fraction(time)
        except av.FFmpegError as exc:  # stop as OpenCV does; check_complete judges what is missing
            self.decode_error = _reason(exc)

    def _fallback_time(self, index: int) -> Fraction:
        if not self.fps:
            raise MateError(f"{self.path}: frame {index} has no timestamp and the container no frame rate")
        return index / as_seconds(self.fps)

    def close(self) -> None:
        if self.decoder == "cv2":
            self._handle.release()
        else:
            self._handle.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stream_duration(stream) -> Fraction | None:
    """A PyAV video stream's duration in seconds as pytorchvideo's EncodedVideoPyAV reads it: the
    stream's declared duration less its start time, in its time base; None when it declares none."""
    if not stream.duration or stream.time_base is None:
        return None
    return Fraction(stream.duration - (stream.start_time or 0)) * stream.time_base


def probe_duration(path: Path) -> Fraction | None:
    """The duration pytorchvideo would read, for a video decoded with OpenCV (None if PyAV cannot open it)."""
    try:
        import av

        with av.open(str(path)) as container:
            return stream_duration(container.streams.video[0])
    except Exception:  # any fault here is the decoder's to report, not the probe's
        return None


def check_video_file(path: Path) -> None:
    """Faults of the file itself, named before a decoder sees it: a decoder that cannot open a file
    says only "corrupt or unsupported", which would be wrong for a broken link or a permission."""
    if not path.exists():
        if path.is_symlink():
            raise MateError(f"{path}: broken symbolic link (to {os.readlink(path)}, which does not exist)")
        raise MateError(f"{path}: video file not found")
    if not path.is_file():
        raise MateError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except OSError as exc:
        raise MateError(f"{path}: unreadable ({exc.strerror or _reason(exc)}), not a decoding fault") from None
    if empty:
        raise MateError(f"{path}: empty file (0 bytes), not a video")


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def check_complete(path: str | Path, decoded: int, declared: int | None, allow_truncated: bool = False,
                   decode_error: str | None = None) -> bool:
    """Fewer decoded frames than the container declares (or a decode error) means a damaged file.

    Containers without a frame index (MKV, FLV) estimate the count from duration x fps, which can be off
    by a frame or two, hence the small tolerance. Returns True when frames are missing but allowed.
    """
    if decoded == 0:
        raise MateError(f"{path}: no frame could be decoded (empty or corrupt video"
                        + (f": {decode_error})" if decode_error else ")"))
    short = declared is not None and decoded < declared - max(2, math.ceil(0.01 * declared))
    if not short and decode_error is None:
        return False
    if allow_truncated:
        return True
    of = f" of the {declared} frames its container declares" if declared else ""
    why = f"; {decode_error}" if decode_error else ""
    raise MateError(f"{path}: truncated or damaged: decoded {decoded}{of}{why} "
                    "(--allow_truncated extracts what decodes)")


def find_videos(root: str | Path) -> list[Path]:
    """Every video file under `root` (see scan_videos), sorted by relative path."""
    return scan_videos(root)[0]


def scan_videos(root: str | Path) -> tuple[list[Path], dict[Path, Path]]:
    """Every video file under `root` (recursive, by extension, any case), sorted by relative path, and
    the paths left out because they lead to a file listed already: {left out: listed}.

    Symbolic links to folders are followed (a video root is often links to class folders elsewhere),
    except one that leads back into its own ancestors (a loop). A file reached through several paths
    (a linked folder, a link or hard link to a video) is listed once, by a path without links if it has
    one, else the first in sorted order. A broken link named like a video is listed, so the extractor
    reports it instead of leaving it out unnoticed. Folders that cannot be listed are passed over.
    """
    root = Path(root)
    if not root.is_dir():
        raise MateError(f"{root}: --video_root is not a folder")
    found: dict[object, list[tuple[bool, str, Path]]] = {}  # file identity -> (through a link, rel, path)
    ancestors = {str(root): (os.path.realpath(root),)}  # real paths from root down to each folder
    linked = {str(root): False}
    for folder, subfolders, files in os.walk(root, followlinks=True):
        kept = []
        for name in sorted(subfolders):
            sub, real = os.path.join(folder, name), os.path.realpath(os.path.join(folder, name))
            if real in ancestors[folder]:
                continue  # a link back up: following it would never end
            ancestors[sub], linked[sub] = ancestors[folder] + (real,), linked[folder] or os.path.islink(sub)
            kept.append(name)
        subfolders[:] = kept
        for name in files:
            if os.path.splitext(name)[1].lower() not in VIDEO_EXTENSIONS:
                continue
            path = Path(folder, name)
            try:
                st = path.stat()
                key = (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else os.path.realpath(path)
            except OSError:  # a broken link: named by where it points
                key = os.path.realpath(path)
            via_link = linked[folder] or path.is_symlink()
            found.setdefault(key, []).append((via_link, path.relative_to(root).as_posix(), path))
    videos, duplicates = [], {}
    for paths in found.values():
        (_, _, first), *others = sorted(paths)  # without links first, then by relative path
        videos.append(first)
        duplicates.update({path: first for _, _, path in others})
    return sorted(videos, key=lambda p: p.relative_to(root).as_posix()), duplicates
