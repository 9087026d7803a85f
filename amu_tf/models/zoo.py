"""The model zoo: every Keras model and its presets, addressed as ``family:preset``."""

from __future__ import annotations

from amu_tf.models.amu_ft_model import AMUFTModel
from amu_tf.models.amu_model import AMUModel
from amu_tf.models.cnn_model import CNNModel
from amu_tf.models.compass_classifier import CompassClassifier

#: model family -> (class, default preset)
ZOO = {
    "amu": (AMUModel, "paper"),
    "amu-ft": (AMUFTModel, "small"),
    "cnn": (CNNModel, "paper"),
    "compass": (CompassClassifier, "pretrained"),
}

#: other names of zoo models (the issue and the docs call the fine-tuned COMPASS amu:compass)
ALIASES = {"amu:compass": "compass:pretrained"}


def parse_model_name(name: str) -> tuple[str, str]:
    """``"amu:paper"`` -> ``("amu", "paper")``; a bare family gets its default preset;
    ``amu:compass`` is ``compass:pretrained``."""
    family, _, preset = ALIASES.get(name, name).partition(":")
    if family not in ZOO:
        raise ValueError(f"unknown model {family!r}; the zoo has {sorted(ZOO)}")
    cls, default = ZOO[family]
    preset = preset or default
    if preset not in cls.presets:
        raise ValueError(
            f"unknown preset {preset!r} for {family}; choose from {sorted(cls.presets)}"
        )
    return family, preset


def is_zoo_model(name: str) -> bool:
    return ALIASES.get(name, name).partition(":")[0] in ZOO


def build_model(name: str, **overrides):
    """Build a zoo model by ``family:preset`` name, with optional config overrides."""
    family, preset = parse_model_name(name)
    return ZOO[family][0].from_preset(preset, **overrides)


def list_models() -> list[dict]:
    """One row per model and preset with its parameter counts (builds each model once)."""
    import keras

    rows = []
    for family, (cls, _) in ZOO.items():
        for preset, spec in cls.presets.items():
            # a pre-trained model's parameters are counted without fetching its weights
            model = (cls.from_preset(preset, load_weights=False)
                     if "weights" in spec else cls.from_preset(preset))
            rows.append(
                {
                    "model": next((a for a, n in ALIASES.items()
                                   if n == f"{family}:{preset}"), f"{family}:{preset}"),
                    "params_paper": model.count_params_paper(),
                    "params_keras": model.count_params_keras(),
                    "description": spec["description"],
                }
            )
            del model
            keras.backend.clear_session()
    return rows
