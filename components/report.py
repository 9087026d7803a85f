"""Report: a ModelEvaluation (+ its AuditReport and an Interpretation) -> a Report artifact
holding the run's ``report.md``.

    art = run_report("runs/x/evaluate", "runs/x/report", interpretation_uri="runs/x/interpret")

The report is rendered from the artifacts' files only (:mod:`amu_tf.evaluation.report`), so
``amu report RUN_DIR`` renders the same report from a finished run folder. Figures stay in
the artifacts that made them; the report links to them by relative path.
"""

from __future__ import annotations

import os
from pathlib import Path

from amu_tf.artifacts import METADATA_FILE, Artifact, ArtifactWriter
from amu_tf.evaluation.html_report import HTML_REPORT_FILE, write_html_report
from amu_tf.evaluation.report import REPORT_FILE, write_report


def recorded_audit(evaluation: Artifact) -> Path | None:
    """The AuditReport the evaluation recorded among its inputs: beside the evaluation in its
    run folder, else at its recorded path, and only with the recorded content hash (a run
    folder copied or moved keeps reading its own audit). None when it recorded none."""
    from amu_tf.errors import ArtifactError

    for ref in evaluation.inputs:
        if ref.get("type") != "AuditReport":
            continue
        recorded = Path(ref.get("uri", ""))
        for candidate in (evaluation.path.parent / recorded.name, recorded):
            if (candidate / METADATA_FILE).is_file():
                found = Artifact.load(candidate)
                if found.content_hash == ref.get("content_hash"):
                    return candidate
        raise ArtifactError(f"the evaluation {evaluation.uri} records the AuditReport "
                            f"{recorded}, which is not there any more (or has changed); "
                            "give the audit with --audit")
    return None


def evaluated_table(evaluation: Artifact) -> Artifact | None:
    """The table an evaluation evaluated, as it recorded it (its CohortTable input), for the
    check that an audit shown beside it is of that table."""
    for ref in evaluation.inputs:
        if isinstance(ref, dict) and ref.get("type") == "CohortTable":
            return Artifact(type="CohortTable", uri=Path(str(ref.get("uri", ""))),
                            content_hash=ref.get("content_hash", ""))
    return None


def run_report(evaluation_uri, output_uri, *, audit_uri=None,
               interpretation_uri=None, force: bool = False) -> Artifact:
    """Render the report of ``evaluation_uri`` (audit: ``audit_uri``, else the one the
    evaluation recorded; interpretation: ``interpretation_uri``, optional) into a Report
    artifact at ``output_uri``."""
    from components.audit import audit_summary

    evaluation = Artifact.load(evaluation_uri, expected_type="ModelEvaluation")
    inputs = [evaluation]
    given = audit_uri is not None
    audit_uri = audit_uri or recorded_audit(evaluation)
    audit = None
    if audit_uri is not None:
        from components.audit import check_audit_of

        audit_art = Artifact.load(audit_uri, expected_type="AuditReport")
        inputs.append(audit_art)
        audit = audit_summary(audit_uri)
        # an audit given here must be of the evaluated table; the one the evaluation
        # recorded was checked then (and a --force then is in its properties)
        forced = (check_audit_of(audit_art, evaluated_table(evaluation), force) if given
                  else next(iter(evaluation.properties.get("forced_past") or []), None))
        if forced:
            audit["forced_past"] = forced
    sections = []
    final = Path(os.path.abspath(output_uri))
    if interpretation_uri is not None:
        from components.interpret import report_section

        inputs.append(Artifact.load(interpretation_uri, expected_type="Interpretation"))
        sections.append(report_section(interpretation_uri, relative_to=final))
    with ArtifactWriter(output_uri, "Report", inputs=inputs) as w:
        write_report(w.path / REPORT_FILE, evaluation.path, audit=audit,
                     extra_sections=sections, link_base=(final, evaluation.path))
        # the same content as one self-contained page (figures embedded); links in the
        # Markdown are relative to the report's final folder
        write_html_report(w.path / REPORT_FILE, w.path / HTML_REPORT_FILE, base_dir=final)
        w.properties = {"report": str(Path(output_uri) / REPORT_FILE),
                        "report_html": str(Path(output_uri) / HTML_REPORT_FILE),
                        "blessed": evaluation.properties.get("blessed", []),
                        "interpretation": interpretation_uri is not None}
    return w.artifact
