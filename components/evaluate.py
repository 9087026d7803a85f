"""Evaluate: a CohortTable (+ optional AuditReport and Model artifacts) -> one
ModelEvaluation artifact.

    art, results, blessing = run_evaluate("runs/x/cohort", "runs/x/evaluate",
                                          models=["amu:small", "logreg"], protocols=["cv", "loco"])

Each protocol refits the transform and every model inside every split
(``amu_tf.evaluation.protocols``); the Model artifacts of the train step (the final models,
fitted on all labeled rows) are recorded as inputs and their thresholds listed, but they are
not scored on rows they were trained on.

Artifact layout:

* ``report.md`` and ``report.html`` (the same, one self-contained page): data, audit,
  protocols, results with CIs, figures, blessing (rendered from
  the files below by :mod:`amu_tf.evaluation.report`; a run's report, with the
  interpretation, is the ``report`` component's);
* ``metrics.csv``, ``metrics_per_cohort.csv`` (loco/external), ``table_<protocol>[_<cohort>].{csv,md}``
  (the paper's Tables 2-4 shape);
* ``figures/roc_pr_<protocol>.png``;
* ``clinical/``: per honest protocol, the random-effects meta-analysis over cohorts
  (``meta_*.csv``, ``forest/``), calibration (``calibration_*.csv``, reliability diagram) and
  decision curves (:mod:`amu_tf.evaluation.clinical_outputs`);
* ``predictions.csv.gz``; ``blessing.json``; ``biomarker_comparison.csv``;
  ``recommendation.json`` (leave-one-cohort-out with ``recipe:consensus`` among the models:
  the model recommended for a new cohort, :mod:`amu_tf.evaluation.recommendation`);
  ``evaluation.json`` (parameters, protocols with folds and notes, the audit's verdict, and
  what the report renders).

Every output of the ``paper`` protocol is labelled ``paper (LEAKY)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from amu_tf.artifacts import Artifact, ArtifactWriter, check_output_not_input, to_jsonable
from amu_tf.data.cohort_table import load_cohort_table
from amu_tf.errors import InputDataError
from amu_tf.evaluation.blessing import bless
from amu_tf.evaluation.clinical_outputs import write_clinical_outputs
from amu_tf.evaluation.html_report import HTML_REPORT_FILE, write_html_report
from amu_tf.evaluation.figures import plot_curves
from amu_tf.evaluation.protocols import PROTOCOLS, run_protocol
from amu_tf.evaluation.report import (BLESSING_JSON, COMPARISON_CSV, EVALUATION_JSON,
                                      REPORT_FILE, data_summary, write_report)
from amu_tf.evaluation.biomarker_comparison import compare_with_biomarkers
from amu_tf.evaluation.recommendation import RECOMMENDATION_JSON, recommend
from amu_tf.evaluation.tables import write_tables


def run_evaluate(table, output_uri, models=("amu:small", "logreg"), protocols=("cv", "loco"), *,
                 transform="cohort_z", seed: int = 0, n_splits: int = 5, n_repeats: int = 1,
                 paper_repeats: int = 1, n_boot: int = 1000, estimator_params=None,
                 train_cohorts=None, test_cohorts=None, audit_uri=None,
                 input_artifacts=(), data_note: str | None = None, progress: bool = True,
                 paper_duplicate: bool = True, force: bool = False, dropped_models=None,
                 drop_unscorable: bool = False):
    """Run every protocol for every model and write a ModelEvaluation artifact.

    ``audit_uri``: the AuditReport artifact of the table (recorded as an input; its verdict
    goes into the report); ``input_artifacts`` (e.g. the Model artifacts) are recorded as
    inputs too. The audit must be of this table (content hash, :func:`components.audit.
    check_audit_of`), unless ``force``: the evaluation then records why (``forced_past``)
    and its report shows it beside the verdict. ``drop_unscorable``: the published
    signatures (``sig:``) a cohort cannot score leave the evaluation, listed with the reason
    in ``dropped_models`` (what ``sig:*`` does; ``dropped_models`` may also name models the
    caller left out before). Returns ``(artifact, [ProtocolResult], blessing)``.
    """
    check_output_not_input(output_uri, [table, audit_uri, *input_artifacts])
    df, table_art = load_cohort_table(table)
    audit_art = audit = None  # checked before any fit
    if audit_uri is not None:
        from components.audit import audit_summary

        from components.audit import check_audit_of

        audit_art = Artifact.load(audit_uri, expected_type="AuditReport")
        audit = audit_summary(audit_uri)
        forced = check_audit_of(audit_art, table_art, force)
        if forced:
            audit["forced_past"] = forced
    dropped_models = dict(dropped_models or {})
    if drop_unscorable:
        from amu_tf.biomarkers.signature_library import unscorable_signatures

        dropped_models.update(unscorable_signatures(df, models))
        models = [m for m in models if m not in dropped_models]
        if not models:
            raise InputDataError("no model left to evaluate: no signature asked for can be "
                                 "scored on these cohorts (" + "; ".join(
                                     f"{m}: {why}" for m, why in
                                     list(dropped_models.items())[:2]) + ")")
    protocols = list(protocols)
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        raise InputDataError(f"unknown protocol {bad[0] if bad else '(none)'!r}; choose from "
                             f"{', '.join(PROTOCOLS)}")
    results = []
    for proto in protocols:
        results.append(run_protocol(
            df, proto, models, transform=transform, seed=seed, n_splits=n_splits,
            n_repeats=paper_repeats if proto == "paper" else n_repeats,
            train_cohorts=train_cohorts, test_cohorts=test_cohorts, n_boot=n_boot,
            estimator_params=estimator_params, progress=progress,
            paper_duplicate=paper_duplicate))
    all_metrics = pd.concat([r.metrics for r in results], ignore_index=True)
    blessing = bless(all_metrics)
    transform_name = transform if isinstance(transform, str) or transform is None \
        else getattr(transform, "name", type(transform).__name__)
    model_names = list(results[0].models)
    parameters = {"models": model_names, "protocols": protocols, "transform": str(transform_name),
                  "seed": seed, "n_splits": n_splits, "n_repeats": n_repeats,
                  "paper_repeats": paper_repeats, "n_boot": n_boot,
                  "train_cohorts": train_cohorts, "test_cohorts": test_cohorts,
                  "estimator_params": estimator_params or {},
                  "dropped_models": dropped_models,
                  "calibrate": next((p.get("calibrate") for p in
                                     (estimator_params or {}).values() if p.get("calibrate")),
                                    None)}
    inputs = ([table_art] if table_art is not None else []) + \
        ([audit_art] if audit_art is not None else []) + list(input_artifacts)
    with ArtifactWriter(output_uri, "ModelEvaluation", inputs=inputs,
                        parameters=parameters) as w:
        out = Path(w.path)
        files = write_tables(results, out)
        figs = {r.protocol: plot_curves(r, out / "figures" / f"roc_pr_{r.protocol}.png")
                for r in results}
        pd.concat([r.predictions for r in results], ignore_index=True).to_csv(
            out / "predictions.csv.gz", index=False, float_format="%.6g")
        (out / BLESSING_JSON).write_text(json.dumps(to_jsonable(blessing), indent=2) + "\n")
        comparison = pd.concat([compare_with_biomarkers(r, n_boot=n_boot, seed=seed)
                                for r in results], ignore_index=True)
        if not comparison.empty:
            comparison.to_csv(out / COMPARISON_CSV, index=False, float_format="%.6g")
        # the model that measurably transfers best (leave-one-cohort-out against consensus)
        recommendation = next((rec for rec in (recommend(r, n_boot=n_boot, seed=seed)
                                               for r in results) if rec), None)
        if recommendation is not None:
            (out / RECOMMENDATION_JSON).write_text(
                json.dumps(to_jsonable(recommendation), indent=2) + "\n")
        # meta-analysis, calibration and decision curves of every honest protocol
        clinical = write_clinical_outputs(results, out, seed=seed, n_boot=n_boot)
        (out / EVALUATION_JSON).write_text(json.dumps(to_jsonable({
            "parameters": parameters,
            "protocols": {r.label: {"protocol": r.protocol, "description": r.description,
                                    "leaky": r.leaky, "notes": r.notes, "folds": r.folds}
                          for r in results},
            "audit": audit,
            # what the report renders beside the files above (amu_tf.evaluation.report)
            "report": {"data_summary": data_summary(df), "data_note": data_note,
                       "tables": [[t, Path(md).relative_to(out).as_posix()]
                                  for t, md, _ in files["tables"]],
                       "figures": {p: Path(f).relative_to(out).as_posix()
                                   for p, f in figs.items() if f},
                       "clinical": clinical},
        }), indent=2, default=str) + "\n")
        # the evaluation's own report (the run's, with the interpretation, is the report
        # component's); links are relative, and the folder is renamed into place whole
        write_report(out / REPORT_FILE, out, audit=audit)
        write_html_report(out / REPORT_FILE, out / HTML_REPORT_FILE)  # figures embedded
        w.properties.update(
            blessed=[m for m, b in blessing.items() if b["blessed"]],
            roc_auc={r.label: {row["model"]: round(float(row["roc_auc"]), 4)
                               for _, row in r.metrics.iterrows()} for r in results},
            leaky_protocols=[r.label for r in results if r.leaky],
            forced_past=[audit["forced_past"]] if audit and audit.get("forced_past") else [],
            biomarker_verdicts=comparison["verdict"].tolist() if not comparison.empty else [],
            recommended=recommendation["recommended"] if recommendation else None,
        )
    return w.artifact, results, blessing


def load_paper_table(path) -> tuple[pd.DataFrame, str]:
    """The paper authors' training table (``four.csv``: constituent ratios; or
    ``logfourupsample.csv``: -ln(ratio), zeros left at 0, responders duplicated) as a cohort
    table, plus a note for the report.

    Values are mapped back to ratios (-ln undone; a 0 in the log file is a zero ratio) and
    then, per sample and with nothing fitted, to ``log2(1e6 x ratio + 1)`` (a log2
    "per-million of the panel" scale), so the usual transforms apply. Rows are samples of
    one cohort ``paper_table``; exact duplicate rows share a patient id, so the honest
    ``cv`` keeps copies together while the LEAKY ``paper`` protocol does not.
    """
    import numpy as np

    from amu_tf.data.cohort_table import META_COLUMNS, gene_columns

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"paper table {path} does not exist")
    try:
        raw = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputDataError(f"cannot read {path}: {exc}") from None
    genes = gene_columns()
    missing = [g for g in genes if g not in raw.columns]
    if missing or "response" not in raw.columns:
        raise InputDataError(f"{path} is not the paper's table: it needs the 160 panel gene "
                             f"columns and 'response' (missing: {(missing + ['response'])[:3]})")
    x = raw[genes].to_numpy(dtype=float)
    if not np.isfinite(x).all():
        raise InputDataError(f"{path} holds NaN/inf values")
    from amu_tf.evaluation.audit import paper_table_scale, to_linear

    is_log = paper_table_scale(x) == "-ln ratio"
    ratio = to_linear(x, paper_table_scale(x))
    values = np.log2(1e6 * ratio + 1)
    key = pd.Series([r.tobytes() for r in np.round(x, 12)]).factorize()[0]
    n_dup = int(len(key) - len(np.unique(key)))
    df = pd.DataFrame(values, columns=genes)
    meta = {c: "" for c in META_COLUMNS}
    meta.update(sample=[f"row{i:04d}" for i in range(len(df))],
                patient=[f"rowgroup{k:04d}" for k in key], cohort="paper_table",
                response=raw["response"].astype(float).to_numpy(), timepoint="", treatment="")
    for c in ("os_time", "os_event", "pfs_time", "pfs_event"):
        meta[c] = np.nan
    table = pd.concat([pd.DataFrame(meta, index=df.index)[META_COLUMNS], df], axis=1)
    note = (f"The paper authors' own training table `{path.name}` ({len(df)} rows, "
            f"{int((table['response'] == 1).sum())} responder rows"
            + (f", {n_dup} of them exact duplicates: the authors upsampled before any split"
               if n_dup else "") + "). Values: "
            + ("-ln(ratio) undone, " if is_log else "")
            + "constituent ratios mapped per sample to log2(1e6 x ratio + 1); nothing fitted. "
            "Beware: this table carries the label in its row sums (see the audit).")
    return table, note


def format_results(results, blessing=None) -> str:
    """A few lines per protocol: model, AUC [CI], F1 weighted [CI], blessed."""
    from amu_tf.evaluation.metrics import format_ci

    lines = []
    for r in results:
        lines.append(f"{r.label}: {r.description}")
        for _, row in r.metrics.iterrows():
            auc = format_ci({k: row[f"roc_auc{s}"] for k, s in
                             (("value", ""), ("ci_low", "_ci_low"), ("ci_high", "_ci_high"))})
            f1 = format_ci({k: row[f"f1_weighted{s}"] for k, s in
                            (("value", ""), ("ci_low", "_ci_low"), ("ci_high", "_ci_high"))})
            line = f"  {row['model']:<14} AUC {auc}  F1w {f1}"
            if blessing and not r.leaky:
                line += "  blessed" if blessing[row["model"]]["blessed"] else "  not blessed"
            lines.append(line)
    return "\n".join(lines)
