"""Audit component: a cohort table (or spec, or the paper's table) -> an ``AuditReport``
artifact (``report.json`` + ``report.md``) and the :class:`AuditResult`.

    art, result = run_audit("runs/x/cohort", "runs/x/audit")
    if result.has_leak: ...                      # `amu run` stops unless --allow-leaks

Accepted inputs (:func:`load_audit_input`): a DataFrame; a CohortTable artifact folder; a
cohort-table CSV; the paper's own table (160 gene columns + ``response``, e.g.
``four.csv``); one or more cohort spec TOML files (ingested with ``components.ingest``, paths
resolved against ``data_root``). The checks are in :mod:`amu_tf.evaluation.audit`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from amu_tf.artifacts import Artifact, ArtifactWriter, check_output_not_input
from amu_tf.errors import InputDataError
from amu_tf.evaluation.audit import PAPER_TABLE, AuditResult, LeakageAudit, detect_format

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def _read_csv(path: Path) -> pd.DataFrame:
    from amu_tf.data.cohort_table import read_table

    sep = "\t" if path.name.endswith((".tsv", ".tsv.gz", ".txt")) else ","
    try:
        head = pd.read_csv(path, sep=sep, nrows=0)
    except pd.errors.EmptyDataError:
        raise InputDataError(f"{path} is empty") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputDataError(f"cannot read {path}: {exc}") from None
    try:
        if detect_format(head) == PAPER_TABLE or sep == "\t":
            df = pd.read_csv(path, sep=sep)
        else:
            df = read_table(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise InputDataError(f"cannot read {path}: {exc}") from None
    if df.empty:
        raise InputDataError(f"{path} has no rows")
    return df


def load_audit_input(source, data_root=None) -> tuple[pd.DataFrame, list, str]:
    """``(table, input_artifacts, description)`` for what ``amu audit`` accepts."""
    if isinstance(source, pd.DataFrame):
        return source, [], "table"
    if isinstance(source, (list, tuple)):
        if len(source) == 1:
            return load_audit_input(source[0], data_root)
        specs = [Path(s) for s in source]
        if not all(s.suffix == ".toml" for s in specs):
            raise InputDataError("several inputs must all be cohort spec (.toml) files")
        frames, arts = [], []
        for s in specs:
            df, a, _ = load_audit_input(s, data_root)
            frames.append(df)
            arts += a
        return pd.concat(frames, ignore_index=True), arts, " + ".join(s.name for s in specs)
    path = Path(source)
    if not path.exists():
        raise InputDataError(f"{path} does not exist")
    if path.is_dir():
        from amu_tf.data.cohort_table import read_table

        art = Artifact.load(path, expected_type="CohortTable")
        return read_table(path), [art], str(path)
    if path.suffix == ".toml":
        from components.ingest import ingest_cohort  # lazy: ingest is only needed for specs

        df, _ = ingest_cohort(path, data_root=data_root)
        return df, [Artifact.for_file(path, type="CohortSpec")], path.name
    return _read_csv(path), [Artifact.for_file(path, type="CohortTable")], path.name


def run_audit(table_uri_or_df, output_uri: str | os.PathLike | None = None, data_root=None,
              source: str | None = None, **params) -> tuple[Artifact | None, AuditResult]:
    """Audit the input; write an AuditReport artifact at ``output_uri`` (skipped when None).
    Returns ``(artifact_or_None, result)``; ``result.has_leak`` says whether it leaks."""
    if output_uri is not None:
        check_output_not_input(output_uri, table_uri_or_df if isinstance(table_uri_or_df, list)
                               else [table_uri_or_df])
    df, inputs, desc = load_audit_input(table_uri_or_df, data_root)
    audit = LeakageAudit(**params)
    result = audit.audit_table(df, source=source or desc)
    if output_uri is None:
        return None, result
    with ArtifactWriter(output_uri, "AuditReport", inputs=inputs,
                        parameters=audit.get_params()) as w:
        (w.path / REPORT_JSON).write_text(json.dumps(dict(result.to_json(), lines=result.lines()),
                                                     indent=2, default=float) + "\n")
        (w.path / REPORT_MD).write_text(result.to_markdown())
        w.properties = {"has_leak": result.has_leak, "n_leaks": len(result.leaks),
                        "n_warnings": len(result.warnings), "verdict": result.verdict(),
                        "table_format": result.table_format, "n_samples": result.n_samples}
    return w.artifact, result


def load_audit_report(uri) -> dict:
    """The ``report.json`` of an AuditReport artifact."""
    art = Artifact.load(uri, expected_type="AuditReport")
    from amu_tf.data.text_files import read_json
    from amu_tf.errors import ArtifactError

    return read_json(art.path / REPORT_JSON, "audit report", error=ArtifactError)


def check_audit_of(audit: Artifact, table: Artifact | None, force: bool = False) -> str | None:
    """The audit must be of ``table`` (it records the table's content hash, or the very
    specs the table was ingested from): another table's clean audit must not make a leaky
    table's report say "clean". Returns None when it is; else raises :class:`ArtifactError`,
    or with ``force`` returns the reason, which the caller records (``forced_past``) and the
    report shows beside the verdict. A table given only in memory cannot be checked."""
    from amu_tf.artifacts import vouches_for
    from amu_tf.errors import ArtifactError

    if table is None or vouches_for(audit, table):
        return None
    why = (f"the AuditReport {audit.uri} is not an audit of the table {table.uri} (it records "
           "another table's content hash)")
    if not force:
        raise ArtifactError(f"{why}; audit this table (`amu audit TABLE --out DIR`), or pass "
                            "--force to go on (the report then says so)")
    return why


def audit_summary(uri) -> dict:
    """What a report shows of an AuditReport artifact: verdict, the findings' lines, where
    it is."""
    report = load_audit_report(uri)
    lines = report.get("lines") or [report.get("verdict", "")]
    return {"has_leak": bool(report.get("has_leak")), "summary": "\n".join(lines),
            "uri": str(uri)}
