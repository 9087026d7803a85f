"""Ingest: cohort specs (+ the files they point to) -> one CohortTable artifact.

    art = run_ingest(["examples/cohorts/GSE78220.toml"], "runs/x/cohort", data_root="../shared/data")
    table, summary = ingest_cohort("examples/cohorts/GSE78220.toml", data_root="../shared/data")

Every expression sample becomes a row (samples without a clinical record are kept,
unlabeled, reason "no clinical record"); clinical rows without expression are dropped and
counted. Patient ids are qualified by the cohort name (``GSE78220:Pt1``) so that two cohorts'
``Pt1`` are not mistaken for one patient. Panel genes absent from a file stay NaN (the
transform imputes them from training statistics); a cohort with fewer than
``min_panel_fraction`` (default 80%, i.e. 128 of 160) panel genes is refused.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf.artifacts import Artifact, ArtifactWriter
from amu_tf.data.clinical_reader import NO_RECORD, read_clinical
from amu_tf.data.cohort_spec import CohortSpec
from amu_tf.data.cohort_table import META_COLUMNS, TABLE_FILE, gene_columns, write_table
from amu_tf.data.expression_reader import read_expression
from amu_tf.errors import InputDataError, SpecError
from amu_tf.panel import N_GENES


def load_spec(spec, data_root=None) -> CohortSpec:
    if isinstance(spec, CohortSpec):
        return spec
    return CohortSpec.from_toml(spec, data_root=data_root)


def ingest_cohort(spec, data_root: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """Read one cohort. Returns ``(table, summary)``: the cohort table (contract of
    ``amu_tf.data.cohort_table``) and a dict of counts for the summary line."""
    spec = load_spec(spec, data_root)
    spec.check_files()
    expr, info = read_expression(spec)
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
    clin = read_clinical(spec)
    samples = list(expr.index)
    in_clin = [s for s in samples if s in clin.index]
    if not in_clin:
        raise InputDataError(
            f"cohort {spec.name}: no expression sample id matches the clinical column "
            f"{spec.sample_column!r} (e.g. {samples[0]!r} vs {clin.index[0]!r})"
        )
    meta = clin.reindex(samples)
    missing_clin = meta["response_raw"].isna()
    meta.loc[missing_clin, "patient"] = np.asarray(samples, dtype=object)[missing_clin.to_numpy()]
    meta.loc[missing_clin, "response_raw"] = ""
    meta.loc[missing_clin, "unlabeled_reason"] = NO_RECORD
    meta["patient"] = [f"{spec.name}:{p}" for p in meta["patient"]]
    meta["cohort"] = spec.name
    meta["sample"] = samples
    table = pd.concat([meta.reset_index(drop=True), expr.reset_index(drop=True)], axis=1)
    table["unlabeled_reason"] = table["unlabeled_reason"].fillna("")
    table = table[META_COLUMNS + gene_columns()]

    reasons = Counter(r for r in table["unlabeled_reason"] if r)
    summary = {
        "cohort": spec.name,
        "spec": str(spec.spec_file) if spec.spec_file else None,
        "units": spec.units,
        "gene_id": spec.gene_id,
        "samples": int(len(table)),
        "labeled": int(table["response"].notna().sum()),
        "responders": int((table["response"] == 1).sum()),
        "genes_found": n_found,
        "n_panel": N_GENES,
        "missing_genes": info["missing"],
        "duplicate_genes": info["duplicates"],
        "genes_in_file": info["genes_in_file"],
        "unlabeled": dict(reasons),
        "expression_without_clinical": int(missing_clin.sum()),
        "clinical_without_expression": int(len(clin) - len(in_clin)),
    }
    return table, summary


def format_summary(s: dict) -> str:
    """One line: samples, labeled, responders, panel genes found (missing), unlabeled (why)."""
    line = (
        f"{s['cohort']}: {s['samples']} samples, {s['labeled']} labeled, "
        f"{s['responders']} responders, {s['genes_found']}/{s['n_panel']} panel genes"
    )
    if s["missing_genes"]:
        miss = s["missing_genes"]
        shown = ", ".join(miss[:8]) + (f", ... ({len(miss)})" if len(miss) > 8 else "")
        line += f" (missing: {shown})"
    n_unl = s["samples"] - s["labeled"]
    if n_unl:
        why = ", ".join(f"{n} {r}" for r, n in sorted(s["unlabeled"].items()))
        line += f"; {n_unl} unlabeled ({why})"
    else:
        line += "; 0 unlabeled"
    if s["clinical_without_expression"]:
        line += f"; {s['clinical_without_expression']} clinical rows without expression"
    return line


def run_ingest(spec_paths, output_uri, data_root=None) -> Artifact:
    """Ingest every spec and write one CohortTable artifact at ``output_uri``.

    Everything is read and checked before anything is written; the artifact appears only
    when complete. Properties: ``cohorts`` = {cohort name: summary dict}, ``n_samples``.
    """
    if isinstance(spec_paths, (str, os.PathLike, CohortSpec)):
        spec_paths = [spec_paths]
    if not spec_paths:
        raise SpecError("no cohort spec given")
    specs = [load_spec(p, data_root) for p in spec_paths]
    names = [s.name for s in specs]
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise SpecError(f"cohort name {dup[0]!r} is given by more than one spec")
    tables, summaries = [], {}
    for spec in specs:
        t, s = ingest_cohort(spec)
        tables.append(t)
        summaries[spec.name] = s
    table = pd.concat(tables, ignore_index=True)
    # sample ids must be unique in one table: qualify the ones two cohorts share
    clash = table["sample"].duplicated(keep=False)
    if clash.any():
        table.loc[clash, "sample"] = table.loc[clash, "cohort"] + ":" + table.loc[clash, "sample"]
    inputs = []
    for spec in specs:
        if spec.spec_file is not None:
            inputs.append(Artifact.for_file(spec.spec_file))
        inputs.extend(Artifact.for_file(f) for f in spec.data_files())
    params = {
        "specs": [str(s.spec_file) if s.spec_file else s.name for s in specs],
        "data_root": str(data_root) if data_root else None,
    }
    with ArtifactWriter(output_uri, "CohortTable", inputs=inputs, parameters=params) as w:
        write_table(table, Path(w.path) / TABLE_FILE)
        w.properties = {
            "cohorts": summaries,
            "n_samples": int(len(table)),
            "renamed_samples": int(clash.sum()),
        }
    return w.artifact
