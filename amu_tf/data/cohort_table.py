"""The tidy cohort table: the one format every component after ingest reads.

One row per sample. Metadata columns first (``META_COLUMNS``), then the 160 panel genes by
symbol in panel order, then every other gene of the cohorts' expression files, all on a
common log2 scale (counts -> log2 CPM over all genes; TPM/FPKM -> log2(x+1)). Models and
transforms choose their genes by name: the panel (:func:`gene_columns`, the default of
``amu:*``, ``cnn:*`` and the classical baselines) or a gene set (the biomarkers of
:mod:`amu_tf.biomarkers`). A gene absent from one cohort of a combined table is NaN there.
A panel gene absent from a cohort's expression file is an all-NaN column for that cohort's
rows (the transform imputes it from training statistics and reports it).

``response`` is 1.0 (CR/PR), 0.0 (SD/PD) or NaN (unlabeled: NE, MR, blank, ...), with the
reason in ``unlabeled_reason``. ``os_event``/``pfs_event`` are 1 for an event (death,
progression) and 0 for censored, whatever the source file's convention; times are in days.

Stored inside a ``CohortTable`` artifact as ``table.csv.gz`` (metadata and the panel genes:
small, readable, the exact values every panel model reads) and ``expression.h5ad`` (AnnData,
the convention of scanpy: ``obs`` = the metadata columns, ``var`` = every gene with its
``entrez_id`` and ``in_panel``, ``X`` = log2 expression as float32, NaN where a cohort lacks
the gene). :func:`read_table` joins the two; the genes outside the panel come from the
``.h5ad``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf.panel import panel_symbols

META_COLUMNS = [
    "sample",  # unique sample id (unique across cohorts in one table)
    "patient",  # patient id (several samples may share one)
    "cohort",  # cohort name
    "response",  # 1.0 responder (CR/PR), 0.0 non-responder (SD/PD), NaN unlabeled
    "response_raw",  # the source value (e.g. "PR", "NE")
    "unlabeled_reason",  # why response is NaN, else empty
    "timepoint",  # e.g. "pre", "on"
    "treatment",  # drug(s)
    "os_time",  # overall survival, days
    "os_event",  # 1 death, 0 censored
    "pfs_time",  # progression-free survival, days
    "pfs_event",  # 1 progression, 0 censored
]

TABLE_FILE = "table.csv.gz"
EXPRESSION_FILE = "expression.h5ad"
#: ``DataFrame.attrs`` key of ``{cohort: published unit}`` (``"counts"``, ``"tpm"``, ``"fpkm"``,
#: ...): set by :func:`read_table` from a CohortTable artifact and by ``amu predict`` from a
#: spec, read by the transforms whose arithmetic depends on the unit (COMPASS's input)
UNITS_ATTR = "cohort_units"


def cohort_units(df: pd.DataFrame) -> dict:
    """``{cohort: published unit}`` carried by the table (empty when it does not say)."""
    units = df.attrs.get(UNITS_ATTR)
    return {str(k): str(v) for k, v in units.items()} if isinstance(units, dict) else {}


def gene_columns() -> list[str]:
    """The 160 panel genes, in the models' input order."""
    return panel_symbols()


def all_gene_columns(df: pd.DataFrame) -> list[str]:
    """Every gene column of a table: the panel genes, then the others."""
    meta = set(META_COLUMNS)
    return [c for c in df.columns if c not in meta]


