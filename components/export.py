"""Export (TFX's Pusher): a trained Model artifact -> a TF Serving version folder.

Keras zoo models, and the models that are a few multiply-adds (the gene-signature
biomarkers, IMPRES, the logistic regression: :mod:`amu_tf.serving.linear_export`).

    art = run_export("runs/x/train", base_dir="saved_models", name="amu")
    art.properties["version"], art.properties["path"]     # 3, "saved_models/amu/3"

Writes ``<base_dir>/<name>/<version>/`` (next integer version; never overwrites; written aside
and renamed, see :mod:`amu_tf.serving.serving_versions`) holding the SavedModel (signature in
:mod:`amu_tf.serving.saved_model_export`), ``assets/amu_metadata.json``, the fitted transform
in ``assets/transform/`` (for what must run in Python) and ``artifact.json`` (a PushedModel
artifact recording name, version and path). TF Serving ignores the extra files.

Like TFX's Pusher it pushes a blessed model: given the run's ModelEvaluation
(``evaluation_uri``), it copies the model's honest metrics (every non-LEAKY protocol's AUC,
AP and F1 with 95% CIs) and blessing into the metadata, records the evaluation among its
inputs, and refuses a model the evaluation did not bless unless ``force``. A model exported
without an evaluation says so in its metadata (``metrics.source``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from amu_tf import __version__
from amu_tf.artifacts import METADATA_FILE as ARTIFACT_FILE, Artifact, hash_path, safe_name
from amu_tf.data.text_files import read_json
from amu_tf.errors import ArtifactError
from amu_tf.training.model_info import ModelInfo
from amu_tf.serving.exported_model import TRANSFORM_ASSET
from amu_tf.serving.saved_model_export import (INPUT_NAME, OUTPUT_NAMES, SIGNATURE_KEY,
                                               custom_ops_for, write_saved_model)
from amu_tf.serving.serving_versions import VersionWriter

#: a served model name: one plain folder name under the base dir
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

RAW_SCALE = ("log2 panel expression as in the cohort table (counts -> log2 CPM, TPM/FPKM -> "
             "log2(x+1)), genes in the order of 'genes'")


def _preprocess_layer(transform, n_genes: int):
    """The transform's Keras layer when it is per-sample, and whether it imputes NaN (checked
    by running it on an all-NaN sample, not assumed)."""
    if transform is None or not getattr(transform, "per_sample", False):
        return None, False
    if not hasattr(transform, "as_keras_layer"):
        return None, False
    layer = transform.as_keras_layer()
    probe = np.asarray(layer(np.full((1, n_genes), np.nan, dtype=np.float32)))
    return layer, bool(np.isfinite(probe).all())


def build_metadata(info: ModelInfo, transform, in_graph: bool, imputes: bool, name: str,
                   model_art: Artifact, n_inputs: int | None = None, graph: str | None = None
                   ) -> dict:
    """The serving metadata; ``n_inputs``: the signature's input width when it is not the
    number of genes (a transform that turns the genes into fewer features before the graph);
    ``graph``: how a model that is a few multiply-adds was written as a graph."""
    genes = [{"index": i, "symbol": s, "entrez_id": e}
             for i, (s, e) in enumerate(zip(info.genes, info.entrez_ids))]
    n_inputs = len(genes) if n_inputs is None else int(n_inputs)
    tname = getattr(transform, "name", None) or info.transform
    if in_graph or tname in (None, "", "identity", "none"):
        scale = RAW_SCALE + (f"; the per-sample {tname!r} transform runs inside the graph"
                             if in_graph else "; no transform")
    elif getattr(transform, "input_scale", None):  # a transform that says what it reads
        scale = (f"{transform.input_scale}; the fitted {tname!r} transform (needs a whole "
                 "cohort) is applied by `amu predict` in Python from assets/transform/ before "
                 "calling the signature")
    else:
        scale = (f"cohort-standardised: the output of the fitted {tname!r} transform (needs a "
                 "whole cohort, e.g. cohort_z z-scores each gene within its cohort), NOT raw "
                 "log2 expression; `amu predict` applies it in Python from assets/transform/ "
                 "before calling the signature")
    return {
        "format": "amu-tf serving metadata v1",
        "model_name": info.model,
        "served_name": name,
        "signature": {
            "key": SIGNATURE_KEY,
            "inputs": {INPUT_NAME: {"dtype": "float32", "shape": [None, n_inputs]}},
            "outputs": {
                "probability": "P(responder), float32 [batch]",
                "logits": "float32 [batch, 2] (class 0 non-responder, 1 responder)",
                "predicted_class": "int64 [batch], 1 where probability >= threshold",
            },
        },
        "n_genes": len(genes),
        "n_inputs": n_inputs,
        "genes": genes,
        "expected_input_scale": scale,
        "transform": {
            "name": tname,
            "per_sample": bool(getattr(transform, "per_sample", False)) if transform else None,
            "params": (transform.get_params() if hasattr(transform, "get_params") else None),
            "in_graph": bool(in_graph),
            "imputes_in_graph": bool(imputes),
            "python_side": None if (in_graph or not tname) else f"assets/{TRANSFORM_ASSET}/",
            # what the fit learned and measured (COMPASS: units per cohort, the scaler, missing
            # genes); {} for a transform that records nothing
            "record": (transform.artifact_record()
                       if hasattr(transform, "artifact_record") else {}),
        },
        "nan_policy": ("NaN = missing gene, imputed in the graph from training statistics"
                       if imputes else
                       "NaN not accepted by the signature; `amu predict` imputes in Python"
                       if tname and not in_graph else "NaN not accepted"),
        "threshold": info.threshold,
        "threshold_method": info.threshold_method,
        "training_cohorts": info.training_cohorts,
        "n_train": info.n_train,
        "model_info": dict(info.to_json(), **({"graph": graph} if graph else {})),
        "source_model": model_art.ref(),
        "amu_tf_version": __version__,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def calibration_metadata(calibration) -> dict:
    """Whether the exported probabilities are recalibrated, and on what (the metadata's
    ``calibration``)."""
    if calibration is None:
        return {"method": None,
                "statement": "not recalibrated: the probability is the model's own output "
                             "(train with --calibrate sigmoid|isotonic to recalibrate it)"}
    return {"method": calibration.method, "in_graph": True,
            "statement": "probability and predicted_class are " + calibration.describe()
                         + "; logits are the model's own, before recalibration",
            "map": {k: v for k, v in calibration.to_json().items()
                    if k in ("slope", "intercept", "knots_x", "knots_y")},
            "fitted_on": calibration.fitted_on}


NO_EVALUATION = {"source": "none: exported without a ModelEvaluation; no honest metrics and "
                          "no blessing (export with --evaluation, or from a run folder)",
                 "protocols": {}, "blessed": None, "blessing_reason": None}


def honest_metrics(evaluation: Artifact, model: str) -> dict:
    """The honest protocols' metrics of ``model`` (AUC, AP and F1 with 95% CIs, n) and its
    blessing, read from a ModelEvaluation artifact; LEAKY protocols are left out."""
    import pandas as pd

    from amu_tf.evaluation.report import BLESSING_JSON, EVALUATION_JSON

    folder = evaluation.path
    try:
        metrics = pd.read_csv(folder / "metrics.csv")
        blessing = read_json(folder / BLESSING_JSON, "evaluation blessing", error=ArtifactError)
        protocols = read_json(folder / EVALUATION_JSON, "evaluation record",
                              error=ArtifactError)["protocols"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"the evaluation {folder} cannot be read: {exc}") from None
    if model not in blessing:
        raise ArtifactError(f"{model!r} was not evaluated in {folder} (it evaluated "
                            f"{', '.join(blessing)}); export it without --evaluation, or "
                            "evaluate it")
    per = {}
    for _, row in metrics[(metrics["model"] == model) & ~metrics["leaky"].astype(bool)].iterrows():
        label = row["protocol_label"]
        per[label] = {"description": protocols.get(label, {}).get("description"),
                      "n": int(row["n"]), "n_responders": int(row["n_responders"])}
        for k in ("roc_auc", "ap_responder", "f1_weighted"):
            per[label][k] = {"value": round(float(row[k]), 4),
                             "ci95": [round(float(row[f"{k}_ci_low"]), 4),
                                      round(float(row[f"{k}_ci_high"]), 4)]}
    return {
        "source": f"ModelEvaluation artifact {folder}",
        "note": "Estimated by refitting the transform and the model inside every split of each "
                "honest protocol; the exported model is the same recipe fitted on all labeled "
                "rows. 95% CIs: stratified bootstrap, percentile.",
        "protocols": per,
        "blessed": bool(blessing[model]["blessed"]),
        "blessing_reason": blessing[model]["reason"],
    }


def check_evaluated_this_model(model_art: Artifact, evaluation: Artifact,
                               force: bool) -> str | None:
    """Refuse an evaluation that did not evaluate this model's recipe (unless ``force``): one
    made on another cohort table, or one that recorded the run's Model artifacts without this
    one (the model was trained again since). Returns the reason ``force`` overrode, if any."""
    def hashes(art, type_):
        return {r.get("content_hash") for r in art.inputs if r.get("type") == type_}

    why = None
    tables = hashes(model_art, "CohortTable"), hashes(evaluation, "CohortTable")
    if all(tables) and not tables[0] & tables[1]:
        why = "it was made on another cohort table than the model was trained on"
    models = hashes(evaluation, "Model")
    if why is None and models and model_art.content_hash not in models:
        why = "it does not record this Model artifact (trained again since?)"
    if why and not force:
        raise NotBlessedError(f"the evaluation {evaluation.uri} does not vouch for "
                              f"{model_art.uri}: {why}. Evaluate the model again, or pass "
                              "--force to export it anyway (its metadata will say so)")
    return why


class NotBlessedError(ArtifactError):
    """The evaluation did not bless the model and ``force`` was not given."""


def check_blessed(metrics: dict, model: str, force: bool) -> None:
    """Refuse a model its evaluation did not bless, unless ``force``."""
    if metrics["blessed"] is False and not force:
        raise NotBlessedError(f"{model!r} was not blessed by its evaluation "
                            f"({metrics['blessing_reason']}); it is not exported. Pass "
                            "--force to export it anyway (its metadata will say so)")


def run_export(model_uri: str | os.PathLike, base_dir: str | os.PathLike = "saved_models",
               name: str | None = None, evaluation_uri: str | os.PathLike | None = None,
               force: bool = False, compiled_attention: bool = False,
               recommendation: dict | None = None) -> Artifact:
    """Export a Model artifact to ``<base_dir>/<name>/<next version>/``; returns the
    PushedModel artifact (``properties``: name, version, path, model, blessed).

    ``evaluation_uri``: the ModelEvaluation that evaluated this model's recipe; its honest
    metrics and blessing go into ``assets/amu_metadata.json`` and an unblessed model is
    refused unless ``force``. ``compiled_attention``: trace AMU attention with the compiled
    CPU op (faster, not portable: see :mod:`amu_tf.serving.saved_model_export`).
    ``recommendation``: why `amu run` recommends this model for a new cohort (its rule and
    the selection caveat), written to the metadata as ``recommended_for_a_new_cohort``."""
    from amu_tf.training.model_bundle import ModelBundle

    bundle = ModelBundle.load(model_uri)
    keras_model, transform, info = bundle.keras_model, bundle.transform, bundle.model_info
    model_art = bundle.artifact
    evaluation, metrics = None, dict(NO_EVALUATION)
    if evaluation_uri is not None:
        evaluation = Artifact.load(evaluation_uri, expected_type="ModelEvaluation")
        mismatch = check_evaluated_this_model(model_art, evaluation, force)
        metrics = honest_metrics(evaluation, info.model)
        check_blessed(metrics, info.model, force)
        metrics["forced"] = bool(force and (mismatch or metrics["blessed"] is False))
        if mismatch:
            metrics["forced_past"] = f"the evaluation does not vouch for this model: {mismatch}"
    copy_transform = True  # a zoo model: its Model artifact's transform/ goes into assets/
    graph = None
    if keras_model is None:  # a biomarker, logreg or a recipe: a few multiply-adds
        from amu_tf.serving.linear_export import serving_model

        keras_model, own, _, graph = serving_model(bundle)
        copy_transform = False  # the transform the graph expects is saved as it is
        transform = own
        info = replace(info, transform=getattr(own, "name", None))
    if name is None:
        name = safe_name(info.model.partition(":")[0], sep="-")
    if not NAME_PATTERN.match(name):
        raise ArtifactError(f"invalid model name {name!r}: use letters, digits, '_', '-', '.'")
    n_genes = int(keras_model.input_shape[-1])
    layer, imputes = _preprocess_layer(transform, n_genes)
    n_features = len(getattr(transform, "biomarkers", ()) or ()) or None  # signature scores
    if graph is not None and n_features is None and n_genes != len(info.genes):
        n_features = n_genes  # a Python-side transform makes features of the genes
    metadata = build_metadata(info, transform, layer is not None, imputes, name, model_art,
                              n_inputs=n_features, graph=graph)
    metadata["metrics"] = metrics
    metadata["calibration"] = calibration_metadata(bundle.calibration)
    if recommendation is not None:  # why `amu run` recommends this model (and the caveat)
        metadata["recommended_for_a_new_cohort"] = recommendation
    if metadata["n_inputs"] != n_genes:
        raise ArtifactError(f"model_info.json describes {metadata['n_inputs']} inputs but the "
                            f"model takes {n_genes}")
    model_dir = Path(base_dir) / name
    created = [p for p in (Path(base_dir), model_dir) if not p.exists()]
    try:
        art, w = _write_version(model_dir, model_uri, keras_model, metadata, layer, n_genes,
                                compiled_attention, transform, copy_transform, base_dir, name,
                                info, model_art, evaluation, metrics, bundle.calibration)
    except BaseException as exc:
        # the staged version is gone (VersionWriter); folders this export created stay
        # only when something else is in them
        for p in reversed(created):
            try:
                p.rmdir()
            except OSError:
                pass
        why = _write_failure(exc)
        if why is None:
            raise
        raise ArtifactError(f"cannot write the export under {model_dir}: {why}") from None
    if w.version != art.properties["version"]:  # another export took the number meanwhile
        art.properties["version"] = w.version
        art.properties["path"] = str(w.final_path)
        art.uri = w.final_path
        (w.final_path / ARTIFACT_FILE).write_text(json.dumps(art.to_json(), indent=2) + "\n")
    return art


def _write_failure(exc: BaseException) -> str | None:
    """What went wrong when writing an export failed for a reason of the place (a full disk,
    a read-only file system, no permission): one phrase; None for anything else (a bug to
    see whole). TensorFlow reports a full disk as ``ResourceExhaustedError``, not OSError."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, tf.errors.ResourceExhaustedError):
        return "no space left on device"
    if isinstance(exc, (tf.errors.PermissionDeniedError, tf.errors.FailedPreconditionError,
                        tf.errors.UnavailableError, tf.errors.DataLossError)):
        first = str(getattr(exc, "message", exc)).strip().splitlines()
        return first[0] if first else type(exc).__name__
    return None


