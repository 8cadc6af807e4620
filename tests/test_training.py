"""main.py / test.py end to end on the synthetic data: learning, run folder, resume, checkpoints, errors."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from scripts.model import model_from_checkpoint
from scripts.models.checkpoint import load_checkpoint
from scripts.dataset import FeatureDataset
from scripts.data.manifest import read_manifest
from scripts.core.errors import MateError
from scripts.model import MilConfig, config_fields
from scripts.models.history import current_format
from scripts.option import parse_args
from scripts.evaluation.scoring import score_dataset
from scripts.data.synthetic import make_synthetic
from scripts.training.training import build_scheduler, model_config_from_args
from tests.conftest import run_script, load_script

main_script = load_script("main.py")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """112 training and 56 validation/test videos of the map layout (seed 0)."""
    root = tmp_path_factory.mktemp("synth")
    make_synthetic(root, n_train=112, n_test=56, seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """40 training and 20 validation videos (seed 0), for the tests of a run's mechanics, not its learning."""
    root = tmp_path_factory.mktemp("small")
    make_synthetic(root, n_train=40, n_test=20, seed=0, progress=False)
    return root


def train_args(synth: Path, runs: Path, name: str, *extra: str, plots: bool = False) -> list[str]:
    return ["--train_list", str(synth / "train.txt"), "--val_list", str(synth / "test.txt"),
            "--runs_dir", str(runs), "--exp_name", name, "--model_variant", "fast", "--batch_size", "16",
            "--lr", "0.005", "--warmup_epochs", "1", "--no_progress", *([] if plots else ["--no_plots"]), *extra]


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    """One fast run of 8 epochs, shared by the tests that read its outputs."""
    runs = tmp_path_factory.mktemp("runs")
    main_script.main(train_args(synth, runs, "fast", "--max_epoch", "8", plots=True))
    return runs / "fast"


def test_training_learns_the_synthetic_set(trained):
    rows = read_csv(trained / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.9 * losses[0]  # training lowers the loss
    best = max(float(r["val_roc_auc"]) for r in rows)
    assert best >= 0.90  # the stated AUC on the synthetic set (measured 0.949; loss 0.751 -> 0.632, fast's 4 heads)
    assert {"loss_bce", "loss_triplet", "lr", "val_pr_auc", "seconds"} <= set(rows[0])


def test_run_folder_is_complete(trained):
    for name in ("config.json", "train.log", "metrics.csv", "checkpoint_best.pth", "checkpoint_last.pth",
                 "plots/loss.png", "plots/auc.png"):
        assert (trained / name).is_file(), name
    config = json.loads((trained / "config.json").read_text())
    assert config["options"]["max_epoch"] == 8 and config["model_config"]["dim"] == 8
    assert "torch" in config["versions"] and "git_commit" in config
    assert (trained / "plots/loss.png").read_bytes()[:4] == b"\x89PNG"
    best = load_checkpoint(trained / "checkpoint_best.pth")
    rows = read_csv(trained / "metrics.csv")
    best_row = max(rows, key=lambda r: float(r["val_roc_auc"]))  # chosen on validation, first of ties
    assert best["epoch"] == int(best_row["epoch"])
    # the alarm threshold of test.py --video, chosen on validation at the best epoch (F1 of the val scores)
    assert best["metrics"]["val_threshold"] == pytest.approx(float(best_row["val_threshold"]))
    assert 0.0 < best["metrics"]["val_threshold"] < 1.0
    assert "optimizer" not in best and "optimizer" in load_checkpoint(trained / "checkpoint_last.pth")
    # a checkpoint says what it is: its format and every key of the model and loss configs
    assert best["format"] == current_format() and tuple(best["model_config"]) == config_fields("fast")
    assert best["model_config"] == config["model_config"] and best["loss_config"] == config["loss_config"]


def test_checkpoint_round_trip_and_test_script(trained, synth, tmp_path):
    out = tmp_path / "eval"
    proc = run_script("test.py", "--test_list", synth / "test.txt", "--checkpoint", trained / "checkpoint_best.pth",
                      "--out_dir", out, "--fold", "0", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert "ROC-AUC" in proc.stdout and "PR-AUC" in proc.stdout
    preds = np.load(out / "preds_fold0.npy")
    # the model rebuilt from the checkpoint alone gives the same scores in this process
    model, _ = model_from_checkpoint(load_checkpoint(trained / "checkpoint_best.pth"))
    ds = FeatureDataset(read_manifest(synth / "test.txt"), progress=False)
    np.testing.assert_allclose(score_dataset(model, ds).video, preds, rtol=1e-5, atol=1e-6)
    # metrics equal scikit-learn's on predictions.csv, in manifest order
    rows = read_csv(out / "predictions.csv")
    assert [r["video"] for r in rows] == [e.name for e in ds.entries]
    y, s = np.array([int(r["label"]) for r in rows]), np.array([float(r["score"]) for r in rows])
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-6)
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, s), abs=1e-6)
    # maps give one score per video: the headline is the video-level figure, named so, chosen on validation
    h = metrics["headline"]
    assert (h["metric"], h["level"], h["value"], h["benchmark"]) == ("video_roc_auc", "video", metrics["roc_auc"], None)
    assert h["selection"].startswith("validation") and "video ROC-AUC" in proc.stdout and "headline" in proc.stdout
    lo, hi = metrics["roc_auc_ci"]
    assert lo <= metrics["roc_auc"] <= hi
    assert set(metrics["per_class_roc_auc"]) <= {e.cls for e in ds.entries} - {"Normal"}
    assert (out / "plots" / "roc_curve.png").is_file() and (out / "plots" / "pr_curve.png").is_file()


