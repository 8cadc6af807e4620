"""What snr_experiment.py writes and prints about a sweep of scripts.diagnostics.snr: the results CSV, three
figures (SNR against ρ, empirical against closed-form SNR, ROC-AUC against amplitude) and the table.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from scripts.core.plots import new_figure, save_figure
from scripts.diagnostics.snr import POOLINGS, BagModel, snr_mean_closed, snr_motion_closed


def results_csv(rows: list[dict]) -> str:
    """The sweep's rows as CSV (columns in the rows' key order), floats to 6 significant digits."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    return buf.getvalue()


def plot_snr_vs_rho(rows: list[dict], model: BagModel, path: Path) -> Path:
    """Empirical SNR of every pooling against ρ at the middle amplitude, with the closed forms."""
    amps = sorted({r["amplitude"] for r in rows})
    mid = amps[len(amps) // 2]
    fig = new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    for how in POOLINGS:
        pts = [r for r in rows if r["amplitude"] == mid and r["pooling"] == how]
        ax.plot([r["rho"] for r in pts], [r["snr"] for r in pts], "o-", label=f"{how} (empirical)")
    fine = np.linspace(0, 1, 101)
    ax.plot(fine, [snr_motion_closed(model, mid, r) for r in fine], "k--", label="motion (closed form)")
    ax.axhline(snr_mean_closed(model, mid), color="grey", linestyle=":", label="mean (closed form)")
    ax.set(xlabel="motion strength ρ", ylabel="SNR of the video statistic", title=f"amplitude a = {mid:g}")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_closed_form(rows: list[dict], model: BagModel, path: Path) -> Path:
    """Motion-weighted pooling's SNR against amplitude per ρ: empirical dots, closed-form lines."""
    amps = sorted({r["amplitude"] for r in rows})
    rhos = sorted({r["rho"] for r in rows})
    fig = new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    fine_a = np.linspace(0, max(amps), 50)
    for rho, color in zip(rhos, ["C0", "C1", "C2", "C3", "C4", "C5", "C6"] * 3):
        pts = [r for r in rows if r["rho"] == rho and r["pooling"] == "motion"]
        ax.plot([r["amplitude"] for r in pts], [r["snr"] for r in pts], "o", color=color, label=f"ρ = {rho:g}")
        ax.plot(fine_a, [snr_motion_closed(model, a, rho) for a in fine_a], "-", color=color, linewidth=0.8)
    ax.plot(fine_a, [snr_mean_closed(model, a) for a in fine_a], "k--", label="mean pooling")
    ax.set(xlabel="amplitude a", ylabel="SNR", title="motion-weighted pooling: empirical (dots), closed form (lines)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_auc_vs_amplitude(rows: list[dict], path: Path) -> Path:
    """Detection ROC-AUC of every pooling against amplitude at the largest ρ."""
    top = max(r["rho"] for r in rows)
    fig = new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    for how in POOLINGS:
        pts = [r for r in rows if r["rho"] == top and r["pooling"] == how]
        ax.plot([r["amplitude"] for r in pts], [r["roc_auc"] for r in pts], "o-", label=how)
    ax.set(xlabel="amplitude a", ylabel="detection ROC-AUC", title=f"ρ = {top:g}")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def table_lines(rows: list[dict], amplitude: float, rhos: list[float]) -> list[str]:
    """Header and one line per ρ at `amplitude`: SNR of each pooling (closed forms in brackets) and the
    ROC-AUC of mean and motion-weighted pooling."""
    lines = [f"{'rho':>6} {'mean':>16} {'max':>8} {'topk':>8} {'motion':>16} {'AUC mean':>9} {'AUC motion':>11}"]
    for rho in rhos:
        r = {row["pooling"]: row for row in rows if row["amplitude"] == amplitude and row["rho"] == rho}
        lines.append(f"{rho:>6.2f} {r['mean']['snr']:>7.3f} [{r['mean']['snr_closed_form']:.3f}] "
                     f"{r['max']['snr']:>8.3f} {r['topk']['snr']:>8.3f} {r['motion']['snr']:>7.3f} "
                     f"[{r['motion']['snr_closed_form']:.3f}] {r['mean']['roc_auc']:>9.3f} "
                     f"{r['motion']['roc_auc']:>11.3f}")
    return lines
