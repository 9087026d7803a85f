"""What a translational reader expects beside AUCs, for every honest protocol of an evaluation:
a random-effects meta-analysis over the scored cohorts with forest plots
(:mod:`~amu_tf.evaluation.meta_analysis`), calibration per cohort with a reliability diagram
(:mod:`~amu_tf.evaluation.calibration`) and decision curves
(:mod:`~amu_tf.evaluation.decision_curve`).

    record = write_clinical_outputs(results, out_dir)     # files under out_dir, a JSON-able record
    lines = clinical_markdown(record, out_dir, link)      # the report's sections

Everything is computed from the held-out predictions the protocols wrote (each row scored by
a model that never saw its label; a row's probability averaged over repeats), so these
numbers are as honest as the AUCs beside them. A LEAKY protocol gets none of them. A protocol
whose rows come from a single cohort gets no meta-analysis (one study pools nothing); a cohort
too small or with one class is listed with its reason, never a crash.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: sub-folder of the evaluation for the files written here
FOLDER = "clinical"
#: the threshold probabilities the report's decision-curve table shows (the CSV has all)
REPORT_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def _protocol_outputs(result, out: Path, seed: int, n_boot: int) -> dict:
    from amu_tf.evaluation.calibration import (calibration_from_predictions,
                                               write_reliability_figure)
    from amu_tf.evaluation.decision_curve import (decision_curve_from_predictions,
                                                  write_decision_curve)
    from amu_tf.evaluation.meta_analysis import (meta_analysis_from_predictions,
                                                 write_forest_plots)

    label = result.protocol
    preds = result.predictions
    rec: dict = {"protocol": label, "label": result.label}
    rel = lambda p: Path(p).relative_to(out.parent).as_posix()  # noqa: E731

    cohorts = sorted(preds["cohort"].astype(str).unique())
    rec["cohorts"] = cohorts
    if len(cohorts) >= 2:
        per, pooled = meta_analysis_from_predictions(preds)
        per.to_csv(out / f"meta_per_cohort_{label}.csv", index=False, float_format="%.6g")
        pooled.to_csv(out / f"meta_pooled_{label}.csv", index=False, float_format="%.6g")
        paths = write_forest_plots(per, pooled, out / "forest", prefix=f"forest_{label}")
        rec["meta"] = {"per_cohort": rel(out / f"meta_per_cohort_{label}.csv"),
                       "pooled": rel(out / f"meta_pooled_{label}.csv"),
                       "forest": [rel(p) for p in paths if p.suffix == ".png"]}
    else:
        rec["meta"] = None
        rec["meta_note"] = (f"one cohort ({cohorts[0] if cohorts else 'none'}) scored: a "
                            "meta-analysis needs at least two")

    calib = calibration_from_predictions(preds, seed=seed, n_boot=n_boot)
    calib.to_csv(out / f"calibration_{label}.csv", index=False, float_format="%.6g")
    # the figures draw every trained model and the best training-free ones (as the ROC
    # figure); the tables hold every model
    from amu_tf.evaluation.decision_curve import TREAT_ALL, TREAT_NONE
    from amu_tf.evaluation.figures import shown_models

    shown = shown_models(result)
    fig = write_reliability_figure(preds[preds["model"].isin(shown)],
                                   out / f"reliability_{label}.png",
                                   title=f"Reliability diagram, {result.label} "
                                         "(held-out predictions)")
    rec["calibration"] = {"table": rel(out / f"calibration_{label}.csv"),
                          "figure": rel(fig[0])}

    curve = decision_curve_from_predictions(preds)
    files = write_decision_curve(curve[curve["model"].isin([*shown, TREAT_ALL, TREAT_NONE])],
                                 out / f"decision_curve_{label}.png",
                                 title=f"Decision curves, {result.label} (held-out rows)")
    curve.to_csv(files[2], index=False, float_format="%.6g")  # every model in the table
    rec["decision_curve"] = {"table": rel(files[2]), "figure": rel(files[0])}
    return rec


def write_clinical_outputs(results, out_dir, *, seed: int = 0, n_boot: int = 1000) -> dict:
    """Write the meta-analysis, calibration and decision-curve files of every honest
    protocol under ``out_dir/clinical/``; returns the record the report renders (paths
    relative to ``out_dir``)."""
    out = Path(out_dir) / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    record = {}
    for r in results:
        if r.leaky:
            continue
        record[r.label] = _protocol_outputs(r, out, seed, n_boot)
    return record


def _table_md(df: pd.DataFrame) -> str:
    from amu_tf.evaluation.tables import to_markdown

    return to_markdown(df, index=False)


def _ci(v, lo, hi, fmt="{:.3f}") -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    if lo is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return fmt.format(v)
    return f"{fmt.format(v)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def _calibration_md(calib: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "model": calib["model"], "cohort": calib["cohort"], "n": calib["n"],
        "Brier [95% CI]": [_ci(*v) for v in zip(calib["brier"], calib["brier_ci_low"],
                                                  calib["brier_ci_high"])],
        "calibration intercept [95% CI]": [
            _ci(*v, fmt="{:.2f}") for v in zip(calib["intercept"], calib["intercept_ci_low"],
                                               calib["intercept_ci_high"])],
        "calibration slope [95% CI]": [
            _ci(*v, fmt="{:.2f}") for v in zip(calib["slope"], calib["slope_ci_low"],
                                               calib["slope_ci_high"])],
        "note": calib["note"].fillna(""),  # calibration_metrics always writes one
    })
    return _table_md(shown)


def clinical_markdown(record: dict, evaluation_dir, link) -> list[str]:
    """The report's sections for ``record`` (from :func:`write_clinical_outputs`); files are
    read from ``evaluation_dir`` and linked through ``link(relative_path)``."""
    from amu_tf.evaluation.meta_analysis import pooled_markdown

    if not record:
        return []
    evaluation_dir = Path(evaluation_dir)
    lines = ["## Meta-analysis across cohorts", "",
             "Per scored cohort, the held-out predictions give the AUC (DeLong CI) and the log "
             "odds ratio of response per SD of the model's score (logistic regression of the "
             "label on the z-scored logit); these are pooled by a random-effects model "
             "(DerSimonian–Laird, statsmodels), with the 95% CI, the 95% prediction interval "
             "for a new cohort, τ² and I². A cohort with too few responders or non-responders "
             "is excluded with its reason.", ""]
    for label, rec in record.items():
        lines += [f"### {label}", ""]
        meta = rec.get("meta")
        if not meta:
            lines += [f"No meta-analysis: {rec.get('meta_note', '')}.", ""]
            continue
        pooled = pd.read_csv(evaluation_dir / meta["pooled"])
        lines += [pooled_markdown(pooled, "log_or"), "",
                  pooled_markdown(pooled, "auc"), ""]
        summary = [f for f in meta["forest"] if f.endswith("_summary.png")]
        for f in summary:
            lines += [f"![Forest plot, all models ranked, {label}]({link(f)})", ""]
        others = [f for f in meta["forest"] if f not in summary]
        if others:
            prefix = f"forest_{rec['protocol']}_"
            lines += ["Forest plot per model: " + ", ".join(
                f"[{Path(f).stem.removeprefix(prefix)}]({link(f)})"
                for f in others) + " (PNG; SVG beside each).", ""]
    lines += ["## Calibration", "",
              "Do the probabilities mean what they say? Brier score (bootstrap CI), "
              "calibration intercept (calibration-in-the-large: 0 is right on average) and "
              "slope (1 is right; below 1, predictions too extreme) per held-out cohort, from "
              "the held-out predictions. A cohort too small for a slope says so.", ""]
    for label, rec in record.items():
        c = rec.get("calibration")
        if not c:
            continue
        lines += [f"### {label}", "",
                  _calibration_md(pd.read_csv(evaluation_dir / c["table"])), "",
                  f"![Reliability diagram, {label}]({link(c['figure'])})", ""]
    lines += ["## Decision curves", "",
              "Net benefit (Vickers) of treating the patients a model calls responders, over "
              "threshold probabilities 0.05 to 0.80, against treating all and treating none, "
              "on the held-out rows (pooled over cohorts for loco). A model is useful at a "
              "threshold only where its net benefit exceeds both.", ""]
    for label, rec in record.items():
        d = rec.get("decision_curve")
        if not d:
            continue
        table = pd.read_csv(evaluation_dir / d["table"])
        shown = table[np.isclose(table["threshold"].to_numpy()[:, None],
                                 np.array(REPORT_THRESHOLDS)[None, :]).any(axis=1)]
        wide = shown.pivot(index="model", columns="threshold", values="net_benefit")
        wide = wide.loc[list(dict.fromkeys(shown["model"]))].round(3)
        wide.columns = [f"pt {t:.2f}" for t in wide.columns]
        wide = wide.reset_index()
        lines += [f"### {label}", "", _table_md(wide), "",
                  f"![Decision curves, {label}]({link(d['figure'])})",
                  f"(every threshold: `{link(d['table'])}`)", ""]
    return lines


__all__ = ["FOLDER", "clinical_markdown", "write_clinical_outputs"]
