"""Does a trained model beat the published biomarkers? The paired comparison of the report.

For every honest protocol, pooled and (leave-one-cohort-out, external) per held-out cohort:
the best biomarker there (highest ROC AUC among the biomarkers evaluated), and for each
trained model the AUC difference with a paired 95% CI: every bootstrap resample draws the
same rows (stratified by class, as every CI of amu-tf) for the model and the biomarker, so
the CI is of the difference itself. The biomarker is picked as the best on the scored rows,
which favours the biomarker: a model that beats it beats the one a reader would have chosen
with hindsight.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from amu_tf.biomarkers import BIOMARKERS, is_biomarker
from amu_tf.evaluation.metrics import auc_rows, stratified_bootstrap_indices


def scored_block(pm: pd.DataFrame):
    """``(y, P)`` of one model's predictions: labels of the scored rows and the (repeats,
    rows) probabilities, rows in the protocol's order (the same for every model of one
    protocol, so two blocks are paired)."""
    reps = [g.sort_values("row", kind="mergesort") for _, g in pm.groupby("repeat")]
    return reps[0]["y"].to_numpy(int), np.vstack([g["p"].to_numpy(float) for g in reps])


def mean_auc(y, P, idx=None):
    """Mean over repeats of the ROC AUC; with ``idx`` ``(B, n)`` one value per resample."""
    if idx is None:
        return float(np.mean(auc_rows(y[None, :], P)))
    return np.mean([auc_rows(y[idx], P[r][idx]) for r in range(len(P))], axis=0)


def compare_with_biomarkers(result, n_boot: int = 1000, seed: int = 0,
                            alpha: float = 0.05) -> pd.DataFrame:
    """One row per (scope, trained model): the best biomarker of that scope, both AUCs, the
    difference with its paired CI and a one-line verdict. Empty when the protocol is leaky
    or lacks biomarkers or trained models."""
    biomarkers = [m for m in result.models if is_biomarker(m)]
    trained = [m for m in result.models if not is_biomarker(m)]
    if result.leaky or not biomarkers or not trained:
        return pd.DataFrame()
    preds = result.predictions
    scopes = [("pooled", preds)]
    if result.protocol in ("loco", "external"):
        scopes += [(str(c), g) for c, g in preds.groupby("cohort")]
    rows = []
    for scope, pg in scopes:
        blocks = {m: scored_block(pg[pg["model"] == m]) for m in result.models}
        y = blocks[biomarkers[0]][0]
        if len(np.unique(y)) < 2:
            continue
        auc = {m: mean_auc(*blocks[m]) for m in result.models}
        best = max(biomarkers, key=lambda m: auc[m])
        idx = stratified_bootstrap_indices(y, n_boot, seed) if n_boot > 0 else None
        boot_best = mean_auc(y, blocks[best][1], idx) if idx is not None else None
        for m in trained:
            diff = auc[m] - auc[best]
            lo = hi = np.nan
            if idx is not None:
                d = mean_auc(y, blocks[m][1], idx) - boot_best
                d = d[np.isfinite(d)]
                lo, hi = (float(np.quantile(d, alpha / 2)), float(np.quantile(d, 1 - alpha / 2)))
            label = BIOMARKERS[best]["label"] if best in BIOMARKERS else best
            where = "pooled" if scope == "pooled" else f"on {scope}"
            if lo > 0:
                verdict = f"{m} beats {label} {where}"
            elif hi < 0:
                verdict = f"{m} is beaten by {label} {where}"
            else:
                verdict = f"{m} does not beat {label} {where} (the CI includes 0)"
            rows.append({"protocol": result.label, "scope": scope, "model": m,
                         "best_biomarker": best, "auc_model": auc[m], "auc_biomarker": auc[best],
                         "auc_difference": diff, "ci_low": lo, "ci_high": hi,
                         "verdict": verdict})
    return pd.DataFrame(rows)


def comparison_markdown(table: pd.DataFrame) -> list[str]:
    """The report's section lines for the rows of :func:`compare_with_biomarkers`."""
    if table.empty:
        return []
    lines = ["## Trained models against the best biomarker", "",
             "For each honest protocol (pooled, and per held-out cohort): the biomarker with "
             "the highest ROC AUC there, and each trained model's AUC minus it, with a paired "
             "95% bootstrap CI (the same resampled rows for both). Picking the best biomarker "
             "on the scored rows favours the biomarker.", ""]
    from amu_tf.evaluation.tables import to_markdown

    for protocol, t in table.groupby("protocol", sort=False):
        shown = pd.DataFrame({
            "scope": t["scope"], "model": t["model"], "best biomarker": t["best_biomarker"],
            "AUC model": t["auc_model"].map("{:.3f}".format),
            "AUC biomarker": t["auc_biomarker"].map("{:.3f}".format),
            "difference (95% CI)": [f"{d:+.3f} ({lo:+.3f} to {hi:+.3f})" for d, lo, hi in
                                    zip(t["auc_difference"], t["ci_low"], t["ci_high"])],
            "verdict": t["verdict"]})
        lines += [f"### {protocol}", "", to_markdown(shown, index=False), ""]
    return lines
