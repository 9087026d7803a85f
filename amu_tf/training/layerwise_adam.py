"""``LayerwiseAdam``: Adam (or AdamW) with a learning-rate multiplier per variable, for
fine-tuning a pre-trained encoder more gently than the new head above it."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="amu_tf")
class LayerwiseAdam(keras.optimizers.AdamW):
    """AdamW whose step for a variable is scaled by ``multipliers[variable.path]`` (1 for a
    variable not named). Scaling the gradients instead would do nothing under Adam, whose
    step does not depend on the gradient's scale, so the rate itself is scaled.

    ``weight_decay=0`` makes it plain Adam."""

    def __init__(self, multipliers=None, **kwargs):
        kwargs.setdefault("weight_decay", 0.0)
        super().__init__(**kwargs)
        self.multipliers = {str(k): float(v) for k, v in dict(multipliers or {}).items()}

    def build(self, var_list):
        super().build(var_list)
        # update_step may get the backend's variable (TensorFlow's tf.Variable, no .path):
        # the scale is looked up by the optimizer's own key of each variable
        self._scales = {self._var_key(v): self.multipliers[v.path] for v in var_list
                        if v.path in self.multipliers}

    def update_step(self, gradient, variable, learning_rate):
        scale = self._scales.get(self._var_key(variable), 1.0)
        if scale != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, scale)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "multipliers": dict(self.multipliers)}
