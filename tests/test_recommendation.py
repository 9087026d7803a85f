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


def test_without_resamples_nothing_qualifies_and_the_report_says_n_a():
    """n_boot=0 gives no CI: nothing is 'measurably' better, and the record survives JSON
    (NaN -> null) into the report's table as n/a."""
    from amu_tf.artifacts import to_jsonable

    rec = recommend(_result({BASELINE: _noise, "strong": _signal(2.0)}), n_boot=0)
    assert rec["recommended"] == BASELINE
    back = json.loads(json.dumps(to_jsonable(rec)))
    text = "\n".join(recommendation_markdown(back))
    assert "n/a" in text and "strong" in text


def test_many_candidates_raise_the_bar():
    """The pooled CI is Bonferroni-adjusted over the candidates: a modest win that qualifies
    alone does not among forty chance-level others."""
    alone = recommend(_result({BASELINE: _noise, "modest": _signal(0.45)}), n_boot=400)
    crowd = {BASELINE: _noise, "modest": _signal(0.45)}
    crowd.update({f"noise{i}": _noise for i in range(40)})
    many = recommend(_result(crowd), n_boot=400)
    m1 = next(r for r in alone["candidates"] if r["model"] == "modest")
    m2 = next(r for r in many["candidates"] if r["model"] == "modest")
    assert m2["ci_low_adjusted"] < m1["ci_low_adjusted"] <= m1["ci_low"]
    assert many["alpha_adjusted"] == pytest.approx(0.05 / 41)


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


def test_export_run_exports_the_recommendation_with_its_caveat(tmp_path, monkeypatch):
    """The measured recommendation is exported and its metadata says why and with which
    caveat; a recommended model that cannot be a SavedModel is skipped with one line (served
    from its Model artifact), not a crash."""
    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.errors import ArtifactError
    from amu_tf.serving import read_metadata
    from components.evaluate import run_evaluate
    from components.train import run_train
    from pipelines.run_config import RunConfig
    from pipelines.run_folder import export_run

    table = make_synthetic_table(seed=3, n_per_cohort=40)[0]
    models = [BASELINE, "cxcl9"]
    run_evaluate(table, tmp_path / "evaluate", models=models, protocols=["loco"], n_boot=50,
                 progress=False)
    for m in models:
        run_train(table, tmp_path / "train" / m.replace(":", "_"), model=m)
    rec_file = tmp_path / "evaluate" / "recommendation.json"
    rec = json.loads(rec_file.read_text())
    rec.update(recommended="cxcl9", note="a test's stand-in caveat")  # as if cxcl9 had won
    rec_file.write_text(json.dumps(rec))
    config = RunConfig(cohorts=["a.toml"], models=models, export_dir=str(tmp_path / "sm"))
    said = []
    out = export_run(tmp_path, config, tmp_path / "evaluate", say=said.append, force=True)
    assert list(out) == ["cxcl9"]
    meta = read_metadata(out["cxcl9"].properties["path"])
    assert meta["recommended_for_a_new_cohort"]["note"] == "a test's stand-in caveat"
    assert "Bonferroni" in meta["recommended_for_a_new_cohort"]["rule"]
    assert any("recommended for a new cohort: measured" in s for s in said)

    def cannot(model_dir, **kw):
        raise ArtifactError("no graph for this model")

    monkeypatch.setattr("components.export.run_export", cannot)
    said.clear()
    assert export_run(tmp_path, config, tmp_path / "evaluate", say=said.append) == {}
    assert any("not exported as a SavedModel" in s and "amu predict --model" in s
               for s in said)
