"""Custom Keras layers of amu-tf (one public class per file)."""

from amu_tf.layers.amu_head import AMUHead
from amu_tf.layers.compass_encoder_block import CompassEncoderBlock
from amu_tf.layers.fused_self_attention import FusedSelfAttention
from amu_tf.layers.gene_embedding import GeneEmbedding
from amu_tf.layers.performer_attention import PerformerAttention
from amu_tf.layers.transformer_encoder import TransformerEncoder

__all__ = ["AMUHead", "CompassEncoderBlock", "FusedSelfAttention", "GeneEmbedding",
           "PerformerAttention", "TransformerEncoder"]
