"""The model `amu run` recommends for a new cohort is measured: the one that beats
recipe:consensus under leave-one-cohort-out with a paired CI above 0 and loses on no cohort."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from amu_tf.evaluation.protocols import ProtocolResult
from amu_tf.evaluation.recommendation import BASELINE, recommend, recommendation_markdown

COHORTS = {"A": 60, "B": 60, "C": 60}


def _result(scores: dict, protocol="loco", leaky=False) -> ProtocolResult:
    """A leave-one-cohort-out result whose models score each row by ``scores[model](y, rng)``."""
    rng = np.random.default_rng(0)
    cohort = np.concatenate([[c] * n for c, n in COHORTS.items()])
    y = np.tile([0, 1], len(cohort) // 2)
    rows = []
    for m, f in scores.items():
        p = np.asarray(f(y, cohort, np.random.default_rng(rng.integers(1 << 30))), float)
        rows.append(pd.DataFrame({"model": m, "repeat": 0, "row": np.arange(len(y)),
                                  "cohort": cohort, "y": y, "p": p}))
    return ProtocolResult(protocol=protocol, leaky=leaky, description="", models=list(scores),
                          predictions=pd.concat(rows, ignore_index=True),
                          metrics=pd.DataFrame())


def _noise(y, cohort, rng):  # chance
    return rng.random(len(y))


def _signal(strength):
    def f(y, cohort, rng):
        return y * strength + rng.normal(size=len(y))
    return f


def test_a_model_measurably_better_everywhere_is_recommended():
    res = _result({BASELINE: _noise, "strong": _signal(2.0), "weak": _signal(0.05)})
    rec = recommend(res, n_boot=300)
    assert rec["recommended"] == "strong" and rec["baseline"] == BASELINE
    by = {r["model"]: r for r in rec["candidates"]}
    assert by["strong"]["qualifies"] and by["strong"]["ci_low"] > 0
    assert not by["weak"]["qualifies"]  # a few hundredths with a CI through 0 does not count
    assert rec["note"] and "optimistic" in rec["note"]
    assert "strong" in "\n".join(recommendation_markdown(rec))


def test_the_baseline_stays_when_nothing_beats_it_beyond_its_ci():
    res = _result({BASELINE: _signal(1.0), "same": _signal(1.0), "worse": _noise})
    rec = recommend(res, n_boot=300)
    assert rec["recommended"] == BASELINE and rec["note"] is None
    assert not any(r["qualifies"] for r in rec["candidates"])


def test_a_model_that_loses_one_cohort_beyond_its_ci_is_not_recommended():
    def wins_two_loses_one(y, cohort, rng):  # strong on A and B, inverted on C
        s = np.where(cohort == "C", -3.0, 3.0)
        return y * s + rng.normal(size=len(y))

    def steady(y, cohort, rng):
        return y * 0.8 + rng.normal(size=len(y))

    res = _result({BASELINE: steady, "erratic": wins_two_loses_one})
    rec = recommend(res, n_boot=300)
    erratic = rec["candidates"][0]
    assert erratic["beaten_by_baseline_on"] == ["C"] and not erratic["qualifies"]
    assert rec["recommended"] == BASELINE


@pytest.mark.parametrize("kw", [{"protocol": "cv"}, {"leaky": True}])
def test_no_recommendation_without_honest_leave_one_cohort_out(kw):
    assert recommend(_result({BASELINE: _noise, "strong": _signal(2.0)}, **kw)) is None
    assert recommend(_result({"strong": _signal(2.0), "other": _noise})) is None  # no baseline


def test_amu_run_exports_the_measured_recommendation(tmp_path):
    """export_run reads the evaluation's recommendation.json: the measured model is exported
    as the recommendation (and said so); without one, the baseline when the run trained it."""
    from pipelines.run_config import RunConfig
    from pipelines.run_folder import export_choices, measured_recommendation, recommended_model

    real = RunConfig(cohorts=["a.toml"], models=["logreg", "cxcl9", BASELINE])
    ev = tmp_path / "evaluate"
    ev.mkdir()
    assert measured_recommendation(ev) is None
    assert recommended_model(real) == BASELINE  # not measured: the documented default
    (ev / "recommendation.json").write_text(json.dumps({"recommended": "cxcl9"}))
    rec = measured_recommendation(ev)
    assert recommended_model(real, rec) == "cxcl9"
    assert export_choices(real, rec) == [("cxcl9", "cxcl9")]
    synthetic = RunConfig(models=["logreg", "cxcl9", BASELINE])
    assert recommended_model(synthetic, rec) is None and export_choices(synthetic, rec) == []
    (ev / "recommendation.json").write_text("{not json")
    from amu_tf.errors import SpecError

    with pytest.raises(SpecError, match="recommendation"):
        measured_recommendation(ev)


def test_evaluate_writes_the_recommendation_and_its_report_section(tmp_path):
    """Under leave-one-cohort-out with recipe:consensus, the ModelEvaluation artifact holds
    recommendation.json, its properties name the model, and report.md shows the section."""
    from amu_tf.data.synthetic import make_synthetic_table
    from components.evaluate import run_evaluate

    table = make_synthetic_table(seed=3, n_per_cohort=40)[0]
    art, results, _ = run_evaluate(table, tmp_path / "ev", models=[BASELINE, "cxcl9", "cd8a"],
                                   protocols=["loco"], n_boot=50, progress=False)
    rec = json.loads((tmp_path / "ev" / "recommendation.json").read_text())
    assert rec["recommended"] in (BASELINE, "cxcl9", "cd8a")
    assert art.properties["recommended"] == rec["recommended"]
    assert {r["model"] for r in rec["candidates"]} == {"cxcl9", "cd8a"}
    assert rec == json.loads(json.dumps(recommend(results[0], n_boot=50)))  # what it measured
    assert "## Recommended for a new cohort" in (tmp_path / "ev" / "report.md").read_text()
    art2, _, _ = run_evaluate(table, tmp_path / "ev2", models=[BASELINE, "cxcl9"],
                              protocols=["cv"], n_splits=2, n_boot=20, progress=False)
    assert not (tmp_path / "ev2" / "recommendation.json").exists()
    assert art2.properties["recommended"] is None
