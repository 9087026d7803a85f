"""Shared machinery of the cohort-table transforms: input checks, the missing-gene policy,
save/load.

A transform is a scikit-learn transformer (``BaseEstimator`` + ``TransformerMixin``, so
``get_params``/``set_params``/``sklearn.clone``/``repr`` and ``fit_transform`` are
scikit-learn's): ``__init__`` only stores its parameters, ``fit(table)`` learns from the rows it
is given (training rows only) and returns ``self``, ``transform(table)`` returns a float32
``(n, 160)`` matrix. Learned attributes end in ``_``. The input is a cohort table (a DataFrame
with the 160 panel gene columns) or a bare ``(n, 160)`` array; an array is first checked with
scikit-learn's ``check_array`` (no sparse or complex data, at least one row and column).

Missing-gene policy (same for every transform):

* at ``fit``: the per-gene training mean and standard deviation on the log2 scale are
  recorded (``train_mean_``, ``train_std_``). A panel gene that is missing (NaN) in *every*
  training row is refused with :class:`InputDataError`, unless ``impute_all_missing=True``, in
  which case it is imputed with 0 (log2 scale) everywhere and listed in
  ``all_missing_genes_``;
* at ``transform`` (and for the training rows at ``fit``): a NaN cell is replaced by that gene's
  training mean before the transform proper; the number of imputed cells per gene is kept in
  ``last_imputation_`` (``imputation_report()`` gives a summary);
* a sample missing more than ``max_missing_fraction`` (default 0.1, i.e. 16 of 160) of the
  panel genes is refused: imputation would then be inventing the sample.

``inf`` values are always refused. Saved as ``transform.json`` (name, parameters, scalar and
list attributes) plus ``transform.npz`` (array attributes); ``load_transform(dir)`` reads both.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array

from amu_tf import __version__
from amu_tf.errors import ArtifactError, InputDataError
from amu_tf.panel import N_GENES, panel_symbols

CONFIG_FILE = "transform.json"
STATE_FILE = "transform.npz"
STD_FLOOR = 1e-6  # a gene with (near-)constant training values is centred, not scaled


class BaseTransform(TransformerMixin, BaseEstimator):
    """Base of every transform: imputation from training statistics, checks, save/load."""

    name = "base"
    per_sample = True  # True when one sample can be transformed alone

    def __init__(self, max_missing_fraction: float = 0.1, impute_all_missing: bool = False):
        self.max_missing_fraction = max_missing_fraction
        self.impute_all_missing = impute_all_missing

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN is a missing gene, imputed from training means
        tags.transformer_tags.preserves_dtype = ["float32"]  # the output is always float32
        return tags

    # -- input --------------------------------------------------------------------------
    @staticmethod
    def _matrix(table) -> np.ndarray:
        """The (n, 160) float64 panel matrix of a cohort table (or of an array)."""
        if isinstance(table, pd.DataFrame):
            genes = panel_symbols()
            missing = [g for g in genes if g not in table.columns]
            if missing:
                shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
                raise InputDataError(
                    f"table lacks {len(missing)} panel gene column(s) ({shown}); a gene absent "
                    "from a cohort must be an all-NaN column"
                )
            try:
                x = table[genes].to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise InputDataError(f"panel gene columns are not numeric: {exc}") from None
        else:
            try:  # scikit-learn's contract: dense, real, >= 1 column (NaN allowed)
                x = check_array(table, dtype=np.float64, ensure_all_finite=False,
                                ensure_2d=False, ensure_min_samples=0, input_name="expression")
            except (TypeError, ValueError) as exc:
                raise InputDataError(f"expression array refused: {exc}") from None
            if x.ndim == 1:  # one sample
                x = x[None, :]
        if x.ndim != 2 or x.shape[1] != N_GENES:
            raise InputDataError(f"expected (samples, {N_GENES}) panel genes, got shape {x.shape}")
        if np.isinf(x).any():
            r, c = np.argwhere(np.isinf(x))[0]
            raise InputDataError(f"expression has inf values (first: row {r}, gene "
                                 f"{panel_symbols()[c]})")
        return x

    @staticmethod
    def _sample_ids(table, n: int) -> list[str]:
        if isinstance(table, pd.DataFrame) and "sample" in table.columns:
            return table["sample"].astype(str).tolist()
        return [str(i) for i in range(n)]

    def _check_missing_rows(self, x: np.ndarray, table) -> None:
        frac = np.isnan(x).mean(axis=1)
        bad = np.nonzero(frac > self.max_missing_fraction)[0]
        if bad.size:
            ids = self._sample_ids(table, len(x))
            first = bad[0]
            raise InputDataError(
                f"{bad.size} sample(s) miss more than {self.max_missing_fraction:.0%} of the "
                f"{N_GENES} panel genes (first: {ids[first]!r} misses "
                f"{int(np.isnan(x[first]).sum())}); refusing to impute that much "
                "(max_missing_fraction)"
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "train_mean_"):
            raise InputDataError(f"the {self.name!r} transform is not fitted yet (call fit)")

    def _impute(self, x: np.ndarray, table) -> np.ndarray:
        self._check_missing_rows(x, table)
        nan = np.isnan(x)
        counts = nan.sum(axis=0)
        genes = panel_symbols()
        self.last_imputation_ = {
            "n_samples": int(len(x)),
            "n_cells": int(counts.sum()),
            "per_gene": {genes[i]: int(counts[i]) for i in np.nonzero(counts)[0]},
        }
        self._nan_mask = nan  # transient (not saved): cohort_z re-centres imputed cells
        if nan.any():
            x = np.where(nan, self.train_mean_[None, :], x)
        return x

    def imputation_report(self) -> dict:
        """What the last ``fit``/``transform`` imputed: cells per gene."""
        return dict(getattr(self, "last_imputation_", {"n_samples": 0, "n_cells": 0,
                                                         "per_gene": {}}))

    # -- fit / transform ------------------------------------------------------------------
    def _check_params(self) -> None:
        """The shared parameters' types and ranges, checked before any work."""
        f = self.max_missing_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1:
            raise InputDataError(f"max_missing_fraction must be a fraction in [0, 1], got {f!r}")
        if not isinstance(self.impute_all_missing, bool):
            raise InputDataError("impute_all_missing must be true or false, got "
                                 f"{self.impute_all_missing!r}")

    def fit(self, table, y=None) -> "BaseTransform":
        """Learn from the rows of ``table`` (training rows only; labels are never used)."""
        self._check_params()
        x = self._matrix(table)
        if len(x) == 0:
            raise InputDataError(f"cannot fit the {self.name!r} transform on zero rows")
        self._check_missing_rows(x, table)
        all_missing = np.isnan(x).all(axis=0)
        genes = panel_symbols()
        if all_missing.any() and not self.impute_all_missing:
            names = [genes[i] for i in np.nonzero(all_missing)[0]]
            raise InputDataError(
                f"panel gene(s) {', '.join(names[:8])} are missing in every training row; "
                "there is no training statistic to impute them from (pass "
                "impute_all_missing=True to impute 0 on the log2 scale)"
            )
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.where(all_missing[None, :], 0.0, x), axis=0)
            std = np.nanstd(np.where(all_missing[None, :], 0.0, x), axis=0)
        self.train_mean_ = mean.astype(np.float64)
        self.train_std_ = np.where(std < STD_FLOOR, 1.0, std).astype(np.float64)
        self.all_missing_genes_ = [genes[i] for i in np.nonzero(all_missing)[0]]
        self.n_fit_samples_ = int(len(x))
        xi = self._impute(x, table)
        self.fit_imputation_ = self.imputation_report()
        self._fit(xi, table)
        return self

    def transform(self, table) -> np.ndarray:
        """The transformed ``(n, 160)`` float32 matrix (NaN imputed from training means)."""
        self._check_fitted()
        x = self._matrix(table)
        xi = self._impute(x, table)
        out = self._transform(xi, table)
        return np.asarray(out, dtype=np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The output columns: the 160 panel gene symbols."""
        return np.asarray(panel_symbols(), dtype=object)

    def _fit(self, x: np.ndarray, table) -> None:  # learn transform-specific statistics
        pass

    def _transform(self, x: np.ndarray, table) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def as_keras_layer(self):
        """A Keras layer doing ``transform`` in-graph on a raw (batch, 160) log2 tensor."""
        raise InputDataError(
            f"the {self.name!r} transform needs a whole cohort and cannot run inside a "
            "single-sample serving graph; use a per-sample transform (paper, rank, reference_z)"
        )

    # -- persistence ----------------------------------------------------------------------
    def _learned(self) -> dict:
        return {k: v for k, v in vars(self).items()
                if k.endswith("_") and not k.startswith(("_", "last_"))}

    def save(self, directory) -> Path:
        """Write ``transform.json`` + ``transform.npz`` into ``directory`` (created)."""
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays, plain = {}, {}
        for k, v in self._learned().items():
            if isinstance(v, np.ndarray):
                arrays[k] = v
            else:
                plain[k] = v
        config = {"name": self.name, "class": type(self).__name__, "per_sample": self.per_sample,
                  "params": self.get_params(), "attributes": plain,
                  "array_attributes": sorted(arrays), "amu_tf_version": __version__}
        (d / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default) + "\n")
        np.savez(d / STATE_FILE, **arrays)
        return d

    @classmethod
    def _from_config(cls, config: dict, arrays) -> "BaseTransform":
        obj = cls(**config.get("params", {}))
        for k, v in config.get("attributes", {}).items():
            setattr(obj, k, v)
        for k in config.get("array_attributes", []):
            setattr(obj, k, np.asarray(arrays[k]))
        obj._after_load()
        return obj

    def _after_load(self) -> None:
        pass


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def read_config(directory) -> tuple[dict, dict]:
    d = Path(directory)
    cfg_file = d / CONFIG_FILE
    if not cfg_file.is_file():
        raise ArtifactError(f"{d} holds no fitted transform ({CONFIG_FILE} missing)")
    from amu_tf.data.text_files import read_json

    config = read_json(cfg_file, "fitted transform", error=ArtifactError)
    if not isinstance(config, dict):
        raise ArtifactError(f"fitted transform {cfg_file} is damaged: not a JSON object")
    arrays = {}
    if (d / STATE_FILE).is_file():
        with np.load(d / STATE_FILE) as z:
            arrays = {k: z[k] for k in z.files}
    missing = [k for k in config.get("array_attributes", []) if k not in arrays]
    if missing:
        raise ArtifactError(f"{d / STATE_FILE} lacks {', '.join(missing)}")
    return config, arrays
