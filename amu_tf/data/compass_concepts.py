"""``CompassConcepts``: COMPASS encoder outputs -> gene, gene-set or cell-type/pathway
concept features, from the wheel's tokenizer tables.

COMPASS reads its encoder out through a projector (``compass/projector/``): the gene tokens'
encodings are pooled per gene set (132 sets of its ``conception_processed.tsv``), each gene
set is scored to a scalar, and the gene-set scores are pooled per broad cell type / pathway
concept (43, ``Reference`` last). Its trained projector (attention pooling weights, a linear
scorer) is not in the wheel, only the encoder, so the port uses COMPASS's own label-free
pooling path (``mode="pooling"`` in its code): the mean of a set's gene-token encodings,
then the mean of a concept's gene-set vectors, and one of three readouts:

- ``"mean"``: the mean over the ``d`` = 32 channels (COMPASS's ``GeneSetScorePooling``);
  needs no fit;
- ``"pc1"`` (default): the first principal component of each feature's ``d``-vector, fitted
  on the rows given to ``fit`` (expression only, never labels), oriented to correlate
  positively with the ``"mean"`` readout over those rows; a linear scorer of one channel
  combination per feature, which is what COMPASS's scorer learns, here chosen without labels;
- ``"vector"``: the ``d``-vectors themselves, flattened (``n_features * d`` columns).

The gene level (``level="gene"``) is COMPASS's own gene-level readout
(``Extractor(..., with_gene_level=True)`` in ``compass/model/tune.py``): its gene-set scorer
applied to each gene token's encoding, which under the label-free pooling scorer is the mean
over the ``d`` channels, one feature per gene (15,672). Only the ``"mean"`` readout exists
there: a ``pc1`` direction per gene would be 15,672 x 32 parameters fitted on a few hundred
rows, and ``"vector"`` 501,504 columns.
"""

from __future__ import annotations

import io
import weakref

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from amu_tf.errors import InputDataError

LEVELS = ("gene", "geneset", "concept")
READOUTS = ("pc1", "mean", "vector")
#: the readouts each level offers (see the module docstring for why the gene level has one)
LEVEL_READOUTS = {"gene": ("mean",), "geneset": READOUTS, "concept": READOUTS}


def check_level_readout(level, readout, who="compass_concepts", allow_auto=True) -> None:
    """Raise ValueError, in one line prefixed by ``who``, unless ``level`` is one of
    :data:`LEVELS` and ``readout`` one of the readouts that level offers
    (:data:`LEVEL_READOUTS`); with ``allow_auto`` either may also be ``"auto"``."""
    auto = ("auto",) if allow_auto else ()
    if not (isinstance(level, str) and level in auto + LEVELS):
        raise ValueError(f"{who}: level must be one of "
                         f"{', '.join(repr(v) for v in auto + LEVELS)}, not {level!r}")
    if not (isinstance(readout, str) and readout in auto + READOUTS):
        raise ValueError(f"{who}: readout must be one of "
                         f"{', '.join(repr(v) for v in auto + READOUTS)}, not {readout!r}")
    if level in LEVEL_READOUTS and readout not in auto + LEVEL_READOUTS[level]:
        raise ValueError(f"{who}: level {level!r} has only the readout(s) "
                         f"{', '.join(repr(v) for v in LEVEL_READOUTS[level])}, not "
                         f"{readout!r}")


