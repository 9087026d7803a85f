"""Metrics of binary predictions, with stratified-bootstrap 95% confidence intervals.

Names (``METRICS``), all for responder (CR/PR) = 1 as the positive class:

* ``roc_auc``: area under the ROC curve.
* ``ap_responder``: average precision of the responder class (area under its PR curve).
* ``map_paper``: the paper's "mAP": the mean of the average precision of both classes
  (responders scored by p, non-responders by 1 - p). Higher than ``ap_responder`` whenever
  non-responders are the majority; reported for comparison with the paper only.
* ``accuracy``; ``precision_weighted``, ``recall_weighted``, ``f1_weighted`` (per-class
  scores weighted by support: the paper's tables); ``precision_macro``, ``recall_macro``,
  ``f1_macro``; ``sensitivity`` (responder recall) and ``specificity``.

Threshold metrics use the predicted labels given (each fold's frozen training threshold),
never a threshold chosen on the scored rows.

Point estimates come from ``sklearn.metrics``; the bootstrap recomputes the same quantities
with vectorised NumPy (checked against scikit-learn in ``tests/test_metrics.py``) so 1000
resamples take well under a second. The bootstrap is stratified: responders and
non-responders are resampled separately, so every resample keeps both classes.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from amu_tf.errors import InputDataError

METRICS = (
    "roc_auc", "ap_responder", "map_paper", "accuracy",
    "precision_weighted", "recall_weighted", "f1_weighted",
    "precision_macro", "recall_macro", "f1_macro", "sensitivity", "specificity",
)

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "ap_responder": "AP (responders)",
    "map_paper": "mAP (paper: mean AP of both classes)",
    "accuracy": "Accuracy",
    "precision_weighted": "Precision (weighted)",
    "recall_weighted": "Recall (weighted)",
    "f1_weighted": "F1 (weighted)",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "f1_macro": "F1 (macro)",
    "sensitivity": "Sensitivity (responder recall)",
    "specificity": "Specificity",
}


def _check(y, p, pred):
    y = np.asarray(y, dtype=float).ravel()
    p = np.asarray(p, dtype=float).ravel()
    pred = np.asarray(pred, dtype=float).ravel()
    if not (len(y) == len(p) == len(pred)):
        raise InputDataError(f"metrics: {len(y)} labels, {len(p)} scores, {len(pred)} predictions")
    if np.isnan(y).any() or not np.isfinite(p).all():
        raise InputDataError("metrics: labels or scores contain NaN/inf")
    return y.astype(int), p, pred.astype(int)


def sklearn_metrics(y, p, pred) -> dict:
    """All ``METRICS`` with scikit-learn. AUC/AP are NaN when ``y`` holds one class."""
    y, p, pred = _check(y, p, pred)
    out = {}
    two = len(np.unique(y)) == 2
    out["roc_auc"] = skm.roc_auc_score(y, p) if two else np.nan
    if two:
        ap1 = skm.average_precision_score(y, p)
        ap0 = skm.average_precision_score(1 - y, 1 - p)
        out["ap_responder"], out["map_paper"] = ap1, (ap0 + ap1) / 2
    else:
        out["ap_responder"] = out["map_paper"] = np.nan
    out["accuracy"] = skm.accuracy_score(y, pred)
    for avg in ("weighted", "macro"):
        pr, rc, f1, _ = skm.precision_recall_fscore_support(
            y, pred, average=avg, labels=[0, 1], zero_division=0)
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = pr, rc, f1
    out["sensitivity"] = skm.recall_score(y, pred, pos_label=1, zero_division=0) \
        if (y == 1).any() else np.nan
    out["specificity"] = skm.recall_score(1 - y, 1 - pred, pos_label=1, zero_division=0) \
        if (y == 0).any() else np.nan
    return {k: float(out[k]) for k in METRICS}


# ---------------------------------------------------------------- vectorised (bootstrap)
def auc_rows(y, p):
    """ROC AUC of each row of (B, n) arrays (Mann-Whitney with average ranks for ties): the
    project's one vectorised AUC (bootstraps, paired comparisons, permutation tests)."""
    from scipy.stats import rankdata

    r = rankdata(p, axis=1)
    n1 = y.sum(1)
    n0 = y.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((r * y).sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _ap_rows(y, p):
    """Average precision of each row: mean over positives of precision at their score
    (ties share a threshold, as in scikit-learn)."""
    order = np.argsort(-p, axis=1, kind="mergesort")
    ps = np.take_along_axis(p, order, 1)
    ys = np.take_along_axis(y, order, 1)
    tp = np.cumsum(ys, 1)
    n = np.arange(1, p.shape[1] + 1)[None, :].repeat(p.shape[0], 0)
    # for tied scores, use the counts at the last member of the tie block
    last = np.ones_like(ps, dtype=bool)
    last[:, :-1] = ps[:, :-1] != ps[:, 1:]
    # index of the last element of each tie block, propagated backwards
    idx = np.where(last, np.arange(p.shape[1])[None, :], p.shape[1])
    idx = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
    tp_t = np.take_along_axis(tp, idx, 1)
    n_t = np.take_along_axis(n, idx, 1)
    prec = tp_t / n_t
    npos = ys.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (prec * ys).sum(1) / npos


def _threshold_rows(y, pred):
    tp = (y * pred).sum(1).astype(float)
    fp = ((1 - y) * pred).sum(1).astype(float)
    fn = (y * (1 - pred)).sum(1).astype(float)
    tn = ((1 - y) * (1 - pred)).sum(1).astype(float)
    n1, n0 = tp + fn, tn + fp
    n = n1 + n0

    def div(a, b):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)

    prec1, prec0 = div(tp, tp + fp), div(tn, tn + fn)
    rec1, rec0 = div(tp, n1), div(tn, n0)
    f1_1, f1_0 = div(2 * prec1 * rec1, prec1 + rec1), div(2 * prec0 * rec0, prec0 + rec0)
    w1, w0 = n1 / n, n0 / n
    return {
        "accuracy": (tp + tn) / n,
        "precision_weighted": w1 * prec1 + w0 * prec0,
        "recall_weighted": w1 * rec1 + w0 * rec0,
        "f1_weighted": w1 * f1_1 + w0 * f1_0,
        "precision_macro": (prec1 + prec0) / 2,
        "recall_macro": (rec1 + rec0) / 2,
        "f1_macro": (f1_1 + f1_0) / 2,
        "sensitivity": rec1,
        "specificity": rec0,
    }


