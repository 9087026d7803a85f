"""`amu zoo`: list the zoo's models and presets with their parameter counts."""

import click


@click.command("zoo")
@click.option("--signatures", "signatures_dir", default=None,
              type=click.Path(exists=True, file_okay=False),
              help="The published-signature folder to list [$AMU_TF_SIGNATURES, else "
                   "../shared/data/signatures].")
def command(signatures_dir):
    """List every model and preset with its trainable-parameter count, the classical
    baselines, the published biomarkers with their references, and the library's published
    signatures with gene counts and PMIDs.

    `params (paper)` counts as the AMU paper does (BatchNorm excluded); `params (keras)` is
    Keras's own count of trainable weights.
    """
    from amu_tf.models.zoo import list_models

    from amu_tf.biomarkers import BIOMARKERS, biomarker_genes
    from amu_tf.training import BASELINES, COMPASS_PROBE, COMPASS_PUBLISHED, TRANSFER_RECIPES

    rows = list_models()
    click.echo(f"{'model':<14} {'params (paper)':>14} {'params (keras)':>14}  description")
    for r in rows:
        click.echo(
            f"{r['model']:<14} {r['params_paper']:>14,} {r['params_keras']:>14,}  {r['description']}"
        )
    click.echo("")
    click.echo(f"classical baselines (searched on the training rows): {', '.join(BASELINES)}")
    click.echo("")
    click.echo("published biomarkers (training-free: only the decision threshold is fitted; "
               "they read their own genes of a genome-wide table):")
    for name, spec in BIOMARKERS.items():
        n = len(biomarker_genes(name))
        genes = f"{n} gene{'s' if n != 1 else ''}" if n else "whole transcriptome"
        click.echo(f"{name:<14} {genes:>20}  {spec['description']}")
        click.echo(f"{'':<14} {'':>20}  ({spec['reference']})")
    click.echo("")
    click.echo("cross-cohort recipes (docs/generalisation.md; amu run recommends "
               "recipe:consensus for a new cohort unless its leave-one-cohort-out evaluation "
               "measures another model beating it, docs/run.md):")
    for name, spec in TRANSFER_RECIPES.items():
        click.echo(f"{'recipe:' + name:<25} {spec['description']}")
    click.echo(f"{COMPASS_PROBE:<25} concept features of the TCGA-pre-trained COMPASS encoder "
               "(ported to Keras, docs/compass.md), z-scored within cohort, L2 logistic "
               "regression tuned by inner leave-one-cohort-out; reads a genome-wide table")
    click.echo(f"{COMPASS_PUBLISHED:<25} a head trained on COMPASS's published features of "
               "about 1,000 pan-cancer patients, applied to the port's features after a "
               "label-free sign alignment; needs --param published_dir=DIR (compass_itrp)")
    click.echo("")
    _list_signatures(signatures_dir)


def _list_signatures(signatures_dir):
    """The published signatures of the library folder, or how to give one."""
    from amu_tf.biomarkers.signature_library import ENV_VAR, list_signatures
    from amu_tf.errors import InputDataError

    try:
        table = list_signatures(signatures_dir)
    except InputDataError as exc:
        click.echo(f"published signatures (sig:<name>): none listed: {exc}")
        return
    scorable = table[table["scored_by"] != ""]
    click.echo(f"published signatures (sig:<name>, training-free, z-scored within each cohort; "
               f"{len(scorable)} of {len(table)} scorable; 'sig:*' names them all; folder: "
               f"--signatures or ${ENV_VAR}):")
    for _, r in table.iterrows():
        how = r["scored_by"] or "not scorable"
        click.echo(f"{r['model']:<34} {r['n_genes']:>5} genes  {r['association']:<10} "
                   f"{how:<14} PMID {r['pmid']}" + (f"  ({r['note']})" if r["note"] else ""))
