"""The diagnostics' modules on constructed inputs with known answers (motion statistics, the SNR
experiment, embeddings, motion ON/OFF, MotionMaps, the shared run loader), then each script end to
end on a tiny trained run, its numbers checked against an independent computation."""
import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from sklearn.metrics import roc_auc_score, silhouette_score

from scripts.diagnostics.analysis_inputs import AnalysisRun, load_analysis_run
from scripts.dataset import load_features
from scripts.data.manifest import read_manifest
from scripts.diagnostics.embedding_view import (embedding_csv, group_separation, motion_curves, motion_per_time_csv, project,
                                    video_motion)
from scripts.core.errors import MateError
from scripts.evaluation.evaluation import load_for_scoring
from scripts.data.manifest import VideoEntry
from scripts.models.motion import motion_map
from scripts.diagnostics.motion_analysis import maps_of, motion_maps, stats_csv
from scripts.model import config_for_variant
from scripts.diagnostics.motion_on_off import NO_MOTION, SAME_MODEL, compare_on_off, describe_off, summary_lines
from scripts.diagnostics.motion_stats import (choose_threshold, class_table, format_line, motion_area_ratio, motion_entropy,
                                  normal_threshold)
from scripts.option import get_analysis_parser, get_runtime_parser
from scripts.evaluation.scoring import score_dataset
from scripts.diagnostics.snr import BagModel, snr_mean_closed, snr_motion_closed, sweep
from scripts.diagnostics.snr_report import results_csv, table_lines
from scripts.data.synthetic import make_synthetic
from tests.conftest import run_script

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EPS = 1e-6  # motion_map's eps: a map is its norms over (video maximum + EPS)
STEP = torch.tensor([0.0, 0.0, 1.0, 1.0]).view(1, 4, 1, 1)  # [C, T, H, W]: one step up at t = 2


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


def test_percentile_threshold_on_constructed_maps():
    """Two normal maps whose cells together are 0.00, 0.01, ..., 0.99: their 99th percentile is
    0.98 + 0.01 * 0.01 = 0.9801 (position 0.99 * 99 = 98.01), so of the normal cells only 0.99 lies
    above it: a normal area ratio of (0 + 1/50) / 2 = 0.01. The anomalous map has 3 of 20 cells above."""
    normal = [np.arange(0, 100, 2).reshape(5, 10) / 100, np.arange(1, 100, 2).reshape(5, 10) / 100]
    anomalous = np.zeros(20)
    anomalous[[3, 4, 5]] = [0.99, 1.0, 1.0]
    anomalous[6] = 0.98  # below tau
    maps, labels = normal + [anomalous], [0, 0, 1]
    tau = normal_threshold(maps, labels)
    assert tau == pytest.approx(0.9801, abs=1e-12)
    assert normal_threshold(maps, labels, percentile=90) == pytest.approx(0.891, abs=1e-12)  # position 89.1
    assert normal_threshold(maps, labels, percentile=100) == 0.99  # no normal cell above
    table = class_table(maps, maps, labels, ["Normal", "Normal", "Abuse"], tau)
    assert table["NORMAL"]["motion_area_ratio"] == pytest.approx(0.01)
    assert table["ANOMALY"]["motion_area_ratio"] == table["Abuse"]["motion_area_ratio"] == pytest.approx(3 / 20)
    assert choose_threshold(maps, labels) == (tau, "percentile 99 of the motion magnitudes of the 2 normal videos")
    assert choose_threshold(maps, labels, percentile=99.5, source="train.txt")[1] == \
        "percentile 99.5 of the motion magnitudes of the 2 normal videos of train.txt"
    assert choose_threshold(maps, labels, tau=0.3, percentile=50) == (0.3, "given by --tau")
    with pytest.raises(ValueError, match="at least one normal video"):
        normal_threshold([anomalous], [1])


