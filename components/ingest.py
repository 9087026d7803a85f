"""Ingest: cohort specs (+ the files they point to) -> one CohortTable artifact.

    art = run_ingest(["examples/cohorts/GSE78220.toml"], "runs/x/cohort", data_root="../shared/data")
    table, summary = ingest_cohort("examples/cohorts/GSE78220.toml", data_root="../shared/data")

The reading rules (rows kept, patient ids qualified by cohort, missing-gene policy) are in
``amu_tf.data.cohort_reader``. Sample ids shared by two cohorts are qualified as
``cohort:sample`` in the combined table.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pandas as pd

from amu_tf.artifacts import Artifact, ArtifactWriter
from amu_tf.data.cohort_reader import read_cohort
from amu_tf.data.cohort_spec import CohortSpec
from amu_tf.data.cohort_table import (EXPRESSION_FILE, META_COLUMNS, TABLE_FILE,
                                     write_expression, write_table)
from amu_tf.errors import SpecError


def load_spec(spec, data_root=None) -> CohortSpec:
    if isinstance(spec, CohortSpec):
        return spec
    return CohortSpec.from_toml(spec, data_root=data_root)


def ingest_cohort(spec, data_root: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """Read one cohort (a spec path or :class:`CohortSpec`). Returns ``(table, summary)``: the
    cohort table (contract of ``amu_tf.data.cohort_table``) and a dict of counts
    (samples, labeled, responders, genes_found, missing_genes, unlabeled reasons, ...)."""
    return read_cohort(load_spec(spec, data_root))


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
    dup = s["duplicate_genes_all"]
    if dup:
        how = "counts summed" if s.get("units") == "counts" else "the row with the highest mean kept"
        line += (f"; {len(dup)} gene symbol(s) on more than one row, merged ({how}): "
                 + ", ".join(dup[:6]) + (", ..." if len(dup) > 6 else ""))
    if s.get("symbols_renamed"):
        renamed = list(s["symbols_renamed"].items())
        line += "; renamed " + ", ".join(f"{a} -> {b}" for a, b in renamed[:6]) + (
            f", ... ({len(renamed)})" if len(renamed) > 6 else "")
    if s.get("symbols_recased"):
        line += f"; {s['symbols_recased']} symbols upper-cased to their HGNC spelling"
    if s.get("species", "human") != "human":
        line += f"; {s['species']} symbols read as their human orthologues' spelling"
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
        write_expression(table, Path(w.path) / EXPRESSION_FILE)
        w.properties = {
            "cohorts": summaries,
            "n_samples": int(len(table)),
            "n_genes": int(table.shape[1] - len(META_COLUMNS)),
            "renamed_samples": int(clash.sum()),
        }
    return w.artifact
