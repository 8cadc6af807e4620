"""X3D preprocessing and the frames-to-clips rules of feature_extractor.py (the decoding: video.py).

Preprocessing, as the published extractor made the shared UCF-Crime features: frames in RGB, the short
side scaled to `side_size` (bilinear, no antialiasing: pytorchvideo's ShortSideScale), a centre crop
(torchvision's CenterCrop), /255, then mean 0.45 and std 0.225 on every channel.

Frames to clips, in time (docs/extractor.md, "What a window is"). The clip settings count frames of the
published extractor's clock, CLOCK_FPS = 30: X3D-L's 16 x 5 frames make a window of 80 / 30 = 2.67 s,
whatever the video's own frame rate. A frame's time is its presentation timestamp, seconds from the
stream's start (variable frame rates included). Two rules:
    uniform  (the default, the published extractor's: pytorchvideo's UniformClipSampler and
             UniformTemporalSubsample) clip k takes the frames whose time lies in its window
             [k * W, (k + 1) * W) (W = num_frames x sampling_rate / 30 s; another --stride moves the start
             by stride / 30 s) and num_frames of them spread evenly (linspace rounded down: 80 frames at
             30 fps give 0, 5, 10, 15, 21, ..., 73, 79; 66 or 67 frames at 25 fps). Only windows that end
             within the video's duration become clips (the first one always: a short video gives one clip
             over all its frames); the frames after the last one are left out; an empty window (a gap in a
             variable-rate stream) ends the video, as it does in pytorchvideo.
    strided  clip i samples the times (i * stride + j * sampling_rate) / 30 s and takes the frame shown at
             each (the last one at or before it); times past the last frame take the last frame.
             ceil(duration / (stride / 30 s)) clips, so every moment belongs to one: clip i stands for
             [i * stride / 30, (i + 1) * stride / 30) s, the rule scripts/data/framegt.py maps frames with.
At 30 fps both are the frame-count rules of earlier versions (windows of 80 frames, clip i from frame
i * stride), so their feature files stay valid there and only there (scripts/feature_settings.check_clock).
Nothing holds the whole video: the ClipAssembler keeps the raw frames of one window (uniform) or one
clip's picked frames (strided), a bound independent of the video's length.
"""
from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from scripts.core.errors import MateError
from scripts.data.feature_settings import CLOCK_FPS, frame_rule_equal
from scripts.extraction.video import as_seconds

CLIP_SAMPLINGS = ("uniform", "strided")  # see the module docstring
MEAN, STD = 0.45, 0.225  # X3D's Kinetics normalisation, the same for the three channels


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
    """A clip's frames: num_frames x sampling_rate and stride are counted at the published clock of
    CLOCK_FPS frames per second, so windows and strides are times (module docstring)."""

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

    @property
    def window_s(self) -> float:
        """A window's length in seconds, the float the published extractor gives UniformClipSampler."""
        return self.num_frames * self.sampling_rate / CLOCK_FPS

    @property
    def stride_s(self) -> float:
        return self.stride / CLOCK_FPS

    def windows(self) -> Iterator[tuple[Fraction, Fraction]]:
        """uniform: the [start, end) of clip 0, 1, 2, ... in seconds, by pytorchvideo's UniformClipSampler
        arithmetic: Fraction(window_s) long; with the default stride (= window) start k is exactly k times
        that, with another stride the next start is the last end minus the overlap, in floats as there."""
        length = Fraction(self.window_s)
        if self.stride > self.num_frames * self.sampling_rate:  # gaps between clips: pytorchvideo has none
            for k in itertools.count():
                start = k * Fraction(self.stride, CLOCK_FPS)
                yield start, start + length
        overlap = 0 if self.stride == self.num_frames * self.sampling_rate else max(0, length - self.stride_s)
        last_end: float | Fraction = 0.0
        while True:
            start = Fraction(max(last_end - overlap, 0))
            last_end = start + length
            yield start, last_end

    @property
    def frame_rule_equal(self) -> bool:
        """Whether at CLOCK_FPS these clips are the frame-count rule's of earlier versions
        (scripts/data/feature_settings.frame_rule_equal)."""
        return frame_rule_equal(self.num_frames, self.sampling_rate, self.stride, self.sampling)

    def clip_windows(self, count: int) -> list[tuple[float, float]]:
        """[start, end) in seconds of the first `count` clips: uniform, their windows; strided, from the
        first to just after the last sampled time."""
        if self.sampling == "uniform":
            windows = self.windows()
            return [tuple(map(float, next(windows))) for _ in range(count)]
        span = ((self.num_frames - 1) * self.sampling_rate + 1) / CLOCK_FPS
        return [(i * self.stride_s, i * self.stride_s + span) for i in range(count)]

    def targets(self, clip: int) -> list[Fraction]:
        """strided: the times clip i samples, i * stride + j * sampling_rate frames of the clock."""
        return [Fraction(clip * self.stride + j * self.sampling_rate, CLOCK_FPS) for j in range(self.num_frames)]

    def clip_count(self, duration: Fraction | float | None) -> int | None:
        """How many clips a video of `duration` seconds gives (None when unknown): uniform, the windows
        that end within it (at least one); strided, one per stride begun."""
        if duration is None:
            return None
        duration = as_seconds(duration)
        if self.sampling == "strided":
            return max(1, math.ceil(duration / Fraction(self.stride, CLOCK_FPS)))
        count = 0
        for _, end in self.windows():
            if end > duration:
                return max(1, count)
            count += 1


