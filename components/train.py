"""Train: a CohortTable (artifact, CSV or DataFrame) -> a Model artifact.

    art = run_train("runs/x/cohort", "runs/x/model", model="amu:small", transform="cohort_z",
                    train_cohorts=["GSE91061"], seed=0, epochs=50)
    bundle = ModelBundle.load(art.uri)

Only labeled rows of the chosen cohorts are used. The transform is fitted on exactly those
rows, then the estimator (``amu_tf.training.make_estimator``) on the transformed rows, with
patients as groups so no patient straddles an inner split; the
estimator chooses and freezes its decision threshold from training rows only (inner
validation split or out-of-fold inner CV). Layout of the artifact: see
``amu_tf.training.model_bundle``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf import __version__
from amu_tf.artifacts import Artifact, ArtifactWriter, check_output_not_input, to_jsonable
from amu_tf.data.cohort_table import load_cohort_table
from amu_tf.data.text_files import read_json, read_text
from amu_tf.errors import ArtifactError, InputDataError, SpecError
from amu_tf.panel import panel_entrez, panel_symbols
from amu_tf.training.model_bundle import JOBLIB_FILE, TRAINING_SUMMARY_FILE, TRANSFORM_DIR
from amu_tf.training.model_info import ModelInfo
from amu_tf.training.threshold import THRESHOLD_METHODS, threshold_record

INPUT_SCALE = ("cohort-table panel genes on a common log2 scale (counts -> log2 CPM, "
               "TPM/FPKM -> log2(x+1)), genes in the order of 'genes', then the fitted "
               "transform")


def select_training_rows(table: pd.DataFrame, train_cohorts=None) -> pd.DataFrame:
    """Labeled rows of ``train_cohorts`` (all cohorts if None), with clear errors."""
    if "response" not in table.columns or "cohort" not in table.columns:
        raise InputDataError("the table has no 'cohort'/'response' columns; is it a cohort table?")
    cohorts = sorted(table["cohort"].astype(str).unique())
    if train_cohorts:
        train_cohorts = [str(c) for c in train_cohorts]
        unknown = [c for c in train_cohorts if c not in cohorts]
        if unknown:
            raise InputDataError(
                f"training cohort(s) {unknown} not in the table; it has {cohorts}"
            )
        table = table[table["cohort"].astype(str).isin(train_cohorts)]
    else:
        train_cohorts = cohorts
    labeled_mask = table["response"].notna()
    for c in train_cohorts:
        if not labeled_mask[table["cohort"].astype(str) == c].any():
            raise InputDataError(
                f"cohort {c!r} has no labeled samples (response is empty for all of them); "
                "leave it out of the training cohorts"
            )
    return table[labeled_mask].reset_index(drop=True)


def _keras_backend(kind):
    """The Keras backend a zoo model was trained under (None for the other kinds)."""
    if kind != "keras":
        return None
    import keras

    return keras.backend.backend()


def _unlabeled_rows(df, cohorts, tf_):
    """The expression of the rows of ``cohorts`` that carry no label (on-treatment
    samples, patients without RECIST), through the fitted input transform ``tf_``; None when
    there are none. Only self-supervised pre-training reads them."""
    rows = df[df["cohort"].astype(str).isin(cohorts) & df["response"].isna()]
    if rows.empty:
        return None
    return np.asarray(tf_.transform(rows.reset_index(drop=True)), dtype=np.float32)


def run_train(
    table,
    output_uri,
    model: str = "amu:small",
    transform: str = "cohort_z",
    train_cohorts=None,
    seed: int = 0,
    transform_uri=None,
    calibrate: str | None = None,
    **estimator_params,
) -> Artifact:
    """Fit ``transform`` then estimator ``model`` on the labeled rows of ``train_cohorts``
    and write a Model artifact at ``output_uri``. ``estimator_params`` go to
    ``make_estimator`` (e.g. ``epochs``, ``verbose``, ``inner_cv``).

    ``transform_uri``: a TransformGraph artifact fitted on exactly these training rows (the
    transform step of `amu run`); its fitted transform is used instead of fitting
    ``transform`` again, and it is recorded among the Model's inputs. A biomarker reads its
    own genes and ignores it.

    ``calibrate`` (``"sigmoid"`` or ``"isotonic"``): after the fit, recalibrate the model's
    probabilities on 5-fold out-of-fold predictions of these training rows
    (:mod:`amu_tf.training.probability_calibration`; patient-grouped folds); the map is
    stored as ``probability_calibration.json``, the threshold becomes Youden's J in the
    recalibrated scale, and ``amu predict`` and ``amu export`` apply both."""
    from amu_tf.data.transforms import get_transform
    from amu_tf.training import CALIBRATIONS, estimator_kind, make_estimator
    from amu_tf.training.fit_estimator import fit_estimator, wants_unlabeled

    t_start = time.perf_counter()
    check_output_not_input(output_uri, [table, transform_uri])
    df, table_art = load_cohort_table(table)
    train = select_training_rows(df, train_cohorts)
    cohorts_used = sorted(train["cohort"].astype(str).unique())
    y = train["response"].to_numpy().astype(int)

    estimator_params = dict(estimator_params)
    calibrate = estimator_params.pop("calibrate", None) or calibrate
    try:  # bad names and parameters fail before any work
        if calibrate is not None and calibrate not in CALIBRATIONS:
            raise ValueError(f"calibrate {calibrate!r}: choose {' or '.join(CALIBRATIONS)}")
        estimator = make_estimator(model, seed=seed, **estimator_params)
        if hasattr(estimator, "check_params"):  # types and ranges of training parameters
            estimator.check_params()
    except (ValueError, TypeError) as exc:
        import re

        bad = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
        if isinstance(exc, TypeError) and bad:  # not the class's internals: the option
            raise SpecError(f"model {model!r} has no parameter {bad.group(1)!r} (--param "
                            f"{bad.group(1)}=...); `amu zoo` and docs/models.md list what "
                            "each model takes") from None
        raise SpecError(f"model {model!r}: {exc}") from None
    t0 = time.perf_counter()
    own_input = getattr(estimator, "make_input_transform", None)  # a biomarker's own genes
    graph = None
    if own_input is not None:
        tf_ = own_input().fit(train)
    elif transform_uri is not None:
        graph, tf_ = load_transform_graph(transform_uri, train, transform, table_art)
    else:
        tf_ = get_transform(transform).fit(train)
    X = np.asarray(tf_.transform(train), dtype=np.float32)
    transform_seconds = time.perf_counter() - t0

    groups = None  # one patient's samples stay on one side of every inner split
    if "patient" in train.columns:
        groups = train["patient"].where(train["patient"].notna(), train["sample"])
        groups = groups.astype(str).to_numpy()
    unlabeled = None
    if wants_unlabeled(estimator):  # self-supervised pre-training: no labels read
        unlabeled = _unlabeled_rows(df, cohorts_used, tf_)
    t0 = time.perf_counter()
    fit_estimator(estimator, X, y, groups=groups,
                  cohorts=train["cohort"].astype(str).to_numpy(), unlabeled=unlabeled)
    fit_seconds = time.perf_counter() - t0
    kind = estimator_kind(estimator)
    calibration, calibration_seconds = None, 0.0
    if calibrate is not None:
        from amu_tf.training.probability_calibration import fit_probability_calibration

        t0 = time.perf_counter()
        quiet = {**estimator_params, "verbose": 0} if "verbose" in estimator_params else \
            estimator_params
        calibration = fit_probability_calibration(
            make_estimator(model, seed=seed, **quiet), X, y, method=calibrate, groups=groups,
            cohorts=train["cohort"].astype(str).to_numpy(), seed=seed)
        calibration_seconds = time.perf_counter() - t0

    params = {k: v for k, v in estimator.get_params(deep=False).items()
              if isinstance(v, (str, int, float, bool, type(None), list, dict, tuple))}
    genes = _genes_read(tf_)
    threshold, threshold_method = float(estimator.threshold_), estimator.threshold_method_
    placement = threshold_record(estimator)
    if calibration is not None:  # the threshold lives in the recalibrated scale
        threshold, threshold_method = calibration.threshold, "youden_oof_calibrated"
        placement = {**placement, "method": threshold_method, "margin": None,
                     "uncalibrated_threshold": float(estimator.threshold_),
                     "uncalibrated_method": estimator.threshold_method_}
    info = ModelInfo(
        model=model, kind=kind, threshold=threshold,
        threshold_method=threshold_method,
        threshold_method_description=THRESHOLD_METHODS.get(threshold_method, ""),
        threshold_placement=placement,
        genes=genes["symbols"], entrez_ids=genes["entrez_ids"],
        input_scale=getattr(tf_, "input_scale", INPUT_SCALE),  # COMPASS: its own genes
        transform=getattr(tf_, "name", transform),
        transform_per_sample=bool(getattr(tf_, "per_sample", False)),
        training_cohorts=cohorts_used, n_train=int(len(y)), n_responders=int(y.sum()),
        seed=int(seed), amu_tf_version=__version__, library_versions=_library_versions(kind),
        keras_backend=_keras_backend(kind),  # a .keras file loads under any backend
        params=params,
        n_pretraining_unlabeled=int(len(unlabeled)) if unlabeled is not None else 0,
        calibration=({"method": calibration.method, "description": calibration.describe()}
                     if calibration is not None else {}),
    )
    summary = {
        "model": model,
        "kind": kind,
        "timings_seconds": {"transform_fit": round(transform_seconds, 3),
                            "estimator_fit": round(fit_seconds, 3),
                            **({"calibration_fit": round(calibration_seconds, 3)}
                               if calibration is not None else {})},
        "host": {"python": platform.python_version(), "machine": platform.machine()},
    }
    if kind == "keras":
        summary.update(
            history=estimator.history_,
            best_epoch=int(estimator.best_epoch_),
            epochs_run=int(estimator.epochs_run_),
            n_inner_train_rows=int(len(estimator.inner_train_indices_)),  # with copies
            n_inner_val_rows=int(len(estimator.inner_val_indices_)),
        )
        if str(model).startswith("amu"):  # which attention path trained it (same masks)
            from amu_tf.kernels import tiny_attention as attention_kernel

            summary["attention"] = (attention_kernel.status() if info.keras_backend ==
                                    "tensorflow" else f"{info.keras_backend} backend: "
                                    "Keras-ops attention (the compiled kernel is TensorFlow's)")
    elif kind == "biomarker":
        summary.update(biomarker=getattr(estimator, "biomarker", None)
                       or getattr(estimator, "signature", None),  # a library signature's name
                       missing_genes=getattr(tf_, "missing_genes_", None),
                       note="training-free: only the decision threshold was fitted")
    elif kind == "recipe":
        inner = estimator.estimator_
        summary.update(recipe=estimator.recipe, inner_estimator=type(inner).__name__,
                       best_params=getattr(inner, "best_params_", None),
                       missing_genes=getattr(tf_, "missing_genes_", None))
    else:
        summary.update(
            best_params=estimator.best_params_,
            inner_cv_auc_of_best=round(estimator.best_score_, 4),
            inner_cv_note="mean inner-CV ROC AUC of the selected candidate; optimistic "
                          "(it is also the selection criterion), not a test metric",
            n_candidates=int(estimator.n_candidates_),
            inner_cv=int(estimator.inner_cv),
        )

    parameters = {"model": model, "transform": transform, "train_cohorts": cohorts_used,
                  "seed": seed, "estimator_params": estimator_params, "calibrate": calibrate}
    inputs = ([table_art] if table_art is not None else []) + ([graph] if graph else [])
    from amu_tf.training.chief_output import written_by_chief

    # Under MultiWorkerMirroredStrategy every worker runs this; only the chief's copy stays.
    with written_by_chief(output_uri) as target, \
            ArtifactWriter(target, "Model", inputs=inputs, parameters=parameters) as w:
        if kind == "keras":
            estimator.save(w.path)
        else:
            import joblib

            joblib.dump(estimator, w.path / JOBLIB_FILE)
        tf_.save(w.path / TRANSFORM_DIR)
        if calibration is not None:
            calibration.write(w.path)
        summary["timings_seconds"]["total"] = round(time.perf_counter() - t_start, 3)
        info.write(w.path)
        (w.path / TRAINING_SUMMARY_FILE).write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
        w.properties.update(
            model=model, kind=kind, threshold=info.threshold,
            threshold_method=info.threshold_method, n_train=info.n_train,
            calibrated=calibrate,
            n_responders=info.n_responders, training_cohorts=cohorts_used,
        )
    return w.artifact


def load_transform_graph(uri, train: pd.DataFrame, name: str, table: Artifact | None = None):
    """``(artifact, fitted transform)`` of a TransformGraph, checked to be transform ``name``
    fitted on exactly the rows of ``train`` (same sample ids, same order) of ``table`` (its
    recorded input hash: the same ids in a rewritten table are other data)."""
    from amu_tf.artifacts import vouches_for

    from amu_tf.data.transforms import get_transform, load_transform
    from components.transform import FIT_SAMPLES_FILE

    art = Artifact.load(uri, expected_type="TransformGraph")
    fitted = art.properties.get("transform")
    if fitted != get_transform(name).name:
        raise InputDataError(f"the TransformGraph {uri} holds {fitted!r}, not the {name!r} "
                             "transform asked for")
    if table is not None and not vouches_for(art, table):
        raise InputDataError(f"the TransformGraph {uri} was fitted on another table than "
                             f"{table.uri} (it records another content hash); fit it on this "
                             "table or leave it out")
    fit_ids = read_text(art.path / FIT_SAMPLES_FILE, "fitted sample list",
                        error=ArtifactError).splitlines()
    if fit_ids != train["sample"].astype(str).tolist():
        raise InputDataError(f"the TransformGraph {uri} was fitted on other rows than the "
                             f"{len(train)} training rows; fit it on them (amu run does) or "
                             "leave it out")
    return art, load_transform(art.path)


def _genes_read(tf_) -> dict:
    """The genes the model reads: a biomarker's own, else the panel."""
    genes = getattr(tf_, "genes_", None)
    if genes is None:
        return {"symbols": panel_symbols(), "entrez_ids": panel_entrez()}
    from amu_tf.data.gene_ids import entrez_ids

    return {"symbols": list(genes), "entrez_ids": entrez_ids(genes)}


