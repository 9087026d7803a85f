"""Estimators (scikit-learn style wrappers of zoo models and the classical baselines),
thresholds, upsampling, the Model bundle.

    from amu_tf.training import make_estimator
    est = make_estimator("amu:small", seed=0, epochs=50).fit(X_train, y_train)
    est.predict_proba(X_test)[:, 1]; est.predict(X_test); est.threshold_

Every estimator learns only from the rows given to ``fit`` (inner validation split or inner
CV, upsampling inside training rows, nested search) and freezes its decision threshold in
``threshold_`` (how: ``threshold_method_``, see ``threshold.THRESHOLD_METHODS``).
"""

from __future__ import annotations

from amu_tf.biomarkers import BIOMARKERS, BiomarkerClassifier
from amu_tf.models.amu_presets import AMU_FT_PRESETS, AMU_PRESETS
from amu_tf.models.cnn_presets import CNN_PRESETS
from amu_tf.training.baselines import BASELINES, make_baseline
from amu_tf.training.compass_probe_classifier import CompassProbeClassifier
from amu_tf.training.compass_published_head_classifier import CompassPublishedHeadClassifier
from amu_tf.training.recipe_classifier import RecipeClassifier
from amu_tf.training.probability_calibration import METHODS as PROBABILITY_CALIBRATIONS
from amu_tf.training.searched_classifier import SearchedClassifier
from amu_tf.training.transfer_recipes import TRANSFER_RECIPES
from amu_tf.training.threshold import THRESHOLD_METHODS, youden_threshold
from amu_tf.training.upsampling import upsample_indices
from amu_tf.training.zoo_classifier import ZooClassifier

#: Every name ``make_estimator`` accepts (zoo models as ``family:preset``, then baselines).
ZOO_ESTIMATORS = tuple(
    [f"amu:{p}" for p in AMU_PRESETS]
    + [f"amu-ft:{p}" for p in AMU_FT_PRESETS]
    + [f"cnn:{p}" for p in CNN_PRESETS]
    + ["amu:compass", "compass:tiny"]  # COMPASS's encoder fine-tuned (issue #23)
)
#: the published biomarkers (``amu_tf.biomarkers``): training-free, only a threshold is fitted
BIOMARKER_ESTIMATORS = tuple(BIOMARKERS)
#: ``recipe:compass-probe`` (issue #23): a linear probe on COMPASS's pre-trained encoder
COMPASS_PROBE = "recipe:compass-probe"
#: the cross-cohort recipes of issue #15 (``amu_tf.training.transfer_recipes``) and the probe
#: ``recipe:compass-published``: a head trained on COMPASS's published pan-cancer features,
#: applied to the port's features (needs ``published_dir``)
COMPASS_PUBLISHED = "recipe:compass-published"
RECIPE_ESTIMATORS = (tuple(f"recipe:{r}" for r in TRANSFER_RECIPES)
                     + (COMPASS_PROBE, COMPASS_PUBLISHED))
ESTIMATORS = ZOO_ESTIMATORS + tuple(BASELINES) + BIOMARKER_ESTIMATORS + RECIPE_ESTIMATORS


def estimator_kind(name_or_estimator) -> str:
    """``"keras"`` for zoo models, ``"biomarker"`` for the published biomarkers,
    ``"sklearn"`` for the baselines."""
    if isinstance(name_or_estimator, str):
        if name_or_estimator in BIOMARKERS or name_or_estimator.startswith("sig:"):
            return "biomarker"
        if name_or_estimator.startswith("recipe:"):
            return "recipe"
        return "sklearn" if name_or_estimator in BASELINES else "keras"
    if isinstance(name_or_estimator, BiomarkerClassifier):
        return "biomarker"
    if isinstance(name_or_estimator, (RecipeClassifier, CompassProbeClassifier)):
        return "recipe"
    return "keras" if isinstance(name_or_estimator, ZooClassifier) else "sklearn"


