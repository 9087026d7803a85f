"""Estimators: they learn, repeat with a seed, and learn only from the rows given to fit."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve

from amu_tf.errors import InputDataError
from amu_tf.training import (
    ESTIMATORS,
    SearchedClassifier,
    ZooClassifier,
    make_estimator,
    upsample_indices,
    youden_threshold,
)
from amu_tf.training.schedules import two_step_decay

FAST_ZOO = dict(epochs=6, patience=3, batch_size=16, learning_rate=3e-3)


def separable(n=100, n_genes=160, seed=0, pos_share=0.5, shift=1.5):
    """Responders have 8 genes shifted up by ``shift`` sd: easy to separate."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < pos_share).astype(int)
    y[:2] = [0, 1]
    X = rng.normal(size=(n, n_genes)).astype("float32")
    X[:, :8] += shift * (2 * y[:, None] - 1)
    return X, y


# ------------------------------------------------------------------ threshold / upsampling
def test_youden_threshold_maximises_j():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = np.clip(0.3 * y + rng.normal(0.35, 0.2, 200), 0, 1)
    t = youden_threshold(y, s)
    pred = s >= t
    j = pred[y == 1].mean() - pred[y == 0].mean()
    fpr, tpr, _ = roc_curve(y, s)
    assert j == pytest.approx((tpr - fpr).max())
    assert 0 <= t <= 1


def test_youden_threshold_separates_perfectly_separable_scores():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    t = youden_threshold(y, s)
    assert 0.3 < t <= 0.7
    with pytest.raises(InputDataError, match="one class"):
        youden_threshold([1, 1], [0.2, 0.3])


def test_upsample_indices_balance_and_stay_inside_rows():
    y = np.array([0] * 30 + [1] * 8 + [0] * 10 + [1] * 5)
    rows = np.arange(38)  # the last 15 rows are "test" rows
    idx = upsample_indices(y, rows=rows, random_state=0)
    assert set(idx) <= set(rows)
    assert set(rows) <= set(idx)  # every training row at least once
    assert np.bincount(y[idx]).tolist() == [30, 30]
    again = upsample_indices(y, rows=rows, random_state=0)
    assert np.array_equal(idx, again)


def test_two_step_decay_values_and_config_round_trip():
    import keras

    sched = two_step_decay(1e-3, 40, fractions=(0.25, 0.5), factor=0.1)  # boundaries 10, 20
    vals = [float(sched(s)) for s in (0, 9, 10, 11, 20, 21, 100)]
    # PiecewiseConstantDecay: a boundary step still has the earlier rate
    assert vals == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])
    ser = keras.optimizers.schedules.serialize(sched)
    back = keras.optimizers.schedules.deserialize(ser)
    assert [float(back(s)) for s in (0, 11, 21)] == pytest.approx([1e-3, 1e-4, 1e-5])
    assert two_step_decay(1e-3, 100).boundaries == [50, 75]


# ------------------------------------------------------------------ make_estimator
def test_make_estimator_names():
    for name in ("amu:paper", "amu:small", "amu:tiny", "amu-ft:small", "amu-ft:base",
                 "cnn:paper", "svm", "rf", "adaboost", "xgboost", "logreg"):
        assert name in ESTIMATORS
        est = make_estimator(name, seed=3)
        assert est.seed == 3
    assert isinstance(make_estimator("amu:tiny", epochs=2), ZooClassifier)
    assert isinstance(make_estimator("logreg"), SearchedClassifier)
    with pytest.raises(ValueError, match="unknown"):
        make_estimator("amu:huge")
    with pytest.raises(ValueError, match="unknown estimator"):
        make_estimator("knn")
    # sklearn's clone works (evaluation clones an estimator per fold)
    c = clone(make_estimator("cnn:paper", epochs=4, balance="class_weight"))
    assert c.epochs == 4 and c.balance == "class_weight"


