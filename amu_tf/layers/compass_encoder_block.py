"""COMPASS's encoder block: Performer self-attention and a GELU feed-forward, post-LN."""

import keras

from amu_tf.layers.performer_attention import PerformerAttention


@keras.saving.register_keras_serializable(package="amu_tf")
class CompassEncoderBlock(keras.layers.Layer):
    """One encoder layer in COMPASS's exact order (``PerformerLayer`` of immuno-compass).

    Post-LN (COMPASS's default, ``norm_first=False``, which its distilled encoder uses)::

        x = LayerNorm_1(x + Attention(x))
        x = LayerNorm_2(x + Dense_out(GELU(Dense_in(x))))

    pre-LN (``norm_first=True``)::

        x = x + Attention(LayerNorm_1(x));  x = x + FFN(LayerNorm_2(x))

    The GELU is the exact (erf) one and the LayerNorms use torch's epsilon 1e-5, as in the
    reference; Keras's defaults (tanh GELU, epsilon 1e-3) would not match it to 1e-4.

    Args:
        num_heads, head_dim, num_features, key_stabilizer: of the
            :class:`~amu_tf.layers.performer_attention.PerformerAttention`.
        intermediate_dim: feed-forward width (COMPASS: 64 = 2 x model width).
        norm_first: pre-LN instead of post-LN.
        dropout: dropout after the attention and inside/after the feed-forward (0 in COMPASS).
        layer_norm_epsilon: epsilon of both LayerNorms.
    """

    def __init__(self, num_heads=2, head_dim=32, num_features=110, intermediate_dim=64,
                 key_stabilizer="sample", norm_first=False, dropout=0.0,
                 layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        self.num_features = int(num_features)
        self.intermediate_dim = int(intermediate_dim)
        self.key_stabilizer = key_stabilizer
        self.norm_first = bool(norm_first)
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.attention = PerformerAttention(
            num_heads=self.num_heads, head_dim=self.head_dim, num_features=self.num_features,
            key_stabilizer=key_stabilizer, dtype=self.dtype_policy, name="attention")
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="attention_norm")
        self.ffn_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="ffn_norm")
        self.ffn_inner = keras.layers.Dense(self.intermediate_dim, dtype=self.dtype_policy,
                                            name="ffn_inner")
        self.ffn_outer = None  # built when the model width is known
        self.attention_dropout = keras.layers.Dropout(self.dropout)
        self.ffn_dropout = keras.layers.Dropout(self.dropout)
        self.output_dropout = keras.layers.Dropout(self.dropout)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.attention.build(input_shape)
        self.attention_norm.build(input_shape)
        self.ffn_norm.build(input_shape)
        self.ffn_inner.build(input_shape)
        self.ffn_outer = keras.layers.Dense(dim, dtype=self.dtype_policy, name="ffn_outer")
        self.ffn_outer.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))

    def _ffn(self, x, training):
        h = keras.activations.gelu(self.ffn_inner(x), approximate=False)
        h = self.ffn_dropout(h, training=training)
        return self.output_dropout(self.ffn_outer(h), training=training)

    def call(self, inputs, training=None):
        x = inputs
        if self.norm_first:
            x = x + self.attention_dropout(self.attention(self.attention_norm(x)),
                                           training=training)
            return x + self._ffn(self.ffn_norm(x), training)
        x = self.attention_norm(x + self.attention_dropout(self.attention(x), training=training))
        return self.ffn_norm(x + self._ffn(x, training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            head_dim=self.head_dim,
            num_features=self.num_features,
            intermediate_dim=self.intermediate_dim,
            key_stabilizer=self.key_stabilizer,
            norm_first=self.norm_first,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
        )
        return config
