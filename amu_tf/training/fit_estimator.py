"""``fit_estimator``: fit any estimator of the project with the side information it accepts.

Besides ``X`` and ``y``, an estimator's ``fit`` may take

- ``groups``: one id per training row (patients), so that inner splits keep a patient's
  samples on one side;
- ``cohorts``: the cohort of each training row, for recipes that select or weight by cohort
  (inner leave-one-cohort-out, group DRO). A cohort name is not a label;
- ``unlabeled``: expression rows without labels (same columns as ``X``) for self-supervised
  pre-training: no label of any row is ever read from them. Passed only to an estimator
  whose ``wants_unlabeled`` is true (one configured to pre-train).

Only the arguments the estimator's ``fit`` declares are passed, so scikit-learn estimators,
the zoo and the recipes are all fitted the same way by the protocols and by ``amu train``.
"""

from __future__ import annotations

import inspect


def fit_accepts(est, name: str) -> bool:
    """Whether ``est.fit`` takes the keyword ``name``."""
    try:
        return name in inspect.signature(est.fit).parameters
    except (TypeError, ValueError):
        return False


def wants_unlabeled(est) -> bool:
    """Whether ``est`` pre-trains on unlabeled expression given to its ``fit``."""
    return bool(getattr(est, "wants_unlabeled", False)) and fit_accepts(est, "unlabeled")


def fit_estimator(est, X, y, *, groups=None, cohorts=None, unlabeled=None):
    """``est.fit(X, y, ...)`` with those of ``groups``, ``cohorts``, ``unlabeled`` that are
    given and that ``est.fit`` accepts (``unlabeled`` only if :func:`wants_unlabeled`);
    returns what ``fit`` returns."""
    if not wants_unlabeled(est):
        unlabeled = None
    extra = {k: v for k, v in (("groups", groups), ("cohorts", cohorts),
                                ("unlabeled", unlabeled))
             if v is not None and fit_accepts(est, k)}
    return est.fit(X, y, **extra)
