"""The Model artifact: run_train writes it, ModelBundle reads it back, `amu train` drives it."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from amu_tf.artifacts import Artifact, ArtifactWriter
from amu_tf.data.cohort_table import gene_columns, write_table
from amu_tf.errors import InputDataError
from amu_tf.panel import panel_entrez, panel_symbols
from amu_tf.training.model_bundle import ModelBundle

transforms = pytest.importorskip("amu_tf.data.transforms")

FAST = dict(epochs=3, patience=2, batch_size=32)


@pytest.fixture(scope="module")
def table():
    from amu_tf.data.synthetic import make_synthetic_table

    df, _ = make_synthetic_table(seed=0, signal=True)
    return df


def _train_rows_and_heldout(df):
    return df[df["cohort"] != "SYN_TPM_A"], df[df["cohort"] == "SYN_TPM_A"]


@pytest.mark.parametrize(
    "model,params",
    [("cnn:paper", FAST), ("logreg", {}),
     pytest.param("amu:tiny", FAST, marks=pytest.mark.slow)],
)
def test_round_trip_predictions_match_in_memory(tmp_path, table, model, params):
    from components.train import run_train
    from amu_tf.training import make_estimator

    cohorts = ["SYN_COUNTS", "SYN_TPM_B"]
    art = run_train(table, tmp_path / "model", model=model, transform="cohort_z",
                    train_cohorts=cohorts, seed=3, **params)
    assert Artifact.load(art.uri, expected_type="Model").properties["n_train"] > 0
    bundle = ModelBundle.load(art.uri)
    train, held = _train_rows_and_heldout(table)
    train = train[train["response"].notna()]

    # the same fit in memory: transform on the training rows, estimator with the same seed
    tf_ = transforms.get_transform("cohort_z").fit(train)
    est = make_estimator(model, seed=3, **params).fit(
        tf_.transform(train), train["response"].astype(int).to_numpy(),
        groups=train["patient"].astype(str).to_numpy())
    expected = est.predict_proba(tf_.transform(held))
    got = bundle.predict_proba(held)
    assert got.shape == (len(held), 2)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert bundle.threshold == pytest.approx(est.threshold_)
    np.testing.assert_array_equal(bundle.predict(held), (got[:, 1] >= bundle.threshold))

    info = bundle.info
    assert info["model"] == model and info["training_cohorts"] == cohorts
    assert info["n_train"] == len(train) and info["n_responders"] == int(train["response"].sum())
    assert info["genes"]["symbols"] == panel_symbols()
    assert info["genes"]["entrez_ids"] == panel_entrez()
    assert info["threshold_method"] in ("youden_inner_val", "youden_oof")
    # how the threshold was placed, and how far it stands from the scores it was chosen on
    placement = info["threshold_placement"]
    assert placement["method"] == info["threshold_method"] and "midpoint" in placement["rule"]
    assert placement["margin"] == pytest.approx(est.threshold_margin_) and placement["margin"] > 0
    assert info["transform"] == "cohort_z" and info["seed"] == 3
    assert "numpy" in info["library_versions"]
    summary = json.loads((art.uri / "training_summary.json").read_text())
    if model != "logreg":
        assert info["kind"] == "keras" and (art.uri / "model.keras").is_file()
        assert bundle.keras_model is not None
        assert len(summary["history"]["loss"]) == summary["epochs_run"] <= 3
        if model.startswith("amu"):
            assert summary["attention"].startswith("attention kernel: ")
    else:
        assert info["kind"] == "sklearn" and (art.uri / "model.joblib").is_file()
        assert bundle.keras_model is None and summary["best_params"]
    assert (art.uri / "transform").is_dir()


def test_training_rows_errors(tmp_path, table):
    from components.train import run_train

    with pytest.raises(InputDataError, match="not in the table"):
        run_train(table, tmp_path / "m", model="logreg", train_cohorts=["NOPE"])
    unl = table.copy()
    unl.loc[unl["cohort"] == "SYN_TPM_A", "response"] = np.nan
    with pytest.raises(InputDataError, match="SYN_TPM_A.*no labeled samples"):
        run_train(unl, tmp_path / "m", model="logreg", train_cohorts=["SYN_TPM_A", "SYN_TPM_B"])
    one = table[table["response"] == 1]
    with pytest.raises(InputDataError, match="single class"):
        run_train(one, tmp_path / "m", model="logreg")
    assert not (tmp_path / "m").exists()  # nothing half-written


def test_bare_keras_model_artifact_still_loads(tmp_path):
    """A hand-made Model artifact (model.keras + model_info.json only) loads as a bundle."""
    from amu_tf.models import build_model

    m = build_model("cnn:paper")
    info = {"model": "cnn:paper", "kind": "keras", "threshold": 0.37}
    with ArtifactWriter(tmp_path / "bare", "Model") as w:
        m.save(w.path / "model.keras")
        (w.path / "model_info.json").write_text(json.dumps(info))
    bundle = ModelBundle.load(tmp_path / "bare")
    assert bundle.threshold == 0.37 and bundle.transform is None
    x = np.random.default_rng(0).normal(size=(4, 160)).astype("float32")
    z = np.asarray(m(x, training=False))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(bundle.estimator.predict_proba(x), p, atol=1e-5)
    import pandas as pd

    t = pd.DataFrame(x, columns=gene_columns())
    np.testing.assert_allclose(bundle.predict_proba(t), p, atol=1e-5)
    keras.backend.clear_session()


def test_amu_train_cli(tmp_path, table):
    from pipelines.cli import amu

    csv = tmp_path / "table.csv.gz"
    write_table(table, csv)
    runner = CliRunner()
    res = runner.invoke(amu, ["train", "--table", str(csv), "--model", "cnn:paper",
                              "--transform", "cohort_z", "--out", str(tmp_path / "model"),
                              "--cohorts", "SYN_COUNTS,SYN_TPM_B", "--seed", "1",
                              "--epochs", "2", "--param", "patience=1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "threshold:" in res.output and "SYN_COUNTS, SYN_TPM_B" in res.output
    bundle = ModelBundle.load(tmp_path / "model")
    assert bundle.info["seed"] == 1 and bundle.info["params"]["patience"] == 1
    assert bundle.info["params"]["epochs"] == 2

    res = runner.invoke(amu, ["train", "--table", str(csv), "--model", "logreg",
                              "--out", str(tmp_path / "m2"), "--cohorts", "NOPE"])
    assert res.exit_code == 2
    assert "Error: training cohort(s) ['NOPE'] not in the table" in res.output
