"""The synthetic signal-to-noise experiment for motion-weighted pooling (docs/design.md §8, snr_experiment.py).

A bag is T snippet scores `s_t = a·[t in A] + σ·ε_t`, ε ~ N(0, 1); an anomalous bag has one anomaly
A of L consecutive snippets, a normal bag none. Motion is a binary cue per snippet: it fires on an
anomalous snippet with probability ρ and on any other snippet with probability ρ·f (false alarms:
camera shake, crowds), so ρ = 0 means no motion cue at all and ρ = 1 a perfect one (up to f).
Pooling turns a bag into one video statistic:
    mean:   (1/T) Σ s_t            max:    max_t s_t            top-k:  mean of the k largest s_t
    motion: Σ w_t s_t, w = softmax(β·m)  (motion-weighted; uniform weights, i.e. mean, when m = 0)
SNR of a statistic = (mean over anomalous bags − mean over normal bags) / pooled std.

Closed forms (σ known, large T so that sums of weights follow their expectations; g = e^β):
    SNR_mean   = a·L / (σ·√T)                                                      (exact)
    SNR_motion = a·E[Σ_A w] / √((σ²·E[Σ w²]_normal + σ²·E[Σ w²]_anomalous + a²·Var[Σ_A w]) / 2)
    with E[Σ_A w] = L·u_A / (L·u_A + (T − L)·u_0), u_A = 1 + ρ(g − 1), u_0 = 1 + ρf(g − 1),
    E[Σ w²]_anom = (L·v_A + (T − L)·v_0) / (L·u_A + (T − L)·u_0)², v_A = 1 + ρ(g² − 1), v_0 = 1 + ρf(g² − 1),
    E[Σ w²]_normal = v_0 / (T·u_0²),  Var[Σ_A w] by the delta method on X / (X + Y), X = Σ_A e^{βm},
    Y = Σ_rest e^{βm}: (E[Y]²·Var[X] + E[X]²·Var[Y]) / (E[X] + E[Y])⁴.
At ρ = 0 both are the same statistic; for ρ > 0 motion weighting concentrates the pooling on A.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

POOLINGS = ("mean", "max", "topk", "motion")


@dataclass(frozen=True)
class BagModel:
    """Parameters of the bag model (see the module docstring)."""

    T: int = 64
    L: int = 8
    sigma: float = 1.0
    beta: float = 2.0
    false_rate: float = 0.05
    topk: int = 8


def simulate(model: BagModel, amplitude: float, rho: float, n_bags: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n_bags` normal then `n_bags` anomalous bags: scores [2n, T], motion [2n, T], labels [2n]."""
    T, L = model.T, model.L
    labels = np.repeat([0, 1], n_bags)
    inside = np.zeros((2 * n_bags, T), dtype=bool)
    starts = rng.integers(0, T - L + 1, size=n_bags)
    rows = np.arange(n_bags, 2 * n_bags)[:, None]
    inside[rows, starts[:, None] + np.arange(L)] = True
    scores = amplitude * inside + model.sigma * rng.standard_normal((2 * n_bags, T))
    fire = np.where(inside, rho, rho * model.false_rate)
    motion = (rng.random((2 * n_bags, T)) < fire).astype(float)
    return scores, motion, labels


def pool(scores: np.ndarray, motion: np.ndarray, how: str, model: BagModel) -> np.ndarray:
    """One statistic per bag."""
    if how == "mean":
        return scores.mean(axis=1)
    if how == "max":
        return scores.max(axis=1)
    if how == "topk":
        return np.sort(scores, axis=1)[:, -model.topk:].mean(axis=1)
    if how == "motion":
        logits = model.beta * motion
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (w / w.sum(axis=1, keepdims=True) * scores).sum(axis=1)
    raise ValueError(f"unknown pooling {how!r}; one of {POOLINGS}")


def empirical_snr(stat: np.ndarray, labels: np.ndarray) -> float:
    a, n = stat[labels == 1], stat[labels == 0]
    return float((a.mean() - n.mean()) / math.sqrt((a.var(ddof=1) + n.var(ddof=1)) / 2))


def snr_mean_closed(model: BagModel, amplitude: float) -> float:
    return amplitude * model.L / (model.sigma * math.sqrt(model.T))


def snr_motion_closed(model: BagModel, amplitude: float, rho: float) -> float:
    T, L, g = model.T, model.L, math.exp(model.beta)
    u_a, u_0 = 1 + rho * (g - 1), 1 + rho * model.false_rate * (g - 1)
    v_a, v_0 = 1 + rho * (g * g - 1), 1 + rho * model.false_rate * (g * g - 1)
    denom = L * u_a + (T - L) * u_0
    signal = amplitude * L * u_a / denom
    # noise through the weights, plus the spread of the anomaly's share of the weight from bag to bag
    # (delta method on X / (X + Y), X = Σ_A e^{βm}, Y = the rest)
    x, y = L * u_a, (T - L) * u_0
    var_share = (y * y * L * (v_a - u_a ** 2) + x * x * (T - L) * (v_0 - u_0 ** 2)) / denom ** 4
    var_anom = (L * v_a + (T - L) * v_0) / denom ** 2 + (amplitude / model.sigma) ** 2 * var_share
    var_norm = v_0 / (T * u_0 ** 2)
    return signal / (model.sigma * math.sqrt((var_anom + var_norm) / 2))


def sweep(model: BagModel, amplitudes, rhos, *, n_bags: int = 2000, seed: int = 0) -> list[dict]:
    """One row per (amplitude, ρ, pooling): empirical SNR and ROC-AUC, and the closed-form SNR."""
    rows = []
    for i, a in enumerate(amplitudes):
        for j, rho in enumerate(rhos):
            rng = np.random.default_rng([seed, i, j])
            scores, motion, labels = simulate(model, a, rho, n_bags, rng)
            for how in POOLINGS:
                stat = pool(scores, motion, how, model)
                closed = {"mean": snr_mean_closed(model, a), "motion": snr_motion_closed(model, a, rho)}.get(how)
                rows.append({"amplitude": a, "rho": rho, "pooling": how, "snr": empirical_snr(stat, labels),
                             "snr_closed_form": closed if closed is not None else float("nan"),
                             "roc_auc": float(roc_auc_score(labels, stat))})
    return rows
