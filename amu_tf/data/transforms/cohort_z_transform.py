"""``CohortZTransform``: per-cohort, per-gene standardisation of log2 expression (the default
for multi-cohort work).

Each cohort has its own lab, sequencer, units and library effects; z-scoring every gene within
its cohort removes per-gene location/scale batch effects.

* A cohort seen at ``fit`` (training rows) is standardised with the mean/std frozen from its
  training rows, so a later sample of that cohort (one or many) gets exactly the scaling the
  model was trained with, and test rows never change the statistics.
* A cohort NOT seen at ``fit`` (an external test cohort) is standardised with its own mean/std,
  computed from the unlabeled expression of all its rows passed to ``transform``. No label is
  used: this is the accepted practice for cohort-wise batch correction (like ComBat without
  covariates), but it means the output for one sample depends on the other samples of its
  cohort, so the transform is not ``per_sample`` and not in a serving graph. A new cohort with
  fewer than ``min_cohort_size`` (default 5) samples is refused: its statistics would be noise.
* A cohort is identified by the ``cohort`` column (absent or empty -> one cohort
  ``"(no cohort)"``).

Missing cells: imputed with the training mean like every transform, then set to 0 after
standardisation (= the cohort's own mean), so an imputed gene carries no batch offset.
A gene constant within a cohort (e.g. imputed for every sample) is centred, not scaled.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from amu_tf.data.transforms.base_transform import STD_FLOOR, BaseTransform
from amu_tf.errors import InputDataError

NO_COHORT = "(no cohort)"


def cohort_keys(table, n: int) -> np.ndarray:
    if isinstance(table, pd.DataFrame) and "cohort" in table.columns:
        c = table["cohort"]
        return np.asarray(c.where(c.notna() & (c.astype(str) != ""), NO_COHORT).astype(str))
    return np.full(n, NO_COHORT, dtype=object)


def _stats(x: np.ndarray, nan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xm = np.where(nan, np.nan, x)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(xm, axis=0)
        std = np.nanstd(xm, axis=0)
    allnan = np.isnan(mean)  # gene missing in the whole cohort: imputed constant
    mean = np.where(allnan, x.mean(axis=0), mean)
    std = np.where(allnan | (std < STD_FLOOR), 1.0, std)
    return mean, std


class CohortZTransform(BaseTransform):
    """Per-cohort, per-gene z-scores; frozen statistics for training cohorts."""

    name = "cohort_z"
    per_sample = False

    def __init__(self, min_cohort_size: int = 5, max_missing_fraction: float = 0.1,
                 impute_all_missing: bool = False):
        self.min_cohort_size = min_cohort_size
        self.max_missing_fraction = max_missing_fraction
        self.impute_all_missing = impute_all_missing

    def _fit(self, x, table) -> None:
        keys = cohort_keys(table, len(x))
        nan = self._nan_mask
        names, means, stds, sizes = [], [], [], []
        for c in pd.unique(keys):
            rows = keys == c
            if rows.sum() < 2:
                raise InputDataError(
                    f"training cohort {c!r} has {int(rows.sum())} row; cohort_z needs at least "
                    "2 rows per training cohort to estimate a standard deviation"
                )
            m, s = _stats(x[rows], nan[rows])
            names.append(str(c))
            means.append(m)
            stds.append(s)
            sizes.append(int(rows.sum()))
        self.cohorts_ = names
        self.cohort_sizes_ = sizes
        self.cohort_mean_ = np.vstack(means)
        self.cohort_std_ = np.vstack(stds)

    def _transform(self, x, table) -> np.ndarray:
        keys = cohort_keys(table, len(x))
        nan = self._nan_mask
        out = np.empty_like(x)
        index = {c: i for i, c in enumerate(self.cohorts_)}
        self.last_cohort_sources_ = {}
        for c in pd.unique(keys):
            rows = keys == c
            if c in index:
                m, s = self.cohort_mean_[index[c]], self.cohort_std_[index[c]]
                self.last_cohort_sources_[str(c)] = "training statistics"
            else:
                n = int(rows.sum())
                if n < self.min_cohort_size:
                    raise InputDataError(
                        f"cohort {c!r} was not seen in training and has only {n} sample(s); "
                        f"cohort_z needs >= {self.min_cohort_size} to standardise a new cohort "
                        "by its own statistics (use a per-sample transform such as rank or "
                        "reference_z for single samples)"
                    )
                m, s = _stats(x[rows], nan[rows])
                self.last_cohort_sources_[str(c)] = f"own statistics of its {n} samples"
            out[rows] = (x[rows] - m) / s
        out[nan] = 0.0
        return out
