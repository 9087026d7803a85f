"""AMU: expression-scaled gene embedding, stacked transformer encoders, the AMU head."""

from __future__ import annotations

import keras

from amu_tf.layers.amu_head import AMUHead
from amu_tf.layers.gene_embedding import GeneEmbedding
from amu_tf.layers.transformer_encoder import TransformerEncoder
from amu_tf.models.amu_presets import AMU_PRESETS
from amu_tf.models.zoo_model import ZooModel


@keras.saving.register_keras_serializable(package="amu_tf")
class AMUModel(ZooModel):
    """The AMU network (Yin et al.), emitting logits.

    ``AMUModel.from_preset("paper")`` is the model exactly as its authors coded it (see
    ``amu_presets.py``); the paper's final softmax is left out on purpose: the model emits
    logits and losses use ``from_logits=True``.

    ``attention_impl`` picks the encoders' attention: ``"fused"`` (default; same math and
    weights as the reference, faster on CPUs; see docs/speed.md) or ``"keras"`` (MultiHeadAttention, the reference). Weights copy
    between the two with ``set_weights``; ``.keras`` files load into either.
    """

    presets = AMU_PRESETS

    def __init__(
        self,
        n_genes=160,
        embed_dim=20,
        num_layers=8,
        num_heads=10,
        key_dim=2,
        intermediate_dim=200,
        dropout=0.1,
        head_channels=5,
        head_dropout=0.5,
        use_bias=False,
        norm_first=False,
        num_classes=2,
        attention_impl="fused",
        **kwargs,
    ):
        inputs = keras.Input(shape=(n_genes,), dtype="float32", name="expression")
        x = GeneEmbedding(n_genes, embed_dim, use_bias=use_bias, name="gene_embedding")(inputs)
        for i in range(num_layers):
            x = TransformerEncoder(
                num_heads=num_heads,
                key_dim=key_dim,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                norm_first=norm_first,
                attention_impl=attention_impl,
                name=f"encoder_{i}",
            )(x)
        if norm_first:  # pre-LN stacks need a final norm before the head
            x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
        logits = AMUHead(
            channels=head_channels, num_classes=num_classes, dropout=head_dropout, name="head"
        )(x)
        kwargs.setdefault("name", "amu")
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.n_genes = n_genes
        self.embed_dim = embed_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.head_channels = head_channels
        self.head_dropout = head_dropout
        self.use_bias = use_bias
        self.norm_first = norm_first
        self.num_classes = num_classes
        self.attention_impl = attention_impl

    @property
    def gene_embeddings(self):
        """The trained ``n_genes x embed_dim`` embedding matrix as a NumPy array."""
        return keras.ops.convert_to_numpy(self.get_layer("gene_embedding").embeddings)

    def get_config(self):
        return {
            "n_genes": self.n_genes,
            "embed_dim": self.embed_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "head_channels": self.head_channels,
            "head_dropout": self.head_dropout,
            "use_bias": self.use_bias,
            "norm_first": self.norm_first,
            "num_classes": self.num_classes,
            "attention_impl": self.attention_impl,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
