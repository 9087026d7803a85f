"""The five analyses of an interpretation, one function each, on models already loaded
(:mod:`~amu_tf.interpretation.explained_models`) and rows already chosen
(:mod:`~amu_tf.interpretation.explained_rows`). Each returns its numbers, tables and figures
(``matplotlib.figure.Figure``); none prints or writes a file
(:mod:`~amu_tf.interpretation.interpretation_files` writes them).

    shap = analyse_shap(models, rows, genes, top_k=20)                  # every model
    emb = analyse_embedding("amu", E, genes, highlight={...})           # one AMU embedding
    net = analyse_network(emb.cosine, "amu", "links.txt", genes=genes)  # dict
    surv = analyse_survival(table, rows, models, shap, genes)
    enr = analyse_enrichment("sets.gmt", shap, genes)

A part whose input is missing raises :class:`~amu_tf.errors.InputDataError` with the reason;
the caller records it as skipped and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from amu_tf.errors import InputDataError
from amu_tf.interpretation import embedding_analysis as emb
from amu_tf.interpretation import gene_set_enrichment as gse
from amu_tf.interpretation import network_agreement as net
from amu_tf.interpretation import shap_importance as shp
from amu_tf.interpretation import survival_analysis as surv
from amu_tf.interpretation.explained_models import ExplainedModel
from amu_tf.interpretation.explained_rows import ExplainedRows


# ------------------------------------------------------------------ SHAP importance
@dataclass
class ModelShap:
    """One model's SHAP values on the explained rows, per-gene importance and figures."""

    result: shp.ShapResult
    importance: pd.DataFrame  # rank, gene, mean_abs_shap, mean_shap
    values: pd.DataFrame  # explained rows x genes
    figures: dict  # "summary", "bar" -> Figure


@dataclass
class ShapAnalysis:
    models: dict  # name -> ModelShap
    top: pd.DataFrame  # the paper's Table 5: rank + one column per model
    overlap: pd.DataFrame
    top_k: int

    def top_genes(self, name) -> list:
        return self.models[name].importance["gene"].head(self.top_k).tolist()


def analyse_shap(models: dict[str, ExplainedModel], rows: ExplainedRows, genes: list, *,
                 top_k=20, n_background=30, seed=0, on_model=None) -> ShapAnalysis:
    """SHAP of every model on the same explained rows, the training rows as background.
    ``on_model(name, ModelShap)`` is called after each model (for progress)."""
    per = {}
    for name, m in models.items():
        res = shp.explain(m.estimator, m.X[rows.explain], m.X[rows.background], genes,
                          n_background=n_background, seed=seed)
        imp = res.importance()
        per[name] = ModelShap(
            res, imp, pd.DataFrame(res.values, columns=genes, index=rows.sample_ids),
            {"summary": shp.summary_figure(res, title=name),
             "bar": shp.bar_figure(imp, k=top_k, title=name)})
        if on_model is not None:
            on_model(name, per[name])
    top, overlap = shp.top_k_table({n: s.importance for n, s in per.items()}, k=top_k)
    return ShapAnalysis(per, top, overlap, top_k)


# ------------------------------------------------------------------ gene embedding
@dataclass
class EmbeddingAnalysis:
    """One model's gene embedding: the matrix, similarities, t-SNE, module cohesion, figures."""

    embedding: pd.DataFrame  # genes x d
    euclidean: pd.DataFrame
    cosine: pd.DataFrame
    tsne: pd.DataFrame
    module_cohesion: pd.DataFrame | None
    figures: dict  # "euclidean", "cosine", "dendrogram", "tsne" -> Figure


def analyse_embedding(name: str, E, genes: list, *, highlight: dict, modules: dict | None = None,
                      n_perm=1000, seed=0) -> EmbeddingAnalysis:
    """Similarity matrices (heatmaps in clustering order), dendrogram and t-SNE of one
    embedding; ``highlight`` colours gene groups on the t-SNE map; ``modules`` (name ->
    genes) adds the |cosine| cohesion test of each module."""
    E_df = pd.DataFrame(E, index=pd.Index(genes, name="gene"),
                        columns=[f"e{i}" for i in range(E.shape[1])])
    eu, cos = emb.similarity_matrices(E, genes)
    Z = emb.cluster_linkage(E, genes)  # one clustering: the heatmaps' order and the dendrogram
    order = emb.cluster_order(E, genes, Z=Z)
    figures = {
        "euclidean": emb.heatmap_figure(eu, f"{name}: Euclidean distance of gene embeddings",
                                        cmap="viridis_r", order=order),
        "cosine": emb.heatmap_figure(cos, f"{name}: cosine similarity of gene embeddings",
                                     cmap="RdBu_r", order=order),
        "dendrogram": emb.dendrogram_figure(E, genes, Z=Z),
    }
    xy = emb.tsne_coordinates(E, genes, seed=seed)
    figures["tsne"] = emb.tsne_figure(xy, highlight=highlight,
                                      title=f"{name}: t-SNE of gene embeddings")
    coh = None
    if modules:
        coh = emb.module_cohesion(E, genes, modules, metric="abs_cosine", n_perm=n_perm, seed=seed)
    return EmbeddingAnalysis(E_df, eu, cos, xy, coh, figures)


