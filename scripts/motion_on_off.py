"""Motion ON vs OFF (test2.py): the same test videos scored with and without motion, their ROC-AUCs,
DeLong's paired test and a paired bootstrap of ΔAUC = ON − OFF, and both ROC curves in one plot.

OFF is either a second model (e.g. the --no_motion_map ablation on the same fold) or the ON model fed
an all-zero MotionMap.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from scripts.analysis_inputs import AnalysisRun
from scripts.metrics import delong_ci, delong_test, paired_bootstrap, roc_auc
from scripts.plots import new_figure, save_figure

SAME_MODEL = "the same model, MotionMap set to 0"  # how OFF was scored without --checkpoint_off


def score_on_off(loaded: AnalysisRun, checkpoint_off: Path | None, test_list: Path, *, batch_size: int,
                 progress: bool, force_settings: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """Video scores [N] of the loaded model (ON) and of OFF, and how OFF was scored: by the model in
    `checkpoint_off` on `test_list` (its features checked against that checkpoint), or, without one,
    by the ON model with an all-zero MotionMap."""
    from scripts.evaluation import load_for_scoring
    from scripts.scoring import score_dataset

    common = dict(device=loaded.device, batch_size=batch_size, progress=progress)
    on = score_dataset(loaded.model, loaded.ds, **common).video
    if checkpoint_off is None:
        return on, score_dataset(loaded.model, loaded.ds, motion_off=True, **common).video, SAME_MODEL
    model_off, _, ds_off = load_for_scoring(checkpoint_off, test_list, device=loaded.device, progress=False,
                                            force_settings=force_settings)
    return on, score_dataset(model_off, ds_off, **common).video, f"{checkpoint_off}"


def compare_on_off(labels, on, off, *, n_boot: int, seed: int) -> dict:
    """AUCs with DeLong CIs, DeLong's paired test and the paired bootstrap of ΔAUC = ON − OFF."""
    return {"auc_on": roc_auc(labels, on), "auc_off": roc_auc(labels, off),
            "ci_on": list(delong_ci(labels, on)), "ci_off": list(delong_ci(labels, off)),
            "delong": delong_test(labels, on, off),
            "paired_bootstrap": paired_bootstrap(labels, on, off, n_boot=n_boot, seed=seed)}


def summary_lines(result: dict, checkpoint_on: Path, how: str) -> list[str]:
    """The three lines test2.py prints: both AUCs with their CIs, then ΔAUC with both tests."""
    d, b = result["delong"], result["paired_bootstrap"]
    return [f"motion ON : ROC-AUC {result['auc_on']:.4f} [{result['ci_on'][0]:.4f}, {result['ci_on'][1]:.4f}]  "
            f"({checkpoint_on})",
            f"motion OFF: ROC-AUC {result['auc_off']:.4f} [{result['ci_off'][0]:.4f}, {result['ci_off'][1]:.4f}]  "
            f"({how})",
            f"ΔAUC {d['delta']:+.4f}: DeLong z {d['z']:.3f}, p {d['p_value']:.4g}; paired bootstrap 95% CI "
            f"[{b['ci_low']:+.4f}, {b['ci_high']:+.4f}], p {b['p_value']:.4g}"]


def plot(labels, on, off, result: dict, path: Path) -> Path:
    """Both ROC curves, AUC and 95% CI in the legend, ΔAUC and DeLong's p in the title."""
    from sklearn.metrics import roc_curve

    fig = new_figure(5.2, 5.0)
    ax = fig.add_subplot()
    for scores, key, name in ((on, "on", "motion ON"), (off, "off", "motion OFF")):
        fpr, tpr, _ = roc_curve(labels, scores)
        lo, hi = result[f"ci_{key}"]
        ax.plot(fpr, tpr, drawstyle="steps-post", label=f"{name}: AUC {result[f'auc_{key}']:.4f} [{lo:.3f}, {hi:.3f}]")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    p = result["delong"]["p_value"]
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02),
           title=f"ΔAUC {result['delong']['delta']:+.4f}, DeLong p = {p:.3g}")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)
