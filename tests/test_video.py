"""scripts/video.py: decoding, preprocessing, crops and the frames-to-clips rule, on tiny generated videos."""
import math

import cv2
import numpy as np
import pytest
import torch

from conftest import TEST_DATA
from scripts.errors import MateError
from scripts.framegt import snippet_count_agrees
from scripts.video import (MEAN, STD, ClipAssembler, ClipSpec, VideoReader, check_complete, find_videos,
                           preprocess_frame, spatial_crops)

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


def assemble(spec, N):
    """Run N fake frames through a ClipAssembler; each clip comes back as its list of frame indices."""
    asm = ClipAssembler(spec, lambda f: torch.tensor([int(f[0, 0, 0])]))  # [1] -> clips [1, T]
    clips = []
    for i in range(N):
        clips += asm.push(index_frame(i))
    clips += asm.finish()
    return [c[0].tolist() for c in clips], asm


@pytest.mark.parametrize("num_frames,rate,stride", [(4, 12, 48), (16, 5, 80), (3, 2, 2), (2, 3, 10), (1, 1, 16)])
@pytest.mark.parametrize("N", [1, 5, 47, 48, 49, 96, 161])
def test_clips_follow_the_rule(num_frames, rate, stride, N):
    spec = ClipSpec(num_frames, rate, stride)
    clips, asm = assemble(spec, N)
    assert len(clips) == math.ceil(N / stride) == spec.clip_count(N)
    assert snippet_count_agrees(len(clips), N, stride)  # what framegt.py checks against the sidecar
    padded = 0
    for i, got in enumerate(clips):
        wanted = [i * stride + j * rate for j in range(num_frames)]
        assert got == [min(f, N - 1) for f in wanted]  # frames past the end repeat the last frame
        padded += sum(f >= N for f in wanted)
    assert asm.padded_frames == padded and asm.num_frames == N


def test_short_video_gives_one_padded_clip():
    clips, asm = assemble(ClipSpec(4, 12, 48), 20)
    assert clips == [[0, 12, 19, 19]] and asm.padded_frames == 2


def test_is_needed_matches_the_clips():
    for spec in (ClipSpec(4, 12, 48), ClipSpec(3, 2, 2), ClipSpec(2, 3, 10), ClipSpec(16, 5, 40)):
        taken = {f for i in range(20) for f in spec.indices(i)}
        assert [spec.is_needed(f) for f in range(15 * spec.stride)] == [f in taken for f in range(15 * spec.stride)]


def test_buffer_is_bounded_whatever_the_length():
    """An hour of 30-fps video holds no more frames than a minute: at most one clip's sampled frames."""
    for spec in (ClipSpec(16, 5, 80), ClipSpec(4, 12, 48)):
        peaks = [assemble(spec, N)[1].peak_buffer for N in (1_800, 108_000)]
        assert peaks[0] == peaks[1] <= spec.num_frames
    overlapping = ClipSpec(16, 5, 16)  # clips overlap: still bounded by the span of one clip
    assert assemble(overlapping, 5_000)[1].peak_buffer <= overlapping.span


def test_clip_spec_rejects_zero():
    with pytest.raises(MateError, match="--stride"):
        ClipSpec(4, 12, 0)


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
