"""Write a zoo Keras model (plus an optional in-graph preprocessing layer) as a TensorFlow
SavedModel that TF Serving can serve without Python.

The ``serving_default`` signature takes ONE named float32 input ``expression`` of shape
``[None, n_genes]`` (genes in the panel order stored in ``assets/amu_metadata.json``) and
returns named outputs:

- ``probability`` ``[None]`` float32: P(responder) = softmax(logits)[:, 1], passed through
  the model's probability recalibration when it has one (``amu train --calibrate``; the map
  is in the graph, see :mod:`amu_tf.training.probability_calibration`)
- ``logits`` ``[None, 2]`` float32: the model's logits (before any recalibration)
- ``predicted_class`` ``[None]`` int64: 1 where ``probability >= threshold`` (the threshold
  frozen at training time, stored in the graph and in the metadata)

A per-sample transform (one that can transform a single sample alone, e.g. its NaN
imputation and standardisation with training statistics) is called inside the graph, so the
signature's input is then the raw log2 panel expression of the cohort table. After it, the
graph asserts that the model input is finite: NaN left un-imputed is an error, not a silent
NaN probability.

    write_saved_model("out/1", keras_model, metadata, preprocess=transform.as_keras_layer(),
                      threshold=0.5)

By default the graph holds standard TensorFlow ops only. ``compiled_attention=True`` (``amu
export --compiled-attention``, AMU models) traces the attention layers with the compiled
CPU op of :mod:`amu_tf.kernels.tiny_attention` instead: about 1.9x the CPU throughput, same
outputs to 1e-5, but the SavedModel then contains the custom op ``AmuTinyAttention`` and
loads only where that op's library is loaded first (:class:`ExportedModel` and ``amu
predict`` do it; TF Serving needs a model-server binary built with the op). The metadata's
``custom_ops`` lists it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import tensorflow as tf

from amu_tf.artifacts import to_jsonable

METADATA_FILE = "amu_metadata.json"
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "expression"
OUTPUT_NAMES = ("probability", "logits", "predicted_class")


class ServingModule(tf.Module):
    """What the SavedModel holds: the Keras model, the preprocessing layer, the threshold and
    the metadata asset, with ``serve`` as the ``serving_default`` signature."""

    def __init__(self, keras_model, preprocess=None, threshold: float = 0.5,
                 n_genes: int = 160, metadata_file: str | os.PathLike | None = None,
                 calibration=None):
        super().__init__(name="amu_serving")
        self.model = keras_model
        self.calibration = calibration  # a ProbabilityCalibration (its map is traced in)
        self.preprocess = preprocess
        self.n_genes = int(n_genes)
        self.threshold = tf.Variable(float(threshold), dtype=tf.float32, trainable=False,
                                     name="threshold")
        if metadata_file is not None:
            self.metadata_asset = tf.saved_model.Asset(str(metadata_file))
        self.serve = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([None, self.n_genes], tf.float32, name=INPUT_NAME)],
        )

    def _serve(self, expression):
        x = expression
        if self.preprocess is not None:
            x = tf.cast(self.preprocess(x), tf.float32)
        x = tf.debugging.assert_all_finite(
            x, "model input has NaN or inf after preprocessing (missing genes must be "
               "imputed before this model, or the input is not on the expected scale)"
        )
        logits = tf.cast(self.model(x, training=False), tf.float32)
        probability = tf.nn.softmax(logits, axis=-1)[:, 1]
        if self.calibration is not None:
            probability = self.calibration.apply_tf(probability)
        predicted_class = tf.cast(probability >= self.threshold, tf.int64)
        return {
            "probability": tf.identity(probability, name="probability"),
            "logits": tf.identity(logits, name="logits"),
            "predicted_class": tf.identity(predicted_class, name="predicted_class"),
        }


def check_compiled_attention(keras_model) -> None:
    """Raise a one-line error unless ``keras_model`` can be exported with the compiled
    attention op: it has fused attention layers and the op is built and loaded here."""
    from amu_tf.errors import ArtifactError, KernelUnavailableError
    from amu_tf.kernels import tiny_attention as kernels
    from amu_tf.layers import FusedSelfAttention

    layers = keras_model._flatten_layers(include_self=False, recursive=True)
    if not any(isinstance(layer, FusedSelfAttention) for layer in layers):
        raise ArtifactError(f"--compiled-attention needs an AMU model with fused attention; "
                            f"{keras_model.name!r} has none")
    if not kernels.available():
        raise KernelUnavailableError("--compiled-attention: " + kernels.status())


def custom_ops_for(compiled_attention: bool) -> list[str]:
    """The custom ops an export asked for contains (what ``metadata["custom_ops"]`` says)."""
    from amu_tf.kernels import tiny_attention as kernels

    return [kernels.INFERENCE_OP] if compiled_attention else []


def graph_custom_ops(saved_model_dir: str | os.PathLike) -> list[str]:
    """The amu-tf custom ops a written SavedModel's graph uses (``[]``: portable)."""
    from amu_tf.kernels import tiny_attention as kernels

    pb = (Path(saved_model_dir) / "saved_model.pb").read_bytes()
    return [kernels.INFERENCE_OP] if kernels.INFERENCE_OP.encode() in pb else []


