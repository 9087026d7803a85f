"""``TransformLayer``: the per-sample transforms (``paper``, ``rank``, ``reference_z``) as a
Keras layer, so an exported model takes raw (batch, 160) log2 expression.

The layer does in-graph what ``transform()`` does in NumPy: NaN cells (missing genes) are
replaced by the training means (``fill_values``) with ``where(is_nan)``, then

* ``paper``: ``lin = max(2**x - 1, 0)``; ``ratio = lin / sum(lin)``; ``log(ratio + eps)``;
  optionally ``(. - scale_mean) / scale_std``;
* ``rank``: within-sample average ranks (ties averaged) scaled to [0, 1];
* ``reference_z``: ``(x - scale_mean) / scale_std``.

The "more than max_missing_fraction of genes missing" refusal cannot raise inside a serving
graph; ``amu predict`` / ``ExportedModel`` check it in Python before calling the signature.

    layer = transform.as_keras_layer()          # from a fitted per-sample transform
    y = layer(x)                                # == transform.transform(x) to ~1e-5
"""

from __future__ import annotations

import keras
from keras import ops

METHODS = ("paper", "rank", "reference_z")


@keras.saving.register_keras_serializable(package="amu_tf")
class TransformLayer(keras.layers.Layer):
    """A fitted per-sample transform as a stateless Keras layer (constants in the config).

    Args:
        method: ``"paper"``, ``"rank"`` or ``"reference_z"``.
        fill_values: per-gene training means (log2 scale) used for NaN cells.
        scale_mean, scale_std: per-gene standardisation after the transform (``reference_z``
            always; ``paper`` when fitted with ``standardize=True``), else None.
        eps: the pseudocount of the ``paper`` log.
    """

    def __init__(self, method, fill_values, scale_mean=None, scale_std=None, eps=1e-6,
                 **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
        self.method = method
        self.fill_values = [float(v) for v in fill_values]
        self.scale_mean = None if scale_mean is None else [float(v) for v in scale_mean]
        self.scale_std = None if scale_std is None else [float(v) for v in scale_std]
        self.eps = float(eps)
        if method == "reference_z" and (self.scale_mean is None or self.scale_std is None):
            raise ValueError("reference_z needs scale_mean and scale_std")
        self.n_genes = len(self.fill_values)

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        fill = ops.convert_to_tensor([self.fill_values], dtype="float32")
        x = ops.where(ops.isnan(x), ops.broadcast_to(fill, ops.shape(x)), x)
        if self.method == "paper":
            lin = ops.maximum(ops.power(2.0, x) - 1.0, 0.0)
            ratio = lin / ops.sum(lin, axis=-1, keepdims=True)
            x = ops.log(ratio + self.eps)
        elif self.method == "rank":
            # average rank of x_i among the n values: #(x_j < x_i) + (#(x_j == x_i) + 1) / 2
            xi = ops.expand_dims(x, -1)
            xj = ops.expand_dims(x, -2)
            less = ops.sum(ops.cast(xj < xi, "float32"), axis=-1)
            equal = ops.sum(ops.cast(xj == xi, "float32"), axis=-1)
            rank = less + (equal + 1.0) / 2.0
            x = (rank - 1.0) / float(max(self.n_genes - 1, 1))
        if self.scale_mean is not None and self.method != "rank":
            mean = ops.convert_to_tensor([self.scale_mean], dtype="float32")
            std = ops.convert_to_tensor([self.scale_std], dtype="float32")
            x = (x - mean) / std
        return x

    def get_config(self):
        config = super().get_config()
        config.update({
            "method": self.method,
            "fill_values": self.fill_values,
            "scale_mean": self.scale_mean,
            "scale_std": self.scale_std,
            "eps": self.eps,
        })
        return config
