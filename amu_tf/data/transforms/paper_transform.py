"""``PaperTransform``: the AMU paper's input, done right.

The paper divides each sample's 160 values by their sum (a constituent ratio) and feeds
``-ln(ratio)`` with zeros left at 0 - so a gene with ratio 0 and a gene with ratio 1 both
become 0. Here: undo the log2 scale of the cohort table (``lin = 2**x - 1``, clipped at 0),
``ratio = lin / sum(lin over the panel)``, ``out = log(ratio + eps)`` with a pseudocount
``eps`` (default 1e-6, far below a typical ratio ~ 1/160), so ratio 0 -> log(eps) ~ -13.8,
ratio 1 -> ~0. With ``standardize=True`` each gene is then z-scored with the frozen training
mean/std of that output. Per sample: one sample's output depends only on itself (and the
frozen training statistics), so it runs inside the serving graph.
"""

from __future__ import annotations

import numpy as np

from amu_tf.data.transforms.base_transform import STD_FLOOR, BaseTransform
from amu_tf.errors import InputDataError


class PaperTransform(BaseTransform):
    """Constituent ratio over the panel, then ``log(ratio + eps)`` (optionally z-scored)."""

    name = "paper"
    per_sample = True

    def __init__(self, eps: float = 1e-6, standardize: bool = False,
                 max_missing_fraction: float = 0.1, impute_all_missing: bool = False):
        self.eps = eps
        self.standardize = standardize
        self.max_missing_fraction = max_missing_fraction
        self.impute_all_missing = impute_all_missing

    def _log_ratio(self, x: np.ndarray, table) -> np.ndarray:
        if not self.eps > 0:
            raise InputDataError(f"paper transform eps must be > 0, got {self.eps}")
        lin = np.clip(np.power(2.0, x) - 1.0, 0.0, None)
        total = lin.sum(axis=1, keepdims=True)
        zero = np.nonzero(total[:, 0] <= 0)[0]
        if zero.size:
            ids = self._sample_ids(table, len(x))
            raise InputDataError(
                f"{zero.size} sample(s) have zero expression over the whole panel (first: "
                f"{ids[zero[0]]!r}); a constituent ratio is undefined"
            )
        return np.log(lin / total + self.eps)

    def _fit(self, x, table) -> None:
        if self.standardize:
            z = self._log_ratio(x, table)
            self.scale_mean_ = z.mean(axis=0)
            sd = z.std(axis=0)
            self.scale_std_ = np.where(sd < STD_FLOOR, 1.0, sd)

    def _transform(self, x, table) -> np.ndarray:
        z = self._log_ratio(x, table)
        if self.standardize:
            z = (z - self.scale_mean_) / self.scale_std_
        return z

    def as_keras_layer(self, **kwargs):
        from amu_tf.data.transforms.transform_layer import TransformLayer

        self._check_fitted()
        return TransformLayer(
            "paper", self.train_mean_,
            scale_mean=self.scale_mean_ if self.standardize else None,
            scale_std=self.scale_std_ if self.standardize else None,
            eps=self.eps, name=kwargs.pop("name", "paper_transform"), **kwargs)
