"""Result tables in the shape of the paper's Tables 2-4 (metric rows x model columns), as
CSV and Markdown, every cell ``value [95% CI]``.

* ``cv`` -> Table 2's shape ("original validation": cross-validation on the original rows);
* ``paper`` -> Table 3's shape ("enhanced validation"), titled LEAKY;
* ``loco`` / ``external`` -> Table 4's shape ("testing dataset"), one table per held-out
  cohort plus the pooled one.

The paper's tables report accuracy, precision, recall and F1 weighted by class support; we
add ROC AUC, AP of responders and the paper's mAP, and the frozen threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf.evaluation.metrics import METRIC_LABELS, METRICS, format_ci
from amu_tf.evaluation.protocols import ProtocolResult

TABLE_METRICS = ("roc_auc", "ap_responder", "map_paper", "accuracy", "precision_weighted",
                 "recall_weighted", "f1_weighted", "f1_macro")

PAPER_TABLE = {"cv": "Table 2 (original validation)", "paper": "Table 3 (enhanced validation)",
               "loco": "Table 4 (testing dataset)", "external": "Table 4 (testing dataset)"}


def _cell(row, k) -> str:
    return format_ci({"value": row[k], "ci_low": row[f"{k}_ci_low"],
                      "ci_high": row[f"{k}_ci_high"]})


def paper_style_table(metrics: pd.DataFrame, metrics_shown=TABLE_METRICS) -> pd.DataFrame:
    """Metric rows x model columns, cells ``value [low, high]``, plus threshold and n rows."""
    cols = {}
    for _, row in metrics.iterrows():
        col = {METRIC_LABELS[k]: _cell(row, k) for k in metrics_shown}
        thr = (f"{row['threshold_mean']:.3f}" if np.isclose(row["threshold_min"], row["threshold_max"])
               else f"{row['threshold_mean']:.3f} ({row['threshold_min']:.3f}-{row['threshold_max']:.3f})")
        col["Threshold (frozen, from training rows)"] = thr
        col["n scored (responders)"] = f"{int(row['n'])} ({int(row['n_responders'])})"
        cols[row["model"]] = col
    df = pd.DataFrame(cols)
    df.index.name = "metric"
    return df


def to_markdown(df: pd.DataFrame, index: bool = True, floatfmt: str | None = None) -> str:
    """A DataFrame as a GitHub Markdown table (the project's one writer of them): with its
    index as the first column unless ``index=False``; floats through ``floatfmt`` when given;
    ``|`` inside a cell shown as ``/``."""
    def cell(v):
        if floatfmt is not None and isinstance(v, (float, np.floating)):
            return format(v, floatfmt)
        return str(v).replace("|", "/")

    header = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for idx, row in df.iterrows():
        cells = ([str(idx)] if index else []) + [cell(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_title(result: ProtocolResult, cohort: str | None = None) -> str:
    t = f"{result.label}: {PAPER_TABLE[result.protocol]} shape"
    if cohort:
        t += f", held-out cohort {cohort}"
    elif result.protocol in ("loco", "external"):
        t += ", all held-out cohorts pooled"
    return t


def result_tables(result: ProtocolResult) -> list[tuple[str, str, pd.DataFrame]]:
    """``(file stem, title, table)`` for one protocol: the pooled table, then per cohort."""
    stem = f"table_{result.protocol}"
    out = [(stem, table_title(result), paper_style_table(result.metrics))]
    if result.per_cohort is not None:
        for cohort, pc in result.per_cohort.groupby("cohort"):
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(cohort))
            out.append((f"{stem}_{safe}", table_title(result, cohort), paper_style_table(pc)))
    return out


def write_tables(results: list[ProtocolResult], out_dir) -> dict:
    """Write ``metrics.csv`` (every model x protocol, numeric, with CI columns),
    ``metrics_per_cohort.csv`` and one CSV + Markdown per paper-style table.

    Returns ``{"metrics": path, "per_cohort": path|None, "tables": [(title, md_path, csv_path)]}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    all_metrics = pd.concat([r.metrics.assign(protocol_label=r.label) for r in results],
                            ignore_index=True)
    front = ["protocol_label", "protocol", "leaky", "model", "n", "n_responders", "n_repeats",
             "threshold_mean", "threshold_min", "threshold_max"]
    ci_cols = [c for k in METRICS for c in (k, f"{k}_ci_low", f"{k}_ci_high")]
    all_metrics[front + ci_cols].to_csv(out / "metrics.csv", index=False, float_format="%.4f")
    files = {"metrics": out / "metrics.csv", "per_cohort": None, "tables": []}
    pcs = [r.per_cohort.assign(protocol_label=r.label) for r in results if r.per_cohort is not None]
    if pcs:
        pc = pd.concat(pcs, ignore_index=True)
        pc[["cohort"] + front + ci_cols].to_csv(out / "metrics_per_cohort.csv", index=False,
                                                float_format="%.4f")
        files["per_cohort"] = out / "metrics_per_cohort.csv"
    for r in results:
        for stem, title, df in result_tables(r):
            df.to_csv(out / f"{stem}.csv")
            md = f"**{title}**\n\n{to_markdown(df)}\n"
            if r.leaky:
                md = ("> LEAKY: responders were duplicated before the split; copies of test rows "
                      "were trained on. Do not read these numbers as performance.\n\n" + md)
            (out / f"{stem}.md").write_text(md)
            files["tables"].append((title, out / f"{stem}.md", out / f"{stem}.csv"))
    return files
