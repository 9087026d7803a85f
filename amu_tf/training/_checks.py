"""Input checks shared by the estimators (one-line :class:`InputDataError` messages)."""

from __future__ import annotations

import numpy as np

from amu_tf.errors import InputDataError
from amu_tf.validation import check_expression_matrix


def check_X(X, n_features=None, name="X") -> np.ndarray:
    """Float32 (n, n_features) without NaN/inf; ``n_features`` None accepts any width."""
    if n_features is None:
        arr = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
        if arr.ndim != 2:
            raise InputDataError(f"{name} must be 2-D (samples x genes), got shape {arr.shape}")
        n_features = arr.shape[1]
    return check_expression_matrix(X, n_features, name=name)


def check_binary_y(y, n_rows: int, name="y"):
    """Return ``(classes_, y01)``: the two sorted class values and ``y`` coded 0/1.

    The positive class (column 1 of ``predict_proba``) is ``classes_[1]`` (responders, 1).
    """
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y).ravel()
    if len(y) != n_rows:
        raise InputDataError(f"{name} has {len(y)} labels but X has {n_rows} rows")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise InputDataError(
            f"{name} has {int(np.isnan(y).sum())} missing label(s); train on labeled rows only"
        )
    classes, y01 = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise InputDataError(
            f"the training set has a single class ({classes.tolist()}): a classifier needs "
            "both responders and non-responders"
        )
    return classes, y01.astype(np.int32)


def check_per_class(y01, classes, needed: int, what: str) -> None:
    """Raise unless every class has at least ``needed`` samples (``what`` says why)."""
    counts = np.bincount(y01, minlength=2)
    if counts.min() < needed:
        detail = ", ".join(f"{c!r}: {n}" for c, n in zip(classes.tolist(), counts.tolist()))
        raise InputDataError(
            f"too few samples for {what}: each class needs at least {needed}, got {detail}"
        )
