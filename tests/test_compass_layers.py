"""The COMPASS port's layers and the torch-free checkpoint reader (fast, no download).

FAVOR+ is checked two ways: against the same kernel written densely in NumPy (the
quadratic ``phi(Q) phi(K)^T`` attention matrix, exact to float32), and, with many random
features, against plain softmax attention, which it estimates.
"""

import io
import pickle
import zipfile

import keras
import numpy as np
import pytest

from amu_tf.layers.compass_encoder_block import CompassEncoderBlock
from amu_tf.layers.performer_attention import PerformerAttention
from amu_tf.models.compass_encoder import CompassEncoder
from amu_tf.utils.transformers import convert_compass


def _weights(layer):
    return {name: getattr(layer, name).numpy() for name in (
        "query_kernel", "key_kernel", "value_kernel", "output_kernel", "output_bias",
        "projection_matrix")}


def _heads(x, w, h):
    y = x @ w
    return y.reshape(y.shape[0], y.shape[1], h, -1).transpose(0, 2, 1, 3)


def _dense_favor(x, layer, stabilizer):
    """FAVOR+ with the full (tokens x tokens) attention matrix, in float64 NumPy."""
    w = {k: v.astype(np.float64) for k, v in _weights(layer).items()}
    h, d, m = layer.num_heads, layer.head_dim, layer.num_features
    x = x.astype(np.float64)

    def phi(z, is_query):
        s = d ** -0.25
        u = np.einsum("bhnd,md->bhnm", s * z, w["projection_matrix"])
        diag = (z ** 2).sum(-1, keepdims=True) * s * s / 2
        if is_query:
            c = u.max(-1, keepdims=True)
        elif stabilizer == "sample":
            c = u.max(axis=(1, 2, 3), keepdims=True)
        else:
            c = u.max()
        return m ** -0.5 * (np.exp(u - diag - c) + layer.epsilon)

    q = phi(_heads(x, w["query_kernel"], h), True)
    k = phi(_heads(x, w["key_kernel"], h), False)
    v = _heads(x, w["value_kernel"], h)
    a = np.einsum("bhim,bhjm->bhij", q, k)
    a = a / a.sum(-1, keepdims=True)
    out = np.einsum("bhij,bhjd->bhid", a, v).transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], -1)
    return out @ w["output_kernel"] + w["output_bias"]


def _softmax_attention(x, layer):
    w = {k: v.astype(np.float64) for k, v in _weights(layer).items()}
    h, d = layer.num_heads, layer.head_dim
    x = x.astype(np.float64)
    q, k, v = (_heads(x, w[n], h) for n in ("query_kernel", "key_kernel", "value_kernel"))
    s = np.einsum("bhid,bhjd->bhij", q, k) / np.sqrt(d)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    out = np.einsum("bhij,bhjd->bhid", p, v).transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], -1)
    return out @ w["output_kernel"] + w["output_bias"]


@pytest.mark.parametrize("stabilizer", ["sample", "batch"])
def test_performer_matches_dense_favor_kernel(stabilizer):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 8)).astype("float32")
    x[2] *= 3.0  # a sample with a different scale: the two stabilisers then differ
    layer = PerformerAttention(num_heads=2, head_dim=4, num_features=16,
                               key_stabilizer=stabilizer)
    out = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(out, _dense_favor(x, layer, stabilizer), rtol=1e-4, atol=1e-5)


def test_per_sample_stabiliser_makes_outputs_batch_independent():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 6, 8)).astype("float32") * np.array([1, 3, 0.5, 2])[:, None, None]
    layer = PerformerAttention(num_heads=2, head_dim=4, num_features=12)
    together = keras.ops.convert_to_numpy(layer(x))
    alone = np.concatenate([keras.ops.convert_to_numpy(layer(x[i:i + 1])) for i in range(4)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_performer_estimates_softmax_attention_with_many_features():
    rng = np.random.default_rng(2)
    x = (0.3 * rng.normal(size=(2, 5, 8))).astype("float32")
    layer = PerformerAttention(num_heads=2, head_dim=4, num_features=20000)
    out = keras.ops.convert_to_numpy(layer(x))
    exact = _softmax_attention(x, layer)
    assert np.abs(out - exact).max() < 0.05 * np.abs(exact).max()


def test_projection_matrix_is_a_non_trainable_weight():
    layer = PerformerAttention(num_heads=2, head_dim=4, num_features=6)
    layer.build((None, 3, 8))
    assert "projection_matrix" in [w.name for w in layer.non_trainable_weights]
    assert tuple(layer.projection_matrix.shape) == (6, 4)
    assert len(layer.trainable_weights) == 5


def _numpy_block(x, block):
    def ln(z, norm):
        mu, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        return (z - mu) / np.sqrt(var + block.layer_norm_epsilon) * norm.gamma.numpy() + norm.beta.numpy()

    def ffn(z):
        from scipy.special import erf
        hdn = z @ block.ffn_inner.kernel.numpy() + block.ffn_inner.bias.numpy()
        hdn = 0.5 * hdn * (1 + erf(hdn / np.sqrt(2)))
        return hdn @ block.ffn_outer.kernel.numpy() + block.ffn_outer.bias.numpy()

    att = lambda z: _dense_favor(z, block.attention, block.key_stabilizer)  # noqa: E731
    if block.norm_first:
        x = x + att(ln(x, block.attention_norm))
        return x + ffn(ln(x, block.ffn_norm))
    x = ln(x + att(x), block.attention_norm)
    return ln(x + ffn(x), block.ffn_norm)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_order_matches_numpy(norm_first):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    block = CompassEncoderBlock(num_heads=2, head_dim=4, num_features=10, intermediate_dim=16,
                                norm_first=norm_first)
    out = keras.ops.convert_to_numpy(block(x))
    np.testing.assert_allclose(out, _numpy_block(x, block), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer", [
    PerformerAttention(num_heads=3, head_dim=5, num_features=7, key_stabilizer="batch",
                       epsilon=1e-3, name="p"),
    CompassEncoderBlock(num_heads=2, head_dim=4, num_features=9, intermediate_dim=12,
                        norm_first=True, key_stabilizer="batch", layer_norm_epsilon=1e-6,
                        name="b"),
])
def test_get_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    x = np.random.default_rng(4).normal(size=(2, 3, 8)).astype("float32")
    layer(x)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)),
                               keras.ops.convert_to_numpy(layer(x)), rtol=1e-6, atol=1e-6)


