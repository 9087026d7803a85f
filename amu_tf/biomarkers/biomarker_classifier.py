"""``BiomarkerClassifier``: a training-free biomarker as a scikit-learn classifier."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from amu_tf.biomarkers.biomarker_presets import BIOMARKERS
from amu_tf.biomarkers.biomarker_transform import BiomarkerTransform


class BiomarkerClassifier(ClassifierMixin, BaseEstimator):
    """Classifies by one published biomarker's score: higher = predicted responder.

    ``X`` is the ``(n, 1)`` score column of :class:`BiomarkerTransform` (the protocols call
    :meth:`make_input_transform` to get it, so the biomarker reads its own genes of the
    genome-wide table, not the model panel); a wider ``X`` is read by its first column, and a
    NaN score is allowed (predicted ``classes_[0]``, left out of the threshold). ``fit``
    learns nothing from the labels but the decision threshold: ``center_`` and ``scale_``
    (median and IQR of the training scores: label-free) map a score to
    ``p = sigmoid((score - center_) / scale_)``, and ``threshold_`` is the Youden-optimal
    ``p`` on the training rows, frozen.
    """

    def __init__(self, biomarker="cd8a"):
        self.biomarker = biomarker

    def make_input_transform(self):
        """The unfitted transform whose output this classifier takes."""
        return BiomarkerTransform(self.biomarker)

    @property
    def description(self):
        return BIOMARKERS[self.biomarker]["description"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # higher score = responder: two classes
        tags.input_tags.allow_nan = True  # a score that cannot be computed is NaN
        tags.classifier_tags.poor_score = True  # learns a threshold on one score, no fit
        return tags

    def _proba1(self, s):
        return 1.0 / (1.0 + np.exp(-(s - self.center_) / self.scale_))

    def fit(self, X, y, groups=None):
        """Freeze ``center_``/``scale_`` from the scores (the first column of ``X``) and the
        Youden threshold from the rows whose score is finite."""
        from amu_tf.training._sklearn_input import fit_input
        from amu_tf.training.threshold import threshold_margin, youden_threshold

        X, self.classes_, y = fit_input(self, X, y, allow_nan=True)
        s = np.asarray(X, dtype=np.float64)[:, 0]
        finite = np.isfinite(s)
        self.center_ = float(np.median(s[finite])) if finite.any() else 0.0
        q75, q25 = (np.percentile(s[finite], [75, 25]) if finite.any() else (1.0, 0.0))
        self.scale_ = float(q75 - q25) if q75 > q25 else 1.0
        p = self._proba1(s)
        self.threshold_ = float(youden_threshold(y[finite], p[finite]))
        self.threshold_method_ = "youden_train"
        self.threshold_margin_ = threshold_margin(p[finite], self.threshold_)
        return self

    def _scores(self, X):
        from sklearn.utils.validation import check_is_fitted

        from amu_tf.training._sklearn_input import predict_input

        check_is_fitted(self, "threshold_")
        return np.asarray(predict_input(self, X, allow_nan=True), dtype=np.float64)[:, 0]

    def predict_proba(self, X):
        p = self._proba1(self._scores(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        positive = self._proba1(self._scores(X)) >= self.threshold_
        return self.classes_[positive.astype(int)]
