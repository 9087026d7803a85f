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
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from amu_tf import __version__
from amu_tf.artifacts import METADATA_FILE as ARTIFACT_FILE, Artifact, hash_path, safe_name
from amu_tf.errors import ArtifactError
from amu_tf.panel import panel_entrez, panel_symbols
from amu_tf.serving.exported_model import TRANSFORM_ASSET
from amu_tf.serving.saved_model_export import (INPUT_NAME, OUTPUT_NAMES, SIGNATURE_KEY,
                                               custom_ops_for, write_saved_model)
from amu_tf.serving.serving_versions import VersionWriter

MODEL_INFO_FILE = "model_info.json"
#: a served model name: one plain folder name under the base dir
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

RAW_SCALE = ("log2 panel expression as in the cohort table (counts -> log2 CPM, TPM/FPKM -> "
             "log2(x+1)), genes in the order of 'genes'")


def load_model_parts(model_uri: str | os.PathLike, bundle=None):
    """``(keras_model, transform, info, artifact)`` of a Model artifact, read through
    :class:`~amu_tf.training.model_bundle.ModelBundle` (``bundle``: one loaded already). A
    Model artifact without ``model_info.json`` gets the estimator's own frozen threshold."""
    from amu_tf.training.model_bundle import ModelBundle

    bundle = bundle or ModelBundle.load(model_uri)
    info = dict(bundle.info or {})
    if "threshold" not in info:
        info["threshold"] = bundle.threshold
        info.setdefault("threshold_method", getattr(bundle.estimator, "threshold_method_", None))
    return bundle.keras_model, bundle.transform, info, bundle.artifact


def _genes(info: dict) -> list[dict]:
    """Gene order with symbols and Entrez ids, from model_info.json or the panel."""
    g = info.get("genes")
    symbols, entrez = None, None
    if isinstance(g, dict):
        symbols = g.get("symbols") or g.get("symbol")
        entrez = g.get("entrez_ids") or g.get("entrez") or g.get("entrez_id")
    elif isinstance(g, list) and g and isinstance(g[0], dict):
        symbols = [x.get("symbol") for x in g]
        entrez = [x.get("entrez_id", x.get("entrez")) for x in g]
    elif isinstance(g, list) and g:
        symbols = g
    if not symbols:
        symbols = panel_symbols()
    if not entrez or len(entrez) != len(symbols):
        lookup = dict(zip(panel_symbols(), panel_entrez()))
        entrez = [lookup.get(s, "") for s in symbols]
    return [{"index": i, "symbol": str(s), "entrez_id": str(e)}
            for i, (s, e) in enumerate(zip(symbols, entrez))]


def _threshold(info: dict) -> tuple[float, object]:
    t = info.get("threshold", 0.5)
    how = info.get("threshold_method") or info.get("threshold_how")
    if isinstance(t, dict):
        how = t.get("method", t.get("how", how))
        t = t.get("value", t.get("threshold", 0.5))
    return float(t), how


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


