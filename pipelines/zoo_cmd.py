"""`amu zoo`: list the zoo's models and presets with their parameter counts."""

import click


@click.command("zoo")
def command():
    """List every model and preset with its trainable-parameter count.

    `params (paper)` counts as the AMU paper does (BatchNorm excluded); `params (keras)` is
    Keras's own count of trainable weights.
    """
    from amu_tf.models.zoo import list_models

    rows = list_models()
    click.echo(f"{'model':<14} {'params (paper)':>14} {'params (keras)':>14}  description")
    for r in rows:
        click.echo(
            f"{r['model']:<14} {r['params_paper']:>14,} {r['params_keras']:>14,}  {r['description']}"
        )
