"""Interpret: Model artifact(s) + CohortTable -> one Interpretation artifact.

    art = run_interpret(["runs/x/model_amu", "runs/x/model_xgboost"], "runs/x/cohort",
                        "runs/x/interpretation", string="links.txt", gmt="reactome.gmt")
    summary = interpret_models({"amu": (estimator, transform, info)}, table, out_dir)

Every model is explained on the same rows: those of cohorts the models were not trained on
(``model_info.json`` ``training_cohorts``); when every cohort was used in training, all
labeled rows are explained and the output says the attributions are on training rows.
The background (reference distribution) is always the training rows.

Parts whose inputs are missing (no survival columns, no GMT or an empty one, a network without
panel genes, no Keras model with a gene embedding) print one clear line, are listed under
``skipped`` in ``summary.json`` and in ``interpretation.md``, and do not stop the rest.

Output layout (all paths relative to the artifact):

* ``shap/<model>_importance.csv`` per-gene mean |SHAP| (rank, gene, mean_abs_shap, mean_shap),
  ``shap/<model>_summary.png``, ``shap/<model>_bar.png``, ``shap/top_k.csv``, ``shap/overlap.csv``
* ``embedding/<model>/`` ``embedding.csv`` (genes x d), ``euclidean.csv``, ``cosine.csv``,
  ``euclidean.png``, ``cosine.png``, ``dendrogram.png``, ``tsne.csv``, ``tsne.png``
* ``network/network_agreement.json``
* ``survival/cox.csv``, ``survival/km_<model>.png``
* ``enrichment/<model>_enrichment.csv``
* ``summary.json`` (explainers used, rows, results, skipped parts) and ``interpretation.md``
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import numpy as np
import pandas as pd

from amu_tf.artifacts import Artifact, ArtifactWriter, safe_name, to_jsonable
from amu_tf.data.cohort_table import load_cohort_table
from amu_tf.errors import InputDataError
from amu_tf.interpretation import embedding_analysis as emb
from amu_tf.interpretation import gene_set_enrichment as gse
from amu_tf.interpretation import network_agreement as net
from amu_tf.interpretation import shap_importance as shp
from amu_tf.interpretation import survival_analysis as surv
from amu_tf.panel import panel_symbols

MARKDOWN_FILE = "interpretation.md"
SUMMARY_FILE = "summary.json"


def _say(msg, quiet=False):
    if not quiet:
        click.echo(msg, err=True)


# ------------------------------------------------------------------ loading
def load_model(model_uri) -> tuple[str, object, object, dict, Artifact]:
    """``(name, estimator, transform, info, artifact)`` of a Model artifact."""
    model_uri = Path(model_uri)
    art = Artifact.load(model_uri, expected_type="Model")
    from amu_tf.training.model_bundle import ModelBundle

    bundle = ModelBundle.load(model_uri)
    info = dict(bundle.info or {})
    name = str(info.get("model") or info.get("name") or model_uri.name)
    estimator = bundle.estimator
    if estimator is None:
        estimator = bundle.keras_model
    return name, estimator, bundle.transform, info, art


def _keras_of(estimator):
    import keras

    if isinstance(estimator, keras.Model):
        return estimator
    for attr in ("model_", "keras_model"):
        m = getattr(estimator, attr, None)
        if isinstance(m, keras.Model):
            return m
    return None


def _embedding_of(estimator):
    m = _keras_of(estimator)
    if m is None:
        return None
    try:
        layer = m.get_layer("gene_embedding")
    except ValueError:
        return None
    import keras

    return keras.ops.convert_to_numpy(layer.embeddings)


def _proba1(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(X))[:, 1]
    m = _keras_of(estimator)
    from scipy.special import softmax

    return softmax(np.asarray(m.predict(X, verbose=0), dtype=float), axis=1)[:, 1]


def _threshold(estimator, info):
    t = getattr(estimator, "threshold_", None)
    if t is None:
        t = info.get("threshold")
        if isinstance(t, dict):
            t = t.get("value")
    return float(t) if t is not None else 0.5


# ------------------------------------------------------------------ rows
def select_rows(table: pd.DataFrame, infos: list[dict], rows="heldout"):
    """``(explain_mask, background_mask, note)``: the rows to explain (held-out cohorts' labeled
    rows, or all labeled rows) and the training rows used as SHAP background."""
    labeled = table["response"].notna().to_numpy() if "response" in table else np.ones(len(table), bool)
    trained = set()
    for info in infos:
        trained |= set(info.get("training_cohorts") or [])
    in_train = table["cohort"].isin(trained).to_numpy() if trained and "cohort" in table \
        else np.zeros(len(table), bool)
    if rows == "heldout" and in_train.any() and (~in_train & labeled).any():
        return (~in_train & labeled), (in_train & labeled), (
            f"held-out rows: cohorts not used in training "
            f"({', '.join(sorted(set(table.loc[~in_train, 'cohort'].astype(str))))})")
    note = ("all labeled rows; the models were trained on them (no held-out cohort in the "
            "table), so attributions describe the fitted models, not generalisation")
    if not trained:
        note = "all labeled rows (model_info.json lists no training cohorts)"
    bg = in_train & labeled if in_train.any() else labeled
    return labeled, bg, note


def _sample(mask, n, seed):
    idx = np.flatnonzero(mask)
    if n is not None and len(idx) > n:
        idx = np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))
    return idx


def _df_md(df: pd.DataFrame, floatfmt=".3g", max_rows=20) -> str:
    from amu_tf.evaluation.tables import to_markdown

    return to_markdown(df.head(max_rows), index=False, floatfmt=floatfmt)


# ------------------------------------------------------------------ the work
def interpret_models(models: dict, table: pd.DataFrame, out_dir, *, string=None,
                     string_mapping=None, min_string_score=400, network_similarity="cosine",
                     gmt=None, top_k=20, rows="heldout", n_explain=200, n_background=30,
                     n_perm=1000, seed=0, modules: dict | None = None, quiet=False) -> dict:
    """Interpret fitted models on one cohort table, writing files into ``out_dir``.

    ``models`` maps a name to ``(estimator, transform, info)``: ``estimator`` a fitted
    estimator (``predict_proba``; a ``ZooClassifier`` or a Keras model for AMU), ``transform``
    anything with ``transform(table) -> (n, 160)`` (or None when the table's gene columns are
    the model input), ``info`` the model_info dict (``training_cohorts``, ``threshold``).
    ``modules`` (name -> genes, e.g. the synthetic truth) adds a cohesion test of the
    embedding. ``network_similarity`` is ``cosine`` or ``abs_cosine`` (anti-aligned embedding
    rows count as close: genes that act on the label in opposite directions).
    Returns the summary dict (also written as ``summary.json``).
    """
    out = Path(out_dir)
    genes = panel_symbols()
    if not models:
        raise InputDataError("interpret: no models given")
    explain_mask, bg_mask, rows_note = select_rows(table, [m[2] for m in models.values()], rows)
    if not explain_mask.any():
        raise InputDataError("interpret: the table has no labeled rows to explain")
    ex_idx = _sample(explain_mask, n_explain, seed)
    bg_idx = _sample(bg_mask, 500, seed)
    summary = {"rows": {"explained": int(len(ex_idx)), "background": int(len(bg_idx)),
                        "note": rows_note}, "models": {}, "skipped": {}, "top_k": top_k}
    _say(f"interpret: {len(models)} model(s) on {len(ex_idx)} rows ({rows_note})", quiet)

    def skip(part, msg):
        summary["skipped"][part] = msg
        _say(f"interpret: skipping {part}: {msg}", quiet)

    # --- inputs and scores per model
    X_all, scores, preds = {}, {}, {}
    for name, (est, tf, info) in models.items():
        X = np.asarray(tf.transform(table) if tf is not None else table[genes].to_numpy(float),
                       dtype="float32")
        if X.shape[1] != len(genes):
            raise InputDataError(f"model {name}: input has {X.shape[1]} columns, expected {len(genes)}")
        X_all[name] = X
        p = _proba1(est, X[ex_idx])
        scores[name] = p
        preds[name] = (p >= _threshold(est, info)).astype(int)

    # --- SHAP
    (out / "shap").mkdir(parents=True, exist_ok=True)
    importances = {}
    from tqdm.auto import tqdm

    for name in tqdm(list(models), desc="SHAP", disable=quiet, file=None):
        est = models[name][0]
        X = X_all[name]
        res = shp.explain(est, X[ex_idx], X[bg_idx], genes, n_background=n_background, seed=seed)
        imp = res.importance()
        importances[name] = imp
        f = safe_name(name)
        imp.to_csv(out / "shap" / f"{f}_importance.csv", index=False)
        pd.DataFrame(res.values, columns=genes,
                     index=table["sample"].iloc[ex_idx] if "sample" in table else None
                     ).to_csv(out / "shap" / f"{f}_values.csv.gz")
        shp.plot_summary(res, out / "shap" / f"{f}_summary.png", title=name)
        shp.plot_bar(imp, out / "shap" / f"{f}_bar.png", k=top_k, title=name)
        summary["models"][name] = {"explainer": res.explainer, "shap_output": res.output,
                                   "notes": res.notes,
                                   "top_genes": imp["gene"].head(top_k).tolist()}
        _say(f"  {name}: {res.explainer}; top: {', '.join(imp['gene'].head(5))}", quiet)
    top, overlap = shp.top_k_table(importances, k=top_k)
    top.to_csv(out / "shap" / "top_k.csv", index=False)
    overlap.to_csv(out / "shap" / "overlap.csv", index=False)

    # --- embeddings
    emb_models = {n: E for n, (est, _, _) in models.items()
                  if (E := _embedding_of(est)) is not None and E.shape[0] == len(genes)}
    cosine_for_network = None
    if not emb_models:
        skip("embedding", "no model with a gene embedding (an AMU Keras model) was given")
    for name, E in emb_models.items():
        d = out / "embedding" / safe_name(name)
        d.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(E, index=pd.Index(genes, name="gene"),
                     columns=[f"e{i}" for i in range(E.shape[1])]).to_csv(d / "embedding.csv")
        eu, cos = emb.similarity_matrices(E, genes)
        eu.to_csv(d / "euclidean.csv")
        cos.to_csv(d / "cosine.csv")
        order = emb.cluster_order(E, genes)
        emb.plot_heatmap(eu, d / "euclidean.png", f"{name}: Euclidean distance of gene embeddings",
                         cmap="viridis_r", order=order)
        emb.plot_heatmap(cos, d / "cosine.png", f"{name}: cosine similarity of gene embeddings",
                         cmap="RdBu_r", order=order)
        emb.plot_dendrogram(E, genes, d / "dendrogram.png")
        xy = emb.tsne_coordinates(E, genes, seed=seed)
        xy.to_csv(d / "tsne.csv", index=False)
        hl = modules if modules else {f"top {top_k} SHAP ({name})": importances[name]["gene"].head(top_k).tolist()}
        emb.plot_tsne(xy, d / "tsne.png", highlight=hl, title=f"{name}: t-SNE of gene embeddings")
        info = {"shape": list(E.shape)}
        if modules:
            coh = emb.module_cohesion(E, genes, modules, metric="abs_cosine", n_perm=n_perm, seed=seed)
            coh.to_csv(d / "module_cohesion.csv", index=False)
            info["module_cohesion"] = coh.to_dict("records")
        summary["models"][name]["embedding"] = info
        if cosine_for_network is None:
            cosine_for_network = (name, cos)

    # --- network agreement
    if string is None:
        skip("network", "no interaction file given (--string)")
    elif cosine_for_network is None:
        skip("network", "no gene embedding to compare with the network")
    else:
        try:
            edges = net.read_string_network(string, mapping=string_mapping,
                                            min_score=min_string_score, keep=genes)
            if network_similarity not in ("cosine", "abs_cosine"):
                raise InputDataError(f"network similarity {network_similarity!r}: use cosine "
                                     "or abs_cosine")
            S = cosine_for_network[1]
            S = S.abs() if network_similarity == "abs_cosine" else S
            res = net.network_auroc(S, edges, n_perm=n_perm, seed=seed)
            res.update(model=cosine_for_network[0], similarity=network_similarity,
                       min_score=min_string_score, file=str(string))
            (out / "network").mkdir(exist_ok=True)
            (out / "network" / "network_agreement.json").write_text(json.dumps(res, indent=2) + "\n")
            summary["network"] = res
            _say(f"  network: AUROC {res['auroc']:.3f} (permutation p {res['p_value']:.3g}, "
                 f"{res['n_interacting_pairs']} interacting pairs)", quiet)
        except InputDataError as exc:
            skip("network", str(exc))

    # --- survival
    try:
        sub = table.iloc[ex_idx]
        sf = surv.survival_frame(sub.reset_index(drop=True))
        top_genes = list(dict.fromkeys(g for imp in importances.values()
                                       for g in imp["gene"].head(top_k)))
        first = next(iter(models))
        cov = pd.DataFrame(X_all[first][ex_idx][:, [genes.index(g) for g in top_genes]],
                           columns=top_genes)
        for name in models:
            cov[f"score:{name}"] = scores[name]
        strata = sub["cohort"].reset_index(drop=True) if "cohort" in sub else None
        cox = surv.cox_univariate(sf, cov, strata=strata)
        (out / "survival").mkdir(exist_ok=True)
        cox.to_csv(out / "survival" / "cox.csv", index=False)
        summary["survival"] = {"rows": int(len(sf)), "events": int(sf["event"].sum()),
                               "genes_from": f"{first} model input",
                               "cox_scores": cox[cox["covariate"].str.startswith("score:")]
                               .to_dict("records"), "km": {}}
        for name in models:
            try:
                km = surv.kaplan_meier(sf, pd.Series(preds[name]).loc[sf.index],
                                       out / "survival" / f"km_{safe_name(name)}.png",
                                       title=f"{name}: overall survival by predicted response")
                summary["survival"]["km"][name] = km
            except InputDataError as exc:
                skip(f"kaplan_meier:{name}", str(exc))
        _say(f"  survival: Cox on {len(sf)} rows ({int(sf['event'].sum())} events)", quiet)
    except InputDataError as exc:
        skip("survival", str(exc))

    # --- enrichment
    if gmt is None:
        skip("enrichment", "no GMT file given (--gmt)")
    else:
        try:
            sets = gse.read_gmt(gmt)
            (out / "enrichment").mkdir(exist_ok=True)
            summary["enrichment"] = {"file": str(gmt), "n_sets": len(sets), "top": {}}
            for name, imp in importances.items():
                res = gse.enrichment(imp["gene"].head(top_k), sets, genes)
                res.to_csv(out / "enrichment" / f"{safe_name(name)}_enrichment.csv", index=False)
                summary["enrichment"]["top"][name] = res.head(5).to_dict("records")
        except InputDataError as exc:
            summary.pop("enrichment", None)
            skip("enrichment", str(exc))

    (out / SUMMARY_FILE).write_text(json.dumps(to_jsonable(summary), indent=2, default=str) + "\n")
    (out / MARKDOWN_FILE).write_text(interpretation_markdown(summary, out))
    return summary


def interpretation_markdown(summary: dict, out: Path, prefix="") -> str:
    """The report's interpretation section; image and table paths relative to the artifact
    (``prefix`` is prepended, for a report that lives elsewhere)."""
    k = summary["top_k"]
    L = ["## Interpretation", "", f"Rows explained: {summary['rows']['explained']} "
         f"({summary['rows']['note']}); background: {summary['rows']['background']} training rows.", ""]
    L += ["### SHAP", "", "| model | explainer | attributions of |", "|---|---|---|"]
    for n, m in summary["models"].items():
        L.append(f"| {n} | {m['explainer']} | {m['shap_output']} |")
    L.append("")
    top_file = out / "shap" / "top_k.csv"
    if top_file.is_file():
        L += [f"Top {k} genes by mean |SHAP| (paper Table 5):", "",
              _df_md(pd.read_csv(top_file).fillna(""), max_rows=k), ""]
        ov = pd.read_csv(out / "shap" / "overlap.csv").fillna("")
        if len(ov):
            L += ["Overlap of the top lists:", "", _df_md(ov), ""]
    for n in summary["models"]:
        f = safe_name(n)
        L.append(f"![{n} SHAP summary]({prefix}shap/{f}_summary.png)")
    L.append("")
    for n, m in summary["models"].items():
        if "embedding" in m:
            f = safe_name(n)
            L += [f"### Gene embedding ({n}, {m['embedding']['shape'][0]} x {m['embedding']['shape'][1]})", "",
                  f"![t-SNE]({prefix}embedding/{f}/tsne.png)",
                  f"![dendrogram]({prefix}embedding/{f}/dendrogram.png)",
                  f"![cosine]({prefix}embedding/{f}/cosine.png)", ""]
            if "module_cohesion" in m["embedding"]:
                L += [_df_md(pd.DataFrame(m["embedding"]["module_cohesion"])), ""]
    if "network" in summary:
        r = summary["network"]
        L += ["### Network agreement", "",
              f"Embedding {r['similarity']} similarity ({r['model']}) ranks interacting panel-gene pairs above "
              f"non-interacting ones with AUROC {r['auroc']:.3f} (permutation p = {r['p_value']:.3g}, "
              f"{r['n_perm']} gene-label permutations; {r['n_interacting_pairs']} interacting of "
              f"{r['n_interacting_pairs'] + r['n_non_interacting_pairs']} pairs, score >= {r['min_score']}).", ""]
    if "survival" in summary:
        s = summary["survival"]
        L += ["### Survival", "", f"Univariate Cox models (HR per SD, stratified by cohort) on "
              f"{s['rows']} rows with {s['events']} deaths.", ""]
        cox = pd.read_csv(out / "survival" / "cox.csv")
        L += [_df_md(cox[["covariate", "hr", "ci_low", "ci_high", "p", "fdr"]]), ""]
        for n, km in s["km"].items():
            L.append(f"![KM {n}]({prefix}survival/km_{safe_name(n)}.png) log-rank p = {km['logrank_p']:.3g}")
        L.append("")
    if "enrichment" in summary:
        L += ["### Gene-set enrichment", "", f"Top {k} genes vs the 160-gene panel, "
              f"hypergeometric test, BH FDR ({summary['enrichment']['n_sets']} sets).", ""]
        for n, rows in summary["enrichment"]["top"].items():
            if rows:
                L += [f"{n}:", "", _df_md(pd.DataFrame(rows)[["gene_set", "overlap", "set_size", "p", "fdr"]]), ""]
    if summary["skipped"]:
        L += ["### Skipped", ""] + [f"- {p}: {m}" for p, m in summary["skipped"].items()] + [""]
    return "\n".join(L)


def report_section(interpretation_uri, relative_to=None) -> str:
    """The interpretation section of a report, read from a finished Interpretation artifact;
    figure links are made relative to ``relative_to`` (the report's folder) when given."""
    out = Path(interpretation_uri)
    Artifact.load(out, expected_type="Interpretation")
    summary = json.loads((out / SUMMARY_FILE).read_text())
    prefix = ""
    if relative_to is not None:
        prefix = Path(os.path.relpath(out, relative_to)).as_posix().rstrip("/") + "/"
    return interpretation_markdown(summary, out, prefix=prefix)


def run_interpret(model_uris, table_uri, output_uri, *, string=None, string_mapping=None,
                  min_string_score=400, network_similarity="cosine", gmt=None, top_k=20,
                  rows="heldout", n_explain=200, n_background=30, n_perm=1000, seed=0,
                  quiet=False) -> Artifact:
    """Model artifact(s) (a URI or a list) + a CohortTable (artifact or table file) -> an
    Interpretation artifact at ``output_uri``; ``interpretation.md`` inside is the report's
    section."""
    if isinstance(model_uris, (str, os.PathLike)):
        model_uris = [model_uris]
    models, arts = {}, []
    for uri in model_uris:
        name, est, tf, info, art = load_model(uri)
        if name in models:
            name = f"{name}:{Path(uri).name}"
        models[name] = (est, tf, info)
        arts.append(art)
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
