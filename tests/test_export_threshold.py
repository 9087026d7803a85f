"""The export keeps the frozen threshold: from model_info.json, else from the estimator's own
state, and refuses a model that records none (never a silent 0.5)."""

import json

import pytest

from amu_tf.errors import ArtifactError
from amu_tf.serving import read_metadata


def test_a_model_artifact_without_model_info_is_refused_not_invented(tmp_path):
    """Without model_info.json the export would invent the name, genes and cohorts (and
    once the threshold): refused, with nothing written."""
    from amu_tf.data.synthetic import make_synthetic_table
    from components.export import run_export
    from components.train import run_train

    table, _ = make_synthetic_table(seed=0, n_per_cohort=20)
    art = run_train(table, tmp_path / "model", model="cnn:paper", epochs=2, patience=1)
    (tmp_path / "model" / "model_info.json").unlink()
    with pytest.raises(ArtifactError, match="has no model_info.json"):
        run_export(art.uri, base_dir=tmp_path / "sm", name="cnn")
    assert not (tmp_path / "sm" / "cnn").exists() or not any((tmp_path / "sm" / "cnn").iterdir())


def test_a_model_without_any_threshold_or_a_damaged_one_is_refused(tmp_path):
    from test_export import make_model_artifact

    from components.export import run_export

    make_model_artifact(tmp_path / "bare", model="cnn:paper")
    info_file = tmp_path / "bare" / "model_info.json"
    info = json.loads(info_file.read_text())
    info.pop("threshold", None)
    info_file.write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match="records no decision threshold"):
        run_export(tmp_path / "bare", base_dir=tmp_path / "sm", name="cnn")
    info_file.write_text(json.dumps({**info, "threshold": "abc"}))
    with pytest.raises(ArtifactError, match="is not a probability"):
        run_export(tmp_path / "bare", base_dir=tmp_path / "sm", name="cnn")
    assert not (tmp_path / "sm" / "cnn").exists() or not any((tmp_path / "sm" / "cnn").iterdir())


@pytest.mark.parametrize("damaged", ["model.keras", "model.joblib"])
def test_a_damaged_model_file_is_one_line_not_a_traceback(tmp_path, damaged):
    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.training.model_bundle import ModelBundle
    from components.train import run_train

    table, _ = make_synthetic_table(seed=0, n_per_cohort=20)
    model = "amu:tiny" if damaged == "model.keras" else "logreg"
    params = {"epochs": 1, "patience": 1} if damaged == "model.keras" else {}
    art = run_train(table, tmp_path / "m", model=model, **params)
    (tmp_path / "m" / damaged).write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ArtifactError, match=f"{damaged} cannot be read.*damaged"):
        ModelBundle.load(art.uri)


@pytest.mark.parametrize("model", ["cd8a", "gep18", "impres", "logreg", "recipe:consensus",
                                   "recipe:stack-direction"])
def test_biomarkers_and_logreg_export_as_savedmodels_that_agree(tmp_path, model):
    """#14 item 5: a few multiply-adds as a TF-Serving SavedModel: the serving_default
    signature gives the Model artifact's own probabilities (1e-6) and classes."""
    import numpy as np
    import tensorflow as tf

    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.serving import ExportedModel
    from amu_tf.training.model_bundle import ModelBundle
    from components.export import run_export
    from components.train import run_train

    table, _ = make_synthetic_table(seed=1, n_per_cohort=30)
    art = run_train(table, tmp_path / "m", model=model)
    pushed = run_export(art.uri, base_dir=tmp_path / "sm", name=model.replace(":", "_"))
    meta = read_metadata(pushed.properties["path"])
    bundle = ModelBundle.load(art.uri)
    assert meta["n_genes"] == len(bundle.info["genes"]["symbols"])
    if model.startswith("recipe:"):  # seven signature scores into the graph, 35 genes read
        assert meta["n_inputs"] == 7 and meta["n_genes"] > 7
    em = ExportedModel.load(pushed.properties["path"])
    t, _ = em.panel_table(table)
    x = em.check_input(em.model_input(t))
    out = em.predict_array(x)
    want = bundle.predict_proba(table)[:, 1]
    np.testing.assert_allclose(out["probability"], want, atol=1e-6)
    np.testing.assert_array_equal(out["predicted_class"], (want >= bundle.threshold))
    # plain TensorFlow loads it: the signature TF Serving calls
    sig = tf.saved_model.load(pushed.properties["path"]).signatures["serving_default"]
    got = sig(expression=tf.constant(x))["probability"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    if model == "impres":  # pairs run in the graph on raw log2 values: nothing before it
        assert not meta["transform"]["python_side"]


def test_tide_and_trees_are_refused_with_the_way_to_serve_them(tmp_path):
    from amu_tf.data.synthetic import make_synthetic_table
    from components.export import run_export
    from components.train import run_train

    table, _ = make_synthetic_table(seed=1, n_per_cohort=20)
    art = run_train(table, tmp_path / "rf", model="rf")
    with pytest.raises(ArtifactError, match="amu predict --model <its Model artifact>"):
        run_export(art.uri, base_dir=tmp_path / "sm", name="rf")
    assert not (tmp_path / "sm" / "rf").exists() or not any((tmp_path / "sm" / "rf").iterdir())