def _library_versions(kind: str) -> dict:
    """Versions needed to read the model back (joblib files are version-sensitive)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["numpy", "scikit-learn"] + (["keras", "tensorflow"] if kind == "keras"
                                          else ["joblib", "xgboost"])
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    return out


def format_summary(art: Artifact) -> str:
    """A one-screen summary of a Model artifact."""
    uri = Path(art.uri)
    info = ModelInfo.read(uri)
    summ = read_json(uri / TRAINING_SUMMARY_FILE, "training summary", error=ArtifactError)
    lines = [
        f"Model artifact: {uri}",
        f"  model:      {info.model} ({info.kind}), seed {info.seed}",
        f"  transform:  {info.transform}"
        + (" (per sample)" if info.transform_per_sample else " (fitted on training rows)"),
        f"  trained on: {info.n_train} labeled samples ({info.n_responders} responders) "
        f"of {', '.join(info.training_cohorts)}",
        f"  threshold:  {info.threshold:.4f} ({info.threshold_method}: "
        f"{info.threshold_method_description})",
    ]
    if info.kind == "recipe":
        lines.append(f"  recipe:     {summ.get('recipe')} ({summ.get('inner_estimator')}"
                     + (f", best {summ['best_params']}" if summ.get("best_params") else "")
                     + f"); {info.n_genes} input genes")
    elif info.kind == "biomarker":
        lines.append(f"  biomarker:  training-free; {info.n_genes} genes read"
                     + (f", missing {summ['missing_genes']}" if summ.get("missing_genes") else ""))
    elif info.kind == "keras":
        h = summ.get("history", {})
        vl = h.get("val_loss")
        best = summ.get("best_epoch")
        line = f"  training:   {summ.get('epochs_run')} epochs, best epoch {best}"
        if vl and best:
            line += f" (val loss {vl[best - 1]:.4f})"
        line += (f"; {summ.get('n_inner_train_rows')} inner-train rows (after upsampling), "
                 f"{summ.get('n_inner_val_rows')} inner-validation rows")
        lines.append(line)
    else:
        lines.append(f"  search:     {summ.get('n_candidates')} candidates, "
                     f"{summ.get('inner_cv')}-fold inner CV; best {summ.get('best_params')}")
        lines.append(f"              inner-CV AUC of the chosen candidate "
                     f"{summ.get('inner_cv_auc_of_best')} (optimistic: it chose it)")
    t = summ.get("timings_seconds", {})
    lines.append(f"  time:       {t.get('total', 0):.1f} s (estimator fit "
                 f"{t.get('estimator_fit', 0):.1f} s)")
    return "\n".join(lines)
