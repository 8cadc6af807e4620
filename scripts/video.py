"""Streaming video decoding, X3D preprocessing and the frames-to-clips rules of feature_extractor.py.

Preprocessing, as the published extractor made the shared UCF-Crime features: frames in RGB, the short
side scaled to `side_size` (bilinear, no antialiasing: pytorchvideo's ShortSideScale), a centre crop
(torchvision's CenterCrop), /255, then mean 0.45 and std 0.225 on every channel.

Frames to clips, two rules (clip i starts at frame i * stride; N = frames decoded):
    uniform  (the default, the published extractor's: pytorchvideo's UniformClipSampler and
             UniformTemporalSubsample) clip i covers the window [i * stride, i * stride + W) of
             W = num_frames x sampling_rate frames and takes num_frames frames spread evenly over it
             (linspace rounded down: X3D-L's 80-frame window gives 0, 5, 10, 15, 21, ..., 73, 79). Only
             whole windows become clips, 1 + (N - W) // stride of them, and the frames after the last
             one are left out; a video shorter than one window gives one clip spread over all its frames.
    strided  clip i takes the frames i * stride + j * sampling_rate; frames past the end of the video
             repeat its last frame. ceil(N / stride) clips, so every frame belongs to one: clip i
             stands for frames [i * stride, (i + 1) * stride), the rule scripts/framegt.py assumes.
Nothing holds the whole video: the ClipAssembler keeps only the preprocessed frames that clips still
waiting for their last frame need (uniform: also the first window's frames until the first clip is
complete, because a shorter video spreads its one clip over all of them), a bound independent of the
video's length.
"""
from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from scripts.errors import MateError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                    ".ts", ".3gp")
DECODERS = ("cv2", "av")
CLIP_SAMPLINGS = ("uniform", "strided")  # see the module docstring
MEAN, STD = 0.45, 0.225  # X3D's Kinetics normalisation, the same for the three channels


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
        self._handle = self._open_cv2() if decoder == "cv2" else self._open_av()

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
            stream = container.streams.video[0]
        except (av.FFmpegError, IndexError, UnicodeDecodeError) as exc:
            raise MateError(f"{self.path}: cannot open video with PyAV ({_reason(exc)})") from None
        stream.codec_context.thread_count = self.threads
        if self.threads != 1:
            stream.thread_type = "AUTO"  # frame and slice threads inside FFmpeg
        self.fps = float(stream.average_rate) if stream.average_rate else None
        self.declared_frames = int(stream.frames) or None
        return container

    def frames(self) -> Iterator[np.ndarray]:
        return self._frames_cv2() if self.decoder == "cv2" else self._frames_av()

    def _frames_cv2(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self._handle.read()  # OpenCV stops at the first frame it cannot decode
            if not ok:
                return
            yield frame

    def _frames_av(self) -> Iterator[np.ndarray]:
        import av

        try:
            for frame in self._handle.decode(video=0):
                yield frame.to_ndarray(format="bgr24")
        except av.FFmpegError as exc:  # stop as OpenCV does; check_complete judges what is missing
            self.decode_error = _reason(exc)

    def close(self) -> None:
        if self.decoder == "cv2":
            self._handle.release()
        else:
            self._handle.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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


# ----------------------------------------------------------------------------------------- preprocessing
def preprocess_frame(bgr: np.ndarray, side_size: int, crop_size: int | None = None) -> torch.Tensor:
    """BGR uint8 [H, W, 3] -> normalised RGB float [3, h, w] with the short side scaled to side_size.

    Bilinear without antialiasing, as pytorchvideo's ShortSideScale (the X3D checkpoints' transform and
    the published extractor's). Normalising before or after the scaling gives the same numbers (both are
    affine, the same for every channel). With crop_size, also the centre crop [3, crop, crop], so
    single-crop runs keep and move less data.
    """
    H, W, _ = bgr.shape
    if W < H:
        size = (int(math.floor(H / W * side_size)), side_size)
    else:
        size = (side_size, int(math.floor(W / H * side_size)))
    x = torch.from_numpy(bgr).flip(-1).permute(2, 0, 1)  # [3, H, W] RGB uint8
    x = x.unsqueeze(0).float()
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)[0]  # [3, h, w]
    if crop_size is not None:
        y, x0 = _offsets(size[0], crop_size)[1], _offsets(size[1], crop_size)[1]
        x = x[:, y:y + crop_size, x0:x0 + crop_size]  # [3, crop, crop]
    return (x / 255.0 - MEAN) / STD


