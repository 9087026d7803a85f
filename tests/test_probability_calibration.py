"""Recalibrated final models (issue #24): the stored map equals scikit-learn's calibrators,
its TensorFlow form equals its NumPy form, and `amu train --calibrate` -> `amu predict` ->
`amu export` -> the SavedModel all give the same recalibrated probabilities and classes."""

import json

import numpy as np
import pandas as pd
import pytest

from amu_tf.errors import ArtifactError
from amu_tf.training.probability_calibration import (CALIBRATION_FILE, ProbabilityCalibration,
                                                     _logit, reference_calibrator)


def _overconfident(n=400, seed=0):
    """Labels and probabilities far too extreme for them (slope about 0.3)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    p = 1 / (1 + np.exp(-3.5 * z))
    return p, y


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_the_stored_map_is_the_sklearn_calibrator_in_numpy_and_in_tensorflow(method):
    p, y = _overconfident()
    cal = ProbabilityCalibration.from_probabilities(p, y, method)
    ref = reference_calibrator(p, y, method)
    grid = np.concatenate([np.linspace(0, 1, 501), p, [1e-9, 1 - 1e-9]])
    want = (ref.predict_proba(_logit(grid)[:, None])[:, 1] if method == "sigmoid"
            else ref.predict(grid))
    np.testing.assert_allclose(cal.apply(grid), want, atol=1e-9)
    got_tf = np.asarray(cal.apply_tf(grid.astype(np.float32)))
    np.testing.assert_allclose(got_tf, cal.apply(grid.astype(np.float32)), atol=2e-5)
    # the map is monotone, it improves this overconfident model's Brier score, and the
    # threshold is Youden's J in its scale
    q = cal.apply(np.sort(p))
    assert (np.diff(q) >= -1e-12).all()
    assert cal.fitted_on["brier_after"] < cal.fitted_on["brier_before"]
    assert 0 < cal.threshold < 1


def test_a_damaged_calibration_file_is_one_line(tmp_path):
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"method": "beta", "slope": 1}))
    with pytest.raises(ArtifactError, match="is damaged"):
        ProbabilityCalibration.read(tmp_path)
    (tmp_path / CALIBRATION_FILE).write_text("{not json")
    with pytest.raises(ArtifactError):
        ProbabilityCalibration.read(tmp_path)
    assert ProbabilityCalibration.read(tmp_path / "absent") is None


@pytest.mark.parametrize("model,method", [("logreg", "sigmoid"), ("cd8a", "isotonic")])
def test_train_calibrate_predict_and_export_agree(tmp_path, model, method):
    """A model trained with calibrate: its Model artifact stores the map and a threshold in
    the recalibrated scale; ModelBundle, the exported SavedModel and its metadata agree."""
    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.serving import ExportedModel, read_metadata
    from amu_tf.training.model_bundle import ModelBundle
    from components.export import run_export
    from components.train import run_train

    table, _ = make_synthetic_table(seed=0, n_per_cohort=40)
    raw = run_train(table, tmp_path / "raw", model=model)
    art = run_train(table, tmp_path / "cal", model=model, calibrate=method)
    assert (art.path / CALIBRATION_FILE).is_file()
    assert not (raw.path / CALIBRATION_FILE).exists()
    info = json.loads((art.path / "model_info.json").read_text())
    assert info["threshold_method"] == "youden_oof_calibrated"
    assert info["calibration"]["method"] == method
    assert "out-of-fold" in info["calibration"]["description"]

    bundle, plain = ModelBundle.load(art.uri), ModelBundle.load(raw.uri)
    cal = bundle.calibration
    assert cal is not None and plain.calibration is None
    assert cal.fitted_on["n_rows"] == info["n_train"] and cal.fitted_on["cv"] == 5
    df = table[table["response"].notna()]
    p_raw = plain.predict_proba(df)[:, 1]
    p_cal = bundle.predict_proba(df)[:, 1]
    # same fitted model underneath (same seed, same rows), then the map
    np.testing.assert_allclose(p_cal, cal.apply(p_raw), atol=1e-6)
    assert bundle.threshold == pytest.approx(cal.threshold)
    np.testing.assert_array_equal(bundle.predict(df), (p_cal >= cal.threshold).astype(int))

    pushed = run_export(art.uri, base_dir=tmp_path / "sm", name="m")
    meta = read_metadata(pushed.properties["path"])
    assert meta["calibration"]["method"] == method and meta["calibration"]["in_graph"]
    assert meta["threshold"] == pytest.approx(cal.threshold)
    served = ExportedModel.load(tmp_path / "sm" / "m").predict_table(df)
    np.testing.assert_allclose(served["probability"], p_cal, atol=1e-5)
    near = np.abs(p_cal - cal.threshold) < 1e-5  # float32 in the graph
    np.testing.assert_array_equal(served["predicted_class"][~near],
                                  (p_cal >= cal.threshold).astype(int)[~near])
    plain_meta = read_metadata(run_export(raw.uri, base_dir=tmp_path / "sm",
                                          name="p").properties["path"])
    assert plain_meta["calibration"]["method"] is None
    assert "not recalibrated" in plain_meta["calibration"]["statement"]


def test_amu_train_calibrate_option(tmp_path):
    from click.testing import CliRunner

    from amu_tf.data.synthetic import make_synthetic_table
    from pipelines.cli import amu

    table, _ = make_synthetic_table(seed=1, n_per_cohort=30)
    table.to_csv(tmp_path / "table.csv", index=False)
    table = tmp_path / "table.csv"
    r = CliRunner().invoke(amu, ["train", "--table", str(table), "--model", "logreg",
                                  "--out", str(tmp_path / "m"), "--calibrate", "sigmoid"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "m" / CALIBRATION_FILE).is_file()
    r = CliRunner().invoke(amu, ["train", "--table", str(table), "--model", "logreg",
                                  "--out", str(tmp_path / "n"), "--calibrate", "beta"])
    assert r.exit_code == 2 and not (tmp_path / "n").exists()
