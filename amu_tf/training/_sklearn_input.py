"""scikit-learn's input contract for the project's binary classifiers, in front of the
project's own one-line checks (:mod:`amu_tf.training._checks`).

scikit-learn's ``validate_data`` refuses sparse, complex, empty and 1-D input, records
``n_features_in_`` at ``fit`` and compares it at prediction, with the messages that
``sklearn.utils.estimator_checks`` expects; a regression target, a missing ``y`` and more than
two classes are refused with scikit-learn's wording too. The project's checks then give their
own messages for NaN/inf, a wrong gene count, missing labels and a single class. Every refusal
is an :class:`~amu_tf.errors.InputDataError` (a ``ValueError``), except the ``TypeError``
NumPy raises for a cell that is not a number (a dict in an object array).
"""

from __future__ import annotations

import numpy as np

from amu_tf.errors import InputDataError
from amu_tf.training._checks import check_binary_y, check_X


def _validated(estimator, X, reset: bool, ensure_min_samples: int, dtype="numeric",
               finite=False):
    from scipy import sparse
    from sklearn.utils.validation import validate_data

    if sparse.issparse(X):  # validate_data's TypeError, as the project's ValueError
        raise InputDataError("Sparse data was passed for X, but dense data is required: "
                             "expression is a dense samples x genes matrix (X.toarray())")
    try:
        return validate_data(estimator, X, reset=reset, accept_sparse=False, dtype=dtype,
                             ensure_all_finite=finite, ensure_min_samples=ensure_min_samples)
    except ValueError as exc:
        raise InputDataError(str(exc)) from None


def fit_input(estimator, X, y, n_features=None, allow_nan=False, float64=False):
    """``(X, classes_, y01)`` for a binary classifier's ``fit``; sets ``n_features_in_``.

    ``X`` comes back float32 and finite, of ``n_features`` columns when that is given; with
    ``float64`` it comes back float64 and finite (scikit-learn's NaN/inf message); with
    ``allow_nan`` it comes back as validated (numeric, NaN/inf kept) for the caller to handle.
    ``classes_`` are the two sorted labels, ``y01`` the labels coded 0/1.
    """
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import column_or_1d

    if y is None:
        raise InputDataError(f"{type(estimator).__name__} requires y to be passed, but the "
                             "target y is None")
    X = _validated(estimator, X, reset=True, ensure_min_samples=2,
                   dtype=np.float64 if float64 else "numeric", finite=float64)
    try:
        y = column_or_1d(np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y), warn=True)
        if not (y.dtype.kind == "f" and np.isnan(y).any()):  # check_binary_y names NaN labels
            check_classification_targets(y)
            kind = type_of_target(y, input_name="y")
            if kind != "binary":
                classes = np.unique(y)
                raise InputDataError(
                    f"Only binary classification is supported; the target is {kind} with "
                    f"{len(classes)} classes {classes.tolist()[:10]}, and only binary "
                    "response (responder or not) is modelled")
    except InputDataError:
        raise
    except ValueError as exc:
        raise InputDataError(str(exc)) from None
    if not (float64 or allow_nan):
        X = check_X(X, n_features)
    classes, y01 = check_binary_y(y, len(X))
    return X, classes, y01


def predict_input(estimator, X, allow_nan=False, float64=False):
    """``X`` for a fitted classifier's prediction: ``n_features_in_`` columns (zero rows
    allowed), float32 and finite (``float64``, ``allow_nan``: as in :func:`fit_input`)."""
    X = _validated(estimator, X, reset=False, ensure_min_samples=0,
                   dtype=np.float64 if float64 else "numeric", finite=float64)
    return X if (allow_nan or float64) else check_X(X, estimator.n_features_in_)