def _offsets(length: int, size: int) -> tuple[int, int, int]:
    """Start, centre and end offsets of a crop along one axis.

    The centre is torchvision's CenterCrop anchor, round((length - size) / 2) with Python's round half
    to even, as the published extractor and pytorchvideo's X3D transform crop; SlowFast's uniform_crop
    rounds up, one pixel further when length - size is 1 mod 4 (UCF-Crime's 426 - 320 is not).
    """
    return 0, int(round((length - size) / 2)), length - size


def spatial_crops(clips: torch.Tensor, crop_size: int, crops: int = 1) -> torch.Tensor:
    """Square crops of clips [B, C, T, H, W] -> [B, K, C, T, crop, crop].

    1: centre (torchvision's CenterCrop, the published extractor's). 3: start, centre and end along the
    long side (left/centre/right for landscape, top/centre/bottom for portrait), as SlowFast's multi-view
    test. 10: the four corners and the centre, then the same five of the horizontally flipped clip
    (torchvision's TenCrop, the I3D releases).
    """
    B, C, T, H, W = clips.shape
    assert min(H, W) >= crop_size, f"frames {H}x{W} are smaller than the {crop_size}-pixel crop"
    s = crop_size
    ys, xs = _offsets(H, s), _offsets(W, s)
    if crops == 1:
        boxes = [(ys[1], xs[1])]
    elif crops == 3:
        boxes = [(y, xs[1]) for y in ys] if H > W else [(ys[1], x) for x in xs]
    elif crops == 10:
        five = [(ys[0], xs[0]), (ys[0], xs[2]), (ys[2], xs[0]), (ys[2], xs[2]), (ys[1], xs[1])]
        flipped = clips.flip(-1)
        views = [clips[..., y:y + s, x:x + s] for y, x in five]
        views += [flipped[..., y:y + s, x:x + s] for y, x in five]
        return torch.stack(views, dim=1)  # [B, 10, C, T, s, s]
    else:
        raise MateError(f"--crops: {crops} is not 1, 3 or 10")
    return torch.stack([clips[..., y:y + s, x:x + s] for y, x in boxes], dim=1)  # [B, K, C, T, s, s]


# ----------------------------------------------------------------------------------------- frames -> clips
def uniform_offsets(length: int, num_samples: int) -> tuple[int, ...]:
    """num_samples indices spread evenly over [0, length), rounded down: pytorchvideo's
    UniformTemporalSubsample (a float32 linspace, as there); indices repeat when length < num_samples."""
    assert length >= 1 and num_samples >= 1, f"cannot take {num_samples} of {length} frames"
    return tuple(torch.linspace(0, length - 1, num_samples).clamp(0, length - 1).long().tolist())


