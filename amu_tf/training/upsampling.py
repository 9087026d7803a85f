"""Class balance by upsampling, applied to training rows only.

``upsample_indices`` works on positions, not on data, so a caller can prove that every row
it trains on (copies included) is one of its own training rows: a copy of a validation or
test row can never slip into training. The paper duplicated responders *before* its
train/test split, which puts copies of test rows into training; this module is the honest
version (the evaluation's ``paper`` protocol reproduces the leak on purpose, marked LEAKY).
"""

from __future__ import annotations

import numpy as np


def upsample_indices(y, rows=None, random_state=None) -> np.ndarray:
    """Indices that balance the classes of ``y[rows]`` by drawing minority rows again.

    Args:
        y: labels of all rows (any hashable class values).
        rows: positions into ``y`` that may be used (the training rows); all rows if None.
        random_state: int seed or ``numpy.random.Generator``.

    Returns:
        A shuffled int array of positions into ``y``: every position of ``rows`` once, plus
        minority-class positions drawn with replacement *from ``rows`` only* until every
        class has as many as the largest one.
    """
    y = np.asarray(y)
    rows = np.arange(len(y)) if rows is None else np.asarray(rows, dtype=int)
    rng = np.random.default_rng(random_state)
    labels = y[rows]
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max() if len(counts) else 0
    parts = [rows]
    for cls, n in zip(classes, counts):
        if n < target:
            pool = rows[labels == cls]
            parts.append(rng.choice(pool, size=target - n, replace=True))
    out = np.concatenate(parts)
    rng.shuffle(out)
    return out
