"""`amu predict --model saved_models/<name> [--version N] --input SPEC|TABLE [--out CSV]`."""

import click


def _read_input(path, data_root):
    from pathlib import Path

    import pandas as pd

    from amu_tf.errors import InputDataError

    p = Path(path)
    if not p.exists():
        raise InputDataError(f"input {path} does not exist")
    if not p.is_dir() and not p.is_file():
        raise InputDataError(f"input {path} is not a regular file (a device or pipe?)")
    if p.suffix == ".toml":
        from components.ingest import ingest_cohort

        from amu_tf.data.cohort_table import UNITS_ATTR

        table, summary = ingest_cohort(str(p), data_root=data_root)
        if summary.get("units"):  # what the COMPASS models' input needs to know
            table.attrs[UNITS_ATTR] = {str(summary.get("cohort", "")): str(summary["units"])}
        return table
    if p.is_dir():
        from amu_tf.data.cohort_table import TABLE_FILE, read_table

        if not (p / TABLE_FILE).is_file():
            raise InputDataError(f"{path} is a folder without {TABLE_FILE} (not a CohortTable)")
        return read_table(p)  # every gene of the artifact (its expression.h5ad)
    if p.stat().st_size == 0:
        raise InputDataError(f"input {path} is empty")
    try:
        # low_memory=False: one dtype per column from the whole file (a text cell in a gene
        # column is then refused by the transform, without a pandas DtypeWarning first)
        table = pd.read_csv(p, dtype={"sample": str, "patient": str, "cohort": str},
                            low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            ValueError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"cannot read {p} as CSV: {first}") from None
    return normalise_gene_columns(table, f"input {p}: ")


def normalise_gene_columns(table, where=""):
    """A table given as a CSV is ingested here: its gene columns get their HGNC spelling
    (``cd274`` -> ``CD274``, ``IL8`` -> ``CXCL8``; mouse-like ``Cd274`` refused) as ingest
    gives a spec's genes (:func:`amu_tf.data.gene_ids.normalise_symbols`); what changed is
    said on stderr."""
    from amu_tf.data.cohort_table import META_COLUMNS
    from amu_tf.data.gene_ids import normalise_symbols

    meta = set(META_COLUMNS) | {"sample", "patient", "cohort", "response"}
    genes = [c for c in table.columns if c not in meta]
    if not genes:
        return table
    normal, notes = normalise_symbols([str(c) for c in genes], where=where)
    taken = set(table.columns)
    rename = {c: n for c, n in zip(genes, normal)
              if n and n != c and n not in taken}
    if rename:
        table = table.rename(columns=rename)
    if notes["renamed"]:
        click.echo("note: renamed " + ", ".join(f"{a} -> {b}" for a, b in
                                               list(notes["renamed"].items())[:6]), err=True)
    return table


#: the least share of the genes a model reads that a cohort must hold (the biomarkers' floor,
#: amu_tf.biomarkers.biomarker_score.MIN_GENE_FRACTION), for every model that reads genes
MIN_GENE_FRACTION = 0.5


def gene_coverage(table, genes, what: str) -> float:
    """The least share, over the cohorts of ``table``, of ``genes`` it holds (a column with a
    value for some sample of the cohort); :class:`InputDataError` below
    :data:`MIN_GENE_FRACTION`. TIDE, fitted on ~20,000 genes, used to score a 160-gene table
    with varied probabilities; every model that reads genes is judged the same way now."""
    import numpy as np

    from amu_tf.errors import InputDataError

    genes = list(genes)
    if not genes:
        return 1.0
    cohorts = table["cohort"].astype(str) if "cohort" in table.columns else None
    keys = sorted(cohorts.unique()) if cohorts is not None else [None]
    lowest = 1.0
    for key in keys:
        rows = table if key is None else table[cohorts == key]
        have = sum(1 for g in genes if g in rows.columns
                   and np.isfinite(np.asarray(rows[g], dtype=np.float64)).any())
        share = have / len(genes)
        lowest = min(lowest, share)
        if share < MIN_GENE_FRACTION:
            where = "the input" if key is None else f"cohort {key}"
            raise InputDataError(
                f"{what} reads {len(genes)} genes; {where} has {have} of them "
                f"({share:.0%}, need {MIN_GENE_FRACTION:.0%}): a genome-wide table is needed "
                "(a spec or a CohortTable keeps every gene of the expression file)")
    return lowest


