"""Decision-curve analysis (Vickers & Elkin, Med Decis Making 2006): is a model clinically
useful at the threshold probabilities a clinician would act on?

At a threshold probability ``pt`` (treat when the predicted probability of response is at
least ``pt``), the **net benefit** of a model over ``n`` patients is

    NB(pt) = TP / n - FP / n * pt / (1 - pt)

(true positives: responders treated; false positives: non-responders treated, weighted by the
odds ``pt / (1 - pt)`` at which a clinician is indifferent). The two default strategies:
**treat all** (``NB = prevalence - (1 - prevalence) * pt / (1 - pt)``) and **treat none**
(``NB = 0``). A model is useful at ``pt`` where its net benefit exceeds both.

Net benefit reads the probabilities at face value, so it is only meaningful for calibrated
probabilities (see :mod:`amu_tf.evaluation.calibration`); a biomarker's probability is a
label-free map of its score and a badly calibrated model can show negative net benefit.
For leave-one-cohort-out the held-out rows of every cohort are pooled (one row per sample;
``p`` averaged over repeats).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from amu_tf.errors import InputDataError

#: threshold probabilities 0.05, 0.06, ..., 0.80 (issue #24)
THRESHOLDS = np.round(np.arange(0.05, 0.8001, 0.01), 2)
TREAT_ALL, TREAT_NONE = "treat all", "treat none"


def _check(y, p, thresholds):
    y = np.asarray(y, dtype=float).ravel()
    p = np.asarray(p, dtype=float).ravel()
    t = np.asarray(thresholds, dtype=float).ravel()
    if len(y) != len(p):
        raise InputDataError(f"decision curve: {len(y)} labels but {len(p)} probabilities")
    if len(y) == 0:
        raise InputDataError("decision curve: no rows")
    if not np.isin(y, (0.0, 1.0)).all():
        raise InputDataError("decision curve: labels must be 0 or 1, without missing values")
    if not np.isfinite(p).all():
        raise InputDataError("decision curve: probabilities contain NaN or inf")
    if not ((t > 0) & (t < 1)).all():
        raise InputDataError("decision curve: threshold probabilities must lie in (0, 1)")
    return y.astype(int), p, t


def net_benefit(y, p, thresholds=THRESHOLDS) -> np.ndarray:
    """Net benefit of treating the patients with ``p >= pt``, for each ``pt`` of
    ``thresholds``."""
    y, p, t = _check(y, p, thresholds)
    treat = p[None, :] >= t[:, None]
    tp = (treat & (y[None, :] == 1)).sum(axis=1)
    fp = (treat & (y[None, :] == 0)).sum(axis=1)
    n = len(y)
    return tp / n - fp / n * t / (1 - t)


def net_benefit_treat_all(y, thresholds=THRESHOLDS) -> np.ndarray:
    """Net benefit of treating everyone: ``prevalence - (1 - prevalence) pt / (1 - pt)``."""
    y, _, t = _check(y, np.zeros(len(np.ravel(y))), thresholds)
    prev = y.mean()
    return prev - (1 - prev) * t / (1 - t)


def decision_curve(y, scores: dict, thresholds=THRESHOLDS) -> pd.DataFrame:
    """The decision-curve table: one row per (threshold, model) with ``net_benefit``, the
    models of ``scores`` (``{name: p}``, the same rows as ``y``) followed by "treat all" and
    "treat none"; columns ``threshold, model, net_benefit, treat_all, useful`` (``useful``:
    the model beats both treat-all and treat-none at that threshold)."""
    y = np.asarray(y, dtype=float).ravel()
    t = np.asarray(thresholds, dtype=float)
    nb_all = net_benefit_treat_all(y, t)
    parts = []
    for name, p in scores.items():
        nb = net_benefit(y, p, t)
        parts.append(pd.DataFrame({"threshold": t, "model": name, "net_benefit": nb,
                                   "treat_all": nb_all,
                                   "useful": (nb > nb_all) & (nb > 0)}))
    parts.append(pd.DataFrame({"threshold": t, "model": TREAT_ALL, "net_benefit": nb_all,
                               "treat_all": nb_all, "useful": False}))
    parts.append(pd.DataFrame({"threshold": t, "model": TREAT_NONE, "net_benefit": 0.0,
                               "treat_all": nb_all, "useful": False}))
    return pd.concat(parts, ignore_index=True)


def decision_curve_from_predictions(predictions: pd.DataFrame, models=None,
                                    thresholds=THRESHOLDS) -> pd.DataFrame:
    """:func:`decision_curve` of an evaluation's held-out predictions (``model``, ``y``,
    ``p``; ``row`` and ``repeat`` when several repeats: ``p`` averaged per row). Every model
    must have scored the same rows (they do within one protocol)."""
    if not {"model", "y", "p"} <= set(predictions.columns):
        raise InputDataError("decision curve: the predictions need the columns model, y, p")
    models = list(pd.unique(predictions["model"])) if models is None else list(models)
    scores, y = {}, None
    for m in models:
        pm = predictions[predictions["model"] == m]
        if "row" in pm.columns:
            pm = pm.groupby("row", sort=True).agg(y=("y", "first"), p=("p", "mean"))
        ym = pm["y"].to_numpy(int)
        if y is None:
            y = ym
        elif len(ym) != len(y) or (ym != y).any():
            raise InputDataError(f"decision curve: model {m!r} scored other rows than "
                                 f"{models[0]!r}; compare models on the same rows")
        scores[m] = pm["p"].to_numpy(float)
    return decision_curve(y, scores, thresholds)


def decision_curve_wide(table: pd.DataFrame, every: float = 0.05) -> pd.DataFrame:
    """The table as thresholds x models (net benefit), at thresholds that are multiples of
    ``every`` (the report's compact view)."""
    t = table[np.isclose((table["threshold"] / every) % 1, 0, atol=1e-6) |
              np.isclose((table["threshold"] / every) % 1, 1, atol=1e-6)]
    wide = t.pivot(index="threshold", columns="model", values="net_benefit")
    order = [m for m in pd.unique(table["model"])]
    return wide[order]


def decision_curve_figure(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Net benefit against threshold probability for every model of the table, treat-all
    (grey) and treat-none (black, 0); the y axis from a little below 0 to the prevalence."""
    fig = Figure(figsize=(8, 5.2))
    ax = fig.subplots()
    for m, g in table.groupby("model", sort=False):
        if m == TREAT_ALL:
            ax.plot(g["threshold"], g["net_benefit"], color="grey", lw=1.5, label=m)
        elif m == TREAT_NONE:
            ax.plot(g["threshold"], g["net_benefit"], color="black", lw=1.5, label=m)
        else:
            ax.plot(g["threshold"], g["net_benefit"], lw=1.3, label=m)
    prev = float(table.loc[table["model"] == TREAT_ALL, "net_benefit"].iloc[0] +
                 0.0) if (table["model"] == TREAT_ALL).any() else 0.5
    top = max(0.05, table["net_benefit"].max(), prev) * 1.1
    ax.set_ylim(-0.05 - 0.1 * top, top)
    ax.set_xlim(table["threshold"].min(), table["threshold"].max())
    ax.set(xlabel="threshold probability of response (treat if p >= threshold)",
           ylabel="net benefit")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    fig.suptitle(title or "Decision curves (Vickers & Elkin 2006)", fontsize=9)
    fig.tight_layout()
    return fig


def write_decision_curve(table: pd.DataFrame, path, title: str | None = None) -> list[Path]:
    """Write the figure as PNG and SVG and the table as CSV beside them (``path`` with or
    without suffix); returns the three paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = decision_curve_figure(table, title)
    out = []
    for ext in (".png", ".svg"):
        q = path.with_suffix(ext)
        fig.savefig(q, dpi=120)
        out.append(q)
    q = path.with_suffix(".csv")
    table.to_csv(q, index=False)
    out.append(q)
    return out
