"""`amu ingest SPEC... [--data-root DIR] [--out DIR]`: read cohorts, print one line each."""

import click


@click.command("ingest")
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Resolve the specs' relative file paths against this folder "
                   "(default: each spec's own folder).")
@click.option("--out", "out", type=click.Path(), default=None,
              help="Write a CohortTable artifact here (table.csv.gz + artifact.json).")
def command(specs, data_root, out):
    """Read cohort SPEC files (TOML) into the tidy cohort table.

    Prints per cohort: samples, labeled, responders, panel genes found (and which are
    missing), unlabeled samples and why. With --out, also writes the CohortTable artifact;
    nothing is written when any cohort fails.
    """
    from components.ingest import format_summary, ingest_cohort, load_spec, run_ingest

    if out:
        art = run_ingest(list(specs), out, data_root=data_root)
        for s in art.properties["cohorts"].values():
            click.echo(format_summary(s))
        click.echo(f"wrote {art.properties['n_samples']} samples to {art.uri}")
        return
    loaded = [load_spec(p, data_root) for p in specs]
    for spec in loaded:
        _, s = ingest_cohort(spec)
        click.echo(format_summary(s))
