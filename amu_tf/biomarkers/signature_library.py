"""The published immunotherapy signatures of bhklab's SignatureSets as training-free
baselines ``sig:<name>`` (issue #24).

    from amu_tf.biomarkers.signature_library import list_signatures, SignatureTransform
    list_signatures()                                   # name, genes, method, PMID, ...
    scores = SignatureTransform("IFN_Ayers").fit(train_table).transform(test_table)

**Where the signatures come from** (read at run time, never copied into the project), the
first of: the ``path`` given (``--signatures DIR``), the environment variable
``AMU_TF_SIGNATURES``, ``../shared/data/signatures`` relative to the current folder when it
exists. The folder is in SignatureSets' format: ``signature_information_io.csv`` (columns
``signature``, ``association`` sensitive/resistance, ``method``, ``score.function``,
``RNA.type``, ``cancer.type``, ``PMID``) and ``IO/<signature>.csv`` (``gene_name``,
``weight``; IPS also ``name`` and ``class``).

**How each is scored** follows bhklab's PredictioR (``geneSig*`` functions), which computes
the library's own reference scores, on the cohort table's log2 scale:

* ``weighted_mean`` (``geneSigMean``): each gene z-scored within its cohort, then
  ``sum(weight * z) / (number of genes present)``.
* ``ssgsea`` (``geneSigssGSEA``): ``gseapy.ssgsea`` (rank normalisation, weight 0.25, the
  enrichment score ``ES``) on every gene of the cohort z-scored within the cohort
  (PredictioR's ``scalefun``), the signature's genes as the gene set.
* ``gsva`` (``geneSigGSVA``): ``gseapy.gsva`` (Gaussian kernel CDF, ``mx_diff``) on the same
  within-cohort z-scored matrix. GSVA's kernel CDF is estimated from the samples scored
  together: the rows of one cohort being scored (label-free, as a held-out cohort's own
  statistics are), at least ``MIN_NEW_COHORT`` of them. Fewer rows of a cohort seen at ``fit``
  (a cross-validation test fold holding 3 samples of a small cohort) are scored together with
  that cohort's ``fit`` rows (their expression only, never a label), and only the new rows'
  scores are kept; this context lives in memory, not in a saved transform, which scores a
  new group of rows on its own.
* ``cox_is`` (``geneSigCOX_IS``, Bonavita et al. 2020): mean log2 expression of the genes of
  weight +1 divided by that of the genes of weight -1, per sample.
* ``ips`` (``geneSigIPS``/``IPSfun``, Charoentong et al. 2017): each gene z-scored against
  its own sample's mean and SD over all genes (at least :data:`IPS_MIN_GENES` genes, as
  PredictioR requires), averaged per IPS gene group and multiplied by the group's weight,
  averaged within each class (MHC, CP, EC, SC), the four summed (the raw immunophenoscore
  "AZ", before its 0-10 mapping).
* ``predictio`` (``geneSigPredictIO``, Bareche et al. 2022): GSVA of the genes marked
  ``sensitive`` minus GSVA of those marked ``resistance``.
* Not scorable here: IPRES (Hugo et al. 2016), IPSOV (Shen et al. 2019) and PassON (Du et al.
  2021) are defined over collections of gene sets that SignatureSets keeps in sub-folders;
  the shared copy holds only their placeholders (a git tree listing), so they are listed
  with the reason and refused when named.
* A signature the table lists whose gene-set file ``IO/<signature>.csv`` is missing from the
  folder is listed as not scorable (``amu zoo``, with the reason), refused when named alone,
  and left out of a group (``sig:*``, ``sig:gsva``, ...) with the reason: the group keeps it
  so that :func:`unscorable_signatures` reports it, as it reports a signature whose genes a
  cohort lacks. A gene-set file that is not UTF-8 text (binary, UTF-16, Latin-1) is refused
  in one line by :func:`amu_tf.data.text_files.read_text`, as every user text file is.

**Direction and scale**: resistance signatures are negated (higher = predicted responder,
as every biomarker of amu-tf); then the score is z-scored within its cohort (statistics of a
cohort seen at ``fit`` frozen from its training rows, a new cohort's from its own rows),
exactly as :class:`~amu_tf.biomarkers.signature_scores_transform.SignatureScoresTransform`
does for the eight biomarkers, so one threshold applies across cohorts.

**Coverage**: the fraction of a signature's genes present in each cohort is recorded
(``coverage_``); a cohort below :data:`MIN_GENE_FRACTION` (one half, the existing
biomarkers' floor; PredictioR uses 0.8) is refused with a one-line :class:`InputDataError`,
and so is a cohort with none of the genes.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf.biomarkers.biomarker_score import (MIN_GENE_FRACTION, MIN_NEW_COHORT,
                                               CohortStatistics, cohort_keys, gene_values)
from amu_tf.data.text_files import read_text
from amu_tf.data.transforms.table_transform import TableTransform
from amu_tf.errors import InputDataError

ENV_VAR = "AMU_TF_SIGNATURES"
DEFAULT_DIR = Path("..") / "shared" / "data" / "signatures"
INFO_FILE = "signature_information_io.csv"
PREFIX = "sig:"
#: IPS standardises each sample over its whole transcriptome: at least this many genes
IPS_MIN_GENES = 10000

#: PredictioR score function -> the scorer used here
SCORERS = {
    "geneSigMean": "weighted_mean",
    "geneSigssGSEA": "ssgsea",
    "geneSigGSVA": "gsva",
    "geneSigCOX_IS": "cox_is",
    "geneSigIPS": "ips",
    "geneSigPredictIO": "predictio",
}
#: score functions whose gene sets are not single files (no scorer here)
NOT_SCORABLE = {
    "geneSigIPRES": "IPRES is the mean GSVA z-score over 26 published gene sets",
    "geneSigIPSOV": "IPSOV weighs 15 immune gene-set scores",
    "geneSigPassON": "PassON combines 4 Reactome gene-set scores",
}
#: method groups for ``--models`` (``sig:*`` is every scorable signature)
GROUPS = {"sig:weighted_mean": ("weighted_mean",), "sig:ssgsea": ("ssgsea",),
          "sig:gsva": ("gsva",), "sig:specific": ("cox_is", "ips", "predictio")}


@dataclass(frozen=True)
class Signature:
    """One published signature as read from the folder."""

    name: str
    genes: tuple
    weights: tuple  # floats (NaN where the file gives NA); PredictIO: +1 sensitive, -1 resistance
    association: str  # "sensitive" or "resistance"
    method: str  # as published: GSVA, ssGSEA, Weighted Mean, Specific Algorithm
    score_function: str  # PredictioR's function name
    scorer: str | None  # weighted_mean, ssgsea, gsva, cox_is, ips, predictio; None: unscorable
    pmid: str = ""
    rna_type: str = ""
    cancer_type: str = ""
    groups: tuple = ()  # IPS: the gene group of each gene ("name")
    classes: tuple = ()  # IPS: the class of each gene (MHC, CP, EC, SC)
    note: str = ""
    source: str = ""
    #: why it cannot be scored although its method can (its gene-set file is missing); empty
    #: when the file was read. Such a signature keeps its ``scorer`` (its group takes it, to be
    #: left out with this reason) but refuses to be named alone or fitted.
    missing: str = ""

    @property
    def scorable(self) -> bool:
        """Whether it can be scored here (a scorer and its gene-set file)."""
        return self.scorer is not None and not self.missing

    @property
    def model_name(self) -> str:
        return PREFIX + self.name

    @property
    def direction(self) -> int:
        """+1 for a sensitivity signature, -1 for a resistance one (negated)."""
        return -1 if self.association == "resistance" else 1


def is_signature(name) -> bool:
    """Whether ``name`` names a library signature (``sig:<name>``) or group (``sig:*``)."""
    return isinstance(name, str) and name.startswith(PREFIX)


def resolve_signatures_dir(path=None) -> Path:
    """The signature folder: ``path``, else ``$AMU_TF_SIGNATURES``, else
    ``../shared/data/signatures`` when it exists; a one-line error otherwise."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
        where = f"${ENV_VAR}" if path else None
        if path is None:
            if not DEFAULT_DIR.is_dir():
                raise InputDataError(
                    "no signature folder: give one with --signatures DIR or the environment "
                    f"variable {ENV_VAR} (bhklab SignatureSets format: {INFO_FILE} and IO/); "
                    f"{DEFAULT_DIR} does not exist here")
            path = DEFAULT_DIR
            where = "the default"
    else:
        where = "the given path"
    p = Path(path)
    if not (p / INFO_FILE).is_file():
        raise InputDataError(f"signature folder {p} ({where}) has no {INFO_FILE}: not a "
                             "SignatureSets-format folder")
    return p.resolve()


