"""Leave-one-cohort-out on the four shared cohorts: every transfer recipe and every
biomarker x every held-out cohort (issue #15).

    .venv/bin/python benchmarks/bench_generalisation.py                 # the table, seed 0
    .venv/bin/python benchmarks/bench_generalisation.py --seeds 0 1 2 3 4 --models recipe:stack
    .venv/bin/python benchmarks/bench_generalisation.py \
        --models recipe:consensus,recipe:compass-probe,recipe:compass-published     # issue #23
    .venv/bin/python benchmarks/bench_generalisation.py \
        --models amu:compass,recipe:consensus --epochs 20   # not run: hours on 2 CPU cores
    # (amu:compass's figures come from bench_compass_finetune_fold.py, docs/compass.md)

Prints (and writes with ``--out``) a Markdown table: ROC AUC with its 95% CI per held-out
cohort and pooled, then each trained model's paired AUC difference to the best biomarker of
each cohort (``amu_tf.evaluation.biomarker_comparison``), every model's paired difference to
``recipe:consensus`` (per cohort and pooled) with the model ``amu run`` would recommend by
its rule (``amu_tf.evaluation.recommendation``), and, with several seeds, the spread
of each model's AUCs over the seeds. Real data: ``../shared/data`` beside the checkout.

The COMPASS models (issue #23) get the cohorts' published units from the table's artifact
(COMPASS's input is log2(TPM + 1) of each cohort's unit) and ``recipe:compass-published``
reads COMPASS's published features from ``DATA_ROOT/compass_itrp``;
``bench_compass_generalisation.py`` adds their variants and the paired comparison with
COMPASS's own held-out predictions.
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

BIOMARKERS = ["cd274", "cd8a", "cxcl9", "cytolytic", "ifng6", "gep18", "impres", "tide"]
TRAINED = ["logreg", "amu:small", "recipe:consensus", "recipe:stack", "recipe:stack-direction",
           "recipe:immune-genes", "recipe:immune-amu", "recipe:panel-rank", "recipe:stack-loco",
           "recipe:stack-dro", "recipe:variable-logreg", "recipe:amu-pretrained",
           "recipe:amu-cohort-val"]


def _cell(row, k="roc_auc"):
    return f"{row[k]:.3f} [{row[f'{k}_ci_low']:.3f}, {row[f'{k}_ci_high']:.3f}]"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--table", default=None, help="a CohortTable folder (skips ingest)")
    ap.add_argument("--models", default=",".join(TRAINED))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default=None, help="also write the Markdown here")
    a = ap.parse_args(argv)

    from amu_tf.data.cohort_table import read_table
    from amu_tf.evaluation.biomarker_comparison import compare_with_biomarkers
    from amu_tf.evaluation.protocols import run_protocol
    from amu_tf.evaluation.recommendation import recommend
    from amu_tf.kernels.build import cpu_model
    from pipelines.defaults import trains_a_zoo_model

    t0 = time.perf_counter()
    table_dir = a.table
    if table_dir is None:
        from components.ingest import run_ingest

        specs = sorted(str(p) for p in (ROOT / "examples" / "cohorts").glob("*.toml"))
        table_dir = Path(tempfile.mkdtemp(prefix="amu_gen-")) / "cohort"
        run_ingest(specs, table_dir, data_root=a.data_root)
    table = read_table(table_dir)
    trained = [m for m in a.models.split(",") if m]
    models = BIOMARKERS + trained
    zoo = {"epochs": a.epochs, "patience": a.patience}
    # epochs/patience for the zoo models and the recipes that train one
    params = {m: dict(zoo) for m in trained if trains_a_zoo_model(m)}
    from amu_tf.data.cohort_table import cohort_units

    units = cohort_units(table)  # a CohortTable folder records them; a CSV does not
    for m in trained:
        if m in ("recipe:compass-probe", "recipe:compass-published"):
            params[m] = {"cohort_units": units}
        if m == "recipe:compass-published":
            params[m]["published_dir"] = str(Path(a.data_root) / "compass_itrp")

    runs = {}
    for seed in a.seeds:
        ts = time.perf_counter()
        runs[seed] = run_protocol(table, "loco", models, transform="cohort_z", seed=seed,
                                  n_boot=a.n_boot, estimator_params=params, progress=True)
        print(f"seed {seed}: {time.perf_counter() - ts:.0f} s", file=sys.stderr, flush=True)
    first = runs[a.seeds[0]]
    cohorts = sorted(first.per_cohort["cohort"].unique())
    lines = [f"LOCO over {', '.join(cohorts)}; seed {a.seeds[0]}, {a.n_boot} bootstrap "
             f"resamples; zoo models {a.epochs} epochs max, patience {a.patience}; "
             f"CPU: {cpu_model()}; {time.perf_counter() - t0:.0f} s in all.", "",
             "| model | " + " | ".join(cohorts) + " | pooled |",
             "|---|" + "---|" * (len(cohorts) + 1)]
    for m in models:
        pc = first.per_cohort[first.per_cohort["model"] == m].set_index("cohort")
        pooled = first.metrics[first.metrics["model"] == m].iloc[0]
        kind = " (biomarker)" if m in BIOMARKERS else ""
        lines.append(f"| {m}{kind} | " + " | ".join(_cell(pc.loc[c]) for c in cohorts)
                     + f" | {_cell(pooled)} |")
    cmp = compare_with_biomarkers(first, n_boot=a.n_boot, seed=a.seeds[0])
    lines += ["", "Paired difference to the best biomarker of each held-out cohort (AUC model "
              "minus AUC biomarker, 95% CI; the biomarker picked with hindsight):", "",
              "| model | " + " | ".join(cohorts) + " | pooled |",
              "|---|" + "---|" * (len(cohorts) + 1)]
    for m in trained:
        c = cmp[cmp["model"] == m].set_index("scope")
        cells = [f"{c.loc[s, 'auc_difference']:+.3f} [{c.loc[s, 'ci_low']:+.3f}, "
                 f"{c.loc[s, 'ci_high']:+.3f}] vs {c.loc[s, 'best_biomarker']}"
                 for s in cohorts + ["pooled"]]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    rec = recommend(first, n_boot=a.n_boot, seed=a.seeds[0])
    if rec is not None:  # recipe:consensus among the models: `amu run`'s rule, measured
        lines += ["", f"Paired difference to {rec['baseline']} (AUC model minus AUC "
                  f"{rec['baseline']}, 95% CI; every other model, biomarkers included) and "
                  "`amu run`'s recommendation rule "
                  "(`amu_tf/evaluation/recommendation.py`):", "",
                  "| model | " + " | ".join(cohorts) + " | pooled | qualifies |",
                  "|---|" + "---|" * (len(cohorts) + 2)]
        for r in rec["candidates"]:
            cells = [(lambda d: f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]")(
                r["per_cohort_difference"][c]) if c in r["per_cohort_difference"] else ""
                for c in cohorts]
            lines.append(f"| {r['model']} | " + " | ".join(cells) +
                         f" | {r['auc_difference']:+.3f} [{r['ci_low']:+.3f}, "
                         f"{r['ci_high']:+.3f}] | {'yes' if r['qualifies'] else 'no'} |")
        lines += ["", f"Recommended for a new cohort: **{rec['recommended']}** ({rec['why']})."]
    if len(a.seeds) > 1:
        lines += ["", f"Spread over seeds {a.seeds} (ROC AUC: mean, min-max):", "",
                  "| model | " + " | ".join(cohorts) + " | pooled |",
                  "|---|" + "---|" * (len(cohorts) + 1)]
        for m in trained:
            cells = []
            for scope in cohorts + ["pooled"]:
                vals = []
                for r in runs.values():
                    src = (r.metrics if scope == "pooled"
                           else r.per_cohort[r.per_cohort["cohort"] == scope])
                    vals.append(float(src[src["model"] == m]["roc_auc"].iloc[0]))
                cells.append(f"{np.mean(vals):.3f} ({min(vals):.3f}-{max(vals):.3f})")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
