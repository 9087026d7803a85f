"""Read one cohort (a :class:`CohortSpec`) into the tidy cohort table plus a summary.

Every expression sample becomes a row (samples without a clinical record are kept,
unlabeled, reason "no clinical record"); clinical rows without expression are dropped and
counted. Patient ids are qualified by the cohort name (``GSE78220:Pt1``) so that two cohorts'
``Pt1`` are not mistaken for one patient. Panel genes absent from a file stay NaN (the
transform imputes them from training statistics); a cohort with fewer than
``spec.min_panel_fraction`` (default 80%, i.e. 128 of 160) panel genes is refused, and one
with no panel gene at all is refused with its own message.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from amu_tf.data.clinical_reader import NO_RECORD, read_clinical
from amu_tf.data.cohort_table import META_COLUMNS
from amu_tf.data.expression_reader import read_expression
from amu_tf.errors import InputDataError
from amu_tf.panel import N_GENES


def check_panel_coverage(spec, info: dict) -> None:
    n_found = len(info["found"])
    if n_found == 0:
        raise InputDataError(
            f"cohort {spec.name}: no panel genes found among {info['genes_in_file']} gene ids "
            f"(gene_id = {spec.gene_id!r})"
        )
    need = int(np.ceil(spec.min_panel_fraction * N_GENES))
    if n_found < need:
        raise InputDataError(
            f"cohort {spec.name}: only {n_found}/{N_GENES} panel genes found, need {need} "
            f"(min_panel_fraction = {spec.min_panel_fraction:g})"
        )


def assemble_cohort(spec, expr: pd.DataFrame, info: dict, clin: pd.DataFrame):
    """Join the panel expression (samples x genes) and clinical metadata into the table."""
    check_panel_coverage(spec, info)
    samples = list(expr.index)
    in_clin = [s for s in samples if s in clin.index]
    if not in_clin:
        raise InputDataError(
            f"cohort {spec.name}: no expression sample id matches the clinical column "
            f"{spec.sample_column!r} (e.g. {samples[0]!r} vs {clin.index[0]!r})"
        )
    meta = clin.reindex(samples)
    no_clin = meta["response_raw"].isna().to_numpy()
    meta.loc[no_clin, "patient"] = np.asarray(samples, dtype=object)[no_clin]
    meta.loc[no_clin, "response_raw"] = ""
    meta.loc[no_clin, "unlabeled_reason"] = NO_RECORD
    meta["patient"] = [f"{spec.name}:{p}" for p in meta["patient"]]
    meta["cohort"] = spec.name
    meta["sample"] = samples
    table = pd.concat([meta.reset_index(drop=True), expr.reset_index(drop=True)], axis=1)
    table["unlabeled_reason"] = table["unlabeled_reason"].fillna("")
    table = table[META_COLUMNS + list(expr.columns)]

    reasons = Counter(r for r in table["unlabeled_reason"] if r)
    summary = {
        "cohort": spec.name,
        "spec": str(spec.spec_file) if spec.spec_file else None,
        "units": spec.units,
        "gene_id": spec.gene_id,
        "samples": int(len(table)),
        "labeled": int(table["response"].notna().sum()),
        "responders": int((table["response"] == 1).sum()),
        "genes_found": len(info["found"]),
        "genes_kept": int(info.get("n_genes", len(info["found"]))),
        "n_panel": N_GENES,
        "missing_genes": info["missing"],
        "duplicate_genes": info["duplicates"],
        # every symbol on more than one row of the file, panel or not (merged as the panel's)
        "duplicate_genes_all": info["duplicates_all"],
        "genes_in_file": info["genes_in_file"],
        # symbols normalised at ingest (amu_tf.data.gene_ids.normalise_symbols)
        "symbols_recased": int(info.get("recased", 0)),
        "symbols_renamed": dict(info.get("renamed", {})),
        "species": getattr(spec, "species", "human"),
        "unlabeled": dict(reasons),
        "expression_without_clinical": int(no_clin.sum()),
        "clinical_without_expression": int(len(clin) - len(in_clin)),
    }
    return table, summary


def read_cohort(spec) -> tuple[pd.DataFrame, dict]:
    """Read ``spec``'s files; returns ``(table, summary)``."""
    spec.check_files()
    expr, info = read_expression(spec)
    check_panel_coverage(spec, info)
    clin = read_clinical(spec)
    return assemble_cohort(spec, expr, info, clin)
