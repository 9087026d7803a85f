"""Expression-scaled gene embedding: each gene's expression value scales that gene's vector."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="amu_tf")
class GeneEmbedding(keras.layers.Layer):
    """Turns an expression vector into one token per gene.

    ``token_g = x_g * E_g`` (the AMU paper's embedding: a trainable ``n_genes x embed_dim``
    matrix ``E``, no position encoding). With ``use_bias=True`` a per-gene bias is added,
    ``token_g = x_g * E_g + b_g`` as FT-Transformer's feature tokenizer does, so genes with
    zero expression keep distinct tokens instead of collapsing to the zero vector.

    Args:
        n_genes: number of genes (input width).
        embed_dim: token width.
        use_bias: add the per-gene bias ``b``.
        embeddings_initializer: initializer of ``E`` (the paper's code used N(0, 1)).
        bias_initializer: initializer of ``b``.

    Input shape ``(batch, n_genes)``; output shape ``(batch, n_genes, embed_dim)``.
    """

    def __init__(
        self,
        n_genes=160,
        embed_dim=20,
        use_bias=False,
        embeddings_initializer="random_normal",
        bias_initializer="random_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_genes = int(n_genes)
        self.embed_dim = int(embed_dim)
        self.use_bias = bool(use_bias)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.n_genes:
            raise ValueError(
                f"GeneEmbedding expects {self.n_genes} genes per sample, got input width "
                f"{input_shape[-1]}"
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.n_genes, self.embed_dim),
            initializer=self.embeddings_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.n_genes, self.embed_dim), initializer=self.bias_initializer
            )
        else:
            self.bias = None

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        tokens = ops.expand_dims(x, -1) * self.embeddings
        if self.bias is not None:
            tokens = tokens + self.bias
        return tokens

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.embed_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            n_genes=self.n_genes,
            embed_dim=self.embed_dim,
            use_bias=self.use_bias,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
