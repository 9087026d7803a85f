"""Export: TF-Serving SavedModels (signature, metadata, versions, atomicity, parity in a
fresh process that does not import amu_tf)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from amu_tf.artifacts import Artifact, ArtifactWriter
from amu_tf.data.cohort_table import META_COLUMNS, gene_columns
from amu_tf.errors import ArtifactError, InputDataError
from amu_tf.models import build_model
from amu_tf.panel import N_GENES, panel_entrez, panel_symbols
from amu_tf.serving import (ExportedModel, VersionWriter, list_versions, next_version,
                            read_metadata, write_saved_model)

# helpers (also used by test_predict.py) ------------------------------------------------------


@keras.saving.register_keras_serializable(package="amu_tf_tests")
class ImputeStandardize(keras.layers.Layer):
    """A per-sample preprocessing layer like a fitted transform's: NaN -> training mean, then
    (x - mean) / std."""

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean = np.asarray(mean, dtype="float32")
        self.std = np.asarray(std, dtype="float32")

    def call(self, x):
        x = keras.ops.where(keras.ops.isnan(x), self.mean, x)
        return (x - self.mean) / self.std

    def get_config(self):
        return {**super().get_config(), "mean": self.mean.tolist(), "std": self.std.tolist()}


def tiny_table(n=12, seed=0, cohort="C1"):
    """A cohort table of ``n`` samples with log2-like expression for the 160 panel genes."""
    rng = np.random.default_rng(seed)
    genes = rng.normal(5.0, 2.0, size=(n, N_GENES))
    meta = {c: [np.nan] * n for c in META_COLUMNS}
    meta.update(sample=[f"{cohort}_s{i}" for i in range(n)], patient=[f"p{i}" for i in range(n)],
                cohort=[cohort] * n, response=rng.integers(0, 2, n).astype(float))
    return pd.concat([pd.DataFrame(meta), pd.DataFrame(genes, columns=gene_columns())], axis=1)


def make_model_artifact(uri, model="amu:tiny", threshold=0.4, seed=0):
    """A Model artifact in the documented layout, built by hand: model.keras + model_info.json
    (no transform). Returns the Keras model."""
    keras.utils.set_random_seed(seed)
    m = build_model(model)
    m.compile(optimizer="adam",
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    t = tiny_table(16, seed=seed)
    m.fit(t[gene_columns()].to_numpy("float32") / 10.0, t["response"].to_numpy(),
          epochs=1, verbose=0)
    info = {
        "model": model, "kind": "keras", "threshold": threshold,
        "threshold_method": "youden on training rows",
        "genes": {"symbols": panel_symbols(), "entrez_ids": panel_entrez()},
        "transform": None, "training_cohorts": ["C1"], "n_train": 16, "seed": seed,
        "metrics": {"cv_auc": 0.61},
    }
    with ArtifactWriter(uri, "Model", parameters={"model": model}) as w:
        m.save(w.path / "model.keras")
        (w.path / "model_info.json").write_text(json.dumps(info))
    return m


def keras_probability(model, x, preprocess=None):
    if preprocess is not None:
        x = np.asarray(preprocess(x))
    logits = np.asarray(model(x, training=False))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True))[:, 1]


# tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An amu:tiny model with an in-graph imputing/standardising layer, exported once."""
    root = tmp_path_factory.mktemp("exp")
    keras.utils.set_random_seed(7)
    model = build_model("amu:tiny")
    rng = np.random.default_rng(1)
    mean = rng.normal(5, 1, N_GENES).astype("float32")
    std = rng.uniform(0.5, 2, N_GENES).astype("float32")
    pre = ImputeStandardize(mean, std)
    meta = {"genes": [{"symbol": s, "entrez_id": e} for s, e in zip(panel_symbols(),
                                                                      panel_entrez())],
            "n_genes": N_GENES, "threshold": 0.3,
            "transform": {"name": "test", "per_sample": True, "in_graph": True,
                          "imputes_in_graph": True}}
    path = write_saved_model(root / "m" / "1", model, meta, preprocess=pre, threshold=0.3)
    return path, model, pre


