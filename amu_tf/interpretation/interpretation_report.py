"""The interpretation section of a report, rendered from the files of an Interpretation
folder (``summary.json`` and the tables :mod:`~amu_tf.interpretation.interpretation_files`
wrote), so the artifact's own ``interpretation.md`` and a report elsewhere show the same.

    md = interpretation_markdown("runs/x/interpretation")                   # links as in the folder
    md = interpretation_markdown(folder, prefix="../interpretation/")      # from a report's folder
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from amu_tf.artifacts import safe_name
from amu_tf.interpretation.interpretation_files import SUMMARY_FILE


def _df_md(df: pd.DataFrame, floatfmt=".3g", max_rows=20) -> str:
    from amu_tf.evaluation.tables import to_markdown

    return to_markdown(df.head(max_rows), index=False, floatfmt=floatfmt)


def interpretation_markdown(folder, prefix="") -> str:
    """The section's markdown; tables inline, image links relative to ``folder`` with
    ``prefix`` prepended (for a report that lives elsewhere)."""
    out = Path(folder)
    from amu_tf.data.text_files import read_json
    from amu_tf.errors import ArtifactError

    summary = read_json(out / SUMMARY_FILE, "interpretation summary", error=ArtifactError)
    if not isinstance(summary, dict) or not {"top_k", "rows", "models"} <= set(summary):
        raise ArtifactError(f"interpretation summary {out / SUMMARY_FILE} is damaged: it lacks "
                            "top_k/rows/models; run `amu interpret` again")
    k = summary["top_k"]
    L = ["## Interpretation", "", f"Rows explained: {summary['rows']['explained']} "
         f"({summary['rows']['note']}); background: {summary['rows']['background']} training rows.", ""]
    L += _shap(summary, out, prefix, k)
    for n, m in summary["models"].items():
        if "embedding" in m:
            L += _embedding(n, m["embedding"], prefix)
    if "network" in summary:
        r = summary["network"]
        L += ["### Network agreement", "",
              f"Embedding {r['similarity']} similarity ({r['model']}) ranks interacting panel-gene pairs above "
              f"non-interacting ones with AUROC {r['auroc']:.3f} (permutation p = {r['p_value']:.3g}, "
              f"{r['n_perm']} gene-label permutations; {r['n_interacting_pairs']} interacting of "
              f"{r['n_interacting_pairs'] + r['n_non_interacting_pairs']} pairs, score >= {r['min_score']}).", ""]
    if "survival" in summary:
        L += _survival(summary["survival"], out, prefix)
    if "enrichment" in summary:
        L += ["### Gene-set enrichment", "", f"Top {k} genes vs the 160-gene panel, "
              f"hypergeometric test, BH FDR ({summary['enrichment']['n_sets']} sets).", ""]
        for n, rows in summary["enrichment"]["top"].items():
            if rows:
                L += [f"{n}:", "", _df_md(pd.DataFrame(rows)[["gene_set", "overlap", "set_size", "p", "fdr"]]), ""]
    if summary["skipped"]:
        L += ["### Skipped", ""] + [f"- {p}: {m}" for p, m in summary["skipped"].items()] + [""]
    return "\n".join(L)


def _shap(summary, out, prefix, k) -> list:
    L = ["### SHAP", "", "| model | explainer | attributions of |", "|---|---|---|"]
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
        L.append(f"![{n} SHAP summary]({prefix}shap/{safe_name(n)}_summary.png)")
    L.append("")
    return L


def _embedding(n, e, prefix) -> list:
    f = safe_name(n)
    L = [f"### Gene embedding ({n}, {e['shape'][0]} x {e['shape'][1]})", "",
         f"![t-SNE]({prefix}embedding/{f}/tsne.png)",
         f"![dendrogram]({prefix}embedding/{f}/dendrogram.png)",
         f"![cosine]({prefix}embedding/{f}/cosine.png)", ""]
    if "module_cohesion" in e:
        L += [_df_md(pd.DataFrame(e["module_cohesion"])), ""]
    return L


def _survival(s, out, prefix) -> list:
    L = ["### Survival", "", f"Univariate Cox models (HR per SD, stratified by cohort) on "
         f"{s['rows']} rows with {s['events']} deaths.", ""]
    cox = pd.read_csv(out / "survival" / "cox.csv")
    L += [_df_md(cox[["covariate", "hr", "ci_low", "ci_high", "p", "fdr"]]), ""]
    for n, km in s["km"].items():
        p = km["logrank_p"]  # JSON null where the test gave NaN
        L.append(f"![KM {n}]({prefix}survival/km_{safe_name(n)}.png) log-rank p = "
                 f"{float('nan') if p is None else p:.3g}")
    L.append("")
    return L
