"""``RecipeClassifier``: one of :data:`TRANSFER_RECIPES` as a scikit-learn classifier."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from amu_tf.training._sklearn_input import fit_input, predict_input
from amu_tf.training.transfer_recipes import TRANSFER_RECIPES, immune_genes


class RecipeClassifier(ClassifierMixin, BaseEstimator):
    """A transfer recipe: ``make_input_transform()`` is what it reads (the protocols fit it on
    the training rows), ``fit``/``predict_proba`` the estimator on that input.

    ``fit`` takes the training rows' ``cohorts`` (names, not labels) for the recipes that
    select by inner leave-one-cohort-out or weigh the cohorts (group DRO); with one training
    cohort, or none given, they fall back to patient-grouped stratified inner splits
    (``selection_used_`` says which ran). It takes ``unlabeled`` expression for the recipes
    that pre-train (``wants_unlabeled``).

    Args:
        recipe: a key of :data:`TRANSFER_RECIPES`.
        seed: seed of the inner estimator.
        estimator_params: extra parameters of the inner estimator (e.g. ``epochs``).
    """

    def __init__(self, recipe="stack", seed=0, estimator_params=None):
        self.recipe = recipe
        self.seed = seed
        self.estimator_params = estimator_params

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # responder or not
        # the consensus mean passes a NaN score on to the biomarker classifier, which allows it
        spec = TRANSFER_RECIPES.get(self.recipe, {})
        tags.input_tags.allow_nan = spec.get("estimator") == "mean"
        tags.classifier_tags.poor_score = spec.get("estimator") == "mean"  # nothing learnt
        return tags

    def _spec(self):
        try:
            return TRANSFER_RECIPES[self.recipe]
        except KeyError:
            raise ValueError(f"unknown recipe {self.recipe!r}; known: "
                             f"{', '.join(TRANSFER_RECIPES)}") from None

    @property
    def wants_unlabeled(self) -> bool:
        """Whether ``fit`` reads unlabeled expression (masked-gene pre-training)."""
        return "pretrain" in self._spec()

    def make_input_transform(self):
        spec = self._spec()
        kind = spec["input"]
        if kind == "signature_scores":
            from amu_tf.biomarkers.signature_scores_transform import SignatureScoresTransform

            return SignatureScoresTransform()
        if kind == "immune_genes":
            from amu_tf.data.transforms.gene_set_transform import GeneSetTransform

            return GeneSetTransform(immune_genes())
        if kind == "variable_genes":
            from amu_tf.data.transforms.variable_genes_transform import VariableGenesTransform

            return VariableGenesTransform(spec["n_genes"])
        from amu_tf.data.transforms import get_transform

        return get_transform({"panel_rank": "rank", "panel_z": "cohort_z"}[kind])

    def _inner_groups(self, groups, cohorts, y):
        """``(groups, n_splits or None, selection)`` of the inner splits: the training
        cohorts under ``selection="loco"`` when there are two or more and each holds both
        classes (a one-class cohort cannot score a held-out AUC), else the patients."""
        if self._spec().get("selection") == "loco" and cohorts is not None:
            cohorts = np.asarray(cohorts).astype(str)
            names = np.unique(cohorts)
            both = all(len(np.unique(y[cohorts == c])) == 2 for c in names)
            if len(names) >= 2 and both:
                return cohorts, len(names), "loco"
        return groups, None, "stratified"

    def fit(self, X, y, groups=None, cohorts=None, unlabeled=None):
        from amu_tf.biomarkers.biomarker_classifier import BiomarkerClassifier
        from amu_tf.training import make_estimator

        spec = self._spec()
        # NaN/inf are left to the inner estimator, which refuses or allows them
        X, self.classes_, y = fit_input(self, X, y, allow_nan=True)
        # float64, as the searched baselines: a float32 product rounds a row by its position
        X = np.asarray(X, dtype=np.float64)
        name = spec["estimator"]
        inner_groups, n_splits, self.selection_used_ = self._inner_groups(groups, cohorts, y)
        self.direction_ = None
        if name == "mean":
            self.estimator_ = BiomarkerClassifier("consensus").fit(X.mean(axis=1,
                                                                   keepdims=True), y)
        elif name == "group_dro":
            from amu_tf.training.group_dro_logistic_regression import (
                GroupDROLogisticRegression)

            self.linear_ = GroupDROLogisticRegression().fit(X, y, cohorts=cohorts)
            w = self.linear_.coef_[0]
        elif name == "logreg":
            extra = dict(self.estimator_params or {})
            if n_splits is not None:
                extra["inner_cv"] = n_splits
            self.linear_ = make_estimator("logreg", seed=self.seed, **extra).fit(
                X, y, groups=inner_groups)
            pipe = self.linear_.best_estimator_
            w = pipe.named_steps["clf"].coef_[0] / pipe.named_steps["scale"].scale_
            if not spec.get("direction"):
                self.estimator_ = self.linear_
        else:  # a zoo model
            params = dict(self.estimator_params or {})
            if name.startswith("amu") and X.shape[1] != 160:
                # the model reads the recipe's genes, not the panel
                params["model_overrides"] = dict(params.get("model_overrides") or {},
                                                 n_genes=X.shape[1])
            if "pretrain" in spec:
                params.setdefault("pretrain", dict(spec["pretrain"]))
            if n_splits is not None:  # early stopping on one whole training cohort
                params["validation_fraction"] = 1.0 / n_splits
            self.estimator_ = make_estimator(name, seed=self.seed, **params)
            self.estimator_.fit(X, y, groups=inner_groups, unlabeled=unlabeled)
        if name in ("group_dro", "logreg") and (spec.get("direction") or name == "group_dro"):
            self.direction_ = w / max(float(np.abs(w).sum()), 1e-12)
            self.estimator_ = BiomarkerClassifier(self.recipe).fit(
                X @ self.direction_[:, None], y)
        self.threshold_ = float(self.estimator_.threshold_)
        self.threshold_method_ = self.estimator_.threshold_method_
        self.threshold_margin_ = getattr(self.estimator_, "threshold_margin_", None)
        return self

    def score_weights(self):
        """The weights of the input columns in the score (the consensus mean or the learnt
        direction), or None when the recipe's score is not a fixed weighted sum of them."""
        if self._spec()["estimator"] == "mean":
            return np.full(self.n_features_in_, 1.0 / self.n_features_in_)
        direction = getattr(self, "direction_", None)  # absent in older artifacts
        return None if direction is None else np.asarray(direction)

    def _inner_input(self, X):
        check_is_fitted(self, "estimator_")
        X = np.asarray(predict_input(self, X, allow_nan=True), dtype=np.float64)
        if self._spec()["estimator"] == "mean":
            return X.mean(axis=1, keepdims=True)
        direction = getattr(self, "direction_", None)  # absent in older artifacts
        if direction is not None:
            return X @ direction[:, None]
        return X

    def predict_proba(self, X):
        X = self._inner_input(X)
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        """Class labels at the frozen ``threshold_`` on the positive-class probability."""
        positive = self.predict_proba(X)[:, 1] >= self.threshold_
        return self.classes_[positive.astype(int)]
