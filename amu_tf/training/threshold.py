"""Decision thresholds chosen on training data only, then frozen.

The paper picked its threshold on the test set; we never do. Every estimator chooses its
threshold from predictions on rows it was trained on but did not fit on directly (the
out-of-fold predictions of an inner cross-validation, or the inner validation split of a
Keras model) and stores it in ``threshold_``; scoring later applies it unchanged.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

from amu_tf.errors import InputDataError

#: How a threshold was chosen (the values of an estimator's ``threshold_method_``).
THRESHOLD_METHODS = {
    "youden_oof": "Youden's J on out-of-fold predictions of the inner CV (training rows only)",
    "youden_inner_val": "Youden's J on the inner validation split of the training rows "
    "(the split used for early stopping)",
    "youden_train": "Youden's J on in-sample training predictions (no inner split asked for)",
    "fixed": "a fixed probability threshold given by the user",
    "youden_oof_calibrated": "Youden's J on recalibrated out-of-fold predictions of the "
    "training rows (the threshold is in the recalibrated probability scale)",
}


def is_probability(value) -> bool:
    """Whether ``value`` is a number in [0, 1] (a stored decision threshold must be one)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 <= value <= 1)


#: how ``youden_threshold`` places the cut (recorded in model_info.json beside the margin)
YOUDEN_PLACEMENT = ("midpoint between the score at the Youden cut and the next lower distinct "
                    "score of the rows it was chosen on (predict positive if p >= threshold)")


def threshold_margin(scores, threshold) -> float | None:
    """The distance from ``threshold`` to the nearest of ``scores`` (the rows it was chosen
    on): half the gap the midpoint rule split. A prediction changes class only if a score
    moves by more than the distance to the threshold; the scores the model computes for
    the same row in another row order or batch differ by rounding only (about 1e-16 in the
    float64 scikit-learn path, 1e-7 in Keras's float32), far below this margin."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    scores = scores[np.isfinite(scores)]
    if not scores.size:
        return None
    return float(np.min(np.abs(scores - float(threshold))))


def threshold_record(estimator) -> dict:
    """How ``estimator.threshold_`` was placed, for model_info.json: its method, the
    placement rule and its margin from the scores it was chosen on."""
    method = getattr(estimator, "threshold_method_", "unknown")
    margin = getattr(estimator, "threshold_margin_", None)
    rule = "a fixed value given by the user" if method == "fixed" else YOUDEN_PLACEMENT
    return {"method": method, "rule": rule,
            "margin": None if margin is None else float(margin)}


def youden_threshold(y_true, scores) -> float:
    """The score threshold maximising Youden's J = TPR - FPR (predict positive if ``>=``).

    ``y_true`` is 0/1 with 1 the positive class; ``scores`` are positive-class
    probabilities. Ties in J go to the highest threshold (the most conservative one). The
    returned value is the midpoint between the chosen score and the next lower distinct
    score, so a threshold taken from a finite sample does not sit exactly on a data point.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if y_true.shape != scores.shape:
        raise InputDataError(
            f"threshold: {len(y_true)} labels but {len(scores)} scores"
        )
    if len(np.unique(y_true)) < 2:
        raise InputDataError(
            "threshold: the predictions used to choose it contain only one class"
        )
    fpr, tpr, thr = roc_curve(y_true, scores, drop_intermediate=False)
    j = tpr - fpr
    best = int(np.argmax(j))  # first max = highest threshold
    t = float(thr[best])
    if not np.isfinite(t):  # roc_curve's leading +inf: nothing predicted positive
        return 1.0
    lower = np.unique(scores[scores < t])
    if lower.size:
        t = 0.5 * (t + float(lower[-1]))
    return float(np.clip(t, 0.0, 1.0))
