"""`amu export --model RUN/train [--name NAME] [--base-dir saved_models]
[--compiled-attention]`: a TF Serving SavedModel version; prints its path."""

import click


@click.command("export")
@click.option("--model", "model_uri", required=True, type=click.Path(file_okay=False),
              help="A Model artifact folder written by `amu train` (e.g. runs/x/train).")
@click.option("--name", default=None,
              help="Served model name: the folder under --base-dir and the <name> in "
                   "/v1/models/<name>:predict (default: the model family, e.g. 'amu').")
@click.option("--base-dir", default="saved_models", show_default=True,
              type=click.Path(file_okay=False),
              help="TF Serving model base folder; versions go to BASE_DIR/NAME/<N>.")
@click.option("--compiled-attention", is_flag=True, default=False,
              help="AMU models: run attention with amu-tf's compiled CPU op in the graph "
                   "(about 1.9x the CPU throughput, same outputs to 1e-5). NOT portable: the "
                   "SavedModel then loads only with amu-tf (`amu predict`) or a TF Serving "
                   "binary built with the op. Default: standard TensorFlow ops only.")
def command(model_uri, name, base_dir, compiled_attention):
    """Export a trained model as a TensorFlow SavedModel for TF Serving: a zoo model, a
    gene-signature biomarker, IMPRES, logreg, recipe:consensus or recipe:stack-direction.

    Writes BASE_DIR/NAME/<N>/ with N one more than the highest existing version (an existing
    version is never overwritten; a failed export leaves nothing visible). The
    `serving_default` signature takes `expression` float32 [batch, n_inputs] (160 panel
    genes for the zoo models; see assets/amu_metadata.json) and returns
    `probability`, `logits` and `predicted_class`; assets/amu_metadata.json records gene
    order, input scale, transform, threshold, training cohorts and metrics. Prints the path.
    """
    from components.export import run_export
    from pipelines.option_checks import warn_if_stale

    warn_if_stale(model_uri)
    with click.progressbar(length=1, label="exporting SavedModel", file=click.get_text_stream("stderr")) as bar:
        art = run_export(model_uri, base_dir=base_dir, name=name,
                         compiled_attention=compiled_attention)
        bar.update(1)
    click.echo(art.properties["path"])