def concept_tables(concepts_tsv: str, genes) -> dict:
    """COMPASS's projector tables: ``gene_names`` (the gene tokens in order),
    ``geneset_names`` (by ``GeneSet_index``),
    ``geneset_members`` (gene token indices of each set, genes outside the tokens dropped),
    ``concept_names`` (by ``Concept_index``, ``Reference`` last, as COMPASS orders them) and
    ``concept_members`` (gene-set positions of each concept)."""
    table = pd.read_csv(io.StringIO(concepts_tsv), sep="\t", index_col=0)
    table = table.sort_values("GeneSet_index")
    index = {g: i for i, g in enumerate(genes)}
    members = [[index[g] for g in str(s).split(":") if g in index] for s in table["Genes"]]
    names = [str(n) for n in table.index]
    order = (table[["BroadCelltypePathway", "Concept_index"]].drop_duplicates()
             .sort_values("Concept_index")["BroadCelltypePathway"].tolist())
    order = [c for c in order if c != "Reference"] + (["Reference"] if "Reference" in order else [])
    pos = {n: i for i, n in enumerate(names)}
    concept_members = [[pos[n] for n in table.index[table["BroadCelltypePathway"] == c]]
                       for c in order]
    return {"n_genes": len(genes), "gene_names": [str(g) for g in genes],
            "geneset_names": names, "geneset_members": members,
            "concept_names": order, "concept_members": concept_members}


def pooling_matrix(members, n_columns) -> np.ndarray:
    """``(len(members), n_columns)`` float32 matrix whose rows average their members."""
    m = np.zeros((len(members), n_columns), dtype=np.float32)
    for i, idx in enumerate(members):
        if idx:
            m[i, idx] = 1.0 / len(idx)
    return m


def _default_tables():
    from amu_tf.utils.transformers.convert_compass import load_compass_assets

    assets = load_compass_assets()
    return concept_tables(assets["concepts"], assets["genes"])


def _gene_tokens(encodings, tables) -> np.ndarray:
    """The gene tokens ``(n, n_genes, d)`` of the encoder's output ``(n, n_genes + 2, d)``
    (or of the gene tokens alone, ``(n, n_genes, d)``)."""
    enc = np.asarray(encodings, dtype=np.float32)
    n_genes = int(tables["n_genes"])
    if enc.ndim != 3 or enc.shape[1] not in (n_genes, n_genes + 2):
        raise InputDataError(f"compass_concepts: encodings of shape {enc.shape}; expected "
                             f"(samples, {n_genes} + 2 tokens, d) or (samples, {n_genes}, d)")
    return enc[:, 2:, :] if enc.shape[1] == n_genes + 2 else enc


def geneset_vectors(encodings, tables=None) -> np.ndarray:
    """``(n, n_genesets, d)``: the mean gene-token encoding of each gene set, from the
    encoder's output ``(n, n_genes + 2, d)`` (or its gene tokens alone, ``(n, n_genes, d)``)."""
    tables = tables or _default_tables()
    genes = _gene_tokens(encodings, tables)
    pool = pooling_matrix(tables["geneset_members"], genes.shape[1])
    return np.einsum("sg,ngd->nsd", pool, genes)


def gene_scores(encodings, tables=None) -> np.ndarray:
    """``(n, n_genes)``: COMPASS's gene-level readout under its pooling scorer, the mean of
    each gene token's encoding over the ``d`` channels."""
    tables = tables or _default_tables()
    return _gene_tokens(encodings, tables).mean(-1)


#: what the encoder is read out to, per kind: the NumPy reference of each compiled path
_READ_OUT_BY_KIND = {"geneset": geneset_vectors, "gene": gene_scores}


def encode_genesets(model, inputs: dict, batch_size=16, tables=None, compiled=True) -> np.ndarray:
    """Run a :class:`~amu_tf.models.compass_encoder.CompassEncoder` batch by batch and keep
    only the gene-set vectors ``(n, n_genesets, d)`` (the full encodings of a cohort would
    take 2 MB per sample).

    With ``compiled`` (the default) the encoder and the pooling run as one compiled function
    (:func:`_extractor`: XLA under TensorFlow, ``jax.jit`` under JAX), which fuses
    the Performer's element-wise feature maps instead of writing each intermediate
    ``(batch, heads, tokens, features)`` tensor to memory: about 3x the eager path and 1.5x
    the same graph without XLA on CPU (benchmarks/bench_compass.py), the same values to
    float32 rounding (about 3e-7 relative).
    The last batch is padded to ``batch_size`` with zero rows (dropped from the output), so
    one shape is compiled per process; each sample is encoded on its own (the per-sample
    key stabiliser), so a row's output does not depend on its batch-mates. An encoder with
    the reference's batch-wide stabiliser (``key_stabilizer="batch"``) is not padded.
    ``compiled=False`` calls the model eagerly and pools in NumPy (the reference path the
    compiled one is tested against)."""
    return _encode(model, inputs, batch_size, tables, compiled, "geneset")


