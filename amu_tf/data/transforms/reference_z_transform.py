"""``ReferenceZTransform``: per-gene z-score with the frozen TRAINING mean and std.

``out = (x - train_mean_) / train_std_`` on the log2 scale. Single-sample (good for serving)
but it assumes new samples are on the training cohorts' scale: a cohort with a batch shift
(another lab, units, library prep) is shifted in the output too. Prefer ``cohort_z`` when a
whole new cohort is available and ``rank`` when the scale of a new sample is unknown.
"""

from __future__ import annotations

import numpy as np

from amu_tf.data.transforms.base_transform import BaseTransform


class ReferenceZTransform(BaseTransform):
    """Per-gene standardisation with the training mean/std (frozen at ``fit``)."""

    name = "reference_z"
    per_sample = True

    def _transform(self, x, table) -> np.ndarray:
        return (x - self.train_mean_) / self.train_std_

    def as_keras_layer(self, **kwargs):
        from amu_tf.data.transforms.transform_layer import TransformLayer

        self._check_fitted()
        return TransformLayer("reference_z", self.train_mean_, scale_mean=self.train_mean_,
                              scale_std=self.train_std_,
                              name=kwargs.pop("name", "reference_z_transform"), **kwargs)
