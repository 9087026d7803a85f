"""Metrics: the vectorised bootstrap equals scikit-learn, CIs are sane and seeded."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from amu_tf.errors import InputDataError
from amu_tf.evaluation.metrics import (
    METRICS,
    fast_metrics,
    metrics_with_ci,
    sklearn_metrics,
    stratified_bootstrap_indices,
)


@settings(max_examples=100, deadline=None)
@given(st.integers(4, 60), st.integers(0, 10_000), st.booleans())
def test_fast_metrics_equal_sklearn(n, seed, ties):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1
    p = rng.integers(0, 4, n) / 3 if ties else rng.random(n)
    pred = rng.integers(0, 2, n)
    a, b = sklearn_metrics(y, p, pred), fast_metrics(y, p, pred)
    for k in METRICS:
        assert b[k][0] == pytest.approx(a[k], abs=1e-12), k


def test_named_metrics_mean_what_they_say():
    rng = np.random.default_rng(0)
    y = (rng.random(80) < 0.3).astype(int)
    p = np.clip(0.3 * y + rng.random(80) * 0.7, 0, 1)
    pred = (p >= 0.5).astype(int)
    m = sklearn_metrics(y, p, pred)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["ap_responder"] == pytest.approx(average_precision_score(y, p))
    ap0 = average_precision_score(1 - y, 1 - p)
    assert m["map_paper"] == pytest.approx((m["ap_responder"] + ap0) / 2)
    assert m["map_paper"] > m["ap_responder"]  # non-responders are the majority here
    assert m["f1_weighted"] == pytest.approx(f1_score(y, pred, average="weighted"))
    assert m["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))


def test_stratified_bootstrap_keeps_class_counts():
    y = np.array([1] * 7 + [0] * 20)
    idx = stratified_bootstrap_indices(y, n_boot=50, seed=3)
    assert idx.shape == (50, 27)
    assert (y[idx].sum(1) == 7).all()


def test_ci_brackets_the_estimate_narrows_with_n_and_is_seeded():
    def sample(n, seed):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, n)
        p = np.clip(0.25 * y + rng.normal(0.4, 0.2, n), 0, 1)
        return y, p, (p >= 0.5).astype(int)

    small = metrics_with_ci(*sample(60, 1), n_boot=500, seed=0)
    big = metrics_with_ci(*sample(1500, 1), n_boot=500, seed=0)
    for k in METRICS:
        assert small[k]["ci_low"] <= small[k]["value"] <= small[k]["ci_high"], k
    assert (big["roc_auc"]["ci_high"] - big["roc_auc"]["ci_low"]) < \
        (small["roc_auc"]["ci_high"] - small["roc_auc"]["ci_low"]) / 2
    again = metrics_with_ci(*sample(60, 1), n_boot=500, seed=0)
    assert again == small


def test_repeats_average_and_share_resamples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    p1, p2 = rng.random(50), rng.random(50)
    preds = np.vstack([p1 > .5, p2 > .5]).astype(int)
    m = metrics_with_ci(y, np.vstack([p1, p2]), preds, n_boot=200)
    assert m["roc_auc"]["value"] == pytest.approx((roc_auc_score(y, p1) + roc_auc_score(y, p2)) / 2)


def test_single_class_gives_nan_auc_not_a_crash():
    m = metrics_with_ci([1, 1, 1], [0.2, 0.6, 0.9], [0, 1, 1], n_boot=100)
    assert np.isnan(m["roc_auc"]["value"]) and np.isnan(m["roc_auc"]["ci_low"])
    assert m["accuracy"]["value"] == pytest.approx(2 / 3)


def test_bad_inputs():
    with pytest.raises(InputDataError):
        sklearn_metrics([0, 1], [0.5], [0, 1])
    with pytest.raises(InputDataError):
        sklearn_metrics([0, 1], [0.5, np.nan], [0, 1])
