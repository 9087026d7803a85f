"""``report.md``: one Markdown file a researcher reads top to bottom: the data, the leakage
audit, the protocols, the results with 95% CIs, the figures, and the blessing."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pandas as pd

from amu_tf import __version__
from amu_tf.evaluation.biomarker_comparison import comparison_markdown
from amu_tf.evaluation.blessing import AUC_LOWER_BOUND
from amu_tf.evaluation.tables import to_markdown

METHOD_NOTES = """\
How these numbers were obtained:

- Nothing fitted ever saw the labels of the rows it was scored on, nor their expression
  except where a protocol's notes say so: for every split the transform was fitted on the
  training rows only, each model on the transformed training rows only (its
  early stopping, upsampling, hyper-parameter search and decision threshold inside them,
  with patients kept on one side of every inner split), and the test rows were scored at
  the threshold frozen from training data.
- Out-of-fold predictions are pooled per repeat; a metric is computed on the pooled
  predictions and averaged over repeats.
- 95% confidence intervals: stratified bootstrap of the scored rows (responders and
  non-responders resampled separately, {n_boot} resamples, seed {seed}), percentile method.
- ``AP (responders)`` is the average precision of the responder class; ``mAP (paper)`` is
  the paper's mean of the AP of both classes (higher whenever non-responders are the
  majority). Precision, recall and F1 "weighted" weight the two classes by support, as the
  paper's tables do; "macro" weights them equally.
"""


def _data_section(table: pd.DataFrame, data_note: str | None) -> list[str]:
    lines = ["## Data", ""]
    if data_note:
        lines += [data_note, ""]
    rows = []
    for cohort, t in table.groupby(table["cohort"].astype(str) if "cohort" in table else 0):
        lab = t["response"].notna()
        rows.append({"cohort": cohort, "samples": len(t), "labeled": int(lab.sum()),
                     "responders": int((t["response"] == 1).sum()),
                     "unlabeled": int((~lab).sum())})
    df = pd.DataFrame(rows).set_index("cohort")
    tot = df.sum(numeric_only=True)
    df.loc["total"] = tot
    lines += [to_markdown(df), "",
              "Unlabeled samples (no CR/PR/SD/PD) are kept out of training and metrics.", ""]
    return lines


def _audit_section(audit: dict | None) -> list[str]:
    lines = ["## Leakage audit", ""]
    if not audit:
        return lines + ["The leakage audit was not run for this evaluation.", ""]
    verdict = "LEAKS FOUND" if audit.get("has_leak") else "clean"
    lines.append(f"Verdict: **{verdict}**" + (" (continued because leaks were allowed)"
                                               if audit.get("has_leak") and audit.get("allowed") else ""))
    if audit.get("uri"):
        lines.append(f"(AuditReport artifact: `{audit['uri']}`)")
    lines.append("")
    if audit.get("summary"):
        lines += ["```", str(audit["summary"]).rstrip(), "```", ""]
    return lines


def write_report(path, *, table: pd.DataFrame, results: list, table_files: dict,
                 figure_files: dict, blessing: dict, audit: dict | None = None,
                 data_note: str | None = None, transform: str = "", seed: int = 0,
                 n_boot: int = 1000, extra_sections: list[str] | None = None,
                 comparison: pd.DataFrame | None = None) -> Path:
    """Write ``report.md`` at ``path``; figure and table links are relative to its folder."""
    path = Path(path)
    base = path.parent
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    any_leaky = any(r.leaky for r in results)
    lines = ["# amu-tf evaluation report", "",
             f"amu-tf {__version__}, {now}, seed {seed}.", ""]
    if any_leaky:
        lines += ["> **LEAKY results inside.** The `paper` protocol duplicates responders before "
                  "splitting, as the AMU paper did; its numbers are shown only beside the honest "
                  "protocols so the inflation is visible. They measure memorisation, not "
                  "prediction.", ""]
    lines += _data_section(table, data_note)
    lines += _audit_section(audit)
    lines += ["## Protocols", ""]
    for r in results:
        lines.append(f"- **{r.label}**: {r.description}.")
        for n in r.notes:
            lines.append(f"  - {n}")
    lines += ["", f"Transform: `{transform}`, fitted on each split's training rows. "
              f"Models: {', '.join(f'`{m}`' for m in results[0].models)}.", "",
              METHOD_NOTES.format(n_boot=n_boot, seed=seed), "## Results", ""]
    by_title = {t: md for t, md, _ in table_files.get("tables", [])}
    for r in results:
        lines += [f"### {r.label}", ""]
        for title, md in by_title.items():
            if title.startswith(r.label + ":"):
                lines += [Path(md).read_text().rstrip(), ""]
        fig = figure_files.get(r.protocol)
        if fig:
            lines += [f"![ROC and PR curves, {r.label}]({Path(fig).relative_to(base).as_posix()})", ""]
    if comparison is not None:
        lines += comparison_markdown(comparison)
    lines += ["## Blessing", "",
              f"A model is blessed only if the lower bound of its ROC AUC's 95% CI exceeds "
              f"{AUC_LOWER_BOUND} under every honest protocol run (a LEAKY protocol never "
              "blesses).", ""]
    bl = pd.DataFrame([{"model": m, "blessed": "yes" if b["blessed"] else "no",
                        "why": b["reason"]} for m, b in blessing.items()]).set_index("model")
    lines += [to_markdown(bl), ""]
    for sec in extra_sections or []:
        lines += [sec.rstrip(), ""]
    lines += ["## Files", "",
              f"- `{Path(table_files['metrics']).name}`: every metric with `_ci_low`/`_ci_high`",
              "- `predictions.csv.gz`: every test prediction (model, protocol, repeat, fold, "
              "sample, label, probability, threshold, predicted label)",
              "- `blessing.json`, `evaluation.json`", ""]
    path.write_text("\n".join(lines))
    return path

