"""In-memory rows as a ``tf.data`` pipeline that a distribution strategy can split.

    strategy = get_strategy("auto")
    ds = make_dataset(X, y, batch_size=32, strategy=strategy, shuffle=True, seed=0)
    model.fit(ds, epochs=...)

``ZooClassifier`` feeds its fit this way when the strategy has more than one replica, and
the multi-worker job (:mod:`amu_tf.training.multiworker_entry`) always does.
"""

from __future__ import annotations

from amu_tf.training.cluster_config import in_cluster
from amu_tf.training.distribution_strategy import global_batch_size


def make_dataset(x, y=None, batch_size: int = 32, strategy=None, shuffle: bool = False,
                 seed: int | None = 0, sample_weight=None):
    """An in-memory ``tf.data.Dataset`` for ``model.fit``/``evaluate`` under ``strategy``.

    ``batch_size`` is the per-replica batch; the dataset is batched at the global batch
    (:func:`~amu_tf.training.distribution_strategy.global_batch_size`), which the strategy
    splits across replicas. Auto-sharding is set to ``DATA`` (in-memory data has no files to
    shard by): every worker builds the same dataset (same seed, so the same shuffled order)
    and keeps its own share of each global batch. Shuffling reshuffles every epoch from
    ``seed``; in a cluster an unseeded shuffle is refused, since the workers' orders would
    differ and their shares overlap. Elements are ``x``, ``(x, y)`` or
    ``(x, y, sample_weight)``.
    """
    import numpy as np
    import tensorflow as tf

    x = np.asarray(x, dtype=np.float32)
    parts = [x]
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        parts.append(y)
    if sample_weight is not None:
        if y is None:
            raise ValueError("sample_weight needs y")
        sample_weight = np.asarray(sample_weight, dtype=np.float32)
        if len(sample_weight) != len(x):
            raise ValueError(f"x has {len(x)} rows but sample_weight has {len(sample_weight)}")
        parts.append(sample_weight)
    if shuffle and seed is None and in_cluster(strategy):
        raise ValueError("shuffling on several workers needs a seed (every worker must "
                         "draw the same order for DATA sharding to split it)")
    ds = tf.data.Dataset.from_tensor_slices(parts[0] if len(parts) == 1 else tuple(parts))
    if shuffle:
        ds = ds.shuffle(max(1, len(x)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(global_batch_size(batch_size, strategy))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    if seed is not None:
        options.deterministic = True
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


__all__ = ["make_dataset"]
