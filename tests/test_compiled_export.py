"""`amu export --compiled-attention`: the opt-in SavedModel whose attention runs the compiled
CPU op (faster, not portable), against the default standard-ops export of the same model."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from amu_tf.errors import ArtifactError, KernelUnavailableError
from amu_tf.kernels import tiny_attention as kernels
from amu_tf.panel import N_GENES
from amu_tf.serving import ExportedModel, list_versions, read_metadata
from test_export import make_model_artifact

pytestmark = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None, reason="no C++ compiler"
)


@pytest.fixture(scope="module")
def two_exports(tmp_path_factory):
    """The same amu:tiny Model artifact exported twice: v1 default, v2 compiled attention."""
    from components.export import run_export

    root = tmp_path_factory.mktemp("compiled")
    make_model_artifact(root / "train", model="amu:tiny", seed=3)
    portable = run_export(root / "train", base_dir=root / "sm", name="amu")
    compiled = run_export(root / "train", base_dir=root / "sm", name="amu",
                          compiled_attention=True)
    return root, portable, compiled


def test_compiled_export_records_and_contains_the_custom_op(two_exports):
    _, portable, compiled = two_exports
    assert portable.properties["custom_ops"] == []
    assert compiled.properties["custom_ops"] == [kernels.INFERENCE_OP]
    assert read_metadata(portable.uri)["custom_ops"] == []
    assert read_metadata(compiled.uri)["custom_ops"] == [kernels.INFERENCE_OP]
    graph = lambda art: (art.uri / "saved_model.pb").read_bytes()  # noqa: E731
    assert kernels.INFERENCE_OP.encode() in graph(compiled)
    assert kernels.INFERENCE_OP.encode() not in graph(portable)


def test_compiled_export_gives_the_portable_outputs(two_exports):
    root, _, _ = two_exports
    x = np.random.default_rng(0).normal(0, 1, size=(40, N_GENES)).astype("float32")
    a = ExportedModel.load(root / "sm" / "amu", version=1).predict_array(x)
    b = ExportedModel.load(root / "sm" / "amu", version=2).predict_array(x)
    np.testing.assert_allclose(b["logits"], a["logits"], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(b["predicted_class"], a["predicted_class"])


def test_compiled_export_needs_the_op_library_to_load(two_exports, tmp_path):
    """Plain TensorFlow cannot load it (that is the price of the speed); with the op library
    loaded first (what ExportedModel.load does) it serves the same outputs."""
    _, _, compiled = two_exports
    script = textwrap.dedent(f"""
        import sys, tensorflow as tf
        try:
            tf.saved_model.load({str(compiled.uri)!r})
        except Exception as exc:
            print("REFUSED", "AmuTinyAttention" in str(exc))
        else:
            print("LOADED")
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": ""}, cwd=tmp_path)
    assert "REFUSED True" in res.stdout, res.stdout + res.stderr[-2000:]


def test_loading_a_compiled_export_without_the_kernel_is_one_clear_error(two_exports,
                                                                         monkeypatch):
    root, _, _ = two_exports
    monkeypatch.setattr(kernels, "available", lambda: False)
    with pytest.raises(KernelUnavailableError, match="--compiled-attention"):
        ExportedModel.load(root / "sm" / "amu", version=2)
    ExportedModel.load(root / "sm" / "amu", version=1)  # the portable one is unaffected


def test_compiled_export_refusals_leave_no_version(tmp_path, monkeypatch):
    from components.export import run_export

    make_model_artifact(tmp_path / "cnn", model="cnn:paper", seed=1)
    with pytest.raises(ArtifactError, match="fused attention"):
        run_export(tmp_path / "cnn", base_dir=tmp_path / "sm", name="cnn",
                   compiled_attention=True)
    assert list_versions(tmp_path / "sm" / "cnn") == []

    make_model_artifact(tmp_path / "amu", model="amu:tiny", seed=1)
    monkeypatch.setattr(kernels, "available", lambda: False)
    with pytest.raises(KernelUnavailableError):
        run_export(tmp_path / "amu", base_dir=tmp_path / "sm", name="amu",
                   compiled_attention=True)
    assert list_versions(tmp_path / "sm" / "amu") == []


def test_export_cli_flag(two_exports):
    from click.testing import CliRunner

    from pipelines.cli import amu

    root, _, _ = two_exports
    res = CliRunner().invoke(amu, ["export", "--model", str(root / "train"), "--base-dir",
                                   str(root / "cli"), "--compiled-attention"])
    assert res.exit_code == 0, res.output
    path = res.output.strip().splitlines()[-1]
    meta = json.loads((root / "cli" / "amu" / "1" / "assets" / "amu_metadata.json").read_text())
    assert path.endswith(os.path.join("amu", "1"))
    assert meta["custom_ops"] == [kernels.INFERENCE_OP]
