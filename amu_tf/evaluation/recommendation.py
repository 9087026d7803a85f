"""Which model to use on a new cohort: the one that measurably transfers best.

``amu run`` on real cohorts exports, beside its zoo model, the model it recommends for a cohort
none of its models has seen. The recommendation is measured, not fixed: under
leave-one-cohort-out (each cohort scored only by models that never saw it), every evaluated
model is compared with a baseline, ``recipe:consensus`` (training-free, the best pooled
transfer of the project's measurements, docs/generalisation.md), on the same resampled rows.

The rule (:func:`recommend`): the recommended model is the one with the highest pooled
leave-one-cohort-out ROC AUC among the models that

1. beat the baseline pooled, with the paired CI of the AUC difference above 0 at a
   Bonferroni-adjusted level (95% over all the candidates: each candidate's interval is
   1 - 0.05/m for m candidates, so a run with many signatures does not recommend one that
   won by chance), and
2. are not beaten by it on any held-out cohort, the paired 95% CI of that cohort below 0 (a
   cohort with one class cannot veto: it has no AUC);

when none qualifies, the baseline itself. "Measurably" is the CI: a model a few hundredths
ahead with a CI through 0 does not replace the baseline. With many candidates the adjusted
bound sits in the bootstrap's tail (m = 75 at 1,000 resamples: the 0.03% quantile, about the
smallest difference drawn), so it is conservative; more resamples (``--n-boot``) sharpen it.

The choice is made on the held-out cohorts it is reported on, so the recommended model's own
leave-one-cohort-out AUC is optimistic when it is not the baseline (the winner of several
comparisons); the record says so. Nothing here reads a label the protocol did not already
score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from amu_tf.evaluation.biomarker_comparison import mean_auc as _auc
from amu_tf.evaluation.biomarker_comparison import scored_block as _scores
from amu_tf.evaluation.metrics import stratified_bootstrap_indices

#: the model recommended unless another measurably transfers better
BASELINE = "recipe:consensus"
#: the file of a ModelEvaluation artifact that holds the recommendation
RECOMMENDATION_JSON = "recommendation.json"
#: the rule, in words (the record and the report carry it)
RULE = ("the highest pooled leave-one-cohort-out ROC AUC among the models that beat "
        f"{BASELINE} pooled with a paired CI above 0 (Bonferroni-adjusted over the "
        "candidates) and are not beaten by it on any held-out cohort (paired 95% CI below "
        "0); else the baseline")
#: the caveat of a recommendation other than the baseline
SELECTION_NOTE = ("chosen on the same held-out cohorts it is scored on: when the recommended "
                  "model is not the baseline, its leave-one-cohort-out AUC is optimistic "
                  "(the winner of several comparisons)")


def _paired(y, Pa, Pb, n_boot, seed, alphas):
    """``(auc_a - auc_b, [(ci_low, ci_high) for each alpha])`` on the same stratified
    resamples (NaN bounds without resamples)."""
    diff = _auc(y, Pa) - _auc(y, Pb)
    d = np.empty(0)
    if n_boot > 0:
        idx = stratified_bootstrap_indices(y, n_boot, seed)
        d = _auc(y, Pa, idx) - _auc(y, Pb, idx)
        d = d[np.isfinite(d)]
    if not len(d):
        return diff, [(np.nan, np.nan) for _ in alphas]
    return diff, [(float(np.quantile(d, a / 2)), float(np.quantile(d, 1 - a / 2)))
                  for a in alphas]


def recommend(result, baseline: str = BASELINE, n_boot: int = 1000, seed: int = 0,
              alpha: float = 0.05) -> dict | None:
    """The recommendation from one leave-one-cohort-out :class:`ProtocolResult`, or ``None``
    when ``result`` is not an honest leave-one-cohort-out result with ``baseline`` among its
    models. Returns a JSON-able dict: ``recommended``, ``baseline``, ``rule``, ``note`` and
    one ``candidates`` row per other model (its pooled AUC, the paired difference to the
    baseline with its CI, pooled and per held-out cohort as ``[difference, low, high]``, the
    cohorts where the baseline beats it, whether it qualifies)."""
    if result.leaky or result.protocol != "loco" or baseline not in result.models:
        return None
    preds = result.predictions
    cohort_of = preds["cohort"].astype(str)
    cohorts = sorted(cohort_of.unique())
    candidates = [m for m in result.models if m != baseline]
    adjusted = alpha / max(len(candidates), 1)  # Bonferroni over the candidates

    def block(m, c=None):
        pm = preds[(preds["model"] == m) & ((cohort_of == c) if c is not None else True)]
        return pm["row"].sort_values(kind="mergesort").to_numpy(), _scores(pm)

    base = {c: block(baseline, c) for c in [None] + cohorts}
    rows = []
    for m in candidates:
        worse_on, per_cohort = [], {}
        for c in [None] + cohorts:
            rows_m, (y, P) = block(m, c)
            if not np.array_equal(rows_m, base[c][0]):  # paired: the same patients
                raise ValueError(f"{m} and {baseline} scored different rows"
                                 + (f" of {c}" if c else ""))
            if c is None:
                auc = _auc(y, P)
                diff, ((lo, hi), (lo_adj, _)) = _paired(y, P, base[c][1][1], n_boot, seed,
                                                       (alpha, adjusted))
                continue
            if len(np.unique(y)) < 2:  # no AUC: this cohort cannot veto
                continue
            d, ((clo, chi),) = _paired(y, P, base[c][1][1], n_boot, seed, (alpha,))
            per_cohort[c] = [d, clo, chi]
            if chi < 0:
                worse_on.append(c)
        rows.append({"model": m, "auc_pooled": auc, "auc_difference": diff, "ci_low": lo,
                     "ci_high": hi, "ci_low_adjusted": lo_adj,
                     "per_cohort_difference": per_cohort, "beaten_by_baseline_on": worse_on,
                     "qualifies": bool(lo_adj > 0 and not worse_on)})
    base_auc = _auc(*base[None][1])
    qualified = [r for r in rows if r["qualifies"]]
    best = max(qualified, key=lambda r: r["auc_pooled"]) if qualified else None
    if best is None:
        why = (f"no model of {len(rows)} beats {baseline} pooled with a paired CI above 0 "
               "(Bonferroni-adjusted) without losing to it on a held-out cohort")
    else:
        why = (f"{best['model']} beats {baseline} pooled by {best['auc_difference']:+.3f} "
               f"(paired 95% CI {best['ci_low']:+.3f} to {best['ci_high']:+.3f}; adjusted "
               f"over {len(rows)} candidates, lower bound {best['ci_low_adjusted']:+.3f}) "
               "and loses to it on no held-out cohort")
    return {"recommended": best["model"] if best else baseline, "baseline": baseline,
            "baseline_auc_pooled": base_auc, "protocol": result.label, "cohorts": cohorts,
            "n_boot": n_boot, "seed": seed, "alpha": alpha, "alpha_adjusted": adjusted,
            "rule": RULE, "why": why, "note": SELECTION_NOTE if best else None,
            "candidates": rows}


def recommendation_markdown(rec: dict | None) -> list[str]:
    """The report's section lines for a :func:`recommend` record (none for ``None``)."""
    if not rec:
        return []
    from amu_tf.evaluation.tables import to_markdown

    lines = ["## Recommended for a new cohort", "",
             f"**{rec['recommended']}**: {rec['why']}.", "",
             f"Rule ({rec['protocol']}): {rec['rule']}."
             + (f" Note: {rec['note']}." if rec.get("note") else ""), ""]
    if rec["candidates"]:
        t = pd.DataFrame({
            "model": [r["model"] for r in rec["candidates"]],
            "pooled AUC": [_num(r["auc_pooled"], ".3f") for r in rec["candidates"]],
            f"minus {rec['baseline']} (95% CI)": [
                f"{_num(r['auc_difference'])} ({_num(r['ci_low'])} to {_num(r['ci_high'])})"
                for r in rec["candidates"]],
            "adjusted lower bound": [_num(r.get("ci_low_adjusted")) for r in rec["candidates"]],
            "beaten by it on": [", ".join(r["beaten_by_baseline_on"]) or "-"
                                for r in rec["candidates"]],
            "qualifies": ["yes" if r["qualifies"] else "no" for r in rec["candidates"]]})
        lines += [f"{rec['baseline']}: pooled AUC {_num(rec['baseline_auc_pooled'], '.3f')}.", "",
                  to_markdown(t, index=False), ""]
    return lines


def _num(x, fmt="+.3f") -> str:
    """``x`` formatted, or ``n/a`` for a missing value (NaN, or ``None`` after JSON: a CI
    without bootstrap resamples)."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return format(x, fmt)