def test_saved_model_cli_lists_signature(exported):
    path, _, _ = exported
    cli = Path(sys.executable).parent / "saved_model_cli"
    assert cli.exists(), cli
    res = subprocess.run([str(cli), "show", "--dir", str(path), "--all"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    sig = out[out.index("signature_def['serving_default']"):]
    sig = sig[:sig.index("Method name is")]
    assert "inputs['expression'] tensor_info:" in sig
    block = sig[sig.index("inputs['expression']"):]
    assert "dtype: DT_FLOAT" in block.splitlines()[1]
    assert "shape: (-1, 160)" in block.splitlines()[2]
    assert sig.count("inputs[") == 1  # exactly one named input
    for name, dtype in [("probability", "DT_FLOAT"), ("logits", "DT_FLOAT"),
                        ("predicted_class", "DT_INT64")]:
        blk = sig[sig.index(f"outputs['{name}']"):].splitlines()
        assert dtype in blk[1]
    assert "shape: (-1, 2)" in sig[sig.index("outputs['logits']"):].splitlines()[2]
    assert (path / "assets" / "amu_metadata.json").is_file()


def test_fresh_process_parity_without_amu_tf(exported, tmp_path):
    path, model, pre = exported
    rng = np.random.default_rng(3)
    x = rng.normal(5, 2, size=(9, N_GENES)).astype("float32")
    x[2, [4, 50]] = np.nan  # imputed inside the graph
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(path)!r})
        sig = loaded.signatures["serving_default"]
        x = np.load({str(tmp_path / 'x.npy')!r})
        batch = sig(expression=tf.constant(x))["probability"].numpy()
        one = np.concatenate([sig(expression=tf.constant(x[i:i+1]))["probability"].numpy()
                              for i in range(len(x))])
        np.save({str(tmp_path / 'batch.npy')!r}, batch)
        np.save({str(tmp_path / 'one.npy')!r}, one)
        print("AMU_LOADED", any(m == "amu_tf" or m.startswith("amu_tf.") for m in sys.modules))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "AMU_LOADED False" in res.stdout
    expect = keras_probability(model, x, pre)
    assert np.isfinite(expect).all()
    np.testing.assert_allclose(np.load(tmp_path / "batch.npy"), expect, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), expect, atol=1e-5)


def test_signature_outputs_and_threshold(exported):
    path, model, pre = exported
    m = ExportedModel.load(path)
    x = np.random.default_rng(4).normal(5, 2, size=(20, N_GENES)).astype("float32")
    out = m.predict_array(x)
    assert set(out) == {"probability", "logits", "predicted_class"}
    assert out["logits"].shape == (20, 2) and out["probability"].shape == (20,)
    np.testing.assert_array_equal(out["predicted_class"], (out["probability"] >= 0.3).astype(int))
    np.testing.assert_allclose(out["probability"], keras_probability(model, x, pre), atol=1e-5)


def test_graph_refuses_nan_without_imputation(tmp_path):
    import tensorflow as tf

    path = write_saved_model(tmp_path / "1", build_model("amu:tiny"),
                             {"genes": [{"symbol": s} for s in panel_symbols()]})
    sig = tf.saved_model.load(str(path)).signatures["serving_default"]
    x = np.ones((2, N_GENES), "float32")
    x[1, 3] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf"):
        sig(expression=tf.constant(x))
    with pytest.raises(InputDataError, match="NaN"):
        ExportedModel.load(path).predict_array(x)
    with pytest.raises(InputDataError, match=r"shape \(samples, 160\)"):
        ExportedModel.load(path).predict_array(np.ones((2, 159), "float32"))


def test_run_export_versions_metadata_and_artifact(tmp_path):
    from components.export import run_export

    model = make_model_artifact(tmp_path / "train")
    base = tmp_path / "saved_models"
    a1 = run_export(tmp_path / "train", base_dir=base)
    assert a1.properties["name"] == "amu" and a1.properties["version"] == 1
    a2 = run_export(tmp_path / "train", base_dir=base)
    assert a2.properties["version"] == 2
    assert list_versions(base / "amu") == [1, 2]
    assert not [p for p in (base / "amu").iterdir() if p.name.startswith(".")]
    pushed = Artifact.load(base / "amu" / "2", expected_type="PushedModel")
    assert pushed.properties["path"] == str(base / "amu" / "2")
    assert pushed.inputs[0]["type"] == "Model"
    meta = read_metadata(base / "amu" / "2")
    assert [g["symbol"] for g in meta["genes"]] == panel_symbols()
    assert [g["entrez_id"] for g in meta["genes"]] == panel_entrez()
    assert meta["threshold"] == 0.4 and meta["training_cohorts"] == ["C1"]
    # no evaluation given: the metadata says so (the model_info's own figure is kept there)
    assert meta["metrics"]["source"].startswith("none") and meta["metrics"]["blessed"] is None
    assert meta["model_info"]["metrics"] == {"cv_auc": 0.61} and meta["model_name"] == "amu:tiny"
    assert meta["transform"]["in_graph"] is False and "log2" in meta["expected_input_scale"]
    assert meta["amu_tf_version"] and meta["exported_at"]
    # the exported signature equals the Keras model that was trained
    x = np.random.default_rng(5).normal(0.5, 0.2, size=(6, N_GENES)).astype("float32")
    out = ExportedModel.load(base / "amu").predict_array(x)
    np.testing.assert_allclose(out["probability"], keras_probability(model, x), atol=1e-5)
    np.testing.assert_array_equal(out["predicted_class"], out["probability"] >= 0.4)


