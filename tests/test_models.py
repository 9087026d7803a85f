"""The zoo's models: parameter counts, save/load, input checks, the `amu zoo` command."""

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from amu_tf.errors import InputDataError
from amu_tf.models import AMUFTModel, AMUModel, CNNModel, build_model


def test_paper_parameter_counts():
    amu = build_model("amu:paper")
    assert amu.count_params_paper() == 83_462
    assert amu.count_params_keras() == 83_472
    cnn = build_model("cnn:paper")
    assert cnn.count_params_paper() == 737
    assert cnn.count_params_keras() == 739


def test_paper_preset_architecture():
    m = build_model("amu:paper")
    encoders = [l for l in m.layers if l.name.startswith("encoder_")]
    assert len(encoders) == 8
    e = encoders[0]
    assert (e.num_heads, e.key_dim, e.intermediate_dim, e.norm_first) == (10, 2, 200, False)
    assert e.attention_dropout == 0.1
    assert m.get_layer("gene_embedding").use_bias is False
    assert m.output.shape == (None, 2)


def test_amu_ft_uses_bias_and_pre_ln():
    m = build_model("amu-ft:small")
    assert isinstance(m, AMUFTModel)
    assert m.get_layer("gene_embedding").use_bias
    assert all(l.norm_first for l in m.layers if l.name.startswith("encoder_"))


@pytest.mark.parametrize("name", ["amu:tiny", "amu-ft:small", "cnn:paper"])
def test_trained_model_save_load_identical(tmp_path, name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 160)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = build_model(name)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert loaded.get_config() == model.get_config()


def test_from_preset_overrides_and_unknown_preset():
    m = AMUModel.from_preset("tiny", num_layers=2)
    assert sum(l.name.startswith("encoder_") for l in m.layers) == 2
    with pytest.raises(ValueError, match="unknown preset"):
        build_model("amu:huge")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("gpt:paper")


@pytest.mark.parametrize("cls", [AMUModel, CNNModel])
def test_wrong_width_and_nonfinite_get_clear_errors(cls):
    model = cls.from_preset("tiny" if cls is AMUModel else "paper")
    with pytest.raises(InputDataError, match="has 150 gene columns but the model expects 160"):
        model.predict(np.zeros((2, 150), "float32"), verbose=0)
    bad = np.zeros((2, 160), "float32")
    bad[1, 7] = np.nan
    with pytest.raises(InputDataError, match=r"non-finite value.*sample 1, gene column 7"):
        model.predict(bad, verbose=0)
    bad[1, 7] = np.inf
    with pytest.raises(InputDataError, match="non-finite"):
        model.fit(bad, np.zeros(2, "int32"), verbose=0)


def test_amu_zoo_command_lists_counts():
    from pipelines.cli import amu

    result = CliRunner().invoke(amu, ["zoo"])
    assert result.exit_code == 0, result.output
    lines = {l.split()[0]: l for l in result.output.splitlines()[1:] if l.strip()}
    assert "83,462" in lines["amu:paper"] and "83,472" in lines["amu:paper"]
    assert "737" in lines["cnn:paper"]
    assert {"amu:paper", "amu:small", "amu-ft:small", "cnn:paper"} <= set(lines)
    # the biomarkers, each with its gene count, description and reference line
    assert "1 gene  CD8A mRNA" in lines["cd8a"] and "18 genes" in lines["gep18"]
    assert "whole transcriptome" in lines["tide"] and "(Auslander et al." in result.output
    assert "recipe:consensus" in lines and "recipe:stack" in lines
