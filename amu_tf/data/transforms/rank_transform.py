"""``RankTransform``: within-sample ranks of the 160 genes scaled to [0, 1] (ties averaged).

Needs no cohort and no scale: one sample's ranks depend only on that sample, so it is immune
to library size, units (counts vs TPM) and any monotone per-sample distortion - the safest
choice for serving one patient at a time or for a cohort never seen in training. It discards
absolute levels (a sample with everything doubled looks the same). Only the missing-gene
imputation uses training statistics (the training mean of a gene replaces its NaN).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from amu_tf.data.transforms.base_transform import BaseTransform


class RankTransform(BaseTransform):
    """Within-sample average ranks scaled to [0, 1]: ``(rank - 1) / (160 - 1)``."""

    name = "rank"
    per_sample = True

    def _transform(self, x, table) -> np.ndarray:
        r = rankdata(x, method="average", axis=1)
        return (r - 1.0) / max(x.shape[1] - 1, 1)

    def as_keras_layer(self, **kwargs):
        from amu_tf.data.transforms.transform_layer import TransformLayer

        self._check_fitted()
        return TransformLayer("rank", self.train_mean_,
                              name=kwargs.pop("name", "rank_transform"), **kwargs)