#: the probability recalibrations ``make_estimator(..., calibrate=...)`` offers (one constant
#: with the final models' recalibration, ``probability_calibration.METHODS``)
CALIBRATIONS = PROBABILITY_CALIBRATIONS


def make_estimator(name: str, seed: int = 0, calibrate: str | None = None, **params):
    """An unfitted estimator by name (see ``ESTIMATORS``); ``params`` go to its constructor.

    Zoo names (``amu:small``, ``amu-ft:base``, ``cnn:paper``, a bare family for its default
    preset) give a :class:`ZooClassifier`; ``svm``, ``rf``, ``adaboost``, ``xgboost`` and
    ``logreg`` give a :class:`SearchedClassifier`; the biomarkers (``cd8a``, ``gep18``,
    ``tide``, ...) a :class:`~amu_tf.biomarkers.BiomarkerClassifier`; ``sig:<name>`` a
    published signature of the library (:mod:`amu_tf.biomarkers.signature_library`, read from
    ``$AMU_TF_SIGNATURES`` or ``../shared/data/signatures``).

    ``calibrate`` (``"sigmoid"``: Platt, or ``"isotonic"``) wraps the estimator in
    :class:`~amu_tf.evaluation.calibration.CalibratedClassifier`: its probabilities are
    recalibrated on out-of-fold predictions of the rows given to ``fit`` only.
    """
    if calibrate is not None:
        if calibrate not in CALIBRATIONS:
            raise ValueError(f"calibrate {calibrate!r}: choose from {', '.join(CALIBRATIONS)}")
        from amu_tf.evaluation.calibration import CalibratedClassifier

        return CalibratedClassifier(make_estimator(name, seed=seed, **params),
                                    method=calibrate, cv=5, seed=seed)
    if name in BASELINES:
        return make_baseline(name, seed=seed, **params)
    if name in BIOMARKERS:
        if params:
            raise ValueError(f"biomarker {name!r} takes no parameters (got "
                             f"{', '.join(sorted(params))}): it is not trained")
        return BiomarkerClassifier(name)
    if name.startswith("sig:"):  # a published signature of the library (a folder read now)
        from amu_tf.biomarkers.signature_classifier import make_signature_estimator

        if set(params) - {"signatures_dir"}:
            raise ValueError(f"signature {name!r} takes no parameters but signatures_dir (got "
                             f"{', '.join(sorted(params))}): it is not trained")
        return make_signature_estimator(name, **params)
    if name == COMPASS_PROBE:  # its own class: it reads COMPASS's encoder, not a recipe spec
        return CompassProbeClassifier(seed=seed, **params)
    if name == COMPASS_PUBLISHED:
        return CompassPublishedHeadClassifier(seed=seed, **params)
    if name.startswith("recipe:"):
        recipe = name.partition(":")[2]
        if recipe not in TRANSFER_RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose from "
                             f"{', '.join(RECIPE_ESTIMATORS)}")
        return RecipeClassifier(recipe, seed=seed, estimator_params=params or None)
    family = name.partition(":")[0]
    if family in ("amu", "amu-ft", "cnn", "compass"):
        from amu_tf.models.zoo import parse_model_name

        try:
            parse_model_name(name)
        except ValueError as exc:
            raise ValueError(f"{exc}; estimators: {', '.join(ESTIMATORS)}") from None
        return ZooClassifier(model=name, seed=seed, **params)
    raise ValueError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}")


__all__ = [
    "BIOMARKER_ESTIMATORS", "COMPASS_PROBE", "COMPASS_PUBLISHED", "CompassProbeClassifier",
    "CompassPublishedHeadClassifier", "RECIPE_ESTIMATORS", "RecipeClassifier", "TRANSFER_RECIPES",
    "ESTIMATORS", "ZOO_ESTIMATORS", "BASELINES", "THRESHOLD_METHODS", "SearchedClassifier",
    "ZooClassifier", "estimator_kind", "make_baseline", "make_estimator", "upsample_indices",
    "youden_threshold",
]