class ClipAssembler:
    """Turns a stream of decoded frames and their times (seconds from the stream's start) into clips
    [3, T, h, w], in order, with a bounded buffer.

    uniform: the frames whose time lies in a window [start, end), num_frames of them picked by
    uniform_offsets, a window taken only once it is complete (a later frame arrived) or at the end when it
    ends within `duration`; the first window always (a shorter video); an empty window ends the video, as
    in pytorchvideo. Held: the raw frames of the windows not yet complete, one window's worth.
    strided: for each target time, the frame shown then (the last one at or before it; the first frame for a
    target before it), a clip taken once a later frame arrived; targets past the last frame take the last
    frame (`padded_frames`); ceil(duration / stride) clips. Held: the raw frames from the one shown at the
    next clip's first target on (one clip's span), each preprocessed once when first picked.
    `duration`: the container's (pytorchvideo's rule), None when it declares none (then the last frame's
    time decides, plus one frame at `fps` for strided).
    """

    def __init__(self, spec: ClipSpec, preprocess: Callable[[np.ndarray], torch.Tensor],
                 duration: Fraction | None = None, fps: float | None = None):
        self.spec, self.preprocess = spec, preprocess
        self.duration, self.fps = duration, fps
        self.num_frames = 0  # decoded so far
        self.next_clip = 0
        self.padded_frames = 0  # clip frames past the end of the video: strided, targets given the last frame;
        # uniform, the repeats in a window cut short by the end (the first window of a shorter video)
        self.dropped_frames = 0  # uniform: frames after the last window taken, in no clip
        self.peak_buffer = 0
        self.last_time: Fraction | None = None
        self._held: deque[tuple[int, Fraction, np.ndarray]] = deque()  # (index, time, raw frame)
        self._windows = spec.windows()
        self._window = next(self._windows)
        self._ended = False  # uniform: no more windows
        self._last_used = -1  # uniform: index of the last frame inside a window taken
        self._prepared: dict[int, torch.Tensor] = {}  # strided: held frames preprocessed once picked

    def push(self, frame: np.ndarray, time: Fraction | float) -> list[torch.Tensor]:
        time = as_seconds(time)
        index, self.num_frames, self.last_time = self.num_frames, self.num_frames + 1, time
        if self.spec.sampling == "strided":
            return self._push_strided(index, time, frame)
        if self._ended:
            return []
        self._held.append((index, time, frame))
        self.peak_buffer = max(self.peak_buffer, len(self._held))
        clips = []
        while not self._ended and time >= self._window[1]:
            clips += self._take_window(complete=True)
        return clips

    def finish(self) -> list[torch.Tensor]:
        if self.num_frames == 0:
            return []
        if self.spec.sampling == "strided":
            return self._finish_strided()
        clips = []
        while not self._ended:  # windows that end within the declared duration, until an empty one
            clips += self._take_window(complete=False)
        self.dropped_frames = self.num_frames - 1 - self._last_used
        self._held.clear()
        return clips

    # uniform
    def _take_window(self, complete: bool) -> list[torch.Tensor]:
        start, end = self._window
        first = self.next_clip == 0
        within = self.duration is not None and end <= self.duration
        if not first and not (within or (complete and self.duration is None)):
            self._ended = True  # the window ends past the video's duration
            return []
        frames = [(i, f) for i, t, f in self._held if start <= t < end]
        if not frames:
            self._ended = True  # an empty window ends the video (pytorchvideo: a clip without frames)
            return []
        picks = uniform_offsets(len(frames), self.spec.num_frames)
        if not (within or complete):  # a window cut short by the video's end: its repeats stand in for frames
            self.padded_frames += self.spec.num_frames - len(set(picks))
        clip = torch.stack([self.preprocess(frames[p][1]) for p in picks], dim=1)  # [3, T, h, w]
        self._last_used = max(self._last_used, frames[-1][0])
        self.next_clip += 1
        self._window = next(self._windows)
        while self._held and self._held[0][1] < self._window[0]:
            self._held.popleft()
        return [clip]

    # strided
    def _push_strided(self, index: int, time: Fraction, frame: np.ndarray) -> list[torch.Tensor]:
        self._held.append((index, time, frame))
        self.peak_buffer = max(self.peak_buffer, len(self._held))
        clips = []
        while time > self.spec.targets(self.next_clip)[-1]:  # the frame shown at each target is known
            clips.append(self._take_targets(self.spec.targets(self.next_clip)))
        return clips

    def _take_targets(self, targets: list[Fraction]) -> torch.Tensor:
        """The clip of the frames shown at `targets` (the last held frame at or before each, else the first)."""
        times = [t for _, t, _ in self._held]
        picks = [max(0, bisect.bisect_right(times, target) - 1) for target in targets]
        for p in set(picks):
            index, _, frame = self._held[p]
            if index not in self._prepared:
                self._prepared[index] = self.preprocess(frame)
        clip = torch.stack([self._prepared[self._held[p][0]] for p in picks], dim=1)  # [3, T, h, w]
        self.next_clip += 1
        # keep the frame shown at the next clip's first target and the ones after it
        keep = max(0, bisect.bisect_right(times, self.spec.targets(self.next_clip)[0]) - 1)
        for _ in range(keep):
            self._prepared.pop(self._held.popleft()[0], None)
        return clip

    def _finish_strided(self) -> list[torch.Tensor]:
        end = self.duration
        if end is None:
            end = self.last_time + (Fraction(1) / as_seconds(self.fps) if self.fps else 0)
        clips = []
        while self.next_clip < self.spec.clip_count(end):
            targets = self.spec.targets(self.next_clip)
            self.padded_frames += sum(t >= end for t in targets)
            clips.append(self._take_targets(targets))
        self._held.clear()
        self._prepared.clear()
        return clips
