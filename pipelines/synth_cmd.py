"""`amu synth OUT_DIR`: write the synthetic default cohorts (files, specs, truth)."""

import click


@click.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--no-signal", is_flag=True, help="Plant no response signal (a null cohort).")
@click.option("--effect", default=2.5, show_default=True,
              help="Shift of the response module's factor in responders, in SDs.")
def command(out_dir, seed, no_signal, effect):
    """Write three synthetic cohorts in the real cohorts' published formats (GEO raw-count CSV
    with Entrez ids; log2(TPM+0.001) TSVs with symbols; clinical tables with RECIST strings),
    one TOML spec per cohort and synthetic_truth.json (the planted response module, the other
    co-expression modules, effect size, seed). Then: `amu ingest OUT_DIR/*.toml`.
    """
    import json
    from pathlib import Path

    from amu_tf.data.synthetic import TRUTH_FILE, generate_default_cohorts
    from pipelines.option_checks import check_counts

    check_counts(seed=seed)

    specs = generate_default_cohorts(out_dir, seed=seed, signal=not no_signal, effect=effect)
    truth = json.loads((Path(out_dir) / TRUTH_FILE).read_text())
    for p in specs:
        c = truth["cohorts"][p.stem]
        click.echo(f"{p}: {c['samples']} samples, {c['responders']} responders, {c['units']}, "
                   f"{c['gene_id']} ids")
    click.echo(f"planted response module ({len(truth['response_module'])} genes, "
               f"effect {truth['effect_size_sd']} SD): {', '.join(truth['response_module'])}")
