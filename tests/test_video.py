"""scripts/extraction/video.py and clips.py: decoding, preprocessing, crops and the frames-to-clips rules, on tiny generated videos.

The uniform rule and the preprocessing are checked against pytorchvideo's own functions, the ones the
published extractor ran (their files loaded on their own: pytorchvideo's package imports need torchvision).
"""
import errno
import importlib.util
import math
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import TEST_DATA
from scripts.core.errors import MateError
from scripts.data.framegt import snippet_count_agrees
from scripts.extraction.clips import (MEAN, STD, ClipAssembler, ClipSpec, _offsets, preprocess_frame, spatial_crops,
                                     uniform_offsets)
from scripts.extraction.video import VideoReader, check_complete, find_videos, scan_videos

CLIP = TEST_DATA / "vtest_clip.avi"


def write_video(path, num_frames, size=(64, 48), fps=25.0, fourcc="MJPG"):
    """A video whose frame i is a flat grey of value 2*i (so frames can be told apart after decoding)."""
    W, H = size
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened()
    for i in range(num_frames):
        writer.write(np.full((H, W, 3), (2 * i) % 256, dtype=np.uint8))
    writer.release()
    return path


def index_frame(i):
    return np.full((2, 2, 3), i, dtype=np.int64)  # a fake decoded frame that carries its index


def assemble(spec, N=None, fps=30, times=None, duration="end"):
    """Run fake frames through a ClipAssembler; each clip comes back as its list of frame indices.

    Frames at i / fps (or at `times`, seconds); `duration` "end" declares N / fps (a constant-rate
    container's stream duration), None declares none."""
    times = [Fraction(i, 1) / Fraction(fps) for i in range(N)] if times is None else list(times)
    if duration == "end":
        duration = Fraction(len(times), 1) / Fraction(fps)
    asm = ClipAssembler(spec, lambda f: torch.tensor([int(f[0, 0, 0])]), duration=duration, fps=fps)
    clips = []
    for i, t in enumerate(times):
        clips += asm.push(index_frame(i), t)
    clips += asm.finish()
    return [c[0].tolist() for c in clips], asm


