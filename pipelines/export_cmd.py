"""`amu export RUN_DIR [--force]` or `amu export --model MODEL_DIR [--evaluation EVAL_DIR]
[--name NAME] [--base-dir saved_models] [--compiled-attention]`: TF Serving SavedModel
versions; prints their paths."""

from pathlib import Path

import click


def _run_evaluation_of(model_uri):
    """The evaluation of the run a Model artifact sits in (``RUN/train/<model>`` ->
    ``RUN/evaluate``), or None."""
    from amu_tf.artifacts import METADATA_FILE

    evaluation = Path(model_uri).resolve().parent.parent / "evaluate"
    return evaluation if (evaluation / METADATA_FILE).is_file() else None


@click.command("export")
@click.argument("run_dir", required=False, type=click.Path(file_okay=False))
@click.option("--model", "model_uri", default=None, type=click.Path(file_okay=False),
              help="A Model artifact folder written by `amu train` or a run's train step "
                   "(e.g. runs/x/train/amu_small) [with RUN_DIR: what the run exports].")
@click.option("--evaluation", "evaluation_uri", default=None, type=click.Path(file_okay=False),
              help="The ModelEvaluation that evaluated the model [with --model inside a run "
                   "folder: that run's evaluate step].")
@click.option("--force", is_flag=True,
              help="Export a model its evaluation did not bless (the metadata says so).")
@click.option("--name", default=None,
              help="Served model name: the folder under --base-dir and the <name> in "
                   "/v1/models/<name>:predict [a run's name; else the model family, e.g. "
                   "'amu'].")
@click.option("--base-dir", default=None, type=click.Path(file_okay=False),
              help="TF Serving model base folder; versions go to BASE_DIR/NAME/<N> [the run's "
                   "--export-dir, else saved_models].")
@click.option("--compiled-attention", is_flag=True, default=False,
              help="AMU models: run attention with amu-tf's compiled CPU op in the graph "
                   "(about 1.9x the CPU throughput, same outputs to 1e-5). NOT portable: the "
                   "SavedModel then loads only with amu-tf (`amu predict`) or a TF Serving "
                   "binary built with the op. Default: standard TensorFlow ops only.")
def command(run_dir, model_uri, evaluation_uri, force, name, base_dir, compiled_attention):
    """Export trained models as TensorFlow SavedModels for TF Serving.

    With RUN_DIR (an `amu run` folder) it exports what `amu run` exports, with the run's
    honest metrics and blessing in the metadata. With --model it exports one Model artifact:
    a zoo model, a gene-signature biomarker, IMPRES, logreg, recipe:consensus,
    recipe:stack-direction, recipe:compass-probe or recipe:compass-published. A model its
    evaluation did not bless is refused unless --force.

    Writes BASE_DIR/NAME/<N>/ with N one more than the highest existing version (an existing
    version is never overwritten; a failed export leaves nothing visible). The
    `serving_default` signature takes `expression` float32 [batch, n_inputs] (in the order of
    assets/amu_metadata.json: the 160 panel genes for the AMU zoo models, COMPASS's 15,672
    genes min-max scaled per cohort for amu:compass, a signature's or recipe's own inputs
    otherwise, e.g. the COMPASS recipes' concept features, whose encoder runs in Python before
    the graph: `amu predict` serves those from raw expression, TF Serving alone cannot) and
    returns
    `probability`, `logits` and `predicted_class`; assets/amu_metadata.json records gene
    order, input scale, transform, threshold, training cohorts and metrics. Prints the path.
    """
    from amu_tf.errors import SpecError
    from components.export import run_export
    from pipelines.option_checks import warn_if_stale
    from pipelines.run_folder import RunFolder

    if bool(run_dir) == bool(model_uri):
        raise SpecError("give a RUN_DIR or --model (one of them)")
    if run_dir:
        if name or evaluation_uri or compiled_attention:
            raise SpecError("with RUN_DIR the run's names and evaluation are used; "
                            "--name/--evaluation/--compiled-attention go with --model")
        run = RunFolder(run_dir)
        warn_if_stale(run.require("evaluate"))
        exported = run.export(say=lambda m: click.echo(m, err=True), force=force,
                              export_dir=base_dir)
        for art in exported.values():
            click.echo(art.properties["path"])
        if not exported:
            raise SpecError(f"nothing was exported from {run_dir} (see above)")
        return
    warn_if_stale(model_uri)
    found = evaluation_uri is None and _run_evaluation_of(model_uri)
    art = run_export(model_uri, base_dir=base_dir or "saved_models", name=name,
                     evaluation_uri=evaluation_uri or found or None, force=force,
                     compiled_attention=compiled_attention)
    if found:
        click.echo(f"with the run's evaluation {found}", err=True)
    if art.properties.get("blessed") is None:
        click.echo("warning: exported without an evaluation (no --evaluation, no run "
                   "folder): no honest metrics and no blessing check; its metadata says so",
                   err=True)
    click.echo(art.properties["path"])
