"""One leave-one-cohort-out fold of ``amu:compass`` (COMPASS's pre-trained encoder fine-tuned
under a small head, issue #23): train on every shared cohort but one, score the held-out one.

    .venv/bin/python benchmarks/bench_compass_finetune_fold.py --table runs/shared/cohort \\
        --held-out Liu2019 --readout mean --learning-rate 3e-3 --epochs 10 --patience 4

The full leave-one-cohort-out run (``bench_generalisation.py --models amu:compass``) takes
hours on a 2-core CPU; one fold says whether fine-tuning learns anything at all. Prints the
held-out ROC AUC with its 95% bootstrap CI, the spread of the probabilities, the epochs run
and the fit time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="a CohortTable folder (amu ingest)")
    ap.add_argument("--held-out", default="Liu2019")
    ap.add_argument("--readout", default="patient", choices=["patient", "mean"])
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--encoder-lr-scale", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--predictions", default=None,
                    help="also append the held-out rows' probabilities here (CSV: sample, "
                         "cohort, y, p), so that folds run one at a time can be pooled")
    a = ap.parse_args(argv)

    from amu_tf.data.cohort_table import read_table
    from amu_tf.evaluation.metrics import metrics_with_ci
    from amu_tf.kernels.build import cpu_model
    from amu_tf.training.model_bundle import ModelBundle
    from components.train import run_train

    table = read_table(a.table)
    cohorts = sorted(set(table["cohort"]) - {a.held_out})
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        art = run_train(table, Path(tmp) / "m", model="amu:compass", train_cohorts=cohorts,
                        seed=a.seed, epochs=a.epochs, patience=a.patience,
                        batch_size=a.batch_size, learning_rate=a.learning_rate,
                        encoder_lr_scale=a.encoder_lr_scale,
                        model_overrides={"readout": a.readout})
        fit = time.perf_counter() - t0
        bundle = ModelBundle.load(art.uri)
        test = table[(table["cohort"] == a.held_out) & table["response"].notna()]
        p = bundle.predict_proba(test)[:, 1]
        epochs = bundle.estimator.epochs_run_
    y = test["response"].to_numpy(int)
    if a.predictions:
        import pandas as pd

        out = pd.DataFrame({"sample": test["sample"].to_numpy(), "cohort": a.held_out,
                            "y": y, "p": p})
        target = Path(a.predictions)
        if target.exists() and target.stat().st_size > 0:
            done = pd.read_csv(target, dtype={"cohort": str})
            if (done["cohort"] == a.held_out).any():
                raise SystemExit(f"{target} already holds the {a.held_out} fold; remove it "
                                 "or write to another file")
        out.to_csv(target, mode="a", index=False,
                   header=not (target.exists() and target.stat().st_size > 0))
    m = metrics_with_ci(y, p, (p >= bundle.threshold).astype(int), n_boot=1000, seed=a.seed)
    auc, lo, hi = (m["roc_auc"][k] for k in ("value", "ci_low", "ci_high"))
    print(f"CPU: {cpu_model()}; amu:compass, readout {a.readout}, lr {a.learning_rate:g} "
          f"(encoder x{a.encoder_lr_scale:g}), {epochs} of {a.epochs} epochs, batch "
          f"{a.batch_size}; trained on {', '.join(cohorts)} in {fit:.0f} s")
    print(f"held out {a.held_out}: n {len(y)} ({y.sum()} responders), ROC AUC {auc:.3f} "
          f"[{lo:.3f}, {hi:.3f}]; probabilities {p.min():.3f}..{p.max():.3f} "
          f"(sd {p.std():.4f})")


if __name__ == "__main__":
    main()
