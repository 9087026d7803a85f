"""SHAP explainer choice per model kind, on a small planted problem (genes 0-2 carry the label)."""

import numpy as np
import pandas as pd
import pytest

from amu_tf.errors import InputDataError
from amu_tf.interpretation.shap_importance import explain, mean_abs_shap, top_k_table

P = 40
GENES = [f"G{i}" for i in range(P)]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, P)).astype("float32")
    y = ((2 * X[:, 0] + 2 * X[:, 1] - 2 * X[:, 2] + rng.normal(size=240)) > 0).astype(int)
    return X[:180], y[:180], X[180:]


def _top3(res):
    return set(res.importance()["gene"].head(3))


def test_svm_pipeline_uses_permutation_explainer_and_adds_up(data):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y, Xt = data
    svm = Pipeline([("s", StandardScaler()),
                    ("c", SVC(kernel="rbf", probability=True, random_state=0))]).fit(X, y)
    res = explain(svm, Xt[:20], X, GENES, n_background=10, seed=0)
    assert res.explainer.startswith("PermutationExplainer") and "k-means" in res.explainer
    assert res.output == "probability of class 1"
    assert _top3(res) == {"G0", "G1", "G2"}
    # efficiency: attributions add up to f(x) minus the mean prediction over the background
    from sklearn.cluster import KMeans

    bg = KMeans(n_clusters=10, n_init=3, random_state=0).fit(X).cluster_centers_
    base = svm.predict_proba(bg)[:, 1].mean()
    np.testing.assert_allclose(res.values.sum(1), svm.predict_proba(Xt[:20])[:, 1] - base,
                               atol=1e-6)


def test_searched_xgboost_uses_tree_explainer(data):
    from amu_tf.training import make_estimator

    X, y, Xt = data
    est = make_estimator("xgboost", seed=0, inner_cv=2, n_iter=2).fit(X, y)
    res = explain(est, Xt, X, GENES)
    assert res.explainer == "TreeExplainer" and "log-odds" in res.output
    assert _top3(res) == {"G0", "G1", "G2"}
    # TreeExplainer is exact: the attributions add up to the booster's margin, up to one
    # constant (the base value) for every row
    margin = est.best_estimator_.predict(Xt, output_margin=True)
    assert np.std(margin - res.values.sum(1)) < 1e-4


def test_keras_gradient_explainer_and_recorded_fallback(data, monkeypatch):
    import keras
    import shap

    X, y, Xt = data
    model = keras.Sequential([keras.Input((P,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, y, epochs=40, verbose=0)
    res = explain(model, Xt[:30], X, GENES, seed=0)
    assert res.explainer.startswith("GradientExplainer") and "log-odds" in res.output
    assert _top3(res) == {"G0", "G1", "G2"}

    def broken(*a, **k):
        raise RuntimeError("no gradients on this backend")

    monkeypatch.setattr(shap, "GradientExplainer", broken)
    with pytest.warns(UserWarning, match="PermutationExplainer"):
        res2 = explain(model, Xt[:10], X, GENES, n_background=10, seed=0)
    assert res2.explainer.startswith("PermutationExplainer")
    assert any("no gradients" in n for n in res2.notes)
    assert _top3(res2) == {"G0", "G1", "G2"}


def test_zoo_classifier_is_unwrapped_to_its_keras_model(data):
    from amu_tf.training import make_estimator

    X, y, Xt = data
    Xp = np.zeros((len(X), 160), "float32")
    Xp[:, :P] = X
    est = make_estimator("amu:tiny", seed=0, epochs=2).fit(Xp, y)
    genes = [f"G{i}" for i in range(160)]
    res = explain(est, Xp[:5], Xp, genes)
    assert res.explainer.startswith("GradientExplainer")
    assert any("ZooClassifier.model_" in n for n in res.notes)
    assert res.values.shape == (5, 160)


def test_top_k_table_and_overlap():
    a = mean_abs_shap(np.array([[3.0, 2.0, 1.0, 0.0]]), ["A", "B", "C", "D"])
    b = mean_abs_shap(np.array([[0.0, 2.0, 3.0, 1.0]]), ["A", "B", "C", "D"])
    c = mean_abs_shap(np.array([[-5.0, 0.0, 0.1, 2.0]]), ["A", "B", "C", "D"])
    assert a["gene"].tolist() == ["A", "B", "C", "D"] and c["gene"].iloc[0] == "A"
    top, ov = top_k_table({"a": a, "b": b, "c": c}, k=2)
    assert top["a"].tolist() == ["A", "B"] and top["b"].tolist() == ["C", "B"]
    ov = ov.set_index("models")
    assert ov.loc["a & b", "genes"] == "B" and ov.loc["a & c", "genes"] == "A"
    assert ov.loc["a & b & c", "n_shared"] == 0 and ov.loc["b & c", "n_shared"] == 0
    assert top["c"].tolist() == ["A", "D"]
    with pytest.raises(InputDataError):
        mean_abs_shap(np.zeros((2, 3)), ["A", "B"])