def test_resume_equals_unbroken_run(small, tmp_path):
    synth, runs = small, tmp_path / "runs"
    main_script.main(train_args(synth, runs, "whole", "--max_epoch", "2", "--seed", "3"))
    main_script.main(train_args(synth, runs, "broken", "--max_epoch", "2", "--seed", "3", "--stop_epoch", "1"))
    assert len(read_csv(runs / "broken" / "metrics.csv")) == 1
    main_script.main(train_args(synth, runs, "broken", "--max_epoch", "2", "--seed", "3", "--resume"))
    whole, broken = read_csv(runs / "whole" / "metrics.csv"), read_csv(runs / "broken" / "metrics.csv")
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(whole) == drop(broken)
    a = load_checkpoint(runs / "whole" / "checkpoint_last.pth")["model"]
    b = load_checkpoint(runs / "broken" / "checkpoint_last.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_select_from_epoch_keeps_earlier_epochs_out_of_the_selection(small, tmp_path):
    """From epoch 6 on, in a run of 3: the run's last epoch (a short trial of a shipped config is not refused),
    whatever epochs 1 and 2 scored."""
    synth, runs = small, tmp_path / "runs"
    main_script.main(train_args(synth, runs, "late", "--max_epoch", "3", "--select_from_epoch", "6"))
    rows = read_csv(runs / "late" / "metrics.csv")
    assert len(rows) == 3 and load_checkpoint(runs / "late" / "checkpoint_best.pth")["epoch"] == 3
    proc = run_script("main.py", *train_args(synth, runs, "x", "--max_epoch", "3", "--select_from_epoch", "0"))
    assert proc.returncode == 2 and "--select_from_epoch: must be at least 1, got 0" in proc.stderr
    assert not (runs / "x").exists()


def test_existing_run_is_not_overwritten(small, tmp_path):
    synth, runs = small, tmp_path / "runs"
    args = train_args(synth, runs, "once", "--max_epoch", "1")
    assert run_script("main.py", *args).returncode == 0
    before = (runs / "once" / "checkpoint_last.pth").read_bytes()
    proc = run_script("main.py", *args)
    assert proc.returncode == 2 and "--resume" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (runs / "once" / "checkpoint_last.pth").read_bytes() == before
    assert run_script("main.py", *args, "--overwrite").returncode == 0


def test_scheduler_warms_up_then_decays():
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = build_scheduler(opt, steps_per_epoch=10, max_epoch=10, warmup_epochs=2)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(0.01)
    assert lrs.index(max(lrs)) == 20 and lrs[-1] < 2e-4
    assert all(a <= b for a, b in zip(lrs[:20], lrs[1:21])) and all(a >= b for a, b in zip(lrs[20:], lrs[21:]))


def write_manifest_of(tmp_path: Path, arrays: dict[str, np.ndarray], labels: dict[str, int]) -> Path:
    lines = []
    for name, arr in arrays.items():
        np.save(tmp_path / f"{name}.npy", arr)
        lines.append(f"{name}.npy {labels[name]}")
    path = tmp_path / f"list_{len(list(tmp_path.glob('list_*')))}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_bad_inputs_give_one_line(synth, trained, tmp_path):
    rng = np.random.default_rng(0)
    good = {f"Normal_Videos_{i}": rng.random((192, 16, 10, 10), dtype=np.float32) for i in range(2)}
    good.update({f"Abuse90{i}_x264": rng.random((192, 16, 10, 10), dtype=np.float32) for i in range(2)})
    labels = {k: int("Normal" not in k) for k in good}
    nan = dict(good)
    nan["Abuse900_x264"] = nan["Abuse900_x264"].copy()
    nan["Abuse900_x264"][0, 0, 0, 0] = np.nan
    nan_list = write_manifest_of(tmp_path, nan, labels)
    one_line_error(run_script("main.py", *train_args(synth, tmp_path / "r", "nan", "--max_epoch", "1")[:2],
                              "--val_list", nan_list, "--runs_dir", tmp_path / "r", "--no_progress"),
                   "Abuse900_x264.npy", "NaN")
    (tmp_path / "n").mkdir()
    normal_only = write_manifest_of(tmp_path / "n", {k: v for k, v in good.items() if "Normal" in k}, labels)
    one_line_error(run_script("test.py", "--test_list", normal_only, "--checkpoint", trained / "checkpoint_best.pth",
                              "--out_dir", tmp_path / "o", "--no_progress"), "all 2 videos are normal")
    (tmp_path / "s").mkdir()
    small = write_manifest_of(tmp_path / "s", {k: v[:96] for k, v in good.items()}, labels)
    one_line_error(run_script("test.py", "--test_list", small, "--checkpoint", trained / "checkpoint_best.pth",
                              "--out_dir", tmp_path / "o", "--no_progress"), "C=96", "C=192", "checkpoint_best.pth")
    assert not (tmp_path / "o").exists()  # nothing written on a fault
    one_line_error(run_script("test.py", "--test_list", small, "--checkpoint", tmp_path / "nope.pth"),
                   "nope.pth", "checkpoint not found")
    one_line_error(run_script("main.py", "--config", "configs/fast.json", "--no_progress"), "--train_list")


@pytest.mark.parametrize("flags, name", [(["--no_motion_map"], "no_motion_map"), (["--tcc_mode", "gating"], "tcc_mode"),
                                         (["--dim", "16"], "dim"), (["--motion_window", "3"], "motion_window"),
                                         (["--video_logit", "embedding"], "video_logit")])
def test_mil_refuses_mates_options(flags, name, tmp_path):
    """The MIL baseline has none of MATE's parts: a MATE option given with --model_variant mil, even at the
    value MATE would use, is refused in one line before anything is read or written."""
    proc = run_script("main.py", "--config", "configs/mil.json", "--train_list", tmp_path / "none.txt",
                      "--val_list", tmp_path / "none.txt", "--runs_dir", tmp_path / "r", "--no_progress", *flags)
    one_line_error(proc, f"--{name}: an option of MATE's parts", "--model_variant mil")
    assert not (tmp_path / "r").exists()
    args = parse_args(main_script.get_args_parser(), ["--model_variant", "mil", *flags])
    with pytest.raises(MateError, match=f"--{name}"):
        model_config_from_args(args, in_channels=192)


def test_a_model_value_no_variant_takes_is_refused_before_anything_is_written(small, tmp_path):
    """A value the config refuses (heads that do not divide dim, a part paper_* lack) is one line before the
    features load, and the run folder is not created."""
    for flags, fault in ((["--num_heads", "3"], "num_heads must be a divisor of dim = 8"),
                         (["--model_variant", "paper_fast", "--use_temporal_smoothing"],
                          "use_temporal_smoothing must be False for paper_fast")):
        proc = run_script("main.py", *train_args(small, tmp_path / "r", "x", *flags))
        assert proc.returncode == 2 and fault in proc.stderr and "loading" not in proc.stderr, proc.stderr
    assert not (tmp_path / "r").exists()


def test_mil_config_from_args():
    args = parse_args(main_script.get_args_parser(), ["--config", "configs/mil.json", "--dropout", "0.2",
                                                      "--mil_hidden", "64"])
    assert model_config_from_args(args, in_channels=2048) == MilConfig(in_channels=2048, dropout=0.2, hidden=64)
    for given in (["--motion_window", "2"], ["--num_queries", "8"]):  # MATE's values, still MATE's options
        args = parse_args(main_script.get_args_parser(), ["--config", "configs/mil.json", *given])
        with pytest.raises(MateError, match=f"{given[0]}: an option of MATE's parts"):
            model_config_from_args(args, in_channels=192)
    args = parse_args(main_script.get_args_parser(), ["--model_variant", "fast", "--mil_embed", "8"])
    with pytest.raises(MateError, match="--mil_embed: an option of the MIL baseline; --model_variant fast"):
        model_config_from_args(args, in_channels=192)


@pytest.mark.parametrize("script", ["main.py", "train.py", "test.py"])
def test_help_lists_flags(script):
    proc = run_script(script, "--help")
    assert proc.returncode == 0
    flags = {"main.py": ["--train_list", "--val_list", "--batch_size", "--lr", "--max_epoch", "--exp_name",
                         "--model_variant", "--no_motion_map", "--no_attention", "--tcc_mode", "--no_tcc",
                         "--no_motion_pooling", "--no_triplet", "--resume", "--config", "--seed", "--device",
                         "--cache_dtype", "--num_segments", "--crop_mode"],
             "test.py": ["--test_list", "--checkpoint", "--fold", "--out_dir", "--gt", "--device"]}
    for flag in flags.get(script, flags["main.py"]):

        assert flag in proc.stdout, flag


def test_two_evaluations_into_one_folder_are_refused(trained, synth, tmp_path):
    """test.py holds its output folder's lock while it writes: a second one into the same folder is one line."""
    from scripts.core.locks import exclusive_lock
    from scripts.evaluation.evaluation import TEST_LOCK_NAME

    out = tmp_path / "eval"
    with exclusive_lock(out / TEST_LOCK_NAME, what="held by this test"):
        proc = run_script("test.py", "--test_list", synth / "test.txt", "--checkpoint", trained / "checkpoint_best.pth",
                          "--out_dir", out, "--no_progress", "--n_boot", "20")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"test.py's output folder {out} is in use by pid" in proc.stderr and not (out / "predictions.csv").exists()
    proc = run_script("test.py", "--test_list", synth / "test.txt", "--checkpoint", trained / "checkpoint_best.pth",
                      "--out_dir", out, "--no_progress", "--n_boot", "20")
    assert proc.returncode == 0 and (out / "predictions.csv").is_file()


def test_no_plots_writes_the_same_numbers_and_no_png(small, trained, tmp_path):
    runs = tmp_path / "runs"
    assert run_script("main.py", *train_args(small, runs, "quiet", "--max_epoch", "1")).returncode == 0
    assert (runs / "quiet" / "metrics.csv").is_file() and not list(runs.rglob("*.png"))
    evals = {}
    for name, extra in (("plots", []), ("quiet", ["--no_plots"])):
        done = run_script("test.py", "--test_list", small / "test.txt", "--checkpoint", trained / "checkpoint_best.pth",
                          "--out_dir", tmp_path / name, "--no_progress", "--n_boot", "20", *extra)
        assert done.returncode == 0, done.stderr
        evals[name] = json.loads((tmp_path / name / "test_metrics.json").read_text())
    assert sorted(p.name for p in (tmp_path / "plots").rglob("*.png")) == ["pr_curve.png", "roc_curve.png"]
    assert not list((tmp_path / "quiet").rglob("*.png"))
    assert evals["quiet"] == evals["plots"]


def test_tensorboard_events_or_one_line_saying_what_to_install(small, tmp_path):
    """--tensorboard (requirements-optional.txt): event files under <run>/tensorboard/ where the package is
    installed; where it is not (make test's environment), one line naming the file to install, before any work."""
    import importlib.util

    done = run_script("main.py", *train_args(small, tmp_path / "runs", "tb", "--max_epoch", "1", "--tensorboard"))
    if importlib.util.find_spec("tensorboard") is None:
        assert done.returncode == 2
        assert done.stderr == ("error: --tensorboard: the tensorboard package is not installed; pip install -r "
                               "requirements-optional.txt\n")
        assert not (tmp_path / "runs/tb/metrics.csv").exists()
    else:
        assert done.returncode == 0, done.stderr
        assert list((tmp_path / "runs/tb/tensorboard").glob("events.out.tfevents.*"))
