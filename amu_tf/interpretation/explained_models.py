"""The models of an interpretation, loaded once, with their input, scores and predictions on
the explained rows.

    bundle = ModelBundle.load("runs/x/model_amu")
    m = explained_model("amu:small", bundle, table, rows)
    m.X, m.scores, m.predicted, m.gene_embedding

What a model is comes from what it declares: ``model_info.json``'s ``kind`` (``keras`` for a
zoo model, ``biomarker``, ``recipe``, ``searched`` / ``sklearn`` for the searched baselines),
falling back to the estimator's class (:func:`amu_tf.training.estimator_kind`) for a bundle
whose ``model_info.json`` does not say; the gene embedding is that of an AMU Keras model
(:attr:`amu_tf.models.amu_model.AMUModel.gene_embeddings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from amu_tf.errors import InputDataError
from amu_tf.interpretation.explained_rows import ExplainedRows

if TYPE_CHECKING:  # amu_tf.training imports Keras: loaded when a model is
    from amu_tf.training.model_bundle import ModelBundle


def model_kind(bundle: ModelBundle) -> str:
    """``keras``, ``biomarker``, ``recipe`` or the baselines' kind, as ``model_info.json``
    records it (else as the estimator's class says)."""
    info = bundle.model_info
    return str(info.kind if info is not None and info.kind else bundle.kind)


def gene_embedding(bundle: ModelBundle) -> np.ndarray | None:
    """The ``n_genes x d`` gene embedding of an AMU (or AMU-FT) Keras model, else None (other
    zoo models, the baselines, biomarkers and recipes have none)."""
    if model_kind(bundle) != "keras":
        return None
    from amu_tf.models.amu_model import AMUModel

    model = bundle.keras_model
    return model.gene_embeddings if isinstance(model, AMUModel) else None


def as_bundle(model, name: str = "model") -> ModelBundle:
    """A :class:`ModelBundle` as it is, or one made from an in-memory ``(estimator, transform,
    info)`` triple: ``transform`` None means the table's panel-gene columns are the input;
    ``info`` holds ``model_info.json`` entries (``training_cohorts``, ``threshold`` unless the
    estimator has ``threshold_``); ``kind`` and ``model`` default to what the estimator's
    class says and ``name``.

    A bare Keras model (logits) in the triple is wrapped in a
    :class:`~amu_tf.training.zoo_classifier.ZooClassifier` with the threshold of ``info``,
    as :class:`ModelBundle` does for a Model artifact holding only ``model.keras``."""
    from amu_tf.training import estimator_kind
    from amu_tf.training.model_bundle import ModelBundle
    from amu_tf.training.model_info import ModelInfo

    if isinstance(model, ModelBundle):
        return model
    estimator, transform, info = model
    threshold = getattr(estimator, "threshold_", None)
    import keras

    bare = isinstance(estimator, keras.Model)
    info = ModelInfo.from_json({"model": name,
                                "kind": "keras" if bare else estimator_kind(estimator),
                                **({"threshold": threshold} if threshold is not None else {}),
                                **info}, where=f"the info of model {name}")
    if bare:
        estimator = ModelBundle.zoo_from_keras(estimator, info)
    return ModelBundle(estimator, transform, info)


@dataclass
class ExplainedModel:
    """One model of an interpretation and what it gives on the table.

    ``X`` is the model's input for every row of the table (the fitted transform's output);
    ``scores`` (P(responder)) and ``predicted`` (0/1 at the frozen threshold) are on the
    explained rows.
    """

    bundle: ModelBundle
    X: np.ndarray
    scores: np.ndarray
    predicted: np.ndarray

    @property
    def estimator(self):
        return self.bundle.estimator

    @property
    def gene_embedding(self) -> np.ndarray | None:
        return gene_embedding(self.bundle)


def explained_model(name: str, bundle: ModelBundle, table, rows: ExplainedRows,
                    genes: list) -> ExplainedModel:
    """The model's input, scores and predictions for ``table``; raises
    :class:`InputDataError` when its input is not one column per panel gene (SHAP here
    attributes to panel genes)."""
    kind = model_kind(bundle)
    X = bundle.features(table)
    if X.shape[1] != len(genes):
        reads = {"biomarker": " (a biomarker reads its own score)",
                 "recipe": " (a recipe reads its own input)"}.get(kind, "")
        raise InputDataError(f"model {name}: input has {X.shape[1]} columns, expected "
                             f"{len(genes)}{reads}")
    p = np.asarray(bundle.estimator.predict_proba(X[rows.explain]))[:, 1]
    if bundle.calibration is not None:  # the threshold is in the recalibrated scale
        p = bundle.calibration.apply(p)
    return ExplainedModel(bundle, X, p, (p >= bundle.threshold).astype(int))
