"""Checks of the commands' options before any work starts: one line each, exit status 2."""

from __future__ import annotations

from amu_tf.errors import SpecError


def check_models(models, interpret_models=None) -> None:
    """Every name must be an estimator ``make_estimator`` knows (fails before the first fit)."""
    from amu_tf.training import make_estimator

    if not models:
        raise SpecError("--models: no model given")
    for m in models:
        try:
            make_estimator(m)
        except ValueError as exc:
            raise SpecError(f"--models: {exc}") from None
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


def check_counts(**values) -> None:
    """``folds`` >= 2, ``repeats``/``epochs``/``patience`` >= 1, ``n_boot`` >= 0 (None: the
    default applies)."""
    minimum = {"folds": 2, "repeats": 1, "epochs": 1, "patience": 1, "n_boot": 0}
    for name, value in values.items():
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum[name]:
            flag = "--" + name.replace("_", "-")
            raise SpecError(f"{flag} must be an integer >= {minimum[name]}, got {value!r}")