def test_failed_export_is_never_visible(tmp_path, monkeypatch):
    from amu_tf.serving import saved_model_export
    from components import export

    make_model_artifact(tmp_path / "train")
    base = tmp_path / "sm"
    export.run_export(tmp_path / "train", base_dir=base, name="m")
    real = saved_model_export.write_saved_model

    def half_write(path, *a, **k):
        real(path, *a, **k)  # the whole SavedModel is written, then the process "dies"
        (Path(path) / "variables" / "variables.index").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(export, "write_saved_model", half_write)
    from amu_tf.errors import ArtifactError

    with pytest.raises(ArtifactError, match="cannot write the export under"):
        export.run_export(tmp_path / "train", base_dir=base, name="m")
    assert sorted(p.name for p in (base / "m").iterdir()) == ["1"]  # no 2, no temp folder
    monkeypatch.undo()
    assert export.run_export(tmp_path / "train", base_dir=base, name="m").properties[
        "version"] == 2


def test_version_writer_never_overwrites(tmp_path):
    base = tmp_path / "m"
    (base / "3").mkdir(parents=True)
    (base / "3" / "keep").write_text("old")
    (base / ".tmp-9-abc").mkdir()  # a crashed export's leftovers are not a version
    (base / "notes").mkdir()
    assert list_versions(base) == [3] and next_version(base) == 4
    with VersionWriter(base) as w:
        (w.path / "x").write_text("new")
        (base / "4").mkdir()  # another export takes 4 meanwhile
        (base / "4" / "y").write_text("other")
    assert w.version == 5 and (base / "5" / "x").read_text() == "new"
    assert (base / "3" / "keep").read_text() == "old" and (base / "4" / "y").exists()


