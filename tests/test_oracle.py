"""main.py --oracle_test_list: the test set scored every epoch, the oracle epoch = the argmax of the per-epoch
test figure, the checkpoint and headline still chosen on validation (argmax of validation), and the oracle
figure carried into test.py's test_metrics.json and aggregate.py's oracle columns, labelled."""
import csv
import json

import pytest

from scripts.data.synthetic import make_synthetic
from scripts.models.checkpoint import load_checkpoint
from tests.conftest import run_script


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle")
    make_synthetic(root / "syn", n_train=48, n_test=30, seed=0, progress=False)
    assert run_script("StratifiedKFold.py", "--rgb_list", root / "syn/train.txt", "--test_list", root / "syn/test.txt",
                      "--k", "3", "--out_dir", root / "folds").returncode == 0
    runs = root / "runs"
    done = run_script("main.py", "--train_list", root / "folds/fold0_train.txt", "--val_list", root / "folds/fold0_val.txt",
                      "--oracle_test_list", root / "folds/fold0_test.txt", "--runs_dir", runs, "--exp_name", "o_s0_fold0",
                      "--max_epoch", "5", "--batch_size", "8", "--lr", "0.005", "--warmup_epochs", "1",
                      "--no_progress", "--no_plots")
    assert done.returncode == 0, done.stderr
    return root, runs / "o_s0_fold0"


def test_oracle_epoch_is_the_argmax_of_the_test_figure_and_the_checkpoint_the_validation_one(oracle_run):
    root, run = oracle_run
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    test = [float(r["oracle_video_roc_auc"]) for r in rows]
    val = [float(r["val_roc_auc"]) for r in rows]
    record = json.loads((run / "oracle.json").read_text())
    assert record["metric"] == "video_roc_auc" and record["epoch"] == 1 + test.index(max(test))
    assert record["video_roc_auc"] == pytest.approx(max(test)) and record["value"] == record["video_roc_auc"]
    assert record["val_epoch"] == 1 + val.index(max(val)) == load_checkpoint(run / "checkpoint_best.pth")["epoch"]
    assert record["at_val_epoch"]["video_roc_auc"] == pytest.approx(test[record["val_epoch"] - 1])
    assert record["selection"].startswith("test-oracle")


def test_test_py_carries_the_oracle_beside_the_validation_result(oracle_run):
    root, run = oracle_run
    done = run_script("test.py", "--test_list", root / "folds/fold0_test.txt", "--checkpoint", run / "checkpoint_best.pth",
                      "--no_progress", "--no_plots", "--n_boot", "20")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run / "test_metrics.json").read_text())
    record = json.loads((run / "oracle.json").read_text())
    assert metrics["oracle"]["epoch"] == record["epoch"]
    # the headline stays the validation-selected checkpoint's figure
    assert metrics["headline"]["selection"].startswith("validation") and metrics["headline"]["value"] == metrics["roc_auc"]
    assert metrics["roc_auc"] == pytest.approx(record["at_val_epoch"]["video_roc_auc"])
    assert metrics["oracle"]["video_roc_auc"] >= metrics["roc_auc"]
    # another test list: no oracle of this run applies
    other = run_script("test.py", "--test_list", root / "folds/fold0_val.txt", "--checkpoint", run / "checkpoint_best.pth",
                       "--out_dir", root / "other", "--no_progress", "--no_plots", "--n_boot", "20")
    assert other.returncode == 0 and "oracle" not in json.loads((root / "other/test_metrics.json").read_text())
    agg = run_script("aggregate.py", "--runs", run, "--n_boot", "20", "--out", root / "agg.csv")
    assert agg.returncode == 0, agg.stderr
    assert "oracle video ROC-AUC" in agg.stdout and "never the headline" in agg.stdout
    with open(root / "agg.csv") as f:
        first = next(csv.DictReader(f))
    assert int(first["oracle_epoch"]) == record["epoch"]
    assert float(first["oracle_video_roc_auc"]) == pytest.approx(record["video_roc_auc"])


def test_an_oracle_list_that_overlaps_training_is_refused(tmp_path):
    make_synthetic(tmp_path, n_train=16, n_test=8, seed=0, progress=False)
    done = run_script("main.py", "--train_list", tmp_path / "train.txt", "--val_list", tmp_path / "test.txt",
                      "--oracle_test_list", tmp_path / "train.txt", "--runs_dir", tmp_path / "runs", "--max_epoch", "1",
                      "--batch_size", "4", "--no_progress", "--no_plots")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {tmp_path / 'train.txt'}: 16 videos are also in")