def encode_genes(model, inputs: dict, batch_size=16, tables=None, compiled=True) -> np.ndarray:
    """As :func:`encode_genesets`, keeping the gene-level scores ``(n, n_genes)`` of
    :func:`gene_scores` instead."""
    return _encode(model, inputs, batch_size, tables, compiled, "gene")


def _encode(model, inputs, batch_size, tables, compiled, kind):
    tables = tables or _default_tables()
    n = len(inputs["expression"])
    pool = pooling_matrix(tables["geneset_members"], int(tables["n_genes"]))
    extract = _extractor(model, pool, kind) if compiled else None
    pad = compiled and getattr(model, "key_stabilizer", "sample") == "sample"
    out = []
    for start in range(0, n, batch_size):
        batch = {k: np.asarray(v)[start:start + batch_size] for k, v in inputs.items()}
        if extract is None:
            enc = model(batch, training=False)
            out.append(_READ_OUT_BY_KIND[kind](np.asarray(enc), tables))
            continue
        rows = len(batch["expression"])
        if pad and rows < batch_size:
            batch = {k: np.concatenate([v, np.zeros((batch_size - rows,) + v.shape[1:], v.dtype)])
                     for k, v in batch.items()}
        part = np.asarray(extract(np.asarray(batch["expression"], np.float32),
                                  np.asarray(batch["cancer_type"], np.int32)))
        out.append(part[:rows])
    return np.concatenate(out, axis=0)


#: compiled extractors of each live model, by kind and pooling-matrix digest (the functions
#: hold the model only weakly, so an entry goes when its model does)
_EXTRACTORS = weakref.WeakKeyDictionary()


def _extractor(model, pool, kind="geneset"):
    """A compiled ``(expression, cancer_type) -> readout`` function of ``model``: the gene-set
    vectors ``(n, n_genesets, d)`` (``kind="geneset"``, pooled by ``pool``) or the gene-level
    scores ``(n, n_genes)`` (``kind="gene"``). It reads the model's current weights at every
    call (so weights assigned later, as the tests' random encoders are, are used)."""
    import hashlib

    import keras

    key = (kind, pool.shape, hashlib.sha1(pool.tobytes()).hexdigest())
    cached = _EXTRACTORS.setdefault(model, {})
    if key in cached:
        return cached[key]
    model_ref = weakref.ref(model)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        pool_t = tf.constant(pool)

        def readout(genes):
            if kind == "gene":
                return tf.reduce_mean(genes, axis=-1)
            return tf.einsum("sg,ngd->nsd", pool_t, genes)

        @tf.function(jit_compile=True, reduce_retracing=True)
        def extract(expression, cancer_type):
            enc = model_ref()({"expression": expression, "cancer_type": cancer_type},
                              training=False)
            return readout(enc[:, 2:, :])
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        pool_j = jnp.asarray(pool)

        @jax.jit
        def _jitted(trainable, non_trainable, expression, cancer_type):
            inputs = {"expression": expression, "cancer_type": cancer_type}
            enc, _ = model_ref().stateless_call(trainable, non_trainable, inputs,
                                                training=False)
            if kind == "gene":
                return jnp.mean(enc[:, 2:, :], axis=-1)
            return jnp.einsum("sg,ngd->nsd", pool_j, enc[:, 2:, :])

        def extract(expression, cancer_type):
            m = model_ref()
            return _jitted([v.value for v in m.trainable_variables],
                           [v.value for v in m.non_trainable_variables],
                           expression, cancer_type)
    else:  # another backend: eager, read out in NumPy
        def extract(expression, cancer_type):
            enc = np.asarray(model_ref()({"expression": expression,
                                          "cancer_type": cancer_type}, training=False))
            if kind == "gene":
                return enc[:, 2:, :].mean(-1)
            return np.einsum("sg,ngd->nsd", pool, enc[:, 2:, :])
    cached[key] = extract
    return extract


