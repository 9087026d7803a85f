"""`amu report RUN_DIR`: render the run's report.md and report.html again from its artifacts (evaluation,
audit, interpretation) into RUN_DIR/report/; prints its path."""

import click


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--audit", "audit_uri", default=None, type=click.Path(file_okay=False),
              help="The AuditReport to show [RUN_DIR/audit, the one the evaluation recorded].")
@click.option("--force", is_flag=True,
              help="Show an --audit that is not of the evaluated table (the report says so).")
def command(run_dir, audit_uri, force):
    """Render RUN_DIR/report/report.md from the run folder's evaluate, audit and interpret
    artifacts (as `amu run`'s report step does)."""
    from components.report import HTML_REPORT_FILE, REPORT_FILE, run_report
    from pipelines.option_checks import warn_if_stale
    from pipelines.run_folder import RunFolder

    run = RunFolder(run_dir)
    evaluation = run.require("evaluate")
    warn_if_stale(evaluation)
    art = run_report(evaluation, run.path / "report", audit_uri=audit_uri or run.step("audit"),
                     interpretation_uri=run.step("interpret"), force=force)
    click.echo(art.path / REPORT_FILE)
    click.echo(art.path / HTML_REPORT_FILE)
