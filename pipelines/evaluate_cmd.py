"""`amu evaluate`: run the evaluation protocols for several models on a cohort table, or run
the paper's LEAKY protocol beside the honest cv on the paper authors' own table. Its
defaults are `amu run`'s (:class:`~pipelines.run_config.RunConfig`)."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.defaults import (DEFAULT_MODELS, PAPER_TABLE_MODELS, calibrated, expand_models,
                                keras_params, split_list, use_signatures_dir)
from pipelines.run_config import RunConfig
from amu_tf.biomarkers.signature_library import GROUPS as SIGNATURE_GROUPS

_D = RunConfig()


@click.command("evaluate")
@click.argument("table", required=False, type=click.Path())
@click.option("--paper-table", type=click.Path(exists=True, dir_okay=False),
              help="The paper's own table (four.csv or logfourupsample.csv): runs the LEAKY "
                   "'paper' protocol beside the honest 'cv' on it.")
@click.option("--out", "out", default=None, type=click.Path(),
              help="ModelEvaluation artifact folder [runs/evaluate or runs/paper_table/evaluate].")
@click.option("--models", default=None,
              help=f"Comma-separated estimators [{DEFAULT_MODELS}; paper table: "
                   f"{PAPER_TABLE_MODELS}]; 'sig:*' adds every published signature of the "
                   "library, sig:ssgsea / sig:gsva / sig:weighted_mean / sig:specific those "
                   "of one scoring method.")
@click.option("--calibrate", type=click.Choice(["sigmoid", "isotonic"]), default=None,
              help="Recalibrate every model's probabilities (Platt or isotonic) on out-of-fold "
                   "predictions of each split's training rows, then score them.")
@click.option("--signatures", "signatures_dir", default=None,
              type=click.Path(exists=True, file_okay=False),
              help="The published-signature folder (bhklab SignatureSets format) the sig: "
                   "models read [$AMU_TF_SIGNATURES, else ../shared/data/signatures].")
@click.option("--protocols", default=None,
              help="Comma-separated: cv, loco, external, paper [cv,loco; paper table: cv,paper].")
@click.option("--transform", default=None,
              help="Transform fitted per split [cohort_z; paper table: reference_z]; also rank, "
                   "paper, and for the baselines gene_set:FILE, variable_genes:N "
                   "(genome-wide genes).")
@click.option("--train-cohorts", default=None, help="external: comma-separated training cohorts.")
@click.option("--test-cohorts", default=None, help="external: cohorts to score [the others].")
@click.option("--folds", default=_D.folds, show_default=True, help="cv folds.")
@click.option("--repeats", default=_D.repeats, show_default=True,
              help="cv repeats (paper: random splits).")
@click.option("--n-boot", default=_D.n_boot, show_default=True,
              help="Bootstrap resamples for the CIs.")
@click.option("--epochs", default=_D.epochs, show_default=True, help="Max epochs of zoo models.")
@click.option("--patience", default=_D.patience, show_default=True,
              help="Early-stopping patience.")
@click.option("--audit", "audit_uri", default=None, type=click.Path(file_okay=False),
              help="The table's AuditReport artifact (`amu audit`) [audited now, written to "
                   "OUT_audit].")
@click.option("--seed", default=_D.seed, show_default=True)
@click.option("--force", is_flag=True,
              help="Go on with an --audit that is not of TABLE (the report says so).")
def command(table, paper_table, out, models, calibrate, signatures_dir, protocols, transform,
            train_cohorts, test_cohorts, folds, repeats, n_boot, epochs, patience, audit_uri,
            seed, force):
    """Evaluate models on TABLE (a CohortTable artifact or cohort-table CSV) under honest
    protocols, with 95% bootstrap CIs, figures, tables and report.md. The leakage audit's
    verdict is in the report: an AuditReport given with --audit, or one written beside the
    evaluation (OUT_audit)."""
    from amu_tf.errors import InputDataError
    from components.evaluate import format_results, load_paper_table, run_evaluate

    if bool(table) == bool(paper_table):
        raise InputDataError("give a TABLE or --paper-table (one of them)")
    use_signatures_dir(signatures_dir)
    note, dup, from_group = None, True, False
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
        asked = split_list(models or DEFAULT_MODELS)
        # a signature group (sig:*) leaves out, with the reason, the signatures a cohort
        # cannot score; a signature named alone is refused instead
        from_group = any(m == "sig:*" or m in SIGNATURE_GROUPS for m in asked)
        models = expand_models(asked)
        protocols = split_list(protocols or "cv,loco")
        transform = transform or "cohort_z"
        out = out or "runs/evaluate"
    from pipelines.option_checks import (check_counts, check_models, check_protocols,
                                         check_transform)

    check_models(models)
    check_protocols(protocols)
    check_transform(transform, models)
    check_counts(folds=folds, repeats=repeats, n_boot=n_boot, epochs=epochs, patience=patience,
                 seed=seed)
    own_audit = None
    if audit_uri is None:  # audited now, as an artifact of its own beside the evaluation
        import shutil

        from amu_tf.artifacts import check_output_not_input
        from components.audit import run_audit

        check_output_not_input(out, [paper_table or table])
        audit_uri = Path(out).resolve().with_name(Path(out).resolve().name + "_audit")
        if not audit_uri.exists():
            own_audit = audit_uri  # removed again when the evaluation fails
        _, audit_result = run_audit(paper_table or table, audit_uri)
        if audit_result.has_leak:
            click.echo(f"warning: the leakage audit finds {len(audit_result.leaks)} leak(s) "
                       f"in this table ({audit_uri}); see the report's audit section", err=True)
    try:
        art, results, blessing = run_evaluate(
            data, out, models, protocols, transform=transform, seed=seed, n_splits=folds,
            n_repeats=repeats, paper_repeats=repeats, n_boot=n_boot,
            estimator_params=calibrated(keras_params(models, epochs, patience), models,
                                        calibrate),
            train_cohorts=split_list(train_cohorts) if train_cohorts else None,
            test_cohorts=split_list(test_cohorts) if test_cohorts else None,
            data_note=note, paper_duplicate=dup, audit_uri=audit_uri, force=force,
            drop_unscorable=from_group)
    except BaseException:  # no OUT_audit/ without the evaluation it was written for
        if own_audit is not None:
            shutil.rmtree(own_audit, ignore_errors=True)
        raise
    dropped = art.parameters.get("dropped_models") or {}
    if dropped:  # said on the terminal too, not only in the report
        click.echo(f"{len(dropped)} model(s) left out (they cannot be scored on these cohorts):")
        for name, why in dropped.items():
            click.echo(f"  {name}: {why}")
    click.echo(format_results(results, blessing))
    click.echo(f"report: {Path(art.uri) / 'report.md'}")
