"""feature_extractor.py, scripts/extraction/x3d.py, extraction.py and batch.py on the CPU with random weights.

x3d_xs and small crops keep it fast; the real clip is tests/data/vtest_clip.avi (see tests/data/README.md).
No test touches the network: the default (official) weights come from a torch hub cache in tmp_path.
"""
import csv
import importlib.util
import io
import bisect
import json
import math
from fractions import Fraction
import os
import socket
import subprocess
import sys
import types
import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

from conftest import ROOT, TEST_DATA, run_script, load_script
from scripts.core.cli import run
from scripts.core.errors import MateError
from scripts.core.devices import resolve_device, torchrun_env
from scripts.extraction.batch import Job, plan_jobs, shard_jobs
from scripts.extraction.extraction import ClipStream, ExtractSettings, extract_video
from scripts.extraction.clips import preprocess_frame, spatial_crops
from scripts.extraction.x3d import (CHECKPOINT_FILES, MODEL_ZOO_URL, X3DFeatures, _install_torchvision_shim,
                        _remove_torchvision_shim, create_x3d_network, hub_cache_path, load_backbone)
from test_video import published_clips, write_video

feature_extractor = load_script("feature_extractor.py")

CLIP = TEST_DATA / "vtest_clip.avi"  # 100 frames, 320x240, 10 fps
SMALL = dict(crop_size=64, side_size=72)  # tiny crops: fast, and the rule is the same


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """One intra-op thread: on a small shared CPU, OpenMP teams spinning against other processes slow a
    forward pass by orders of magnitude, and one thread gives the same numbers on every run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the subprocess runs
    yield
    torch.set_num_threads(threads)


def backbone(layout="map", feature="head", seed=0):
    torch.manual_seed(seed)
    return load_backbone("x3d_xs", random_weights=True, layout=layout, sequence_feature=feature)


@pytest.mark.slow  # make test-slow (make test stays under 90 s on 2 cores)
def test_x3d_l_defaults_are_the_shared_features(tmp_path, short_clip):
    """No backbone, weight or clip flag: the shared features' preprocessing, recorded in the sidecar."""
    settings = ExtractSettings.for_backbone("x3d_l")
    assert (settings.num_frames, settings.sampling_rate, settings.stride, settings.clip_sampling,
            settings.side_size, settings.crop_size) == (16, 5, 80, "uniform", 320, 320)
    torch.manual_seed(0)
    assert feature_extractor.main(["--video", str(short_clip), "--out_dir", str(tmp_path), "--random_weights",
                                   "--no_progress"]) == 0
    side = json.loads((tmp_path / "vtest_short.json").read_text())
    assert side == {**side, "backbone": "x3d_l", "side_size": 320, "crop_size": 320, "frames_per_clip": 16,
                    "sampling_rate": 5, "stride": 80, "clip_sampling": "uniform", "layout": "map", "crops": 1,
                    "num_frames": 30, "num_clips": 1, "dropped_frames": 3, "padded": False,
                    "window_s": 80 / 30, "stride_s": 80 / 30, "fps": 10.0, "duration_s": 3.0,
                    "shape": [192, 16, 10, 10], "dtype": "float32", "weights": "random"}
    fmap = np.load(tmp_path / "vtest_short.npy")  # one whole window of 2.67 s at 10 fps; frames 27-29 left out
    assert fmap.shape == (192, 16, 10, 10) and fmap.dtype == np.float32
    torch.manual_seed(0)
    model = load_backbone("x3d_l", random_weights=True)
    with torch.inference_mode():  # the head on a map: the 2048-d vector of the sequence layout
        assert model.head_pool(torch.from_numpy(fmap)[None]).flatten(1).shape == (1, 2048)


