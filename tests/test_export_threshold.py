"""The export keeps the frozen threshold: from model_info.json, else from the estimator's own
state, and refuses a model that records none (never a silent 0.5)."""

import json

import pytest

from amu_tf.errors import ArtifactError
from amu_tf.serving import read_metadata


def test_threshold_comes_from_the_estimator_when_model_info_is_gone(tmp_path):
    from amu_tf.data.synthetic import make_synthetic_table
    from components.export import run_export
    from components.train import run_train

    table, _ = make_synthetic_table(seed=0, n_per_cohort=20)
    art = run_train(table, tmp_path / "model", model="cnn:paper", epochs=2, patience=1)
    frozen = json.loads((tmp_path / "model" / "model_info.json").read_text())["threshold"]
    assert frozen != 0.5
    (tmp_path / "model" / "model_info.json").unlink()
    pushed = run_export(art.uri, base_dir=tmp_path / "sm", name="cnn")
    assert read_metadata(pushed.properties["path"])["threshold"] == pytest.approx(frozen)


def test_a_model_without_any_threshold_is_refused(tmp_path):
    from test_export import make_model_artifact

    from components.export import run_export

    make_model_artifact(tmp_path / "bare", model="cnn:paper")
    (tmp_path / "bare" / "model_info.json").unlink()
    with pytest.raises(ArtifactError, match="records no decision threshold"):
        run_export(tmp_path / "bare", base_dir=tmp_path / "sm", name="cnn")
    assert not (tmp_path / "sm" / "cnn").exists() or not any((tmp_path / "sm" / "cnn").iterdir())
