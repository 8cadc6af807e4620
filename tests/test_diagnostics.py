"""Motion diagnostics and the SNR experiment: known values, and each script end to end."""
import json

import numpy as np
import pytest

import main as main_script
from scripts.motion_stats import (class_table, format_line, motion_area_ratio, motion_entropy,
                                  normal_threshold)
from scripts.snr import BagModel, snr_mean_closed, snr_motion_closed, sweep
from scripts.synthetic import make_synthetic
from test2 import compare_on_off
from tests.conftest import run_script


def test_entropy_of_known_histograms():
    uniform = (np.arange(256 * 4) + 0.5) / (256 * 4)  # 4 values in each of the 256 bins
    assert motion_entropy(uniform) == pytest.approx(8.0)
    assert motion_entropy(np.full((16, 10, 10), 0.3)) == 0.0
    two = np.array([0.1] * 50 + [0.9] * 50)
    assert motion_entropy(two) == pytest.approx(1.0)


def test_area_ratio_and_threshold_on_a_constructed_map():
    m = np.zeros((4, 5, 5))
    m[1, 2, 2] = m[2, 2, 3] = 1.0
    m[3, 0, 0] = 0.4
    assert motion_area_ratio(m, 0.5) == pytest.approx(2 / 100)
    assert motion_area_ratio(m, 0.3) == pytest.approx(3 / 100)
    normal = [np.array([0.0, 0.0, 1.0, 1.0])]  # mean 0.5, std 0.5 -> tau 1.5
    assert normal_threshold(normal + [np.ones(3)], [0, 1]) == pytest.approx(1.5)


def test_class_table_and_line_format():
    maps = [np.full(10, 0.2), np.linspace(0, 1, 10), np.linspace(0, 1, 10)]
    table = class_table(maps, [0, 1, 1], ["Normal", "Abuse", "Arson"], tau=0.5)
    assert list(table) == ["NORMAL", "ANOMALY", "Abuse", "Arson"]
    assert table["NORMAL"]["motion_area_ratio"] == 0.0 and table["ANOMALY"]["motion_area_ratio"] == 0.5
    assert format_line("NORMAL", {"motion_entropy": 7.28061, "motion_area_ratio": 0.01}) == \
        "[NORMAL] Motion Entropy : 7.2806 Motion Area Ratio : 0.0100"


def test_snr_motion_pooling_beats_mean_only_with_motion():
    model = BagModel()
    rows = {(r["rho"], r["pooling"]): r for r in sweep(model, [1.0], [0.0, 0.5, 1.0], n_bags=3000, seed=0)}
    # rho = 0: no motion cue, motion weighting is mean pooling (equal within noise: here exactly)
    assert rows[(0.0, "motion")]["snr"] == pytest.approx(rows[(0.0, "mean")]["snr"], abs=0.05)
    for rho in (0.5, 1.0):
        assert rows[(rho, "motion")]["snr"] > 1.5 * rows[(rho, "mean")]["snr"]
        assert rows[(rho, "motion")]["roc_auc"] > rows[(rho, "mean")]["roc_auc"] + 0.1


def test_snr_empirical_matches_closed_form():
    """Stated tolerance: 8% relative, for a in [0.5, 3] and rho in [0, 1] with 4,000 bags per class."""
    model = BagModel()
    for r in sweep(model, [0.5, 1.0, 2.0, 3.0], [0.0, 0.25, 0.5, 0.75, 1.0], n_bags=4000, seed=1):
        if r["pooling"] in ("mean", "motion"):
            assert r["snr"] == pytest.approx(r["snr_closed_form"], rel=0.08), r
    assert snr_mean_closed(model, 1.0) == pytest.approx(1.0)  # a L / (sigma sqrt T) = 8 / 8
    assert snr_motion_closed(model, 1.0, 0.0) == pytest.approx(snr_mean_closed(model, 1.0))


