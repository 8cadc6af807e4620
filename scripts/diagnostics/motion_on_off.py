"""Motion ON vs OFF (test2.py): the same test videos scored with and without motion, their ROC-AUCs,
DeLong's paired test and a paired bootstrap of ΔAUC = ON − OFF, and both ROC curves in one plot.

OFF is either a second model (the no_motion ablation on the same fold, or no_motion_map) or the ON model
fed an all-zero MotionMap. Only the no_motion ablation (and the MIL baseline) is free of motion: with the
MotionMap zeroed, or without one, the difference features |x_t − x_{t−1}| still carry motion, so the
printout says which OFF it was (`describe_off`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from scripts.diagnostics.analysis_inputs import AnalysisRun
from scripts.core.errors import MateError
from scripts.evaluation.metrics import delong_ci, delong_test, paired_bootstrap, roc_auc
from scripts.core.plots import new_figure, save_figure

SAME_MODEL = "the same model, MotionMap set to 0"  # how OFF was scored without --checkpoint_off
NO_MOTION = "OFF = the no_motion model (no MotionMap, no difference features)"
STILL_DIFFERENCES = "its difference features |x_t − x_{t−1}| still carry motion"


def describe_off(config_on: Mapping[str, Any], config_off: Mapping[str, Any] | None) -> str:
    """One line saying what OFF is and which motion it still sees, from the stored model configs of ON
    and of OFF (None: OFF is the ON model with its MotionMap set to 0)."""
    from scripts.model import uses_difference_features, uses_motion_map

    if config_off is None:
        if not uses_difference_features(config_on):
            return ("OFF = the same model with its MotionMap set to 0; it has no difference features: no motion "
                    "input is left")
        return (f"OFF = the same model with its MotionMap set to 0; {STILL_DIFFERENCES} (for a motion-free OFF, "
                "pass --checkpoint_off of the no_motion ablation)")
    motion_map, differences = uses_motion_map(config_off), uses_difference_features(config_off)
    if config_off["variant"] == "mil":
        return "OFF = the MIL baseline (no MotionMap, no difference features)"
    if not motion_map and not differences:
        return NO_MOTION
    if not motion_map:
        return f"OFF = a model without MotionMap (the no_motion_map ablation); {STILL_DIFFERENCES}"
    return (f"OFF = a model with a MotionMap{' and difference features' if differences else ''}: "
            "it sees motion too, not a motion OFF")


def score_on_off(loaded: AnalysisRun, checkpoint_off: Path | None, test_list: Path, *, batch_size: int,
                 progress: bool, force_settings: bool) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Video scores [N] of the loaded model (ON) and of OFF, how OFF was scored (SAME_MODEL or the
    checkpoint), and what OFF is (`describe_off`). OFF is the model in `checkpoint_off` on `test_list`
    (its features checked against that checkpoint), or, without one, the ON model with an all-zero
    MotionMap; a model without a MotionMap has none to zero, and is refused."""
    from scripts.evaluation.evaluation import load_for_scoring
    from scripts.model import uses_motion_map
    from scripts.evaluation.scoring import score_dataset

    config_on = loaded.ckpt["model_config"]
    if checkpoint_off is None and not uses_motion_map(config_on):
        why = "is the MIL baseline" if config_on["variant"] == "mil" else "was trained with --no_motion_map"
        raise MateError(f"{loaded.checkpoint}: this model {why}; it has no MotionMap to set to 0 (OFF would be "
                        "ON); compare it with another model through --checkpoint_off")
    common = dict(device=loaded.device, batch_size=batch_size, progress=progress)
    on = score_dataset(loaded.model, loaded.ds, **common).video
    if checkpoint_off is None:
        off = score_dataset(loaded.model, loaded.ds, motion_off=True, **common).video
        return on, off, SAME_MODEL, describe_off(config_on, None)
    model_off, ckpt_off, ds_off, _ = load_for_scoring(checkpoint_off, test_list, device=loaded.device, progress=False,
                                                   force_settings=force_settings)
    off = score_dataset(model_off, ds_off, **common).video
    return on, off, f"{checkpoint_off}", describe_off(config_on, ckpt_off["model_config"])


def compare_on_off(labels, on, off, *, n_boot: int, seed: int) -> dict:
    """AUCs with DeLong CIs, DeLong's paired test and the paired bootstrap of ΔAUC = ON − OFF."""
    return {"auc_on": roc_auc(labels, on), "auc_off": roc_auc(labels, off),
            "ci_on": list(delong_ci(labels, on)), "ci_off": list(delong_ci(labels, off)),
            "delong": delong_test(labels, on, off),
            "paired_bootstrap": paired_bootstrap(labels, on, off, n_boot=n_boot, seed=seed)}


def summary_lines(result: dict, checkpoint_on: Path, how: str, off_model: str) -> list[str]:
    """The four lines test2.py prints: both AUCs with their CIs, what OFF is (`describe_off`), then ΔAUC
    with both tests."""
    d, b = result["delong"], result["paired_bootstrap"]
    return [f"motion ON : ROC-AUC {result['auc_on']:.4f} [{result['ci_on'][0]:.4f}, {result['ci_on'][1]:.4f}] "
            f"(95% CI, DeLong)  "
            f"({checkpoint_on})",
            f"motion OFF: ROC-AUC {result['auc_off']:.4f} [{result['ci_off'][0]:.4f}, {result['ci_off'][1]:.4f}] "
            f"(95% CI, DeLong)  "
            f"({how})",
            off_model,
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
        ax.plot(fpr, tpr, drawstyle="steps-post",
                label=f"{name}: AUC {result[f'auc_{key}']:.4f} [{lo:.3f}, {hi:.3f}] (95% CI, DeLong)")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    p = result["delong"]["p_value"]
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02),
           title=f"ΔAUC {result['delong']['delta']:+.4f}, DeLong p = {p:.3g}")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)
