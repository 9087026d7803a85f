"""Checks on expression matrices before they reach TensorFlow, with one-line messages."""

from __future__ import annotations

import numpy as np

from amu_tf.errors import InputDataError


def check_expression_matrix(x, n_genes: int, name: str = "input") -> np.ndarray:
    """Return ``x`` as a float32 array of shape (n, n_genes) or raise :class:`InputDataError`.

    Accepts NumPy arrays, pandas DataFrames and anything ``np.asarray`` understands.
    """
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputDataError(f"{name} is not numeric: {exc}") from None
    if arr.ndim == 1 and arr.shape[0] == n_genes:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InputDataError(f"{name} must be 2-D (samples x {n_genes} genes), got shape {arr.shape}")
    if arr.shape[1] != n_genes:
        raise InputDataError(
            f"{name} has {arr.shape[1]} gene columns but the model expects {n_genes}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise InputDataError(
            f"{name} has {int(bad.sum())} non-finite value(s) (NaN/inf), first at sample {rows[0]}, "
            f"gene column {cols[0]}"
        )
    return arr