def _write_version(model_dir, model_uri, keras_model, metadata, layer, n_genes,
                   compiled_attention, transform, copy_transform, base_dir, name, info,
                   model_art, evaluation, metrics, calibration=None):
    """Write the next version of ``model_dir`` (staged, renamed into place when complete);
    returns the PushedModel artifact and the writer."""
    with VersionWriter(model_dir) as w:
        write_saved_model(w.path, keras_model, metadata, preprocess=layer,
                          threshold=metadata["threshold"], n_genes=n_genes,
                          compiled_attention=compiled_attention, calibration=calibration)
        src = Path(model_uri) / "transform"
        if transform is not None and not metadata["transform"]["in_graph"]:
            if src.is_dir() and copy_transform:
                shutil.copytree(src, w.path / "assets" / TRANSFORM_ASSET)
            else:
                transform.save(w.path / "assets" / TRANSFORM_ASSET)
        art = Artifact(
            type="PushedModel",
            uri=model_dir / str(w.version),
            parameters={"base_dir": str(base_dir), "name": name},
            inputs=[model_art.ref()] + ([evaluation.ref()] if evaluation else []),
            content_hash=hash_path(w.path),
            properties={"name": name, "version": w.version,
                        "path": str(model_dir / str(w.version)), "model": info.model,
                        "signature": SIGNATURE_KEY, "outputs": list(OUTPUT_NAMES),
                        "custom_ops": custom_ops_for(compiled_attention),
                        "blessed": metrics["blessed"], "forced": metrics.get("forced", False)},
            created=metadata["exported_at"],
        )
        (w.path / ARTIFACT_FILE).write_text(json.dumps(art.to_json(), indent=2) + "\n")
    return art, w