def test_real_clip_shapes_for_both_layouts():
    xs = ExtractSettings.for_backbone("x3d_xs")  # windows of 4 x 12 / 30 = 1.6 s: 10 s give 6 whole ones
    fmap, side = extract_video(CLIP, backbone("map"), xs)
    assert fmap.shape == (192, 4, 5, 5) and fmap.dtype == np.float32 and side["shape"] == [192, 4, 5, 5]
    seq, side = extract_video(CLIP, backbone("sequence"), xs, progress=False)
    # 6 x Fraction(1.6) is 9.6 + 5e-16: the frame at 9.6 s is in the last window, frames 97-99 are not
    assert seq.shape == (6, 2048) and side["num_clips"] == 6 and side["dropped_frames"] == 3
    small = ExtractSettings.for_backbone("x3d_xs", crops=3, decoder="av", dtype="float16", **SMALL)
    stem, side = extract_video(CLIP, backbone("sequence", "stem"), small)
    assert stem.shape == (6, 3, 192) and stem.dtype == np.float16
    assert side["decoder"] == "av" and side["sequence_feature"] == "stem" and side["crops"] == 3
    ten, _ = extract_video(CLIP, backbone("sequence"), ExtractSettings.for_backbone("x3d_xs", crops=10, **SMALL))
    assert ten.shape == (6, 10, 2048) and np.isfinite(ten).all()
    strided = ExtractSettings.for_backbone("x3d_xs", clip_sampling="strided", **SMALL)  # ceil(10 / 1.6) = 7
    seq, side = extract_video(CLIP, backbone("sequence"), strided)
    assert seq.shape == (7, 2048) and side["clip_sampling"] == "strided" and side["padded_frames"] == 3


