"""The published MATE architecture (variants paper_fast / paper_base, scripts/models/paper_model.py): the
authors' weights load strictly and reproduce their outputs; test.py and main.py accept them."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scripts.models.checkpoint import load_checkpoint, output_folder, save_checkpoint
from scripts.core.cli import run
from scripts.core.errors import MateError
from scripts.models.losses import LossConfig, MateLoss
from scripts.model import config_for_variant, build_model, count_parameters
from scripts.data.synthetic import make_synthetic
from tests.conftest import PUBLISHED, load_script

main_script = load_script("main.py")
test_script = load_script("test.py")

BASE_PKL, FAST_PKL = PUBLISHED / "MATE_base.pkl", PUBLISHED / "MATE_fast.pkl"


def published_weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def reference():
    r = np.load(PUBLISHED / "MATE_base_reference.npz")
    return {k: r[k] for k in r.files}


@pytest.fixture(scope="module")
def paper_base():
    model = build_model(config_for_variant("paper_base"))
    model.load_state_dict(published_weights(BASE_PKL), strict=True)
    return model.eval()


def cli(main, argv, capsys) -> tuple[int, str, str]:
    """Run a script's main in-process as the CLI does; (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        run(main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def one_line(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# --- the architecture ---------------------------------------------------------------------------

