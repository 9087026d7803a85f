"""The ``--strategy`` click option shared by the commands that train (``amu train``, ``amu run``).

It lives with the commands, not in ``amu_tf.training``, so that the library does not import
click; the names come from :data:`amu_tf.training.distribution_strategy.STRATEGY_NAMES`.
"""

import click

from amu_tf.training.distribution_strategy import STRATEGY_NAMES


def strategy_option(func=None, *, default: str = "auto"):
    """Click option ``--strategy auto|default|mirrored|multiworker`` (value: the name).

    Use as ``@strategy_option`` on a command; pass the name to
    ``ZooClassifier(strategy=...)`` or
    :func:`~amu_tf.training.distribution_strategy.get_strategy`. For ``multiworker`` call
    ``get_strategy`` at the start of the command, before other TensorFlow work.
    """
    decorator = click.option(
        "--strategy", "strategy",
        type=click.Choice(STRATEGY_NAMES), default=default, show_default=True,
        help="tf.distribute strategy: auto = MirroredStrategy when GPUs are visible, else "
        "default; mirrored = all local GPUs; multiworker = MultiWorkerMirroredStrategy "
        "from TF_CONFIG (run the same command on every worker).",
    )
    if func is None:
        return decorator
    return decorator(func)
