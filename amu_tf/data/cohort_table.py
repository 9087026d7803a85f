"""The tidy cohort table: the one format every component after ingest reads.

One row per sample. Metadata columns first (``META_COLUMNS``), then the 160 panel genes by
symbol in panel order, on a common log2 scale (counts -> log2 CPM; TPM/FPKM -> log2(x+1)).
A panel gene absent from a cohort's expression file is an all-NaN column for that cohort's
rows (the transform imputes it from training statistics and reports it).

``response`` is 1.0 (CR/PR), 0.0 (SD/PD) or NaN (unlabeled: NE, MR, blank, ...), with the
reason in ``unlabeled_reason``. ``os_event``/``pfs_event`` are 1 for an event (death,
progression) and 0 for censored, whatever the source file's convention; times are in days.

Stored as ``table.csv.gz`` inside a ``CohortTable`` artifact.
"""

from __future__ import annotations

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


def gene_columns() -> list[str]:
    return panel_symbols()


def empty_table() -> pd.DataFrame:
    return pd.DataFrame(columns=META_COLUMNS + gene_columns())


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a cohort table from a CSV file or a CohortTable artifact folder."""
    path = Path(path)
    if path.is_dir():
        path = path / TABLE_FILE
    text_columns = ["sample", "patient", "cohort", "response_raw", "unlabeled_reason",
                    "timepoint", "treatment"]
    df = pd.read_csv(path, dtype={c: str for c in text_columns})
    for c in text_columns[3:]:
        if c in df:
            df[c] = df[c].fillna("")  # CSV turns empty strings into NaN; keep them empty
    return df


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
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputDataError(f"cannot read cohort table {path}: {exc}") from None
    return df, Artifact.for_file(path, type="CohortTable")


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    df = df[META_COLUMNS + gene_columns()]
    df.to_csv(path, index=False, float_format="%.6g")


def gene_matrix(df: pd.DataFrame) -> np.ndarray:
    """The (n_samples, 160) float matrix of panel genes, NaN where a gene is missing."""
    return df[gene_columns()].to_numpy(dtype=np.float64)


def labeled(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a response label."""
    return df[df["response"].notna()].reset_index(drop=True)
