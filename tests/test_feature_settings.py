"""A model remembers how its features were made: training stores the sidecars' extraction settings,
test.py --video extracts with them, and test features or flags made otherwise are refused."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scripts.models.checkpoint import load_checkpoint
from scripts.core.devices import resolve_device
from scripts.core.errors import MateError
from scripts.evaluation.evaluation import load_for_scoring
from scripts.data.feature_settings import PUBLISHED, check_clock, check_test_features, read_extraction, weights_id
from scripts.data.manifest import VideoEntry, read_manifest
from scripts.evaluation.scoring import score_dataset
from scripts.evaluation.single_video import score_video
from test_video import write_video
from tests.conftest import PUBLISHED as PUBLISHED_DIR
from tests.conftest import run_script

# Not the x3d_xs preset (4 x 12 frames, stride 48, 182/160 pixels): what the model must remember.
SETTINGS = "--backbone x3d_xs --layout sequence --sampling_rate 4 --stride 16 --side_size 64 --crop_size 64"


SCRIPTS = {"feature_extractor": "feature_extractor.py", "main": "main.py", "test": "test.py"}


def cli(script: str, *argv) -> int:
    """Run a script in-process; its output is echoed so that capsys sees it."""
    done = run_script(SCRIPTS[script], *argv)
    print(done.stdout, end="")
    print(done.stderr, end="", file=sys.stderr)
    return done.returncode


def extract(videos: Path, out: Path, settings: str = SETTINGS) -> None:
    assert cli("feature_extractor", "--video_root", videos, "--out_dir", out, *settings.split(),
               "--random_weights", "--no_progress") == 0


def manifest(path: Path, features: Path, names: list[str]) -> Path:
    path.write_text("".join(f"{features / (n + '.npy')} {int('Normal' not in n)}\n" for n in names))
    return path


TRAIN = ["Normal_Videos_001", "Normal_Videos_002", "Abuse001", "Abuse002"]
VAL = ["Normal_Videos_003", "Abuse003"]
TEST = ["Normal_Videos_004", "Abuse004"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Features of 8 short videos with SETTINGS, and a fast model trained on 4 of them for 2 epochs."""
    root = tmp_path_factory.mktemp("settings")
    for i, name in enumerate(TRAIN + VAL + TEST):
        write_video(root / "videos" / f"{name}.avi", 40 + 8 * i, size=(80, 64))
    extract(root / "videos", root / "feats")
    lists = {part: manifest(root / f"{part}.txt", root / "feats", names)
             for part, names in (("train", TRAIN), ("val", VAL), ("test", TEST))}
    assert cli("main", "--train_list", lists["train"], "--val_list", lists["val"], "--max_epoch", 2,
               "--batch_size", 4, "--runs_dir", root / "runs", "--exp_name", "seq", "--no_progress") == 0
    return root, lists, root / "runs" / "seq" / "checkpoint_best.pth"


def test_checkpoint_stores_the_sidecars_settings(trained):
    root, _, ckpt = trained
    record = load_checkpoint(ckpt)["feature"]["extraction"]
    sidecar = json.loads((root / "feats" / "Abuse001.json").read_text())
    assert record["source"] == "sidecars"
    assert record["settings"] == {"backbone": "x3d_xs", "weights": "random", "layout": "sequence",
                                  "sequence_feature": "head", "frames_per_clip": 4, "sampling_rate": 4,
                                  "stride": 16, "clip_sampling": "strided", "side_size": 64, "crop_size": 64,
                                  "crops": 1, "precision": "float32"}
    assert {k: sidecar[k] for k in record["settings"]} == record["settings"]
    assert sidecar["device"] == "cpu"


