"""`amu interpret --model DIR [--model DIR ...] --table DIR --out DIR [--string FILE] [--gmt FILE]`."""

import click


@click.command("interpret")
@click.option("--model", "models", multiple=True, required=True, type=click.Path(file_okay=False),
              help="A Model artifact (repeat for several models; all are explained on the "
                   "same rows).")
@click.option("--table", "table", required=True, type=click.Path(),
              help="A CohortTable artifact (or table.csv.gz). Rows of cohorts the models were "
                   "not trained on are explained; training rows are the SHAP background.")
@click.option("--out", "out", required=True, type=click.Path(),
              help="Write the Interpretation artifact here.")
@click.option("--string", "string", type=click.Path(dir_okay=False), default=None,
              help="Interaction file in STRING format: 'protein1 protein2 combined_score'.")
@click.option("--string-mapping", type=click.Path(dir_okay=False), default=None,
              help="STRING protein.info (or a two-column id/symbol file) when the network "
                   "uses STRING ids.")
@click.option("--min-score", default=400, show_default=True,
              help="Keep interactions with combined_score >= this (STRING: 400 medium, "
                   "700 high confidence).")
@click.option("--network-similarity", type=click.Choice(["cosine", "abs_cosine"]),
              default="cosine", show_default=True,
              help="abs_cosine also counts anti-aligned embedding rows as close.")
@click.option("--gmt", type=click.Path(dir_okay=False), default=None,
              help="Gene sets (GMT, gene symbols) for enrichment of the top genes.")
@click.option("--top-k", default=20, show_default=True, help="Top genes per model.")
@click.option("--rows", type=click.Choice(["heldout", "all"]), default="heldout",
              show_default=True, help="Which labeled rows to explain.")
@click.option("--n-explain", default=200, show_default=True,
              help="At most this many rows are explained (a seeded sample).")
@click.option("--n-perm", default=1000, show_default=True,
              help="Permutations for the network and embedding p-values.")
@click.option("--seed", default=0, show_default=True)
def command(models, table, out, string, string_mapping, min_score, network_similarity, gmt,
            top_k, rows, n_explain, n_perm, seed):
    """SHAP for every model, the AMU gene embedding, network agreement, survival and
    gene-set enrichment, written as one Interpretation artifact (interpretation.md inside
    is the report's section). Parts whose inputs are missing are skipped with a message."""
    from components.interpret import run_interpret
    from pipelines.option_checks import check_counts

    check_counts(seed=seed, n_explain=n_explain, n_perm=n_perm, top_k=top_k)
    art = run_interpret(list(models), table, out, string=string, string_mapping=string_mapping,
                        min_string_score=min_score, network_similarity=network_similarity,
                        gmt=gmt, top_k=top_k, rows=rows,
                        n_explain=n_explain, n_perm=n_perm, seed=seed)
    for name, expl in art.properties["explainers"].items():
        click.echo(f"{name}: {expl}")
    for part, why in art.properties["skipped"].items():
        click.echo(f"skipped {part}: {why}")
    click.echo(f"wrote {art.uri} (see {art.uri}/interpretation.md)")