def _read_csv(path: Path, what: str, lenient: bool = False) -> pd.DataFrame:
    """``path`` as a str table, read by the project's text reader (a binary, UTF-16 or
    non-UTF-8 file is refused in its one line). ``lenient``: bytes that are not UTF-8 are
    replaced instead (the published signature table holds a stray cp1252 byte in a free-text
    column); a binary or UTF-16 file is still refused."""
    try:
        text = read_text(path, what)
    except InputDataError as exc:
        if not (lenient and "is not UTF-8 text" in str(exc)):
            raise
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputDataError(f"{what} {path} is not a readable CSV: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _na(v: str) -> bool:
    return v.strip() in ("", "NA", "NaN", "nan")


def _read_signature(folder: Path, row: dict) -> Signature:
    name = row["signature"].strip()
    fn = row["score.function"].strip()
    assoc = row["association"].strip().lower()
    if assoc not in ("sensitive", "resistance"):
        raise InputDataError(f"signature {name}: association {row['association']!r} in "
                             f"{INFO_FILE} is neither 'sensitive' nor 'resistance'")
    common = dict(name=name, association=assoc, method=row["method"].strip(),
                  score_function=fn, pmid=row.get("PMID", "").strip(),
                  rna_type=row.get("RNA.type", "").strip().replace("\n", " "),
                  cancer_type=row.get("cancer.type", "").strip())
    path = folder / "IO" / f"{name}.csv"
    if fn in SCORERS and not path.is_file():
        # listed, its method implemented, but its gene-set file is not there
        what = "is missing from" if not path.exists() else "is not a file in"
        missing = (f"its gene-set file IO/{path.name} {what} the signature folder {folder} "
                   f"({INFO_FILE} lists it); restore the file or leave the signature out")
        return Signature(genes=(), weights=(), scorer=SCORERS[fn], source=str(path),
                         note=f"not scored: its gene-set file IO/{path.name} {what} the "
                              "signature folder", missing=missing, **common)
    if fn in NOT_SCORABLE or not path.is_file():
        alt = folder / "IO" / name
        why = NOT_SCORABLE.get(fn, "its method is not implemented here")
        held = ("only a placeholder of its gene-set folder is present" if alt.exists()
                else f"{path.name} is missing")
        return Signature(genes=(), weights=(), scorer=None, note=f"not scored: {why}; {held}",
                         source=str(alt if alt.exists() else path), **common)
    if fn not in SCORERS:
        raise InputDataError(f"signature {name}: unknown score function {fn!r} in {INFO_FILE} "
                             f"(known: {', '.join(list(SCORERS) + list(NOT_SCORABLE))})")
    scorer = SCORERS[fn]
    df = _read_csv(path, "signature file")
    need = {"gene_name", "weight"} | ({"name", "class"} if scorer == "ips" else set())
    if not need <= set(df.columns):
        raise InputDataError(f"signature file {path} lacks the column(s) "
                             f"{', '.join(sorted(need - set(df.columns)))}")
    df = df[df["gene_name"].str.strip() != ""]
    if df.empty:
        raise InputDataError(f"signature file {path} lists no gene")
    genes = tuple(df["gene_name"].str.strip())
    raw = df["weight"].str.strip()
    if scorer == "predictio":
        bad = raw[~raw.str.lower().isin(["sensitive", "resistance"])]
        if len(bad):
            raise InputDataError(f"signature file {path}: PredictIO weight {bad.iloc[0]!r} is "
                                 "neither 'sensitive' nor 'resistance'")
        weights = tuple(np.where(raw.str.lower() == "sensitive", 1.0, -1.0))
    else:
        weights = []
        for v in raw:
            if _na(v):
                weights.append(np.nan)
                continue
            try:
                weights.append(float(v))
            except ValueError:
                raise InputDataError(f"signature file {path}: weight {v!r} is not a number") from None
        if scorer in ("weighted_mean", "cox_is", "ips") and np.isnan(weights).any():
            raise InputDataError(f"signature file {path}: a {row['method']} signature needs a "
                                 "numeric weight for every gene (found NA)")
        if scorer == "cox_is" and not {1.0, -1.0} <= set(weights):
            raise InputDataError(f"signature file {path}: COX-IS needs genes of weight +1 and -1")
        weights = tuple(weights)
    extra = {}
    if scorer == "ips":
        extra = dict(groups=tuple(df["name"].str.strip()), classes=tuple(df["class"].str.strip()))
        unknown = set(extra["classes"]) - {"MHC", "CP", "EC", "SC"}
        if unknown:
            raise InputDataError(f"signature file {path}: IPS class(es) {', '.join(sorted(unknown))} "
                                 "not among MHC, CP, EC, SC")
    return Signature(genes=genes, weights=weights, scorer=scorer, source=str(path), **common,
                     **extra)


@lru_cache(maxsize=8)
def _load(folder: str) -> dict:
    info = _read_csv(Path(folder) / INFO_FILE, "signature table", lenient=True)
    need = {"signature", "association", "method", "score.function", "PMID"}
    if not need <= set(info.columns):
        raise InputDataError(f"signature table {Path(folder) / INFO_FILE} lacks the column(s) "
                             f"{', '.join(sorted(need - set(info.columns)))}")
    out = {}
    for row in info.to_dict("records"):
        if not row["signature"].strip():
            continue
        sig = _read_signature(Path(folder), row)
        out[sig.name] = sig
    return out


def load_signatures(path=None) -> dict:
    """``{name: Signature}`` of every signature of the folder (see
    :func:`resolve_signatures_dir`), in the table's order; cached per folder."""
    return dict(_load(str(resolve_signatures_dir(path))))


def get_signature(name: str, path=None) -> Signature:
    """One signature by name (with or without ``sig:``); a one-line error when unknown or
    not scorable (a placeholder). A signature whose gene-set file is missing is returned
    (``missing`` says why: a group carries it to be left out with that reason, and
    :class:`SignatureTransform` refuses to fit it); :func:`expand_model_names` refuses it
    named alone."""
    lib = load_signatures(path)
    bare = name[len(PREFIX):] if is_signature(name) else name
    if bare not in lib:
        raise InputDataError(f"unknown signature {bare!r}; `amu zoo` lists the {len(lib)} "
                             "signatures of the folder")
    sig = lib[bare]
    if sig.scorer is None:
        raise InputDataError(f"signature {bare}: {sig.note}")
    return sig


def _check_file(sig: Signature) -> Signature:
    """``sig``, or the one-line error of a signature whose gene-set file is missing."""
    if sig.missing:
        raise InputDataError(f"signature {sig.name}: {sig.missing}")
    return sig


def list_signatures(path=None) -> pd.DataFrame:
    """One row per signature (for ``amu zoo``): ``model`` (``sig:<name>``), ``n_genes``,
    ``association``, ``method`` (published), ``scored_by`` (the scorer used, empty when it
    cannot be scored), ``pmid``, ``rna_type``, ``cancer_type``, ``note``."""
    rows = [{"model": s.model_name, "n_genes": len(set(s.genes)),
             "association": s.association, "method": s.method,
             "scored_by": s.scorer if s.scorable else "", "pmid": s.pmid, "rna_type": s.rna_type,
             "cancer_type": s.cancer_type, "note": s.note}
            for s in load_signatures(path).values()]
    return pd.DataFrame(rows)


def expand_model_names(names, path=None) -> list:
    """``--models`` with the signature groups expanded, other names kept in place:
    ``sig:*`` (every scorable signature), ``sig:weighted_mean``, ``sig:ssgsea``,
    ``sig:gsva``, ``sig:specific`` (by scorer); ``sig:<name>`` is checked to exist and be
    scorable. A group keeps a signature whose gene-set file is missing (its method is
    scorable): :func:`unscorable_signatures` reports it with the reason and the evaluation
    leaves it out, instead of it vanishing unsaid. Duplicates are dropped (first kept)."""
    out = []
    for n in names:
        if n == "sig:*" or n in GROUPS:
            lib = load_signatures(path)
            kinds = GROUPS.get(n)
            out += [s.model_name for s in lib.values()
                    if s.scorer is not None and (kinds is None or s.scorer in kinds)]
        elif is_signature(n):
            out.append(_check_file(get_signature(n, path)).model_name)
        else:
            out.append(n)
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------- scoring
_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 32


def _enrichment(matrix: pd.DataFrame, method: str, gene_sets: dict) -> pd.DataFrame:
    """samples x gene sets of ``gseapy.ssgsea`` (``ES``) or ``gseapy.gsva`` on ``matrix``
    (genes x samples); computed once per (matrix, method, gene sets): every signature of a
    method is scored in one call and later requests for the same rows come from a cache."""
    import gseapy

    h = hashlib.sha1()
    h.update(np.ascontiguousarray(matrix.to_numpy(np.float64)).tobytes())
    h.update("\0".join(map(str, matrix.index)).encode())
    h.update(repr(sorted((k, tuple(v)) for k, v in gene_sets.items())).encode())
    key = (method, h.hexdigest())
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    sets = {k: list(v) for k, v in gene_sets.items()}
    common = dict(min_size=1, max_size=100000, threads=1, outdir=None, seed=0, verbose=False)
    if method == "ssgsea":
        res = gseapy.ssgsea(matrix, sets, sample_norm_method="rank", correl_norm_type="rank",
                            weight=0.25, **common)
    else:
        res = gseapy.gsva(matrix, sets, kcdf="Gaussian", mx_diff=True, **common)
    out = res.res2d.pivot(index="Name", columns="Term", values="ES").astype(float)
    out = out.reindex(index=matrix.columns)
    _CACHE[key] = out
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return out


def weighted_mean_score(z: np.ndarray, weights) -> np.ndarray:
    """PredictioR's ``geneSigMean``: ``sum(weight * z) / (number of genes present)`` per
    row of the within-cohort z-scores ``z`` (samples x genes; a gene absent is all NaN)."""
    w = np.asarray(weights, dtype=float)
    present = ~np.all(np.isnan(z), axis=0)
    zz = np.where(np.isnan(z), 0.0, z)[:, present]
    return (zz * w[present]).sum(axis=1) / max(int(present.sum()), 1)


def cox_is_score(values: np.ndarray, weights) -> np.ndarray:
    """COX-IS: mean log2 expression of the +1 genes over that of the -1 genes, per sample
    (``values`` samples x genes, NaN for an absent gene)."""
    w = np.asarray(weights, dtype=float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pos = np.nanmean(values[:, w == 1], axis=1)
        neg = np.nanmean(values[:, w == -1], axis=1)
        return pos / neg


def ips_score(sample_z: np.ndarray, weights, groups, classes) -> np.ndarray:
    """The raw immunophenoscore (PredictioR's ``IPSfun`` ``AZ``): ``sample_z`` are the IPS
    genes z-scored within each sample (samples x genes); per gene group the mean z times the
    mean weight, averaged within each class (MHC, CP, EC, SC), the four class means summed."""
    w = np.asarray(weights, dtype=float)
    groups, classes = np.asarray(groups), np.asarray(classes)
    total = np.zeros(sample_z.shape[0])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for cls in ("MHC", "CP", "EC", "SC"):
            per_group = []
            for g in pd.unique(groups[classes == cls]):
                cols = groups == g
                per_group.append(np.nanmean(sample_z[:, cols], axis=1) * np.nanmean(w[cols]))
            if per_group:
                total = total + np.nanmean(np.column_stack(per_group), axis=1)
    return total


class SignatureTransform(TableTransform):
    """The score of one library signature for every row of a cohort table, as a float32
    ``(n, 1)`` matrix (direction applied, z-scored within cohort). Learns no label: ``fit``
    freezes the within-cohort gene statistics and score statistics of its cohorts.
    ``coverage_`` (``{cohort: fraction of the signature's genes present}``) and
    ``missing_genes_`` describe the training cohorts, ``last_coverage_`` and
    ``last_missing_genes_`` the cohorts last transformed.

    Args:
        signature: the signature's name (``IFN_Ayers`` or ``sig:IFN_Ayers``).
        signatures_dir: the SignatureSets folder (see :func:`resolve_signatures_dir`).
        min_gene_fraction: a cohort with a smaller fraction of the genes is refused.
    """

    def __init__(self, signature="IFN_Ayers", signatures_dir=None,
                 min_gene_fraction=MIN_GENE_FRACTION):
        self.signature = signature
        self.signatures_dir = signatures_dir
        self.min_gene_fraction = min_gene_fraction

    @property
    def name(self):
        bare = self.signature[len(PREFIX):] if is_signature(self.signature) else self.signature
        return PREFIX + bare

    def _sig(self) -> Signature:
        if not hasattr(self, "signature_"):
            return get_signature(self.signature, self.signatures_dir)
        return self.signature_

    def _genome_wide(self, sig) -> bool:
        return sig.scorer in ("ssgsea", "gsva", "predictio", "ips")

    def _coverage(self, sig, values, cohorts):
        genes = list(dict.fromkeys(sig.genes))
        col = {g: i for i, g in enumerate(sig.genes)}
        coverage, missing = {}, {}
        for c in np.unique(cohorts):
            absent = np.all(np.isnan(values[cohorts == c]), axis=0)
            have = [g for g in genes if not absent[col[g]]]
            frac = len(have) / len(genes)
            coverage[str(c)] = frac
            gone = [g for g in genes if absent[col[g]]]
            if gone:
                missing[str(c)] = gone
            parts = [(sig.genes, "genes")]
            if sig.scorer == "predictio":
                parts = [([g for g, w in zip(sig.genes, sig.weights) if w == s], f"{lab} genes")
                         for s, lab in ((1.0, "sensitive"), (-1.0, "resistance"))]
            for part, what in parts:
                part = list(dict.fromkeys(part))
                n_have = sum(not absent[col[g]] for g in part)
                if n_have == 0 or n_have < self.min_gene_fraction * len(part):
                    raise InputDataError(
                        f"signature {sig.name}: cohort {c} has {n_have} of its {len(part)} "
                        f"{what} ({100 * n_have / len(part):.0f}%, the floor is "
                        f"{100 * self.min_gene_fraction:.0f}%); a genome-wide cohort table "
                        "is needed")
        return coverage, missing

    def _all_genes(self, table):
        from amu_tf.data.cohort_table import all_gene_columns

        numeric = set(table.select_dtypes("number").columns)
        return [g for g in all_gene_columns(table) if g in numeric]

    def fit(self, table, y=None):
        self._check_table(table)
        sig = _check_file(get_signature(self.signature, self.signatures_dir))
        self.signature_ = sig
        cohorts = cohort_keys(table)
        values = gene_values(table, sig.genes)
        self.coverage_, self.missing_genes_ = self._coverage(sig, values, cohorts)
        self.genes_ = list(dict.fromkeys(sig.genes))
        full = None
        if self._genome_wide(sig) and sig.scorer != "ips":
            self.background_ = self._all_genes(table)
            full = table[self.background_].to_numpy(np.float64)
            self.gene_statistics_ = CohortStatistics(self.background_).fit(full, cohorts)
        elif sig.scorer == "weighted_mean":
            self.gene_statistics_ = CohortStatistics(sig.genes).fit(values, cohorts)
        else:
            self.gene_statistics_ = None
        self._gsva_context = {}  # see __getstate__: in memory only
        # the background is read and standardised once: _enrich keeps GSVA's context from it
        raw = self._raw(table, cohorts, values, full=full, fit_context=True)
        self.score_statistics_ = CohortStatistics(("score",)).fit(raw[:, None], cohorts)
        self.n_features_out_ = 1
        return self

    def __getstate__(self):
        # the GSVA context (a cohort's fit rows x every background gene) would make a saved
        # Model artifact tens of MB per signature; a loaded transform scores without it
        state = dict(self.__dict__)
        state.pop("_gsva_context", None)
        return state

    def _raw(self, table, cohorts, values, full=None, fit_context=False):
        """The signature's score with its direction, before the within-cohort z-score
        (``full``, ``fit_context``: of :meth:`_enrich`)."""
        sig = self.signature_
        if sig.scorer == "weighted_mean":
            raw = weighted_mean_score(self.gene_statistics_.standardise(values, cohorts),
                                      sig.weights)
        elif sig.scorer == "cox_is":
            raw = cox_is_score(values, sig.weights)
        elif sig.scorer == "ips":
            raw = self._ips(table)
        else:
            raw = self._enrich(table, cohorts, full=full, fit_context=fit_context)
        return sig.direction * np.asarray(raw, dtype=np.float64)

    def _ips(self, table):
        sig = self.signature_
        genes = self._all_genes(table)
        full = table[genes].to_numpy(np.float64)
        n_genes = np.isfinite(full).sum(axis=1)
        if (n_genes < IPS_MIN_GENES).any():
            raise InputDataError(
                f"signature {sig.name}: IPS standardises each sample over its whole "
                f"transcriptome and needs at least {IPS_MIN_GENES} genes per sample (found "
                f"{int(n_genes.min())}); use a genome-wide cohort table")
        with np.errstate(all="ignore"):
            mean = np.nanmean(full, axis=1, keepdims=True)
            sd = np.nanstd(full, axis=1, ddof=1, keepdims=True)
        z = (gene_values(table, sig.genes) - mean) / sd
        return ips_score(z, sig.weights, sig.groups, sig.classes)

    def _enrich(self, table, cohorts, full=None, fit_context=False):
        """ssGSEA, GSVA or PredictIO scores of ``table``'s rows, cohort by cohort. ``full``:
        the background matrix when the caller has read it already. ``fit_context`` (at fit):
        afterwards keep each cohort's standardised rows as GSVA's context for a small group
        of that cohort scored later (module docstring)."""
        sig = self.signature_
        lib = load_signatures(self.signatures_dir)
        method = "ssgsea" if sig.scorer == "ssgsea" else "gsva"
        # the background genes are the training table's own numeric columns (no aliases)
        if full is None:
            full = table.reindex(columns=self.background_).to_numpy(np.float64)
        z = self.gene_statistics_.standardise(full, cohorts)
        if sig.scorer == "predictio":
            sets = {f"{sig.name}|{lab}": [g for g, w in zip(sig.genes, sig.weights) if w == s]
                    for s, lab in ((1.0, "sensitive"), (-1.0, "resistance"))}
        else:
            sets = {s.name: list(s.genes) for s in lib.values()
                    if s.scorable and s.scorer == sig.scorer}
        out = np.full(len(table), np.nan)
        context = getattr(self, "_gsva_context", {})
        for c in np.unique(cohorts):
            rows = np.flatnonzero(cohorts == c)
            block = z[rows]
            n_context = 0
            if method == "gsva" and len(rows) < MIN_NEW_COHORT:
                if str(c) not in context:
                    raise InputDataError(
                        f"signature {sig.name}: GSVA scores the samples of cohort {c} together "
                        f"and needs at least {MIN_NEW_COHORT} of them (got {len(rows)})")
                n_context = len(context[str(c)])  # scored with the cohort's fit rows
                block = np.vstack([context[str(c)].astype(np.float64), block])
            keep = np.isfinite(block).all(axis=0)
            mat = pd.DataFrame(block[:, keep].T, index=np.asarray(self.background_)[keep],
                               columns=[f"s{i}" for i in range(len(block))])
            mat = mat[~mat.index.duplicated()]
            present = set(mat.index)
            use = {k: [g for g in v if g in present] for k, v in sets.items()}
            use = {k: v for k, v in use.items() if v}
            scores = _enrichment(mat, method, use).iloc[n_context:]
            if sig.scorer == "predictio":
                out[rows] = (scores[f"{sig.name}|sensitive"].to_numpy()
                             - scores[f"{sig.name}|resistance"].to_numpy())
            else:
                out[rows] = scores[sig.name].to_numpy()
        if fit_context and method == "gsva":
            self._gsva_context = {str(c): z[cohorts == c].astype(np.float32)
                                  for c in np.unique(cohorts)}
        return out

    def transform(self, table):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "signature_")
        self._check_table(table)
        cohorts = cohort_keys(table)
        values = gene_values(table, self.signature_.genes)
        self.last_coverage_, self.last_missing_genes_ = self._coverage(self.signature_, values,
                                                                       cohorts)
        raw = self._raw(table, cohorts, values)
        z = self.score_statistics_.standardise(raw[:, None], cohorts)
        return z.astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        return np.asarray([self.name], dtype=object)


def unscorable_signatures(table: pd.DataFrame, names, signatures_dir=None) -> dict:
    """``{sig:<name>: reason}`` for the signatures among ``names`` that some cohort of
    ``table`` cannot score (fewer of its genes than the coverage floor, or its gene-set file
    missing from the folder): what a group such as ``sig:*`` leaves out on these cohorts,
    said rather than failing the whole evaluation. Reads only which genes each cohort
    measures, never a label."""
    from amu_tf.biomarkers.biomarker_score import cohort_keys, gene_values

    out = {}
    cohorts = cohort_keys(table)
    for name in names:
        if not is_signature(name):
            continue
        tf_ = SignatureTransform(name, signatures_dir)
        sig = get_signature(name, signatures_dir)
        if sig.missing:
            out[name] = f"signature {sig.name}: {sig.missing}"
            continue
        try:
            tf_._coverage(sig, gene_values(table, sig.genes), cohorts)
        except InputDataError as exc:
            out[name] = str(exc)
    return out


def signature_scores(table: pd.DataFrame, signature: str, signatures_dir=None) -> np.ndarray:
    """The ``(n,)`` z-scored, direction-applied score of one signature for a table, each
    cohort standardised with its own rows (``SignatureTransform().fit_transform``)."""
    return SignatureTransform(signature, signatures_dir).fit_transform(table)[:, 0]


__all__ = ["ENV_VAR", "GROUPS", "IPS_MIN_GENES", "MIN_GENE_FRACTION", "PREFIX", "Signature",
           "SignatureTransform", "cox_is_score", "expand_model_names", "get_signature",
           "ips_score", "is_signature", "list_signatures", "load_signatures",
           "resolve_signatures_dir", "signature_scores", "weighted_mean_score"]
