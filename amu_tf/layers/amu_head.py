"""The AMU classification head that follows the transformer encoder."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="amu_tf")
class AMUHead(keras.layers.Layer):
    """Per-gene channel mixing, max over channels, then a dense classifier.

    As the paper's code: Conv1D with kernel 1 and no bias (``embed_dim -> channels``),
    Dropout, BatchNorm, ReLU, max over the channels of each gene (one value per gene),
    Dropout, Dense to ``num_classes`` logits.

    Input shape ``(batch, n_genes, embed_dim)``; output ``(batch, num_classes)`` logits.
    """

    def __init__(self, channels=5, num_classes=2, dropout=0.5, batch_norm_epsilon=1e-5,
                 batch_norm_momentum=0.9, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.batch_norm_momentum = float(batch_norm_momentum)

    def build(self, input_shape):
        n_genes = input_shape[-2]
        self.conv = keras.layers.Conv1D(
            self.channels, kernel_size=1, use_bias=False, name="conv", dtype=self.dtype_policy
        )
        self.conv.build(input_shape)
        self.conv_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.batch_norm = keras.layers.BatchNormalization(
            epsilon=self.batch_norm_epsilon, momentum=self.batch_norm_momentum,
            name="batch_norm", dtype=self.dtype_policy,
        )
        self.batch_norm.build(tuple(input_shape[:-1]) + (self.channels,))
        self.pool_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.classifier = keras.layers.Dense(
            self.num_classes, name="classifier", dtype=self.dtype_policy
        )
        self.classifier.build((input_shape[0], n_genes))

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        x = self.conv_dropout(x, training=training)
        x = self.batch_norm(x, training=training)
        x = ops.relu(x)
        x = ops.max(x, axis=-1)  # one value per gene
        x = self.pool_dropout(x, training=training)
        return self.classifier(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            num_classes=self.num_classes,
            dropout=self.dropout,
            batch_norm_epsilon=self.batch_norm_epsilon,
            batch_norm_momentum=self.batch_norm_momentum,
        )
        return config
