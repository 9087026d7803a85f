"""`amu evaluate`: run the evaluation protocols for several models on a cohort table, or run
the paper's LEAKY protocol beside the honest cv on the paper authors' own table."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.defaults import (DEFAULT_MODELS, EPOCHS, PAPER_TABLE_MODELS, PATIENCE,
                               keras_params, split_list)


@click.command("evaluate")
@click.argument("table", required=False, type=click.Path())
@click.option("--paper-table", type=click.Path(exists=True, dir_okay=False),
              help="The paper's own table (four.csv or logfourupsample.csv): runs the LEAKY "
                   "'paper' protocol beside the honest 'cv' on it.")
@click.option("--out", "out", default=None, type=click.Path(),
              help="ModelEvaluation artifact folder [runs/evaluate or runs/paper_table/evaluate].")
@click.option("--models", default=None,
              help=f"Comma-separated estimators [{DEFAULT_MODELS}; paper table: {PAPER_TABLE_MODELS}].")
@click.option("--protocols", default=None,
              help="Comma-separated: cv, loco, external, paper [cv,loco; paper table: cv,paper].")
@click.option("--transform", default=None,
              help="Transform fitted per split [cohort_z; paper table: reference_z]; also rank, "
                   "paper, and for the baselines gene_set:FILE, variable_genes:N "
                   "(genome-wide genes).")
@click.option("--train-cohorts", default=None, help="external: comma-separated training cohorts.")
@click.option("--test-cohorts", default=None, help="external: cohorts to score [the others].")
@click.option("--folds", default=5, show_default=True, help="cv folds.")
@click.option("--repeats", default=1, show_default=True, help="cv repeats (paper: random splits).")
@click.option("--n-boot", default=1000, show_default=True, help="Bootstrap resamples for the CIs.")
@click.option("--epochs", default=EPOCHS, show_default=True, help="Max epochs of zoo models.")
@click.option("--patience", default=PATIENCE, show_default=True,
              help="Early-stopping patience.")
@click.option("--seed", default=0, show_default=True)
def command(table, paper_table, out, models, protocols, transform, train_cohorts, test_cohorts,
            folds, repeats, n_boot, epochs, patience, seed):
    """Evaluate models on TABLE (a CohortTable artifact or cohort-table CSV) under honest
    protocols, with 95% bootstrap CIs, figures, tables and report.md."""
    from amu_tf.errors import InputDataError
    from components.evaluate import format_results, load_paper_table, run_evaluate

    if bool(table) == bool(paper_table):
        raise InputDataError("give a TABLE or --paper-table (one of them)")
    note, dup = None, True
    if paper_table:
        data, note = load_paper_table(paper_table)
        dup = data["patient"].nunique() == len(data)  # already upsampled: split as it is
        models = split_list(models or PAPER_TABLE_MODELS)
        protocols = split_list(protocols or "cv,paper")
        transform = transform or "reference_z"
        out = out or "runs/paper_table/evaluate"
    else:
        from pipelines.option_checks import warn_if_stale

        warn_if_stale(table)
        data = table
        models = split_list(models or DEFAULT_MODELS)
        protocols = split_list(protocols or "cv,loco")
        transform = transform or "cohort_z"
        out = out or "runs/evaluate"
    from pipelines.option_checks import (check_counts, check_models, check_protocols,
                                         check_transform)

    check_models(models)
    check_protocols(protocols)
    check_transform(transform, models)
    check_counts(folds=folds, repeats=repeats, n_boot=n_boot, epochs=epochs, patience=patience)
    from components.audit import run_audit

    _, audit_result = run_audit(paper_table or table, None)  # reported, never silently
    audit = {"has_leak": audit_result.has_leak, "allowed": True,
             "summary": "\n".join(audit_result.lines())}
    if audit_result.has_leak:
        click.echo(f"warning: the leakage audit finds {len(audit_result.leaks)} leak(s) in "
                   "this table; see the report's audit section", err=True)
    art, results, blessing = run_evaluate(
        data, out, models, protocols, transform=transform, seed=seed, n_splits=folds,
        n_repeats=repeats, paper_repeats=repeats, n_boot=n_boot,
        estimator_params=keras_params(models, epochs, patience),
        train_cohorts=split_list(train_cohorts) if train_cohorts else None,
        test_cohorts=split_list(test_cohorts) if test_cohorts else None,
        data_note=note, paper_duplicate=dup, audit=audit)
    click.echo(format_results(results, blessing))
    click.echo(f"report: {Path(art.uri) / 'report.md'}")
