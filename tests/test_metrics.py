"""scripts/evaluation/metrics.py: AUCs against scikit-learn and hand-worked values, bootstrap CIs, DeLong."""
import json
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from scripts.evaluation import metrics
from scripts.evaluation.metrics import (bootstrap_ci, delong_ci, delong_test, delong_variance, frame_ap, frame_ap_trapezoid,
                             frame_auc, paired_bootstrap, per_class_auc, plot_roc_pr, pr_auc, roc_auc, summarize,
                             trapezoid_ap, wilcoxon_signed_rank)


def synthetic_scores(n: int, separation: float = 1.0, seed: int = 0, decimals: int | None = 2):
    """Labels (about 40% anomalous) and scores shifted by `separation` for anomalies; rounding
    to `decimals` makes ties, which every AUC here must treat as scikit-learn does."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    y[:2], y[2:4] = 1, 0  # both classes, at least two of each
    s = rng.normal(size=n) + separation * y
    return y, (np.round(s, decimals) if decimals is not None else s)


def delong_reference(y, scores_list):
    """DeLong (1988) straight from the definition, O(m n): ψ(x, y) = 1 if x > y, 1/2 if equal."""
    comps10, comps01 = [], []
    for s in scores_list:
        x, yy = s[y == 1], s[y == 0]
        psi = (x[:, None] > yy[None, :]) + 0.5 * (x[:, None] == yy[None, :])  # [m, n]
        comps10.append(psi.mean(axis=1))
        comps01.append(psi.mean(axis=0))
    m, n = len(comps10[0]), len(comps01[0])
    aucs = np.array([c.mean() for c in comps10])
    cov = np.atleast_2d(np.cov(np.array(comps10))) / m + np.atleast_2d(np.cov(np.array(comps01))) / n
    return aucs, cov


def test_hand_worked_example():
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    # 3 of the 4 (anomalous, normal) pairs are ordered correctly
    assert roc_auc(y, s) == pytest.approx(0.75)
    # ranked 0.8 (+), 0.4 (-), 0.35 (+), 0.1 (-): AP = (1/1 + 2/3) / 2
    assert pr_auc(y, s) == pytest.approx(5 / 6)


@pytest.mark.parametrize("decimals", [None, 1])
def test_matches_sklearn_on_random_data(decimals):
    y, s = synthetic_scores(300, separation=0.7, seed=1, decimals=decimals)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert pr_auc(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    # the vectorised versions used by the bootstrap: rows of shuffled scores against the same labels
    rng = np.random.default_rng(2)
    rows = np.stack([s] + [rng.permutation(s) for _ in range(20)])  # [21, N]
    assert np.allclose(metrics._roc_auc_rows(y, rows), [roc_auc_score(y, r) for r in rows], atol=1e-12)
    assert np.allclose(metrics._pr_auc_rows(y, rows), [average_precision_score(y, r) for r in rows], atol=1e-12)


def test_single_class_gives_nan():
    y, s = np.ones(5, int), np.linspace(0, 1, 5)
    assert math.isnan(roc_auc(y, s)) and math.isnan(pr_auc(y, s))
    assert all(math.isnan(v) for v in bootstrap_ci(y, s))
    assert all(math.isnan(v) for v in delong_test(y, s, s).values())
    assert all(math.isnan(v) for v in paired_bootstrap(y, s, s).values())
    with pytest.raises(ValueError, match="differ in length"):
        roc_auc([0, 1], [0.5])


def test_frame_level_wrappers_concatenate_videos():
    rng = np.random.default_rng(3)
    labels = [rng.integers(0, 2, n) for n in (40, 7, 100)]
    scores = [rng.random(n) for n in (40, 7, 100)]
    y, s = np.concatenate(labels), np.concatenate(scores)
    assert frame_auc(labels, scores) == pytest.approx(roc_auc_score(y, s))
    assert frame_ap(labels, scores) == pytest.approx(average_precision_score(y, s))
    assert frame_auc(y, s) == frame_auc(labels, scores)


def test_per_class_auc_each_class_against_all_normals():
    classes = ["Normal"] * 4 + ["Arson"] * 2 + ["Abuse"] * 2
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.15, 0.35]
    result = per_class_auc(y, s, classes)
    assert list(result) == ["Abuse", "Arson"]
    assert result["Arson"] == pytest.approx(1.0)
    # Abuse: 0.15 beats 1 of the 4 normals, 0.35 beats 3 -> 4 / 8
    assert result["Abuse"] == pytest.approx(0.5)


def test_bootstrap_ci_contains_estimate_narrows_and_is_seeded():
    y, s = synthetic_scores(60, seed=4)
    low, high = bootstrap_ci(y, s, n_boot=1000, seed=0)
    assert low < roc_auc(y, s) < high
    assert bootstrap_ci(y, s, n_boot=1000, seed=0) == (low, high)
    assert bootstrap_ci(y, s, n_boot=1000, seed=1) != (low, high)
    y_big, s_big = synthetic_scores(600, seed=4)
    low_big, high_big = bootstrap_ci(y_big, s_big, n_boot=1000, seed=0)
    assert high_big - low_big < 0.6 * (high - low)  # width shrinks about as 1/sqrt(n)
    ap_low, ap_high = bootstrap_ci(y, s, metric=pr_auc, n_boot=1000)
    assert ap_low < pr_auc(y, s) < ap_high


def test_bootstrap_ci_vectorised_equals_generic():
    """The vectorised resampling (its speed is a benchmark matter, not a timed test) gives the numbers of
    the generic loop over the same resamples."""
    y, s = synthetic_scores(290, seed=5)
    # a metric the vectoriser does not know runs the same resamples through a loop
    generic = bootstrap_ci(y, s, metric=lambda a, b: roc_auc_score(a, b), n_boot=50, seed=3)
    assert generic == pytest.approx(bootstrap_ci(y, s, metric=roc_auc, n_boot=50, seed=3), abs=1e-12)
    generic_ap = bootstrap_ci(y, s, metric=lambda a, b: average_precision_score(a, b), n_boot=50, seed=3)
    assert generic_ap == pytest.approx(bootstrap_ci(y, s, metric=pr_auc, n_boot=50, seed=3), abs=1e-12)


def test_delong_variance_hand_example():
    # positives 0.35, 0.8; negatives 0.1, 0.4. Components V10 = (1/2, 1), V01 = (1, 1/2);
    # var = S10 / m + S01 / n = 0.125 / 2 + 0.125 / 2
    auc, var = delong_variance([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert auc == pytest.approx(0.75) and var == pytest.approx(0.125)


def test_delong_matches_quadratic_reference():
    y, a = synthetic_scores(120, separation=1.0, seed=6, decimals=1)
    b = np.round(a + np.random.default_rng(7).normal(scale=1.0, size=a.size), 1)
    aucs, cov = delong_reference(y, [a, b])
    result = delong_test(y, a, b)
    se = math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert result["auc_a"] == pytest.approx(aucs[0]) and result["auc_b"] == pytest.approx(aucs[1])
    assert result["auc_a"] == pytest.approx(roc_auc_score(y, a))
    assert result["se"] == pytest.approx(se, rel=1e-10)
    assert result["z"] == pytest.approx((aucs[0] - aucs[1]) / se, rel=1e-10)
    from scipy.stats import norm
    assert result["p_value"] == pytest.approx(2 * norm.sf(abs(result["z"])), rel=1e-10)
    assert delong_variance(y, a)[1] == pytest.approx(cov[0, 0], rel=1e-10)


def test_delong_identical_and_clearly_different():
    y, good = synthetic_scores(200, separation=2.0, seed=8)
    same = delong_test(y, good, good)
    assert same["delta"] == 0.0 and same["p_value"] == 1.0 and same["se"] == 0.0
    monotone = delong_test(y, good, np.exp(good))  # same ranking, same AUC
    assert monotone["p_value"] == 1.0 and monotone["delta"] == pytest.approx(0.0)
    noise = np.random.default_rng(9).normal(size=y.size)
    different = delong_test(y, good, noise)
    assert different["delta"] > 0.3 and different["p_value"] < 0.01
    assert delong_test(y, noise, good)["z"] == pytest.approx(-different["z"])


def test_delong_ci_contains_auc_and_is_clipped():
    y, s = synthetic_scores(80, seed=10)
    low, high = delong_ci(y, s)
    assert low < roc_auc(y, s) < high
    perfect = delong_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert perfect == (1.0, 1.0)  # zero variance: no spread, and never above 1


def test_paired_bootstrap():
    y, good = synthetic_scores(150, separation=2.0, seed=11)
    noise = np.random.default_rng(12).normal(size=y.size)
    result = paired_bootstrap(y, good, noise, n_boot=500, seed=0)
    assert result == paired_bootstrap(y, good, noise, n_boot=500, seed=0)
    assert result["delta"] == pytest.approx(roc_auc(y, good) - roc_auc(y, noise))
    assert 0 < result["ci_low"] < result["delta"] < result["ci_high"]
    assert result["p_value"] < 0.01
    same = paired_bootstrap(y, good, good, n_boot=500)
    assert same == {"delta": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}
    # two noisy score sets of the same quality: no evidence, p far from 0
    close = paired_bootstrap(y, good + noise, good - noise, n_boot=500)
    assert close["ci_low"] < 0 < close["ci_high"] and close["p_value"] > 0.05


def test_summarize_is_json_ready():
    y, s = synthetic_scores(50, seed=13)
    classes = ["Normal" if label == 0 else ("Arson" if i % 2 else "Abuse") for i, label in enumerate(y)]
    result = summarize(y, s, classes, n_boot=200)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert result["pr_auc"] == pytest.approx(average_precision_score(y, s))
    assert result["roc_auc_ci"][0] < result["roc_auc"] < result["roc_auc_ci"][1]
    assert set(result["per_class_roc_auc"]) == {"Abuse", "Arson"}
    assert (result["n_videos"], result["n_normal"], result["n_anomalous"]) == (50, int((y == 0).sum()), int(y.sum()))
    assert json.loads(json.dumps(result)) == result
    assert "per_class_roc_auc" not in summarize(y, s, n_boot=10)


def test_plot_roc_pr_writes_two_pngs(tmp_path):
    y, s = synthetic_scores(40, seed=14)
    paths = plot_roc_pr(y, s, tmp_path / "plots", title="fold 0")
    assert [p.name for p in paths] == ["roc_curve.png", "pr_curve.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["pr_curve.png", "roc_curve.png"]


@pytest.mark.parametrize("n", [1, 4, 9, 15])
def test_wilcoxon_signed_rank_is_scipys_exact_test(n):
    """Without ties or zeros the enumeration is scipy's exact test."""
    from scipy.stats import wilcoxon

    d = np.random.default_rng(n).normal(0.2, 1.0, n)
    assert wilcoxon_signed_rank(d)["p_value"] == pytest.approx(wilcoxon(d, method="exact").pvalue, abs=1e-12)


