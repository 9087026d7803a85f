"""The paper's "two-step decay of learning rate" as Keras's own step schedule.

The paper names the schedule but gives no numbers, and its published code does not use one
(see ``shared/docs/PAPER_NOTES.md``). We read it as the common step schedule: the base rate
until the first boundary, ``factor`` times it until the second, ``factor**2`` after; the
:class:`~amu_tf.training.zoo_classifier.ZooClassifier` puts the boundaries at 50% and 75% of
the planned training steps with ``factor=0.1``. It is a
``keras.optimizers.schedules.PiecewiseConstantDecay`` (serializable, every backend).
"""

from __future__ import annotations


def two_step_decay(initial_learning_rate, total_steps, fractions=(0.5, 0.75), factor=0.1):
    """``PiecewiseConstantDecay`` with boundaries at ``fractions`` of ``total_steps`` (at
    least one step from 0) and rates ``initial``, ``initial * factor``, ``initial *
    factor**2``."""
    import keras

    if len(fractions) != 2 or not 0 <= fractions[0] <= fractions[1]:
        raise ValueError(f"fractions must be two increasing fractions, got {fractions}")
    if not 0 < factor <= 1:
        raise ValueError(f"factor must be in (0, 1], got {factor}")
    lr = float(initial_learning_rate)
    boundaries = [max(1, int(round(f * total_steps))) for f in fractions]
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries=boundaries, values=[lr, lr * factor, lr * factor ** 2],
        name="two_step_decay")
