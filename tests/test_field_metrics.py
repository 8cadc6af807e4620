"""The field's figures beside ROC-AUC (scripts/evaluation/field_metrics.py) on hand-made cases."""
import numpy as np
import pytest

from scripts.evaluation.field_metrics import (AP_DEFINITIONS, alarm_threshold, false_alarm_rate, format_far,
                                              normal_frame_scores, video_pr_auc_trapezoid)
from scripts.evaluation.metrics import frame_ap, frame_ap_trapezoid, pr_auc


def test_false_alarm_rate_counts_normal_frames_at_or_above_the_threshold():
    labels = [np.zeros(4), np.array([0, 1, 1, 0])]  # a normal video, an anomalous one
    scores = [np.array([0.1, 0.6, 0.4, 0.7]), np.array([0.9, 0.9, 0.9, 0.9])]
    normal = normal_frame_scores(labels, scores, [0, 1])
    assert normal.tolist() == [0.1, 0.6, 0.4, 0.7]
    far = false_alarm_rate(normal, level="frame", threshold=0.65, threshold_from="validation")
    assert far == {"level": "frame", "n": 4, "threshold": 0.65, "threshold_from": "validation",
                   "at_threshold": 0.25, "at_0.5": 0.5}
    assert format_far(far).startswith("false alarm rate      0.2500 at 0.65 (validation); 0.5000 at 0.5 (frame level")
    at_half = false_alarm_rate(np.array([0.5, 0.49]), level="video", threshold=None, threshold_from="none")
    assert at_half["at_threshold"] is None and at_half["at_0.5"] == 0.5  # "at or above"
    assert alarm_threshold(0.3, 0.7) == (0.3, "--threshold") and alarm_threshold(None, 0.7)[0] == 0.7


def test_every_ap_key_on_a_hand_made_case():
    """labels 1 0 1 0, scores .9 .8 .7 .1: the PR points (recall, precision) are (0, 1), (.5, 1), (.5, .5),
    (1, 2/3). Step-wise AP = .5 x 1 + .5 x 2/3 = 0.8333; trapezoidal = .5 x 1 + .5 x (.5 + 2/3) / 2 = 0.7917."""
    y, s = np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])
    assert pr_auc(y, s) == pytest.approx(5 / 6)  # video_pr_auc, pr_auc
    assert video_pr_auc_trapezoid(y, s) == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert frame_ap([y[:2], y[2:]], [s[:2], s[2:]]) == pytest.approx(5 / 6)  # frame_ap_sklearn, per_class_ap
    assert frame_ap_trapezoid([y[:2], y[2:]], [s[:2], s[2:]]) == pytest.approx(0.7916666)  # frame_ap
    stepwise = [k for k, v in AP_DEFINITIONS.items() if "step-wise" in v]
    trapezoid = [k for k, v in AP_DEFINITIONS.items() if "trapezoidal" in v]
    assert set(stepwise) == {"video_pr_auc", "frame.frame_ap_sklearn", "frame.per_class_ap"}
    assert set(trapezoid) == {"video_pr_auc_trapezoid", "frame.frame_ap", "frame.per_class_ap_trapezoid"}
