"""The COMPASS encoder (Shen et al. 2025): gene tokens, patient and cancer-type tokens, one
Performer encoder block; the TCGA-pre-trained weights come from the immuno-compass wheel."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from amu_tf.layers.compass_encoder_block import CompassEncoderBlock
from amu_tf.layers.gene_embedding import GeneEmbedding
from amu_tf.models.compass_presets import COMPASS_PRESETS

#: index of the melanoma (TCGA SKCM) cancer-type token in COMPASS's cancer_code.json
SKCM_CODE = 25


@keras.saving.register_keras_serializable(package="amu_tf")
class CompassEncoder(keras.Model):
    """COMPASS's ``TransformerEncoder`` as a Keras functional model (a backbone: no head).

    Inputs, a dict:

    - ``"expression"``: float32 ``(batch, n_genes)``, COMPASS's 15,672 genes in its token
      order, log2(TPM + 1) min-max scaled per gene
      (:class:`~amu_tf.data.transforms.compass_input_transform.CompassInputTransform`);
    - ``"cancer_type"``: int32 ``(batch,)``, the TCGA code index (SKCM, melanoma, is 25).

    Output: float32 ``(batch, n_genes + 2, embed_dim)``, the encoded tokens in COMPASS's
    order: the patient token, the cancer-type token, then one per gene.

    The tokens are built as COMPASS builds them: a learned patient token (shared by all
    samples), an embedding of the cancer type, and for each gene ``ReLU(x_g * w_g + b_g)``
    (the AMU expression-scaled embedding with a per-gene bias, :class:`GeneEmbedding` with
    ``use_bias=True``, then COMPASS's ReLU); then one
    :class:`~amu_tf.layers.compass_encoder_block.CompassEncoderBlock`.

    ``CompassEncoder.from_preset("compass")`` builds it with the pre-trained weights
    (converted from the pinned wheel on first use, then cached); pass
    ``load_weights=False`` for random ones.
    """

    presets = COMPASS_PRESETS

    def __init__(self, n_genes=15672, embed_dim=32, num_cancer_types=33, num_heads=2,
                 head_dim=32, num_features=110, intermediate_dim=64, norm_first=False,
                 key_stabilizer="sample", dropout=0.0, **kwargs):
        expression = keras.Input(shape=(n_genes,), dtype="float32", name="expression")
        cancer_type = keras.Input(shape=(), dtype="int32", name="cancer_type")
        cancer_ids = ops.expand_dims(cancer_type, 1)                        # (b, 1)
        patient = keras.layers.Embedding(1, embed_dim, name="patient_token")(
            ops.zeros_like(cancer_ids))                                     # (b, 1, d)
        cancer = keras.layers.Embedding(num_cancer_types, embed_dim, name="cancer_embedding")(
            cancer_ids)                                                     # (b, 1, d)
        genes = GeneEmbedding(n_genes, embed_dim, use_bias=True, name="gene_embedding")(
            expression)
        genes = keras.layers.ReLU(name="gene_relu")(genes)                  # (b, n, d)
        tokens = keras.layers.Concatenate(axis=1, name="tokens")([patient, cancer, genes])
        encoded = CompassEncoderBlock(
            num_heads=num_heads, head_dim=head_dim, num_features=num_features,
            intermediate_dim=intermediate_dim, key_stabilizer=key_stabilizer,
            norm_first=norm_first, dropout=dropout, name="block")(tokens)
        kwargs.setdefault("name", "compass_encoder")
        super().__init__(inputs={"expression": expression, "cancer_type": cancer_type},
                         outputs=encoded, **kwargs)
        self.n_genes = int(n_genes)
        self.embed_dim = int(embed_dim)
        self.num_cancer_types = int(num_cancer_types)
        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        self.num_features = int(num_features)
        self.intermediate_dim = int(intermediate_dim)
        self.norm_first = bool(norm_first)
        self.key_stabilizer = key_stabilizer
        self.dropout = float(dropout)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "n_genes": self.n_genes,
            "embed_dim": self.embed_dim,
            "num_cancer_types": self.num_cancer_types,
            "num_heads": self.num_heads,
            "head_dim": self.head_dim,
            "num_features": self.num_features,
            "intermediate_dim": self.intermediate_dim,
            "norm_first": self.norm_first,
            "key_stabilizer": self.key_stabilizer,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, preset: str = "compass", load_weights: bool = True, **overrides):
        """Build a preset; with ``load_weights`` its pre-trained weights are loaded
        (converting the pinned wheel on first use)."""
        if preset not in cls.presets:
            raise ValueError(f"unknown preset {preset!r} for {cls.__name__}; "
                             f"choose from {sorted(cls.presets)}")
        config = dict(cls.presets[preset]["config"])
        config.update(overrides)
        model = cls(**config)
        if load_weights and cls.presets[preset].get("weights") == "immuno-compass":
            from amu_tf.utils.transformers.convert_compass import load_compass_assets

            model.load_converted_weights(load_compass_assets()["weights"])
        return model

    # Weights ----------------------------------------------------------------------------
    def _weight_slots(self):
        block = self.get_layer("block")
        att = block.attention
        return {
            "patient_token": self.get_layer("patient_token").embeddings,
            "cancer_embedding/embeddings": self.get_layer("cancer_embedding").embeddings,
            "gene_embedding/embeddings": self.get_layer("gene_embedding").embeddings,
            "gene_embedding/bias": self.get_layer("gene_embedding").bias,
            "block/attention/projection_matrix": att.projection_matrix,
            "block/attention/query_kernel": att.query_kernel,
            "block/attention/key_kernel": att.key_kernel,
            "block/attention/value_kernel": att.value_kernel,
            "block/attention/output_kernel": att.output_kernel,
            "block/attention/output_bias": att.output_bias,
            "block/ffn_inner/kernel": block.ffn_inner.kernel,
            "block/ffn_inner/bias": block.ffn_inner.bias,
            "block/ffn_outer/kernel": block.ffn_outer.kernel,
            "block/ffn_outer/bias": block.ffn_outer.bias,
            "block/attention_norm/gamma": block.attention_norm.gamma,
            "block/attention_norm/beta": block.attention_norm.beta,
            "block/ffn_norm/gamma": block.ffn_norm.gamma,
            "block/ffn_norm/beta": block.ffn_norm.beta,
        }

    def load_converted_weights(self, weights: dict, gene_index=None):
        """Assign converted weights (names of ``convert_compass.keras_weights``).

        ``gene_index`` (optional int array): the rows of the converted per-gene weights to
        use, for an encoder built on a subset of COMPASS's genes (as COMPASS's own
        ``_remap_distilled_encoder`` does for a smaller gene list).
        """
        slots = self._weight_slots()
        missing = sorted(set(slots) - set(weights))
        if missing:
            raise ValueError(f"converted COMPASS weights lack {missing}")
        for name, var in slots.items():
            value = np.asarray(weights[name], dtype=np.float32)
            if gene_index is not None and name.startswith("gene_embedding/"):
                value = value[np.asarray(gene_index)]
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"{name}: converted shape {value.shape} != {tuple(var.shape)}")
            var.assign(value)
        return self

    def gene_encodings(self, expression, cancer_type=SKCM_CODE, batch_size=32):
        """NumPy convenience: the gene tokens' encodings ``(n, n_genes, embed_dim)`` of an
        ``(n, n_genes)`` matrix (patient and cancer tokens dropped)."""
        x = np.asarray(expression, dtype=np.float32)
        ct = np.broadcast_to(np.asarray(cancer_type, dtype=np.int32), (x.shape[0],)).copy()
        out = self.predict({"expression": x, "cancer_type": ct}, batch_size=batch_size,
                           verbose=0)
        return out[:, 2:, :]