# ------------------------------------------------------------------ ZooClassifier
@pytest.mark.slow
def test_zoo_classifier_learns_separable_problem():
    X, y = separable(n=120, seed=1)
    est = make_estimator("amu:tiny", seed=0, epochs=15, patience=5, batch_size=16,
                         learning_rate=3e-3).fit(X[:80], y[:80])
    p = est.predict_proba(X[80:])
    assert p.shape == (40, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert roc_auc_score(y[80:], p[:, 1]) > 0.9
    assert est.threshold_method_ == "youden_inner_val"
    assert 1 <= est.best_epoch_ <= est.epochs_run_ == len(est.history_["loss"])
    assert set(est.predict(X[80:])) <= {0, 1}


def test_zoo_classifier_same_seed_same_predictions():
    X, y = separable(n=60, seed=2)
    a = ZooClassifier("cnn:paper", seed=5, **FAST_ZOO).fit(X[:40], y[:40])
    b = ZooClassifier("cnn:paper", seed=5, **FAST_ZOO).fit(X[:40], y[:40])
    c = ZooClassifier("cnn:paper", seed=6, **FAST_ZOO).fit(X[:40], y[:40])
    pa, pb, pc = (e.predict_proba(X[40:]) for e in (a, b, c))
    assert np.array_equal(pa, pb)
    assert a.threshold_ == b.threshold_
    assert not np.array_equal(pa, pc)  # the seed is what makes them equal


def test_zoo_upsampling_copies_never_cross_the_inner_split():
    X, y = separable(n=60, seed=4, pos_share=0.25)
    est = ZooClassifier("cnn:paper", seed=0, balance="upsample", **FAST_ZOO).fit(X, y)
    tr, va = est.inner_train_indices_, est.inner_val_indices_
    assert len(set(tr) & set(va)) == 0
    assert set(tr) | set(va) == set(range(len(y)))
    assert len(tr) > len(set(tr))  # copies were made ...
    assert np.bincount(y[tr]).tolist()[0] == np.bincount(y[tr]).tolist()[1]  # ... to balance
    assert np.bincount(y[va]).min() >= 1  # stratified: both classes in the validation part
    # the frozen threshold is Youden's J on the inner validation rows, nothing else
    p_val = est.predict_proba(X[va])[:, 1]
    assert est.threshold_ == pytest.approx(youden_threshold(y[va], p_val))


def test_zoo_inner_split_keeps_patients_together():
    X, y = separable(n=60, seed=13)
    patients = np.arange(60) // 2  # two samples per patient, same label
    y = y[patients * 2]
    est = ZooClassifier("cnn:paper", epochs=1, batch_size=16).fit(X, y, groups=patients)
    tr_p = set(patients[est.inner_train_indices_])
    va_p = set(patients[est.inner_val_indices_])
    assert va_p and not tr_p & va_p
    assert len(np.unique(y[est.inner_val_indices_])) == 2


def test_zoo_class_weight_and_no_validation_split():
    X, y = separable(n=40, seed=5, pos_share=0.3)
    est = ZooClassifier("cnn:paper", balance="class_weight", validation_fraction=0,
                        epochs=3, batch_size=16).fit(X, y)
    assert len(est.inner_val_indices_) == 0
    assert sorted(est.inner_train_indices_) == list(range(40))  # no copies
    assert est.threshold_method_ == "youden_train" and est.best_epoch_ == 3
    fixed = ZooClassifier("cnn:paper", threshold=0.3, schedule="two_step", optimizer="adamw",
                          epochs=2, batch_size=16).fit(X, y)
    assert fixed.threshold_ == 0.3 and fixed.threshold_method_ == "fixed"


@pytest.mark.tensorflow_only
def test_zoo_classifier_strategies_agree_on_one_cpu():
    import tensorflow as tf

    X, y = separable(n=40, seed=15)
    ref = ZooClassifier("cnn:paper", epochs=2, seed=1).fit(X, y).predict_proba(X)
    for strategy in ("mirrored", tf.distribute.OneDeviceStrategy("/cpu:0")):
        est = ZooClassifier("cnn:paper", epochs=2, seed=1, strategy=strategy).fit(X, y)
        np.testing.assert_allclose(est.predict_proba(X), ref, atol=1e-6)
    with pytest.raises(ValueError):  # message may come from training.distribution_strategy
        ZooClassifier("cnn:paper", epochs=1, strategy="tpu-pod").fit(X, y)


def test_zoo_classifier_save_load_round_trip(tmp_path):
    X, y = separable(n=50, seed=6)
    est = ZooClassifier("amu:tiny", seed=1, **FAST_ZOO).fit(X[:40], y[:40])
    est.save(tmp_path / "m")
    back = ZooClassifier.load(tmp_path / "m")
    assert np.allclose(back.predict_proba(X[40:]), est.predict_proba(X[40:]), atol=1e-6)
    assert back.threshold_ == est.threshold_ and back.get_params() == est.get_params()
    assert back.history_ == est.history_
    assert not list((tmp_path / "m").glob("*.pkl"))


def test_zoo_classifier_errors():
    X, y = separable(n=40, seed=7)
    with pytest.raises(InputDataError, match="single class"):
        ZooClassifier("cnn:paper", epochs=1).fit(X, np.zeros(40, dtype=int))
    few = np.array([1, 1, 1] + [0] * 37)
    with pytest.raises(InputDataError, match="each class needs at least 5"):
        ZooClassifier("cnn:paper", epochs=1).fit(X, few)
    bad = X.copy()
    bad[3, 7] = np.nan
    with pytest.raises(InputDataError, match="non-finite"):
        ZooClassifier("cnn:paper", epochs=1).fit(bad, y)
    with pytest.raises(InputDataError, match="gene columns"):
        ZooClassifier("cnn:paper", epochs=1).fit(X[:, :100], y)
    with pytest.raises(InputDataError, match="missing label"):
        ZooClassifier("cnn:paper", epochs=1).fit(X, np.where(np.arange(40) == 0, np.nan, y))


# ------------------------------------------------------------------ baselines
@pytest.mark.parametrize(
    "name,params",
    [("logreg", {}), ("svm", {}), ("rf", {"n_iter": 2}), ("adaboost", {}),
     ("xgboost", {"n_iter": 2})],
)
def test_baselines_fit_and_expose_threshold(name, params):
    if name == "adaboost":
        params = {"param_grid": {"n_estimators": [20, 50]}}
    X, y = separable(n=90, n_genes=30, seed=8)
    est = make_estimator(name, seed=0, **params).fit(X[:60], y[:60])
    p = est.predict_proba(X[60:])
    assert p.shape == (30, 2)
    assert roc_auc_score(y[60:], p[:, 1]) > 0.85
    assert 0 <= est.threshold_ <= 1 and est.threshold_method_ == "youden_oof"
    # threshold = Youden on out-of-fold predictions of the training rows only
    assert len(est.oof_proba_) == 60
    assert est.threshold_ == pytest.approx(youden_threshold(y[:60], est.oof_proba_))
    assert est.best_params_
    np.testing.assert_array_equal(est.predict(X[60:]), (p[:, 1] >= est.threshold_).astype(int))


def test_baseline_threshold_independent_of_test_rows():
    X, y = separable(n=120, n_genes=20, seed=9)
    train = np.arange(70)
    thresholds = []
    for test in (np.arange(70, 95), np.arange(95, 120)):
        est = make_estimator("logreg", seed=0).fit(X[train], y[train])
        est.predict(X[test])
        thresholds.append(est.threshold_)
    assert thresholds[0] == thresholds[1]


def test_same_seed_same_baseline():
    X, y = separable(n=80, n_genes=20, seed=10)
    a = make_estimator("rf", seed=2, n_iter=2).fit(X, y)
    b = make_estimator("rf", seed=2, n_iter=2).fit(X, y)
    assert a.best_params_ == b.best_params_ and a.threshold_ == b.threshold_
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


_SEEN: list = []


class _Recording(ClassifierMixin, BaseEstimator):
    """Logistic regression that records the ids (column 0) of every row it is fitted on."""

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        _SEEN.append(set(np.asarray(X)[:, 0].astype(int).tolist()))
        self.clf_ = LogisticRegression(C=self.C).fit(X[:, 1:], y)
        self.classes_ = self.clf_.classes_
        return self

    def predict_proba(self, X):
        return self.clf_.predict_proba(X[:, 1:])

    def decision_function(self, X):
        return self.clf_.decision_function(X[:, 1:])

    def predict(self, X):
        return self.clf_.predict(X[:, 1:])


def test_nested_search_never_sees_outer_test_rows():
    from sklearn.model_selection import StratifiedKFold

    X, y = separable(n=90, n_genes=6, seed=11)
    X = np.column_stack([np.arange(90), X]).astype("float32")  # column 0 = row id
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        _SEEN.clear()
        est = SearchedClassifier(_Recording(), {"C": [0.1, 1.0]}, inner_cv=3).fit(X[tr], y[tr])
        seen = set().union(*_SEEN)
        assert seen == set(tr.tolist())  # every training row, no test row
        assert not seen & set(te.tolist())
        # search: 2 candidates x 3 folds; out-of-fold threshold: 3; final refit: 1
        assert len(_SEEN) == 2 * 3 + 3 + 1
        for inner_tr, inner_te in est.inner_splits_:
            assert not set(inner_tr) & set(inner_te)
        est.predict_proba(X[te])


def test_nested_search_keeps_patients_inside_one_inner_fold():
    X, y = separable(n=90, n_genes=10, seed=14)
    patients = np.arange(90) // 3
    y = y[patients * 3]
    est = make_estimator("logreg", inner_cv=3).fit(X, y, groups=patients)
    for tr, te in est.inner_splits_:
        assert not set(patients[tr]) & set(patients[te])
    with pytest.raises(InputDataError, match="too few patients"):
        make_estimator("logreg", inner_cv=3).fit(X, y, groups=np.arange(90) % 2)


def test_baseline_errors():
    X, y = separable(n=30, n_genes=10, seed=12)
    with pytest.raises(InputDataError, match="single class"):
        make_estimator("logreg").fit(X, np.ones(30, dtype=int))
    few = np.array([1, 1] + [0] * 28)
    with pytest.raises(InputDataError, match="inner 3-fold CV.*at least 3"):
        make_estimator("svm").fit(X, few)
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(InputDataError, match="non-finite"):
        make_estimator("logreg").fit(bad, y)
    with pytest.raises(InputDataError, match="only binary"):
        make_estimator("logreg").fit(X, np.arange(30) % 3)