def test_a_precision_mismatch_is_named_and_an_older_sidecar_without_one_is_not(trained, tmp_path):
    """Features made under CUDA's float16 autocast are refused against a float32-trained checkpoint,
    naming precision; a sidecar from before precision was recorded still matches."""
    from scripts.data.feature_settings import check_test_features, first_difference
    from scripts.data.manifest import read_manifest

    import shutil

    root, lists, ckpt = trained
    feature = load_checkpoint(ckpt)["feature"]
    for name in TEST:
        for suffix in (".npy", ".json"):
            shutil.copy(root / "feats" / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
        data = json.loads((tmp_path / f"{name}.json").read_text())
        data["precision"] = "float16-autocast"  # as extracted on CUDA
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    test_list = manifest(tmp_path / "test.txt", tmp_path, TEST)
    entries = read_manifest(test_list)
    with pytest.raises(MateError, match="precision 'float16-autocast'.*precision 'float32'"):
        check_test_features(entries, feature, test_list=test_list, checkpoint=ckpt)
    older = {k: v for k, v in feature["extraction"]["settings"].items() if k != "precision"}
    assert first_difference(older, feature["extraction"]["settings"]) is None
    assert first_difference({"precision": "a"}, {"precision": "b"}) == "precision"


def test_video_is_scored_with_the_checkpoints_settings(trained, capsys):
    root, _, ckpt = trained
    video = write_video(root / "new" / "Abuse009.avi", 75, size=(80, 64))
    scores = score_video(video, ckpt, backbone=None, backbone_checkpoint=None, pretrained=False,
                         random_weights=True, device=resolve_device("cpu"), progress=False)
    assert "from the sidecars of its training features: x3d_xs sequence (head), clips of 4 x 4" in scores.settings
    # the same video extracted directly with the same flags, then scored as a test manifest
    extract(root / "new", root / "new_feats")
    direct = np.load(root / "new_feats" / "Abuse009.npy")
    assert direct.shape == (6, 2048) and len(scores.scores) == 6  # 3 s: ceil(3 / (16 / 30)) snippets
    assert scores.frames()[-1] == (67, 74)  # [2.67 s, 3 s) at 25 fps
    both = manifest(root / "new.txt", root / "new_feats", ["Abuse009"])
    model, _, ds, _ = load_for_scoring(ckpt, both, device=torch.device("cpu"), progress=False,
                                    require_both_labels=False)
    ref = score_dataset(model, ds)
    assert np.allclose(scores.scores, ref.snippets[0], atol=1e-5)
    assert abs(scores.video_score - float(ref.video[0])) < 1e-5
    assert cli("test", "--video", video, "--checkpoint", ckpt, "--random_weights", "--out_dir",
               root / "out", "--no_progress") == 0
    out = capsys.readouterr().out
    assert "extraction settings from the sidecars of its training features" in out and "(6 points, 75 frames at 25 fps)" in out


def test_contradicting_flags_and_weights_are_refused(trained, capsys):
    root, _, ckpt = trained
    video = root / "videos" / "Abuse004.avi"
    assert cli("test", "--video", video, "--checkpoint", ckpt, "--backbone", "x3d_l", "--random_weights") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--backbone x3d_l contradicts the checkpoint" in err[0] and "'x3d_xs'" in err[0]
    assert cli("test", "--video", video, "--checkpoint", ckpt, "--crops", 3, "--random_weights") == 2
    assert "--crops 3 contradicts" in capsys.readouterr().err
    # trained on random-weight features: real weights would be another feature space
    weights = root / "X3D_XS.pyth"
    from scripts.extraction.x3d import create_x3d_network
    torch.save({"model_state": create_x3d_network("x3d_xs").state_dict()}, weights)
    assert cli("test", "--video", video, "--checkpoint", ckpt, "--backbone_checkpoint", weights) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "made with random X3D weights" in err[0]


def test_test_manifest_made_otherwise_is_refused(trained, capsys):
    root, lists, ckpt = trained
    extract(root / "videos", root / "feats32", SETTINGS.replace("--stride 16", "--stride 32"))
    other = manifest(root / "test32.txt", root / "feats32", TEST)
    assert cli("test", "--test_list", other, "--checkpoint", ckpt, "--out_dir", root / "t32") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "features extracted with stride 32" in err[0] and "trained on stride 16" in err[0]
    assert not (root / "t32").exists()
    assert cli("test", "--test_list", other, "--checkpoint", ckpt, "--out_dir", root / "t32",
               "--force_settings", "--no_progress") == 0
    assert "warning: " in capsys.readouterr().err
    assert cli("test", "--test_list", lists["test"], "--checkpoint", ckpt, "--out_dir", root / "t16",
               "--no_progress") == 0
    assert "extraction settings match" in capsys.readouterr().out


def test_training_on_mixed_settings_is_refused(trained, capsys):
    root, lists, _ = trained
    mixed = root / "mixed.txt"
    mixed.write_text(manifest(root / "a.txt", root / "feats", TRAIN[:3]).read_text()
                     + manifest(root / "b.txt", root / "feats32", TRAIN[3:]).read_text())
    assert cli("main", "--train_list", mixed, "--val_list", lists["val"], "--max_epoch", 1,
               "--runs_dir", root / "runs", "--exp_name", "mixed", "--no_progress") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {mixed}: Normal_Videos_001 and Abuse002 were extracted with different settings "
                   "(stride: 16 vs 32); train and score on features made one way"]
    (root / "feats" / "Abuse001.json").rename(root / "Abuse001.json")  # one video without a sidecar
    try:
        with pytest.raises(MateError, match="Normal_Videos_001 has an extractor sidecar .* but Abuse001 has none"):
            read_extraction(read_manifest(lists["train"]), source=lists["train"])
    finally:
        (root / "Abuse001.json").rename(root / "feats" / "Abuse001.json")


