"""`amu train`: fit a transform and a model on labeled cohort-table rows -> a Model artifact."""

import click

from pipelines.strategy_option import strategy_option


def _parse_params(pairs):
    """``("patience=5", "optimizer=adamw")`` -> dict with ints/floats/bools/None parsed."""
    import json

    out = {}
    for p in pairs:
        key, sep, val = p.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{p!r} is not KEY=VALUE", param_hint="--param")
        try:
            out[key] = json.loads(val)
        except ValueError:
            out[key] = None if val in ("None", "none") else val
    return out


#: run_train's own arguments, with the option that sets each: a --param of that name would
#: collide with it (or, for transform_uri, pass a path nobody checked)
_OWN_OPTIONS = {"seed": "--seed", "model": "--model", "transform": "--transform",
                "train_cohorts": "--cohorts", "calibrate": "--calibrate", "table": "--table",
                "output_uri": "--out", "transform_uri": None}


@click.command("train")
@click.option("--table", required=True, type=click.Path(exists=True),
              help="CohortTable artifact folder or a cohort-table CSV.")
@click.option("--model", "model_name", default="amu:small", show_default=True,
              help="Zoo model (amu:paper|small|tiny, amu-ft:small|base, cnn:paper), a "
                   "baseline (svm, rf, adaboost, xgboost, logreg), a biomarker (cd274, "
                   "cd8a, cxcl9, cytolytic, ifng6, gep18, impres, tide) or a recipe "
                   "(recipe:consensus, recipe:stack, ...; see `amu zoo`).")
@click.option("--transform", default="cohort_z", show_default=True,
              help="Transform fitted on the training rows (paper, cohort_z, rank, "
                   "gene_set:FILE, variable_genes:N).")
@click.option("--out", "out", required=True, type=click.Path(), help="Model artifact folder.")
@click.option("--cohorts", multiple=True,
              help="Training cohorts (repeat or comma-separate); default all labeled cohorts.")
@click.option("--seed", default=0, show_default=True)
@click.option("--epochs", default=None, type=int, help="Keras models: maximum epochs.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Extra estimator parameter, e.g. --param patience=5 --param balance=class_weight.")
@click.option("--calibrate", type=click.Choice(["sigmoid", "isotonic"]), default=None,
              help="Recalibrate the model's probabilities (Platt or isotonic) on 5-fold "
                   "out-of-fold predictions of its training rows (5 more fits); the threshold "
                   "is then chosen in the recalibrated scale, and `amu predict` and `amu "
                   "export` apply both.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@strategy_option
def command(table, model_name, transform, out, cohorts, seed, epochs, params, calibrate, quiet,
            strategy):
    """Train one model on the labeled rows of a cohort table and write a Model artifact
    (model, fitted transform, frozen threshold chosen on training rows, summary)."""
    from amu_tf.training import estimator_kind
    from components.train import format_summary, run_train

    from pipelines.option_checks import check_counts, check_models, check_transform

    est_params = _parse_params(params)
    for key, option in _OWN_OPTIONS.items():
        if key in est_params:
            raise click.BadParameter(
                f"{key} is not an estimator parameter: "
                + (f"use {option}" if option else "amu train sets it itself"),
                param_hint="--param")
    check_models([model_name], option="--model")
    check_transform(transform, [model_name])
    check_counts(epochs=epochs, seed=seed)
    kind = estimator_kind(model_name)
    if epochs is not None:
        if kind != "keras":
            raise click.BadParameter("--epochs applies to Keras zoo models only",
                                     param_hint="--epochs")
        est_params["epochs"] = epochs
    if kind == "keras":
        from amu_tf.training.distribution_strategy import get_strategy

        get_strategy(strategy)  # multiworker must start before other TensorFlow work
        est_params.setdefault("verbose", 0 if quiet else 1)
        est_params.setdefault("strategy", strategy)
    train_cohorts = [c for item in cohorts for c in item.split(",") if c] or None
    if kind == "biomarker":
        click.echo(f"fitting the threshold of biomarker {model_name} (training-free: its own "
                   "genes, z-scored within cohort; --transform does not apply) ...", err=True)
    elif _has_own_input(model_name):
        click.echo(f"training {model_name} on its own input transform (seed {seed}; "
                   "--transform does not apply) ...", err=True)
    else:
        click.echo(f"training {model_name} with transform {transform} (seed {seed}) ...",
                   err=True)
    art = run_train(table, out, model=model_name, transform=transform,
                    train_cohorts=train_cohorts, seed=seed, calibrate=calibrate, **est_params)
    from amu_tf.training.cluster_config import is_chief, task_name

    if is_chief():
        click.echo(format_summary(art))
    else:  # this worker's copy was removed: the chief wrote the one artifact
        click.echo(f"{task_name()}: trained (threshold "
                   f"{art.properties.get('threshold', float('nan')):.4f}); the chief wrote the "
                   f"Model artifact to {out}")


def _has_own_input(model_name) -> bool:
    """Whether the model makes its own input from the table (a biomarker, a signature, a
    recipe such as compass-probe, a COMPASS zoo model), so the --transform option does not
    apply to it. Decided from the name, as ``estimator_kind`` does: ``run_train`` builds the
    estimator and reports a bad name or parameter in one line."""
    from amu_tf.models.zoo import parse_model_name
    from amu_tf.training import estimator_kind

    kind = estimator_kind(model_name)
    if kind in ("biomarker", "recipe"):
        return True
    try:
        return kind == "keras" and parse_model_name(model_name)[0] == "compass"
    except ValueError:  # run_train reports a bad name in one line
        return False