def write_saved_model(path: str | os.PathLike, keras_model, metadata: dict,
                      preprocess=None, threshold: float = 0.5, n_genes: int = 160,
                      compiled_attention: bool = False, calibration=None) -> Path:
    """Save ``keras_model`` (+ ``preprocess``) as a SavedModel in ``path`` with the
    ``serving_default`` signature above and ``assets/amu_metadata.json``.

    ``path`` should be a fresh folder (use :class:`~amu_tf.serving.serving_versions.VersionWriter`
    for TF Serving's atomic versioned layout). ``compiled_attention``: see the module's
    docstring; ``metadata["custom_ops"]`` is set to what the graph needs. ``calibration``: a
    :class:`~amu_tf.training.probability_calibration.ProbabilityCalibration` applied to the
    probability in the graph (``threshold`` is then in its scale).
    """
    from amu_tf.errors import ArtifactError
    from amu_tf.kernels import tiny_attention as kernels

    path = Path(path)
    if compiled_attention:
        check_compiled_attention(keras_model)
    metadata = dict(metadata)
    metadata["custom_ops"] = custom_ops_for(compiled_attention)
    # the graph's predicted_class uses ``threshold``: the metadata reports that same value
    metadata["threshold"] = float(threshold)
    tracing = kernels.inference_kernels() if compiled_attention else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="amu-meta-") as tmp, tracing:
        meta_file = Path(tmp) / METADATA_FILE
        meta_file.write_text(json.dumps(to_jsonable(metadata), indent=2) + "\n")
        module = ServingModule(keras_model, preprocess=preprocess, threshold=threshold,
                               n_genes=n_genes, metadata_file=meta_file,
                               calibration=calibration)
        tf.saved_model.save(module, str(path), signatures={SIGNATURE_KEY: module.serve})
    in_graph = graph_custom_ops(path)
    if in_graph != metadata["custom_ops"]:
        raise ArtifactError(f"the exported graph's custom ops {in_graph} are not the ones "
                            f"asked for {metadata['custom_ops']}")
    return path


def read_metadata(saved_model_dir: str | os.PathLike) -> dict:
    """The metadata JSON stored in a SavedModel's assets (``{}``-free: raises if absent)."""
    from amu_tf.errors import ArtifactError

    f = Path(saved_model_dir) / "assets" / METADATA_FILE
    if not f.is_file():
        raise ArtifactError(f"{saved_model_dir} has no assets/{METADATA_FILE}; "
                            "not an amu-tf export")
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{f} is corrupt: {exc}") from None