def fake_maps(folder: Path, side: int | None) -> list[VideoEntry]:
    """Two map feature files, with sidecars of the published preprocessing (short side `side`) or none."""
    entries = []
    for name, label in (("Normal_Videos_001_x264", 0), ("Abuse001_x264", 1)):
        path = folder / f"{name}.npy"
        np.save(path, np.zeros((192, 16, 10, 10), np.float16))
        if side is not None:
            sidecar = dict(PUBLISHED, side_size=side, weights="model_zoo:X3D_L.pyth sha256:0123456789ab", fps=30.0)
            path.with_suffix(".json").write_text(json.dumps(sidecar))
        entries.append(VideoEntry(path=path, label=label, cls="Normal" if label == 0 else "Abuse"))
    return entries


@pytest.mark.parametrize("side, ok", [(None, True), (320, True), (356, False)])
def test_published_checkpoint_assumes_the_published_preprocessing(tmp_path, side, ok):
    feature = load_checkpoint(PUBLISHED_DIR / "MATE_base.pkl")["feature"]
    entries = fake_maps(tmp_path, side)
    if ok:
        check_test_features(entries, feature, test_list=Path("t.txt"), checkpoint=Path("MATE_base.pkl"))
    else:
        with pytest.raises(MateError, match="side_size 356.*trained on side_size 320 .the published preprocessing"):
            check_test_features(entries, feature, test_list=Path("t.txt"), checkpoint=Path("MATE_base.pkl"))


def test_weights_are_named_by_their_hash():
    assert weights_id("checkpoints/X3D_L.pyth sha256:0a1b2c") == weights_id("model_zoo:X3D_L.pyth sha256:0a1b2c")
    assert weights_id("random") == "random"


@pytest.mark.parametrize("extra, fault", [
    ({"fps": 30.0}, None),  # the frame-count rule of earlier versions at 30 fps: the published windows
    ({"fps": 29.97}, "at 29.97 fps"), ({"fps": 25.0}, "at 25 fps"), ({}, "at an unknown frame rate"),
    ({"fps": 25.0, "window_s": 80 / 30, "stride_s": 80 / 30}, None),  # made in seconds: any rate
])
def test_old_frame_count_features_are_valid_only_at_30_fps(tmp_path, extra, fault):
    """Training and test read sidecars through read_extraction: an old-rule file at another rate is one line."""
    entries = fake_maps(tmp_path, 320)
    sidecar = {k: v for k, v in json.loads(entries[1].path.with_suffix(".json").read_text()).items() if k != "fps"}
    entries[1].path.with_suffix(".json").write_text(json.dumps({**sidecar, **extra}))
    if fault is None:
        assert read_extraction(entries, source="t.txt")["source"] == "sidecars"
        return
    with pytest.raises(MateError) as err:
        read_extraction(entries, source="t.txt")
    line = str(err.value)
    assert line.startswith(f"{entries[1].path.with_suffix('.json')}: made by an older feature_extractor.py's "
                           "frame-count clip rule " + fault) and "--overwrite" in line and "\n" not in line
    x3d_xs = {**sidecar, "fps": 30.0, "frames_per_clip": 4, "sampling_rate": 12, "stride": 48}
    check_clock({**x3d_xs, "clip_sampling": "strided"}, entries[1].path)  # strided: the same at 30 fps
    with pytest.raises(MateError, match="one frame more"):  # 4 x 12 / 30 s as a float is longer than 1.6 s
        check_clock(x3d_xs, entries[1].path)