def empty_table() -> pd.DataFrame:
    return pd.DataFrame(columns=META_COLUMNS + gene_columns())


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a cohort table from a CSV file or a CohortTable artifact folder (with every gene
    of its ``expression.h5ad`` when there is one)."""
    path = Path(path)
    expression = None
    if path.is_dir():
        expression = path / EXPRESSION_FILE
        path = path / TABLE_FILE
    text_columns = ["sample", "patient", "cohort", "response_raw", "unlabeled_reason",
                    "timepoint", "treatment"]
    df = pd.read_csv(path, dtype={c: str for c in text_columns})
    for c in text_columns[3:]:
        if c in df:
            df[c] = df[c].fillna("")  # CSV turns empty strings into NaN; keep them empty
    if expression is not None and expression.is_file():
        df = _join_other_genes(df, expression)
    elif expression is not None:
        _check_no_genes_lost(df, expression.parent)
    else:  # a hand-made table CSV: its gene symbols get ingest's normalisation
        df = _normalise_gene_columns(df, str(path))
    check_table(df, str(path))
    if expression is not None:
        units = _recorded_units(expression.parent)
        if units:
            df.attrs[UNITS_ATTR] = units
    return df


def _recorded_units(folder: Path) -> dict:
    """``{cohort: unit}`` from a CohortTable artifact's metadata (empty if it has none)."""
    import json

    try:
        cohorts = json.loads((folder / "artifact.json").read_text())["properties"]["cohorts"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(cohorts, dict):
        return {}
    return {str(c): str(v["units"]) for c, v in cohorts.items()
            if isinstance(v, dict) and v.get("units")}


def _check_no_genes_lost(df: pd.DataFrame, folder: Path) -> None:
    """A CohortTable folder whose ``expression.h5ad`` is gone: refused when its artifact
    records more genes than ``table.csv.gz`` holds (a genome-wide model would silently read
    the panel only)."""
    import json

    from amu_tf.errors import ArtifactError

    try:
        recorded = json.loads((folder / "artifact.json").read_text())["properties"]["n_genes"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # a hand-made folder: nothing says it had more genes
    have = len(all_gene_columns(df))
    if isinstance(recorded, int) and recorded > have:
        raise ArtifactError(f"{folder} records {recorded} genes but its {EXPRESSION_FILE} (every "
                            f"gene beyond the panel) is missing, leaving {have}; ingest the "
                            "cohorts again")


#: what :func:`read_table` last changed in a table CSV's gene symbols (for the CLI's note)
LAST_SYMBOL_NOTES: dict = {}


def _normalise_gene_columns(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """The gene columns of a table CSV in their HGNC spelling, as ingest spells them
    (``amu_tf.data.gene_ids.normalise_symbols``: case, well-known aliases; mouse-like
    symbols refused). A spelling that lands on a gene given twice is refused."""
    from amu_tf.data.gene_ids import normalise_symbols
    from amu_tf.errors import InputDataError

    LAST_SYMBOL_NOTES.clear()
    genes = [c for c in all_gene_columns(df)
             if c not in ("response_raw", "unlabeled_reason", "timepoint", "treatment")]
    new, notes = normalise_symbols(genes, where=f"{where}: ")
    mapping = {g: n for g, n in zip(genes, new) if n and n != g}
    if not mapping:
        return df
    out = df.rename(columns=mapping)
    dup = out.columns[out.columns.duplicated()]
    if len(dup):
        olds = [g for g, n in zip(genes, new) if n == dup[0]]
        raise InputDataError(f"{where}: gene {dup[0]} is given twice (columns "
                             f"{', '.join(map(repr, olds))})")
    LAST_SYMBOL_NOTES.update(recased=notes["recased"], renamed=notes["renamed"], where=where)
    return out


def check_not_constant(df: pd.DataFrame, where: str = "the table") -> None:
    """Refuse a cohort of several samples in which every gene has the same value in every
    sample (a constant file): any model would give its samples one invented probability."""
    from amu_tf.errors import InputDataError

    genes = [c for c in all_gene_columns(df) if pd.api.types.is_numeric_dtype(df[c])]
    if not genes or "cohort" not in df.columns:
        return
    for key, rows in df.groupby(df["cohort"].astype(str), sort=True):
        if len(rows) < 2:
            continue
        x = rows[genes].to_numpy(np.float64)
        with warnings.catch_warnings():  # a gene missing in the whole cohort: all-NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.nanmax(x, axis=0) - np.nanmin(x, axis=0)
        if not np.any(spread[np.isfinite(spread)] > 0):
            raise InputDataError(f"{where}: cohort {key}: every gene has the same value in all "
                                 f"{len(rows)} samples (constant expression); no model can tell "
                                 "them apart: check the expression file")


def check_table(df: pd.DataFrame, where: str = "the table") -> None:
    """Labels are 1, 0 or empty; panel gene values are numbers and never infinite."""
    from amu_tf.errors import InputDataError

    if "response" in df.columns:
        r = pd.to_numeric(df["response"], errors="coerce")
        bad = (r.notna() & ~r.isin([0, 1])) | (r.isna() & df["response"].notna())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            sample = df["sample"].iloc[i] if "sample" in df.columns else i
            raw = df["response"].iloc[i]
            shown = repr(raw) if isinstance(raw, str) else f"{float(raw):g}"
            raise InputDataError(
                f"{where}: response {shown} (sample {sample}) is not a label: 1 (CR/PR), "
                "0 (SD/PD) or empty (unlabeled)")
    genes = [g for g in gene_columns() if g in df.columns]
    if genes:
        values = df[genes].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        text = df[genes].notna().to_numpy() & np.isnan(values)
        if text.any():
            i, j = np.argwhere(text)[0]
            raise InputDataError(f"{where}: gene {genes[j]} holds {str(df[genes[j]].iloc[i])!r} "
                                 "(not a number)")
        if np.isinf(values).any():
            i, j = np.argwhere(np.isinf(values))[0]
            raise InputDataError(f"{where}: gene {genes[j]} holds an infinite value "
                                 f"(row {i}); values must be finite log2 expression")
    check_not_constant(df, where)


def _join_other_genes(df: pd.DataFrame, h5ad: Path) -> pd.DataFrame:
    import anndata

    from amu_tf.errors import ArtifactError

    try:
        adata = anndata.read_h5ad(h5ad)
        in_panel = adata.var["in_panel"].to_numpy(dtype=bool)
    except PermissionError:  # unreadable, not damaged: the CLI names the file and why
        raise
    except Exception as exc:  # noqa: BLE001 - h5py/anndata raise OSError, KeyError, ...
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"{h5ad} is damaged: it cannot be read as AnnData/HDF5 ({why}); "
                            "ingest the cohorts again") from None
    if list(adata.obs_names) != df["sample"].astype(str).tolist():
        raise ArtifactError(f"{h5ad} does not hold the samples of {h5ad.parent / TABLE_FILE}")
    keep = ~in_panel
    if not keep.any():
        return df
    other = pd.DataFrame(np.asarray(adata.X[:, keep], dtype=np.float64),
                         columns=adata.var_names[keep], index=df.index)
    return pd.concat([df, other], axis=1)


def load_cohort_table(table) -> tuple[pd.DataFrame, "Artifact | None"]:
    """``(table, artifact_or_None)`` from a DataFrame, a CohortTable artifact folder or a table
    file (CSV, optionally gzipped). A file is recorded as an input artifact by its hash."""
    from amu_tf.artifacts import Artifact
    from amu_tf.errors import InputDataError

    if isinstance(table, pd.DataFrame):
        return table.reset_index(drop=True), None
    path = Path(table)
    if path.is_dir():
        art = Artifact.load(path, expected_type="CohortTable")
        return read_table(path), art
    if not path.is_file():
        raise InputDataError(f"cohort table {path} not found: no such file or artifact folder")
    try:
        df = read_table(path)
    except InputDataError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputDataError(f"cannot read cohort table {path}: {exc}") from None
    if LAST_SYMBOL_NOTES:  # said once, as ingest says it
        import sys

        n, renamed = LAST_SYMBOL_NOTES["recased"], LAST_SYMBOL_NOTES["renamed"]
        parts = ([f"{n} symbol(s) recased to their HGNC spelling"] if n else []) + (
            [f"renamed {', '.join(f'{a} -> {b}' for a, b in list(renamed.items())[:5])}"]
            if renamed else [])
        sys.stderr.write(f"note: {path}: {'; '.join(parts)}\n")
    return df, Artifact.for_file(path, type="CohortTable")


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """The metadata and panel genes as CSV (``table.csv.gz``)."""
    df = df[META_COLUMNS + gene_columns()]
    df.to_csv(path, index=False, float_format="%.6g")


def write_expression(df: pd.DataFrame, path: str | Path) -> None:
    """Every gene of the table as AnnData (``expression.h5ad``): ``obs`` the metadata, ``var``
    the genes (``entrez_id``, ``in_panel``), ``X`` float32 log2 expression."""
    import anndata

    from amu_tf.data.gene_ids import entrez_ids

    genes = all_gene_columns(df)
    panel = set(gene_columns())
    obs = df[META_COLUMNS].copy()
    for c in obs.columns:
        if obs[c].dtype == object:
            obs[c] = obs[c].astype(str).where(obs[c].notna(), "")
    obs.index = df["sample"].astype(str).to_numpy()
    var = pd.DataFrame({"entrez_id": entrez_ids(genes),
                        "in_panel": [g in panel for g in genes]}, index=pd.Index(genes))
    adata = anndata.AnnData(X=df[genes].to_numpy(dtype=np.float32), obs=obs, var=var)
    adata.write_h5ad(path)


def gene_matrix(df: pd.DataFrame) -> np.ndarray:
    """The (n_samples, 160) float matrix of panel genes, NaN where a gene is missing."""
    return df[gene_columns()].to_numpy(dtype=np.float64)


def labeled(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a response label."""
    return df[df["response"].notna()].reset_index(drop=True)
