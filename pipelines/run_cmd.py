"""`amu run`: the main job on the embedded default.

Foundation stage: the full pipeline (ingest -> audit -> transform -> train -> evaluate)
is not wired yet, so this trains the default model briefly on generated data and says so.
"""

import click


@click.command("run")
@click.option("--model", "model_name", default="amu:small", show_default=True)
@click.option("--epochs", default=3, show_default=True)
@click.option("--seed", default=0, show_default=True)
def command(model_name, epochs, seed):
    """Run the main job on the embedded default data."""
    import keras
    import numpy as np

    from amu_tf.models.zoo import build_model

    click.echo("NOTE: the pipeline is not wired yet; training on generated random data only.")
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 160)).astype("float32")
    y = (x[:, :5].sum(1) > 0).astype("int32")
    model = build_model(model_name)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=2)
    click.echo(f"trained {model_name} for {epochs} epochs on 64 generated samples")
