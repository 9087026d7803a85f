"""Calibration (issue #24, item 3): Brier, calibration intercept and slope against hand and
simulated references, notes for small / one-class / separable cohorts, the reliability
diagram, and the calibrator fitted only on the rows given to fit."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from amu_tf.errors import InputDataError
from amu_tf.evaluation import calibration as cal


def _sim(n=4000, seed=0, spread=1.5):
    rng = np.random.default_rng(seed)
    lp = rng.normal(scale=spread, size=n)
    p = 1 / (1 + np.exp(-lp))
    y = (rng.random(n) < p).astype(int)
    return y, p, lp


def test_brier_by_hand():
    y = [1, 0, 1, 0]
    p = [0.8, 0.4, 0.5, 0.0]
    assert cal.brier_score(y, p) == pytest.approx((0.04 + 0.16 + 0.25 + 0.0) / 4)


def test_well_calibrated_slope_one_intercept_zero_and_overfit_slope_below_one():
    y, p, lp = _sim()
    good = cal.calibration_metrics(y, p, n_boot=200)
    assert good["note"] == ""
    assert good["slope_ci_low"] < 1 < good["slope_ci_high"]
    assert abs(good["slope"] - 1) < 0.1 and abs(good["intercept"]) < 0.1
    assert good["brier_ci_low"] < good["brier"] < good["brier_ci_high"]
    overfit = cal.calibration_metrics(y, 1 / (1 + np.exp(-2 * lp)), n_boot=0)
    assert overfit["slope"] == pytest.approx(0.5, abs=0.06) and overfit["slope_ci_high"] < 1
    assert overfit["brier"] > good["brier"]
    over_predicting = cal.calibration_metrics(y, 1 / (1 + np.exp(-(lp + 1))), n_boot=0)
    assert over_predicting["intercept"] == pytest.approx(-1, abs=0.1)


def test_intercept_is_the_offset_mle_by_hand():
    y, p, lp = _sim(n=300, seed=3)
    a, se = cal.calibration_intercept(y, p)
    # the score equation of the intercept-only model with offset: sum(y) = sum(expit(a + lp))
    hand = brentq(lambda t: y.sum() - (1 / (1 + np.exp(-(t + lp)))).sum(), -5, 5)
    assert a == pytest.approx(hand, abs=1e-6)
    q = 1 / (1 + np.exp(-(a + lp)))
    assert se == pytest.approx(1 / np.sqrt((q * (1 - q)).sum()), rel=1e-4)


def test_small_single_class_and_separable_cohorts_get_notes():
    y, p, _ = _sim(n=300, seed=1)
    cohorts = np.array(["big"] * 300 + ["small"] * 6 + ["one"] * 5 + ["sep"] * 12)
    y = np.concatenate([y, [1, 0, 0, 0, 0, 1], [0] * 5, [0] * 6 + [1] * 6])
    p = np.concatenate([p, [0.5] * 6, [0.2] * 5, np.linspace(0.1, 0.3, 6), np.linspace(0.6, 0.9, 6)])
    t = cal.calibration_per_cohort(y, p, cohorts, n_boot=50).set_index("cohort")
    assert list(t.index) == ["big", "small", "one", "sep", "pooled"]
    assert t.loc["big", "note"] == "" and np.isfinite(t.loc["big", "slope"])
    assert t.loc["small", "note"].startswith("too small for a calibration slope")
    assert np.isfinite(t.loc["small", "brier"]) and np.isnan(t.loc["small", "slope"])
    assert t.loc["one", "note"].startswith("one class only")
    assert t.loc["one", "brier"] == pytest.approx(0.04)
    assert t.loc["sep", "note"].startswith("separable") and np.isfinite(t.loc["sep", "intercept"])
    assert t.loc["pooled", "n"] == len(y)


def test_from_predictions_reliability_curve_and_figure(tmp_path):
    y, p, _ = _sim(n=400, seed=2)
    preds = pd.concat([pd.DataFrame({"model": m, "y": y, "p": q, "cohort": np.repeat(["A", "B"], 200)})
                       for m, q in (("calibrated", p), ("overfit", p ** 3 / (p ** 3 + (1 - p) ** 3)))])
    t = cal.calibration_from_predictions(preds, n_boot=0)
    assert len(t) == 6 and set(t["cohort"]) == {"A", "B", "pooled"}
    rc = cal.reliability_curve([0, 1, 1, 0, 1, 1], [0.1, 0.2, 0.6, 0.7, 0.8, 0.9], n_bins=2,
                               strategy="uniform")
    assert rc["n"].tolist() == [2, 4]
    assert rc["observed_rate"].tolist() == [0.5, 0.75]
    assert rc["mean_p"].tolist() == pytest.approx([0.15, 0.75])
    paths = cal.write_reliability_figure(preds, tmp_path / "reliability_loco")
    assert [q.suffix for q in paths] == [".png", ".svg"] and all(q.stat().st_size > 1000 for q in paths)
    with pytest.raises(InputDataError, match="within"):
        cal.calibration_metrics([0, 1], [0.2, 1.2])


class _Spy(ClassifierMixin, BaseEstimator):
    """Records which rows (column 0 holds the row id) it is fitted on; overconfident."""

    seen = []

    def __init__(self, sharpen=4.0):
        self.sharpen = sharpen

    def fit(self, X, y, groups=None):
        X = np.asarray(X)
        _Spy.seen.append((set(X[:, 0].astype(int)), None if groups is None else set(groups)))
        self.lr_ = LogisticRegression().fit(X[:, 1:], y)
        self.classes_ = self.lr_.classes_
        return self

    def predict_proba(self, X):
        lp = self.lr_.decision_function(np.asarray(X)[:, 1:]) * self.sharpen
        p = 1 / (1 + np.exp(-lp))
        return np.column_stack([1 - p, p])


def test_calibrator_uses_only_training_rows_respects_groups_and_improves_calibration():
    rng = np.random.default_rng(0)
    n = 900
    x = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ [1.0, -0.5, 0.0])))).astype(int)
    X = np.column_stack([np.arange(n), x])
    groups = np.arange(n) // 3  # patients with three samples each
    train, test = np.arange(600), np.arange(600, n)
    _Spy.seen = []
    model = cal.CalibratedClassifier(_Spy(), method="sigmoid", cv=5).fit(
        X[train], y[train], groups=groups[train])
    assert len(_Spy.seen) == 6  # 5 out-of-fold fits and the final one
    for rows, grp in _Spy.seen:
        assert rows <= set(train)
    for rows, _ in _Spy.seen[:5]:  # a patient's samples are all in or all out of a fold
        held = set(train) - rows
        assert not ({g for g in groups[list(rows)]} & {g for g in groups[list(held)]})
    raw = _Spy().fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    p = model.predict_proba(X[test])[:, 1]
    before = cal.calibration_metrics(y[test], raw, n_boot=0)
    after = cal.calibration_metrics(y[test], p, n_boot=0)
    assert before["slope"] < 0.5 and abs(after["slope"] - 1) < 0.3
    assert after["brier"] < before["brier"]
    assert ((p >= model.threshold_) == (model.predict(X[test]) == 1)).all()
    iso = cal.CalibratedClassifier(_Spy(), method="isotonic", cv=3).fit(X[train], y[train])
    assert cal.brier_score(y[test], iso.predict_proba(X[test])[:, 1]) < before["brier"]
    with pytest.raises(InputDataError, match="calibration method"):
        cal.CalibratedClassifier(_Spy(), method="beta").fit(X[train], y[train])
