"""Transform component: fit a transform on the given training rows of a cohort table and save
it as a ``TransformGraph`` artifact.

    art = run_transform("runs/x/cohort", "runs/x/transform", "cohort_z",
                        train_samples=train_ids)      # or train_cohorts=[...]
    t = load_transform(art.uri)                       # amu_tf.data.transforms.load_transform

The artifact folder holds ``transform.json`` + ``transform.npz`` (the fitted transform; the
folder itself is what ``load_transform`` reads), ``fit_samples.txt`` (the sample ids it was
fitted on, one per line) and ``transformed.csv.gz`` (sample, cohort, response and the 160
transformed values for every row of the input table, for inspection). ``artifact.json``
records the input table's hash, the parameters and, in ``properties``, the rows fitted on and
what was imputed.

Only the rows named as training rows are used to fit (no labels are ever used; with
``labeled_only`` only whether a row has one, as `amu run` fits it on the rows its final
models are trained on). When neither ``train_samples`` nor ``train_cohorts`` is given the
transform is fitted on every (labeled) row of the table; ``properties["fit_on_all_rows"]``
then says so, because a model must not be scored on
rows its transform was fitted on (for ``reference_z``/``paper --standardize``; ``rank`` and
``cohort_z`` on unseen cohorts do not learn from those rows beyond imputation means).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from amu_tf.artifacts import Artifact, ArtifactWriter, check_output_not_input
from amu_tf.data.cohort_table import gene_columns, load_cohort_table
from amu_tf.errors import InputDataError

TRANSFORMED_FILE = "transformed.csv.gz"
FIT_SAMPLES_FILE = "fit_samples.txt"


def select_fit_rows(df: pd.DataFrame, train_samples=None, train_cohorts=None) -> pd.DataFrame:
    """The training rows: by sample id, by cohort, or all rows."""
    if train_samples is not None:
        if "sample" not in df.columns:
            raise InputDataError("the table has no 'sample' column to select training rows by")
        wanted = [str(s) for s in train_samples]
        have = set(df["sample"].astype(str))
        unknown = [s for s in wanted if s not in have]
        if unknown:
            raise InputDataError(f"{len(unknown)} training sample id(s) are not in the table "
                                 f"(first: {unknown[0]!r})")
        rows = df[df["sample"].astype(str).isin(set(wanted))]
    elif train_cohorts:
        cohorts = sorted(df["cohort"].astype(str).unique()) if "cohort" in df.columns else []
        unknown = [c for c in train_cohorts if str(c) not in cohorts]
        if unknown:
            raise InputDataError(f"training cohort(s) {unknown} not in the table; it has "
                                 f"{cohorts}")
        rows = df[df["cohort"].astype(str).isin([str(c) for c in train_cohorts])]
    else:
        rows = df
    if rows.empty:
        raise InputDataError("no training rows selected")
    return rows.reset_index(drop=True)


def run_transform(table_uri, output_uri: str | os.PathLike, name: str = "cohort_z",
                  train_samples=None, train_cohorts=None, params: dict | None = None,
                  write_transformed: bool = True, labeled_only: bool = False) -> Artifact:
    """Fit transform ``name`` on the training rows of ``table_uri`` (``labeled_only``: only
    those with a label, the rows the train step fits a model on) and write a TransformGraph
    artifact at ``output_uri``. Returns the artifact."""
    from amu_tf.data.transforms import get_transform

    check_output_not_input(output_uri, [table_uri])
    df, table_art = load_cohort_table(table_uri)
    fit_rows = select_fit_rows(df, train_samples, train_cohorts)
    if labeled_only:
        fit_rows = fit_rows[fit_rows["response"].notna()].reset_index(drop=True)
        if fit_rows.empty:
            raise InputDataError("no labeled rows to fit the transform on")
    t = get_transform(name, **(params or {})).fit(fit_rows)
    fit_imp = t.fit_imputation_
    out = t.transform(df) if write_transformed else None
    all_imp = t.imputation_report() if write_transformed else None

    parameters = {"name": name, "params": t.get_params(),
                  "train_samples": None if train_samples is None else len(list(train_samples)),
                  "train_cohorts": list(train_cohorts) if train_cohorts else None,
                  "labeled_only": labeled_only}
    with ArtifactWriter(output_uri, "TransformGraph",
                        inputs=[table_art] if table_art else [], parameters=parameters) as w:
        t.save(w.path)
        ids = (fit_rows["sample"].astype(str) if "sample" in fit_rows.columns
               else pd.Series(range(len(fit_rows))).astype(str))
        (w.path / FIT_SAMPLES_FILE).write_text("\n".join(ids) + "\n")
        if out is not None:
            meta = [c for c in ("sample", "cohort", "response") if c in df.columns]
            frame = pd.concat([df[meta].reset_index(drop=True),
                               pd.DataFrame(out.astype(np.float64), columns=gene_columns())],
                              axis=1)
            frame.to_csv(w.path / TRANSFORMED_FILE, index=False, float_format="%.7g")
        w.properties = {
            "transform": t.name,
            "per_sample": t.per_sample,
            "n_fit_rows": int(len(fit_rows)),
            "n_table_rows": int(len(df)),
            # every row a model could be scored on (all labeled rows count as all)
            "fit_on_all_rows": train_samples is None and not train_cohorts,
            "labeled_only": labeled_only,
            "fit_cohorts": (sorted(fit_rows["cohort"].astype(str).unique())
                            if "cohort" in fit_rows.columns else []),
            "all_missing_genes": list(t.all_missing_genes_),
            "fit_imputation": fit_imp,
            "table_imputation": all_imp,
        }
    return w.artifact


def format_summary(art: Artifact) -> str:
    p = art.properties
    line = (f"{p['transform']} ({'per sample' if p['per_sample'] else 'needs a cohort'}): "
            f"fitted on {p['n_fit_rows']} rows of {', '.join(p['fit_cohorts']) or 'the table'}")
    if p["fit_on_all_rows"]:
        line += (f" ({'all labeled' if p.get('labeled_only') else 'all'} rows: do not score a "
                 "model on rows this transform was fitted on)")
    imp = p.get("table_imputation") or p["fit_imputation"]
    if imp and imp["n_cells"]:
        genes = ", ".join(f"{g} {n}" for g, n in list(imp["per_gene"].items())[:8])
        line += f"; imputed {imp['n_cells']} cells from training means ({genes})"
    return line
