"""What the cohort-robust stacking recipes learn on each leave-one-cohort-out fold (issue
#15): the regularisation chosen (``stack-direction``: stratified inner CV; ``stack-loco``:
inner leave-one-cohort-out), the group-DRO cohort weights (``stack-dro``), and each recipe's
direction over the seven signature scores.

    .venv/bin/python benchmarks/recipe_weights.py --table runs/shared/cohort
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="a CohortTable folder of the shared cohorts")
    a = ap.parse_args(argv)

    from amu_tf.biomarkers.signature_scores_transform import GENE_SIGNATURES
    from amu_tf.data.cohort_table import read_table
    from amu_tf.training import make_estimator

    t = read_table(a.table)
    t = t[t["response"].notna()].reset_index(drop=True)
    cohort = t["cohort"].astype(str).to_numpy()
    print("direction columns:", ", ".join(GENE_SIGNATURES))
    for held in sorted(set(cohort)):
        train = t[cohort != held].reset_index(drop=True)
        y = train["response"].to_numpy().astype(int)
        for name in ("recipe:stack-direction", "recipe:stack-loco", "recipe:stack-dro"):
            est = make_estimator(name)
            X = est.make_input_transform().fit(train).transform(train)
            est.fit(X, y, cohorts=train["cohort"].astype(str).to_numpy())
            lin = est.linear_
            learnt = lin.best_params_ if name != "recipe:stack-dro" else {
                str(c): round(float(w), 2) for c, w in zip(lin.cohorts_, lin.cohort_weights_)}
            print(f"held out {held} | {name} | {learnt} | direction "
                  f"{np.round(est.direction_, 2).tolist()}")


if __name__ == "__main__":
    main()