def test_export_refuses_non_keras_and_bad_names(tmp_path):
    from components.export import run_export

    import joblib
    from sklearn.linear_model import LogisticRegression

    t = tiny_table(10)
    lr = LogisticRegression().fit(t[gene_columns()].to_numpy(), t["response"].to_numpy())
    with ArtifactWriter(tmp_path / "sk", "Model") as w:
        joblib.dump(lr, w.path / "model.joblib")
        (w.path / "model_info.json").write_text(json.dumps({"model": "logreg",
                                                             "kind": "sklearn",
                                                             "threshold": 0.5}))
    # a bare estimator (not the searched scaler + logistic regression pipeline) has no graph
    with pytest.raises(ArtifactError, match="cannot be written as a TensorFlow graph"):
        run_export(tmp_path / "sk", base_dir=tmp_path / "out")
    with pytest.raises(ArtifactError, match="not an amu-tf artifact"):
        run_export(tmp_path / "nothing", base_dir=tmp_path / "out")
    make_model_artifact(tmp_path / "train")
    with pytest.raises(ArtifactError, match="invalid model name"):
        run_export(tmp_path / "train", base_dir=tmp_path / "out", name="../evil")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_export_cli_prints_version_path(tmp_path):
    from click.testing import CliRunner

    from pipelines.cli import amu

    make_model_artifact(tmp_path / "train")
    base = tmp_path / "sm"
    r = CliRunner().invoke(amu, ["export", "--model", str(tmp_path / "train"), "--name", "x",
                                 "--base-dir", str(base)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[-1] == str(base / "x" / "1")
    r = CliRunner().invoke(amu, ["export", "--model", str(tmp_path / "nope"),
                                 "--base-dir", str(base)])
    assert r.exit_code == 2 and "Error:" in r.output


# with the real train component, transforms and ModelBundle ----------------------------------


@pytest.fixture(scope="module")
def synthetic_table():
    from amu_tf.data.synthetic import make_synthetic_table

    table, _ = make_synthetic_table(seed=0, n_per_cohort=16)
    return table


@pytest.mark.parametrize("transform", ["paper", "reference_z"])
def test_trained_per_sample_transform_in_graph_fresh_process(tmp_path, synthetic_table,
                                                             transform):
    """run_train -> run_export: the signature takes raw log2 expression (NaN = missing gene)
    and equals ModelBundle.predict_proba (Keras model + NumPy transform) to 1e-5, in a process
    that never imports amu_tf."""
    from amu_tf.training.model_bundle import ModelBundle
    from components.export import run_export
    from components.train import run_train

    cohorts = sorted(synthetic_table["cohort"].unique())
    train = synthetic_table[synthetic_table["cohort"] != cohorts[-1]]
    test = synthetic_table[synthetic_table["cohort"] == cohorts[-1]].reset_index(drop=True)
    test.loc[[0, 3], panel_symbols()[:7]] = np.nan  # missing cells, imputed in the graph
    run_train(train, tmp_path / "train", model="amu:tiny", transform=transform, epochs=2,
              verbose=0)
    art = run_export(tmp_path / "train", base_dir=tmp_path / "sm")
    path = Path(art.properties["path"])
    meta = read_metadata(path)
    assert meta["transform"] == {**meta["transform"], "name": transform, "in_graph": True,
                                 "imputes_in_graph": True, "per_sample": True}
    assert meta["training_cohorts"] == cohorts[:-1]
    assert "log2" in meta["expected_input_scale"]
    assert not (path / "assets" / "transform").exists()  # nothing left for Python to do

    bundle = ModelBundle.load(tmp_path / "train")
    expect = bundle.predict_proba(test)[:, 1]
    assert meta["threshold"] == pytest.approx(bundle.threshold)
    np.save(tmp_path / "x.npy", test[gene_columns()].to_numpy("float32"))
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        sig = tf.saved_model.load({str(path)!r}).signatures["serving_default"]
        x = np.load({str(tmp_path / 'x.npy')!r})
        np.save({str(tmp_path / 'batch.npy')!r}, sig(expression=tf.constant(x))["probability"].numpy())
        np.save({str(tmp_path / 'one.npy')!r}, sig(expression=tf.constant(x[3:4]))["probability"].numpy())
        print("AMU_LOADED", any(m.startswith("amu_tf") for m in sys.modules))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "AMU_LOADED False" in res.stdout
    np.testing.assert_allclose(np.load(tmp_path / "batch.npy"), expect, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), expect[3:4], atol=1e-5)
    # a REST body with NaN for the missing genes (JSON NaN token) gives the same answer
    from amu_tf.serving import answer_request

    body = json.dumps({"inputs": {"expression": np.load(tmp_path / "x.npy").tolist()}})
    assert "NaN" in body
    resp = answer_request(ExportedModel.load(path), body)
    np.testing.assert_allclose(resp["outputs"]["probability"], expect, atol=1e-5)


def test_trained_cohort_z_is_applied_by_amu_predict(tmp_path, synthetic_table):
    """cohort_z needs a cohort: not in the graph, metadata says 'cohort-standardised', the
    fitted transform travels in assets/ and amu predict applies it (training cohort: frozen
    statistics; new cohort: its own) to match ModelBundle.predict_proba."""
    from click.testing import CliRunner

    from amu_tf.training.model_bundle import ModelBundle
    from components.export import run_export
    from components.train import run_train
    from pipelines.cli import amu

    cohorts = sorted(synthetic_table["cohort"].unique())
    train = synthetic_table[synthetic_table["cohort"] != cohorts[-1]]
    run_train(train, tmp_path / "train", model="amu:tiny", transform="cohort_z", epochs=2,
              verbose=0)
    art = run_export(tmp_path / "train", base_dir=tmp_path / "sm", name="z")
    path = Path(art.properties["path"])
    meta = read_metadata(path)
    assert meta["transform"]["name"] == "cohort_z" and meta["transform"]["in_graph"] is False
    assert meta["expected_input_scale"].startswith("cohort-standardised")
    assert (path / "assets" / "transform" / "transform.json").is_file()

    table = pd.concat([synthetic_table[synthetic_table["cohort"] == cohorts[0]].head(6),
                       synthetic_table[synthetic_table["cohort"] == cohorts[-1]]],
                      ignore_index=True)
    table.to_csv(tmp_path / "in.csv", index=False)
    r = CliRunner().invoke(amu, ["predict", "--model", str(tmp_path / "sm" / "z"), "--input",
                                 str(tmp_path / "in.csv"), "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(tmp_path / "p.csv", dtype={"sample": str})
    bundle = ModelBundle.load(tmp_path / "train")
    np.testing.assert_allclose(got["probability"], bundle.predict_proba(table)[:, 1], atol=1e-5)
    np.testing.assert_array_equal(got["predicted_class"], bundle.predict(table))
    # the raw signature must not be fed raw log2 values for this model: its scale differs
    raw = ExportedModel.load(path).predict_array(table[gene_columns()].to_numpy("float32"))
    assert not np.allclose(raw["probability"], got["probability"], atol=1e-3)