def pytorchvideo_file(relative: str):
    """One of pytorchvideo's module files, loaded on its own (both used here import only torch/stdlib)."""
    import pytorchvideo

    path = Path(pytorchvideo.__file__).parent / relative
    spec = importlib.util.spec_from_file_location(f"_pv_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def published_clips(pts, time_base, duration, num_frames, rate, stride=None):
    """Each clip's frame indices as the published extractor got them (pytorchvideo 0.1.5) from a video whose
    frames have presentation times `pts` (in `time_base` units, from 0) and whose stream declares `duration`
    seconds: LabeledVideoDataset's loop over UniformClipSampler(num_frames * rate / 30 s), the frames with
    ceil(start / tb) <= pts < ceil(end / tb) (EncodedVideoPyAV.get_clip), uniform_temporal_subsample; an
    empty clip ends the video."""
    sampler = pytorchvideo_file("data/clip_sampling.py").UniformClipSampler(
        num_frames * rate / 30, None if stride is None else stride / 30)
    subsample = pytorchvideo_file("transforms/functional.py").uniform_temporal_subsample
    clips, end, last = [], 0.0, False
    while not last:
        start, end, _, _, last = sampler(end, duration, {})
        lo, hi = math.ceil(start / time_base), math.ceil(end / time_base)
        frames = [i for i, p in enumerate(pts) if lo <= p < hi]
        if not frames:
            break
        clips.append(subsample(torch.tensor(frames), num_frames, temporal_dim=0).tolist())
    return clips


def constant_rate(N, fps, tb=Fraction(1, 15360)):
    """pts of N frames at `fps` in time base `tb` (an MP4 muxer's), and the stream's duration in seconds."""
    period = Fraction(1) / Fraction(fps)
    return [round(i * period / tb) for i in range(N)], N * period


@pytest.mark.parametrize("fps", [30, 25, 15, Fraction(30000, 1001), 24])
@pytest.mark.parametrize("N", [1, 5, 15, 16, 17, 79, 80, 81, 159, 160, 161, 399, 1000])
def test_uniform_rule_is_the_published_extractors_at_any_frame_rate(fps, N):
    """X3D-L's 16 x 5: windows of 80 / 30 s, 16 frames spread over the frames inside each, the tail left out."""
    tb = Fraction(1, 15360)
    pts, duration = constant_rate(N, fps, tb)
    clips, asm = assemble(ClipSpec(16, 5, 80, "uniform"), times=[p * tb for p in pts], fps=fps, duration=duration)
    assert clips == published_clips(pts, tb, duration, 16, 5)
    assert len(clips) == ClipSpec(16, 5, 80).clip_count(duration) == max(1, math.floor(duration * 30 / 80))
    if fps == 30:  # the frame-count rule of earlier versions, exactly
        assert asm.dropped_frames == (N % 80 if N >= 80 else 0)
        # a video shorter than one window: its one clip repeats frames, counted as padded (issue #31 item 7)
        assert asm.padded_frames == (max(0, 16 - N) if N < 80 else 0)
        assert snippet_count_agrees(len(clips), N, 80)  # what framegt.py checks against the sidecar
        if N >= 80:
            assert clips[0] == [0, 5, 10, 15, 21, 26, 31, 36, 42, 47, 52, 57, 63, 68, 73, 79]
    if fps == 25 and N >= 160:
        assert clips[1][0] == 67 and clips[1][-1] == 133  # frames 67-133 lie in [2.67 s, 5.33 s)


def test_uniform_rule_at_a_variable_frame_rate():
    """Irregular timestamps (a camera that drops frames): windows still in seconds, each takes the frames
    whose time falls in it; the clip of a window with a gap has fewer frames to spread over."""
    rng = np.random.default_rng(0)
    tb = Fraction(1, 1000)
    gaps = rng.choice([33, 34, 40, 67, 100], size=400, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    pts = [0] + list(np.cumsum(gaps)[:-1].tolist())
    duration = (pts[-1] + 33) * tb
    clips, _ = assemble(ClipSpec(16, 5, 80), times=[p * tb for p in pts], fps=30, duration=duration)
    assert clips == published_clips(pts, tb, duration, 16, 5) and len(clips) == int(duration * 30 // 80)
    # a gap longer than a window: pytorchvideo stops at the empty window, so does the assembler
    holed = pts[:100] + [p + 10_000 for p in pts[100:]]
    clips, _ = assemble(ClipSpec(16, 5, 80), times=[p * tb for p in holed], fps=30, duration=(holed[-1] + 33) * tb)
    assert clips == published_clips(holed, tb, (holed[-1] + 33) * tb, 16, 5)
    assert len(clips) == math.ceil(pts[99] * tb * 30 / 80)


@pytest.mark.parametrize("num_frames,rate,stride", [(4, 12, 48), (16, 5, 80), (16, 5, 16), (3, 2, 2), (1, 1, 16)])
@pytest.mark.parametrize("N", [1, 5, 47, 48, 49, 96, 161])
def test_uniform_clips_follow_the_rule(num_frames, rate, stride, N):
    """At 30 fps windows in seconds are windows of frames; another stride is pytorchvideo's too."""
    spec = ClipSpec(num_frames, rate, stride, "uniform")
    window = num_frames * rate
    clips, asm = assemble(spec, N)
    pts, duration = constant_rate(N, 30)
    if stride <= window:  # pytorchvideo's sampler has no gaps between clips
        assert clips == published_clips(pts, Fraction(1, 15360), duration, num_frames, rate,
                                         None if stride == window else stride)
    if N < window:  # one clip spread over the whole short video
        assert clips == [list(uniform_offsets(N, num_frames))]
        return
    if not spec.frame_rule_equal:  # e.g. 4 x 12 / 30 s as a float is 1.6 + 9e-17: frame 48 is in clip 0
        assert (num_frames, rate, stride) in [(4, 12, 48), (16, 5, 16), (3, 2, 2), (1, 1, 16)]
        return
    assert len(clips) == (N - window) // stride + 1 == spec.clip_count(Fraction(N, 30))
    offsets = torch.linspace(0, window - 1, num_frames).long().tolist()
    assert clips == [[i * stride + o for o in offsets] for i in range(len(clips))]
    assert asm.dropped_frames == N - ((len(clips) - 1) * stride + window)


@pytest.mark.parametrize("num_frames,rate,stride", [(4, 12, 48), (16, 5, 80), (3, 2, 2), (2, 3, 10), (1, 1, 16)])
@pytest.mark.parametrize("N", [1, 5, 47, 48, 49, 96, 161])
def test_strided_clips_follow_the_rule(num_frames, rate, stride, N):
    """At 30 fps: clip i takes frames i * stride + j * rate, the ones past the end repeat the last frame."""
    spec = ClipSpec(num_frames, rate, stride, "strided")
    clips, asm = assemble(spec, N)
    assert len(clips) == math.ceil(N / stride) == spec.clip_count(Fraction(N, 30))
    assert snippet_count_agrees(len(clips), N, stride)  # what framegt.py checks against the sidecar
    padded = 0
    for i, got in enumerate(clips):
        wanted = [i * stride + j * rate for j in range(num_frames)]
        assert got == [min(f, N - 1) for f in wanted]
        padded += sum(f >= N for f in wanted)
    assert asm.padded_frames == padded and asm.num_frames == N


@pytest.mark.parametrize("fps", [25, 15, 50])
def test_strided_clips_take_the_frame_shown_at_each_time(fps):
    spec = ClipSpec(16, 1, 16, "strided")  # snippets of 16 / 30 s, one frame every 1 / 30 s
    N = 100
    clips, _ = assemble(spec, N, fps=fps)
    assert len(clips) == math.ceil(Fraction(N, fps) / Fraction(16, 30))
    for i, got in enumerate(clips):
        times = [Fraction(i * 16 + j, 30) for j in range(16)]
        assert got == [min(math.floor(t * fps), N - 1) for t in times]  # the frame shown at time t


def test_short_video_gives_one_clip():
    clips, asm = assemble(ClipSpec(4, 12, 48, "strided"), 20)
    assert clips == [[0, 12, 19, 19]] and asm.padded_frames == 2  # padded with the last frame
    clips, asm = assemble(ClipSpec(4, 12, 48, "uniform"), 20)
    assert clips == [[0, 6, 12, 19]] and asm.padded_frames == 0  # spread over the 20 frames
    clips, _ = assemble(ClipSpec(16, 5, 80, "uniform"), 10)  # fewer frames than the clip takes: some repeat
    assert clips == [[0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7, 8, 9]]
    clips, _ = assemble(ClipSpec(16, 5, 80, "uniform"), 200, duration=None)  # no declared duration:
    assert len(clips) == 2  # the last frame's time decides, as in pytorchvideo


@pytest.mark.slow  # make test-slow (make test stays under 90 s on 2 cores)
def test_buffer_is_bounded_whatever_the_length():
    """An hour of 30-fps video holds no more frames than a minute: the raw frames of one window, and the
    next frame (20,000 frames here, 108,000 in an hour: the peak is reached in the first window)."""
    for sampling in ("uniform", "strided"):
        for spec in (ClipSpec(16, 5, 80, sampling), ClipSpec(4, 12, 48, sampling), ClipSpec(16, 5, 16, sampling)):
            peaks = [assemble(spec, N)[1].peak_buffer for N in (1_800, 20_000)]
            assert peaks[0] == peaks[1] <= spec.num_frames * spec.sampling_rate + 2


def test_clip_spec_rejects_zero_and_unknown_rules():
    with pytest.raises(MateError, match="--stride"):
        ClipSpec(4, 12, 0)
    with pytest.raises(MateError, match="--clip_sampling: 'random'"):
        ClipSpec(4, 12, 48, "random")


def test_preprocess_scales_short_side_and_normalises():
    bgr = np.zeros((48, 64, 3), dtype=np.uint8)
    bgr[..., 2] = 255  # pure red in OpenCV's BGR order
    x = preprocess_frame(bgr, side_size=36)
    assert x.shape == (3, 36, 48)  # [C, h, w], short side 36, aspect kept
    torch.testing.assert_close(x[0], torch.full((36, 48), (1 - MEAN) / STD))  # R first: BGR -> RGB
    torch.testing.assert_close(x[2], torch.full((36, 48), -MEAN / STD))
    assert preprocess_frame(np.zeros((64, 48, 3), np.uint8), 36).shape == (3, 48, 36)  # portrait
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cropped = preprocess_frame(frame, 36, crop_size=32)  # the single-view shortcut = the centre crop
    full = preprocess_frame(frame, 36)
    torch.testing.assert_close(cropped, spatial_crops(full[None, :, None], 32, 1)[0, 0, :, 0])


@pytest.mark.parametrize("H, W, side, crop", [(240, 320, 320, 320), (48, 64, 36, 32), (50, 71, 40, 35)])
def test_preprocess_is_the_published_transform(H, W, side, crop):
    """The published order: RGB / 255, Normalize(0.45, 0.225), ShortSideScale (pytorchvideo's), then
    torchvision's CenterCrop (anchor round((length - crop) / 2)); UCF-Crime's 320 x 240 becomes 426 x 320,
    cropped from x = 53."""
    short_side_scale = pytorchvideo_file("transforms/functional.py").short_side_scale
    bgr = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    x = torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1).float()[:, None]  # [C, T=1, H, W] RGB
    x = (x / 255.0 - MEAN) / STD
    x = short_side_scale(x, side)[:, 0]  # [C, h, w]
    h, w = x.shape[1:]
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    expected = x[:, top:top + crop, left:left + crop]
    torch.testing.assert_close(preprocess_frame(bgr, side, crop_size=crop), expected, rtol=0, atol=1e-5)


def test_crops():
    B, C, T, H, W = 2, 3, 4, 6, 10
    clips = torch.arange(B * C * T * H * W, dtype=torch.float32).view(B, C, T, H, W)
    one = spatial_crops(clips, 4, 1)
    assert one.shape == (B, 1, C, T, 4, 4)
    torch.testing.assert_close(one[:, 0], clips[..., 1:5, 3:7])  # centre
    three = spatial_crops(clips, 4, 3)  # landscape: left, centre, right
    for k, x in enumerate((0, 3, 6)):
        torch.testing.assert_close(three[:, k], clips[..., 1:5, x:x + 4])
    portrait = spatial_crops(clips.transpose(-1, -2), 4, 3)  # top, centre, bottom
    torch.testing.assert_close(portrait[:, 2], clips.transpose(-1, -2)[..., 6:10, 1:5])
    ten = spatial_crops(clips, 4, 10)
    assert ten.shape == (B, 10, C, T, 4, 4)
    torch.testing.assert_close(ten[:, 0], clips[..., 0:4, 0:4])  # top-left
    torch.testing.assert_close(ten[:, 5], clips.flip(-1)[..., 0:4, 0:4])  # top-left of the mirrored clip
    torch.testing.assert_close(ten[:, 9], clips.flip(-1)[..., 1:5, 3:7])
    # the centre anchor is torchvision's CenterCrop: round half to even, not SlowFast's round-up
    assert [_offsets(n, 4)[1] for n in (9, 10, 11, 13)] == [2, 3, 4, 4]


@pytest.mark.parametrize("decoder", ["cv2", "av"])
def test_reader_decodes_the_real_clip(decoder):
    with VideoReader(CLIP, decoder) as reader:
        frames = list(reader.frames())
        assert reader.fps == pytest.approx(10.0) and reader.declared_frames == 100
    assert len(frames) == 100 and frames[0].shape == (240, 320, 3) and frames[0].dtype == np.uint8


def test_decoders_agree(tmp_path):
    video = write_video(tmp_path / "grey.avi", 30)
    cv, av = (list(VideoReader(video, d).frames()) for d in ("cv2", "av"))
    assert len(cv) == len(av) == 30
    assert max(np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(cv, av)) < 2
    assert [int(round(f.mean())) for f in cv[:5]] == pytest.approx([0, 2, 4, 6, 8], abs=2)


@pytest.mark.parametrize("decoder", ["cv2", "av"])
def test_bad_files_are_user_errors(tmp_path, decoder):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for path, fault in ((empty, "empty file"), (junk, "cannot open"), (tmp_path / "none.mp4", "not found")):
        with pytest.raises(MateError, match=fault) as info:
            VideoReader(path, decoder)
        assert str(path) in str(info.value)


@pytest.mark.parametrize("decoder", ["cv2", "av"])
def test_truncated_video_is_detected(tmp_path, decoder):
    video = write_video(tmp_path / "whole.avi", 60)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(video.read_bytes()[: int(video.stat().st_size * 0.6)])
    with VideoReader(cut, decoder) as reader:
        decoded = sum(1 for _ in reader.frames())  # both decoders stop at the damage, neither raises
        assert 0 < decoded < 60 and reader.declared_frames == 60
        error = reader.decode_error
    with pytest.raises(MateError, match=f"truncated or damaged: decoded {decoded} of the 60 frames") as info:
        check_complete(cut, decoded, 60, decode_error=error)
    assert str(cut) in str(info.value)
    assert check_complete(cut, decoded, 60, allow_truncated=True, decode_error=error) is True
    assert check_complete(cut, 59, 60) is False  # containers that estimate their count may be off by one
    with pytest.raises(MateError, match="decoded 59; bad packet"):
        check_complete(cut, 59, None, decode_error="bad packet")  # no count declared: the error tells
    with pytest.raises(MateError, match="no frame"):
        check_complete(cut, 0, None)


def test_find_videos(tmp_path):
    for rel in ("B/b2.mp4", "B/b1.AVI", "A/a.mkv", "A/notes.txt", "c.mov"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in find_videos(tmp_path)]
    assert found == ["A/a.mkv", "B/b1.AVI", "B/b2.mp4", "c.mov"]
    with pytest.raises(MateError, match="not a folder"):
        find_videos(tmp_path / "missing")


def test_scan_videos_follows_linked_folders_and_lists_each_file_once(tmp_path):
    for rel in ("Abuse/a.mp4", "Abuse/sub/b.avi", "Arson/c.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    elsewhere = tmp_path.parent / f"{tmp_path.name}_elsewhere"
    (elsewhere / "Normal").mkdir(parents=True)
    (elsewhere / "Normal" / "n.mp4").write_bytes(b"x")
    root = tmp_path
    (root / "Normal").symlink_to(elsewhere / "Normal")  # a class folder kept on another disk: followed
    (root / "All").symlink_to(root / "Abuse")  # the same videos again: listed once, by the path without links
    (root / "Abuse" / "sub" / "loop").symlink_to(root / "Abuse")  # back up: not followed for ever
    (root / "Arson" / "c_link.mp4").symlink_to(root / "Arson" / "c.mp4")
    os.link(root / "Arson" / "c.mp4", root / "Arson" / "c_hard.mp4")
    (root / "Arson" / "gone.mp4").symlink_to(root / "Arson" / "missing.mp4")  # broken: listed, reported later
    videos, duplicates = scan_videos(root)
    assert [p.relative_to(root).as_posix() for p in videos] == [
        "Abuse/a.mp4", "Abuse/sub/b.avi", "Arson/c.mp4", "Arson/gone.mp4", "Normal/n.mp4"]
    assert {p.relative_to(root).as_posix(): q.relative_to(root).as_posix() for p, q in duplicates.items()} == {
        "All/a.mp4": "Abuse/a.mp4", "All/sub/b.avi": "Abuse/sub/b.avi", "Arson/c_hard.mp4": "Arson/c.mp4",
        "Arson/c_link.mp4": "Arson/c.mp4"}
    assert find_videos(root) == videos


def test_file_faults_are_named_before_decoding(tmp_path, monkeypatch):
    gone = tmp_path / "gone.mp4"
    gone.symlink_to(tmp_path / "missing.mp4")
    with pytest.raises(MateError, match="gone.mp4: broken symbolic link \\(to .*missing.mp4, which does not exist"):
        VideoReader(gone)
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(MateError, match="not a regular file"):
        VideoReader(tmp_path / "folder.mp4")
    locked = write_video(tmp_path / "locked.avi", 5)
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads any file: refuse it as the OS refuses everyone else
        def refuse(path, *args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

        monkeypatch.setattr("scripts.extraction.video.open", refuse, raising=False)
    with pytest.raises(MateError, match="locked.avi: unreadable \\(Permission denied\\), not a decoding fault"):
        VideoReader(locked)
