"""Leave-one-cohort-out for ``recipe:compass-probe`` (issue #23) against every biomarker,
``recipe:consensus`` and COMPASS's own held-out predictions.

    .venv/bin/python benchmarks/bench_compass_generalisation.py \
        --auxiliary PANCANCER_TABLE --out benchmarks/results_compass_generalisation.md

``--scaler-fit training`` fits COMPASS's input min-max scaler once on the training rows
(frozen) instead of per cohort (the default), for the probe and the published head: run both
to measure what the choice does to the scores (issue #23; reported in ``docs/compass.md``).

On the four shared melanoma cohorts (``examples/cohorts/*.toml`` with ``../shared/data``):

1. LOCO (``amu_tf.evaluation.protocols``, protocol ``loco``) of the eight biomarkers,
   ``recipe:consensus`` and the probe (default: level and readout chosen with C by inner
   leave-one-cohort-out; each fixed level x readout, and ``output="direction"``, as labelled
   variants, ``--variants``): ROC AUC with its
   95% CI per held-out cohort and pooled; the paired difference to the best biomarker of each
   cohort (``compare_with_biomarkers``) and to ``recipe:consensus`` (the same resampled rows
   for both). Nothing fitted sees the held-out cohort's labels; the probe's min-max scaler and
   its feature z-scores of the held-out cohort read only that cohort's expression (as
   ``cohort_z``); its C is chosen by inner leave-one-cohort-out over the three training
   cohorts.
2. On the Hugo (GSE78220), Riaz (GSE91061_pre) and Liu (Liu2019) patients shared with
   ``compass_itrp/`` (COMPASS's ``Sample_id`` up to its first ``_`` is our patient id), the
   probe's LOCO predictions against COMPASS's own leave-one-cohort-out predictions
   (``compass_loco_{PFT,LFT}_seed42_predictions.tsv.gz``, column ``1``; COMPASS trained on
   about 1,000 pan-cancer patients), paired, on those patients with our labels.

The encoder features are cached under ``$AMU_TF_CACHE_DIR/compass/features/``, so a rerun
does not run the encoder again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BIOMARKERS = ["cd274", "cd8a", "cxcl9", "cytolytic", "ifng6", "gep18", "impres", "tide"]
PROBE = "recipe:compass-probe"
#: the head trained on COMPASS's published pan-cancer features (reads ``compass_itrp/``)
PUBLISHED = "recipe:compass-published"
VARIANTS = {  # label -> (level, readout, output)
    PROBE: ("auto", "auto", "direction"),
    PUBLISHED: ("auto", "pc1", "direction"),
    "compass-probe:auto-probability": ("auto", "auto", "probability"),
    "compass-probe:concept-pc1": ("concept", "pc1", "probability"),
    "compass-probe:concept-mean": ("concept", "mean", "probability"),
    "compass-probe:geneset-pc1": ("geneset", "pc1", "probability"),
    "compass-probe:geneset-pc1-direction": ("geneset", "pc1", "direction"),
    "compass-probe:geneset-mean": ("geneset", "mean", "probability"),
    # COMPASS's gene-level readout: one feature per gene (15,672), its weights read by gene
    "compass-probe:gene-mean": ("gene", "mean", "probability"),
    "compass-probe:gene-mean-direction": ("gene", "mean", "direction"),
}
#: genes listed per fold for a gene-level variant (largest weights each way)
TOP_GENES = 8
COMPASS_COHORTS = {"GSE78220": "Hugo", "GSE91061_pre": "Riaz", "Liu2019": "Liu"}
#: TCGA code of each pan-cancer cohort's cancer-type token (``../shared/data/cohorts_pancancer``)
PANCANCER_TYPES = {"Jung2019_Lung_benefit": "LUAD", "Limagne2022_Lung": "LUAD",
                   "Mariathasan2018_IMvigor210": "BLCA", "Miao2018_Kidney": "KIRC",
                   "Padron2022_Pancreas": "PAAD", "Ravi2023_Lung": "LUAD",
                   "Shiuan2021_Kidney": "KIRC", "Snyder2017_Urothelial": "BLCA",
                   "Thibaudin2023_Colorectal": "COAD", "Zhao2019_Brain_benefit": "GBM"}


def _cell(row, k="roc_auc"):
    return f"{row[k]:.3f} [{row[f'{k}_ci_low']:.3f}, {row[f'{k}_ci_high']:.3f}]"


def _paired(y, pa, pb, n_boot, seed):
    """AUC(a) - AUC(b) and its paired stratified-bootstrap 95% CI."""
    from amu_tf.evaluation.metrics import auc_rows, stratified_bootstrap_indices

    y = np.asarray(y, int)
    d = _auc(y, pa) - _auc(y, pb)
    idx = stratified_bootstrap_indices(y, n_boot, seed)
    b = auc_rows(y[idx], np.asarray(pa)[idx]) - auc_rows(y[idx], np.asarray(pb)[idx])
    b = b[np.isfinite(b)]
    return d, float(np.quantile(b, 0.025)), float(np.quantile(b, 0.975))


def _auc(y, p):
    from amu_tf.evaluation.metrics import auc_rows

    return float(auc_rows(np.asarray(y, int)[None], np.asarray(p, float)[None])[0])


def _fmt(d, lo, hi):
    return f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def _units(table_dir):
    art = json.loads((Path(table_dir) / "artifact.json").read_text())
    cohorts = art.get("properties", {}).get("cohorts", {})
    return {c: v["units"] for c, v in cohorts.items() if isinstance(v, dict) and "units" in v}


def _compass_rows(preds, labels, compass_preds, cohort):
    """Our LOCO rows of ``cohort`` that COMPASS also scored: ``(our rows, COMPASS p)``."""
    ours = preds[preds["cohort"] == cohort]
    lab = labels[labels["cohort"] == COMPASS_COHORTS[cohort]]
    key = lab["Sample_id"].astype(str).str.split("_").str[0]
    first = pd.Series(lab.index, index=key.to_numpy()).groupby(level=0).first()
    pid = ours["patient"].astype(str).str.split(":", n=1).str[1]
    keep = pid.isin(first.index) & first.reindex(pid).isin(compass_preds.index).to_numpy()
    ours = ours[keep.to_numpy()]
    ids = first.loc[pid[keep]].to_numpy()
    return ours, compass_preds.loc[ids, "1"].to_numpy(float), lab.loc[ids, "response_label"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--table", default=None, help="a CohortTable folder (skips ingest)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default=None, help="also write the Markdown here")
    ap.add_argument("--predictions", default=None, help="also write the LOCO predictions (csv)")
    ap.add_argument("--auxiliary", default=None,
                    help="a CohortTable of non-melanoma cohorts (amu ingest --data-root "
                         "../shared/data/cohorts_pancancer): also score the probe trained on "
                         "the other melanoma cohorts plus their labeled rows")
    ap.add_argument("--scaler-fit", default="per_cohort", choices=("per_cohort", "training"),
                    help="COMPASS's input min-max scaler for the probe and the published head: "
                         "per cohort (default; the held-out cohort's own expression) or one "
                         "scaler fitted on the training rows, frozen (issue #23: what the "
                         "choice does to the scores)")
    a = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from amu_tf.data.cohort_table import read_table
    from amu_tf.evaluation.biomarker_comparison import compare_with_biomarkers
    from amu_tf.evaluation.protocols import run_protocol
    from amu_tf.kernels.build import cpu_model
    from amu_tf.training import make_estimator

    t0 = time.perf_counter()
    table_dir = a.table
    if table_dir is None:
        from components.ingest import run_ingest

        specs = sorted(str(p) for p in (ROOT / "examples" / "cohorts").glob("*.toml"))
        table_dir = Path(tempfile.mkdtemp(prefix="amu_cgen-")) / "cohort"
        run_ingest(specs, table_dir, data_root=a.data_root)
    table = read_table(table_dir)
    units = _units(table_dir)
    variants = [v for v in a.variants.split(",") if v]
    models = {m: m for m in BIOMARKERS + ["recipe:consensus"]}
    fitted = {v: [] for v in variants}  # each fold's fitted probe, to report what it chose

    def factory(v):
        level, readout, output = VARIANTS[v]

        def make(seed):
            if v == PUBLISHED:
                est = make_estimator(PUBLISHED, seed=seed, cohort_units=units,
                                     published_dir=str(Path(a.data_root) / "compass_itrp"),
                                     scaler_fit=a.scaler_fit)
            else:
                est = make_estimator(PROBE, seed=seed, level=level, readout=readout,
                                     output=output, cohort_units=units,
                                     scaler_fit=a.scaler_fit)
            fitted[v].append(est)
            return est
        return make

    for v in variants:
        models[v] = factory(v)
    res = run_protocol(table, "loco", models, transform="cohort_z", seed=a.seed,
                       n_boot=a.n_boot, progress=True)
    if a.predictions:
        res.predictions.to_csv(a.predictions, index=False)
    cohorts = sorted(res.per_cohort["cohort"].unique())
    lines = [f"LOCO over {', '.join(cohorts)}; seed {a.seed}, {a.n_boot} bootstrap resamples; "
             f"COMPASS input scaler_fit {a.scaler_fit}; cohort units {units}; "
             f"CPU: {cpu_model()}; "
             f"{time.perf_counter() - t0:.0f} s in all.", "",
             "| model | " + " | ".join(cohorts) + " | pooled |",
             "|---|" + "---|" * (len(cohorts) + 1)]
    for m in models:
        pc = res.per_cohort[res.per_cohort["model"] == m].set_index("cohort")
        pooled = res.metrics[res.metrics["model"] == m].iloc[0]
        kind = " (biomarker)" if m in BIOMARKERS else ""
        lines.append(f"| {m}{kind} | " + " | ".join(_cell(pc.loc[c]) for c in cohorts)
                     + f" | {_cell(pooled)} |")
    trained = [m for m in models if m not in BIOMARKERS]
    cmp = compare_with_biomarkers(res, n_boot=a.n_boot, seed=a.seed)
    lines += ["", "Paired difference to the best biomarker of each held-out cohort (picked "
              "with hindsight), 95% CI:", "",
              "| model | " + " | ".join(cohorts) + " | pooled |",
              "|---|" + "---|" * (len(cohorts) + 1)]
    for m in trained:
        c = cmp[cmp["model"] == m].set_index("scope")
        lines.append(f"| {m} | " + " | ".join(
            _fmt(c.loc[s, "auc_difference"], c.loc[s, "ci_low"], c.loc[s, "ci_high"])
            + f" vs {c.loc[s, 'best_biomarker']}" for s in cohorts + ["pooled"]) + " |")

    P = res.predictions

    def block(m, rows=None):
        pm = P[P["model"] == m].sort_values("row", kind="mergesort")
        if rows is not None:
            pm = pm[pm["cohort"] == rows]
        return pm["y"].to_numpy(int), pm["p"].to_numpy(float)

    lines += ["", "Paired difference to `recipe:consensus`, 95% CI:", "",
              "| model | " + " | ".join(cohorts) + " | pooled |",
              "|---|" + "---|" * (len(cohorts) + 1)]
    for m in variants:
        cells = []
        for s in cohorts + [None]:
            y, pm = block(m, s)
            _, pc = block("recipe:consensus", s)
            cells.append(_fmt(*_paired(y, pm, pc, a.n_boot, a.seed)))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")

    lines += ["", "What the inner leave-one-cohort-out chose on each outer fold (training cohorts "
              "only; held-out cohort in the order of the table above):", ""]
    for v in variants:
        lines.append(f"- {v}: " + "; ".join(
            f"{c}: {e.features_}, C {e.C_:g} (inner AUC {e.cv_scores_[(e.features_, e.C_)]:.3f}"
            + (f"; {e.n_features_used_} features aligned on {e.n_matched_} matched training "
               f"rows, head on {e.head_rows_} published patients of {len(e.head_cohorts_)} "
               f"cohorts" if hasattr(e, "n_matched_") else "") + ")"
            for c, e in zip(cohorts, fitted[v])))

    gene_variants = [v for v in variants if VARIANTS[v][0] == "gene"]
    if gene_variants:
        from amu_tf.utils.transformers.convert_compass import load_compass_assets

        genes = np.asarray(load_compass_assets()["genes"])
        lines += ["", f"Gene-level variants: the {TOP_GENES} genes of largest weight each way "
                  "in each outer fold's final regression (features z-scored within cohort, so "
                  "a weight is per within-cohort sd of the gene's encoder readout):", ""]
        for v in gene_variants:
            for c, e in zip(cohorts, fitted[v]):
                w = e.score_weights()
                order = np.argsort(w)
                top, bottom = order[::-1][:TOP_GENES], order[:TOP_GENES]
                lines.append(f"- {v}, {c} held out: + " + ", ".join(genes[top])
                             + "; − " + ", ".join(genes[bottom]))

    # goals of the issue, for the default probe and the published-feature head
    for goal_model in [m for m in (PROBE, PUBLISHED) if m in variants]:
        pc = res.per_cohort[res.per_cohort["model"] == goal_model].set_index("cohort")["roc_auc"]
        best_bm = cmp[cmp["model"] == goal_model].set_index("scope")
        n_at = sum(best_bm.loc[c, "auc_difference"] >= 0 for c in cohorts)
        y, pp = block(goal_model)
        _, pcons = block("recipe:consensus")
        d, lo, hi = _paired(y, pp, pcons, a.n_boot, a.seed)
        lines += ["", f"Goals of #23 for `{goal_model}`: GSE91061_pre "
                  f"{pc.get('GSE91061_pre', np.nan):.3f} "
                  f"(goal >= 0.77: {'met' if pc.get('GSE91061_pre', 0) >= 0.77 else 'missed'}); "
                  f"Liu2019 {pc.get('Liu2019', np.nan):.3f} (goal >= 0.65: "
                  f"{'met' if pc.get('Liu2019', 0) >= 0.65 else 'missed'}); at or above the "
                  f"best biomarker on {n_at} of {len(cohorts)} cohorts (goal >= 3); pooled "
                  f"minus consensus {_fmt(d, lo, hi)} (goal >= +0.05 with the CI above 0: "
                  f"{'met' if d >= 0.05 and lo > 0 else 'missed'})."]

    # against COMPASS's own held-out predictions
    itrp = Path(a.data_root) / "compass_itrp"
    labels = pd.read_csv(itrp / "clinical_label.csv.gz", index_col=0)
    for mode in ("PFT", "LFT"):
        cp = pd.read_csv(itrp / f"compass_loco_{mode}_seed42_predictions.tsv.gz", sep="\t",
                         index_col=0)
        lines += ["", f"On the patients shared with COMPASS, against COMPASS's LOCO "
                  f"predictions ({mode}, seed 42), paired, our labels:", "",
                  "| cohort (shared, labels agree) | COMPASS | "
                  + " | ".join(variants) + " | recipe:consensus | best biomarker there | "
                  + " | ".join(f"{v} - COMPASS" for v in variants) + " |",
                  "|---|" + "---|" * (3 + 2 * len(variants))]
        pooled_y, pooled_c, pooled_v = [], [], {v: [] for v in variants}
        for cohort in COMPASS_COHORTS:
            ours, pcomp, lab = _compass_rows(P[P["model"] == variants[0]], labels, cp, cohort)
            rows = ours["row"].to_numpy()
            y = ours["y"].to_numpy(int)
            agree = int(((lab.to_numpy() == "R").astype(int) == y).sum())

            def p_of(m):
                pm = P[(P["model"] == m) & (P["cohort"] == cohort)].set_index("row")
                return pm.loc[rows, "p"].to_numpy(float)

            aucs = {m: _auc(y, p_of(m)) for m in BIOMARKERS}
            best = max(aucs, key=aucs.get)
            pv = {v: p_of(v) for v in variants}
            diffs = [_fmt(*_paired(y, pv[v], pcomp, a.n_boot, a.seed)) for v in variants]
            lines.append(f"| {cohort} ({len(y)}, {agree}) | {_auc(y, pcomp):.3f} | "
                         + " | ".join(f"{_auc(y, pv[v]):.3f}" for v in variants)
                         + f" | {_auc(y, p_of('recipe:consensus')):.3f} | {best} "
                         f"{aucs[best]:.3f} | " + " | ".join(diffs) + " |")
            pooled_y.append(y)
            pooled_c.append(pcomp)
            for v in variants:
                pooled_v[v].append(pv[v])
        y = np.concatenate(pooled_y)
        pcomp = np.concatenate(pooled_c)
        pv = {v: np.concatenate(pooled_v[v]) for v in variants}
        lines.append(f"| pooled ({len(y)}) | {_auc(y, pcomp):.3f} | "
                     + " | ".join(f"{_auc(y, pv[v]):.3f}" for v in variants) + " | | | "
                     + " | ".join(_fmt(*_paired(y, pv[v], pcomp, a.n_boot, a.seed))
                                  for v in variants) + " |")
    if a.auxiliary:
        lines += _auxiliary(a, table, units, res, cohorts)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)


def _auxiliary(a, table, units, res, cohorts):
    """Each melanoma cohort scored by the probe trained on the three other melanoma cohorts
    plus the auxiliary cohorts' labeled rows (protocol ``external``, one held-out cohort at a
    time), paired against the melanoma-only probe on the same rows."""
    from amu_tf.data.cohort_table import read_table
    from amu_tf.evaluation.protocols import run_protocol
    from amu_tf.training import make_estimator

    aux = read_table(a.auxiliary)
    aux_units = _units(a.auxiliary)
    labeled = sorted(aux.loc[aux["response"].notna(), "cohort"].astype(str).unique())
    aux = aux[aux["cohort"].astype(str).isin(labeled)]
    both = pd.concat([table, aux], ignore_index=True)
    label = PROBE + " + pan-cancer"
    preds = []
    for held in cohorts:
        est = make_estimator(PROBE, seed=a.seed, cohort_units={**units, **aux_units},
                             cohort_cancer_types={c: PANCANCER_TYPES[c] for c in labeled},
                             scaler_fit=a.scaler_fit)  # as the probe it is paired with
        train = [c for c in cohorts if c != held] + labeled
        r = run_protocol(both, "external", {label: est}, transform=None, seed=a.seed,
                         train_cohorts=train, test_cohorts=[held], n_boot=0, progress=False)
        preds.append(r.predictions)
    P = pd.concat(preds, ignore_index=True)
    base = res.predictions[res.predictions["model"] == PROBE]
    out = ["", f"Pan-cancer auxiliary training: `{PROBE}` trained on the other melanoma "
           f"cohorts plus {len(labeled)} labeled non-melanoma cohorts "
           f"({int(aux['response'].notna().sum())} patients: {', '.join(labeled)}; each "
           "with its TCGA cancer-type token), minus the melanoma-only probe, paired:", "",
           "| held out | melanoma only | + pan-cancer | difference [95% CI] |", "|---|---|---|---|"]
    ys, pa, pb = [], [], []
    for held in cohorts:
        m = base[base["cohort"] == held].set_index("sample")
        x = P[P["cohort"] == held].set_index("sample").loc[m.index]
        y = m["y"].to_numpy(int)
        out.append(f"| {held} | {_auc(y, m['p']):.3f} | {_auc(y, x['p']):.3f} | "
                   f"{_fmt(*_paired(y, x['p'].to_numpy(), m['p'].to_numpy(), a.n_boot, a.seed))} |")
        ys.append(y)
        pa.append(x["p"].to_numpy())
        pb.append(m["p"].to_numpy())
    y, pa, pb = np.concatenate(ys), np.concatenate(pa), np.concatenate(pb)
    out.append(f"| pooled | {_auc(y, pb):.3f} | {_auc(y, pa):.3f} | "
               f"{_fmt(*_paired(y, pa, pb, a.n_boot, a.seed))} |")
    return out


if __name__ == "__main__":
    main()
