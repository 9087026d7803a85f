"""A scikit-learn meta-estimator: hyper-parameter search nested inside the rows it is fitted
on, then a decision threshold from out-of-fold predictions on those same rows.

``SearchedClassifier(estimator, param_grid).fit(X, y)``:

1. an inner stratified k-fold (``inner_cv`` folds, seeded) over the rows given to ``fit``
   (grouped by patient when ``fit`` gets ``groups``);
2. ``GridSearchCV`` (or ``RandomizedSearchCV`` with ``n_iter``) scored by ROC AUC on those
   folds; every scaler inside ``estimator`` (a Pipeline) is refitted per inner fold;
3. the best parameters refitted on all the given rows (``best_estimator_``);
4. ``cross_val_predict`` of the best parameters on the same inner folds: out-of-fold
   positive-class probabilities, from which Youden's J picks ``threshold_``.

Called on the training rows of an outer split, nothing here ever sees the outer test rows:
that is what makes the search *nested*. ``inner_splits_`` records the inner folds (positions
into the fitted rows) so tests can check it.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_predict,
)

from amu_tf.errors import InputDataError
from amu_tf.training._checks import check_per_class
from amu_tf.training._sklearn_input import fit_input, predict_input
from amu_tf.training.threshold import threshold_margin, youden_threshold


class SearchedClassifier(ClassifierMixin, BaseEstimator):
    """Nested hyper-parameter search plus an out-of-fold Youden threshold.

    Args:
        estimator: an unfitted scikit-learn classifier or Pipeline with ``predict_proba``.
        param_grid: grid (dict or list of dicts) for ``GridSearchCV``, or distributions
            for ``RandomizedSearchCV`` when ``n_iter`` is set.
        n_iter: None for an exhaustive grid; an int samples that many candidates.
        inner_cv: number of inner stratified folds (each class needs at least this many
            samples).
        scoring: search criterion (ROC AUC by default).
        calibrate: wrap the chosen estimator in ``CalibratedClassifierCV`` (sigmoid /
            Platt scaling, ``ensemble=False``, its own seeded ``inner_cv``-fold split of
            the same rows) for estimators without ``predict_proba`` such as SVC; the
            search itself ranks candidates by their decision function.
        seed: seeds the inner folds and the random search.
        n_jobs: passed to the search.
    """

    def __init__(self, estimator, param_grid, n_iter=None, inner_cv=3, scoring="roc_auc",
                 calibrate=False, seed=0, n_jobs=1):
        self.estimator = estimator
        self.param_grid = param_grid
        self.n_iter = n_iter
        self.inner_cv = inner_cv
        self.scoring = scoring
        self.calibrate = calibrate
        self.seed = seed
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        # binary only (responder vs not): scikit-learn's multi-class checks do not apply
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X, y, groups=None):
        """Search, refit and choose the threshold on ``X``, ``y`` only; ``groups`` (e.g.
        patient ids) keeps each group inside one inner fold."""
        X, self.classes_, y01 = fit_input(self, X, y)
        # float64 from here on: a float32 matrix product (BLAS) rounds a row differently
        # depending on where it falls in the kernel's blocks, so a row's probability would
        # depend on the other rows given with it (~1e-7; seen on AVX-512 CPUs); float64
        # keeps that below 1e-15
        X = np.asarray(X, dtype=np.float64)
        what = f"the inner {self.inner_cv}-fold CV of the hyper-parameter search"
        check_per_class(y01, self.classes_, self.inner_cv, what)
        if groups is None:
            cv = StratifiedKFold(n_splits=self.inner_cv, shuffle=True, random_state=self.seed)
            splits = cv.split(X, y01)
        else:
            groups = np.asarray(groups)
            if len(groups) != len(X):
                raise InputDataError(f"groups has {len(groups)} entries for {len(X)} rows")
            if len(np.unique(groups)) < self.inner_cv:
                raise InputDataError(
                    f"too few patients for {what}: need at least {self.inner_cv}, got "
                    f"{len(np.unique(groups))}"
                )
            cv = StratifiedGroupKFold(n_splits=self.inner_cv, shuffle=True,
                                      random_state=self.seed)
            splits = cv.split(X, y01, groups)
        self.inner_splits_ = [(tr, te) for tr, te in splits]
        for _, te in self.inner_splits_:
            if len(np.unique(y01[te])) < 2:
                raise InputDataError(f"too few samples per class for {what}: an inner fold "
                                     "has a single class")
        common = dict(scoring=self.scoring, cv=self.inner_splits_, n_jobs=self.n_jobs,
                      refit=False, error_score="raise")
        if self.n_iter is None:
            search = GridSearchCV(clone(self.estimator), self.param_grid, **common)
        else:
            search = RandomizedSearchCV(clone(self.estimator), self.param_grid,
                                        n_iter=self.n_iter, random_state=self.seed, **common)
        t0 = time.perf_counter()
        search.fit(X, y01)
        self.best_params_ = dict(search.best_params_)
        self.best_score_ = float(search.best_score_)
        self.n_candidates_ = len(search.cv_results_["params"])
        best = clone(self.estimator).set_params(**self.best_params_)
        if self.calibrate:
            from sklearn.calibration import CalibratedClassifierCV

            best = CalibratedClassifierCV(
                best, method="sigmoid", ensemble=False,
                cv=StratifiedKFold(self.inner_cv, shuffle=True, random_state=self.seed),
            )
        self.oof_proba_ = cross_val_predict(
            best, X, y01, cv=self.inner_splits_, method="predict_proba", n_jobs=self.n_jobs
        )[:, 1]
        # not TunedThresholdClassifierCV: it averages fold scores on a grid, not this pooled cut
        self.threshold_ = youden_threshold(y01, self.oof_proba_)
        self.threshold_method_ = "youden_oof"
        self.threshold_margin_ = threshold_margin(self.oof_proba_, self.threshold_)
        self.best_estimator_ = clone(best).fit(X, y01)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) probabilities, columns in ``classes_`` order."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "best_estimator_")
        X = np.asarray(predict_input(self, X), dtype=np.float64)  # as in fit
        return np.asarray(self.best_estimator_.predict_proba(X), dtype=np.float64)

    def predict(self, X) -> np.ndarray:
        """Class labels at the frozen ``threshold_`` on the positive-class probability."""
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p >= self.threshold_).astype(int)]