def test_delong_in_test2_identical_and_different():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 60)
    scores = rng.random(120) + 0.3 * labels
    same = compare_on_off(labels, scores, scores.copy(), n_boot=200, seed=0)
    assert same["delong"]["p_value"] == 1.0 and same["paired_bootstrap"]["p_value"] == 1.0
    better = labels + 0.3 * rng.standard_normal(120)
    diff = compare_on_off(labels, better, rng.random(120), n_boot=200, seed=0)
    assert diff["delong"]["p_value"] < 1e-4 and diff["auc_on"] > diff["auc_off"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("diag")
    make_synthetic(root / "data", n_train=40, n_test=24, seed=1, progress=False)
    main_script.main(["--train_list", str(root / "data/train.txt"), "--val_list", str(root / "data/test.txt"),
                      "--runs_dir", str(root / "runs"), "--exp_name", "tiny", "--max_epoch", "2", "--no_progress"])
    return root


def test_test1_writes_its_files(tiny_run):
    proc = run_script("test1.py", "--test_list", tiny_run / "data/test.txt", "--exp_name", "tiny", "--runs_dir",
                      tiny_run / "runs", "--method", "pca", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    plots = tiny_run / "runs/tiny/plots"
    for name in ("embedding_pca.png", "embedding_pca.csv", "motion_trajectories.png", "motion_per_time.csv"):
        assert (plots / name).is_file(), name
    rows = (plots / "motion_per_time.csv").read_text().splitlines()
    assert rows[0] == "class,t,mean,std,videos" and rows[1].startswith("NORMAL,0,0.000000")  # no motion at t = 0
    assert "silhouette" in proc.stdout


def test_test2_single_checkpoint_motion_off(tiny_run):
    out = tiny_run / "t2"
    proc = run_script("test2.py", "--test_list", tiny_run / "data/test.txt", "--checkpoint",
                      tiny_run / "runs/tiny/checkpoint_best.pth", "--out_dir", out, "--n_boot", "100", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "motion_on_off.json").read_text())
    assert 0 <= result["delong"]["p_value"] <= 1 and (out / "motion_on_off_roc.png").is_file()
    assert "motion ON" in proc.stdout and "DeLong" in proc.stdout


def test_motion_map_analyze_features_and_checkpoint(tiny_run):
    for extra in ([], ["--exp_name", "tiny", "--runs_dir", str(tiny_run / "runs")]):
        out = tiny_run / f"mma{len(extra)}"
        proc = run_script("motion_map_analyze.py", "--test_list", tiny_run / "data/test.txt", "--out_dir", out,
                          "--no_progress", *extra)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[1].startswith("[NORMAL] Motion Entropy : ") and lines[2].startswith("[ANOMALY] Motion Entropy : ")
        for name in ("motion_stats.csv", "motion_stats.json", "motion_histogram.png", "motion_over_time.png"):
            assert (out / name).is_file(), name


def test_snr_experiment_script(tmp_path):
    proc = run_script("snr_experiment.py", "--amplitudes", "1", "--rhos", "0", "1", "--n_bags", "300",
                      "--out_dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "snr_results.csv").read_text().splitlines()
    assert rows[0] == "amplitude,rho,pooling,snr,snr_closed_form,roc_auc" and len(rows) == 1 + 2 * 4
    for name in ("snr_vs_rho.png", "snr_closed_form.png", "auc_vs_amplitude.png"):
        assert (tmp_path / name).is_file()
    bad = run_script("snr_experiment.py", "--rhos", "1.5", "--out_dir", tmp_path / "bad")
    assert bad.returncode == 2 and "--rhos" in bad.stderr


@pytest.mark.parametrize("script", ["test1.py", "test2.py", "motion_map_analyze.py", "snr_experiment.py"])
def test_help(script):
    proc = run_script(script, "--help")
    assert proc.returncode == 0 and "--out_dir" in proc.stdout
