"""Splitters: the evaluation protocols' train/test splits, as positions into table rows.

Every splitter returns a list of :class:`Fold` (``repeat``, ``fold``, ``name``, ``train``,
``test``), where ``train``/``test`` are integer positions into the rows it was given
(normally the labeled rows of a cohort table). ``groups`` are patient ids: every honest
splitter keeps all samples of one patient on one side.

* :func:`grouped_cv_splits` (protocol ``cv``): repeated stratified k-fold grouped by patient
  (scikit-learn's ``StratifiedGroupKFold``, reshuffled with a new seed per repeat).
* :func:`loco_splits` (``loco``): leave one cohort out.
* :func:`external_splits` (``external``): train on some cohorts, score the others.
* :func:`paper_splits` (``paper``, LEAKY): the paper's protocol. Every responder row is
  duplicated first, then the enlarged set is split at random 80/20. Positions repeat, and a
  position can be on both sides: the copy of a test responder sits in training. That is
  the leak the protocol exists to show; never use it to judge a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from amu_tf.errors import InputDataError


@dataclass(frozen=True)
class Fold:
    """One train/test split: positions into the rows given to the splitter."""

    repeat: int
    fold: int
    name: str
    train: np.ndarray
    test: np.ndarray


def _y01(y) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if np.isnan(y).any():
        raise InputDataError("the splitter got unlabeled rows; pass labeled rows only")
    return y.astype(int)


def _groups(groups, n) -> np.ndarray:
    if groups is None:
        return np.arange(n).astype(str)
    groups = np.asarray(groups).astype(str)
    if len(groups) != n:
        raise InputDataError(f"groups has {len(groups)} entries for {n} rows")
    return groups


def grouped_cv_splits(y, groups=None, n_splits: int = 5, n_repeats: int = 1,
                      seed: int = 0) -> list[Fold]:
    """Repeated stratified k-fold, grouped by patient: each repeat partitions the rows into
    ``n_splits`` test folds (every row tested once per repeat), no patient in two folds.

    Raises :class:`InputDataError` when a class has fewer patients than folds.
    """
    y = _y01(y)
    groups = _groups(groups, len(y))
    if n_splits < 2:
        raise InputDataError(f"cv needs at least 2 folds, got {n_splits}")
    for cls, name in ((1, "responders"), (0, "non-responders")):
        n_pat = len(np.unique(groups[y == cls]))
        if n_pat < n_splits:
            raise InputDataError(
                f"too few samples for {n_splits}-fold cv: {n_pat} patients are {name}; "
                f"each class needs at least {n_splits} (use fewer folds)"
            )
    folds = []
    for r in range(n_repeats):
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed + r)
        for k, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
            folds.append(Fold(r, k, f"repeat {r} fold {k}", np.sort(tr), np.sort(te)))
    return folds


def loco_splits(cohorts, y=None) -> list[Fold]:
    """Leave one cohort out: one fold per cohort, trained on all the others.

    Needs at least two cohorts.
    """
    cohorts = np.asarray(cohorts).astype(str)
    names = sorted(np.unique(cohorts))
    if len(names) < 2:
        raise InputDataError(
            f"loco needs at least two cohorts; the table has {len(names)} ({', '.join(names)})"
        )
    idx = np.arange(len(cohorts))
    return [Fold(0, k, c, idx[cohorts != c], idx[cohorts == c]) for k, c in enumerate(names)]


def external_splits(cohorts, train_cohorts, test_cohorts=None) -> list[Fold]:
    """Train on ``train_cohorts``, score ``test_cohorts`` (default: every other cohort)."""
    cohorts = np.asarray(cohorts).astype(str)
    present = sorted(np.unique(cohorts))
    train_cohorts = [str(c) for c in (train_cohorts or [])]
    if not train_cohorts:
        raise InputDataError("external needs --train-cohorts (the cohorts to train on)")
    if test_cohorts is None:
        test_cohorts = [c for c in present if c not in train_cohorts]
    test_cohorts = [str(c) for c in test_cohorts]
    for c in train_cohorts + test_cohorts:
        if c not in present:
            raise InputDataError(f"cohort {c!r} has no labeled rows in the table; it has "
                                 f"labeled rows of {', '.join(present)}")
    overlap = set(train_cohorts) & set(test_cohorts)
    if overlap:
        raise InputDataError(f"cohort(s) {sorted(overlap)} both trained on and scored")
    if not test_cohorts:
        raise InputDataError("external: no cohort left to score")
    idx = np.arange(len(cohorts))
    return [Fold(0, k, c, idx[np.isin(cohorts, train_cohorts)], idx[cohorts == c])
            for k, c in enumerate(test_cohorts)]


def paper_splits(y, test_size: float = 0.2, n_repeats: int = 1, seed: int = 0,
                 duplicate: bool = True) -> list[Fold]:
    """LEAKY. The paper's protocol: duplicate every responder row, then split the enlarged
    row set at random (``test_size``), stratified by label.

    ``train``/``test`` hold positions into the original rows with repeats; a duplicated
    responder can land on both sides (that is the leak). ``duplicate=False`` only splits at
    random, for a table whose authors already duplicated the responders
    (``logfourupsample.csv``).
    """
    y = _y01(y)
    augmented = np.arange(len(y))
    if duplicate:
        augmented = np.concatenate([augmented, np.flatnonzero(y == 1)])
    folds = []
    for r in range(n_repeats):
        tr, te = train_test_split(augmented, test_size=test_size, random_state=seed + r,
                                  stratify=y[augmented])
        folds.append(Fold(r, 0, f"repeat {r} (LEAKY)", tr, te))
    return folds