def test_area_ratio_counts_the_amount_of_motion_not_the_maps_shape():
    """The same video with twice the motion: on the per-video-normalised MotionMap nothing changes (each
    map is divided by its own maximum), on the magnitudes the area above tau grows, which is what the
    ratio is for (docs/design.md §8)."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(8, 12, 3, 3)).astype(np.float32))
    (m1, m2), (n1, n2) = maps_of(iter([x, 2 * x]), window=2, device=torch.device("cpu"), total=2, progress=False)
    np.testing.assert_allclose(m1, m2, rtol=1e-5, atol=1e-6)
    tau = normal_threshold([n1], [0], percentile=90)
    assert motion_area_ratio(n1, tau) == pytest.approx(0.1, abs=0.02) and motion_area_ratio(n2, tau) > 0.8


@pytest.mark.slow  # make test-slow (make test stays under 90 s on 2 cores)
def test_area_ratio_on_the_synthetic_set(tmp_path):
    """Features only, no model, make demo's synthetic set (200 / 60 videos): tau from the training
    manifest's normal videos, on the motion magnitudes, written with the output. Measured: tau 9.85, normal
    0.0063, anomalous 0.0004: this generator gives anomalous videos less background motion than normal ones
    (mean magnitude 4.49 against 4.82 on a 160 / 80 set) and its events fill few cells, so on this set the
    anomalous ratio stays the lower one (on the normalised maps it was 0.0041 against 0.0100)."""
    proc = run_script("makelist.py", "--synthetic", tmp_path / "syn", "--n_train", "200", "--n_test", "60")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "mma"
    argv = ["--test_list", tmp_path / "syn/test.txt", "--out_dir", out, "--runs_dir", tmp_path / "runs", "--no_progress"]
    proc = run_script("motion_map_analyze.py", *argv, "--train_list", tmp_path / "syn/train.txt")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((out / "motion_stats.json").read_text())
    assert stats["tau_rule"].startswith("percentile 99 of the motion magnitudes of the") and "train.txt" in stats["tau_rule"]
    assert stats["tau"] > 2.0  # a magnitude, not a value of the normalised map in [0, 1]
    normal = stats["groups"]["NORMAL"]["motion_area_ratio"]
    assert 0.002 < normal < 0.03  # about 0.01: tau is the normal training videos' 99th percentile
    # without --train_list the analysed manifest's normal videos set tau: their ratio is 0.01 by construction
    proc = run_script("motion_map_analyze.py", *argv)
    assert proc.returncode == 0, proc.stderr
    groups = json.loads((out / "motion_stats.json").read_text())["groups"]
    assert groups["NORMAL"]["motion_area_ratio"] == pytest.approx(0.01, abs=1e-3)
    proc = run_script("motion_map_analyze.py", *argv, "--tau_percentile", "90")
    groups = json.loads((out / "motion_stats.json").read_text())["groups"]
    assert groups["NORMAL"]["motion_area_ratio"] == pytest.approx(0.10, abs=1e-2)


@pytest.mark.parametrize("argv, message", [
    (["--tau", "-0.5"], "error: --tau -0.5: a motion magnitude is a norm, so tau must be >= 0\n"),
    (["--tau_percentile", "101"], "error: --tau_percentile 101: must lie in [0, 100]\n"),
    (["--tau", "0.5", "--tau_percentile", "90"], "not allowed with argument")])
def test_motion_map_analyze_refuses_a_bad_tau(tmp_path, argv, message):
    proc = run_script("motion_map_analyze.py", "--test_list", tmp_path / "none.txt", *argv)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_class_table_and_line_format():
    maps = [np.full(10, 0.2), np.linspace(0, 1, 10), np.linspace(0, 1, 10)]
    table = class_table(maps, maps, [0, 1, 1], ["Normal", "Abuse", "Arson"], tau=0.5)
    assert list(table) == ["NORMAL", "ANOMALY", "Abuse", "Arson"]
    assert table["NORMAL"]["motion_area_ratio"] == 0.0 and table["ANOMALY"]["motion_area_ratio"] == 0.5
    assert format_line("NORMAL", {"motion_entropy": 7.28061, "motion_area_ratio": 0.01}) == \
        "[NORMAL] Motion Entropy : 7.2806 Motion Area Ratio : 0.0100"
    assert stats_csv(table).splitlines()[:3] == ["group,videos,motion_entropy,motion_area_ratio",
                                                 "NORMAL,1,0.000000,0.000000", "ANOMALY,2,3.321928,0.500000"]


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


def test_snr_csv_and_table():
    row = {"amplitude": 1.0, "rho": 0.5, "snr": 1.23456789, "snr_closed_form": 1.2, "roc_auc": 0.875}
    rows = [dict(row, pooling=p, snr=row["snr"] * (i + 1)) for i, p in enumerate(("mean", "max", "topk", "motion"))]
    assert results_csv(rows[:1]).splitlines() == ["amplitude,rho,snr,snr_closed_form,roc_auc,pooling",
                                                  "1,0.5,1.23457,1.2,0.875,mean"]
    header, line = table_lines(rows, 1.0, [0.5])
    assert header.split() == ["rho", "mean", "max", "topk", "motion", "AUC", "mean", "AUC", "motion"]
    assert line == "  0.50   1.235 [1.200]    2.469    3.704   4.938 [1.200]     0.875       0.875"


def test_compare_on_off_hand_worked():
    """ON: negatives 0.1, 0.4, positives 0.35, 0.8: AUC 3/4, DeLong variance 1/8 (components
    V10 = (1/2, 1), V01 = (1, 1/2)); OFF: all scores tied, AUC 1/2 with zero variance. So
    se(ΔAUC) = sqrt(1/8) and z = (1/4) / sqrt(1/8) = 1/sqrt(2)."""
    labels = np.array([0, 0, 1, 1])
    result = compare_on_off(labels, np.array([0.1, 0.4, 0.35, 0.8]), np.full(4, 0.5), n_boot=200, seed=0)
    assert (result["auc_on"], result["auc_off"]) == (0.75, 0.5)
    assert result["ci_on"] == [pytest.approx(0.75 - 1.959964 * math.sqrt(0.125), abs=1e-6), 1.0]
    assert result["ci_off"] == [0.5, 0.5]
    d = result["delong"]
    assert d["se"] == pytest.approx(math.sqrt(0.125)) and d["z"] == pytest.approx(1 / math.sqrt(2))
    assert d["p_value"] == pytest.approx(0.479500, abs=1e-6)
    assert result["paired_bootstrap"]["delta"] == 0.25
    said = describe_off(asdict(config_for_variant("fast")), None)
    on, off, what, delta = summary_lines(result, Path("run/ck.pth"), SAME_MODEL, said)
    assert on == "motion ON : ROC-AUC 0.7500 [0.0570, 1.0000] (95% CI, DeLong)  (run/ck.pth)"
    assert off == "motion OFF: ROC-AUC 0.5000 [0.5000, 0.5000] (95% CI, DeLong)  (the same model, MotionMap set to 0)"
    assert what == said
    assert delta.startswith("ΔAUC +0.2500: DeLong z 0.707, p 0.4795; paired bootstrap 95% CI [")


def test_describe_off_names_the_motion_left():
    def config(variant="fast", **overrides):
        return asdict(config_for_variant(variant, **overrides))

    full = config()
    assert describe_off(full, None) == ("OFF = the same model with its MotionMap set to 0; its difference features "
                                        "|x_t − x_{t−1}| still carry motion (for a motion-free OFF, pass "
                                        "--checkpoint_off of the no_motion ablation)")
    assert describe_off(config(use_difference_features=False), None) == (
        "OFF = the same model with its MotionMap set to 0; it has no difference features: no motion input is left")
    no_motion = config(use_motion_map=False, use_difference_features=False)  # configs/ablations/no_motion.json
    assert describe_off(full, no_motion) == NO_MOTION == \
        "OFF = the no_motion model (no MotionMap, no difference features)"
    assert describe_off(full, config(use_motion_map=False)) == (
        "OFF = a model without MotionMap (the no_motion_map ablation); its difference features "
        "|x_t − x_{t−1}| still carry motion")
    assert describe_off(full, config("mil")) == "OFF = the MIL baseline (no MotionMap, no difference features)"
    assert describe_off(no_motion, full) == \
        "OFF = a model with a MotionMap and difference features: it sees motion too, not a motion OFF"
    assert describe_off(full, config("paper_base")).startswith("OFF = a model with a MotionMap and difference")


def test_compare_on_off_identical_and_different():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 60)
    scores = rng.random(120) + 0.3 * labels
    same = compare_on_off(labels, scores, scores.copy(), n_boot=200, seed=0)
    assert same["delong"]["p_value"] == 1.0 and same["paired_bootstrap"]["p_value"] == 1.0
    better = labels + 0.3 * rng.standard_normal(120)
    diff = compare_on_off(labels, better, rng.random(120), n_boot=200, seed=0)
    assert diff["delong"]["p_value"] < 1e-4 and diff["auc_on"] > diff["auc_off"]


def test_project_pca_keeps_distances_of_rank_two_data():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 6))
    z = rng.normal(size=(30, 2)) @ basis + 5.0  # rank 2 after centring: PCA to 2-D loses nothing
    xy = project(z, "pca", n_neighbors=15, seed=0)
    standardised = (z - z.mean(axis=0)) / (z.std(axis=0) + 1e-8)
    assert xy.shape == (30, 2)
    np.testing.assert_allclose(pdist(xy), pdist(standardised), rtol=1e-6, atol=1e-9)


def test_motion_curves_common_axis():
    same, t0 = motion_curves([np.array([0.0, 1.0]), np.array([2.0, 3.0])], bins=5)
    np.testing.assert_array_equal(same, [[0, 1], [2, 3]])  # one length: kept as is
    assert t0 == 0
    mixed, t0 = motion_curves([np.array([0.0, 1.0]), np.array([0.0, 1.0, 4.0])], bins=3)
    np.testing.assert_allclose(mixed, [[0, 0.5, 1], [0, 1, 4]])
    assert t0 == 0


def test_motion_curves_leave_out_the_steps_without_a_full_window():
    """t = 0 (M = 0) and t < window (a shorter reference, larger residuals) were a dip and a spike at the
    start of every curve: the curves start at t = window, and the CSV's t says so."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(64, 8, 16, 1, 1)).astype(np.float32))  # pure noise: no motion event
    motion = [m.numpy() for m in motion_map(x, window=2).mean(dim=(2, 3))]
    assert np.mean([m[0] for m in motion]) == 0.0
    assert np.mean([m[1] for m in motion]) > 1.1 * np.mean([m[2:].mean() for m in motion])  # the old spike
    curves, t0 = motion_curves(motion, bins=8, first=2)
    assert t0 == 2 and curves.shape == (64, 14)
    mean = curves.mean(axis=0)
    assert mean.max() < 1.1 * mean.min()  # flat: noise looks the same at every step now
    rows = motion_per_time_csv(curves, np.array([0] * 32 + [1] * 32), np.array(["Normal"] * 32 + ["Abuse"] * 32), t0)
    assert rows.splitlines()[1].startswith("NORMAL,2,")