@dataclass(frozen=True)
class ClipSpec:
    """Which frames make clip i: i * stride + offsets[j] for j < num_frames (module docstring)."""

    num_frames: int
    sampling_rate: int
    stride: int
    sampling: str = "uniform"

    def __post_init__(self):
        for key in ("num_frames", "sampling_rate", "stride"):
            if getattr(self, key) < 1:
                raise MateError(f"--{key}: must be at least 1, got {getattr(self, key)}")
        if self.sampling not in CLIP_SAMPLINGS:
            raise MateError(f"--clip_sampling: '{self.sampling}' is not one of {', '.join(CLIP_SAMPLINGS)}")

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """A clip's input frames, counted from its first frame."""
        if self.sampling == "uniform":
            return uniform_offsets(self.num_frames * self.sampling_rate, self.num_frames)
        return tuple(j * self.sampling_rate for j in range(self.num_frames))

    @property
    def span(self) -> int:
        """Frames from a clip's first to its last input frame, inclusive (uniform: the whole window)."""
        return self.offsets[-1] + 1

    def clip_count(self, num_frames: int) -> int:
        if self.sampling == "uniform":  # whole windows only; a shorter video still gives one clip
            return 1 + max(0, (num_frames - self.span) // self.stride)
        return math.ceil(num_frames / self.stride)

    def last_index(self, clip: int) -> int:
        return clip * self.stride + self.span - 1

    def indices(self, clip: int) -> list[int]:
        return [clip * self.stride + o for o in self.offsets]

    def is_needed(self, frame: int) -> bool:
        """Whether any clip takes this frame (frames between sampled ones are decoded, then dropped)."""
        first = max(0, math.ceil((frame - self.span + 1) / self.stride))  # clips that reach this frame
        last = frame // self.stride
        taken = set(self.offsets)
        return any(frame - i * self.stride in taken for i in range(first, last + 1))


class ClipAssembler:
    """Turns a stream of decoded frames into clips [3, T, h, w], in order, with a bounded buffer.

    `push` keeps a frame (preprocessed) only if some clip may take it and returns the clips it
    completes; `finish` returns the remaining clips of the video (uniform: only a video shorter than one
    window has one left; strided: the last ones, padded with the video's last frame). Frames before the
    next clip's start are dropped, so at most `spec.span` frames are ever held, however long the video.
    """

    def __init__(self, spec: ClipSpec, preprocess: Callable[[np.ndarray], torch.Tensor]):
        self.spec, self.preprocess = spec, preprocess
        self.buffer: dict[int, torch.Tensor] = {}
        self.num_frames = 0  # decoded so far
        self.next_clip = 0
        self.padded_frames = 0  # strided: clip input frames that repeat the last decoded frame
        self.dropped_frames = 0  # uniform: frames after the last whole window, in no clip
        self.peak_buffer = 0
        self._last_raw: np.ndarray | None = None

    def push(self, frame: np.ndarray) -> list[torch.Tensor]:
        index = self.num_frames
        self.num_frames += 1
        self._last_raw = frame
        # uniform: until the first window is complete, any of its frames may end up in a short video's clip
        short_clip = self.spec.sampling == "uniform" and index < self.spec.span
        if short_clip or self.spec.is_needed(index):
            self.buffer[index] = self.preprocess(frame)
            self.peak_buffer = max(self.peak_buffer, len(self.buffer))
        clips = []
        while self.spec.last_index(self.next_clip) <= index:
            clips.append(self._emit(self.spec.indices(self.next_clip)))
        return clips

    def finish(self) -> list[torch.Tensor]:
        N = self.num_frames
        clips = []
        if N == 0:
            return clips
        if self.spec.sampling == "uniform":
            if self.next_clip == 0:  # shorter than one window: one clip spread over all its frames
                clips.append(self._emit(list(uniform_offsets(N, self.spec.num_frames))))
            else:
                self.dropped_frames = N - self.spec.last_index(self.next_clip - 1) - 1
        while self.next_clip < self.spec.clip_count(N):  # strided: the clips that reach past the end
            if N - 1 not in self.buffer:  # the last frame, when no clip took it so far
                self.buffer[N - 1] = self.preprocess(self._last_raw)
            wanted = self.spec.indices(self.next_clip)
            self.padded_frames += sum(f >= N for f in wanted)
            clips.append(self._emit([min(f, N - 1) for f in wanted]))
        self.buffer.clear()
        return clips

    def _emit(self, indices: list[int]) -> torch.Tensor:
        clip = torch.stack([self.buffer[f] for f in indices], dim=1)  # [3, T, h, w]
        self.next_clip += 1
        start = self.next_clip * self.spec.stride
        for f in [f for f in self.buffer if f < start]:
            del self.buffer[f]
        return clip