def manual_clips(video, settings):
    """The extractor's input, built the slow way: every frame and its timestamp in memory (PyAV), the frames
    of each clip by pytorchvideo's rule (test_video.published_clips) or, strided, the frame shown at each
    target time (the last at or before it)."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        tb, start = stream.time_base, stream.start_time or 0
        duration = (stream.duration - start) * tb
        decoded = [(f.pts - start, f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]
    pts = [p for p, _ in decoded]
    frames = [preprocess_frame(f, settings.side_size) for _, f in decoded]
    T, rate, stride = settings.num_frames, settings.sampling_rate, settings.stride
    if settings.clip_sampling == "uniform":
        clips = published_clips(pts, tb, duration, T, rate, None if stride == T * rate else stride)
    else:
        times = [p * tb for p in pts]
        count = math.ceil(duration / Fraction(stride, 30))
        clips = [[max(0, bisect.bisect_right(times, Fraction(i * stride + j * rate, 30)) - 1) for j in range(T)]
                 for i in range(count)]
    for idx in clips:
        yield torch.stack([frames[f] for f in idx], dim=1)  # [3, T, h, w]


@pytest.mark.parametrize("sampling, clips", [("uniform", 13), ("strided", 15)])
def test_features_equal_a_direct_backbone_call(sampling, clips):
    settings = ExtractSettings.for_backbone("x3d_xs", batch_size=2, stride=20, crops=3, clip_sampling=sampling,
                                            **SMALL)
    model = backbone("sequence")
    with torch.inference_mode():
        direct = [model(spatial_crops(c[None], 64, 3)[0]) for c in manual_clips(CLIP, settings)]  # [3, D] each
        seq, side = extract_video(CLIP, model, settings)
        # 10 s at 10 fps, windows of 1.6 s every 20 / 30 s: uniform 13 whole ones, strided ceil(10 / (2 / 3))
        assert side["num_clips"] == len(direct) == clips
        np.testing.assert_allclose(seq, torch.stack(direct).numpy(), rtol=1e-4, atol=1e-5)
        model.layout = "map"
        maps = torch.stack([model(spatial_crops(c[None], 64, 3)[0]) for c in manual_clips(CLIP, settings)])
        fmap, _ = extract_video(CLIP, model, settings)
    np.testing.assert_allclose(fmap, maps.amax(dim=(0, 1)).numpy(), rtol=1e-4, atol=1e-5)  # max over clips, crops


def test_short_and_partial_videos_and_the_sidecar(tmp_path):
    short = write_video(tmp_path / "short.avi", 20)  # shorter than one 48-frame clip
    settings = ExtractSettings.for_backbone("x3d_xs", clip_sampling="strided", **SMALL)
    seq, side = extract_video(short, backbone("sequence"), settings)
    assert seq.shape == (1, 2048)
    assert side == {**side, "video": "short.avi", "fps": 25.0, "num_frames": 20, "frames_per_clip": 4,
                    "sampling_rate": 12, "stride": 48, "clip_sampling": "strided", "backbone": "x3d_xs",
                    "weights": "random", "layout": "sequence", "shape": [1, 2048], "crops": 1, "padded": True,
                    "padded_frames": 2, "dropped_frames": 0, "decoder": "cv2", "num_clips": 1,
                    "side_size": 72, "crop_size": 64, "window_s": 1.6, "stride_s": 1.6, "clock_fps": 30,
                    "duration_s": 0.8}  # 0.8 s: the times 0.8 and 1.2 s repeat frame 19
    seq, side = extract_video(write_video(tmp_path / "long.avi", 120), backbone("sequence"), settings)
    assert seq.shape == (3, 2048) and side["padded"] is False and side["padded_frames"] == 0  # 4.8 s
    uniform = ExtractSettings.for_backbone("x3d_xs", **SMALL)  # the published rule
    seq, side = extract_video(short, backbone("sequence"), uniform)  # one clip over frames 0, 6, 12, 19
    assert seq.shape == (1, 2048) and (side["padded"], side["dropped_frames"], side["num_clips"]) == (False, 0, 1)
    seq, side = extract_video(write_video(tmp_path / "partial.avi", 110), backbone("sequence"), uniform)
    assert seq.shape == (2, 2048) and side["dropped_frames"] == 29  # 4.4 s at 25 fps: frames 81-109 after 3.2 s
    # (2 x Fraction(1.6) is 3.2 + 2e-16, so the frame at 3.2 s is in the second window)


def test_decoding_keeps_a_bounded_buffer():
    for sampling, bound in (("strided", 18), ("uniform", 18)):  # one 1.6-s window at 10 fps, and the next frame
        settings = ExtractSettings.for_backbone("x3d_xs", clip_sampling=sampling, **SMALL)
        stream = ClipStream(CLIP, settings).start()
        try:
            clips = sum(b.shape[0] for b in stream.batches())
        finally:
            stream.close()
        assert clips == settings.spec.clip_count(10) and stream.info["peak_buffer"] <= bound  # not 100


def make_root(root):
    write_video(root / "Normal" / "Normal_001.avi", 30)
    write_video(root / "Abuse" / "Abuse001.avi", 50)
    whole = write_video(root / "tmp.avi", 60)
    (root / "Abuse" / "Abuse002_truncated.avi").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    (root / "Abuse" / "Abuse003_corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "Abuse" / "Abuse004_empty.mp4").write_bytes(b"")
    return root


def extract(root, out, *extra):
    return feature_extractor.main(["--video_root", str(root), "--out_dir", str(out), "--backbone", "x3d_xs",
                                   "--crop_size", "64", "--side_size", "72", "--random_weights",
                                   "--no_progress", *extra])


def test_batch_run_lists_failures_writes_the_rest_and_resumes(tmp_path, capsys):
    root, out = make_root(tmp_path / "videos"), tmp_path / "features"
    assert extract(root, out) == 1  # failures -> non-zero exit
    with open(out / "failures.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["video"] for r in rows) == ["Abuse/Abuse002_truncated.avi", "Abuse/Abuse003_corrupt.mp4",
                                                "Abuse/Abuse004_empty.mp4"]
    errors = {r["video"]: r["error"] for r in rows}
    assert "truncated or damaged" in errors["Abuse/Abuse002_truncated.avi"]
    assert "empty file" in errors["Abuse/Abuse004_empty.mp4"]
    assert "failed 3" in capsys.readouterr().out
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [".mate.lock", ".mate.shard0_of_1.lock", ".mate_extraction.json", "Abuse/Abuse001.json",
                       "Abuse/Abuse001.npy", "Normal/Normal_001.json", "Normal/Normal_001.npy",
                       "failures.csv"]  # class folders mirrored, the folder's locks and settings, no temp files
    side = json.loads((out / "Abuse" / "Abuse001.json").read_text())
    assert side["video"] == "Abuse/Abuse001.avi" and side["num_frames"] == 50 and side["shape"] == [192, 4, 2, 2]
    assert np.load(out / "Abuse" / "Abuse001.npy").shape == (192, 4, 2, 2)

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    assert extract(root, out) == 1
    assert "written 0, skipped 2" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}  # resume: nothing rewritten

    first = np.load(out / "Abuse" / "Abuse001.npy")
    assert extract(root, out, "--overwrite", "--decode_workers", "2") == 1  # videos decoded ahead in parallel
    np.testing.assert_array_equal(np.load(out / "Abuse" / "Abuse001.npy"), first)
    assert "written 2, skipped 0" in capsys.readouterr().out
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}

    for flags, key in ((["--layout", "sequence"], "layout: 'map' there, 'sequence' here"),
                       (["--clip_sampling", "strided"], "clip_sampling: 'uniform' there, 'strided' here"),
                       (["--side_size", "80"], "side_size: 72 there, 80 here")):
        with pytest.raises(MateError, match=f"other settings \\({key};"):  # refused, not mixed
            extract(root, out, *flags)
    (out / ".mate_extraction.json").unlink()  # a folder from before the record: each sidecar is checked
    assert extract(root, out, "--side_size", "80") == 1
    with open(out / "failures.csv") as f:
        assert sum("exists with other settings (side_size 72 != 80)" in r["error"] for r in csv.DictReader(f)) == 2
    (out / ".mate_extraction.json").unlink()
    sidecar = out / "Abuse" / "Abuse001.json"  # written before clip_sampling was recorded: not assumed
    sidecar.write_text(json.dumps({k: v for k, v in json.loads(sidecar.read_text()).items() if k != "clip_sampling"}))
    assert extract(root, out) == 1
    with open(out / "failures.csv") as f:
        assert any("clip_sampling None != uniform" in r["error"] for r in csv.DictReader(f))
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    # made by the frame-count rule of earlier versions (no window_s) at 25 fps: refused on resume, not skipped
    old = {k: v for k, v in json.loads(sidecar.read_text()).items() if k not in ("window_s", "stride_s")}
    sidecar.write_text(json.dumps({**old, "clip_sampling": "uniform"}))
    assert extract(root, out) == 1
    with open(out / "failures.csv") as f:
        errors = [r["error"] for r in csv.DictReader(f)]
    assert any(e.startswith(f"{sidecar}: made by an older feature_extractor.py's frame-count clip rule at 25 fps")
               for e in errors)
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    assert extract(root, out, "--overwrite") == 1  # --overwrite extracts it again, in seconds
    assert "window_s" in json.loads(sidecar.read_text())


def test_single_video_and_clean_exit(tmp_path):
    out = tmp_path / "out"
    video = write_video(tmp_path / "one.avi", 40)
    assert feature_extractor.main(["--video", str(video), "--out_dir", str(out), "--backbone", "x3d_xs",
                                   "--crop_size", "64", "--side_size", "72", "--random_weights", "--layout",
                                   "sequence", "--stride", "16", "--clip_sampling", "strided", "--no_progress"]) == 0
    assert np.load(out / "one.npy").shape == (3, 2048)  # ceil(40 / 16)
    assert (out / "failures.csv").read_text().strip() == "video,error"


def test_shards_partition_the_list_exactly():
    jobs = [Job(video=f"v{i}.mp4", out=f"v{i}.npy", name=f"v{i}") for i in range(23)]
    for n in (1, 2, 5, 30):
        parts = [shard_jobs(jobs, n, i, env={})[0] for i in range(n)]
        assert sorted(j.name for p in parts for j in p) == sorted(j.name for j in jobs)  # union = all
        assert sum(len(p) for p in parts) == len(jobs)  # pairwise disjoint
    # torchrun inside a 3-task array: 3 x 4 ranks, each (task, rank) its own shard
    parts = {}
    for task in range(3):
        for rank in range(4):
            env = {"RANK": str(rank), "WORLD_SIZE": "4", "LOCAL_RANK": str(rank)}
            share, shard_id, num_shards = shard_jobs(jobs, 3, task, env=env)
            assert num_shards == 12 and shard_id not in parts
            parts[shard_id] = share
    names = [j.name for p in parts.values() for j in p]
    assert sorted(names) == sorted(j.name for j in jobs) and len(names) == len(set(names))
    assert torchrun_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == (1, 2, 1)
    assert torchrun_env({}) is None
    with pytest.raises(MateError, match="--shard_id 3"):
        shard_jobs(jobs, 3, 3, env={})


def test_device_resolution_under_torchrun():
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}
    if torch.cuda.is_available():
        assert resolve_device("auto", env) == torch.device("cuda", 1 % torch.cuda.device_count())
    else:
        assert resolve_device("auto", env) == torch.device("cpu")
        with pytest.raises(MateError, match="CUDA is not available"):
            resolve_device("cuda", env)
    with pytest.raises(MateError, match="not a device"):
        resolve_device("gpu0", {})


def test_two_videos_on_one_output_are_refused(tmp_path):
    with pytest.raises(MateError, match="would both be written"):
        plan_jobs([tmp_path / "A" / "x.mp4", tmp_path / "A" / "x.avi"], tmp_path / "out", root=tmp_path)


def test_official_checkpoint_layout_loads(tmp_path):
    torch.manual_seed(1)
    net = create_x3d_network("x3d_xs")
    state = net.state_dict()
    official, plain, ddp = tmp_path / "X3D_XS.pyth", tmp_path / "plain.pt", tmp_path / "ddp.pt"
    torch.save({"model_state": state, "epoch": 300, "cfg": "TRAIN: ..."}, official)
    torch.save(state, plain)
    torch.save({f"module.{k}": v for k, v in state.items()}, ddp)
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.inference_mode():
        expected = X3DFeatures(net.eval(), layout="sequence")(x)
        for path in (official, plain, ddp):
            model = load_backbone("x3d_xs", checkpoint=path, layout="sequence")
            torch.testing.assert_close(model(x), expected)
    assert model.weights.startswith(f"{ddp} sha256:") and len(model.weights.split(":")[-1]) == 12


def test_wrong_checkpoints_are_named(tmp_path):
    state = create_x3d_network("x3d_xs").state_dict()
    missing = tmp_path / "missing_key.pyth"
    torch.save({"model_state": {k: v for k, v in list(state.items())[1:]}}, missing)
    junk, nothing = tmp_path / "junk.pyth", tmp_path / "notensors.pyth"
    junk.write_bytes(b"not a checkpoint")
    torch.save({"epoch": 3}, nothing)
    for path, fault in ((missing, "weights do not match x3d_xs \\(missing 1"), (junk, "not a PyTorch backbone checkpoint \\(a text file starting 'not a checkpoint'\\)"),
                        (nothing, "not an X3D checkpoint"), (tmp_path / "absent.pyth", "not found")):
        with pytest.raises(MateError, match=fault) as info:
            load_backbone("x3d_xs", checkpoint=path)
        assert str(path) in str(info.value)
    # through the CLI: one line on stderr, exit code 2
    proc = run_script("feature_extractor.py", "--video", CLIP, "--out_dir", tmp_path / "o", "--backbone", "x3d_xs",
                      "--checkpoint", missing)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: {missing}: weights do not match x3d_xs")
    assert not (tmp_path / "o").exists()  # stopped before writing anything


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty torch hub cache ($TORCH_HOME) and no network: a download attempt fails at once."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    calls = []

    def offline(request, timeout=None):
        calls.append((request.full_url, timeout))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("scripts.extraction.x3d.urllib.request.urlopen", offline)
    return calls


def zoo_file(name="x3d_xs", seed=1):
    """A random-weights file in the model zoo's form, and the network it holds."""
    torch.manual_seed(seed)
    net = create_x3d_network(name)
    return {"model_state": net.state_dict(), "epoch": 300}, net.eval()


