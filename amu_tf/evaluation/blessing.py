"""An evaluator-style blessing (as TFX's Evaluator blesses a model): a model is blessed only
if the lower bound of its ROC AUC's 95% bootstrap CI exceeds 0.5 under every honest
protocol evaluated. A LEAKY protocol (``paper``) can never bless a model."""

from __future__ import annotations

import numpy as np
import pandas as pd

AUC_LOWER_BOUND = 0.5


def bless(metrics: pd.DataFrame, threshold: float = AUC_LOWER_BOUND) -> dict:
    """``{model: {"blessed": bool, "reason": str, "auc_ci_low": {protocol: value}}}`` from
    a metrics frame with ``model``, ``protocol``, ``leaky``, ``roc_auc_ci_low`` columns."""
    out = {}
    for model, mm in metrics.groupby("model", sort=False):
        honest = mm[~mm["leaky"].astype(bool)]
        lows = {str(r["protocol"]): float(r["roc_auc_ci_low"]) for _, r in honest.iterrows()}
        if not lows:
            out[model] = {"blessed": False, "auc_ci_low": {},
                          "reason": "only a LEAKY protocol was run; it cannot bless a model"}
            continue
        failing = {p: v for p, v in lows.items() if not (np.isfinite(v) and v > threshold)}
        if failing:
            reason = "; ".join(f"{p}: AUC CI lower bound {v:.3f} <= {threshold}"
                               if np.isfinite(v) else f"{p}: no AUC CI" for p, v in failing.items())
        else:
            reason = "AUC CI lower bound > %.2f under %s" % (threshold, ", ".join(lows))
        out[model] = {"blessed": not failing, "auc_ci_low": lows, "reason": reason}
    return out