def fast_metrics(y, p, pred) -> dict:
    """``METRICS`` of each row of (B, n) arrays (or of one prediction set, as length-1 arrays)."""
    y = np.atleast_2d(np.asarray(y, dtype=int))
    p = np.atleast_2d(np.asarray(p, dtype=float))
    pred = np.atleast_2d(np.asarray(pred, dtype=int))
    out = {"roc_auc": auc_rows(y, p)}
    ap1 = _ap_rows(y, p)
    ap0 = _ap_rows(1 - y, 1 - p)
    out["ap_responder"], out["map_paper"] = ap1, (ap0 + ap1) / 2
    out.update(_threshold_rows(y, pred))
    return {k: out[k] for k in METRICS}


def stratified_bootstrap_indices(y, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_boot, n) positions: each class resampled with replacement within itself."""
    y = np.asarray(y).astype(int)
    rng = np.random.default_rng(seed)
    parts = []
    for cls in np.unique(y):
        pos = np.flatnonzero(y == cls)
        parts.append(pos[rng.integers(0, len(pos), size=(n_boot, len(pos)))])
    return np.concatenate(parts, axis=1)


def metrics_with_ci(y, p, pred, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                    chunk: int = 250) -> dict:
    """Point estimates and percentile CIs of every metric.

    ``y`` is (n,); ``p`` and ``pred`` are (n,) or (R, n): R prediction sets of the same rows
    (e.g. the pooled out-of-fold predictions of R cv repeats). With R sets the point estimate
    is the mean over sets and every bootstrap resample draws the same rows for each set
    (the rows are the resampling unit, the repeats are averaged).

    Returns ``{metric: {"value", "ci_low", "ci_high"}}`` (NaN CIs with ``n_boot=0``).
    """
    y = np.asarray(y, dtype=int).ravel()
    p = np.atleast_2d(np.asarray(p, dtype=float))
    pred = np.atleast_2d(np.asarray(pred, dtype=int))
    points = [sklearn_metrics(y, p[r], pred[r]) for r in range(len(p))]
    out = {k: {"value": float(np.mean([pt[k] for pt in points])),
               "ci_low": np.nan, "ci_high": np.nan} for k in METRICS}
    if n_boot <= 0 or len(np.unique(y)) < 2:
        return out
    idx = stratified_bootstrap_indices(y, n_boot, seed)
    boot = {k: [] for k in METRICS}
    for start in range(0, n_boot, chunk):
        ib = idx[start:start + chunk]
        acc = {k: 0.0 for k in METRICS}
        for r in range(len(p)):
            m = fast_metrics(y[ib], p[r][ib], pred[r][ib])
            for k in METRICS:
                acc[k] = acc[k] + m[k]
        for k in METRICS:
            boot[k].append(acc[k] / len(p))
    for k in METRICS:
        b = np.concatenate(boot[k])
        b = b[np.isfinite(b)]
        if len(b):
            out[k]["ci_low"] = float(np.quantile(b, alpha / 2))
            out[k]["ci_high"] = float(np.quantile(b, 1 - alpha / 2))
    return out


def format_ci(m: dict, digits: int = 3) -> str:
    """``0.712 [0.601, 0.810]`` (or the value alone without a CI)."""
    v, lo, hi = m["value"], m.get("ci_low", np.nan), m.get("ci_high", np.nan)
    if not np.isfinite(v):
        return "n/a"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
