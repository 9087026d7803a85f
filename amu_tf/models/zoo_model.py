"""Base class of every model in the zoo (keras-hub's Backbone pattern).

A zoo model is a functional ``keras.Model`` built in ``__init__`` from its init arguments,
which it stores and returns from ``get_config``; ``from_preset`` builds it from a preset
kept as data (a dict of init arguments). Every zoo model takes a float32 ``(batch, n_genes)``
expression matrix and emits ``(batch, 2)`` logits (train with ``from_logits=True``).

NumPy/pandas inputs to ``predict``, ``fit`` and ``evaluate`` are checked first, so a wrong
width or a NaN gets one clear :class:`amu_tf.errors.InputDataError` instead of a stack trace
from inside TensorFlow.
"""

from __future__ import annotations

import keras
import numpy as np

from amu_tf.validation import check_expression_matrix


class ZooModel(keras.Model):
    """Common behaviour of the zoo's Keras models."""

    #: preset name -> dict of init arguments; set by each subclass.
    presets: dict = {}

    def _check(self, x):
        if isinstance(x, np.ndarray) or hasattr(x, "to_numpy") or isinstance(x, (list, tuple)):
            return check_expression_matrix(x, self.n_genes)
        return x

    def predict(self, x, *args, **kwargs):
        return super().predict(self._check(x), *args, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        return super().fit(self._check(x) if x is not None else x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        return super().evaluate(self._check(x) if x is not None else x, y, *args, **kwargs)

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> "ZooModel":
        if preset not in cls.presets:
            raise ValueError(
                f"unknown preset {preset!r} for {cls.__name__}; choose from {sorted(cls.presets)}"
            )
        config = dict(cls.presets[preset]["config"])
        config.update(overrides)
        return cls(**config)

    # Parameter counts -------------------------------------------------------------------
    def count_params_keras(self) -> int:
        """Trainable parameters as Keras counts them (BatchNorm gamma/beta included)."""
        return int(sum(np.prod(w.shape) for w in self.trainable_weights))

    def count_params_paper(self) -> int:
        """Trainable parameters as the AMU paper counts them: BatchNorm layers excluded."""
        bn = 0
        for layer in self._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                bn += int(sum(np.prod(w.shape) for w in layer.trainable_weights))
        return self.count_params_keras() - bn
