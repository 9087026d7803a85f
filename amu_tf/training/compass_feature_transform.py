"""``CompassFeatureTransform``: a genome-wide cohort table -> COMPASS concept features,
z-scored within cohort (the input of ``recipe:compass-probe``)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
from sklearn.utils.validation import check_is_fitted

from amu_tf.biomarkers.biomarker_score import MIN_NEW_COHORT, cohort_keys
from amu_tf.data.transforms.table_transform import TableTransform
from amu_tf.errors import InputDataError

#: encoder gene-set vectors by key (see ``CompassFeatureTransform``); label-free
_MEMORY_CACHE: dict = {}
_ENCODERS: dict = {}
_LOCK = threading.Lock()
#: bump when what is cached changes meaning (pooling, key recipe)
CACHE_VERSION = "v1"


def _cache_root() -> Path:
    base = os.environ.get("AMU_TF_CACHE_DIR") or os.path.join(Path.home(), ".cache", "amu_tf")
    return Path(base) / "compass" / "features"


#: the readouts ``"auto"`` chooses between (``vector`` is too wide for a few hundred patients)
AUTO_READOUTS = ("pc1", "mean")
AUTO_LEVELS = ("concept", "geneset")


def feature_variants(level, readout) -> list:
    """``[(level, readout), ...]`` the transform outputs, in column order: one, or every
    combination when ``level`` or ``readout`` is ``"auto"``."""
    from amu_tf.data.compass_concepts import LEVEL_READOUTS

    levels = AUTO_LEVELS if level == "auto" else (level,)
    out = []
    for lv in levels:
        readouts = (AUTO_READOUTS if readout == "auto" else (readout,))
        if readout == "auto" and lv in LEVEL_READOUTS:  # the gene level has "mean" only
            readouts = tuple(ro for ro in readouts if ro in LEVEL_READOUTS[lv])
        out += [(lv, ro) for ro in readouts]
    return out


def feature_blocks(level, readout, tables) -> list:
    """``[(label, start, stop), ...]``: the columns of each variant of
    :func:`feature_variants` in the transform's output (``readout="vector"`` is 32 wide per
    feature)."""
    out, start = [], 0
    for lv, ro in feature_variants(level, readout):
        n = (int(tables["n_genes"]) if lv == "gene" else
             len(tables["geneset_names" if lv == "geneset" else "concept_names"]))
        n *= 32 if ro == "vector" else 1
        out.append((f"{lv}-{ro}", start, start + n))
        start += n
    return out


def _kind(level) -> str:
    """The encoder read-out a level is computed from: ``"gene"`` (gene-level scores) for the
    gene level, ``"geneset"`` (gene-set vectors) for the gene-set and concept levels."""
    return "gene" if level == "gene" else "geneset"


def clear_memory_cache() -> None:
    """Forget the in-memory encoder features (tests; the disk cache is left)."""
    with _LOCK:
        _MEMORY_CACHE.clear()


class CompassFeatureTransform(TableTransform):
    """COMPASS's pre-trained encoder read out as concept features, label-free.

    ``table`` -> :class:`~amu_tf.data.transforms.compass_input_transform.CompassInputTransform`
    (COMPASS's 15,672 genes, log2(TPM + 1), min-max per cohort) -> the ``compass`` encoder
    (pre-trained, frozen) -> the mean gene-token encoding of each of COMPASS's 132 gene sets
    (or, for ``level="gene"``, each gene token's mean over its channels: COMPASS's gene-level
    readout, 15,672 features) -> :class:`~amu_tf.data.compass_concepts.CompassConcepts`
    (``level``, ``readout``; the ``pc1`` directions are fitted on the rows given to ``fit``,
    expression only) -> each feature z-scored within its cohort: mean and sd from the fit rows
    of a cohort seen at ``fit``, and for a cohort not seen there from that cohort's own rows at
    ``transform`` (expression only, never labels; at least 5 samples), as ``cohort_z`` does.
    Output float32 ``(n, n_features)``; the arithmetic after the encoder is float64.

    **Cache, and why it is leak-free.** The encoder is slow on CPU, so the gene-set vectors
    ``(132, 32)`` (and the gene-level scores ``(15672,)``, under their own keys) of each
    sample are cached in memory (and, with ``disk_cache``, under
    ``$AMU_TF_CACHE_DIR/compass/features/``), keyed by a SHA-256 of the encoder's identity
    (preset and converted-weights hash, or a test config and its seed), the cancer-type code
    and the bytes of the sample's scaled float32 input row. The cached value is a fixed
    function of its key (a frozen, pre-trained encoder of that exact row), and neither the key
    nor the value involves a label, a split or another sample (the encoder's key stabiliser is
    per sample), so reading it back is the same as recomputing it: nothing learned in one split
    can reach another. What does depend on the split (the ``pc1`` directions, the z-scores,
    everything fitted on labels downstream) is never cached. With the per-cohort scaler (the
    default) a sample's scaled row is the same in every split that holds its whole cohort, so a
    protocol with many splits runs the encoder once per sample; another scaler only changes the
    rows, hence the keys.

    Args:
        level, readout: of :class:`~amu_tf.data.compass_concepts.CompassConcepts`; either
            may be ``"auto"``: the output then holds one column block per combination
            (:func:`feature_blocks`), for the probe to choose between by inner
            leave-one-cohort-out. ``"auto"`` levels are concept and gene set; the gene level
            (``"mean"`` readout only) is chosen by name.
        cohort_units: ``{cohort: unit}`` of the cohorts (CohortTable summary; e.g.
            ``{"GSE91061_pre": "counts"}``); a cohort not named takes the unit the table
            carries (a CohortTable read from its folder does), else TPM.
        scaler_fit, max_missing_fraction: of ``CompassInputTransform``.
        cancer_type: TCGA code of the cancer-type token (melanoma: ``SKCM``).
        cohort_cancer_types: ``{cohort: TCGA code}`` for cohorts of another cancer
            (pan-cancer auxiliary training); a cohort not named gets ``cancer_type``.
        batch_size: encoder batch size.
        disk_cache: also keep the encoder features on disk.
        encoder_config: ``None`` for the pre-trained ``compass`` preset, or a
            ``CompassEncoder`` config with random weights drawn from ``encoder_seed`` (tests;
            then ``genes`` and ``tables`` must be given).
        genes, tables: COMPASS's gene order and concept tables (default: from the wheel).
    """

    name = "compass_features"
    #: what the model reads (``model_info.json``'s ``input_scale``, the export's
    #: ``expected_input_scale``)
    input_scale = ("features of the frozen pre-trained COMPASS encoder (gene, gene-set or "
                   "concept level), z-scored within each cohort, computed from COMPASS's "
                   "15,672 genes on log2(x + 1) of each cohort's unit, min-max scaled per gene "
                   "(scaler_fit); NOT the 160-gene panel")

    def __init__(self, level="concept", readout="pc1", cohort_units=None,
                 scaler_fit="per_cohort", max_missing_fraction=0.2, cancer_type="SKCM",
                 cohort_cancer_types=None, batch_size=16, disk_cache=True, encoder_config=None,
                 encoder_seed=0, genes=None, tables=None):
        self.level = level
        self.readout = readout
        self.cohort_units = cohort_units
        self.scaler_fit = scaler_fit
        self.max_missing_fraction = max_missing_fraction
        self.cancer_type = cancer_type
        self.cohort_cancer_types = cohort_cancer_types
        self.batch_size = batch_size
        self.disk_cache = disk_cache
        self.encoder_config = encoder_config
        self.encoder_seed = encoder_seed
        self.genes = genes
        self.tables = tables

    # encoder ------------------------------------------------------------------------------
    def _encoder_id(self) -> str:
        if self.encoder_config is None:
            from amu_tf.utils.transformers.convert_compass import COMPASS_WHEEL_SHA256

            return f"compass-{COMPASS_WHEEL_SHA256[:16]}"
        blob = json.dumps({"config": self.encoder_config, "seed": int(self.encoder_seed)},
                          sort_keys=True)
        return "random-" + hashlib.sha256(blob.encode()).hexdigest()[:16]

    def _encoder(self):
        key = self._encoder_id()
        with _LOCK:
            if key in _ENCODERS:
                return _ENCODERS[key]
        from amu_tf.models.compass_encoder import CompassEncoder

        if self.encoder_config is None:
            model = CompassEncoder.from_preset("compass")
        else:
            model = CompassEncoder(**self.encoder_config)
            rng = np.random.default_rng(self.encoder_seed)
            for var in model.weights:
                shape = tuple(var.shape)
                var.assign((rng.standard_normal(shape) * 0.3).astype(np.float32))
        with _LOCK:
            _ENCODERS[key] = model
        return model

    def _tables(self):
        if self.tables is not None:
            return self.tables
        from amu_tf.data.compass_concepts import _default_tables

        return _default_tables()

    def _row_keys(self, X, code, kind="geneset"):
        # the gene-set vectors keep the key they had before the gene level existed
        tag = "" if kind == "geneset" else f"{kind}|"
        prefix = f"{CACHE_VERSION}|{self._encoder_id()}|{int(code)}|{tag}".encode()
        return [hashlib.sha256(prefix + np.ascontiguousarray(row).tobytes()).hexdigest()
                for row in X]

    def _disk_dir(self):
        return _cache_root() / f"{self._encoder_id()}-{CACHE_VERSION}"

    def geneset_vectors(self, X, code):
        """``(n, n_genesets, d)`` float32 encoder gene-set vectors of the scaled input rows
        ``X`` (``(n, n_genes)`` float32), from the cache where present; the rows missing from
        it are encoded in the order of their keys (so a row's batch does not depend on the
        order of ``X``) and cached."""
        return self.encoder_features(X, code, "geneset")

    def encoder_features(self, X, code, kind="geneset"):
        """The encoder's read-out of the scaled input rows ``X``: the gene-set vectors
        (``kind="geneset"``, ``(n, n_genesets, d)``) or COMPASS's gene-level scores
        (``kind="gene"``, ``(n, n_genes)``), float32, cached per row and kind as
        :meth:`geneset_vectors` says."""
        from amu_tf.data.compass_concepts import encode_genes, encode_genesets

        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        keys = self._row_keys(X, code, kind)
        out = [None] * len(keys)
        disk = self._disk_dir() if self.disk_cache else None
        todo = {}
        for i, k in enumerate(keys):
            with _LOCK:
                hit = _MEMORY_CACHE.get(k)
            if hit is None and disk is not None and (disk / f"{k}.npy").is_file():
                try:
                    hit = np.load(disk / f"{k}.npy")
                except (OSError, ValueError):
                    hit = None
                if hit is not None:
                    with _LOCK:
                        _MEMORY_CACHE[k] = hit
            if hit is None:
                todo.setdefault(k, i)
            else:
                out[i] = hit
        if todo:
            order = sorted(todo)
            rows = X[[todo[k] for k in order]]
            inputs = {"expression": rows, "cancer_type": np.full(len(rows), int(code), np.int32)}
            encode = encode_genes if kind == "gene" else encode_genesets
            sets = encode(self._encoder(), inputs, batch_size=self.batch_size,
                          tables=self._tables())
            if disk is not None:
                disk.mkdir(parents=True, exist_ok=True)
            for k, v in zip(order, sets):
                v = np.asarray(v, dtype=np.float32)
                with _LOCK:
                    _MEMORY_CACHE[k] = v
                if disk is not None:
                    tmp = disk / f".{k}.{os.getpid()}.tmp.npy"
                    np.save(tmp, v)
                    os.replace(tmp, disk / f"{k}.npy")
            for i, k in enumerate(keys):
                if out[i] is None:
                    out[i] = _MEMORY_CACHE[k]
        if not out:
            return np.zeros((0, 0) if kind == "gene" else (0, 0, 0), np.float32)
        return np.stack(out).astype(np.float32)

    # fit / transform --------------------------------------------------------------------
    def _input(self):
        from amu_tf.data.transforms.compass_input_transform import CompassInputTransform

        return CompassInputTransform(scaler_fit=self.scaler_fit,
                                     max_missing_fraction=self.max_missing_fraction,
                                     cohort_units=self.cohort_units,
                                     cancer_type=self.cancer_type, genes=self.genes)

    def _codes(self, table):
        """Each row's cancer-type token: ``cohort_cancer_types`` by cohort, else
        ``cancer_type``."""
        codes = np.full(len(table), self.input_.cancer_code_, dtype=np.int64)
        if self.cohort_cancer_types:
            from amu_tf.utils.transformers.convert_compass import load_compass_assets

            table_codes = load_compass_assets()["cancer_codes"]
            cohorts = cohort_keys(table)
            for c, t in self.cohort_cancer_types.items():
                if t not in table_codes or table_codes[t] < 0:
                    raise InputDataError(f"compass_features: unknown cancer type {t!r} for "
                                         f"cohort {c}")
                codes[cohorts == str(c)] = table_codes[t]
        return codes

    def _raw_features(self, table):
        """``{kind: encoder read-out}`` of ``table``'s rows for each kind the feature
        variants read: ``"gene"`` for the gene level, ``"geneset"`` for the others."""
        X = self.input_.transform(table)
        codes = self._codes(table)
        kinds = sorted({_kind(lv) for lv, _ in feature_variants(self.level, self.readout)})
        raw = {}
        for kind in kinds:
            for code in np.unique(codes):
                rows = codes == code
                part = self.encoder_features(X[rows], code, kind)
                if kind not in raw:
                    raw[kind] = np.zeros((len(X),) + part.shape[1:], dtype=np.float32)
                raw[kind][rows] = part
        return raw

    def fit(self, table, y=None):
        """Fit the input scaler, the readout(s) and the per-cohort z-scores on ``table``'s
        expression (``y`` is ignored)."""
        self._check_table(table)
        from amu_tf.data.compass_concepts import CompassConcepts, check_level_readout

        try:  # before the encoder runs
            check_level_readout(self.level, self.readout, "compass_features")
        except ValueError as exc:
            raise InputDataError(str(exc)) from None
        self.input_ = self._input().fit(table)
        raw = self._raw_features(table)
        tables = {**self._tables()}
        tables.setdefault("gene_names", list(self.input_.genes_))
        self.concepts_ = [CompassConcepts(level=lv, readout=ro, tables=tables)
                          .fit(raw[_kind(lv)])
                          for lv, ro in feature_variants(self.level, self.readout)]
        F = self._concept_features(raw)
        cohorts = cohort_keys(table)
        self.cohort_stats_ = {str(c): self._stats(F[cohorts == c]) for c in np.unique(cohorts)}
        self.blocks_ = feature_blocks(self.level, self.readout, self._tables())
        self.missing_genes_ = self.input_.missing_genes_
        self.genes_ = list(self.input_.genes_)  # what it reads (the model's gene list)
        self.n_features_out_ = F.shape[1]
        return self

    def _concept_features(self, raw):
        return np.concatenate(
            [np.asarray(c.transform(raw[_kind(c.level)]), dtype=np.float64)
             for c in self.concepts_], axis=1)

    @staticmethod
    def _stats(F):
        mean = F.mean(axis=0)
        sd = F.std(axis=0)
        return mean, np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)

    def transform(self, table):
        check_is_fitted(self, "cohort_stats_")
        self._check_table(table)
        F = self._concept_features(self._raw_features(table))
        cohorts = cohort_keys(table)
        out = np.empty_like(F)
        for c in np.unique(cohorts):
            rows = cohorts == c
            if str(c) in self.cohort_stats_:
                mean, sd = self.cohort_stats_[str(c)]
            else:
                if rows.sum() < MIN_NEW_COHORT:
                    raise InputDataError(
                        f"compass_features: cohort {c} was not seen at fit and has only "
                        f"{int(rows.sum())} sample(s); its features are z-scored with its own "
                        f"rows, which needs at least {MIN_NEW_COHORT}")
                mean, sd = self._stats(F[rows])
            out[rows] = (F[rows] - mean) / sd
        return out.astype(np.float32)

    def artifact_record(self) -> dict:
        """The input transform's record (the scaler's choice and its measured effect,
        :meth:`CompassInputTransform.artifact_record`) plus this transform's own: ``level``,
        ``readout``, the column blocks of the feature variants (``blocks_``) and
        ``n_features_out_``. ``{}`` before ``fit``."""
        if not hasattr(self, "input_"):
            return {}
        return {**self.input_.artifact_record(), "level": self.level, "readout": self.readout,
                "blocks_": [[label, int(a), int(b)] for label, a, b in self.blocks_],
                "n_features_out_": int(self.n_features_out_)}

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "concepts_")
        return np.concatenate([[f"{lv}-{ro}:{n}" for n in c.get_feature_names_out()]
                               for (lv, ro), c in zip(feature_variants(self.level, self.readout),
                                                      self.concepts_)]).astype(object)
