"""`amu transform TABLE --name NAME --out DIR`: fit a transform on training rows -> a
TransformGraph artifact."""

import click


def _parse_params(items):
    import json

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


@click.command("transform")
@click.argument("table", type=click.Path(exists=True))
@click.option("--name", "-t", "name", default="cohort_z", show_default=True,
              type=click.Choice(["paper", "cohort_z", "rank", "reference_z"]),
              help="Which transform.")
@click.option("--out", "out", required=True, type=click.Path(),
              help="Write the TransformGraph artifact here.")
@click.option("--train-cohort", "train_cohorts", multiple=True,
              help="Fit on the rows of this cohort (repeatable).")
@click.option("--train-samples", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Fit on the sample ids listed in this file (one per line).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Transform parameter, e.g. eps=1e-6, standardize=true, "
                   "max_missing_fraction=0.1 (repeatable).")
def command(table, name, out, train_cohorts, train_samples, params):
    """Fit transform NAME on the training rows of TABLE (a CohortTable artifact or CSV).

    Training rows: --train-samples FILE, else --train-cohort C..., else every row (then the
    summary warns). Writes the fitted transform (transform.json + transform.npz), the fitted
    sample ids and the transformed table; prints one summary line.
    """
    from components.transform import format_summary, run_transform

    ids = None
    if train_samples:
        from amu_tf.data.text_files import read_text

        ids = [line.strip() for line in read_text(train_samples, "--train-samples").splitlines()
               if line.strip()]
    art = run_transform(table, out, name, train_samples=ids,
                        train_cohorts=list(train_cohorts) or None, params=_parse_params(params))
    click.echo(format_summary(art))
    click.echo(f"wrote {art.uri}")
