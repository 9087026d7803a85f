"""The paper's small 1-D convolutional baseline (no self-attention)."""

from __future__ import annotations

import keras

from amu_tf.models.cnn_presets import CNN_PRESETS
from amu_tf.models.zoo_model import ZooModel


@keras.saving.register_keras_serializable(package="amu_tf")
class CNNModel(ZooModel):
    """Three Conv1D layers over the gene axis and a dense classifier, emitting logits.

    The expression vector is read as a 1-channel sequence of genes, normalised by a single
    BatchNorm (the paper's one shared BatchNorm), then passed through the convolutions
    (ReLU after each) and flattened into a Dense layer with ``num_classes`` outputs.
    """

    presets = CNN_PRESETS

    def __init__(self, n_genes=160, filters=(10, 10, 5), kernel_sizes=(1, 2, 2),
                 strides=(1, 2, 2), dropout=0.0, num_classes=2, **kwargs):
        inputs = keras.Input(shape=(n_genes,), dtype="float32", name="expression")
        x = keras.layers.Reshape((n_genes, 1), name="as_sequence")(inputs)
        x = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="batch_norm")(x)
        for i, (f, k, s) in enumerate(zip(filters, kernel_sizes, strides)):
            x = keras.layers.Conv1D(f, k, strides=s, activation="relu", name=f"conv_{i}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        logits = keras.layers.Dense(num_classes, name="classifier")(x)
        kwargs.setdefault("name", "cnn")
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.n_genes = n_genes
        self.filters = tuple(filters)
        self.kernel_sizes = tuple(kernel_sizes)
        self.strides = tuple(strides)
        self.dropout = dropout
        self.num_classes = num_classes

    def get_config(self):
        return {
            "n_genes": self.n_genes,
            "filters": list(self.filters),
            "kernel_sizes": list(self.kernel_sizes),
            "strides": list(self.strides),
            "dropout": self.dropout,
            "num_classes": self.num_classes,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
