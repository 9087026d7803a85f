"""``amu:compass`` (issue #23): COMPASS's encoder fine-tuned under a small head, in the zoo.
On the ``compass:tiny`` preset (a random 40-gene encoder); the pre-trained preset's cost on
CPU is measured by ``benchmarks/compass_finetune_timing.py``."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from amu_tf.models.compass_classifier import CompassClassifier
from amu_tf.training import estimator_kind, make_estimator
from amu_tf.training.layerwise_adam import LayerwiseAdam

GENES = [f"GENE{i}" for i in range(40)]


def _table(n_per=(24, 24, 20), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for c, n in enumerate(n_per):
        y = np.arange(n) % 2
        rng.shuffle(y)
        expr = rng.gamma(2.0, 2.0, size=(n, len(GENES))) * (1 + c)  # a cohort scale
        expr[:, :8] *= 1 + 2.0 * y[:, None]                          # the response signal
        df = pd.DataFrame(np.log2(expr + 1.0), columns=GENES)
        df.insert(0, "response", y.astype(float))
        df.insert(0, "cohort", f"C{c}")
        df.insert(0, "patient", [f"C{c}:p{i}" for i in range(n)])
        df.insert(0, "sample", [f"C{c}:s{i}" for i in range(n)])
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def test_names_kind_and_input_transform():
    est = make_estimator("amu:compass", epochs=1)
    assert estimator_kind("amu:compass") == "keras" == estimator_kind(est)
    tf_ = est.make_input_transform()
    assert tf_.name == "compass_input" and tf_.genes is None  # COMPASS's 15,672 genes
    assert make_estimator("compass:tiny").make_input_transform().genes == GENES
    assert not hasattr(make_estimator("amu:tiny"), "make_input_transform")


def test_config_round_trip_and_keras_file(tmp_path):
    keras.utils.set_random_seed(0)
    m = CompassClassifier.from_preset("tiny", readout="mean", head_units=4)
    x = np.random.default_rng(0).random((5, 40)).astype("float32")
    assert m(x).shape == (5, 2)
    np.testing.assert_allclose(np.asarray(m(x))[:, 0], 0.0)
    again = CompassClassifier.from_config(m.get_config())
    assert again.get_config() == m.get_config()
    m.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(m(x)), atol=1e-6)
    with pytest.raises(ValueError, match="readout"):
        CompassClassifier.from_preset("tiny", readout="cls")


def test_encoder_learns_at_a_tenth_of_the_head_rate():
    """Adam's first step moves every weight by about the rate: the encoder's by 0.1 x."""
    keras.utils.set_random_seed(0)
    m = CompassClassifier.from_preset("tiny")
    lr, scale = 1e-2, 0.1
    opt = LayerwiseAdam(multipliers={v.path: scale for v in m.encoder.trainable_variables},
                        learning_rate=lr)
    m.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(1).random((16, 40)).astype("float32")
    y = np.arange(16) % 2
    enc = {v.path: np.array(v) for v in m.encoder.trainable_variables}
    head = {v.path: np.array(v) for v in m.trainable_variables if v.path not in enc}
    m.train_on_batch(x, y)
    after = {v.path: np.array(v) for v in m.trainable_variables}
    enc_step = max(np.abs(after[k] - v).max() for k, v in enc.items())
    head_step = max(np.abs(after[k] - v).max() for k, v in head.items())
    assert head_step == pytest.approx(lr, rel=0.05)
    assert enc_step == pytest.approx(lr * scale, rel=0.05)
    assert LayerwiseAdam.from_config(opt.get_config()).multipliers == opt.multipliers


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="a SavedModel is written under the TensorFlow backend")
def test_fine_tunes_predicts_and_exports(tmp_path):
    """Trained through `amu train`'s component on its own input transform: early stopping
    on an inner split of the training rows, a threshold from it, and the exported
    SavedModel serving the same probabilities as the Model artifact (its per-cohort scaler
    runs before the graph)."""
    from amu_tf.serving import ExportedModel, read_metadata
    from amu_tf.training.model_bundle import ModelBundle
    from components.export import run_export
    from components.train import run_train

    table = _table()
    art = run_train(table, tmp_path / "m", model="compass:tiny", epochs=4, patience=2,
                    batch_size=8, learning_rate=1e-2)
    bundle = ModelBundle.load(art.uri)
    assert bundle.kind == "keras" and bundle.transform.name == "compass_input"
    assert bundle.model_info.genes == GENES
    assert bundle.model_info.threshold_method == "youden_inner_val"
    assert 1 <= bundle.estimator.epochs_run_ <= 4
    p = bundle.predict_proba(table)[:, 1]
    assert np.isfinite(p).all() and p.std() > 0
    pushed = run_export(art.uri, base_dir=tmp_path / "sm", name="compass")
    meta = read_metadata(pushed.properties["path"])
    assert meta["n_inputs"] == 40 and not meta["transform"]["in_graph"]
    served = ExportedModel.load(tmp_path / "sm" / "compass").predict_table(
        table.drop(columns=["response", "patient"]))
    np.testing.assert_allclose(served["probability"], p, atol=1e-5)


def test_leave_one_cohort_out_never_trains_on_the_scored_cohort():
    from amu_tf.evaluation.protocols import run_protocol

    table = _table()
    est = make_estimator("compass:tiny", epochs=2, patience=1, batch_size=8)
    res = run_protocol(table, "loco", {"compass": est}, transform=None, n_boot=0,
                       progress=False)
    assert len(res.predictions) == len(table)
    assert set(res.per_cohort["cohort"]) == {"C0", "C1", "C2"}


def test_amu_train_says_which_models_read_their_own_input():
    """`amu train`'s message (--transform does not apply) is decided from the model name,
    without building the estimator."""
    from pipelines.train_cmd import _has_own_input

    own = ["amu:compass", "compass:tiny", "recipe:consensus", "recipe:compass-probe", "cd8a",
           "sig:IMPRES_Auslander"]
    panel = ["amu:small", "logreg", "xgboost", "not-a-model:x"]
    assert [_has_own_input(m) for m in own] == [True] * len(own)
    assert [_has_own_input(m) for m in panel] == [False] * len(panel)
