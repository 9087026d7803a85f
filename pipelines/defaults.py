"""The defaults the `amu` commands share (so `amu run` and `amu evaluate` cannot drift apart),
and the small helpers both use for model lists."""

from __future__ import annotations

DEFAULT_MODELS = "amu:small,logreg,svm,rf,xgboost"
#: the published biomarkers `amu run` adds by default (TIDE needs a whole transcriptome: real
#: cohorts only, not the synthetic default cohorts)
RUN_BIOMARKERS = "cd274,cd8a,cxcl9,cytolytic,ifng6,gep18,impres,tide"
SYNTHETIC_BIOMARKERS = "cd274,cd8a,cxcl9,cytolytic,ifng6,gep18,impres"
#: the transfer recipes `amu run` adds (benchmarks/bench_generalisation.py: recipe:consensus
#: has the best pooled leave-one-cohort-out AUC over seeds, recipe:stack-direction the best
#: per-cohort AUCs of the trained models)
RUN_RECIPES = "recipe:consensus,recipe:stack-direction"
PAPER_TABLE_MODELS = "logreg,rf,xgboost"
#: zoo models under the protocols: maximum epochs and early-stopping patience
EPOCHS = 40
PATIENCE = 5


def expand_models(models) -> list[str]:
    """``--models`` with the signature groups (``sig:*``, ``sig:ssgsea``, ...) expanded to
    the library's signatures (:func:`amu_tf.biomarkers.signature_library.expand_model_names`)."""
    from amu_tf.biomarkers.signature_library import expand_model_names, is_signature

    models = list(models)
    return expand_model_names(models) if any(is_signature(m) for m in models) else models


def library_signatures() -> list[str]:
    """Every scorable published signature (``sig:<name>``) of the signature folder
    (``--signatures``, ``$AMU_TF_SIGNATURES`` or ``../shared/data/signatures``); none when
    there is no folder (`amu run` on real cohorts scores them all beside the biomarkers)."""
    from amu_tf.biomarkers.signature_library import expand_model_names, resolve_signatures_dir
    from amu_tf.errors import InputDataError

    try:
        resolve_signatures_dir()
    except InputDataError:
        return []
    return expand_model_names(["sig:*"])


def use_signatures_dir(path) -> None:
    """``--signatures DIR``: the folder every ``sig:`` model of this process reads (through
    ``$AMU_TF_SIGNATURES``, so the protocols' fresh estimators find it too)."""
    import os

    from amu_tf.biomarkers.signature_library import ENV_VAR, resolve_signatures_dir

    if path is not None:
        os.environ[ENV_VAR] = str(resolve_signatures_dir(os.path.abspath(path)))


def calibrated(params: dict, models, calibrate) -> dict:
    """``params`` with ``calibrate`` for every model (the protocols' estimators only)."""
    if not calibrate:
        return params
    return {m: {**params.get(m, {}), "calibrate": calibrate} for m in models}


def split_list(value) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [v.strip() for v in str(value).split(",") if v.strip()]


def trains_a_zoo_model(model: str) -> bool:
    """A zoo model, or a recipe whose estimator is one (``recipe:amu-pretrained``, ...)."""
    from amu_tf.training import TRANSFER_RECIPES, estimator_kind

    if estimator_kind(model) == "keras":
        return True
    recipe = TRANSFER_RECIPES.get(model.partition(":")[2]) if model.startswith("recipe:") else None
    return bool(recipe) and str(recipe["estimator"]).startswith(("amu", "cnn"))


def keras_params(models, epochs, patience) -> dict:
    """Estimator params: epochs/patience for the zoo models and the recipes that train one,
    nothing for the baselines."""
    return {m: {"epochs": epochs, "patience": patience}
            for m in models if trains_a_zoo_model(m)}