def test_video_motion_uses_the_features_when_the_model_has_no_motion_map():
    ds = [(STEP, 0)]
    model_motion = [np.array([9.0, 9.0, 9.0, 9.0])]
    mate = {"variant": "fast", "use_motion_map": True, "motion_window": 2}
    assert video_motion(model_motion, {"model_config": mate}, ds) is model_motion
    # window 1: residuals 0, 1, 0 after t = 0; the MIL baseline has no window: MateConfig's 2 gives 0, 1, 1/2
    no_map = dict(mate, use_motion_map=False, motion_window=1)
    np.testing.assert_allclose(video_motion(model_motion, {"model_config": no_map}, ds)[0],
                               np.array([0, 0, 1, 0]) / (1 + EPS), rtol=1e-6)
    mil = {"variant": "mil", "in_channels": 1, "hidden": 4, "embed": 2, "dropout": 0.0}
    np.testing.assert_allclose(video_motion(model_motion, {"model_config": mil}, ds)[0],
                               np.array([0, 0, 1, 0.5]) / (1 + EPS), rtol=1e-6)


def test_group_separation_and_csvs():
    embeddings = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    curves = np.array([[0.0, 1.0], [0.0, 3.0], [1.0, 2.0], [0.0, 6.0]])
    s = group_separation(embeddings, embeddings[:, :1], curves, labels)
    # per point a = 1 (its neighbour), b = 10.5 or 9.5 (mean distance to the other pair)
    expected = (2 * (1 - 1 / 10.5) + 2 * (1 - 1 / 9.5)) / 4
    assert s["silhouette_embedding"] == pytest.approx(expected) and s["silhouette_2d"] == pytest.approx(expected)
    assert (s["motion_normal"], s["motion_anomalous"], s["peak_normal"], s["peak_anomalous"]) == (1.0, 2.25, 2.0, 4.0)
    entries = [VideoEntry(Path(f"f/{n}.npy"), y, c) for n, y, c in (("N1", 0, "Normal"), ("N2", 0, "Normal"),
                                                                     ("B1", 1, "Burglary"), ("A1", 1, "Arson"))]
    assert embedding_csv(entries[:1], np.array([[0.123456, -2.0]])) == \
        "video,label,class,x,y\nN1,0,Normal,0.12346,-2.00000\n"
    rows = motion_per_time_csv(curves, labels, np.array([e.cls for e in entries])).splitlines()
    assert rows == ["class,t,mean,std,videos", "NORMAL,0,0.000000,0.000000,2", "NORMAL,1,2.000000,1.000000,2",
                    "ANOMALY,0,0.500000,0.500000,2", "ANOMALY,1,4.000000,2.000000,2",
                    "Arson,0,0.000000,0.000000,1", "Arson,1,6.000000,0.000000,1",
                    "Burglary,0,1.000000,0.000000,1", "Burglary,1,2.000000,0.000000,1"]