class CompassConcepts(TransformerMixin, BaseEstimator):
    """Concept features from COMPASS encoder outputs (see the module docstring).

    ``fit(X)`` / ``transform(X)`` take the encoder's output ``(n, n_genes + 2, d)`` or, pooled
    beforehand, the gene-set vectors of :func:`encode_genesets` ``(n, 132, d)`` (gene-set and
    concept levels) or the gene-level scores of :func:`encode_genes` ``(n, n_genes)`` (gene
    level); ``transform`` gives float32 ``(n, n_features)`` (``(n, n_features * d)`` for
    ``readout="vector"``).

    Args:
        level: ``"gene"`` (one feature per gene token, ``"mean"`` readout only),
            ``"geneset"`` (132 gene sets) or ``"concept"`` (43 cell-type / pathway
            concepts, ``Reference`` last).
        readout: ``"pc1"``, ``"mean"`` or ``"vector"``.
        tables: :func:`concept_tables` output; default: read from the converted wheel.
    """

    def __init__(self, level="concept", readout="pc1", tables=None):
        self.level = level
        self.readout = readout
        self.tables = tables

    def _vectors(self, X):
        tables = self.tables or _default_tables()
        X = np.asarray(X, dtype=np.float32)
        if self.level == "gene":
            n_genes = int(tables["n_genes"])
            scores = X if X.ndim == 2 and X.shape[1] == n_genes else gene_scores(X, tables)
            names = tables.get("gene_names") or [f"gene{i}" for i in range(n_genes)]
            return scores, names
        n_sets = len(tables["geneset_names"])
        sets = X if X.ndim == 3 and X.shape[1] == n_sets else geneset_vectors(X, tables)
        if self.level == "geneset":
            return sets, tables["geneset_names"]
        pool = pooling_matrix(tables["concept_members"], n_sets)
        return np.einsum("cs,nsd->ncd", pool, sets), tables["concept_names"]

    def fit(self, X, y=None):
        """Learn the readout (``pc1``: one direction per feature) from ``X``; ``y`` ignored."""
        try:
            check_level_readout(self.level, self.readout, allow_auto=False)
        except ValueError as exc:
            raise InputDataError(str(exc)) from None
        vec, names = self._vectors(X)
        self.feature_names_ = list(names)
        self.d_ = int(vec.shape[-1]) if vec.ndim == 3 else 1
        if self.readout == "pc1":
            if len(vec) < 2:
                raise InputDataError("compass_concepts: readout 'pc1' needs at least 2 rows")
            self.center_ = vec.mean(axis=0)                                # (f, d)
            directions = np.empty_like(self.center_)
            for f in range(vec.shape[1]):
                z = vec[:, f, :] - self.center_[f]
                _, _, vt = np.linalg.svd(z, full_matrices=False)
                u = vt[0]
                if np.corrcoef(z @ u, vec[:, f, :].mean(-1))[0, 1] < 0:
                    u = -u
                directions[f] = u
            self.directions_ = directions
        return self

    def transform(self, X):
        check_is_fitted(self, "feature_names_")
        vec, _ = self._vectors(X)
        if vec.ndim == 2:  # gene level: already one score per gene
            out = vec
        elif self.readout == "mean":
            out = vec.mean(-1)
        elif self.readout == "vector":
            out = vec.reshape(len(vec), -1)
        else:
            out = np.einsum("nfd,fd->nf", vec - self.center_, self.directions_)
        return np.nan_to_num(out).astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_")
        if self.readout == "vector":
            return np.asarray([f"{n}:{k}" for n in self.feature_names_ for k in range(self.d_)],
                              dtype=object)
        return np.asarray(self.feature_names_, dtype=object)
