"""Pool the leave-one-cohort-out folds of ``amu:compass`` run one at a time, and compare them
paired with other models' LOCO predictions of the same patients.

    for h in GSE78220 GSE91061_pre Liu2019 Markovits2023_PD1; do
        .venv/bin/python benchmarks/bench_compass_finetune_fold.py --table runs/shared/cohort \\
            --held-out $h --readout mean --learning-rate 3e-3 --epochs 10 --patience 4 \\
            --predictions runs/compass_ft_loco.csv
    done
    .venv/bin/python benchmarks/bench_compass_generalisation.py --table runs/shared/cohort \\
        --variants recipe:compass-published --predictions runs/loco_predictions.csv
    .venv/bin/python benchmarks/compass_finetune_pool.py --folds runs/compass_ft_loco.csv \\
        --others runs/loco_predictions.csv

Prints, per held-out cohort and pooled: the ROC AUC with its 95% stratified-bootstrap CI, the
spread of the probabilities, and the paired difference (same resampled rows) to
``recipe:consensus``, to the best of the eight biomarkers there (picked with hindsight) and to
``recipe:compass-published``. Pooled, each fold's probabilities are taken as they are, as the
protocols pool them. Then, on the Hugo, Riaz and Liu patients shared with COMPASS
(``DATA_ROOT/compass_itrp``), the paired difference to COMPASS's own leave-one-cohort-out
predictions (``compass_loco_{PFT,LFT}_seed42_predictions.tsv.gz``), matched as
``bench_compass_generalisation.py`` matches them, with our labels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BIOMARKERS = ["cd274", "cd8a", "cxcl9", "cytolytic", "ifng6", "gep18", "impres", "tide"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", required=True, help="bench_compass_finetune_fold.py --predictions")
    ap.add_argument("--others", required=True,
                    help="LOCO predictions of the other models (bench_compass_generalisation.py "
                         "--predictions)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared"
                                               / "data"))
    a = ap.parse_args(argv)

    from amu_tf.evaluation.metrics import metrics_with_ci
    from bench_compass_generalisation import COMPASS_COHORTS, _auc, _compass_rows, _fmt, _paired

    F = pd.read_csv(a.folds, dtype={"sample": str, "cohort": str})
    P = pd.read_csv(a.others, dtype={"sample": str, "cohort": str})
    if F.duplicated(["cohort", "sample"]).any():
        raise SystemExit(f"{a.folds}: a (cohort, sample) appears twice: a fold was appended "
                         "twice; keep one run per held-out cohort")

    def others(model):
        d = P[P["model"] == model].set_index(["cohort", "sample"])
        rows = d.loc[list(zip(F["cohort"], F["sample"]))]
        if not (rows["y"].to_numpy(int) == F["y"].to_numpy(int)).all():
            raise SystemExit(f"{model}: labels differ from {a.folds}'s (another table?)")
        return rows["p"].to_numpy(float)

    cons, pub = others("recipe:consensus"), others("recipe:compass-published")
    bm = {b: others(b) for b in BIOMARKERS}
    for c in list(dict.fromkeys(F["cohort"])) + [None]:
        m = np.ones(len(F), bool) if c is None else (F["cohort"] == c).to_numpy()
        y, p = F["y"].to_numpy(int)[m], F["p"].to_numpy(float)[m]
        r = metrics_with_ci(y, p, (p >= np.median(p)).astype(int), n_boot=a.n_boot,
                            seed=a.seed)["roc_auc"]
        best = max(BIOMARKERS, key=lambda b: _auc(y, bm[b][m]))
        print(f"{c or 'pooled'} (n {m.sum()}): amu:compass {r['value']:.3f} "
              f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}], sd of p {p.std():.4f}; "
              f"- consensus {_fmt(*_paired(y, p, cons[m], a.n_boot, a.seed))}; "
              f"- best biomarker {best} {_fmt(*_paired(y, p, bm[best][m], a.n_boot, a.seed))}; "
              f"- compass-published {_fmt(*_paired(y, p, pub[m], a.n_boot, a.seed))}")

    # against COMPASS's own held-out predictions, on the patients it shares with us
    itrp = Path(a.data_root) / "compass_itrp"
    labels = pd.read_csv(itrp / "clinical_label.csv.gz", index_col=0)
    ft = F.set_index(["cohort", "sample"])["p"]
    cons_rows = P[P["model"] == "recipe:consensus"]
    for mode in ("PFT", "LFT"):
        cp = pd.read_csv(itrp / f"compass_loco_{mode}_seed42_predictions.tsv.gz", sep="\t",
                         index_col=0)
        ys, ours_p, comp_p = [], [], []
        for cohort in COMPASS_COHORTS:
            rows, pcomp, _ = _compass_rows(cons_rows, labels, cp, cohort)
            y = rows["y"].to_numpy(int)
            p = ft.loc[list(zip(rows["cohort"], rows["sample"].astype(str)))].to_numpy(float)
            print(f"{cohort} (shared {len(y)}): amu:compass {_auc(y, p):.3f}, COMPASS {mode} "
                  f"{_auc(y, pcomp):.3f}; amu:compass - COMPASS "
                  f"{_fmt(*_paired(y, p, pcomp, a.n_boot, a.seed))}")
            ys.append(y), ours_p.append(p), comp_p.append(pcomp)
        y, p, pcomp = (np.concatenate(v) for v in (ys, ours_p, comp_p))
        print(f"pooled (shared {len(y)}): amu:compass {_auc(y, p):.3f}, COMPASS {mode} "
              f"{_auc(y, pcomp):.3f}; amu:compass - COMPASS "
              f"{_fmt(*_paired(y, p, pcomp, a.n_boot, a.seed))}")


if __name__ == "__main__":
    main()
