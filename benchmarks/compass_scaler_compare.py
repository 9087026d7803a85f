"""What COMPASS's input-scaler choice does to the scores: two leave-one-cohort-out runs of
``bench_compass_generalisation.py`` (``--predictions``), one per ``--scaler-fit``, compared
on the same patients.

    .venv/bin/python benchmarks/bench_compass_generalisation.py --table runs/shared/cohort \
        --variants recipe:compass-probe,recipe:compass-published --predictions per_cohort.csv
    .venv/bin/python benchmarks/bench_compass_generalisation.py --table runs/shared/cohort \
        --variants recipe:compass-probe,recipe:compass-published --scaler-fit training \
        --predictions training.csv
    .venv/bin/python benchmarks/compass_scaler_compare.py per_cohort.csv training.csv

For each COMPASS model and held-out cohort (and pooled as the protocol pools): the ROC AUC
under each choice, the paired difference (training minus per_cohort; 95% CI from 1,000
stratified bootstrap resamples drawing the same patients for both) and the Spearman
correlation of the two runs' scores over the cohort's patients (how much the ranking moves).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MODELS = ("recipe:compass-probe", "recipe:compass-published")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("per_cohort", help="predictions CSV of the per_cohort run")
    ap.add_argument("training", help="predictions CSV of the training run")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from bench_compass_generalisation import _auc, _paired

    runs = [pd.read_csv(f) for f in (a.per_cohort, a.training)]
    print("| model | scope | AUC per_cohort | AUC training | training minus per_cohort "
          "[95% CI] | Spearman of the scores |")
    print("|---|---|---|---|---|---|")
    for m in MODELS:
        pa, pb = (r[r["model"] == m].sort_values("row", kind="mergesort") for r in runs)
        if pa.empty or pb.empty:
            continue
        if not np.array_equal(pa["row"].to_numpy(), pb["row"].to_numpy()):
            raise SystemExit(f"{m}: the two runs scored different rows")
        scopes = [(c, pa["cohort"].to_numpy() == c) for c in sorted(pa["cohort"].unique())]
        for scope, rows in scopes + [("pooled", np.ones(len(pa), bool))]:
            y = pa["y"].to_numpy(int)[rows]
            sa, sb = pa["p"].to_numpy(float)[rows], pb["p"].to_numpy(float)[rows]
            d, lo, hi = _paired(y, sb, sa, a.n_boot, a.seed)  # training minus per_cohort
            auc_a, auc_b = _auc(y, sa), _auc(y, sb)
            rho = spearmanr(sa, sb).statistic
            print(f"| {m} | {scope} | {auc_a:.3f} | {auc_b:.3f} | {d:+.3f} [{lo:+.3f}, "
                  f"{hi:+.3f}] | {rho:.2f} |")


if __name__ == "__main__":
    main()
