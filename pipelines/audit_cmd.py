"""`amu audit TABLE_OR_SPEC... [--data-root DIR] [--out DIR]`: look for label leakage."""

import click


@click.command("audit")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Resolve cohort specs' relative file paths against this folder.")
@click.option("--out", "out", type=click.Path(), default=None,
              help="Write an AuditReport artifact (report.json + report.md) here.")
@click.option("--leak-auc", default=0.95, show_default=True,
              type=click.FloatRange(0.5, 1.0, min_open=True),
              help="A per-sample statistic with max(AUC, 1-AUC) at or above this is a leak.")
@click.option("--warning-auc", default=0.8, show_default=True,
              type=click.FloatRange(0.5, 1.0, min_open=True),
              help="... and at or above this a warning.")
def command(inputs, data_root, out, leak_auc, warning_auc):
    """Audit a cohort table (CSV or CohortTable artifact), cohort spec(s) (TOML) or the
    paper's own table (160 genes + `response`) for leakage.

    Checks: per-sample statistics (row sum, library size, zero and missing counts) that
    separate the labels; exact and near-duplicate rows; duplicated sample ids and patients
    with several samples; cohort confounded with label. Prints each finding with its
    evidence; exit status 1 when a leak is found, 0 when clean.
    """
    from amu_tf.errors import LeakageError, SpecError
    from components.audit import run_audit

    if warning_auc > leak_auc:
        raise SpecError(f"--warning-auc {warning_auc:g} is above --leak-auc {leak_auc:g}")

    art, result = run_audit(list(inputs), out, data_root=data_root, leak_auc=leak_auc,
                            warning_auc=warning_auc)
    for line in result.lines():
        click.echo(line)
    if art is not None:
        click.echo(f"wrote {art.uri}")
    if result.has_leak:
        raise LeakageError(f"leakage audit found {len(result.leaks)} leak(s) in "
                           f"{result.source}: {', '.join(f.name for f in result.leaks)}")
