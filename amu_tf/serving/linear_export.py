"""The models that are a few multiply-adds (the published biomarkers, the L2 logistic
regression) as small Keras models, so ``amu export`` writes them as TF-Serving SavedModels
with the same signature as the zoo models (``probability``, ``logits``, ``predicted_class``).

* A ``mean_z`` / ``weighted_z`` biomarker: input = its genes' z-scores within the cohort (the
  standardisation needs the cohort, so it runs before the graph, as ``cohort_z`` does for the
  zoo models: ``amu predict`` applies it from ``assets/transform/``); the graph computes the
  (weighted) mean and ``logit = (score - center) / scale``. A gene missing in a cohort is 0
  there (its cohort mean) instead of being left out of the mean.
* IMPRES: input = its 15 genes' raw log2 values; the pair comparisons run in the graph, one
  sample at a time (nothing before the graph: any TF Serving client can call it).
* ``logreg``: input = the Model artifact's transform output (160 panel genes); the graph
  applies the fitted StandardScaler and the logistic regression.
* ``recipe:consensus``, ``recipe:stack-direction``: input = the seven signature scores,
  z-scored within the cohort (computed before the graph from the signatures' genes); the graph
  takes their mean or their learnt weighted sum. Here the signature's input (7 scores) is not
  the gene list of the metadata (the genes the scores are computed from).

* ``recipe:compass-probe``: input = the probe's COMPASS concept features (the pre-trained
  encoder's read-out, z-scored within the cohort: computed before the graph, by ``amu
  predict`` from ``assets/transform/``, which needs the converted encoder in the cache); the
  graph applies the probe's logistic regression (or its direction, centre and scale).

TIDE (``tidepy``) and the tree and kernel baselines cannot be written as such a graph; their
Model artifacts are served by ``amu predict --model <Model artifact>`` instead.
"""

from __future__ import annotations

import numpy as np

from amu_tf.errors import ArtifactError


def _logit_pair(t):
    """``[batch, 1]`` -> logits ``[batch, 2]`` = ``[0, t]`` (so softmax gives sigmoid(t))."""
    import keras

    return keras.ops.concatenate([keras.ops.zeros_like(t), t], axis=-1)


def _affine_model(n, weights, bias, name):
    """``x [batch, n] -> [0, x . weights + bias]`` as a Keras model with frozen weights."""
    import keras

    inp = keras.Input(shape=(n,), dtype="float32", name="expression")
    dense = keras.layers.Dense(1, name="score", trainable=False)
    t = dense(inp)
    dense.set_weights([np.asarray(weights, np.float32).reshape(n, 1),
                       np.asarray([bias], np.float32)])
    logits = keras.layers.Lambda(_logit_pair, name="logits")(t)
    return keras.Model(inp, logits, name=name)


def _impres_model(pairs, genes, center, scale):
    import keras

    col = {g: i for i, g in enumerate(genes)}
    a_idx = [col[a] for a, _ in pairs]
    b_idx = [col[b] for _, b in pairs]

    def score(x):
        a = keras.ops.take(x, a_idx, axis=1)
        b = keras.ops.take(x, b_idx, axis=1)
        hits = keras.ops.sum(keras.ops.cast(a > b, "float32"), axis=1, keepdims=True)
        return (hits - center) / scale

    inp = keras.Input(shape=(len(genes),), dtype="float32", name="expression")
    t = keras.layers.Lambda(score, name="impres")(inp)
    logits = keras.layers.Lambda(_logit_pair, name="logits")(t)
    return keras.Model(inp, logits, name="impres")


def serving_model(bundle):
    """``(keras_model, transform_or_None, genes, description)`` for a non-Keras Model
    artifact that can be a graph; :class:`ArtifactError` naming why when it cannot."""
    from amu_tf.biomarkers.biomarker_classifier import BiomarkerClassifier
    from amu_tf.biomarkers.biomarker_presets import BIOMARKERS, biomarker_genes
    from amu_tf.training.recipe_classifier import RecipeClassifier

    from amu_tf.training.compass_probe_classifier import CompassProbeClassifier

    est = bundle.estimator
    if isinstance(est, CompassProbeClassifier):
        w = est.score_weights()  # zero outside the chosen feature block
        if est.direction_ is None:
            weights, bias = w, float(est.estimator_.intercept_[0])
        else:
            weights, bias = w / est.scale_, -est.center_ / est.scale_
        model = _affine_model(len(w), weights, bias, "compass_probe")
        return model, bundle.transform, list(bundle.model_info.genes), (
            f"{len(w)} COMPASS concept features (pre-trained encoder, z within cohort, "
            f"computed before the graph) weighed by recipe:{est.recipe}'s logistic regression")
    weights = est.score_weights() if isinstance(est, RecipeClassifier) else None
    if weights is not None and est._spec()["input"] == "signature_scores":
        # the signature scores need whole cohorts (assets/transform/, applied by amu predict);
        # the graph weighs them: the consensus mean, or the stack's learnt direction
        k = len(bundle.transform.biomarkers)
        w = np.asarray(weights)
        inner = est.estimator_
        model = _affine_model(k, w / inner.scale_, -inner.center_ / inner.scale_,
                              est.recipe.replace("-", "_"))
        genes = list(bundle.model_info.genes)
        return model, bundle.transform, genes, (
            f"{k} signature scores (z within cohort, computed before the graph) weighed in it")
    if isinstance(est, BiomarkerClassifier):
        spec = BIOMARKERS[est.biomarker]
        genes = list(biomarker_genes(est.biomarker))
        if spec["kind"] == "pairs":
            model = _impres_model(spec["pairs"], genes, est.center_, est.scale_)
            return model, None, genes, "IMPRES pair counts in the graph, on raw log2 values"
        if spec["kind"] not in ("mean_z", "weighted_z"):
            raise ArtifactError(f"biomarker {est.biomarker} ({spec['label']}) runs outside "
                                "TensorFlow and cannot be a SavedModel; predict with `amu "
                                "predict --model <its Model artifact>`")
        w = (np.full(len(genes), 1.0 / len(genes)) if spec["kind"] == "mean_z"
             else np.asarray([spec["weights"][g] for g in genes]))
        model = _affine_model(len(genes), w / est.scale_, -est.center_ / est.scale_,
                              est.biomarker)
        from amu_tf.data.transforms.gene_set_transform import GeneSetTransform

        zs = GeneSetTransform(tuple(genes), min_gene_fraction=0.0)
        zs.genes_, zs.missing_genes_ = genes, []
        zs.statistics_ = bundle.transform.statistics_  # the training cohorts' frozen stats
        return model, zs, genes, "weighted mean of the genes' z-scores within cohort"
    pipe = getattr(est, "best_estimator_", None)
    steps = dict(getattr(pipe, "named_steps", {}))
    clf, scale = steps.get("clf"), steps.get("scale")
    if (type(clf).__name__ == "LogisticRegression" and scale is not None
            and len(steps) == 2 and getattr(clf, "coef_", np.zeros((2, 1))).shape[0] == 1):
        mu, sd = np.asarray(scale.mean_), np.asarray(scale.scale_)
        w = clf.coef_[0] / sd
        b = float(clf.intercept_[0] - np.sum(clf.coef_[0] * mu / sd))
        genes = list(bundle.model_info.genes)
        return (_affine_model(len(w), w, b, "logreg"), bundle.transform, genes,
                "StandardScaler + logistic regression")
    raise ArtifactError(f"{bundle.name} ({bundle.kind}) cannot be written as a TensorFlow "
                        "graph; predict with `amu predict --model <its Model artifact>`")
