"""Training recipes: params as data, applied as defaults, explicit params win, repeatable."""

import keras
import numpy as np
import pytest
from sklearn.base import clone

from amu_tf.training import ZooClassifier
from amu_tf.training.recipes import RECIPES, get_recipe, resolve_params


def separable(n=60, n_genes=160, seed=0):
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    X = rng.normal(size=(n, n_genes)).astype("float32")
    X[:, :8] += 1.5 * (2 * y[:, None] - 1)
    return X, y


def test_recipes_are_data_and_copies():
    assert RECIPES["paper"]["learning_rate"] == 1e-5
    assert RECIPES["paper"]["epochs"] == 2000
    assert RECIPES["fast"]["optimizer"] == "adamw"
    r = get_recipe("fast")
    r["learning_rate"] = 99.0
    assert RECIPES["fast"]["learning_rate"] != 99.0
    with pytest.raises(TypeError):
        RECIPES["fast"]["learning_rate"] = 1.0
    assert get_recipe(None) == {}
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("nope")


def test_resolve_params_defaults_vs_explicit():
    defaults = {"epochs": 100, "learning_rate": 1e-3, "optimizer": "adam"}
    got = resolve_params({"epochs": 5, "optimizer": "adamw"},
                         {"epochs": 100, "learning_rate": 1e-3, "optimizer": "sgd"}, defaults)
    assert got == {"epochs": 5, "learning_rate": 1e-3, "optimizer": "sgd"}
    with pytest.raises(ValueError, match="unknown parameter"):
        resolve_params({"bogus": 1}, {}, defaults)


def test_estimator_uses_recipe_and_overrides_win():
    X, y = separable()
    est = ZooClassifier(model="amu:tiny", recipe="fast", epochs=2, batch_size=16, seed=1)
    assert est.get_params()["recipe"] == "fast"
    assert clone(est).recipe == "fast"
    est.fit(X, y)
    used = est.params_used_
    assert used["epochs"] == 2 and used["batch_size"] == 16  # explicit
    assert used["optimizer"] == "adamw" and used["learning_rate"] == RECIPES["fast"]["learning_rate"]
    assert used["schedule"] == "two_step" and used["patience"] == RECIPES["fast"]["patience"]
    assert est.epochs_run_ <= 2
    opt = est.model_.optimizer
    assert isinstance(opt, keras.optimizers.AdamW)
    assert isinstance(opt._learning_rate, keras.optimizers.schedules.PiecewiseConstantDecay)

    paper = ZooClassifier(model="amu:tiny", recipe="paper", epochs=1, seed=1).fit(X, y)
    assert paper.params_used_["learning_rate"] == 1e-5
    assert type(paper.model_.optimizer) is keras.optimizers.Adam

    plain = ZooClassifier(model="amu:tiny", epochs=1, seed=1).fit(X, y)
    assert plain.params_used_["learning_rate"] == 1e-3 and plain.params_used_["epochs"] == 1
    assert type(plain.model_.optimizer) is keras.optimizers.Adam


def test_recipe_run_is_repeatable_with_a_seed():
    X, y = separable(seed=2)
    recipe = {"learning_rate": 3e-3, "epochs": 3, "patience": 2, "batch_size": 16}
    a = ZooClassifier(model="amu:tiny", recipe=recipe, seed=7).fit(X, y)
    b = ZooClassifier(model="amu:tiny", recipe=recipe, seed=7).fit(X, y)
    np.testing.assert_array_equal(a.decision_logits(X), b.decision_logits(X))
    assert a.history_ == b.history_
    assert a.params_used_["epochs"] == 3