def check_expression_varies(table, genes) -> None:
    """Refuse a cohort of several samples whose expression is the same in every sample for
    every gene the model reads (a constant file): a model would give them all one invented
    probability."""
    import warnings

    import numpy as np

    from amu_tf.errors import InputDataError

    cols = [g for g in genes if g in table.columns]
    if not cols:
        return
    cohorts = table["cohort"].astype(str) if "cohort" in table.columns else None
    for key in (sorted(cohorts.unique()) if cohorts is not None else [None]):
        rows = table if key is None else table[cohorts == key]
        if len(rows) < 2:
            continue
        x = np.asarray(rows[cols], dtype=np.float64)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a gene missing from the cohort
            spread = np.nanmax(x, axis=0) - np.nanmin(x, axis=0)
        if not np.any(spread[np.isfinite(spread)] > 0):
            where = "the input" if key is None else f"cohort {key}"
            raise InputDataError(
                f"{where}: every gene the model reads has the same value in all {len(rows)} "
                "samples (constant expression): no score can tell them apart; check the "
                "expression file")


def check_scores_vary(pred, table) -> None:
    """Refuse predictions that are one value for every sample of a cohort of three or more
    (zero variance after the transform): a constant is not a prediction."""
    import numpy as np

    from amu_tf.errors import InputDataError

    p = pred["probability"].to_numpy(np.float64)
    cohorts = (table["cohort"].astype(str).to_numpy() if "cohort" in table.columns
               else np.zeros(len(p), dtype=object))
    for key in np.unique(cohorts):
        rows = p[cohorts == key]
        if len(rows) >= 3 and np.ptp(rows) == 0:
            where = "the input" if key == 0 else f"cohort {key}"
            raise InputDataError(
                f"{where}: the model gives all {len(rows)} samples the same probability "
                f"{rows[0]:.3f}: their input does not vary after the transform (constant or "
                "degenerate expression); no prediction is written")


def _protected_paths(input_path, model_dir, data_root):
    """``(label, path)`` of everything predict reads, which ``--out`` must not overwrite: the
    input (a file or a table folder), the data files a spec input points to, the model."""
    from pathlib import Path

    out = [("the input", Path(input_path))]
    if str(input_path).endswith(".toml") and Path(input_path).is_file():
        try:
            from amu_tf.data.cohort_spec import CohortSpec

            spec = CohortSpec.from_toml(input_path, data_root=data_root)
            out += [("a data file of the input spec", f) for f in spec.data_files()]
        except Exception:  # noqa: BLE001 - a bad spec is reported when it is read
            pass
    if model_dir is not None:
        out.append(("the model", Path(model_dir)))
    return out


def _check_out(out, input_path, model_dir=None, data_root=None):
    """Refuse an unusable ``--out`` before any work: a directory, anything predict reads
    (the input, a spec's data files, the model folder, or a path inside one of these
    folders), or a place where no file can be created."""
    import os
    import tempfile
    from pathlib import Path

    from amu_tf.errors import InputDataError

    o = Path(out)
    if o.is_dir():
        raise InputDataError(f"--out {out} is a directory; give a file path, e.g. "
                             f"{o / 'predictions.csv'}")
    if o.exists() and not o.is_file():
        raise InputDataError(f"--out {out} exists and is not a regular file")
    ro = o.resolve()
    for label, p in _protected_paths(input_path, model_dir, data_root):
        if not p.exists():
            continue
        rp = p.resolve()
        if ro == rp:
            raise InputDataError(f"--out {out} is {label} ({p}): writing the predictions "
                                 "would overwrite it; choose another --out")
        if p.is_dir() and rp in ro.parents:
            raise InputDataError(f"--out {out} lies inside {label} ({p}); choose a path "
                                 "outside it")
    anc = o.absolute().parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise InputDataError(f"cannot write --out {out}: {anc} is not a directory")
    try:  # a probe file where the first missing folder (or the file) would be created
        fd, probe = tempfile.mkstemp(prefix=".amu-probe-", dir=anc)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputDataError(f"cannot write --out {out}: {exc.strerror or exc} "
                             f"({anc})") from None


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
              help="Where to write the CSV: sample, probability, predicted_class, "
                   "genes_present (the share of the model's genes the input holds).")
