"""AMU-FT: AMU with FT-Transformer-style bias tokens and pre-LayerNorm."""

from __future__ import annotations

import keras

from amu_tf.models.amu_model import AMUModel
from amu_tf.models.amu_presets import AMU_FT_PRESETS


@keras.saving.register_keras_serializable(package="amu_tf")
class AMUFTModel(AMUModel):
    """AMU with ``token_g = x_g * E_g + b_g`` (zero-expression genes keep distinct tokens)
    and pre-LN encoder blocks with a final LayerNorm, which train more stably; the variant
    we expect to generalise better across cohorts."""

    presets = AMU_FT_PRESETS

    def __init__(self, use_bias=True, norm_first=True, **kwargs):
        kwargs.setdefault("name", "amu_ft")
        super().__init__(use_bias=use_bias, norm_first=norm_first, **kwargs)