def test_wilcoxon_signed_rank_with_zeros_and_ties():
    """Zeros are dropped; ties share their mean rank. +0.1, +0.1, -0.2 (ranks 1.5, 1.5, 3): W+ = 3 of the
    8 sign patterns' sums {0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6}; P(W+ <= 3) = 5/8, P(W+ >= 3) = 5/8, so p = 1."""
    r = wilcoxon_signed_rank([0.1, 0.0, 0.1, -0.2])
    assert (r["n"], r["n_zero"], r["w_plus"], r["p_value"]) == (3, 1, 3.0, 1.0)
    assert wilcoxon_signed_rank([0.05] * 15)["p_value"] == pytest.approx(2 / 2 ** 15)  # all 15 pairs agree
    assert math.isnan(wilcoxon_signed_rank([0.0, 0.0])["p_value"])


def test_the_two_ap_definitions_by_hand():
    """Scores .9 .8 .7 .1 of labels 1 0 1 0: the PR curve's points (recall, precision) are (0, 1), (.5, 1),
    (.5, .5), (1, 2/3), (1, .5). The peers' AP, trapezoidal: .5 x 1 + .5 x (1/2 + 2/3) / 2 = 19/24;
    average_precision_score, step-wise: .5 x 1 + .5 x 2/3 = 5/6."""
    y, s = np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])
    assert trapezoid_ap(y, s) == pytest.approx(19 / 24) and pr_auc(y, s) == pytest.approx(5 / 6)
    assert frame_ap_trapezoid([y[:2], y[2:]], [s[:2], s[2:]]) == pytest.approx(19 / 24)
    assert math.isnan(trapezoid_ap(np.zeros(3), np.arange(3.0)))


def test_summary_names_the_video_level_and_keeps_the_old_names():
    m = summarize(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.3]), n_boot=20)
    assert m["video_roc_auc"] == m["roc_auc"] == 0.75 and m["video_pr_auc"] == m["pr_auc"]
    assert m["video_roc_auc_ci"] == m["roc_auc_ci"]