def command(model_dir, version, input_path, data_root, out):
    """Predict response with an exported SavedModel (loaded with tf.saved_model.load), or
    with a Model artifact of `amu train` directly (its fitted transform and estimator).

    Genes are matched by symbol or Entrez id; a missing gene is imputed. A cohort or sample
    missing more than the model's limit, or holding none of its genes, is refused: by
    default 10% of the 160 panel genes for the AMU models (and of the genes an exported
    signature or recipe reads), 20% of COMPASS's 15,672 genes for the COMPASS models; from a
    Model artifact, a signature or recipe refuses a cohort holding fewer than half its genes.
    A transform that needs a whole cohort (cohort_z) is applied here per `cohort` before the
    model. predicted_class uses the threshold stored with the model.
    """
    from amu_tf.serving import ExportedModel

    if _is_model_artifact(model_dir):
        if version is not None:
            raise click.BadParameter("--version applies to exported models, not to a Model "
                                     "artifact", param_hint="--version")
        _check_out(out, input_path, model_dir, data_root)
        from pipelines.option_checks import warn_if_stale

        warn_if_stale(model_dir)
        return _predict_with_artifact(model_dir, _read_input(input_path, data_root), out)
    _check_out(out, input_path, model_dir, data_root)
    model = ExportedModel.load(model_dir, version=version)
    df = _read_input(input_path, data_root)
    table, report = model.panel_table(df)
    check_expression_varies(table, model.symbols)
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
    bad = ~np.isfinite(pred["probability"].to_numpy())
    if bad.any():  # never a non-finite score in the output
        from amu_tf.errors import InputDataError

        raise InputDataError(
            f"the model gave no finite probability for {int(bad.sum())} sample(s) (first: "
            f"{pred['sample'].iloc[int(np.argmax(bad))]})"
        )
    check_scores_vary(pred, table)
    pred["genes_present"] = round(report["n_found"] / max(1, model.n_genes), 4)
    out = _write_predictions(pred, out)
    missing = report["missing"]
    click.echo(
        f"wrote {len(pred)} predictions to {out} (model {model.metadata.get('model_name')} "
        f"version {model.version}, threshold {model.threshold:g}; the model's genes found "
        f"{report['n_found']}/{model.n_genes}"
        + (f", missing (imputed): {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
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
    """The CSV written aside and renamed into place (never half-written). An I/O error
    (read-only place, no space, a directory in the way) is a one-line error naming the path,
    and leaves neither the temporary file nor the folders made for it."""
    import os
    from pathlib import Path

    from amu_tf.errors import InputDataError

    out = Path(out)
    if out.is_dir():
        raise InputDataError(f"--out {out} is a directory; give a file path")
    made = []
    d = out.absolute().parent
    while not d.exists() and d != d.parent:
        made.append(d)
        d = d.parent
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        pred.to_csv(tmp, index=False, float_format="%.8g")
        os.replace(tmp, out)
    except OSError as exc:
        for junk in (tmp,):
            try:
                junk.unlink()
            except OSError:
                pass
        for folder in made:  # deepest first; only the (empty) ones made here
            try:
                folder.rmdir()
            except OSError:
                pass
        raise InputDataError(
            f"cannot write predictions to {out}: {exc.strerror or type(exc).__name__}"
        ) from None
    return out


def _predict_with_artifact(model_dir, table, out):
    """Score ``table`` with a Model artifact's fitted transform and estimator."""
    import numpy as np
    import pandas as pd

    from amu_tf.data.cohort_table import META_COLUMNS, gene_columns
    from amu_tf.errors import InputDataError
    from amu_tf.serving.exported_model import check_input_table, check_scale, numeric_genes
    from amu_tf.training.model_bundle import ModelBundle

    samples = check_input_table(table)
    meta, panel = set(META_COLUMNS), set(gene_columns())
    genes = {}
    for c in table.columns:
        if c in meta:
            continue
        v = table[c]
        if (c not in panel and not pd.api.types.is_numeric_dtype(v)
                and pd.to_numeric(v, errors="coerce").isna().all()):
            continue  # a text column (a note, an id), not a gene
        genes[c] = c
    values = numeric_genes(table, genes, samples)  # a stray string in a gene cell: an error
    check_scale(values, samples)
    table = table.copy()
    for c in genes:
        if not pd.api.types.is_numeric_dtype(table[c]):  # only text-typed columns change
            table[c] = values[c].to_numpy()
    table["sample"] = samples.to_numpy()
    bundle = ModelBundle.load(model_dir)
    read = list(bundle.model_info.genes)
    present = gene_coverage(table, read, f"model {bundle.name}")
    check_expression_varies(table, read)
    try:
        p = np.asarray(bundle.predict_proba(table), dtype=np.float64)[:, 1]
    except KeyError as exc:
        raise InputDataError(f"the input lacks column(s) the model needs: {exc}") from None
    bad = ~np.isfinite(p)
    if bad.any():
        raise InputDataError(
            f"the model gave no finite probability for {int(bad.sum())} sample(s) (first: "
            f"{samples.iloc[int(np.argmax(bad))]}): missing genes the model cannot impute?"
        )
    pred = pd.DataFrame({"sample": table["sample"].astype(str).to_numpy(),
                         "probability": p.astype(np.float64),
                         "predicted_class": (p >= bundle.threshold).astype(int),
                         # the least share, over the cohorts, of the model's genes present
                         "genes_present": round(present, 4)})
    check_scores_vary(pred, table)
    out = _write_predictions(pred, out)
    click.echo(f"wrote {len(pred)} predictions to {out} (Model artifact {model_dir}: "
               f"{bundle.name} ({bundle.kind}), threshold {bundle.threshold:g}, transform "
               f"{getattr(bundle.transform, 'name', 'none')})")
