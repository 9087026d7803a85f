"""`amu predict --model saved_models/<name> [--version N] --input SPEC|TABLE [--out CSV]`."""

import click


def _read_input(path, data_root):
    from pathlib import Path

    import pandas as pd

    from amu_tf.errors import InputDataError

    p = Path(path)
    if not p.exists():
        raise InputDataError(f"input {path} does not exist")
    if p.suffix == ".toml":
        from components.ingest import ingest_cohort

        table, _ = ingest_cohort(str(p), data_root=data_root)
        return table
    if p.is_dir():
        from amu_tf.data.cohort_table import TABLE_FILE, read_table

        if not (p / TABLE_FILE).is_file():
            raise InputDataError(f"{path} is a folder without {TABLE_FILE} (not a CohortTable)")
        return read_table(p)  # every gene of the artifact (its expression.h5ad)
    try:
        return pd.read_csv(p, dtype={"sample": str, "patient": str, "cohort": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputDataError(f"cannot read {p} as CSV: {str(exc).splitlines()[0]}") from None


@click.command("predict")
@click.option("--model", "model_dir", required=True, type=click.Path(),
              help="An exported model folder (saved_models/<name>), one version folder, or a "
                   "Model artifact folder of `amu train` (any model: rf, xgboost, the "
                   "biomarkers...).")
@click.option("--version", type=int, default=None, help="Version to use (default: highest).")
@click.option("--input", "input_path", required=True, type=click.Path(),
              help="A cohort spec (.toml), a cohort table CSV (gene columns by symbol or "
                   "Entrez id) or a CohortTable artifact folder.")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Resolve a spec's relative file paths against this folder.")
@click.option("--out", default="predictions.csv", show_default=True, type=click.Path(),
              help="Where to write the CSV: sample, probability, predicted_class.")
def command(model_dir, version, input_path, data_root, out):
    """Predict response with an exported SavedModel (loaded with tf.saved_model.load), or
    with a Model artifact of `amu train` directly (its fitted transform and estimator).

    Genes are matched by symbol or Entrez id; a missing panel gene is imputed (more than 10%
    missing, or no panel gene at all, is refused). A transform that needs a whole cohort
    (cohort_z) is applied here per `cohort` before the model. predicted_class uses the
    threshold stored with the model.
    """
    import os
    from pathlib import Path

    from amu_tf.serving import ExportedModel

    if _is_model_artifact(model_dir):
        if version is not None:
            raise click.BadParameter("--version applies to exported models, not to a Model "
                                     "artifact", param_hint="--version")
        return _predict_with_artifact(model_dir, _read_input(input_path, data_root), out)
    model = ExportedModel.load(model_dir, version=version)
    df = _read_input(input_path, data_root)
    table, report = model.panel_table(df)
    x = model.check_input(model.model_input(table))  # all input errors before any output
    import numpy as np
    import pandas as pd

    probs, classes = [], []
    batch = 256
    with click.progressbar(range(0, len(x), batch), label="predicting",
                           file=click.get_text_stream("stderr")) as starts:
        for i in starts:
            o = model.predict_array(x[i:i + batch])
            probs.append(o["probability"])
            classes.append(o["predicted_class"])
    pred = pd.DataFrame({
        "sample": table["sample"].to_numpy(),
        "probability": np.concatenate(probs).astype(np.float64) if probs else [],
        "predicted_class": np.concatenate(classes).astype(int) if classes else [],
    })
    out = _write_predictions(pred, out)
    missing = report["missing"]
    click.echo(
        f"wrote {len(pred)} predictions to {out} (model {model.metadata.get('model_name')} "
        f"version {model.version}, threshold {model.threshold:g}; panel genes found "
        f"{report['n_found']}/{model.n_genes}"
        + (f", imputed: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
           if missing else "") + ")"
    )


def _is_model_artifact(path) -> bool:
    import json
    from pathlib import Path

    meta = Path(path) / "artifact.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("type") == "Model"
    except (OSError, ValueError):
        return False


def _write_predictions(pred, out):
    """The CSV written aside and renamed into place (never half-written)."""
    import os
    from pathlib import Path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    pred.to_csv(tmp, index=False, float_format="%.8g")
    os.replace(tmp, out)
    return out


def _predict_with_artifact(model_dir, table, out):
    """Score ``table`` with a Model artifact's fitted transform and estimator."""
    import numpy as np
    import pandas as pd

    from amu_tf.errors import InputDataError
    from amu_tf.training.model_bundle import ModelBundle

    if "sample" not in table.columns:
        raise InputDataError("the input has no 'sample' column")
    bundle = ModelBundle.load(model_dir)
    p = np.asarray(bundle.predict_proba(table))[:, 1]
    pred = pd.DataFrame({"sample": table["sample"].astype(str).to_numpy(),
                         "probability": p.astype(np.float64),
                         "predicted_class": (p >= bundle.threshold).astype(int)})
    out = _write_predictions(pred, out)
    click.echo(f"wrote {len(pred)} predictions to {out} (Model artifact {model_dir}: "
               f"{bundle.name} ({bundle.kind}), threshold {bundle.threshold:g}, transform "
               f"{getattr(bundle.transform, 'name', 'none')})")
