"""``RecipeClassifier``: one of :data:`TRANSFER_RECIPES` as a scikit-learn classifier."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from amu_tf.training.transfer_recipes import TRANSFER_RECIPES, immune_genes


class RecipeClassifier(ClassifierMixin, BaseEstimator):
    """A transfer recipe: ``make_input_transform()`` is what it reads (the protocols fit it on
    the training rows), ``fit``/``predict_proba`` the estimator on that input.

    Args:
        recipe: a key of :data:`TRANSFER_RECIPES`.
        seed: seed of the inner estimator.
        estimator_params: extra parameters of the inner estimator (e.g. ``epochs``).
    """

    def __init__(self, recipe="stack", seed=0, estimator_params=None):
        self.recipe = recipe
        self.seed = seed
        self.estimator_params = estimator_params

    def _spec(self):
        try:
            return TRANSFER_RECIPES[self.recipe]
        except KeyError:
            raise ValueError(f"unknown recipe {self.recipe!r}; known: "
                             f"{', '.join(TRANSFER_RECIPES)}") from None

    def make_input_transform(self):
        kind = self._spec()["input"]
        if kind == "signature_scores":
            from amu_tf.biomarkers.signature_scores_transform import SignatureScoresTransform

            return SignatureScoresTransform()
        if kind == "immune_genes":
            from amu_tf.data.transforms.gene_set_transform import GeneSetTransform

            return GeneSetTransform(immune_genes())
        from amu_tf.data.transforms import get_transform

        return get_transform("rank")

    def fit(self, X, y, groups=None):
        from amu_tf.training import make_estimator

        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        name = self._spec()["estimator"]
        if name == "logreg_direction":
            from amu_tf.biomarkers.biomarker_classifier import BiomarkerClassifier

            inner = make_estimator("logreg", seed=self.seed).fit(X, y, groups=groups)
            pipe = inner.best_estimator_
            w = pipe.named_steps["clf"].coef_[0] / pipe.named_steps["scale"].scale_
            self.direction_ = w / max(float(np.abs(w).sum()), 1e-12)
            self.estimator_ = BiomarkerClassifier("stack-direction").fit(
                X @ self.direction_[:, None], y)
        elif name == "mean":
            from amu_tf.biomarkers.biomarker_classifier import BiomarkerClassifier

            self.estimator_ = BiomarkerClassifier("consensus").fit(X.mean(axis=1,
                                                                   keepdims=True), y)
        else:
            params = dict(self.estimator_params or {})
            if name.startswith("amu"):  # the model reads the recipe's genes, not the panel
                params["model_overrides"] = dict(params.get("model_overrides") or {},
                                                 n_genes=X.shape[1])
            self.estimator_ = make_estimator(name, seed=self.seed, **params)
            self.estimator_.fit(X, y, groups=groups)
        self.threshold_ = float(self.estimator_.threshold_)
        self.threshold_method_ = self.estimator_.threshold_method_
        return self

    def _inner_input(self, X):
        X = np.asarray(X, dtype=np.float32)
        name = self._spec()["estimator"]
        if name == "mean":
            return X.mean(axis=1, keepdims=True)
        if name == "logreg_direction":
            return X @ self.direction_[:, None]
        return X

    def predict_proba(self, X):
        return self.estimator_.predict_proba(self._inner_input(X))

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)