def build_metadata(info: dict, transform, in_graph: bool, imputes: bool, model_name: str,
                   name: str, model_art: Artifact, n_inputs: int | None = None) -> dict:
    """The serving metadata; ``n_inputs``: the signature's input width when it is not the
    number of genes (a transform that turns the genes into fewer features before the graph)."""
    genes = _genes(info)
    n_inputs = len(genes) if n_inputs is None else int(n_inputs)
    threshold, how = _threshold(info)
    tname = getattr(transform, "name", None) or info.get("transform")
    if isinstance(tname, dict):
        tname = tname.get("name")
    if in_graph or tname in (None, "", "identity", "none"):
        scale = RAW_SCALE + (f"; the per-sample {tname!r} transform runs inside the graph"
                             if in_graph else "; no transform")
    else:
        scale = (f"cohort-standardised: the output of the fitted {tname!r} transform (needs a "
                 "whole cohort, e.g. cohort_z z-scores each gene within its cohort), NOT raw "
                 "log2 expression; `amu predict` applies it in Python from assets/transform/ "
                 "before calling the signature")
    return {
        "format": "amu-tf serving metadata v1",
        "model_name": model_name,
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
        },
        "nan_policy": ("NaN = missing gene, imputed in the graph from training statistics"
                       if imputes else
                       "NaN not accepted by the signature; `amu predict` imputes in Python"
                       if tname and not in_graph else "NaN not accepted"),
        "threshold": threshold,
        "threshold_method": how,
        "training_cohorts": info.get("training_cohorts", info.get("cohorts")),
        "n_train": info.get("n_train"),
        "metrics": info.get("metrics"),
        "model_info": info,
        "source_model": model_art.ref(),
        "amu_tf_version": __version__,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def run_export(model_uri: str | os.PathLike, base_dir: str | os.PathLike = "saved_models",
               name: str | None = None, metrics: dict | None = None,
               compiled_attention: bool = False) -> Artifact:
    """Export a Model artifact to ``<base_dir>/<name>/<next version>/``; returns the
    PushedModel artifact (``properties``: name, version, path, model).

    ``metrics``: the model's honest metrics from an evaluation (e.g. ``amu run`` passes each
    honest protocol's AUC with its 95% CI and n); they replace model_info.json's ``metrics``
    in ``assets/amu_metadata.json``. ``compiled_attention``: trace AMU attention with the
    compiled CPU op (faster, not portable: see :mod:`amu_tf.serving.saved_model_export`)."""
    from amu_tf.training.model_bundle import ModelBundle

    bundle = ModelBundle.load(model_uri)
    keras_model, transform, info, model_art = load_model_parts(model_uri, bundle)
    copy_transform = True  # a zoo model: its Model artifact's transform/ goes into assets/
    if keras_model is None:  # a biomarker, logreg or a recipe: a few multiply-adds
        from amu_tf.serving.linear_export import serving_model

        keras_model, own, _, how = serving_model(bundle)
        copy_transform = False  # the transform the graph expects is saved as it is
        transform = own
        info = dict(info, graph=how, transform=getattr(own, "name", None))
    model_name = str(info.get("model") or info.get("model_name") or keras_model.name)
    if name is None:
        name = safe_name(model_name.partition(":")[0], sep="-")
    if not NAME_PATTERN.match(name):
        raise ArtifactError(f"invalid model name {name!r}: use letters, digits, '_', '-', '.'")
    n_genes = int(keras_model.input_shape[-1])
    layer, imputes = _preprocess_layer(transform, n_genes)
    n_features = len(getattr(transform, "biomarkers", ()) or ()) or None  # signature scores
    metadata = build_metadata(info, transform, layer is not None, imputes, model_name, name,
                              model_art, n_inputs=n_features)
    if metrics is not None:
        metadata["metrics"] = metrics
    if metadata["n_inputs"] != n_genes:
        raise ArtifactError(f"model_info.json describes {metadata['n_inputs']} inputs but the "
                            f"model takes {n_genes}")
    model_dir = Path(base_dir) / name
    with VersionWriter(model_dir) as w:
        write_saved_model(w.path, keras_model, metadata, preprocess=layer,
                          threshold=metadata["threshold"], n_genes=n_genes,
                          compiled_attention=compiled_attention)
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
            inputs=[model_art.ref()],
            content_hash=hash_path(w.path),
            properties={"name": name, "version": w.version,
                        "path": str(model_dir / str(w.version)), "model": model_name,
                        "signature": SIGNATURE_KEY, "outputs": list(OUTPUT_NAMES),
                        "custom_ops": custom_ops_for(compiled_attention)},
            created=metadata["exported_at"],
        )
        (w.path / ARTIFACT_FILE).write_text(json.dumps(art.to_json(), indent=2) + "\n")
    if w.version != art.properties["version"]:  # another export took the number meanwhile
        art.properties["version"] = w.version
        art.properties["path"] = str(w.final_path)
        art.uri = w.final_path
        (w.final_path / ARTIFACT_FILE).write_text(json.dumps(art.to_json(), indent=2) + "\n")
    return art
