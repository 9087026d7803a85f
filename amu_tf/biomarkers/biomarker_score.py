"""Scoring a cohort table with a published biomarker (:data:`BIOMARKERS`), label-free.

The scale is the cohort table's common log2 scale (log2(TPM+1), or log2(CPM+1) over all genes
for raw counts). By kind:

* ``mean_z``: the mean over the biomarker's genes of each gene's z-score within its cohort;
  for a single gene that is the gene itself, standardised (its AUC within a cohort is the
  gene's).
* ``weighted_z``: the weighted sum of the within-cohort z-scores (GEP's published weights;
  the publication standardised NanoString log10 counts by housekeeping genes instead: the
  z-score within a cohort plays that role here, so values differ from the paper's scale).
* ``pairs`` (IMPRES): for each sample, how many pairs have the first gene above the second
  (strict), on the log2 values of that sample alone (no cohort statistics).
* ``tide``: ``tidepy``'s TIDE on the cohort's genes centred within the cohort (tidepy's own
  normalisation, done here so the centring uses only the rows it should), negated.

Within-cohort statistics (means and standard deviations per gene) are those of the rows given
to :meth:`CohortStatistics.fit`, frozen, for a cohort seen there, and those of the rows being
scored for a cohort not seen (a held-out cohort, exactly as the ``cohort_z`` transform does:
no label is used, but the score of one sample then depends on the other samples of its cohort).

Missing genes: a gene absent from a cohort is left out of that cohort's score (and listed);
a cohort with fewer than ``min_gene_fraction`` (default half) of a biomarker's genes, or of
IMPRES's pairs, is refused with :class:`InputDataError`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings

import numpy as np
import pandas as pd

from amu_tf.biomarkers.biomarker_presets import BIOMARKERS, GENE_ALIASES, biomarker_genes
from amu_tf.errors import InputDataError

STD_FLOOR = 1e-6
MIN_GENE_FRACTION = 0.5
MIN_NEW_COHORT = 5  # as the cohort_z transform's min_cohort_size


def cohort_keys(table: pd.DataFrame) -> np.ndarray:
    """Each row's cohort (the ``cohort_z`` transform's rule: empty -> one "(no cohort)")."""
    from amu_tf.data.transforms.cohort_z_transform import cohort_keys as keys

    return keys(table, len(table))


def resolve_columns(columns, genes) -> dict:
    """``{gene: the table column holding it (its symbol or an old alias) or None}``."""
    present = set(columns)
    out = {}
    for g in genes:
        names = (g,) + tuple(GENE_ALIASES.get(g, ()))
        out[g] = next((n for n in names if n in present), None)
    return out


def gene_values(table: pd.DataFrame, genes) -> np.ndarray:
    """The ``(n, len(genes))`` log2 values, NaN for a gene the table lacks."""
    cols = resolve_columns(table.columns, genes)
    out = np.full((len(table), len(genes)), np.nan)
    for j, g in enumerate(genes):
        if cols[g] is not None:
            out[:, j] = pd.to_numeric(table[cols[g]], errors="coerce").to_numpy(np.float64)
    return out


def _mean_std(x: np.ndarray):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=0), np.nanstd(x, axis=0)


class CohortStatistics:
    """Per-cohort gene means and standard deviations: frozen at ``fit`` for the cohorts seen
    there, computed from the rows scored for any other cohort."""

    def __init__(self, genes):
        self.genes = tuple(genes)

    def fit(self, values: np.ndarray, cohorts: np.ndarray):
        self.stats_ = {c: _mean_std(values[cohorts == c]) for c in np.unique(cohorts)}
        return self

    def standardise(self, values: np.ndarray, cohorts: np.ndarray, centre_only=False):
        """Z-scores (or centred values) per cohort; NaN stays NaN."""
        out = np.full_like(values, np.nan)
        for c in np.unique(cohorts):
            rows = cohorts == c
            known = getattr(self, "stats_", {}).get(c)
            if known is None and rows.sum() < MIN_NEW_COHORT:
                raise InputDataError(
                    f"cohort {c} was not seen in training and has only {int(rows.sum())} "
                    f"sample(s): a new cohort is standardised with its own statistics, which "
                    f"needs at least {MIN_NEW_COHORT} samples; score it together with more of "
                    "its samples")
            mean, std = known or _mean_std(values[rows])
            std = np.where(~np.isfinite(std) | (std < STD_FLOOR), 1.0, std)
            out[rows] = (values[rows] - mean) if centre_only else (values[rows] - mean) / std
        return out


def check_coverage(name: str, values: np.ndarray, cohorts: np.ndarray,
                   min_gene_fraction=MIN_GENE_FRACTION) -> dict:
    """``{cohort: [genes missing there]}``; raises when a cohort has too few of the genes."""
    spec = BIOMARKERS[name]
    genes = biomarker_genes(name)
    missing = {}
    for c in np.unique(cohorts):
        absent = np.all(np.isnan(values[cohorts == c]), axis=0)
        missing[str(c)] = [g for g, a in zip(genes, absent) if a]
        if spec["kind"] == "pairs":
            have = set(g for g, a in zip(genes, absent) if not a)
            usable = sum(a in have and b in have for a, b in spec["pairs"])
            enough = usable >= max(1, min_gene_fraction * len(spec["pairs"]))
            what = f"{usable} of its {len(spec['pairs'])} gene pairs"
        else:
            n_have = int((~absent).sum())
            enough = n_have >= max(1, min_gene_fraction * len(genes))
            what = f"{n_have} of its {len(genes)} genes"
        if not enough:
            raise InputDataError(
                f"biomarker {spec['label']}: cohort {c} has only {what} (missing: "
                f"{', '.join(missing[str(c)])}); a genome-wide cohort table is needed "
                "(ingest keeps every gene of the expression file)")
    return {c: m for c, m in missing.items() if m}


def combine(name: str, z: np.ndarray) -> np.ndarray:
    """The score from within-cohort z-scores (``mean_z``, ``weighted_z``)."""
    spec = BIOMARKERS[name]
    present = ~np.isnan(z)
    if spec["kind"] == "mean_z":
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(z, axis=1)
    w = np.asarray([spec["weights"][g] for g in biomarker_genes(name)])
    used = np.where(present, w, 0.0)
    # genes missing in a cohort: the present weights rescaled to the full weight sum
    scale = w.sum() / np.where(used.sum(axis=1) == 0, np.nan, used.sum(axis=1))
    return np.nansum(np.where(present, z * w, 0.0), axis=1) * scale


def impres(values: np.ndarray) -> np.ndarray:
    """IMPRES per sample: pairs with gene A > gene B (strict), of the pairs both of whose
    genes are present, rescaled to the 15 pairs."""
    genes = biomarker_genes("impres")
    col = {g: j for j, g in enumerate(genes)}
    pairs = BIOMARKERS["impres"]["pairs"]
    a = values[:, [col[p] for p, _ in pairs]]
    b = values[:, [col[q] for _, q in pairs]]
    usable = ~(np.isnan(a) | np.isnan(b))
    hits = np.where(usable, a > b, False).sum(axis=1)
    n = usable.sum(axis=1)
    return np.where(n > 0, hits * len(pairs) / np.maximum(n, 1), np.nan)


def tide_coverage(genes, values: np.ndarray, cohorts: np.ndarray,
                  min_gene_fraction=MIN_GENE_FRACTION) -> dict:
    """``{cohort: fraction}`` of the genes of TIDE's dysfunction model (tidepy's, about
    22,800 Entrez ids) that each cohort measures; raises when a cohort holds fewer than
    ``min_gene_fraction`` of them (TIDE correlates a sample with genome-wide signatures: on a
    160-gene panel it would score noise, as the other biomarkers refuse too few genes)."""
    model_genes, symbol_to_entrez = _tide_genes()
    ids = np.array([symbol_to_entrez.get(str(g), str(g)) for g in genes], dtype=object)
    known = np.array([i in model_genes for i in ids])
    out = {}
    for c in np.unique(cohorts):
        present = ~np.all(np.isnan(values[cohorts == c]), axis=0)
        frac = len(set(ids[present & known])) / max(1, len(model_genes))
        out[str(c)] = round(float(frac), 4)
        if frac < min_gene_fraction:
            raise InputDataError(
                f"biomarker TIDE: cohort {c} measures {frac:.1%} of the ~{len(model_genes):,} "
                f"genes of TIDE's model (at least {min_gene_fraction:.0%} are needed); a "
                "genome-wide cohort table is needed (ingest keeps every gene of the "
                "expression file)")
    return out


@functools.lru_cache(maxsize=1)
def _tide_genes() -> tuple:
    """TIDE's dysfunction-model genes (Entrez ids) and tidepy's own symbol -> Entrez table
    (its Gene_Ref), as strings; read once per process (every fit and transform checks them)."""
    import importlib.resources

    import pandas as pd
    from tidepy.pred import MODEL_DB

    model_genes = frozenset(pd.Index(MODEL_DB["tide"]["Dysfunction"].index).astype(str))
    ref = pd.read_pickle(importlib.resources.files("tidepy") / "data" / "Gene_Ref.pkl")
    return model_genes, {str(k): str(v) for k, v in ref["Symbol"].items()}


def tide(centred: pd.DataFrame, cancer="Melanoma", pretreat=False) -> np.ndarray:
    """``-TIDE`` per sample of ``centred`` (samples x genes, centred within the cohort),
    computed by ``tidepy`` (its own printed notes silenced)."""
    from tidepy.pred import TIDE

    expr = centred.T.dropna(axis=0, how="any").copy()  # genes x samples, genes present
    expr.columns = [f"s{i}" for i in range(expr.shape[1])]  # tidepy sorts: keep the order
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = TIDE(expr, cancer=cancer, pretreat=pretreat, ignore_norm=True)
        except ValueError as exc:
            raise InputDataError(f"biomarker TIDE: tidepy refused the cohort: {exc}") from None
    return -result["TIDE"].reindex(expr.columns).to_numpy(np.float64)
