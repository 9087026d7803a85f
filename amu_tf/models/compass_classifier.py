"""``amu:compass``: COMPASS's TCGA-pre-trained encoder fine-tuned under a small head."""

from __future__ import annotations

import keras
from keras import ops

from amu_tf.models.compass_classifier_presets import COMPASS_CLASSIFIER_PRESETS
from amu_tf.models.compass_encoder import SKCM_CODE, CompassEncoder


@keras.saving.register_keras_serializable(package="amu_tf")
class _ConstantCode(keras.layers.Layer):
    """``(batch, n)`` -> ``(batch,)`` int32 filled with ``code`` (the cancer-type token of a
    one-cancer model, inside the graph so the served signature takes expression only)."""

    def __init__(self, code=SKCM_CODE, **kwargs):
        super().__init__(**kwargs)
        self.code = int(code)

    def call(self, x):
        return ops.full((ops.shape(x)[0],), self.code, dtype="int32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def get_config(self):
        return {**super().get_config(), "code": self.code}


@keras.saving.register_keras_serializable(package="amu_tf")
class _TokenReadout(keras.layers.Layer):
    """Encoded tokens ``(batch, 2 + n, d)`` -> ``(batch, d)``: the patient token, or the
    mean of the gene tokens."""

    def __init__(self, readout="patient", **kwargs):
        super().__init__(**kwargs)
        self.readout = readout

    def call(self, tokens):
        if self.readout == "patient":
            return tokens[:, 0, :]
        return ops.mean(tokens[:, 2:, :], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "readout": self.readout}


@keras.saving.register_keras_serializable(package="amu_tf")
class _LogitPair(keras.layers.Layer):
    """``(batch, 1)`` -> ``(batch, 2)`` = ``[0, t]``: softmax gives sigmoid(t)."""

    def call(self, t):
        return ops.concatenate([ops.zeros_like(t), t], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2)


@keras.saving.register_keras_serializable(package="amu_tf")
class CompassClassifier(keras.Model):
    """COMPASS's encoder (:class:`~amu_tf.models.compass_encoder.CompassEncoder`) with a
    small classification head, as a Keras functional model for the zoo.

    Input ``"expression"``: float32 ``(batch, n_genes)``, COMPASS's genes in token order,
    log2(TPM + 1) min-max scaled per gene
    (:class:`~amu_tf.data.transforms.compass_input_transform.CompassInputTransform`, the
    model's input transform). The cancer-type token is the constant ``cancer_type`` (SKCM,
    melanoma, by default). Output: logits ``(batch, 2)`` = ``[0, t]`` like every zoo model.

    Head: the encoded patient token (``readout="patient"``, COMPASS's summary token) or the
    mean of the gene tokens (``"mean"``) -> Dense(``head_units``, ReLU) -> Dropout ->
    Dense(1). The encoder sits under the name ``compass_encoder``; the zoo's trainer gives
    its weights a lower learning rate (``ZooClassifier(encoder_lr_scale=...)``).

    ``CompassClassifier.from_preset("pretrained")`` loads the TCGA-pre-trained encoder
    (converted from the pinned wheel on first use, then cached); ``load_weights=False``
    leaves it random (``amu zoo`` counts parameters that way).
    """

    presets = COMPASS_CLASSIFIER_PRESETS

    def __init__(self, encoder_config=None, cancer_type=SKCM_CODE, head_units=16, dropout=0.1,
                 readout="patient", **kwargs):
        if readout not in ("patient", "mean"):
            raise ValueError(f"readout must be 'patient' or 'mean', got {readout!r}")
        encoder_config = dict(encoder_config or {})
        encoder = CompassEncoder(**encoder_config, name="compass_encoder")
        expression = keras.Input(shape=(encoder.n_genes,), dtype="float32", name="expression")
        code = _ConstantCode(cancer_type, name="cancer_type")(expression)
        tokens = encoder({"expression": expression, "cancer_type": code})
        h = _TokenReadout(readout, name="readout")(tokens)
        h = keras.layers.Dense(int(head_units), activation="relu", name="head_hidden")(h)
        h = keras.layers.Dropout(float(dropout), name="head_dropout")(h)
        t = keras.layers.Dense(1, name="head_out")(h)
        logits = _LogitPair(name="logits")(t)
        kwargs.setdefault("name", "compass_classifier")
        super().__init__(inputs=expression, outputs=logits, **kwargs)
        self.encoder_config = {**encoder.get_config()}
        for k in ("name", "trainable"):
            self.encoder_config.pop(k, None)
        self.cancer_type = int(cancer_type)
        self.head_units = int(head_units)
        self.dropout = float(dropout)
        self.readout = readout

    @property
    def encoder(self) -> CompassEncoder:
        return self.get_layer("compass_encoder")

    @property
    def n_genes(self) -> int:
        return self.encoder.n_genes

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "encoder_config": dict(self.encoder_config), "cancer_type": self.cancer_type,
                "head_units": self.head_units, "dropout": self.dropout,
                "readout": self.readout}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, preset: str = "pretrained", load_weights: bool = True, **overrides):
        """Build a preset; with ``load_weights`` a pre-trained encoder's weights are loaded."""
        if preset not in cls.presets:
            raise ValueError(f"unknown preset {preset!r} for {cls.__name__}; "
                             f"choose from {sorted(cls.presets)}")
        spec = cls.presets[preset]
        config = {k: v for k, v in spec["config"].items() if k != "input_genes"}
        config.update(overrides)
        model = cls(**config)
        if load_weights and spec.get("weights") == "immuno-compass":
            from amu_tf.utils.transformers.convert_compass import load_compass_assets

            model.encoder.load_converted_weights(load_compass_assets()["weights"])
        return model

    # the zoo's parameter counts (`amu zoo`); the paper's count rule (BatchNorm excluded)
    # changes nothing here: the model has none
    def count_params_paper(self) -> int:
        return int(self.count_params())

    def count_params_keras(self) -> int:
        return int(sum(int(ops.size(w)) for w in self.trainable_weights))
