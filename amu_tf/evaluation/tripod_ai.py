"""Which TRIPOD+AI items (Collins et al., BMJ 2024;385:e078378, the reporting guideline for
clinical prediction models that use regression or machine learning) an amu-tf report covers,
and which it cannot: the report's last section, so a reader knows what to add before
publishing."""

from __future__ import annotations

#: (item, topic, where the report covers it) for the items an evaluation report addresses
COVERED = (
    ("5a, 6", "data sources, participants", "Data: cohorts, samples, labeled and unlabeled"),
    ("7", "data preparation", "Protocols: the transform, fitted inside every split; Leakage "
          "audit"),
    ("8", "outcome", "best overall response CR/PR = responder, SD/PD = not; others unlabeled"),
    ("9", "predictors", "the genes each model reads (model_info.json), missing genes noted"),
    ("11", "missing data", "unlabeled samples left out and counted; genes missing per cohort"),
    ("12a-d", "analytical methods", "models, hyper-parameter search, class balance and "
                                    "threshold, all inside the training rows of each split"),
    ("12e", "performance measures", "discrimination (ROC AUC, AP, weighted F1 with 95% CIs)"),
    ("12e", "calibration", "Brier score, calibration intercept and slope per held-out cohort, "
                           "reliability diagrams"),
    ("12e", "clinical utility", "decision curves (net benefit against treat-all/none)"),
    ("12f", "heterogeneity across clusters", "random-effects meta-analysis over cohorts "
                                             "(τ², I², prediction interval), forest plots"),
    ("16", "development vs evaluation data", "Protocols: cross-validation, leave one cohort "
                                             "out, external cohorts"),
    ("18e", "code and reproducibility", "seed, run_config.toml and every artifact's inputs "
                                        "with content hashes"),
    ("23a", "model performance with CIs", "Results, Meta-analysis, Calibration"),
)

#: (item, topic, why the report cannot cover it) for the items that need the study itself
NOT_COVERED = (
    ("1-4", "title, abstract, background, objectives", "the researcher's manuscript"),
    ("5b-c", "eligibility, treatment, study dates", "not in the expression and response "
                                                     "files; give them per cohort"),
    ("10", "sample size justification", "the cohorts are what was published; no power or "
                                        "minimum-sample-size calculation is made"),
    ("14", "fairness across groups", "no sex, age or ancestry subgroups are analysed"),
    ("18a-d", "protocol and registration, funding, conflicts", "outside the software"),
    ("19", "patient and public involvement", "outside the software"),
    ("20", "participant flow diagram", "counts are given, not a flow diagram"),
    ("26-27", "interpretation, limitations, implications", "the researcher's reading of these "
                                                           "results"),
)


def tripod_ai_section(has_clinical: bool = True) -> list[str]:
    """The report's TRIPOD+AI section as Markdown lines (``has_clinical``: the evaluation
    wrote the meta-analysis, calibration and decision curves)."""
    from amu_tf.evaluation.tables import to_markdown
    import pandas as pd

    covered = [row for row in COVERED if has_clinical or row[1] not in (
        "calibration", "clinical utility", "heterogeneity across clusters")]
    lines = ["## TRIPOD+AI: what this report covers", "",
             "TRIPOD+AI (Collins et al., BMJ 2024) lists what a report of a clinical "
             "prediction model must give. This report covers the items below; the others need "
             "the study itself and are the researcher's to add.", ""]
    lines += [to_markdown(pd.DataFrame(covered, columns=["item", "topic", "where"]),
                          index=False), ""]
    lines += ["Not covered here:", "",
              to_markdown(pd.DataFrame(NOT_COVERED, columns=["item", "topic", "why"]),
                          index=False), ""]
    return lines


__all__ = ["COVERED", "NOT_COVERED", "tripod_ai_section"]
