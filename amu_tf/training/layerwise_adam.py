"""``LayerwiseAdam``: Adam (or AdamW) with a learning-rate multiplier per variable, for
fine-tuning a pre-trained encoder more gently than the new head above it."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="amu_tf")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam with decoupled weight decay (AdamW) whose step for a variable is scaled by
    ``multipliers[variable.path]`` (1 for a variable not named). Scaling the gradients
    instead would do nothing under Adam, whose step does not depend on the gradient's scale,
    so the rate itself is scaled.

    ``weight_decay`` (default 0: plain Adam) is applied per variable at the variable's own
    scaled rate, ``w -= lr * scale * weight_decay * w``, so a variable with multiplier 0 is
    frozen outright. (Keras's ``AdamW`` decays every variable at the full rate before the
    step, which would shrink a "frozen" encoder.)

    A sparse gradient (TensorFlow's ``IndexedSlices``, from an embedding lookup) is made
    dense first, so rows looked up by several samples of a batch get Adam's step on their
    summed gradient. Keras's sparse path accumulates the second moment slice by slice (the
    sum of squares rather than the square of the sum), which lets the first step of a row
    shared by k samples reach about sqrt(k) x the rate: COMPASS's patient token (every
    sample) and cancer-type token (every melanoma sample) would then not learn at
    ``encoder_lr_scale`` x the head's rate. Those tables are small (1 and 33 rows)."""

    def __init__(self, multipliers=None, weight_decay=0.0, **kwargs):
        super().__init__(weight_decay=None, **kwargs)  # decayed in update_step instead
        self.multipliers = {str(k): float(v) for k, v in dict(multipliers or {}).items()}
        self.decoupled_weight_decay = float(weight_decay or 0.0)

    def build(self, var_list):
        super().build(var_list)
        # update_step may get the backend's variable (TensorFlow's tf.Variable, no .path):
        # the scale is looked up by the optimizer's own key of each variable
        self._scales = {self._var_key(v): self.multipliers[v.path] for v in var_list
                        if v.path in self.multipliers}

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if isinstance(gradient, tf.IndexedSlices):
                gradient = tf.convert_to_tensor(gradient)  # duplicate rows summed
        scale = self._scales.get(self._var_key(variable), 1.0)
        if scale != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, scale)
        if self.decoupled_weight_decay and scale != 0.0:
            lr = keras.ops.cast(learning_rate, variable.dtype)
            self.assign_sub(variable, keras.ops.multiply(
                variable, keras.ops.multiply(lr, self.decoupled_weight_decay)))
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.decoupled_weight_decay,
                "multipliers": dict(self.multipliers)}
