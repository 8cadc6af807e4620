"""Paths with spaces and non-ASCII letters go through every script: makelist -> StratifiedKFold ->
main -> test, with the manifests quoting what needs it."""
import csv
import json

import numpy as np

from scripts.data.manifest import read_manifest
from tests.conftest import run_script


def test_spaces_and_non_ascii_through_the_pipeline(tmp_path):
    root = tmp_path / "data with spaces é日本"
    rng = np.random.default_rng(0)
    for i in range(12):
        for cls, label in (("Abuse", 1), ("Normal", 0)):
            name = f"Abuse 0{i:02d} ü x264" if label else f"Normal_Videos {i:02d} é"
            x = rng.random((16, 4, 2, 2)) + (1.5 * (rng.random((16, 4, 2, 2)) > 0.9) if label else 0)
            (root / cls).mkdir(parents=True, exist_ok=True)
            np.save(root / cls / f"{name}.npy", x.astype(np.float32))
    lists = tmp_path / "lists ü"
    done = run_script("makelist.py", "--features_dir", root, "--split", "random", "--test_ratio", "0.25",
                      "--out_train", lists / "train.txt", "--out_test", lists / "test.txt")
    assert done.returncode == 0, done.stderr
    assert "'../data with spaces é日本/Abuse/Abuse 000 ü x264.npy' 1 Abuse" in (lists / "train.txt").read_text() \
        or "'../data with spaces é日本/Abuse/Abuse 000 ü x264.npy' 1 Abuse" in (lists / "test.txt").read_text()
    assert len(read_manifest(lists / "train.txt")) == 18 and len(read_manifest(lists / "test.txt")) == 6
    done = run_script("StratifiedKFold.py", "--rgb_list", lists / "train.txt", "--k", "3", "--out_dir", lists / "folds")
    assert done.returncode == 0, done.stderr
    assert run_script("StratifiedKFold_verify.py", "--rgb_list", lists / "train.txt", "--k", "3", "--folds_dir",
                      lists / "folds").returncode == 0
    done = run_script("main.py", "--train_list", lists / "folds/fold0_train.txt", "--val_list",
                      lists / "folds/fold0_val.txt", "--max_epoch", "2", "--batch_size", "4", "--runs_dir",
                      tmp_path / "runs é", "--exp_name", "odd name ü", "--no_progress")
    assert done.returncode == 0, done.stderr
    run = tmp_path / "runs é" / "odd name ü"
    done = run_script("test.py", "--test_list", lists / "folds/fold0_test.txt", "--checkpoint",
                      run / "checkpoint_best.pth", "--no_progress", "--n_boot", "50")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert metrics["n_videos"] == 6 and metrics["test_list"] == str(lists / "folds/fold0_test.txt")
    with open(run / "predictions.csv", newline="") as f:
        scored = [row["video"] for row in csv.DictReader(f)]
    assert scored == [e.name for e in read_manifest(lists / "folds/fold0_test.txt")]
    assert sum(name.endswith(" ü x264") for name in scored) == 3  # the anomalous test videos, names intact
