"""Checks of the commands' options before any work starts: one line each, exit status 2."""

from __future__ import annotations

from amu_tf.errors import SpecError


def check_models(models, interpret_models=None, option="--models") -> None:
    """Every name must be an estimator ``make_estimator`` knows (fails before the first fit);
    ``option`` names the command's option in the message."""
    from amu_tf.training import make_estimator

    if not models:
        raise SpecError(f"{option}: no model given")
    for m in models:
        try:
            make_estimator(m)
        except ValueError as exc:
            raise SpecError(f"{option}: {exc}") from None
    bad = [m for m in interpret_models or [] if m not in models]
    if bad:
        raise SpecError(f"--interpret-models: {bad[0]!r} is not among the run's models "
                        f"({', '.join(models)})")


def check_protocols(protocols) -> None:
    from amu_tf.evaluation.protocols import PROTOCOLS

    if not protocols:
        raise SpecError("--protocols: no protocol given")
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad:
        raise SpecError(f"--protocols: unknown protocol {bad[0]!r}; choose from "
                        f"{', '.join(PROTOCOLS)}")


#: the largest seed: NumPy and scikit-learn take seeds below 2**32, and a few steps add small
#: offsets to the seed they are given
MAX_SEED = 2**31 - 1


def check_counts(config: bool = False, **values) -> None:
    """``folds`` >= 2, ``repeats``/``epochs``/``patience``/``n_explain``/``n_background``/
    ``n_jobs``/``n_per_cohort`` >= 1, ``n_boot``/``n_perm``/``seed`` >= 0 (None: the default
    applies), ``seed`` <= :data:`MAX_SEED`. A negative or too large seed is refused here:
    NumPy's and scikit-learn's generators raise deep inside the first fit. ``config``: the
    values may come from a run configuration file (the message says so)."""
    minimum = {"folds": 2, "repeats": 1, "epochs": 1, "patience": 1, "n_boot": 0,
               "n_explain": 1, "n_background": 1, "n_perm": 0, "n_jobs": 1, "n_per_cohort": 1,
               "seed": 0, "top_k": 1}
    for name, value in values.items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        source = f" (the option, or `{name} =` in the --config file)" if config else ""
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum[name]:
            raise SpecError(f"{flag} must be an integer >= {minimum[name]}, got {value!r}"
                            f"{source}")
        if name == "seed" and value > MAX_SEED:  # scikit-learn's generators take < 2**32
            raise SpecError(f"{flag} must be an integer from 0 to {MAX_SEED}, got {value!r}"
                            f"{source}")


def check_transform(transform, models, allow_gene_choice=True) -> None:
    """``gene_set:FILE`` / ``variable_genes:N`` give the baselines other genes than the
    panel; the zoo models (and ``amu run``'s transform step) read the 160-gene panel."""
    from amu_tf.data.transforms import GENE_CHOOSING
    from amu_tf.training import estimator_kind

    if not isinstance(transform, str) or transform.partition(":")[0] not in GENE_CHOOSING:
        return
    if not allow_gene_choice:
        raise SpecError(f"--transform {transform}: amu run's models read the 160-gene panel; "
                        "evaluate the baselines on other genes with `amu evaluate --models "
                        f"logreg,svm,rf,xgboost --transform {transform}`")
    zoo = [m for m in models if estimator_kind(m) == "keras"]
    if zoo:
        raise SpecError(f"--transform {transform}: the zoo model {zoo[0]} reads the 160-gene "
                        "panel; gene_set/variable_genes apply to the baselines (logreg, svm, "
                        "rf, xgboost, adaboost)")


def warn_if_stale(uri) -> list:
    """Print a ``warning:`` line for every input of the artifact at ``uri`` that changed since
    it was made (:meth:`Artifact.stale_inputs`); returns those lines. Not an artifact (a CSV
    table, a SavedModel): nothing to check."""
    import click

    from amu_tf.artifacts import METADATA_FILE, Artifact
    from amu_tf.errors import ArtifactError

    from pathlib import Path

    if not (Path(uri) / METADATA_FILE).is_file():
        return []
    try:
        lines = Artifact.load(uri).stale_inputs()
    except ArtifactError:
        return []
    for line in lines:
        click.echo(f"warning: {line}", err=True)
    return lines