# ------------------------------------------------------------------ network agreement
def analyse_network(cosine: pd.DataFrame, model: str, string, *, genes: list, mapping=None,
                    min_score=400, similarity="cosine", n_perm=1000, seed=0) -> dict:
    """AUROC of one embedding's similarity (``cosine``, or ``abs_cosine``: anti-aligned rows
    count as close) for interacting vs non-interacting panel-gene pairs of a STRING-format
    file, with its permutation p-value and what it was computed on."""
    edges = net.read_string_network(string, mapping=mapping, min_score=min_score, keep=genes)
    if similarity not in ("cosine", "abs_cosine"):
        raise InputDataError(f"network similarity {similarity!r}: use cosine or abs_cosine")
    S = cosine.abs() if similarity == "abs_cosine" else cosine
    res = net.network_auroc(S, edges, n_perm=n_perm, seed=seed)
    res.update(model=model, similarity=similarity, min_score=min_score, file=str(string))
    return res


# ------------------------------------------------------------------ survival
@dataclass
class SurvivalAnalysis:
    """Univariate Cox models of the top genes and the model scores, KM per model."""

    n_rows: int
    n_events: int
    genes_from: str  # whose input the gene covariates are
    cox: pd.DataFrame
    km: dict = field(default_factory=dict)  # model -> log-rank numbers
    km_figures: dict = field(default_factory=dict)  # model -> Figure
    km_skipped: dict = field(default_factory=dict)  # "kaplan_meier:<model>" -> why


def analyse_survival(table: pd.DataFrame, rows: ExplainedRows,
                     models: dict[str, ExplainedModel], shap: ShapAnalysis,
                     genes: list) -> SurvivalAnalysis:
    """Cox (HR per SD, stratified by cohort) of every model's top genes (values from the
    first model's input) and of each model's score, on the explained rows with survival;
    Kaplan-Meier of predicted responders vs non-responders per model (a model predicting
    one group only is listed in ``km_skipped``)."""
    sub = table.iloc[rows.explain]
    sf = surv.survival_frame(sub.reset_index(drop=True))
    top_genes = list(dict.fromkeys(g for name in shap.models for g in shap.top_genes(name)))
    first = next(iter(models))
    cov = pd.DataFrame(models[first].X[rows.explain][:, [genes.index(g) for g in top_genes]],
                       columns=top_genes)
    for name, m in models.items():
        cov[f"score:{name}"] = m.scores
    strata = sub["cohort"].reset_index(drop=True) if "cohort" in sub else None
    out = SurvivalAnalysis(int(len(sf)), int(sf["event"].sum()), f"{first} model input",
                           surv.cox_univariate(sf, cov, strata=strata))
    for name, m in models.items():
        try:
            out.km[name], out.km_figures[name] = surv.kaplan_meier_figure(
                sf, pd.Series(m.predicted).loc[sf.index],
                title=f"{name}: overall survival by predicted response")
        except InputDataError as exc:
            out.km_skipped[f"kaplan_meier:{name}"] = str(exc)
    return out


# ------------------------------------------------------------------ gene-set enrichment
@dataclass
class EnrichmentAnalysis:
    file: str
    n_sets: int
    tables: dict  # model -> enrichment table (gene_set, set_size, overlap, ..., p, fdr)


def analyse_enrichment(gmt, shap: ShapAnalysis, genes: list) -> EnrichmentAnalysis:
    """Hypergeometric over-representation of each model's top genes among the panel."""
    sets = gse.read_gmt(gmt)
    tables = {name: gse.enrichment(shap.top_genes(name), sets, genes) for name in shap.models}
    return EnrichmentAnalysis(str(gmt), len(sets), tables)


# ------------------------------------------------------------------ all of it
@dataclass
class Interpretation:
    """Every analysis of one interpretation (None: not run), and the parts skipped, in the
    order they were skipped."""

    rows: ExplainedRows
    shap: ShapAnalysis
    embeddings: dict = field(default_factory=dict)  # model -> EmbeddingAnalysis
    network: dict | None = None
    survival: SurvivalAnalysis | None = None
    enrichment: EnrichmentAnalysis | None = None
    skipped: dict = field(default_factory=dict)  # part -> why