def test_maps_of_known_values_and_models_without_motion_map(tmp_path):
    maps, magnitudes = maps_of(iter([STEP, 2 * STEP]), window=2, device=torch.device("cpu"), total=2, progress=False)
    for m in maps:  # residuals 0, 1, 1/2 after t = 0, over the maximum: the scale drops out
        assert m.shape == (4, 1, 1) and m.dtype == np.float32
        np.testing.assert_allclose(m.ravel(), np.array([0, 0, 1, 0.5]) / (1 + EPS), rtol=1e-6)
    for scale, n in zip((1, 2), magnitudes):  # the magnitudes keep it (the area ratio's input)
        np.testing.assert_allclose(n.ravel(), scale * np.array([0, 0, 1, 0.5]), rtol=1e-6)
    for config, why in (({"variant": "mil"}, "is the MIL baseline"),
                        ({"variant": "fast", "use_motion_map": False}, "was trained with --no_motion_map")):
        loaded = AnalysisRun(Path("m.pth"), tmp_path, torch.device("cpu"), ckpt={"model_config": config})
        with pytest.raises(MateError, match=f"^m.pth: this model {why}; it has no MotionMap$"):
            motion_maps(loaded, tmp_path / "test.txt", motion_window=2, crop_mode="mean", progress=False)


