"""``GroupDROLogisticRegression``: logistic regression that minimises the worst cohort's loss.

Group distributionally robust optimisation (Sagawa et al., ICLR 2020) with the cohorts as
groups: instead of the mean log-loss over all rows, which a large cohort dominates, it seeks
the weights whose *largest* per-cohort mean log-loss is smallest, so that no training cohort
is sacrificed to fit the others; a solution that holds in every training cohort is more
likely to hold in a new one (issue #15, lever 3).

Fitted by the exponentiated-gradient scheme of that paper on whole batches: the cohort weights
``q`` start uniform; each round refits an L2 logistic regression with each row weighted
``q[cohort] / n[cohort]`` and then raises the weights of the cohorts whose loss is high,
``q <- q * exp(step * loss)``, normalised. Labels and cohorts of the training rows only.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from amu_tf.training._sklearn_input import fit_input, predict_input


class GroupDROLogisticRegression(ClassifierMixin, BaseEstimator):
    """Args:
        C: inverse L2 strength of the logistic regression (on standardised inputs).
        rounds: exponentiated-gradient rounds.
        step: the step size of the cohort-weight update.

    Learned: ``coef_`` / ``intercept_`` (on the original input scale), ``cohort_weights_``
    (the final ``q``, by cohort name in ``cohorts_``), ``cohort_losses_`` (their mean
    log-losses at the end).
    """

    def __init__(self, C=1.0, rounds=50, step=1.0):
        self.C = C
        self.rounds = rounds
        self.step = step

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # one logistic output: responder or not
        return tags

    def fit(self, X, y, cohorts=None):
        X, self.classes_, y = fit_input(self, X, y, float64=True)
        cohorts = np.asarray(["all"] * len(y) if cohorts is None else cohorts).astype(str)
        self.cohorts_, idx = np.unique(cohorts, return_inverse=True)
        n_per = np.bincount(idx).astype(np.float64)
        scaler = StandardScaler().fit(X)
        Xs = scaler.transform(X)
        q = np.full(len(self.cohorts_), 1.0 / len(self.cohorts_))
        clf = LogisticRegression(C=self.C, max_iter=1000)
        for _ in range(int(self.rounds)):
            clf.fit(Xs, y, sample_weight=(q / n_per)[idx] * len(y))
            p = np.clip(clf.predict_proba(Xs)[:, 1], 1e-12, 1 - 1e-12)
            row_loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
            losses = np.bincount(idx, weights=row_loss) / n_per
            q = q * np.exp(self.step * losses)
            q = q / q.sum()
        self.coef_ = clf.coef_ / scaler.scale_
        self.intercept_ = clf.intercept_ - self.coef_ @ scaler.mean_
        self.cohort_weights_ = q
        self.cohort_losses_ = losses
        return self

    def decision_function(self, X):
        """The logit of P(``classes_[1]``) (positive: predicted ``classes_[1]``)."""
        check_is_fitted(self, "coef_")
        X = predict_input(self, X, float64=True)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        positive = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[positive.astype(int)]