def test_reproduces_the_published_outputs(paper_base, reference):
    with torch.no_grad():
        out = paper_base(torch.from_numpy(reference["x"].astype(np.float32)))  # x [3, 192, 16, 10, 10]
    np.testing.assert_allclose(out.video_logit.numpy(), reference["logit"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.embedding.numpy(), reference["pooled"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(torch.sigmoid(out.video_logit).numpy(), reference["prob"], rtol=1e-5, atol=1e-9)
    assert out.snippet_logits.shape == (3, 16) and out.motion.shape == (3, 16, 10, 10)
    assert torch.allclose(out.motion.amax(dim=(2, 3)), torch.ones(3, 16))  # each frame's peak is 1
    with torch.no_grad():  # float16 features are computed in the weights' dtype
        half = paper_base(torch.from_numpy(reference["x"]))
    assert torch.equal(half.video_logit, out.video_logit)


@pytest.mark.parametrize("variant, count", [("paper_fast", 8_378), ("paper_base", 40_130)])
def test_parameter_counts(variant, count):
    assert count_parameters(build_model(config_for_variant(variant))) == count


@pytest.mark.parametrize("variant, path", [("paper_base", BASE_PKL), ("paper_fast", FAST_PKL)])
def test_state_dict_has_the_published_keys_and_shapes(variant, path):
    ours = build_model(config_for_variant(variant)).state_dict()
    theirs = {k: v for k, v in published_weights(path).items() if ".motion_attn_mlp." not in k}
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    assert len(theirs) == 27


def test_snippet_logits_are_the_head_on_one_step(paper_base, reference):
    x = torch.from_numpy(reference["x"][:2].astype(np.float32))
    with torch.no_grad():
        one = paper_base(x[:, :, :1])  # T = 1: every query attends to the only step, as snippets assume
        out = paper_base(x)
    np.testing.assert_allclose(one.snippet_logits[:, 0].numpy(), one.video_logit.numpy(), rtol=0, atol=1e-5)
    assert out.snippet_logits.shape == (2, 16) and out.snippet_logits.std() > 0


@pytest.mark.parametrize("tcc_mode", ["plain", "multiscale", "gating", "multiscale_gating"])
@pytest.mark.parametrize("batch", [1, 2])
def test_variants_build_and_run(tcc_mode, batch):
    cfg = config_for_variant("paper_fast", tcc_mode=tcc_mode)
    model = build_model(cfg).eval()
    tcc = model.blocks[0].tcc
    assert tcc.temporal_fc.in_features == 8 * (3 if tcc_mode.startswith("multiscale") else 1)
    assert (tcc.gate_fc is not None) == tcc_mode.endswith("gating")
    out = model(torch.rand(batch, 192, 5, 4, 3))
    assert out.video_logit.shape == (batch,) and out.snippet_logits.shape == (batch, 5)
    assert out.embedding.shape == (batch, 64) and out.motion.shape == (batch, 5, 4, 3)
    with pytest.raises(AssertionError, match="C = 96"):
        model(torch.rand(batch, 96, 5, 4, 3))


def test_without_motion_map_pools_the_plain_mean():
    model = build_model(config_for_variant("paper_fast", use_motion_map=False)).eval()
    out = model(torch.rand(2, 192, 4, 3, 3))
    assert torch.count_nonzero(out.motion) == 0 and torch.isfinite(out.video_logit).all()


@pytest.mark.parametrize("override, key", [
    (dict(use_tcc=False), "use_tcc"), (dict(use_attention=False), "use_attention"),
    (dict(use_motion_pooling=False), "use_motion_pooling"), (dict(spatial_window=2), "spatial_window"),
    (dict(video_logit="topk"), "video_logit"), (dict(input_norm="video"), "input_norm")])
def test_paper_config_refuses_what_the_published_code_lacks(override, key):
    with pytest.raises(MateError, match=f"{key} must be .* for paper_fast"):
        config_for_variant("paper_fast", **override)


def test_other_variants_keep_their_defaults():
    for variant, dim, heads in (("fast", 8, 4), ("base", 32, 8)):
        cfg = config_for_variant(variant)
        assert (cfg.dim, cfg.num_heads, cfg.input_norm, cfg.video_logit, cfg.dropout) == \
            (dim, heads, "video", "topk", 0.0)
    base = config_for_variant("paper_base")
    assert (base.dim, base.num_heads, base.tcc_mode, base.tcc_bottleneck, base.dropout) == \
        (32, 8, "multiscale_gating", 32, 0.4)
    assert config_for_variant("paper_base", dim=256).tcc_bottleneck == 64  # max(int(dim / 4), 32)


def test_paper_fast_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    x = torch.rand(8, 192, 8, 5, 5)
    x[4:, :16, 4:, 1:3, 1:3] += 3.0  # the anomalous half: an event that starts mid-video
    y = torch.tensor([0.0] * 4 + [1.0] * 4)
    model = build_model(config_for_variant("paper_fast"))
    loss_fn = MateLoss(LossConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        out = model(x)
        loss, _ = loss_fn(out.video_logit, out.snippet_logits, out.embedding, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


# --- the published checkpoint as a MATE checkpoint -----------------------------------------------

def test_published_state_dict_becomes_a_checkpoint(tmp_path):
    ckpt = load_checkpoint(BASE_PKL)
    assert ckpt["model_config"]["variant"] == "paper_base" and ckpt["epoch"] is None
    assert all(np.isnan(v) for v in ckpt["metrics"].values())
    assert ckpt["feature"]["shape"] == [192, 16, 10, 10] and ckpt["feature"]["sequence"] is False
    assert output_folder(BASE_PKL, ckpt).parts[-2:] == ("runs", "MATE_base")
    fresh = build_model(config_for_variant("paper_fast")).state_dict()
    save_checkpoint(tmp_path / "fast.pkl", fresh)
    assert load_checkpoint(tmp_path / "fast.pkl")["model_config"]["variant"] == "paper_fast"
    fresh.pop("fc.bias")
    save_checkpoint(tmp_path / "odd.pkl", fresh)
    with pytest.raises(MateError, match="odd.pkl: a plain state dict that is not the published MATE model"):
        load_checkpoint(tmp_path / "odd.pkl")


def test_fast_pkl_is_refused_in_one_line(tmp_path, capsys):
    code, _, err = cli(test_script.main, ["--test_list", tmp_path / "none.txt", "--checkpoint", FAST_PKL,
                                          "--out_dir", tmp_path / "o"], capsys)
    one_line(code, err, "MATE_fast.pkl", "blocks.0.attn.motion_attn_mlp", "never published")
    assert not (tmp_path / "o").exists()


def write_manifest(folder, arrays: dict) -> object:
    lines = []
    for name, x in arrays.items():
        np.save(folder / f"{name}.npy", x)
        lines.append(f"{name}.npy {int('Normal' not in name)}")
    (folder / "list.txt").write_text("\n".join(lines) + "\n")
    return folder / "list.txt"


def test_test_py_scores_are_sigmoid_of_the_logits(tmp_path, capsys, paper_base, reference):
    rng = np.random.default_rng(0)
    arrays = {"Normal_Videos_001_x264": reference["x"][0], "Abuse001_x264": reference["x"][1],
              "Normal_Videos_002_x264": reference["x"][2],
              "Arrest001_x264": (rng.random((192, 16, 10, 10)) * 2).astype(np.float16)}
    manifest = write_manifest(tmp_path, arrays)
    code, out, err = cli(test_script.main, ["--test_list", manifest, "--checkpoint", BASE_PKL, "--out_dir",
                                            tmp_path / "o", "--n_boot", "20", "--no_progress"], capsys)
    assert code == 0, err
    assert "val ROC-AUC (ckpt)    n/a  (epoch n/a)" in out
    with torch.no_grad():
        logits = paper_base(torch.from_numpy(np.stack(list(arrays.values())).astype(np.float32))).video_logit
    expected = torch.sigmoid(logits).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "o" / "preds.npy"), expected, rtol=1e-6, atol=0)
    np.testing.assert_allclose(expected[:3], reference["prob"], rtol=1e-5)
    with open(tmp_path / "o" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["video"] for r in rows] == list(arrays)
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected, rtol=0, atol=5e-7)
    metrics = json.loads((tmp_path / "o" / "test_metrics.json").read_text())
    assert metrics["best_epoch"] is None and metrics["val_roc_auc"] is None and metrics["val_pr_auc"] is None


def test_video_scoring_with_the_published_checkpoint(tmp_path, capsys, short_clip):
    # the x3d_l map extractor is built for it (random weights: the scores mean nothing, the shapes do)
    code, out, err = cli(test_script.main, ["--video", short_clip, "--checkpoint", BASE_PKL,
                                            "--random_weights", "--out_dir", tmp_path / "v", "--threshold", "0",
                                            "--no_progress", "--no_overlay"], capsys)
    assert code == 0, err
    assert "video score" in out and "  0.0-" in out  # threshold 0: one run from the start
    assert "threshold 0: --threshold" in out
    lines = (tmp_path / "v" / "vtest_short" / "scores.csv").read_text().splitlines()
    assert lines[0].startswith("# RANDOM X3D WEIGHTS") and "one point per sliding window" in lines[0]
    rows = list(csv.DictReader(lines[1:]))
    assert len(rows) == 1 and rows[0]["start_frame"] == "0"  # 1 clip of 2.67 s, fewer than K = 4: one window
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)


# --- main.py --pretrained_ckpt ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_synthetic(root, n_train=16, n_test=8, seed=0, progress=False)
    return root


def train_argv(synth, runs, name, variant, *extra):
    return ["--train_list", synth / "train.txt", "--val_list", synth / "test.txt", "--runs_dir", runs,
            "--exp_name", name, "--model_variant", variant, "--batch_size", "8", "--warmup_epochs", "0",
            "--max_epoch", "1", "--no_progress", *extra]


def test_pretrained_ckpt_round_trip(synth, tmp_path, capsys):
    runs = tmp_path / "runs"
    code, _, err = cli(main_script.main, train_argv(synth, runs, "a", "paper_fast", "--seed", "1"), capsys)
    assert code == 0, err
    start = runs / "a" / "checkpoint_last.pth"
    # lr 0: the weights after one epoch are the initial ones, which must be the checkpoint's
    code, _, err = cli(main_script.main, train_argv(synth, runs, "b", "paper_fast", "--lr", "0",
                                                    "--pretrained_ckpt", start), capsys)
    assert code == 0, err
    a, b = load_checkpoint(start)["model"], load_checkpoint(runs / "b" / "checkpoint_last.pth")["model"]
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((runs / "b" / "config.json").read_text())
    assert config["options"]["pretrained_ckpt"] == str(start)
    assert f"initialised from {start}" in (runs / "b" / "train.log").read_text()
    # the published weights, likewise
    code, _, err = cli(main_script.main, train_argv(synth, runs, "c", "paper_base", "--lr", "0",
                                                    "--pretrained_ckpt", BASE_PKL), capsys)
    assert code == 0, err
    c = load_checkpoint(runs / "c" / "checkpoint_last.pth")["model"]
    assert all(torch.equal(c[k], v) for k, v in published_weights(BASE_PKL).items())


def test_pretrained_ckpt_mismatch_gives_one_line(synth, tmp_path, capsys):
    runs = tmp_path / "runs"
    code, _, err = cli(main_script.main, train_argv(synth, runs, "p", "paper_fast", "--pretrained_ckpt",
                                                    BASE_PKL), capsys)
    one_line(code, err, "MATE_base.pkl", "holds a paper_base model", "builds paper_fast")
    assert not (runs / "p" / "config.json").exists()
    code, _, err = cli(main_script.main, train_argv(synth, runs, "p", "paper_base", "--dim", "16",
                                                    "--pretrained_ckpt", BASE_PKL), capsys)
    one_line(code, err, "MATE_base.pkl", "do not fit", "dim", "input_proj.weight")
    code, _, err = cli(main_script.main, train_argv(synth, runs, "p", "paper_fast", "--pretrained_ckpt",
                                                    FAST_PKL), capsys)
    one_line(code, err, "MATE_fast.pkl", "motion_attn_mlp")
    code, _, err = cli(main_script.main, train_argv(synth, runs, "p", "paper_fast", "--no_tcc"), capsys)
    one_line(code, err, "use_tcc must be True for paper_fast")


def test_pretrained_ckpt_with_resume_is_refused_only_when_it_conflicts(synth, tmp_path, capsys):
    """A requeue script passes its flags again: --resume with the --pretrained_ckpt the run started from
    continues; another file is refused in one line saying what the run started from."""
    runs = tmp_path / "runs"
    first = train_argv(synth, runs, "r", "paper_base", "--pretrained_ckpt", BASE_PKL)
    code, _, err = cli(main_script.main, first, capsys)
    assert code == 0, err
    grown = [a if a != "1" else "2" for a in first]  # --max_epoch 1 -> 2
    code, _, err = cli(main_script.main, grown + ["--resume"], capsys)
    assert code == 0, err
    other = tmp_path / "other.pkl"
    other.write_bytes(Path(BASE_PKL).read_bytes())
    code, _, err = cli(main_script.main, train_argv(synth, runs, "r", "paper_base", "--pretrained_ckpt", other,
                                                    "--resume"), capsys)
    one_line(code, err, f"--pretrained_ckpt {other} with --resume", "started from --pretrained_ckpt")


@pytest.mark.parametrize("variant", ["paper_fast", "paper_base"])
def test_the_published_attention_ignores_the_motion(variant):
    """The published attention scales phi(q), after the feature map: the scale multiplies numerator and
    denominator alike, so at every head size (8 on dim 32 too) the MotionMap leaves the attention's output
    but for eps = 1e-6 (docs/model.md, "Every part alive"; Mate scales q before the feature map instead)."""
    torch.manual_seed(0)
    attention = build_model(config_for_variant(variant)).double().blocks[0].attn
    h = torch.rand(2, 6, 3, 3, attention.to_qkv.in_features, dtype=torch.float64)
    M = torch.rand(2, 6, 3, 3, 1, dtype=torch.float64)
    with torch.no_grad():
        still, moving, none = attention(h, torch.zeros_like(M)), attention(h, M), attention(h, None)
    assert (moving - still).abs().max() < 1e-5 * still.abs().max()
    assert (moving - none).abs().max() < 1e-5 * still.abs().max()
    with torch.no_grad():  # while the values it attends to do matter
        assert (attention(h * 1.5, M) - moving).abs().max() > 1e-2 * still.abs().max()
