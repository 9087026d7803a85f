import numpy as np
import pandas as pd
import pytest

from amu_tf.errors import InputDataError
from amu_tf.interpretation.survival_analysis import (bh_fdr, cox_univariate, kaplan_meier,
                                                     survival_frame)


def _simulate(beta, n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    noise = rng.normal(size=n)  # a covariate with no effect
    t = rng.exponential(1.0 / (0.01 * np.exp(beta * x)))
    c = rng.uniform(0, 300, n)
    return pd.DataFrame({"os_time": np.minimum(t, c), "os_event": (t <= c).astype(int),
                         "x": x, "noise": noise})


@pytest.mark.parametrize("beta", [0.7, -0.5])
def test_cox_recovers_known_hazard_ratio(beta):
    df = _simulate(beta)
    surv = survival_frame(df)
    res = cox_univariate(surv, df[["x", "noise"]], standardize=False).set_index("covariate")
    hr = np.exp(beta)
    assert res.loc["x", "ci_low"] < hr < res.loc["x", "ci_high"]
    assert res.loc["x", "p"] < 1e-6
    assert res.loc["noise", "p"] > res.loc["x", "p"]
    assert res.loc["x", "fdr"] >= res.loc["x", "p"]


def test_cox_ci_coverage_over_replicates():
    """95% CIs: the true HR (0.5 for x, 1 for the null covariate) is covered in most runs."""
    hit_x = hit_null = 0
    for seed in range(20):
        df = _simulate(0.5, n=200, seed=seed)
        res = cox_univariate(survival_frame(df), df[["x", "noise"]], standardize=False)
        res = res.set_index("covariate")
        hit_x += res.loc["x", "ci_low"] < np.exp(0.5) < res.loc["x", "ci_high"]
        hit_null += res.loc["noise", "ci_low"] < 1.0 < res.loc["noise", "ci_high"]
    assert hit_x >= 16 and hit_null >= 16  # expected 19 of 20; P(<16) < 2%


def test_cox_standardized_is_per_sd():
    df = _simulate(0.7)
    df["x10"] = df["x"] * 10
    res = cox_univariate(survival_frame(df), df[["x", "x10"]]).set_index("covariate")
    assert res.loc["x", "hr"] == pytest.approx(res.loc["x10", "hr"], rel=1e-4)


def test_missing_survival_columns_clear_message():
    with pytest.raises(InputDataError, match="os_time"):
        survival_frame(pd.DataFrame({"a": [1, 2]}))
    df = pd.DataFrame({"os_time": [np.nan] * 20, "os_event": [np.nan] * 20})
    with pytest.raises(InputDataError, match="too little survival"):
        survival_frame(df)


def test_kaplan_meier_separates_groups(tmp_path):
    rng = np.random.default_rng(1)
    g = np.repeat([0, 1], 100)
    t = rng.exponential(np.where(g == 1, 500.0, 150.0))
    df = pd.DataFrame({"os_time": t, "os_event": 1})
    res = kaplan_meier(survival_frame(df), g, tmp_path / "km.png")
    assert res["logrank_p"] < 1e-4
    assert res["median_group1"] > res["median_group0"]
    assert (tmp_path / "km.png").stat().st_size > 1000
    same = kaplan_meier(survival_frame(df), rng.integers(0, 2, 200))
    assert same["logrank_p"] > 0.001
    with pytest.raises(InputDataError, match="same group"):
        kaplan_meier(survival_frame(df), np.zeros(200))


def test_bh_fdr_matches_definition():
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan])
    q = bh_fdr(p)
    # sorted p: .01 .03 .04 .2 (m = 4) -> .04 .0533 .0533 .2
    np.testing.assert_allclose(q[:4], [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert np.isnan(q[4])


def test_cox_strata_remove_cohort_confounding():
    """Two cohorts with different baseline hazards and different covariate means: unstratified
    Cox finds a spurious effect, stratified Cox does not."""
    rng = np.random.default_rng(3)
    n = 400
    cohort = np.repeat(["A", "B"], n // 2)
    x = rng.normal(size=n) + np.where(cohort == "B", 2.0, 0.0)
    t = rng.exponential(np.where(cohort == "B", 50.0, 500.0))  # x has no effect within cohort
    df = pd.DataFrame({"os_time": t, "os_event": 1, "x": x})
    surv = survival_frame(df)
    plain = cox_univariate(surv, df[["x"]]).iloc[0]
    strat = cox_univariate(surv, df[["x"]], strata=pd.Series(cohort)).iloc[0]
    assert plain["p"] < 1e-6
    assert strat["ci_low"] < 1.0 < strat["ci_high"]
