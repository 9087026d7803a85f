"""``report.md``: one Markdown file a researcher reads top to bottom: the data, the leakage
audit, the protocols, the results with 95% CIs, the figures, the comparison with the
biomarkers, the blessing and (in a run's report) the interpretation.

It is rendered from artifacts only: a ModelEvaluation folder (``evaluation.json``,
``metrics.csv``, the paper-style tables, ``figures/``, ``blessing.json``,
``biomarker_comparison.csv``), an optional audit summary read from an AuditReport, and
optional extra sections (the Interpretation's). The evaluation writes its own copy; the
``report`` component writes the run's, with links relative to wherever it is written.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

import pandas as pd

from amu_tf import __version__
from amu_tf.errors import ArtifactError
from amu_tf.evaluation.biomarker_comparison import comparison_markdown
from amu_tf.evaluation.blessing import AUC_LOWER_BOUND
from amu_tf.evaluation.clinical_outputs import clinical_markdown
from amu_tf.evaluation.recommendation import RECOMMENDATION_JSON, recommendation_markdown
from amu_tf.evaluation.tables import to_markdown
from amu_tf.evaluation.tripod_ai import tripod_ai_section

REPORT_FILE = "report.md"
EVALUATION_JSON = "evaluation.json"
BLESSING_JSON = "blessing.json"
COMPARISON_CSV = "biomarker_comparison.csv"

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


def data_summary(table: pd.DataFrame) -> list[dict]:
    """Per cohort: samples, labeled, responders, unlabeled (the report's data table)."""
    rows = []
    for cohort, t in table.groupby(table["cohort"].astype(str) if "cohort" in table else 0):
        lab = t["response"].notna()
        rows.append({"cohort": str(cohort), "samples": int(len(t)), "labeled": int(lab.sum()),
                     "responders": int((t["response"] == 1).sum()),
                     "unlabeled": int((~lab).sum())})
    return rows


def _data_section(summary: list[dict], data_note: str | None) -> list[str]:
    lines = ["## Data", ""]
    if data_note:
        lines += [data_note, ""]
    df = pd.DataFrame(summary).set_index("cohort")
    df.loc["total"] = df.sum(numeric_only=True)
    lines += [to_markdown(df), "",
              "Unlabeled samples (no CR/PR/SD/PD) are kept out of training and metrics.", ""]
    return lines


def _audit_section(audit: dict | None) -> list[str]:
    lines = ["## Leakage audit", ""]
    if not audit:
        return lines + ["The leakage audit was not run for this evaluation (`amu audit` runs "
                        "it).", ""]
    verdict = "LEAKS FOUND" if audit.get("has_leak") else "clean"
    lines.append(f"Verdict: **{verdict}**" + (" (the evaluation went on because leaks were "
                                               "allowed)" if audit.get("has_leak") else ""))
    if audit.get("uri"):
        lines.append(f"(AuditReport artifact: `{audit['uri']}`)")
    if audit.get("forced_past"):
        lines += ["", f"> **Forced (--force):** {audit['forced_past']}; this verdict does not "
                  "vouch for the evaluated table."]
    lines.append("")
    if audit.get("summary"):
        lines += ["```", str(audit["summary"]).rstrip(), "```", ""]
    return lines


def probability_statement(calibrate) -> list[str]:
    """Whether the probabilities in this report, and those of a model exported from the run,
    are recalibrated, and on what."""
    if calibrate:
        how = {"sigmoid": "Platt's logistic recalibration",
               "isotonic": "isotonic regression"}.get(calibrate, calibrate)
        return ["**Probabilities.** Under the protocols every model's probabilities were "
                f"recalibrated by {how}, fitted on out-of-fold predictions of each split's "
                "training rows only (never a scored row); the tables above measure those "
                "recalibrated probabilities. A model trained and exported by `amu run "
                "--calibrate` is recalibrated the same way on out-of-fold predictions of all "
                "its labeled training rows, and its decision threshold is chosen in the "
                "recalibrated scale; the export's `assets/amu_metadata.json` (`calibration`) "
                "records the map and what it was fitted on.", ""]
    return ["**Probabilities.** No model's probabilities were recalibrated: they are each "
            "model's own outputs (a biomarker's is a logistic map of its score), so the "
            "calibration above says how far to trust them as risks, and the same holds for a "
            "model exported from this run (its metadata says \"not recalibrated\"). "
            "`--calibrate sigmoid` (or `isotonic`) measures recalibrated versions under the "
            "same protocols and recalibrates the exported model on its training rows.", ""]


def load_evaluation_record(evaluation_dir) -> dict:
    """``evaluation.json`` of a ModelEvaluation folder, with one clear error when the folder
    is not one or was written before the report could be rendered from it."""
    path = Path(evaluation_dir) / EVALUATION_JSON
    from amu_tf.data.text_files import read_json

    if not path.exists():
        raise ArtifactError(f"{evaluation_dir} is not a ModelEvaluation (no {EVALUATION_JSON})")
    record = read_json(path, "evaluation record", error=ArtifactError)
    if not isinstance(record, dict) or "report" not in record:
        raise ArtifactError(f"{evaluation_dir} was written by an older amu-tf (its "
                            f"{EVALUATION_JSON} has no 'report' part); run evaluate again")
    return record


def write_report(path, evaluation_dir, *, audit=None, extra_sections=None,
                 link_base=None) -> Path:
    """Write the report at ``path``. ``evaluation_dir`` is where the evaluation's files are
    read now; ``link_base`` is ``(report_folder, evaluation_folder)`` as they will be once
    both are in place (a staged folder is renamed afterwards), default the folders as given."""
    path, evaluation_dir = Path(path), Path(evaluation_dir)
    record = load_evaluation_record(evaluation_dir)
    rep = record["report"]
    report_base, eval_base = link_base or (path.parent, evaluation_dir)

    def link(rel: str) -> str:
        return Path(os.path.relpath(Path(os.path.abspath(eval_base)) / rel,
                                    os.path.abspath(report_base))).as_posix()

    params = record["parameters"]
    seed, n_boot = params["seed"], params["n_boot"]
    protocols = record["protocols"]
    from amu_tf.data.text_files import read_json

    blessing = read_json(evaluation_dir / BLESSING_JSON, "evaluation blessing",
                         error=ArtifactError)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    lines = ["# amu-tf evaluation report", "",
             f"amu-tf {__version__}, {now}, seed {seed}.", ""]
    if any(p["leaky"] for p in protocols.values()):
        lines += ["> **LEAKY results inside.** The `paper` protocol duplicates responders before "
                  "splitting, as the AMU paper did; its numbers are shown only beside the honest "
                  "protocols so the inflation is visible. They measure memorisation, not "
                  "prediction.", ""]
    lines += _data_section(rep["data_summary"], rep.get("data_note"))
    lines += _audit_section(audit)
    lines += ["## Protocols", ""]
    for label, p in protocols.items():
        lines.append(f"- **{label}**: {p['description']}.")
        lines += [f"  - {n}" for n in p["notes"]]
    dropped = params.get("dropped_models") or {}
    if dropped:
        lines += ["", f"Left out ({len(dropped)}; they cannot be scored on these cohorts, "
                  "e.g. a cohort has too few of their genes or a gene-set file is missing): "
                  + "; ".join(f"`{m}`" for m in dropped) + f" (reasons in "
                  f"`{link(EVALUATION_JSON)}`, parameters.dropped_models)."]
    lines += ["", f"Transform: `{params['transform']}`, fitted on each split's training rows. "
              f"Models: {', '.join(f'`{m}`' for m in params['models'])}.", "",
              METHOD_NOTES.format(n_boot=n_boot, seed=seed), "## Results", ""]
    for label, p in protocols.items():
        lines += [f"### {label}", ""]
        for title, md in rep["tables"]:
            if title.startswith(label + ":"):
                lines += [(evaluation_dir / md).read_text().rstrip(), ""]
        fig = rep["figures"].get(p["protocol"])
        if fig:
            lines += [f"![ROC and PR curves, {label}]({link(fig)})", ""]
    if (evaluation_dir / COMPARISON_CSV).is_file():
        lines += comparison_markdown(pd.read_csv(evaluation_dir / COMPARISON_CSV))
    if (evaluation_dir / RECOMMENDATION_JSON).is_file():
        lines += recommendation_markdown(json.loads(
            (evaluation_dir / RECOMMENDATION_JSON).read_text()))
    clinical = clinical_markdown(rep.get("clinical") or {}, evaluation_dir, link)
    if clinical:
        clinical += probability_statement(params.get("calibrate"))
    lines += clinical
    lines += ["## Blessing", "",
              f"A model is blessed only if the lower bound of its ROC AUC's 95% CI exceeds "
              f"{AUC_LOWER_BOUND} under every honest protocol run (a LEAKY protocol never "
              "blesses).", ""]
    bl = pd.DataFrame([{"model": m, "blessed": "yes" if b["blessed"] else "no",
                        "why": b["reason"]} for m, b in blessing.items()]).set_index("model")
    lines += [to_markdown(bl), ""]
    for sec in extra_sections or []:
        lines += [sec.rstrip(), ""]
    lines += tripod_ai_section(bool(rep.get("clinical")))
    lines += ["## Files", "",
              f"- `{link('metrics.csv')}`: every metric with `_ci_low`/`_ci_high`",
              f"- `{link('predictions.csv.gz')}`: every test prediction (model, protocol, "
              "repeat, fold, sample, label, probability, threshold, predicted label)",
              f"- `{link(BLESSING_JSON)}`, `{link(EVALUATION_JSON)}`", ""]
    path.write_text("\n".join(lines))
    return path
