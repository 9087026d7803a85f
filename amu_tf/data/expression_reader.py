"""Read a published expression file and put every gene on the common log2 scale.

Layouts: ``genes_x_samples`` (GEO-style count CSV with an unnamed first column, or a TSV with
a ``gene_symbol`` first column; one column per sample) and ``samples_x_genes`` (first column
the sample id, one column per gene).

Units -> common scale (``to_log2_scale``):

* ``counts``: log2(CPM + 1), CPM over **all** genes in the file (library size = column sum).
* ``tpm``, ``fpkm``: log2(x + 1).
* ``log2(tpm+1)``: kept as it is.
* ``log2(tpm+0.001)``: TPM = 2**x - 0.001 (clipped at 0), then log2(TPM + 1).

Every gene is kept, named by its symbol (panel genes by their panel symbol). Duplicate rows
of one gene (two ids mapping to the same symbol): counts are summed
(reads of one gene split over two ids); for the other units the row with the highest mean is
kept (summing TPM of, e.g., a gene and its read-through id would double-count).

Every value in the file must be numeric and finite; counts, TPM and FPKM must be >= 0; sample
ids must be unique. Otherwise :class:`InputDataError` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf.errors import InputDataError
from amu_tf.data.gene_ids import map_to_symbols, read_ensembl_map
from amu_tf.panel import panel_symbols

LINEAR_UNITS = ("counts", "tpm", "fpkm")


def sep_for(path: Path, sep: str | None = None) -> str:
    if sep:
        return sep
    name = path.name.lower()
    return "," if name.endswith(".csv") or name.endswith(".csv.gz") else "\t"


def read_delimited(path: Path, sep: str | None, what: str, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with one-line errors for missing, empty and unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{what} file {path} does not exist")
    if path.stat().st_size == 0:
        raise InputDataError(f"{what} file {path} is empty")
    try:
        df = pd.read_csv(path, sep=sep_for(path, sep), **kwargs)
    except pd.errors.EmptyDataError:
        raise InputDataError(f"{what} file {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"cannot read {what} file {path}: {msg}") from None
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InputDataError(f"{what} file {path} has no data rows")
    return df


def _header(path: Path, sep: str | None) -> list[str]:
    hdr = read_delimited(path, sep, "expression", header=None, nrows=1, dtype=str)
    return ["" if pd.isna(v) else str(v).strip() for v in hdr.iloc[0].tolist()]


def _first_duplicate(values) -> str | None:
    seen = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def _numeric(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """All values as float, or InputDataError naming the first non-numeric cell."""
    obj = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    for c in obj:
        coerced = pd.to_numeric(df[c], errors="coerce")
        bad = coerced.isna() & df[c].notna()
        if bad.any():
            row = bad[bad].index[0]
            raise InputDataError(
                f"{where}: non-numeric value {df.at[row, c]!r} (gene {row}, sample {c})"
            )
        df[c] = coerced
    return df.astype(np.float64)


def to_log2_scale(values: np.ndarray, units: str) -> np.ndarray:
    """Convert a genes x samples matrix (all genes of the file) to the common log2 scale."""
    values = np.asarray(values, dtype=np.float64)
    if units == "counts":
        lib = values.sum(axis=0, keepdims=True)
        if (lib <= 0).any():
            raise InputDataError("a sample has a library size of 0 (all counts zero)")
        return np.log2(values / lib * 1e6 + 1.0)
    if units in ("tpm", "fpkm"):
        return np.log2(values + 1.0)
    if units == "log2(tpm+1)":
        return values
    if units == "log2(tpm+0.001)":
        tpm = np.clip(np.exp2(values) - 0.001, 0.0, None)
        return np.log2(tpm + 1.0)
    raise ValueError(f"unknown units {units!r}")


def read_expression(spec) -> tuple[pd.DataFrame, dict]:
    """Read ``spec``'s expression file.

    Returns ``(table, info)`` of :func:`expression_matrix`: samples x every gene on the common
    log2 scale, the panel genes first.
    """
    path = Path(spec.expression_file)
    where = f"cohort {spec.name}: expression file {path.name}"
    sep = spec.expression_sep
    header = _header(path, sep)
    df = read_delimited(path, sep, "expression", header=0, index_col=None, low_memory=False)
    if len(header) != df.shape[1]:
        raise InputDataError(f"{where}: header has {len(header)} fields, rows have {df.shape[1]}")

    if spec.layout == "genes_x_samples":
        id_col = spec.gene_column or df.columns[0]
        if id_col not in df.columns:
            raise InputDataError(f"{where}: no gene column {id_col!r}")
        pos = list(df.columns).index(id_col)
        samples = [h for i, h in enumerate(header) if i != pos]
        gene_ids = df[id_col].astype(str).str.strip().tolist()
        values = df.drop(columns=[id_col])
    else:
        id_col = df.columns[0]
        samples = df[id_col].astype(str).str.strip().tolist()
        gene_ids = header[1:]
        values = df.drop(columns=[id_col]).T
    if not samples or values.shape[0] == 0:
        raise InputDataError(f"{where}: no samples or no genes")
    dup = _first_duplicate(samples)
    if dup is not None:
        raise InputDataError(f"{where}: duplicate sample id {dup!r}")
    if any(s == "" for s in samples):
        raise InputDataError(f"{where}: a sample has an empty id")
    values.index = gene_ids
    values = _numeric(values, where)
    ens = read_ensembl_map(spec.ensembl_map) if spec.gene_id == "ensembl" else None
    return expression_matrix(values.to_numpy(), gene_ids, samples, spec.units, spec.gene_id,
                             ens, where)


def expression_matrix(arr, gene_ids, samples, units, gene_id, ensembl_map=None,
                      where="expression"):
    """Check a numeric genes x samples matrix (all genes of a file), convert it to the common
    log2 scale and name every gene by its symbol.

    Returns ``(table, info)``: ``table`` is samples x genes, the 160 panel symbols first in
    panel order (NaN for a panel gene absent from the file), then every other gene the ids
    map to, in file order; ``info`` has ``genes_in_file``, ``found`` and ``missing`` (panel
    symbols), ``duplicates`` (panel symbols merged), ``n_genes`` (columns kept) and
    ``unmapped`` (ids without a known symbol, left out).
    """
    arr = np.asarray(arr, dtype=np.float64)
    gene_ids = [str(g).strip() for g in gene_ids]
    samples = [str(s) for s in samples]
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputDataError(
            f"{where}: {int(bad.sum())} NaN/inf value(s), first at gene {gene_ids[r]}, sample {samples[c]}"
        )
    if units in LINEAR_UNITS and (arr < 0).any():
        r, c = np.argwhere(arr < 0)[0]
        raise InputDataError(
            f"{where}: negative value {arr[r, c]:g} (gene {gene_ids[r]}, sample {samples[c]}) "
            f"but units = {units!r}"
        )

    symbols = map_to_symbols(gene_ids, gene_id, ensembl_map, where=f"{where}: ")
    try:
        logv = to_log2_scale(arr, units)
    except InputDataError as exc:
        raise InputDataError(f"{where}: {exc}") from None

    panel = panel_symbols()
    in_panel = set(panel)
    rows_by_symbol: dict[str, list[int]] = {}
    for i, s in enumerate(symbols):
        if s is not None:
            rows_by_symbol.setdefault(s, []).append(i)
    merged = {}
    for s, rows in rows_by_symbol.items():
        if len(rows) == 1:
            merged[s] = logv[rows[0]]
        elif units == "counts":
            # sum counts of the duplicate ids; CPM is linear, so sum CPMs then log
            cpm = np.exp2(logv[rows]) - 1.0
            merged[s] = np.log2(cpm.sum(axis=0) + 1.0)
        else:
            best = rows[int(np.argmax(arr[rows].mean(axis=1)))]
            merged[s] = logv[best]
    others = [s for s in rows_by_symbol if s not in in_panel]
    columns = panel + others
    out = np.full((len(samples), len(columns)), np.nan)
    for j, s in enumerate(columns):
        if s in merged:
            out[:, j] = merged[s]
    table = pd.DataFrame(out, index=samples, columns=columns)
    info = {
        "genes_in_file": len(gene_ids),
        "found": [s for s in panel if s in rows_by_symbol],
        "missing": [s for s in panel if s not in rows_by_symbol],
        "duplicates": sorted(s for s, r in rows_by_symbol.items()
                             if len(r) > 1 and s in in_panel),
        "n_genes": len(rows_by_symbol),
        "unmapped": int(sum(sym is None for sym in symbols)),
    }
    return table, info


def panel_matrix(arr, gene_ids, samples, units, gene_id, ensembl_map=None, where="expression"):
    """:func:`expression_matrix` restricted to the 160 panel genes."""
    table, info = expression_matrix(arr, gene_ids, samples, units, gene_id, ensembl_map, where)
    return table[panel_symbols()], info