def test_small_encoder_tokens_and_keras_file_round_trip(tmp_path):
    model = CompassEncoder(n_genes=6, embed_dim=8, num_cancer_types=4, num_heads=2,
                           head_dim=4, num_features=5, intermediate_dim=16)
    x = {"expression": np.random.default_rng(5).random((3, 6)).astype("float32"),
         "cancer_type": np.array([0, 3, 1], "int32")}
    out = model.predict(x, verbose=0)
    assert out.shape == (3, 8, 8)
    path = tmp_path / "enc.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), out, rtol=1e-5, atol=1e-6)
    assert again.get_config() == model.get_config()


def _torch_like_checkpoint(obj_pickle: bytes, storages: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ckpt/data.pkl", obj_pickle)
        for key, arr in storages.items():
            z.writestr(f"ckpt/data/{key}", arr.astype("<f4").tobytes())
        z.writestr("ckpt/version", "3\n")
    return buf.getvalue()


def test_checkpoint_reader_rebuilds_strided_tensors_without_torch():
    base = np.arange(12, dtype="<f4")
    # hand-written data.pkl: OrderedDict(w=rebuild(storage '0', offset 2, (2, 3), stride (1, 2)))
    pkl = (b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00w"
           b"ctorch._utils\n_rebuild_tensor_v2\n(("
           b"X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x0ct"
           b"QK\x02K\x02K\x03\x86K\x01K\x02\x86\x89ccollections\nOrderedDict\n)Rtq\x02Rq\x03s.")
    state = convert_compass.read_torch_checkpoint(_torch_like_checkpoint(pkl, {"0": base}))
    expected = np.lib.stride_tricks.as_strided(base[2:], (2, 3), (4, 8))
    np.testing.assert_array_equal(state["w"], expected)


def test_checkpoint_reader_refuses_foreign_globals():
    pkl = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R."
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global os.system"):
        convert_compass.read_torch_checkpoint(_torch_like_checkpoint(pkl, {}))


def test_the_download_asks_pip_for_the_pinned_wheel_only(tmp_path, monkeypatch):
    """Without $AMU_TF_COMPASS_WHEEL or a cached copy, ``fetch_wheel`` runs one ``pip
    download`` of the pinned version, without dependencies, as a binary wheel; a downloaded
    file whose sha256 differs is refused and not cached, and a failed pip is one line."""
    import subprocess
    from pathlib import Path

    monkeypatch.delenv(convert_compass.WHEEL_ENV, raising=False)
    monkeypatch.setenv("AMU_TF_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / convert_compass.COMPASS_WHEEL_NAME).write_bytes(b"a tampered wheel")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(convert_compass.subprocess, "run", fake_run)
    with pytest.raises(convert_compass.CompassUnavailableError, match="sha256"):
        convert_compass.fetch_wheel()
    (cmd,) = calls
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
    assert "--only-binary=:all:" in cmd
    assert f"{convert_compass.COMPASS_PACKAGE}=={convert_compass.COMPASS_VERSION}" in cmd
    assert convert_compass.COMPASS_VERSION == "2.5.3"
    assert not (convert_compass.cache_root() / "wheels"
                / convert_compass.COMPASS_WHEEL_NAME).exists()

    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(convert_compass.subprocess, "run", failing_run)
    with pytest.raises(convert_compass.CompassUnavailableError,
                       match="failed: ERROR: No matching distribution$"):
        convert_compass.fetch_wheel()


def test_wrong_wheel_hash_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / convert_compass.COMPASS_WHEEL_NAME
    fake.write_bytes(b"not the wheel")
    monkeypatch.setenv(convert_compass.WHEEL_ENV, str(fake))
    with pytest.raises(convert_compass.CompassUnavailableError, match="sha256"):
        convert_compass.fetch_wheel()
