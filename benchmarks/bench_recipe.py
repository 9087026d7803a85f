"""Time to a trained ``amu:paper``: the ``fast`` recipe vs the ``paper`` recipe at equal epochs.

For each dataset (the three shared cohorts, and the synthetic cohorts where there is
signal) in one process:

1. one grouped (by patient), stratified split of the labeled rows into train (3/4) and a
   held-out test part (1/4) (``grouped_cv_splits``, fold 0 of 4);
2. ``cohort_z`` fitted on the train rows only, applied to both parts;
3. ``ZooClassifier(model="amu:paper", recipe="fast")`` fitted on the train rows (early
   stopping on its own inner validation split), timed; its epochs run = E;
4. ``ZooClassifier(model="amu:paper", recipe="paper", epochs=E)`` (Adam 1e-5, no early
   stopping within E epochs) on the same rows, timed;
5. held-out AUC of both with stratified-bootstrap 95% CIs (1,000 resamples).

Run: ``.venv/bin/python benchmarks/bench_recipe.py [--datasets real,synthetic] [--seed 0]``.
Last line: ``fast_fit_s=<x> fast_auc=<y> paper_auc_equal_epochs=<z>`` (real cohorts).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_real(data_root):
    from components.ingest import run_ingest
    from amu_tf.data.cohort_table import labeled, load_cohort_table

    specs = sorted(str(p) for p in (ROOT / "examples" / "cohorts").glob("*.toml"))
    with tempfile.TemporaryDirectory() as tmp:
        art = run_ingest(specs, str(Path(tmp) / "table"), data_root=data_root)
        table, _ = load_cohort_table(art.uri)
    return labeled(table)


def load_synthetic(seed):
    from amu_tf.data.cohort_table import labeled
    from amu_tf.data.synthetic import make_synthetic_table

    table, _ = make_synthetic_table(seed=seed)
    return labeled(table)


def split(df, seed):
    from amu_tf.data.transforms import get_transform
    from amu_tf.evaluation.protocols import _patients
    from amu_tf.evaluation.splitters import grouped_cv_splits

    y = df["response"].to_numpy(dtype=int)
    fold = grouped_cv_splits(y, _patients(df), n_splits=4, seed=seed)[0]
    tr, te = df.iloc[fold.train], df.iloc[fold.test]
    t = get_transform("cohort_z").fit(tr)
    return t.transform(tr), y[fold.train], _patients(tr), t.transform(te), y[fold.test]


def fit_eval(recipe, Xtr, ytr, gtr, Xte, yte, seed, **params):
    from amu_tf.evaluation.metrics import metrics_with_ci
    from amu_tf.training import ZooClassifier

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    est = ZooClassifier(model="amu:paper", recipe=recipe, seed=seed, **params)
    est.fit(Xtr, ytr, groups=gtr)
    wall = time.perf_counter() - t0
    print(f"  ({recipe}: fitted in {wall:.1f} s, {est.epochs_run_} epochs)", flush=True)
    p = est.predict_proba(Xte)[:, 1]
    m = metrics_with_ci(yte, p, est.predict(Xte), n_boot=1000, seed=seed)["roc_auc"]
    return dict(recipe=recipe, epochs=est.epochs_run_, best=est.best_epoch_, fit_s=wall,
                s_per_epoch=est.fit_seconds_ / max(1, est.epochs_run_), auc=m, load=load,
                params=est.params_used_)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="real,synthetic")
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"),
                    help="folder of the shared cohorts [../shared/data beside the checkout]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fast-lr", type=float, default=None,
                    help="override the fast recipe's learning rate (for sweeps)")
    args = ap.parse_args(argv)

    rows, real = [], None
    for name in args.datasets.split(","):
        df = load_real(args.data_root) if name == "real" else load_synthetic(args.seed)
        Xtr, ytr, gtr, Xte, yte = split(df, args.seed)
        print(f"[{name}] train {len(ytr)} rows ({ytr.sum()} responders), "
              f"test {len(yte)} rows ({yte.sum()} responders)", flush=True)
        over = {} if args.fast_lr is None else {"learning_rate": args.fast_lr}
        fast = fit_eval("fast", Xtr, ytr, gtr, Xte, yte, args.seed, **over)
        paper = fit_eval("paper", Xtr, ytr, gtr, Xte, yte, args.seed, epochs=fast["epochs"])
        for r in (fast, paper):
            r["dataset"] = name
            rows.append(r)
            a = r["auc"]
            print(f"  {r['recipe']:5s} epochs={r['epochs']} (best {r['best']}) "
                  f"fit {r['fit_s']:.1f}s ({r['s_per_epoch']:.2f} s/epoch) "
                  f"AUC {a['value']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}] "
                  f"load {r['load']:.1f}", flush=True)
        if name == "real":
            real = (fast, paper)

    print("\n| dataset | recipe | epochs run (best) | fit s | s/epoch | held-out AUC [95% CI] "
          "| load avg |")
    print("|---|---|---:|---:|---:|---|---:|")
    for r in rows:
        a = r["auc"]
        print(f"| {r['dataset']} | {r['recipe']} | {r['epochs']} ({r['best']}) | "
              f"{r['fit_s']:.1f} | {r['s_per_epoch']:.2f} | {a['value']:.3f} "
              f"[{a['ci_low']:.3f}, {a['ci_high']:.3f}] | {r['load']:.1f} |")
    if real is None:
        real = (rows[0], rows[1])
    print(f"fast_fit_s={real[0]['fit_s']:.1f} fast_auc={real[0]['auc']['value']:.3f} "
          f"paper_auc_equal_epochs={real[1]['auc']['value']:.3f}")


if __name__ == "__main__":
    main()
