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
    genome-wide table, not the model panel). ``fit`` learns nothing from the labels but the
    decision threshold: ``center_`` and ``scale_`` (median and IQR of the training scores:
    label-free) map a score to ``p = sigmoid((score - center_) / scale_)``, and
    ``threshold_`` is the Youden-optimal ``p`` on the training rows, frozen.
    """

    def __init__(self, biomarker="cd8a"):
        self.biomarker = biomarker

    def make_input_transform(self):
        """The unfitted transform whose output this classifier takes."""
        return BiomarkerTransform(self.biomarker)

    @property
    def description(self):
        return BIOMARKERS[self.biomarker]["description"]

    def _proba1(self, X):
        s = np.asarray(X, dtype=np.float64).reshape(len(X), -1)[:, 0]
        return 1.0 / (1.0 + np.exp(-(s - self.center_) / self.scale_))

    def fit(self, X, y, groups=None):
        from amu_tf.training.threshold import youden_threshold

        s = np.asarray(X, dtype=np.float64).reshape(len(X), -1)[:, 0]
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = 1
        finite = np.isfinite(s)
        self.center_ = float(np.median(s[finite])) if finite.any() else 0.0
        q75, q25 = (np.percentile(s[finite], [75, 25]) if finite.any() else (1.0, 0.0))
        self.scale_ = float(q75 - q25) if q75 > q25 else 1.0
        p = self._proba1(s[:, None])
        self.threshold_ = float(youden_threshold(y[finite], p[finite]))
        self.threshold_method_ = "youden_train"
        return self

    def predict_proba(self, X):
        p = self._proba1(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        return (self._proba1(X) >= self.threshold_).astype(int)
