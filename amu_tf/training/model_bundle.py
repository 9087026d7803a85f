"""The Model artifact read back as one object: estimator + fitted transform + info.

    bundle = ModelBundle.load("runs/x/model")
    bundle.predict_proba(table)       # (n, 2): transform, then estimator
    bundle.predict(table)             # labels at the frozen threshold
    bundle.threshold, bundle.model_info, bundle.transform, bundle.estimator, bundle.keras_model

Layout of a Model artifact (written by ``components/train.py``):

* ``model.keras`` + ``zoo_classifier.json`` (a :class:`ZooClassifier`, no pickle) or
  ``model.joblib`` (a fitted scikit-learn estimator);
* ``transform/``: the fitted transform (``amu_tf.data.transforms.load_transform``);
* ``model_info.json``: the :class:`~amu_tf.training.model_info.ModelInfo` (model name, kind,
  threshold and method, genes, input scale, transform, training cohorts, counts, seed,
  versions, parameters);
* ``training_summary.json``: history, best epoch, search results, timings.

A Model artifact holding only ``model.keras`` and ``model_info.json`` (hand-made, or from an
older version) still loads: the Keras model is wrapped in a ZooClassifier whose threshold
comes from ``model_info.json``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from amu_tf.artifacts import Artifact
from amu_tf.errors import ArtifactError
from amu_tf.training.model_info import ModelInfo

TRAINING_SUMMARY_FILE = "training_summary.json"
KERAS_FILE = "model.keras"
JOBLIB_FILE = "model.joblib"
TRANSFORM_DIR = "transform"


def _read_json(path: Path) -> dict:
    from amu_tf.data.text_files import read_json

    data = read_json(path, "model file", error=ArtifactError)
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} does not hold a JSON object")
    return data


class ModelBundle:
    """A trained model with the transform it expects and its ``model_info``."""

    def __init__(self, estimator, transform=None, model_info: ModelInfo | None = None,
                 artifact=None, training_summary=None, calibration=None):
        self.estimator = estimator
        # a ProbabilityCalibration applied to the estimator's probabilities (None: none)
        self.calibration = calibration
        self.transform = transform
        self.model_info = model_info
        self.artifact = artifact
        self.training_summary = dict(training_summary or {})

    @property
    def info(self) -> dict:
        """``model_info.json`` as written (a dict; :attr:`model_info` is the typed form)."""
        return self.model_info.to_json() if self.model_info is not None else {}

    # ------------------------------------------------------------------ properties
    @property
    def keras_model(self):
        """The Keras model (logits) of a zoo estimator, else None."""
        return getattr(self.estimator, "model_", None) if self.kind == "keras" else None

    @property
    def kind(self) -> str:
        from amu_tf.training import estimator_kind

        return estimator_kind(self.estimator)

    @property
    def threshold(self) -> float:
        if self.calibration is not None:  # in the recalibrated scale
            return float(self.calibration.threshold)
        t = getattr(self.estimator, "threshold_", None)
        return float(t) if t is not None else self.model_info.threshold

    @property
    def name(self) -> str:
        return self.model_info.model if self.model_info is not None else "model"

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, uri: str | os.PathLike) -> "ModelBundle":
        uri = Path(uri)
        art = Artifact.load(uri, expected_type="Model")
        # without it the model's name, genes, transform, cohorts and threshold are unknown:
        # an export or a prediction would have to invent them
        info = ModelInfo.read(uri)
        summary_file = uri / TRAINING_SUMMARY_FILE
        summary = _read_json(summary_file) if summary_file.is_file() else {}

        from amu_tf.training.zoo_classifier import STATE_FILE, ZooClassifier

        if (uri / KERAS_FILE).is_file() and (uri / STATE_FILE).is_file():
            what, load = uri / KERAS_FILE, lambda: ZooClassifier.load(uri)
        elif (uri / KERAS_FILE).is_file():
            what, load = uri / KERAS_FILE, lambda: cls._wrap_bare_keras(uri / KERAS_FILE, info)
        elif (uri / JOBLIB_FILE).is_file():
            import joblib

            what, load = uri / JOBLIB_FILE, lambda: joblib.load(uri / JOBLIB_FILE)
        else:
            raise ArtifactError(f"{uri} holds neither {KERAS_FILE} nor {JOBLIB_FILE}")
        try:
            estimator = load()
        except ArtifactError:
            raise
        except ImportError as exc:  # the model needs a package this environment lacks
            raise ArtifactError(f"{what} needs the package {exc.name or exc}, which is not "
                                "installed here: install it (pip install ...) to load this "
                                "model") from None
        except Exception as exc:  # noqa: BLE001 - any reader's failure on a damaged file
            raise ArtifactError(f"{what} cannot be read ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:160] if str(exc) else '-'}): "
                                "the file is damaged or not what amu train wrote; train the "
                                "model again") from None

        transform = None
        if (uri / TRANSFORM_DIR).is_dir():
            from amu_tf.data.transforms import load_transform

            try:
                transform = load_transform(uri / TRANSFORM_DIR)
            except ArtifactError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise ArtifactError(f"{uri / TRANSFORM_DIR} cannot be read "
                                    f"({type(exc).__name__}): the fitted transform is "
                                    "damaged; train the model again") from None
        from amu_tf.training.probability_calibration import ProbabilityCalibration

        return cls(estimator, transform, info, artifact=art, training_summary=summary,
                   calibration=ProbabilityCalibration.read(uri))

    @staticmethod
    def _wrap_bare_keras(path: Path, info: ModelInfo):
        import keras

        import amu_tf.models  # noqa: F401  (registers the zoo classes)

        return ModelBundle.zoo_from_keras(keras.saving.load_model(path, compile=False), info)

    @staticmethod
    def zoo_from_keras(keras_model, info: ModelInfo):
        """A Keras model (logits) as a fitted ZooClassifier at ``info``'s frozen threshold
        (a Model artifact holding only ``model.keras``, or a model in memory)."""
        from amu_tf.training.zoo_classifier import ZooClassifier

        est = ZooClassifier(model=info.model, seed=int(info.seed or 0))
        est.model_ = keras_model
        est.classes_ = np.array([0, 1])
        est.n_features_in_ = int(est.model_.inputs[0].shape[-1])
        est.threshold_ = info.threshold
        est.threshold_method_ = info.threshold_method
        est.history_, est.best_epoch_, est.epochs_run_, est.fit_seconds_ = {}, 0, 0, 0.0
        return est

    # ------------------------------------------------------------------ prediction
    def features(self, table) -> np.ndarray:
        """The estimator's input for a cohort table: the fitted transform's output, or the
        panel-gene matrix when the bundle has no transform."""
        if self.transform is not None:
            return np.asarray(self.transform.transform(table), dtype=np.float32)
        from amu_tf.data.cohort_table import gene_matrix

        return gene_matrix(table).astype(np.float32)

    def predict_proba(self, table) -> np.ndarray:
        """(n, 2) class probabilities for a cohort table (transform, then estimator, then
        the probability recalibration when the model has one)."""
        proba = self.estimator.predict_proba(self.features(table))
        if self.calibration is None:
            return proba
        p = self.calibration.apply(np.asarray(proba, dtype=float)[:, 1])
        return np.column_stack([1 - p, p])

    def predict(self, table) -> np.ndarray:
        """Labels (1 responder, 0 non-responder) at the frozen threshold."""
        p = self.predict_proba(table)[:, 1]
        return (p >= self.threshold).astype(int)