# ------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A synthetic data set, a model trained on it for 2 epochs (and its --no_motion_map and no_motion
    ablations), and test.py's evaluation of the model (what the diagnostics pick up when not told)."""
    root = tmp_path_factory.mktemp("diag")
    make_synthetic(root / "data", n_train=40, n_test=24, seed=1, progress=False)
    for name, extra in (("tiny", []), ("nomm", ["--no_motion_map"]),
                        ("nomo", ["--config", CONFIGS / "ablations/no_motion.json"])):
        proc = run_script("main.py", "--train_list", root / "data/train.txt", "--val_list", root / "data/test.txt",
                          "--runs_dir", root / "runs", "--exp_name", name, "--max_epoch", "2", "--no_progress", *extra)
        assert proc.returncode == 0, proc.stderr
    proc = run_script("test.py", "--test_list", root / "data/test.txt", "--checkpoint",
                      root / "runs/tiny/checkpoint_best.pth", "--n_boot", "20", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    return root


def analysis_args(*argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(parents=[get_analysis_parser(), get_runtime_parser()])
    return parser.parse_args(["--device", "cpu", "--no_progress", *map(str, argv)])


def test_load_analysis_run(tiny_run, capsys):
    runs = tiny_run / "runs"
    loaded = load_analysis_run(analysis_args("--exp_name", "tiny", "--runs_dir", runs), "x.py", need_checkpoint=True)
    assert "x.py: no --test_list given; using " in capsys.readouterr().out  # from test.py's evaluation
    assert (loaded.checkpoint, loaded.out_dir, loaded.device) == (runs / "tiny/checkpoint_best.pth",
                                                                  runs / "tiny/plots", torch.device("cpu"))
    assert len(loaded.ds) == 24 and loaded.ckpt["model_config"]["variant"] == "fast"
    assert isinstance(loaded.model, torch.nn.Module)
    args = analysis_args("--test_list", tiny_run / "data/test.txt", "--runs_dir", runs)
    features_only = load_analysis_run(args, "x.py", default_exp="motion_analysis")
    assert (features_only.checkpoint, features_only.model, features_only.ds) == (None, None, None)
    assert features_only.out_dir == runs / "motion_analysis/plots"
    with pytest.raises(MateError, match="--checkpoint or --exp_name is required"):
        load_analysis_run(args, "x.py", need_checkpoint=True)


def features_motion(test_list: Path, window: int = 2) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels and per-time motion of the features' own MotionMap, computed here from the files."""
    entries = read_manifest(test_list)
    maps = [motion_map(torch.from_numpy(load_features(e.path))[None], window=window)[0] for e in entries]
    return np.array([e.label for e in entries]), [m.mean(dim=(1, 2)).numpy() for m in maps]


def test_test1_outputs_match_the_embedding_and_the_features(tiny_run):
    proc = run_script("test1.py", "--test_list", tiny_run / "data/test.txt", "--exp_name", "tiny", "--runs_dir",
                      tiny_run / "runs", "--method", "pca", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    plots = tiny_run / "runs/tiny/plots"
    for name in ("embedding_pca.png", "embedding_pca.csv", "motion_trajectories.png", "motion_per_time.csv"):
        assert (plots / name).is_file(), name
    rows = (plots / "motion_per_time.csv").read_text().splitlines()
    assert rows[0] == "class,t,mean,std,videos" and rows[1].startswith("NORMAL,2,")  # from t = window = 2 on
    table = np.genfromtxt(plots / "embedding_pca.csv", delimiter=",", names=True, dtype=None, encoding=None)
    assert len(table) == 24
    printed = float(proc.stdout.split("pca 2-D ")[1].split()[0])
    xy = np.stack([table["x"], table["y"]], axis=1)
    assert printed == pytest.approx(silhouette_score(xy, table["label"]), abs=2e-4)
    # the ablation has no MotionMap: its trajectories are the features' own (window 2)
    out = tiny_run / "t1_nomm"
    proc = run_script("test1.py", "--test_list", tiny_run / "data/test.txt", "--exp_name", "nomm", "--runs_dir",
                      tiny_run / "runs", "--method", "pca", "--out_dir", out, "--no_progress")
    assert proc.returncode == 0, proc.stderr
    labels, motion = features_motion(tiny_run / "data/test.txt")
    normal_t5 = np.stack(motion)[labels == 0, 5].mean()
    row = next(r for r in (out / "motion_per_time.csv").read_text().splitlines() if r.startswith("NORMAL,5,"))
    assert float(row.split(",")[2]) == pytest.approx(normal_t5, abs=1e-6) and normal_t5 > 0


def test_test2_scores_on_and_off(tiny_run):
    test_list, runs = tiny_run / "data/test.txt", tiny_run / "runs"
    cpu = torch.device("cpu")
    model, _, ds, _ = load_for_scoring(runs / "tiny/checkpoint_best.pth", test_list, device=cpu, progress=False)
    labels = ds.labels.numpy().astype(int)
    on = score_dataset(model, ds).video
    zero = score_dataset(model, ds, motion_off=True).video
    ablations = {}
    for name in ("nomm", "nomo"):
        model_off, ckpt_off, ds_off, _ = load_for_scoring(runs / name / "checkpoint_best.pth", test_list, device=cpu,
                                                       progress=False)
        ablations[name] = score_dataset(model_off, ds_off).video
    nomo = ckpt_off["model_config"]
    assert not nomo["use_motion_map"] and not nomo["use_difference_features"]
    still = "its difference features |x_t − x_{t−1}| still carry motion"
    on_off = ["--checkpoint_on", runs / "tiny/checkpoint_best.pth", "--checkpoint_off"]
    for name, extra, off, how, said in (
            ("zero", ["--checkpoint", runs / "tiny/checkpoint_best.pth"], zero, SAME_MODEL,
             f"OFF = the same model with its MotionMap set to 0; {still} (for a motion-free OFF, pass "
             "--checkpoint_off of the no_motion ablation)"),
            ("nomm", on_off + [runs / "nomm/checkpoint_best.pth"], ablations["nomm"],
             str(runs / "nomm/checkpoint_best.pth"),
             f"OFF = a model without MotionMap (the no_motion_map ablation); {still}"),
            ("nomo", on_off + [runs / "nomo/checkpoint_best.pth"], ablations["nomo"],
             str(runs / "nomo/checkpoint_best.pth"), "OFF = the no_motion model (no MotionMap, no difference features)")):
        out = tiny_run / f"t2_{name}"
        proc = run_script("test2.py", "--test_list", test_list, *extra, "--out_dir", out, "--n_boot", "100",
                          "--device", "cpu", "--no_progress")
        assert proc.returncode == 0, proc.stderr
        result = json.loads((out / "motion_on_off.json").read_text())
        assert (result["off"], result["off_model"], result["n_videos"]) == (how, said, 24)
        assert proc.stdout.splitlines()[2] == said and (out / "motion_on_off_roc.png").is_file()
        assert result["auc_on"] == pytest.approx(roc_auc_score(labels, on), abs=1e-12)
        assert result["auc_off"] == pytest.approx(roc_auc_score(labels, off), abs=1e-12)
        assert result["delong"]["delta"] == pytest.approx(result["auc_on"] - result["auc_off"], abs=1e-12)
        assert f"motion ON : ROC-AUC {result['auc_on']:.4f}" in proc.stdout
    # a model without MotionMap has none to set to 0: OFF would be ON
    refused = run_script("test2.py", "--test_list", test_list, "--checkpoint", runs / "nomo/checkpoint_best.pth",
                         "--out_dir", tiny_run / "t2_refused", "--device", "cpu", "--no_progress")
    assert refused.returncode == 2
    assert refused.stderr == (f"error: {runs / 'nomo/checkpoint_best.pth'}: this model was trained with "
                              "--no_motion_map; it has no MotionMap to set to 0 (OFF would be ON); compare it with "
                              "another model through --checkpoint_off\n")


def test_motion_map_analyze_features_and_checkpoint(tiny_run):
    for extra in ([], ["--exp_name", "tiny", "--runs_dir", str(tiny_run / "runs"), "--tau", "0.25"]):
        out = tiny_run / f"mma{len(extra)}"
        proc = run_script("motion_map_analyze.py", "--test_list", tiny_run / "data/test.txt", "--out_dir", out,
                          "--no_progress", *extra)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        stats = json.loads((out / "motion_stats.json").read_text())
        rule = "given by --tau" if extra else \
            f"percentile 99 of the motion magnitudes of the 12 normal videos of {tiny_run / 'data/test.txt'}"
        assert lines[0].endswith(f"; tau = {stats['tau']:.4f} ({rule})") and stats["tau_rule"] == rule
        assert [stats["groups"][g]["videos"] for g in ("NORMAL", "ANOMALY")] == [12, 12]
        assert lines[1] == format_line("NORMAL", stats["groups"]["NORMAL"])
        assert lines[2].startswith("[ANOMALY] Motion Entropy : ")
        for name in ("motion_stats.csv", "motion_stats.json", "motion_histogram.png", "motion_over_time.png"):
            assert (out / name).is_file(), name
    assert stats["tau"] == 0.25
    refused = run_script("motion_map_analyze.py", "--test_list", tiny_run / "data/test.txt", "--exp_name", "nomm",
                         "--runs_dir", tiny_run / "runs", "--out_dir", tiny_run / "mma_nomm", "--no_progress")
    assert refused.returncode == 2
    assert refused.stderr == (f"error: {tiny_run / 'runs/nomm/checkpoint_best.pth'}: this model was trained with "
                              f"--no_motion_map; it has no MotionMap\n")


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


def test_thirteen_classes_get_thirteen_colours():
    from scripts.diagnostics.embedding_view import class_colours
    from scripts.data.manifest import UCF_CLASSES

    colours = class_colours(sorted(UCF_CLASSES + ("Normal",)))
    anomalous = [colours[c] for c in UCF_CLASSES]
    assert len(UCF_CLASSES) == 13 and len(set(anomalous)) == 13 and colours["Normal"] == "lightgrey"
