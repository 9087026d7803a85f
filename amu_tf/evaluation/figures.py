"""ROC and precision-recall curves of all models on one figure per protocol (the paper's
Figure 2), from the pooled out-of-fold predictions of the first repeat; legends give each
model's AUC / AP with its 95% bootstrap CI (over all repeats)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from amu_tf.biomarkers import is_biomarker
from amu_tf.evaluation.metrics import format_ci
from amu_tf.evaluation.protocols import ProtocolResult


def _ci(row, k):
    return format_ci({"value": row[k], "ci_low": row[f"{k}_ci_low"], "ci_high": row[f"{k}_ci_high"]})


def plot_curves(result: ProtocolResult, path) -> Path:
    """Write one PNG with the ROC (left) and PR (right) curves of every model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(result).savefig(path, dpi=120)
    return path


#: at most this many training-free models (biomarkers, signatures) are drawn: the best by AUC
MAX_TRAINING_FREE_CURVES = 6


def shown_models(result: ProtocolResult) -> list:
    """Every trained model, and the training-free ones with the highest AUCs (59 published
    signatures on one figure would be unreadable; every one is in metrics.csv)."""
    free = [m for m in result.models if is_biomarker(m)]
    if len(free) <= MAX_TRAINING_FREE_CURVES:
        return list(result.models)
    auc = result.metrics.set_index("model")["roc_auc"]
    best = sorted(free, key=lambda m: -float(auc.get(m, -np.inf)))[:MAX_TRAINING_FREE_CURVES]
    return [m for m in result.models if not is_biomarker(m) or m in best]


def curves_figure(result: ProtocolResult) -> Figure:
    """The ROC (left) and PR (right) curves of every model as a ``Figure`` (drawn with
    Matplotlib's object API: no pyplot state, no backend chosen); with many training-free
    models, only the best of them (:func:`shown_models`)."""
    fig = Figure(figsize=(12, 5.2))
    ax_roc, ax_pr = fig.subplots(1, 2)
    first = result.predictions[result.predictions["repeat"] == 0]
    prevalence = np.nan
    shown = shown_models(result)
    for model in shown:
        pm = first[first["model"] == model]
        y, p = pm["y"].to_numpy(), pm["p"].to_numpy()
        if len(np.unique(y)) < 2:
            continue
        row = result.metrics[result.metrics["model"] == model].iloc[0]
        # biomarkers (training-free) drawn apart from the trained models: thin and dashed
        style = dict(lw=1.0, ls="--", alpha=0.8) if is_biomarker(model) else dict(lw=1.6)
        kind = " (biomarker)" if is_biomarker(model) else ""
        fpr, tpr, _ = roc_curve(y, p)
        ax_roc.plot(fpr, tpr, **style, label=f"{model}{kind}: AUC {_ci(row, 'roc_auc')}")
        prec, rec, _ = precision_recall_curve(y, p)
        ax_pr.step(rec, prec, where="post", **style,
                   label=f"{model}{kind}: AP {_ci(row, 'ap_responder')}")
        prevalence = y.mean()
    ax_roc.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax_roc.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC",
               xlim=(0, 1), ylim=(0, 1.02))
    if np.isfinite(prevalence):
        ax_pr.axhline(prevalence, ls="--", c="grey", lw=1, label=f"chance ({prevalence:.2f})")
    ax_pr.set(xlabel="Recall (responders)", ylabel="Precision (responders)",
              title="Precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    for ax in (ax_roc, ax_pr):
        ax.legend(loc="lower right" if ax is ax_roc else "lower left", fontsize=8)
    title = f"Protocol {result.label}: {result.description}"
    if len(shown) < len(result.models):
        title += (f" ({len(result.models) - len(shown)} training-free models with lower AUCs "
                  "not drawn: see the tables)")
    fig.suptitle(title, fontsize=9, color="firebrick" if result.leaky else "black", wrap=True)
    with warnings.catch_warnings():  # a long legend: the layout does its best, silently
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    return fig
