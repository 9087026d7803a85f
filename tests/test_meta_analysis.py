"""Meta-analysis across cohorts (issue #24, item 2): DeLong AUC, log OR per SD, random-effects
pooling checked against hand computations, notes instead of crashes, forest plots."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from amu_tf.errors import InputDataError
from amu_tf.evaluation import meta_analysis as ma


def _hand_dl(y, v):
    """DerSimonian-Laird by hand (Borenstein et al. 2009, ch. 12)."""
    y, v = np.asarray(y, float), np.asarray(v, float)
    w = 1 / v
    mu_fe = (w * y).sum() / w.sum()
    q = (w * (y - mu_fe) ** 2).sum()
    c = w.sum() - (w ** 2).sum() / w.sum()
    tau2 = max(0.0, (q - (len(y) - 1)) / c)
    ws = 1 / (v + tau2)
    mu = (ws * y).sum() / ws.sum()
    se = 1 / np.sqrt(ws.sum())
    i2 = max(0.0, (q - (len(y) - 1)) / q)
    return mu, se, tau2, i2, q


def test_pool_effects_equals_hand_dersimonian_laird_on_three_studies():
    eff, var = [0.5, 0.1, 0.9], [0.04, 0.09, 0.05]
    got = ma.pool_effects(eff, var, method="dl")
    mu, se, tau2, i2, q = _hand_dl(eff, var)
    assert got["k"] == 3
    assert got["estimate"] == pytest.approx(mu, rel=1e-10)
    assert got["se"] == pytest.approx(se, rel=1e-10)
    assert got["tau2"] == pytest.approx(tau2, rel=1e-10)
    assert got["i2"] == pytest.approx(i2, rel=1e-10)
    assert got["q"] == pytest.approx(q, rel=1e-10)
    assert got["q_pvalue"] == pytest.approx(stats.chi2.sf(q, 2))
    assert got["ci_low"] == pytest.approx(mu - 1.959964 * se, rel=1e-6)
    half = stats.t.ppf(0.975, 1) * np.sqrt(tau2 + se ** 2)  # Higgins et al. 2009, k - 2 df
    assert got["pi_low"] == pytest.approx(mu - half) and got["pi_high"] == pytest.approx(mu + half)
    assert got["pi_low"] < got["ci_low"] and got["pi_high"] > got["ci_high"]


def test_homogeneous_studies_give_tau2_zero_and_paule_mandel_runs():
    got = ma.pool_effects([0.30, 0.31, 0.29, 0.30], [0.05, 0.04, 0.06, 0.05], method="dl")
    assert got["tau2"] == 0.0 and got["i2"] == 0.0
    w = 1 / np.array([0.05, 0.04, 0.06, 0.05])
    assert got["estimate"] == pytest.approx((w * [0.30, 0.31, 0.29, 0.30]).sum() / w.sum())
    pm = ma.pool_effects([0.5, 0.1, 0.9], [0.04, 0.09, 0.05], method="iterated")
    assert pm["method"].startswith("Paule") and np.isfinite(pm["tau2"])
    with pytest.raises(InputDataError, match="method"):
        ma.pool_effects([0.1, 0.2], [0.1, 0.1], method="reml")


def test_pool_effects_edge_counts():
    assert ma.pool_effects([], [])["note"].startswith("no cohort")
    one = ma.pool_effects([0.4, np.nan], [0.04, 0.1])
    assert one["k"] == 1 and one["estimate"] == 0.4 and "nothing to pool" in one["note"]
    assert one["ci_low"] == pytest.approx(0.4 - 1.959964 * 0.2, rel=1e-6)
    two = ma.pool_effects([0.4, 0.2], [0.04, 0.1])
    assert two["k"] == 2 and np.isnan(two["pi_low"]) and "prediction interval" in two["note"]


def test_delong_auc_matches_sklearn_and_hand_variance():
    from sklearn.metrics import roc_auc_score

    y = np.array([1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.6, 0.4, 0.5, 0.3, 0.2, 0.6])
    auc, se = ma.delong_auc(y, s)
    assert auc == pytest.approx(roc_auc_score(y, s))
    # placements by hand: responders 0.9 beats 4/4; 0.6 beats 3 ties 1 -> 3.5/4; 0.4 beats 2
    v10 = np.array([1.0, 3.5 / 4, 2 / 4])
    # non-responders: 0.5 below 2 of 3; 0.3 below 3; 0.2 below 3; 0.6 below 1, tie 1 -> 1.5
    v01 = np.array([2 / 3, 1.0, 1.0, 1.5 / 3])
    assert auc == pytest.approx(v10.mean()) and auc == pytest.approx(v01.mean())
    assert se == pytest.approx(np.sqrt(v10.var(ddof=1) / 3 + v01.var(ddof=1) / 4))


def test_log_or_per_sd_matches_statsmodels_and_is_scale_free():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    s = rng.normal(size=200)
    y = (rng.random(200) < 1 / (1 + np.exp(-(0.8 * s)))).astype(int)
    got = ma.log_odds_ratio_per_sd(y, s)
    z = (s - s.mean()) / s.std()
    ref = sm.Logit(y, sm.add_constant(z)).fit(disp=0)
    assert got["log_or"] == pytest.approx(ref.params[1]) and got["se"] == pytest.approx(ref.bse[1])
    again = ma.log_odds_ratio_per_sd(y, 10 * s + 3)  # per SD: units do not matter
    assert again["log_or"] == pytest.approx(got["log_or"], rel=1e-6)


def _three_cohorts(seed=0, effect=1.0):
    rng = np.random.default_rng(seed)
    parts = []
    for c, n in (("A", 60), ("B", 40), ("C", 50)):
        s = rng.normal(size=n)
        y = (rng.random(n) < 1 / (1 + np.exp(-effect * s))).astype(int)
        parts.append(pd.DataFrame({"cohort": c, "y": y, "s": s}))
    return pd.concat(parts, ignore_index=True)


def test_small_single_class_and_separable_cohorts_get_notes_not_crashes():
    d = _three_cohorts()
    extra = pd.DataFrame({"cohort": ["tiny"] * 4 + ["one"] * 6 + ["sep"] * 8,
                          "y": [1, 0, 0, 0] + [0] * 6 + [0, 0, 0, 0, 1, 1, 1, 1],
                          "s": [0.1, 0.2, 0.3, 0.4] + list(range(6)) + list(range(8))})
    d = pd.concat([d, extra], ignore_index=True)
    per, pooled = ma.meta_analyse(d["y"], d["s"], d["cohort"], model="m")
    notes = dict(zip(per["cohort"], per["note"]))
    assert notes["A"] == notes["B"] == notes["C"] == ""
    assert notes["tiny"].startswith("too small") and notes["one"].startswith("one class")
    assert notes["sep"].startswith("separable")
    lo = pooled[pooled["effect"] == "log_or"].iloc[0]
    assert lo["k"] == 3 and lo["cohorts_excluded"] == "tiny, one, sep"
    # the pooled log OR is the hand DL of the three usable cohorts
    ok = per[per["note"] == ""]
    mu, se, tau2, i2, _ = _hand_dl(ok["log_or"], ok["log_or_se"] ** 2)
    assert lo["estimate"] == pytest.approx(mu) and lo["tau2"] == pytest.approx(tau2)
    au = pooled[pooled["effect"] == "auc"].iloc[0]
    assert 0.5 < au["estimate"] < 1 and au["ci_low"] < au["estimate"] < au["ci_high"]
    assert (per.loc[per["note"] == "", "auc_ci_low"] < per.loc[per["note"] == "", "auc"]).all()


def test_from_predictions_averages_repeats_and_writes_forest_plots(tmp_path):
    d = _three_cohorts(seed=1)
    rows = []
    for model, sign in (("good", 1.0), ("bad", -0.2)):
        for rep in (0, 1):
            p = 1 / (1 + np.exp(-(sign * d["s"] + 0.01 * rep)))
            rows.append(pd.DataFrame({"model": model, "repeat": rep, "row": d.index,
                                      "cohort": d["cohort"], "y": d["y"], "p": p}))
    preds = pd.concat(rows, ignore_index=True)
    per, pooled = ma.meta_analysis_from_predictions(preds)
    assert set(per["model"]) == {"good", "bad"} and len(per) == 6
    assert per.groupby("model")["n"].sum().eq(len(d)).all()  # every sample once
    lo = pooled[pooled["effect"] == "log_or"].set_index("model")["estimate"]
    assert lo["good"] > 0 > lo["bad"]
    paths = ma.write_forest_plots(per, pooled, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(["forest_good.png", "forest_good.svg", "forest_bad.png",
                            "forest_bad.svg", "forest_summary.png", "forest_summary.svg"])
    for p in paths:
        assert p.stat().st_size > 1000
    assert "| good |" in ma.pooled_markdown(pooled)
    # the report reads the table back from CSV, where an empty note becomes NaN
    pooled.to_csv(tmp_path / "pooled.csv", index=False)
    back = ma.pooled_markdown(pd.read_csv(tmp_path / "pooled.csv"))
    assert "| good |" in back and "nan" not in back
    ma.forest_figure(per[per["model"] == "good"], pooled[pooled["model"] == "good"], "auc")


def test_bad_input_is_one_line_error():
    with pytest.raises(InputDataError, match="labels must be 0"):
        ma.meta_analyse([0, 2, 1], [0.1, 0.2, 0.3], ["a", "a", "a"])
    with pytest.raises(InputDataError, match="columns"):
        ma.meta_analysis_from_predictions(pd.DataFrame({"model": ["m"], "y": [1]}))
