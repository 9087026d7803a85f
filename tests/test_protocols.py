"""Protocols: fitted things see training rows only, thresholds are frozen, the paper's
protocol shows its leak on data without signal, and models learn real signal."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier

from amu_tf.data.cohort_table import gene_columns
from amu_tf.data.synthetic import make_synthetic_table
from amu_tf.errors import InputDataError
from amu_tf.evaluation.protocols import run_protocol


class SpyTransform:
    """A z-score that records the sample ids of every fit (shared log across copies)."""

    def __init__(self, log):
        self.log = log

    def fit(self, table):
        self.log.append(list(table["sample"].astype(str)))
        X = table[gene_columns()].to_numpy(float)
        self.mu_, self.sd_ = np.nanmean(X, 0), np.nanstd(X, 0) + 1e-6
        return self

    def transform(self, table):
        return np.nan_to_num((table[gene_columns()].to_numpy(float) - self.mu_) / self.sd_)

    def __deepcopy__(self, memo):
        return SpyTransform(self.log)


class SpyClassifier(ClassifierMixin, BaseEstimator):
    """Scores by the first gene; records how many rows it was fitted on; fixed threshold."""

    fits = []

    def __init__(self, threshold=0.7):
        self.threshold = threshold

    def fit(self, X, y, groups=None):
        SpyClassifier.fits.append((len(X), None if groups is None else set(groups)))
        self.classes_ = np.array([0, 1])
        self.threshold_ = self.threshold
        return self

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-X[:, 0]))
        return np.column_stack([1 - p, p])


class RF(RandomForestClassifier):
    """A plain random forest with the estimator contract (a frozen threshold_)."""

    def fit(self, X, y, groups=None):
        super().fit(X, y)
        self.threshold_ = 0.5
        return self


@pytest.fixture(scope="module")
def null_table():
    return make_synthetic_table(seed=3, signal=False)[0]


@pytest.fixture(scope="module")
def signal_table():
    return make_synthetic_table(seed=1, signal=True)[0]


@pytest.mark.parametrize("protocol", ["cv", "loco"])
def test_transform_and_estimator_fit_on_training_rows_only(null_table, protocol):
    log = []
    SpyClassifier.fits = []
    r = run_protocol(null_table, protocol, {"spy": SpyClassifier(0.7)},
                     transform=SpyTransform(log), n_splits=4, n_repeats=2, n_boot=0,
                     progress=False)
    assert len(log) == len(r.folds) == len(SpyClassifier.fits)
    preds = r.predictions
    for (rep, fold), fit_samples, (n_fit, fit_groups) in zip(
            [(f["repeat"], f["fold"]) for f in r.folds], log, SpyClassifier.fits):
        test = preds[(preds["repeat"] == rep) & (preds["fold"] == fold)]
        assert not set(fit_samples) & set(test["sample"])
        assert not fit_groups & set(test["patient"])  # inner splits get patients as groups
        assert n_fit == len(fit_samples) == len(null_table.dropna(subset=["response"])) - len(test)
    # scored at the frozen threshold, not one chosen on test rows
    assert (preds["threshold"] == 0.7).all()
    assert ((preds["p"] >= 0.7).astype(int) == preds["pred"]).all()
    # unlabeled rows are neither trained on nor scored
    unlabeled = set(null_table.loc[null_table["response"].isna(), "sample"])
    assert unlabeled and not unlabeled & set(preds["sample"])
    assert not unlabeled & set(s for fit in log for s in fit)


def test_paper_protocol_shows_the_leak_on_data_without_signal(null_table):
    rf = {"rf": RF(n_estimators=150, random_state=0, n_jobs=1)}
    honest = {p: run_protocol(null_table, p, rf, transform=SpyTransform([]), n_boot=200,
                              progress=False) for p in ("cv", "loco")}
    leaky = run_protocol(null_table, "paper", rf, transform=SpyTransform([]), n_boot=200,
                         n_repeats=2, progress=False)
    for p, r in honest.items():
        auc = r.metrics["roc_auc"].iloc[0]
        assert 0.35 < auc < 0.65, (p, auc)
        assert not r.leaky and r.label == p
    paper_auc = leaky.metrics["roc_auc"].iloc[0]
    assert paper_auc > 0.75
    assert paper_auc > max(r.metrics["roc_auc"].iloc[0] for r in honest.values()) + 0.2
    assert leaky.leaky and leaky.label == "paper (LEAKY)"
    assert leaky.metrics["leaky"].all() and leaky.predictions["leaky"].all()
    assert "LEAKY" in leaky.description


def test_metrics_have_cis_and_loco_reports_each_cohort(signal_table):
    r = run_protocol(signal_table, "loco", {"rf": RF(n_estimators=50, random_state=0)},
                     transform=SpyTransform([]), n_boot=200, progress=False)
    row = r.metrics.iloc[0]
    assert row["roc_auc_ci_low"] < row["roc_auc"] < row["roc_auc_ci_high"]
    assert sorted(r.per_cohort["cohort"]) == sorted(signal_table["cohort"].unique())


@pytest.mark.slow
def test_amu_and_logreg_learn_the_planted_signal_under_cv(signal_table):
    r = run_protocol(signal_table, "cv", ["logreg", "amu:small"], transform="cohort_z",
                     n_splits=3, n_boot=200, progress=False,
                     estimator_params={"amu:small": {"epochs": 40, "patience": 8}})
    auc = dict(zip(r.metrics["model"], r.metrics["roc_auc"]))
    assert auc["logreg"] > 0.75, auc
    assert auc["amu:small"] > 0.75, auc


def test_single_class_training_set_is_refused(signal_table):
    t = signal_table.copy()
    t.loc[t["cohort"] == "SYN_TPM_A", "response"] = 1.0
    with pytest.raises(InputDataError, match="training rows hold only one class"):
        run_protocol(t, "external", {"rf": RF()}, transform=SpyTransform([]),
                     train_cohorts=["SYN_TPM_A"], n_boot=0, progress=False)


def test_too_few_samples_for_the_folds(signal_table):
    t = signal_table.groupby("response", group_keys=False).head(3)
    with pytest.raises(InputDataError, match="too few samples for 5-fold cv"):
        run_protocol(t, "cv", {"rf": RF()}, transform=SpyTransform([]), progress=False)


def test_cohort_without_labels_is_refused(signal_table):
    t = signal_table.copy()
    t.loc[t["cohort"] == "SYN_TPM_B", "response"] = np.nan
    with pytest.raises(InputDataError, match="'SYN_TPM_B' has no labeled samples"):
        run_protocol(t, "loco", {"rf": RF()}, transform=SpyTransform([]), progress=False)
    with pytest.raises(InputDataError, match="'SYN_TPM_B' has no labeled samples"):
        run_protocol(t, "external", {"rf": RF()}, transform=SpyTransform([]),
                     train_cohorts=["SYN_TPM_A"], test_cohorts=["SYN_TPM_B"], progress=False)


def test_unknown_protocol():
    with pytest.raises(InputDataError, match="unknown protocol"):
        run_protocol(pd.DataFrame({"response": [1, 0]}), "holdout", ["rf"])
