"""The original README's commands, typed as written (data paths and epochs aside), one after another
on synthetic features named like every UCF-Crime video, then the three diagnostics with no arguments."""
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_DATA, shell

C, T, H, W = 16, 8, 2, 2  # small maps keep 1,900 videos and six trainings within seconds


def synthetic_ucf_folder(root: Path) -> None:
    """data/ucf_x3d/<Class>/<name>.npy for every video of the official split: noisy static maps; an
    anomalous video carries a burst on a few channels at one place for two time steps."""
    rng = np.random.default_rng(0)
    for split in ("Anomaly_Train.txt", "Anomaly_Test.txt"):
        for line in (SHARED_DATA / split).read_text().split():
            folder, name = line.split("/")
            x = rng.random((C, 1, H, W)) + 0.3 * rng.random((C, T, H, W))
            if "Normal" not in folder:
                t, h, w = rng.integers(1, T - 2), rng.integers(H), rng.integers(W)
                x[:4, t:t + 2, h, w] += 1.5
            path = root / "data" / "ucf_x3d" / ("Normal" if "Normal" in folder else folder) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path.with_suffix(".npy"), x.astype(np.float16))


@pytest.mark.slow  # processes and their timing: make test-slow
def test_seed_command_sequence_then_diagnostics_with_no_arguments(tmp_path, monkeypatch):
    synthetic_ucf_folder(tmp_path)
    monkeypatch.chdir(tmp_path)

    def cli(command: str) -> int:
        return shell(command, tmp_path).returncode

    epochs = "--max_epoch 3 --no_progress"  # the README's 150 epochs are for the real features
    assert cli("python makelist.py --features_dir data/ucf_x3d/ --out_train ucf_x3d_train.txt "
                         "--out_test ucf_x3d_test.txt") == 0
    assert cli("python StratifiedKFold.py --rgb_list ucf_x3d_train.txt --k 5 "
                                "--out_dir data/manifests/") == 0
    assert cli("python StratifiedKFold_verify.py --rgb_list ucf_x3d_train.txt "
                                       "--folds_dir data/manifests/") == 0
    assert cli("python main.py --train_list data/manifests/fold0_train.txt --val_list "
                            "data/manifests/fold0_val.txt --batch_size 16 --lr 0.002 --max_epoch 150 "
                            f"--exp_name motion_cond_fast --model_variant fast {epochs}") == 0
    assert cli("python test.py --test_list data/manifests/fold0_test.txt --checkpoint "
                            "runs/motion_cond_fast/checkpoint_best.pth --no_progress") == 0
    first = json.loads(Path("runs/motion_cond_fast/test_metrics.json").read_text())
    assert first["n_videos"] == 290 and first["roc_auc"] > 0.75, first["roc_auc"]
    for fold in (0, 4):  # the README's fold loop over 0..4: its mechanics; the first and the last fold suffice
        assert cli(f"python main.py --train_list data/manifests/fold{fold}_train.txt --val_list "
                                f"data/manifests/fold{fold}_val.txt --exp_name exp_fold{fold} --max_epoch 1 "
                                "--no_progress --no_plots") == 0  # one epoch is enough
        assert cli(f"python test.py --test_list data/manifests/fold{fold}_test.txt --checkpoint "
                                f"runs/exp_fold{fold}/checkpoint_best.pth --no_progress --no_plots") == 0
        assert Path(f"runs/exp_fold{fold}/preds_fold{fold}.npy").is_file()
    done = shell("python aggregate.py --runs runs/exp_fold0 runs/exp_fold4", tmp_path)
    assert done.returncode == 0 and "exp_fold" in done.stdout

    for script in ("test1.py", "test2.py", "motion_map_analyze.py"):
        done = shell(f"python {script}", tmp_path)
        assert done.returncode == 0, (script, done.stderr)
        out = done.stdout
        assert (f"{script}: no --test_list/--checkpoint given; using runs/exp_fold4/checkpoint_best.pth and "
                f"its test list data/manifests/fold4_test.txt") in out, out
    assert Path("runs/exp_fold4/plots/motion_on_off.json").is_file()
    assert "[NORMAL] Motion Entropy" in out


def test_diagnostics_with_nothing_to_choose_say_what_to_pass(tmp_path):
    for script in ("test1.py", "test2.py", "motion_map_analyze.py"):
        done = shell(f"python {script}", tmp_path)
        assert done.returncode == 2
        err = done.stderr.strip().splitlines()
        assert err == ["error: runs: no run evaluated by test.py to analyse; pass --test_list and "
                       "--checkpoint (or --exp_name)"]


@pytest.mark.slow  # make test-slow (make test stays under 90 s on 2 cores)
def test_seed_makelist_line_runs_on_the_official_named_synthetic_folder(tmp_path):
    """makelist.py --synthetic --names official writes the 1,900 official names, so the seed's makelist and
    fold lines (official split, by name) run on it as written; numbered names leave most of them missing."""
    def cli(command: str):
        return shell(command, tmp_path)

    assert cli("python makelist.py --synthetic data/ucf_x3d --names official --feature_dim 4").returncode == 0
    done = cli("python makelist.py --features_dir data/ucf_x3d/features/ --out_train ucf_x3d_train.txt "
               "--out_test ucf_x3d_test.txt")
    assert done.returncode == 0, done.stderr
    train = [line for line in (tmp_path / "ucf_x3d_train.txt").read_text().splitlines() if not line.startswith("#")]
    assert len(train) == 1610 and train[0].split()[0].endswith("Abuse/Abuse001_x264.npy")
    assert cli("python StratifiedKFold.py --rgb_list ucf_x3d_train.txt --k 5 --out_dir data/manifests/").returncode == 0
    assert cli("python StratifiedKFold_verify.py --rgb_list ucf_x3d_train.txt --folds_dir data/manifests/").returncode == 0
    numbered = cli("python makelist.py --synthetic small --n_train 40 --n_test 10 --feature_dim 4")
    assert numbered.returncode == 0
    refused = cli("python makelist.py --features_dir small/features --split official --out_train a.txt --out_test b.txt")
    assert refused.returncode == 1 and "missing" in refused.stderr