def test_default_weights_offline_and_not_cached_is_one_line(tmp_path, hub_cache, capsys):
    argv = ["--video", str(CLIP), "--out_dir", str(tmp_path / "o"), "--backbone", "x3d_xs", "--no_progress"]
    with pytest.raises(SystemExit) as exit_info:
        run(feature_extractor.main, argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    assert err.startswith("error: no X3D weights: X3D_XS.pyth (pytorchvideo's Kinetics-400 model zoo) is not in "
                          f"torch's hub cache {cache} and cannot be downloaded from {MODEL_ZOO_URL}/X3D_XS.pyth")
    assert "pass --backbone_checkpoint PATH" in err and "Temporary failure in name resolution" in err
    assert hub_cache == [(f"{MODEL_ZOO_URL}/X3D_XS.pyth", 30)]  # one try, with a timeout: no hang
    assert not (tmp_path / "o").exists() and not any(cache.glob("*"))  # nothing written, no partial file


@pytest.mark.slow  # a second interpreter: make test-slow
def test_default_weights_offline_through_the_process_boundary(tmp_path):
    """A real process, its real downloader: a proxy on a closed local port refuses the connection at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home"), "https_proxy": closed,
           "HTTPS_PROXY": closed, "no_proxy": "", "NO_PROXY": ""}
    proc = subprocess.run([sys.executable, "feature_extractor.py", "--video", str(CLIP), "--out_dir",
                           str(tmp_path / "o")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: no X3D weights: X3D_L.pyth") and "--backbone_checkpoint PATH" in proc.stderr


def test_cached_official_weights_load_without_network(tmp_path, hub_cache):
    state, net = zoo_file()
    url = f"{MODEL_ZOO_URL}/{CHECKPOINT_FILES['x3d_xs']}"
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)  # torch's rule
    assert hub_cache_path("x3d_xs") == cached == tmp_path / "torch_home" / "hub" / "checkpoints" / "X3D_XS.pyth"
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    # torch.hub finds the same file (so a cache filled by torch.hub.load(..., pretrained=True) serves us too)
    assert torch.hub.load_state_dict_from_url(url, weights_only=True)["epoch"] == 300
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.inference_mode():
        model = load_backbone("x3d_xs", layout="sequence")  # no weight argument: the official weights
        torch.testing.assert_close(model(x), X3DFeatures(net, layout="sequence")(x))
        assert load_backbone("x3d_xs", pretrained=True, layout="sequence").weights == model.weights
    assert model.weights.startswith("model_zoo:X3D_XS.pyth sha256:") and len(model.weights.split(":")[-1]) == 12
    assert hub_cache == []  # the network was never asked
    out = tmp_path / "out"
    assert feature_extractor.main(["--video", str(CLIP), "--out_dir", str(out), "--backbone", "x3d_xs",
                                   "--crop_size", "64", "--side_size", "72", "--no_progress"]) == 0
    assert json.loads((out / "vtest_clip.json").read_text())["weights"] == model.weights


def test_official_weights_are_downloaded_once_into_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    state, net = zoo_file()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    calls = []

    def served(request, timeout=None):
        calls.append(request.full_url)
        return io.BytesIO(buffer.getvalue())

    monkeypatch.setattr("scripts.extraction.x3d.urllib.request.urlopen", served)
    first = load_backbone("x3d_xs")
    assert "downloading" in capsys.readouterr().out  # on stdout: stderr stays for errors
    second = load_backbone("x3d_xs")
    assert calls == [f"{MODEL_ZOO_URL}/X3D_XS.pyth"] and first.weights == second.weights
    assert sorted(p.name for p in hub_cache_path("x3d_xs").parent.iterdir()) == ["X3D_XS.pyth"]  # no temp file
    reference = X3DFeatures(net).eval()
    reference.fold_batch_norms()  # as load_backbone does
    torch.testing.assert_close(first.state_dict(), reference.state_dict())


def test_weight_flags_exclude_each_other():
    for kwargs in (dict(checkpoint="a.pyth", random_weights=True), dict(pretrained=True, random_weights=True),
                   dict(checkpoint="a.pyth", pretrained=True)):
        with pytest.raises(MateError, match="exclude each other"):
            load_backbone("x3d_xs", **kwargs)


def test_torchvision_shim_only_when_absent(monkeypatch):
    create_x3d_network("x3d_xs")  # pytorchvideo imported, with the stand-in if torchvision is absent
    if importlib.util.find_spec("torchvision") is None:  # absent, as with the pinned requirements
        assert "torchvision" not in sys.modules  # the stand-in is taken out again after the import
        from pytorchvideo.models.head import RoIAlign

        with pytest.raises(RuntimeError, match="torchvision is not installed"):
            RoIAlign((7, 7), 1.0, 0)  # the stand-in refuses to be used, loudly
        assert _install_torchvision_shim() is True and sys.modules["torchvision"].__mate_shim__
        _remove_torchvision_shim()
        assert "torchvision" not in sys.modules
    fake, fake_ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setitem(sys.modules, "torchvision.ops", fake_ops)
    assert _install_torchvision_shim() is False  # an importable torchvision is never replaced
    _remove_torchvision_shim()
    assert sys.modules["torchvision"] is fake and sys.modules["torchvision.ops"] is fake_ops


def test_help_documents_every_flag():
    proc = run_script("feature_extractor.py", "--help")
    assert proc.returncode == 0
    parser = feature_extractor.get_args_parser()
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.option_strings[0] in proc.stdout
        assert "default" in action.help or "required" in action.help, action.dest


def test_bad_flags_are_one_line_errors(tmp_path):
    with pytest.raises(MateError, match="missing.mp4: video file not found"):
        feature_extractor.main(["--video", str(tmp_path / "missing.mp4"), "--out_dir", str(tmp_path),
                                "--random_weights"])
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(MateError, match="empty_root: no video files found"):
        feature_extractor.main(["--video_root", str(tmp_path / "empty_root"), "--out_dir", str(tmp_path),
                                "--random_weights"])
    for flags, fault in ((["--decode_workers", "-1"], "--decode_workers"), (["--stride", "0"], "--stride"),
                         (["--crop_size", "96", "--side_size", "80"], "--side_size"),
                         (["--shard_id", "2", "--num_shards", "2"], "--shard_id")):
        with pytest.raises(MateError, match=fault):
            feature_extractor.main(["--video", str(CLIP), "--out_dir", str(tmp_path), "--random_weights", *flags])


def test_one_backbone_argument_group_for_both_scripts():
    """feature_extractor.py and test.py declare the backbone flags once (scripts/extraction/backbone_args.py):
    the weights file is --backbone_checkpoint in both, the extractor's --checkpoint an alias of it."""
    test_script = load_script("test.py")
    fe, te = feature_extractor.get_args_parser(), test_script.get_args_parser()
    shared = ("--backbone", "--backbone_checkpoint", "--pretrained", "--random_weights", "--crops", "--decoder")
    for flag in shared:
        a, b = (next(x for x in p._actions if flag in x.option_strings) for p in (fe, te))
        assert a.dest == b.dest and a.choices == b.choices, flag
    alias = fe.parse_args(["--video", "v.mp4", "--out_dir", "o", "--checkpoint", "w.pyth"])
    assert alias.backbone_checkpoint == Path("w.pyth")
    assert fe.parse_args(["--video", "v.mp4", "--out_dir", "o"]).backbone == "x3d_l"  # the shared features'
    scored = te.parse_args(["--video", "v.mp4", "--checkpoint", "mate.pth", "--backbone_checkpoint", "w.pyth"])
    assert (scored.checkpoint, scored.backbone_checkpoint, scored.backbone) == (Path("mate.pth"), Path("w.pyth"), None)


@pytest.mark.parametrize("fps, decoder", [(25.0, "cv2"), (15.0, "av")])
def test_default_clips_at_other_frame_rates_equal_a_direct_computation(tmp_path, fps, decoder):
    """The published rule (x3d_xs's 1.6-s windows, the preset stride) at 25 and 15 fps, through either
    decoder: the features equal the backbone run on the frames pytorchvideo's rule picks (manual_clips,
    from PyAV's timestamps), and the windows are those of seconds, not of 48 frames. Frame i of the
    generated video is a flat grey 2 i, so a clip built from other frames gives other features."""
    video = write_video(tmp_path / f"cam{int(fps)}.avi", 100, size=(96, 72), fps=fps)
    settings = ExtractSettings.for_backbone("x3d_xs", decoder=decoder, **SMALL)
    model = backbone("map")
    with torch.inference_mode():
        clips = list(manual_clips(video, settings))
        maps = torch.stack([model(spatial_crops(c[None], 64, 1)[0]) for c in clips])  # the centre crop
        fmap, side = extract_video(video, model, settings)
    assert side["num_clips"] == len(clips) == int((100 / fps) // 1.6)  # 4.0 s -> 2 windows, 6.67 s -> 4
    assert side["window_s"] == pytest.approx(1.6) and side["fps"] == fps
    np.testing.assert_allclose(fmap, maps.amax(dim=(0, 1)).numpy(), rtol=1e-4, atol=1e-5)
