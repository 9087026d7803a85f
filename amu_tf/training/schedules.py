"""The paper's "two-step decay of learning rate" as a serializable Keras schedule.

The paper names the schedule but gives no numbers, and its published code does not use one
(see ``shared/docs/PAPER_NOTES.md``). We read it as the common step schedule: the base rate
until the first boundary, ``factor`` times it until the second, ``factor**2`` after. The
:class:`~amu_tf.training.zoo_classifier.ZooClassifier` puts the boundaries at 50% and 75%
of the planned training steps with ``factor=0.1``.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="amu_tf")
class TwoStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(step) = initial * factor ** (number of boundaries passed)`` with two boundaries.

    Args:
        initial_learning_rate: rate before the first boundary.
        boundaries: two increasing optimizer-step counts.
        factor: multiplier applied at each boundary (0.1 by default).
    """

    def __init__(self, initial_learning_rate=1e-3, boundaries=(1000, 1500), factor=0.1,
                 name="two_step_decay"):
        boundaries = [int(b) for b in boundaries]
        if len(boundaries) != 2 or not 0 <= boundaries[0] <= boundaries[1]:
            raise ValueError(f"boundaries must be two increasing step counts, got {boundaries}")
        if not 0 < factor <= 1:
            raise ValueError(f"factor must be in (0, 1], got {factor}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.boundaries = boundaries
        self.factor = float(factor)
        self.name = name

    @classmethod
    def for_training(cls, initial_learning_rate, total_steps, fractions=(0.5, 0.75),
                     factor=0.1):
        """Boundaries at ``fractions`` of ``total_steps`` (at least one step apart from 0)."""
        b = [max(1, int(round(f * total_steps))) for f in fractions]
        return cls(initial_learning_rate, boundaries=b, factor=factor)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        passed = keras.ops.cast(step >= self.boundaries[0], "float32") + keras.ops.cast(
            step >= self.boundaries[1], "float32"
        )
        return self.initial_learning_rate * keras.ops.power(self.factor, passed)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "boundaries": list(self.boundaries),
            "factor": self.factor,
            "name": self.name,
        }
