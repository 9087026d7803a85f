"""Interpret: Model artifact(s) + CohortTable -> one Interpretation artifact.

    art = run_interpret(["runs/x/model_amu", "runs/x/model_xgboost"], "runs/x/cohort",
                        "runs/x/interpretation", string="links.txt", gmt="reactome.gmt")
    summary = interpret_models({"amu": bundle_or_(estimator, transform, info)}, table, out_dir)
    md = report_section("runs/x/interpretation", relative_to="runs/x/report")

The work is split by job (all in ``amu_tf.interpretation``):

* ``explained_rows.choose_rows``: the rows every model is explained on (held-out cohorts'
  labeled rows) and the training rows used as SHAP background;
* ``explained_models.explained_model``: each model, loaded once as a ``ModelBundle``, with
  its input, scores and predictions; its kind read from ``model_info.json``;
* ``analyses``: ``analyse_shap``, ``analyse_embedding``, ``analyse_network``,
  ``analyse_survival``, ``analyse_enrichment``, each returning tables, numbers and figures;
* ``interpretation_files.write_interpretation``: the artifact's files and ``summary.json``
  (layout in that module);
* ``interpretation_report.interpretation_markdown``: ``interpretation.md`` and the report
  section, rendered from those files.

This module composes them and is the only part that prints. Parts whose inputs are missing
(no survival columns, no GMT or an empty one, a network without panel genes, no Keras model
with a gene embedding) print one clear line, are listed under ``skipped`` in
``summary.json`` and in ``interpretation.md``, and do not stop the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import pandas as pd

from amu_tf.artifacts import Artifact, ArtifactWriter, check_output_not_input
from amu_tf.data.cohort_table import load_cohort_table
from amu_tf.errors import InputDataError
from amu_tf.interpretation import analyses
from amu_tf.interpretation.explained_models import as_bundle, explained_model
from amu_tf.interpretation.explained_rows import choose_rows, select_rows
from amu_tf.interpretation.interpretation_files import (MARKDOWN_FILE, SUMMARY_FILE,
                                                        write_interpretation)
from amu_tf.interpretation.interpretation_report import interpretation_markdown
from amu_tf.panel import panel_symbols

__all__ = ["MARKDOWN_FILE", "SUMMARY_FILE", "interpret_models", "report_section",
           "run_interpret", "select_rows"]


def _say(msg, quiet=False):
    if not quiet:
        click.echo(msg, err=True)


def interpret_models(models: dict, table: pd.DataFrame, out_dir, *, string=None,
                     string_mapping=None, min_string_score=400, network_similarity="cosine",
                     gmt=None, top_k=20, rows="heldout", n_explain=200, n_background=30,
                     n_perm=1000, seed=0, modules: dict | None = None, quiet=False) -> dict:
    """Interpret fitted models on one cohort table, writing the files into ``out_dir``.

    ``models`` maps a name to a :class:`~amu_tf.training.model_bundle.ModelBundle` or to an
    in-memory ``(estimator, transform, info)``: ``estimator`` a fitted estimator
    (``predict_proba``; a ``ZooClassifier`` or a bare Keras model for AMU), ``transform``
    anything with ``transform(table) -> (n, 160)`` (or None when the table's gene columns are
    the model input), ``info`` the model_info dict (``training_cohorts``, ``threshold``).
    ``modules`` (name -> genes, e.g. the synthetic truth) adds a cohesion test of the
    embedding. ``network_similarity`` is ``cosine`` or ``abs_cosine`` (anti-aligned embedding
    rows count as close: genes that act on the label in opposite directions).
    Returns the summary dict (also written as ``summary.json``).
    """
    if not models:
        raise InputDataError("interpret: no models given")
    genes = panel_symbols()
    bundles = {name: as_bundle(m, name) for name, m in models.items()}
    chosen = choose_rows(table, [b.info for b in bundles.values()], rows, n_explain, seed)
    _say(f"interpret: {len(bundles)} model(s) on {len(chosen.explain)} rows ({chosen.note})",
         quiet)
    explained = {n: explained_model(n, b, table, chosen, genes) for n, b in bundles.items()}
    interp = _analyse(explained, table, chosen, genes, string=string,
                      string_mapping=string_mapping, min_string_score=min_string_score,
                      network_similarity=network_similarity, gmt=gmt, top_k=top_k,
                      n_background=n_background, n_perm=n_perm, seed=seed, modules=modules,
                      quiet=quiet)
    out = Path(out_dir)
    summary = write_interpretation(interp, out)
    (out / MARKDOWN_FILE).write_text(interpretation_markdown(out))
    return summary


def _analyse(models, table, rows, genes, *, string, string_mapping, min_string_score,
             network_similarity, gmt, top_k, n_background, n_perm, seed, modules,
             quiet) -> analyses.Interpretation:
    """Run the five analyses in turn, printing progress and recording skipped parts."""
    from tqdm.auto import tqdm

    skipped = {}

    def skip(part, msg):
        skipped[part] = msg
        _say(f"interpret: skipping {part}: {msg}", quiet)

    with tqdm(total=len(models), desc="SHAP", disable=quiet, file=None) as bar:
        def shap_done(name, s):
            _say(f"  {name}: {s.result.explainer}; top: {', '.join(s.importance['gene'].head(5))}",
                 quiet)
            bar.update(1)

        shap = analyses.analyse_shap(models, rows, genes, top_k=top_k, n_background=n_background,
                                     seed=seed, on_model=shap_done)
    interp = analyses.Interpretation(rows, shap, skipped=skipped)

    embeddings = {n: E for n, m in models.items()
                  if (E := m.gene_embedding) is not None and E.shape[0] == len(genes)}
    if not embeddings:
        skip("embedding", "no model with a gene embedding (an AMU Keras model) was given")
    for name, E in embeddings.items():
        highlight = modules or {f"top {top_k} SHAP ({name})": shap.top_genes(name)}
        interp.embeddings[name] = analyses.analyse_embedding(
            name, E, genes, highlight=highlight, modules=modules, n_perm=n_perm, seed=seed)

    if string is None:
        skip("network", "no interaction file given (--string)")
    elif not interp.embeddings:
        skip("network", "no gene embedding to compare with the network")
    else:
        name, e = next(iter(interp.embeddings.items()))
        try:
            interp.network = r = analyses.analyse_network(
                e.cosine, name, string, genes=genes, mapping=string_mapping,
                min_score=min_string_score, similarity=network_similarity, n_perm=n_perm,
                seed=seed)
            _say(f"  network: AUROC {r['auroc']:.3f} (permutation p {r['p_value']:.3g}, "
                 f"{r['n_interacting_pairs']} interacting pairs)", quiet)
        except InputDataError as exc:
            skip("network", str(exc))

    try:
        interp.survival = s = analyses.analyse_survival(table, rows, models, shap, genes)
        for part, msg in s.km_skipped.items():
            skip(part, msg)
        _say(f"  survival: Cox on {s.n_rows} rows ({s.n_events} events)", quiet)
    except InputDataError as exc:
        skip("survival", str(exc))

    if gmt is None:
        skip("enrichment", "no GMT file given (--gmt)")
    else:
        try:
            interp.enrichment = analyses.analyse_enrichment(gmt, shap, genes)
        except InputDataError as exc:
            skip("enrichment", str(exc))
    return interp


def report_section(interpretation_uri, relative_to=None) -> str:
    """The interpretation section of a report, read from a finished Interpretation artifact;
    figure links are made relative to ``relative_to`` (the report's folder) when given."""
    out = Path(interpretation_uri)
    Artifact.load(out, expected_type="Interpretation")
    prefix = ""
    if relative_to is not None:
        prefix = Path(os.path.relpath(out, relative_to)).as_posix().rstrip("/") + "/"
    return interpretation_markdown(out, prefix=prefix)


def _model_name(bundle, uri: Path) -> str:
    """The model's name in ``model_info.json``; a file naming none (read as ``model``) is
    called by its ``name`` entry or its folder's name."""
    name = bundle.name
    if name in (None, "", "model"):
        name = bundle.model_info.extra.get("name") or uri.name
    return str(name)


def run_interpret(model_uris, table_uri, output_uri, *, string=None, string_mapping=None,
                  min_string_score=400, network_similarity="cosine", gmt=None, top_k=20,
                  rows="heldout", n_explain=200, n_background=30, n_perm=1000, seed=0,
                  quiet=False) -> Artifact:
    """Model artifact(s) (a URI or a list) + a CohortTable (artifact or table file) -> an
    Interpretation artifact at ``output_uri``; ``interpretation.md`` inside is the report's
    section."""
    from amu_tf.data.text_files import check_text_file, read_text
    from amu_tf.training.model_bundle import ModelBundle

    # the user's text files are judged before any work (a UTF-16 GMT or a binary STRING file
    # used to fail only after the SHAP work was done); a GMT is small: decoded whole
    for path, what in ((string, "STRING file"), (string_mapping, "STRING mapping file")):
        if path is not None:
            check_text_file(path, what)
    if gmt is not None:
        read_text(gmt, "GMT file")
    if isinstance(model_uris, (str, os.PathLike)):
        model_uris = [model_uris]
    check_output_not_input(output_uri, [*model_uris, table_uri, string, string_mapping, gmt])
    models, arts = {}, []
    for uri in map(Path, model_uris):
        bundle = ModelBundle.load(uri)
        name = _model_name(bundle, uri)
        if name in models:
            name = f"{name}:{uri.name}"
        models[name] = bundle
        arts.append(bundle.artifact)
    table, table_art = load_cohort_table(table_uri)
    if table_art is not None:
        arts.append(table_art)
    params = {"string": str(string) if string else None, "gmt": str(gmt) if gmt else None,
              "min_string_score": min_string_score, "network_similarity": network_similarity,
              "top_k": top_k, "rows": rows,
              "n_explain": n_explain, "n_background": n_background, "n_perm": n_perm, "seed": seed}
    extra = [Artifact.for_file(p) for p in (string, string_mapping, gmt)
             if p is not None and Path(p).is_file()]
    with ArtifactWriter(output_uri, "Interpretation", inputs=arts + extra, parameters=params) as w:
        summary = interpret_models(models, table, w.path, string=string,
                                   string_mapping=string_mapping,
                                   min_string_score=min_string_score,
                                   network_similarity=network_similarity, gmt=gmt, top_k=top_k,
                                   rows=rows, n_explain=n_explain, n_background=n_background,
                                   n_perm=n_perm, seed=seed, quiet=quiet)
        w.properties.update({"models": list(models), "skipped": summary["skipped"],
                             "explainers": {n: m["explainer"] for n, m in summary["models"].items()}})
    return w.artifact
