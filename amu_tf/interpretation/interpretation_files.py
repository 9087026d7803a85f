"""The files of an Interpretation artifact: one writer for an
:class:`~amu_tf.interpretation.analyses.Interpretation`.

    summary = write_interpretation(interp, folder)       # also folder/summary.json

Layout (paths relative to the folder; ``<model>`` is the model's name as a file name):

* ``shap/<model>_importance.csv`` per-gene mean |SHAP| (rank, gene, mean_abs_shap,
  mean_shap), ``shap/<model>_values.csv.gz`` (explained rows x genes),
  ``shap/<model>_summary.png``, ``shap/<model>_bar.png``, ``shap/top_k.csv``,
  ``shap/overlap.csv``
* ``embedding/<model>/`` ``embedding.csv`` (genes x d), ``euclidean.csv``, ``cosine.csv``,
  ``euclidean.png``, ``cosine.png``, ``dendrogram.png``, ``tsne.csv``, ``tsne.png``,
  ``module_cohesion.csv`` (when modules were given)
* ``network/network_agreement.json``
* ``survival/cox.csv``, ``survival/km_<model>.png``
* ``enrichment/<model>_enrichment.csv``
* ``summary.json``: rows, explainers and top genes per model, the results, skipped parts
  (what :mod:`~amu_tf.interpretation.interpretation_report` renders the markdown from)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from amu_tf.artifacts import safe_name, to_jsonable
from amu_tf.interpretation import embedding_analysis as emb
from amu_tf.interpretation import shap_importance as shp
from amu_tf.interpretation import survival_analysis as surv

if TYPE_CHECKING:
    from amu_tf.interpretation.analyses import Interpretation

SUMMARY_FILE = "summary.json"
MARKDOWN_FILE = "interpretation.md"


def _save(fig, path: Path, dpi: int) -> None:
    fig.savefig(path, dpi=dpi, bbox_inches="tight")


def write_interpretation(interp: Interpretation, folder) -> dict:
    """Write every result of ``interp`` into ``folder`` (layout above) and ``summary.json``;
    returns the summary."""
    out = Path(folder)
    shap = interp.shap
    summary = {"rows": {"explained": int(len(interp.rows.explain)),
                        "background": int(len(interp.rows.background)),
                        "note": interp.rows.note},
               "models": {}, "skipped": dict(interp.skipped), "top_k": shap.top_k}

    (out / "shap").mkdir(parents=True, exist_ok=True)
    for name, s in shap.models.items():
        f = safe_name(name)
        s.importance.to_csv(out / "shap" / f"{f}_importance.csv", index=False)
        s.values.to_csv(out / "shap" / f"{f}_values.csv.gz")
        _save(s.figures["summary"], out / "shap" / f"{f}_summary.png", shp.FIGURE_DPI)
        _save(s.figures["bar"], out / "shap" / f"{f}_bar.png", shp.FIGURE_DPI)
        summary["models"][name] = {"explainer": s.result.explainer,
                                   "shap_output": s.result.output, "notes": s.result.notes,
                                   "top_genes": shap.top_genes(name)}
    shap.top.to_csv(out / "shap" / "top_k.csv", index=False)
    shap.overlap.to_csv(out / "shap" / "overlap.csv", index=False)

    for name, e in interp.embeddings.items():
        d = out / "embedding" / safe_name(name)
        d.mkdir(parents=True, exist_ok=True)
        e.embedding.to_csv(d / "embedding.csv")
        e.euclidean.to_csv(d / "euclidean.csv")
        e.cosine.to_csv(d / "cosine.csv")
        for part in ("euclidean", "cosine", "dendrogram"):
            _save(e.figures[part], d / f"{part}.png", emb.FIGURE_DPI)
        e.tsne.to_csv(d / "tsne.csv", index=False)
        _save(e.figures["tsne"], d / "tsne.png", emb.FIGURE_DPI)
        info = {"shape": list(e.embedding.shape)}
        if e.module_cohesion is not None:
            e.module_cohesion.to_csv(d / "module_cohesion.csv", index=False)
            info["module_cohesion"] = e.module_cohesion.to_dict("records")
        summary["models"][name]["embedding"] = info

    if interp.network is not None:
        (out / "network").mkdir(exist_ok=True)
        (out / "network" / "network_agreement.json").write_text(
            json.dumps(interp.network, indent=2) + "\n")
        summary["network"] = interp.network

    s = interp.survival
    if s is not None:
        (out / "survival").mkdir(exist_ok=True)
        s.cox.to_csv(out / "survival" / "cox.csv", index=False)
        for name, fig in s.km_figures.items():
            _save(fig, out / "survival" / f"km_{safe_name(name)}.png", surv.FIGURE_DPI)
        summary["survival"] = {
            "rows": s.n_rows, "events": s.n_events, "genes_from": s.genes_from,
            "cox_scores": s.cox[s.cox["covariate"].str.startswith("score:")].to_dict("records"),
            "km": dict(s.km)}

    e = interp.enrichment
    if e is not None:
        (out / "enrichment").mkdir(exist_ok=True)
        for name, table in e.tables.items():
            table.to_csv(out / "enrichment" / f"{safe_name(name)}_enrichment.csv", index=False)
        summary["enrichment"] = {"file": e.file, "n_sets": e.n_sets,
                                 "top": {n: t.head(5).to_dict("records")
                                         for n, t in e.tables.items()}}

    (out / SUMMARY_FILE).write_text(json.dumps(to_jsonable(summary), indent=2, default=str) + "\n")
    return summary
