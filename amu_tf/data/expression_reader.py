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

Plausibility of the declared units (:func:`check_units`, before any conversion; the message
names the file, the sample and the unit the values look like):

* ``counts``: every sample's library size (column sum) must be finite (a count of 1e308
  overflows it to inf), > 0 and at most 1e11 reads; the values must be whole numbers or nearly: in each sample at
  least half of the non-zero values lie within 0.01 of an integer (raw counts: all of them;
  RSEM's expected counts are fractional only for reads shared between genes, a minority;
  TPM, FPKM and log2 values are fractional almost everywhere). Estimated counts that are
  mostly fractional (e.g. summed salmon NumReads) must be rounded first. A file whose every
  sample sums to 1e6 (within 0.5%) is TPM, not counts.
* ``tpm``, ``fpkm``: column sums finite; a TPM column sums to 1e6 (a subset of genes to
  less), so sums above 2e6 are refused (whole numbers: raw counts; else perhaps FPKM), FPKM
  sums above 1e8 too. With a genome-wide file (>= 1000 genes) a sample whose largest value is
  at most 25 is log2 data, and a sum below 1e4 is refused. A panel-sized file cannot be told
  from log2 data by its sums, so it is not checked that way.
* ``log2(tpm+1)``, ``log2(tpm+0.001)``: every value in [-20, 25] (log2 of a TPM is at most
  log2(1e6) ~ 20; the floor of log2(TPM + 0.001) is log2(0.001) ~ -10). Raw counts or linear
  TPM declared as log2 have values in the thousands or millions and are refused ("values up
  to 5.4e6 look like raw counts, not log2(tpm+1)").

The converted matrix is checked again: nothing non-finite ever reaches a table.
:func:`check_log2_range` is the same log2 range check for tables already on the common
scale (``amu predict`` runs it on its input).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf.errors import InputDataError
from amu_tf.data.gene_ids import map_to_symbols, read_ensembl_map
from amu_tf.panel import panel_symbols

LINEAR_UNITS = ("counts", "tpm", "fpkm")
LOG2_UNITS = ("log2(tpm+1)", "log2(tpm+0.001)")

# plausibility limits (see the module docstring)
LOG2_MAX = 25.0  # log2 of 3.4e7: beyond anything a TPM (at most 1e6) can reach
LOG2_MIN = -20.0  # log2 of 1e-6: far below the log2(0.001) floor of log2(TPM + 0.001)
INTEGRAL_TOL = 0.01  # |x - round(x)| for a "whole" count
MIN_INTEGRAL_SHARE = 0.5  # of a counts sample's non-zero values
TPM_SUM = 1e6
TPM_MAX_SUM = 2e6
FPKM_MAX_SUM = 1e8
LINEAR_MIN_SUM = 1e4  # genome-wide files only
COUNTS_MAX_LIBRARY = 1e11  # reads in one sample: the deepest libraries hold ~1e9
GENOME_WIDE = 1000  # genes in a file for the genome-wide checks


def sep_for(path: Path, sep: str | None = None) -> str:
    if sep:
        return sep
    name = path.name.lower()
    return "," if name.endswith(".csv") or name.endswith(".csv.gz") else "\t"


def read_delimited(path: Path, sep: str | None, what: str, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with one-line errors for missing, empty and unreadable files."""
    path = Path(path)
    if path.is_dir():
        raise InputDataError(f"{what} file {path} is a directory, not a file")
    if path.exists() and not path.is_file():
        raise InputDataError(f"{what} file {path} is not a regular file (a device or pipe?)")
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
    hdr = read_delimited(path, sep, "expression", header=None, nrows=1, dtype=str,
                         keep_default_na=False)
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


def _num(x: float) -> str:
    """A number for a message: 5.4e6, 1e308, 31, 0.25."""
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{x:.2g}")


def _integral_share(col: np.ndarray) -> tuple[float, int]:
    """(share of the non-zero finite values within INTEGRAL_TOL of an integer, their count)."""
    v = col[np.isfinite(col) & (col != 0)]
    if v.size == 0:
        return 1.0, 0
    return float(np.mean(np.abs(v - np.round(v)) <= INTEGRAL_TOL)), int(v.size)


def likely_unit(col: np.ndarray) -> str:
    """What one sample's values (finite ones) look like, for a message."""
    v = np.asarray(col, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "no values"
    if v.max() <= LOG2_MAX and v.min() >= LOG2_MIN:
        return "log2(tpm+0.001)" if v.min() < -1.0 else "log2 values"
    if v.min() < 0:
        return "centred or otherwise transformed values"
    share, n = _integral_share(v)
    if share >= 0.99 and n > 0:
        return "raw counts"
    if abs(v.sum() - TPM_SUM) <= 0.05 * TPM_SUM:
        return "TPM"
    return "linear-scale TPM/FPKM"


def check_log2_range(arr, gene_ids, samples, declared: str = "log2 expression",
                     where: str = "expression", hint: str = "") -> None:
    """Refuse values outside [LOG2_MIN, LOG2_MAX] (and infinite ones) of a genes x samples
    matrix meant to be on a log2 scale; NaN (a missing value) is ignored here."""
    arr = np.asarray(arr, dtype=np.float64)
    inf = np.isinf(arr)
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise InputDataError(
            f"{where}: {int(inf.sum())} infinite value(s), first at gene {gene_ids[r]}, "
            f"sample {samples[c]}"
        )
    with np.errstate(invalid="ignore"):
        high = arr > LOG2_MAX
        low = arr < LOG2_MIN
    for bad, word in ((high, "up to"), (low, "down to")):
        if not bad.any():
            continue
        c = int(np.argwhere(bad.any(axis=0))[0][0])
        col = arr[:, c]
        extreme = np.nanmax(col) if word == "up to" else np.nanmin(col)
        bound = (f"> {LOG2_MAX:g}" if word == "up to" else f"< {LOG2_MIN:g}")
        n_out, n_fin = int(bad[:, c].sum()), int(np.isfinite(col).sum())
        if n_out <= max(1, 0.01 * n_fin):  # a stray value: no unit to guess from the rest
            r = int(np.flatnonzero(bad[:, c])[0])
            raise InputDataError(
                f"{where}: value {_num(col[r])} (gene {gene_ids[r]}, sample {samples[c]}) is "
                f"not plausible for {declared} (a log2 scale has no values {bound}){hint}"
            )
        what = likely_unit(col)
        look = (f"look like {what}, not {declared}" if what != "log2 values" else
                f"are not plausible for {declared}")
        raise InputDataError(
            f"{where}: values {word} {_num(extreme)} (sample {samples[c]}) {look} "
            f"(a log2 scale has no values {bound}){hint}"
        )


def check_units(arr, gene_ids, samples, units: str, where: str = "expression") -> None:
    """The plausibility checks of the declared ``units`` (module docstring) on a finite,
    non-negative-where-linear genes x samples matrix of all genes of a file."""
    arr = np.asarray(arr, dtype=np.float64)
    n_genes = arr.shape[0]
    if units in LOG2_UNITS:
        check_log2_range(arr, gene_ids, samples, units, where)
        return
    if units not in LINEAR_UNITS:
        raise ValueError(f"unknown units {units!r}")
    with np.errstate(over="ignore", invalid="ignore"):
        sums = arr.sum(axis=0)
    for c, total in enumerate(sums):
        s = samples[c]
        col = arr[:, c]
        if not np.isfinite(total):
            what = "library size" if units == "counts" else "column sum"
            raise InputDataError(
                f"{where}: the {what} of sample {s} overflows to inf (values up to "
                f"{_num(col.max())}): not plausible {units}"
            )
        if units == "counts":
            if total <= 0:
                raise InputDataError(
                    f"{where}: sample {s} has a library size of 0 (all counts zero)"
                )
            if total > COUNTS_MAX_LIBRARY:
                raise InputDataError(
                    f"{where}: sample {s} has a library size of {_num(total)} (values up to "
                    f"{_num(col.max())}): not plausible raw counts (at most "
                    f"{_num(COUNTS_MAX_LIBRARY)} reads)"
                )
            share, n = _integral_share(col)
            if share < MIN_INTEGRAL_SHARE:
                raise InputDataError(
                    f"{where}: {1 - share:.0%} of the non-zero values of sample {s} are not "
                    f"whole numbers: they look like {likely_unit(col)}, not raw counts "
                    "(round estimated counts first)"
                )
            continue
        share, n = _integral_share(col)
        if share >= 0.99 and n >= 20 and total > TPM_MAX_SUM:
            raise InputDataError(
                f"{where}: sample {s} holds whole numbers summing to {_num(total)}: the values "
                f"look like raw counts, not {units}"
            )
        limit = TPM_MAX_SUM if units == "tpm" else FPKM_MAX_SUM
        if total > limit:
            what = likely_unit(col)
            if units == "tpm" and what in ("TPM", "linear-scale TPM/FPKM"):
                what = "FPKM or scaled values"
            norm = ("a TPM column sums to 1e6 at most" if units == "tpm" else
                    f"an FPKM column sums to well below {_num(FPKM_MAX_SUM)}")
            raise InputDataError(
                f"{where}: sample {s} sums to {_num(total)} ({norm}): the values look like "
                f"{what}, not {units}"
            )
        if n_genes >= GENOME_WIDE:
            if col.max() <= LOG2_MAX:
                raise InputDataError(
                    f"{where}: the values of sample {s} are at most {_num(col.max())} over "
                    f"{n_genes} genes: they look like {likely_unit(col)}, not {units}"
                )
            if total < LINEAR_MIN_SUM:
                raise InputDataError(
                    f"{where}: sample {s} sums to {_num(total)} over {n_genes} genes (a TPM "
                    f"column sums to 1e6): not plausible {units}"
                )
    if units == "counts" and np.all(np.abs(sums - TPM_SUM) <= 0.005 * TPM_SUM):
        raise InputDataError(
            f"{where}: every sample sums to 1e6 ({_num(sums.min())}..{_num(sums.max())}): the "
            "values look like TPM, not raw counts"
        )


def to_log2_scale(values: np.ndarray, units: str) -> np.ndarray:
    """Convert a genes x samples matrix (all genes of the file) to the common log2 scale."""
    values = np.asarray(values, dtype=np.float64)
    if units == "counts":
        with np.errstate(over="ignore", invalid="ignore"):
            lib = values.sum(axis=0, keepdims=True)
        if not np.isfinite(lib).all():
            raise InputDataError("a sample's library size overflows to inf")
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


#: featureCounts' gene annotation columns (not samples) in a genes x samples file
FEATURECOUNTS_COLUMNS = ("Chr", "Start", "End", "Strand", "Length")


def check_no_annotation_rows(values: pd.DataFrame, where: str) -> None:
    """Refuse a "gene" that is a sample annotation (``batch``, ``sex``, ``Stage`` coded as
    small integers beside the genes): a name with lower-case letters (human gene symbols are
    upper case) that is no known gene symbol, and every value one of 2-5 whole numbers, which
    no TPM/FPKM/log2 expression of a real gene looks like. (Raw counts are whole numbers
    anyway and are not judged.)"""
    from amu_tf.data.gene_ids import known_symbols

    arr = values.to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        whole = np.all((arr == np.round(arr)) | ~np.isfinite(arr), axis=1)
    known = None
    for i in np.flatnonzero(whole):  # few rows: only those of whole numbers are looked at
        gene, row = values.index[i], arr[i]
        distinct = np.unique(row[np.isfinite(row)])
        if not 2 <= len(distinct) <= 5 or not np.all(distinct == np.round(distinct)):
            continue
        if str(gene).upper() == str(gene):
            continue  # upper-case ids are gene-like (new HGNC names, clone ids): not judged
        known = known_symbols() if known is None else known
        if str(gene) not in known:
            shown = ", ".join(f"{v:g}" for v in distinct)
            raise InputDataError(
                f"{where}: {gene!r} is not a known gene symbol and holds only the values "
                f"{shown}: a sample annotation (batch, sex, ...) among the genes? Remove it "
                "from the expression file (annotations belong in the clinical file)")


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
        # featureCounts writes gene annotation columns between the id and the samples
        annotation = [c for c in FEATURECOUNTS_COLUMNS if c in df.columns and c != id_col]
        pos = list(df.columns).index(id_col)
        samples = [h for i, h in enumerate(header) if i != pos and h not in annotation]
        gene_ids = df[id_col].astype(str).str.strip().tolist()
        values = df.drop(columns=[id_col, *annotation])
    else:
        id_col = df.columns[0]
        ids = read_delimited(path, sep, "expression", header=0, usecols=[0], dtype=str,
                             keep_default_na=False)  # "NA" is an id here, not a missing value
        samples = ids.iloc[:, 0].astype(str).str.strip().tolist()
        if len(samples) != df.shape[0]:
            samples = df[id_col].astype(str).str.strip().tolist()
        gene_ids = header[1:]
        values = df.drop(columns=[id_col]).T
    if not samples or values.shape[0] == 0:
        first = header[0] if header else ""
        other = [c for c in (";", ",", "\t", "|") if c in first and c != sep_for(path, sep)]
        hint = (f" (the header looks {other[0]!r}-separated: set sep in [expression])"
                if other and len(header) <= 2 else "")
        raise InputDataError(f"{where}: no samples or no genes{hint}")
    dup = _first_duplicate(samples)
    if dup is not None:
        raise InputDataError(f"{where}: duplicate sample id {dup!r}")
    if any(s == "" for s in samples):
        raise InputDataError(f"{where}: a sample has an empty id")
    values.index = gene_ids
    values = _numeric(values, where)
    if spec.gene_id == "symbol" and spec.units != "counts":
        check_no_annotation_rows(values, where)
    ens = read_ensembl_map(spec.ensembl_map) if spec.gene_id == "ensembl" else None
    return expression_matrix(values.to_numpy(), gene_ids, samples, spec.units, spec.gene_id,
                             ens, where, species=getattr(spec, "species", "human"))


def expression_matrix(arr, gene_ids, samples, units, gene_id, ensembl_map=None,
                      where="expression", species="human"):
    """Check a numeric genes x samples matrix (all genes of a file), convert it to the common
    log2 scale and name every gene by its symbol.

    Returns ``(table, info)``: ``table`` is samples x genes, the 160 panel symbols first in
    panel order (NaN for a panel gene absent from the file), then every other gene the ids
    map to, in file order; ``info`` has ``genes_in_file``, ``found`` and ``missing`` (panel
    symbols), ``duplicates`` (panel symbols merged), ``duplicates_all`` (every symbol merged,
    panel or not: the genome-wide models such as COMPASS's read them too), ``n_genes``
    (columns kept) and ``unmapped`` (ids without a known symbol, left out).
    """
    arr = np.asarray(arr, dtype=np.float64)
    gene_ids = [str(g).strip() for g in gene_ids]
    samples = [str(s) for s in samples]
    # HTSeq-count's summary rows (__no_feature, __ambiguous, __alignment_not_unique, ...) are
    # reads that no gene got: not genes, and not part of any library size
    keep = [i for i, g in enumerate(gene_ids) if not g.startswith("__")]
    if len(keep) < len(gene_ids):
        arr, gene_ids = arr[keep], [gene_ids[i] for i in keep]
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputDataError(
            f"{where}: {int(bad.sum())} NaN/inf value(s), first at gene {gene_ids[r]}, sample {samples[c]}"
        )
    if units in LINEAR_UNITS and (arr < 0).any():
        r, c = np.argwhere(arr < 0)[0]
        what = likely_unit(arr[:, c])
        hint = f"; the values look like {what}" if what.startswith("log2") else ""
        raise InputDataError(
            f"{where}: negative value {arr[r, c]:g} (gene {gene_ids[r]}, sample {samples[c]}) "
            f"but units = {units!r}{hint}"
        )

    check_units(arr, gene_ids, samples, units, where)

    notes: dict = {}
    symbols = map_to_symbols(gene_ids, gene_id, ensembl_map, where=f"{where}: ",
                             species=species, notes=notes)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            logv = to_log2_scale(arr, units)
    except InputDataError as exc:
        raise InputDataError(f"{where}: {exc}") from None
    bad = ~np.isfinite(logv)
    if bad.any():  # the checks above should make this impossible: never write inf/NaN
        r, c = np.argwhere(bad)[0]
        raise InputDataError(
            f"{where}: converting {units} to the log2 scale gave {int(bad.sum())} non-finite "
            f"value(s), first at gene {gene_ids[r]}, sample {samples[c]}"
        )

    if len(samples) > 1 and logv.size and not np.any(np.ptp(logv, axis=1) > 0):
        raise InputDataError(
            f"{where}: every gene has the same value in all {len(samples)} samples (constant "
            "expression): no model can tell these samples apart; check the file")
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
    duplicates_all = sorted(s for s, r in rows_by_symbol.items() if len(r) > 1)
    info = {
        "genes_in_file": len(gene_ids),
        "found": [s for s in panel if s in rows_by_symbol],
        "missing": [s for s in panel if s not in rows_by_symbol],
        "duplicates": [s for s in duplicates_all if s in in_panel],
        "duplicates_all": duplicates_all,
        "n_genes": len(rows_by_symbol),
        "unmapped": int(sum(sym is None for sym in symbols)),
        "recased": int(notes.get("recased", 0)),
        "renamed": dict(notes.get("renamed", {})),
    }
    return table, info


def panel_matrix(arr, gene_ids, samples, units, gene_id, ensembl_map=None, where="expression"):
    """:func:`expression_matrix` restricted to the 160 panel genes."""
    table, info = expression_matrix(arr, gene_ids, samples, units, gene_id, ensembl_map, where)
    return table[panel_symbols()], info
