"""The fused attention computes what keras.layers.MultiHeadAttention computes, with its weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from amu_tf.layers import FusedSelfAttention, TransformerEncoder
from amu_tf.layers.tiny_head_attention import (attention_keep_mask, hash_dropout, keep_threshold,
                                               tiny_head_attention)
from amu_tf.models import build_model


def _pair(norm_first, dropout=0.0, shape=(3, 12, 6), heads=3, key_dim=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    ref = TransformerEncoder(num_heads=heads, key_dim=key_dim, intermediate_dim=10,
                             dropout=dropout, norm_first=norm_first, attention_impl="keras")
    fused = TransformerEncoder(num_heads=heads, key_dim=key_dim, intermediate_dim=10,
                               dropout=dropout, norm_first=norm_first, attention_impl="fused")
    ref.build(x.shape)
    fused.build(x.shape)
    # non-zero biases and LayerNorm parameters, so that every weight matters
    ref.set_weights([rng.normal(0, 0.5, size=w.shape).astype("float32")
                     for w in ref.get_weights()])
    fused.set_weights(ref.get_weights())
    return x, ref, fused


@pytest.mark.parametrize("norm_first", [False, True])
def test_fused_encoder_matches_keras_reference(norm_first):
    x, ref, fused = _pair(norm_first)
    want = keras.ops.convert_to_numpy(ref(x, training=False))
    got = keras.ops.convert_to_numpy(fused(x, training=False))
    np.testing.assert_allclose(got, want, atol=1e-5)
    # training=True with every dropout rate 0 must also agree, gradients included
    with tf.GradientTape(persistent=True) as tape:
        y_ref = ref(x, training=True)
        y_fused = fused(x, training=True)
        loss_ref = tf.reduce_sum(tf.sin(y_ref))
        loss_fused = tf.reduce_sum(tf.sin(y_fused))
    np.testing.assert_allclose(y_fused.numpy(), y_ref.numpy(), atol=1e-5)
    for g_ref, g_fused in zip(tape.gradient(loss_ref, ref.trainable_weights),
                              tape.gradient(loss_fused, fused.trainable_weights)):
        np.testing.assert_allclose(g_fused.numpy(), g_ref.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_fused_encoder_matches_reference_in_a_graph(norm_first):
    """In a tf.function (where TensorFlow's optimiser fuses the fused encoder's 2-D
    MatMul -> BiasAdd -> Relu, and its LayerNorm is five plain ops) the outputs still
    equal the Keras reference's, on random non-zero weights."""
    x, ref, fused = _pair(norm_first, shape=(5, 40, 6))
    want = tf.function(lambda t: ref(t, training=False))(tf.constant(x)).numpy()
    got = tf.function(lambda t: fused(t, training=False))(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_fused_encoder_with_other_activation_uses_keras_feed_forward():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 7, 6)).astype("float32")
    kw = dict(num_heads=3, key_dim=2, intermediate_dim=10, dropout=0.0, activation="gelu")
    ref = TransformerEncoder(attention_impl="keras", **kw)
    fused = TransformerEncoder(attention_impl="fused", **kw)
    ref.build(x.shape)
    fused.build(x.shape)
    ref.set_weights([rng.normal(0, 0.5, size=w.shape).astype("float32")
                     for w in ref.get_weights()])
    fused.set_weights(ref.get_weights())
    assert not fused._fused_feed_forward()
    np.testing.assert_allclose(fused(x).numpy(), ref(x).numpy(), atol=1e-5)


def test_fused_attention_weights_have_the_reference_layout():
    _, ref, fused = _pair(False)
    assert [w.shape for w in fused.weights] == [w.shape for w in ref.weights]
    assert [w.path.split("/", 1)[1] for w in fused.attention.weights] == \
        [w.path.split("/", 1)[1] for w in ref.attention.weights]
    assert isinstance(fused.attention, FusedSelfAttention)


def test_tiny_head_gradient_with_dropout_matches_autodiff():
    """The hand-written gradient against TensorFlow's, with the very same dropout mask."""
    rng = np.random.default_rng(3)
    q, k, v = (tf.constant(rng.normal(size=(2, 3, 9, 2)).astype("float32")) for _ in range(3))
    seed = tf.constant([5, 7], tf.int32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([q, k, v])
        got = tiny_head_attention(q, k, v, rate=0.3, seed=seed)
        p = tf.nn.softmax(tf.matmul(q, k, transpose_b=True))
        keep = attention_keep_mask(tf.shape(p), 0.3, seed)
        want = tf.matmul(tf.where(keep, p, 0.0) * keep_threshold(0.3)[1], v)
        weights = tf.constant(rng.normal(size=got.shape).astype("float32"))
        l_got, l_want = tf.reduce_sum(got * weights), tf.reduce_sum(want * weights)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
    for a, b in zip(tape.gradient(l_got, [q, k, v]), tape.gradient(l_want, [q, k, v])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def _mix32(x):
    """lowbias32 in numpy uint32 (wrapping): an independent reference of the hash."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def _numpy_key(seed):
    s0, s1 = (np.array([v], np.int64).astype(np.uint32) for v in seed)
    with np.errstate(over="ignore"):
        return _mix32(s0 ^ _mix32(s1 + np.uint32(0x9E3779B9)))[0]


def test_attention_keep_mask_is_the_documented_hash():
    seed = (123, -7)
    b, h, t = 2, 3, 11
    threshold, inv_keep = keep_threshold(0.25)
    assert threshold == round(0.75 * 2 ** 24) and inv_keep == 2 ** 24 / threshold
    with np.errstate(over="ignore"):
        rows = _mix32(np.arange(b * h * t, dtype=np.uint32) ^ _numpy_key(seed))
        cols = np.arange(t, dtype=np.uint32) * np.uint32(0x9E3779B9)
        want = (_mix32(rows.reshape(b, h, t, 1) + cols) >> np.uint32(8)) < threshold
    got = attention_keep_mask(tf.constant([b, h, t, t]), 0.25, tf.constant(seed, tf.int32))
    np.testing.assert_array_equal(got.numpy(), want)


def test_hash_dropout_is_the_documented_hash_and_its_own_gradient():
    x = tf.constant(np.random.default_rng(4).uniform(1, 2, size=(5, 7, 9)).astype("float32"))
    seed = (9, 10)
    threshold, inv_keep = keep_threshold(0.3)
    with np.errstate(over="ignore"):
        hashes = _mix32(np.arange(x.shape.num_elements(), dtype=np.uint32)
                        * np.uint32(0x9E3779B9) + _numpy_key(seed))
    keep = ((hashes >> np.uint32(8)) < threshold).reshape(x.shape)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = hash_dropout(x, 0.3, tf.constant(seed, tf.int32))
        loss = tf.reduce_sum(y * 2.0)
    np.testing.assert_array_equal(y.numpy(), np.where(keep, x.numpy() * np.float32(inv_keep), 0))
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(),
                                  np.where(keep, np.float32(2.0) * np.float32(inv_keep), 0))
    assert hash_dropout(x, 0.0, tf.constant(seed, tf.int32)) is x


def test_dropout_mask_rate_and_independence():
    keep = attention_keep_mask(tf.constant([40, 10, 160, 160]), 0.1,
                               tf.constant([1, 2], tf.int32))
    frac = keep.numpy().mean()
    assert abs(frac - 0.9) < 0.002  # 10 million draws: sd 1e-4
    k = keep.numpy()
    # neighbouring rows, columns and heads are not the same mask
    assert (k[..., :80] != k[..., 80:]).mean() > 0.15
    assert (k[:, :, :80] != k[:, :, 80:]).mean() > 0.15
    assert (k[:, 0] != k[:, 1]).mean() > 0.15
    other = attention_keep_mask(tf.constant([40, 10, 160, 160]), 0.1,
                                tf.constant([1, 3], tf.int32))
    assert (other.numpy() != k).mean() > 0.15


def test_fused_attention_dropout_applies_only_in_training():
    x, _, fused = _pair(False, dropout=0.5)
    a = keras.ops.convert_to_numpy(fused(x, training=False))
    b = keras.ops.convert_to_numpy(fused(x, training=False))
    c = keras.ops.convert_to_numpy(fused(x, training=True))
    d = keras.ops.convert_to_numpy(fused(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(c, d)  # a fresh mask each call


def test_attention_only_dropout_is_unbiased():
    """With dropout on the attention weights only, the training output averages to the
    inference output (the mask is rescaled by the exact keep probability)."""
    layer = FusedSelfAttention(num_heads=2, key_dim=2, dropout=0.25, seed=1)
    x = np.random.default_rng(4).normal(size=(2, 8, 4)).astype("float32")
    want = keras.ops.convert_to_numpy(layer(x, training=False))
    runs = np.stack([keras.ops.convert_to_numpy(layer(x, training=True)) for _ in range(400)])
    assert np.abs(runs.mean(0) - want).max() < 0.1 * np.abs(runs - want).max()


def test_fused_config_round_trip():
    layer = FusedSelfAttention(num_heads=3, key_dim=2, dropout=0.2, seed=4, name="att")
    config = layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is FusedSelfAttention and restored.get_config() == config
    encoder = TransformerEncoder(num_heads=2, key_dim=2, intermediate_dim=4,
                                 attention_impl="fused")
    assert TransformerEncoder.from_config(encoder.get_config()).attention_impl == "fused"
    with pytest.raises(ValueError, match="self-attention only"):
        layer(np.zeros((1, 4, 3), "float32"), np.ones((1, 4, 3), "float32"))
    with pytest.raises(ValueError, match="attention_impl"):
        TransformerEncoder(num_heads=2, key_dim=2, intermediate_dim=4, attention_impl="flash")


@pytest.mark.parametrize("family", ["amu:tiny", "amu-ft:small"])
def test_model_save_load_and_switch_implementation(tmp_path, family):
    keras.utils.set_random_seed(0)
    ref = build_model(family, attention_impl="keras")
    fused = build_model(family, attention_impl="fused")
    fused.set_weights(ref.get_weights())
    x = np.random.default_rng(5).normal(size=(4, 160)).astype("float32")
    want = ref.predict(x, verbose=0)
    np.testing.assert_allclose(fused.predict(x, verbose=0), want, atol=1e-5)

    path = tmp_path / "fused.keras"
    fused.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["attention_impl"] == "fused"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, atol=1e-5)
    # a file saved with one implementation loads into the other
    ref.save(tmp_path / "ref.keras")
    switched = build_model(family, attention_impl="fused")
    switched.load_weights(tmp_path / "ref.keras")
    np.testing.assert_allclose(switched.predict(x, verbose=0), want, atol=1e-5)
    # and the other way round
    fused.save(tmp_path / "fused2.keras")
    back = build_model(family, attention_impl="keras")
    back.load_weights(tmp_path / "fused2.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), want, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 7, 8, 17])
def test_blocked_inference_attention_equals_unblocked(batch):
    """Inference computes attention a few samples at a time (scores in cache): same ops, so
    the same numbers, for any batch size, the last block smaller, in a traced function with
    a dynamic batch as in the SavedModel."""
    import tensorflow as tf

    from amu_tf.layers.tiny_head_attention import blocked_attention, tiny_head_attention

    rng = np.random.default_rng(batch)
    q, k, v = (tf.constant(rng.normal(size=(batch, 3, 11, 2)).astype("float32"))
               for _ in range(3))
    spec = tf.TensorSpec([None, 3, 11, 2], tf.float32)
    blocked = tf.function(lambda a, b, c: blocked_attention(a, b, c, block=4),
                          input_signature=[spec] * 3)
    np.testing.assert_allclose(blocked(q, k, v).numpy(), tiny_head_attention(q, k, v).numpy(),
                               atol=1e-6, rtol=0)
    with tf.GradientTape() as tape:  # gradients flow (SHAP's gradient explainers need them)
        tape.watch(q)
        loss = tf.reduce_sum(blocked_attention(q, k, v, block=4))
    assert np.isfinite(tape.gradient(loss, q).numpy()).all()


def test_model_inference_under_xla_uses_the_unblocked_path():
    import tensorflow as tf

    model = build_model("amu:tiny")
    x = tf.constant(np.random.default_rng(0).normal(size=(5, 160)).astype("float32"))
    eager = model(x, training=False).numpy()
    xla = tf.function(lambda t: model(t, training=False), jit_compile=True)(x).numpy()
    np.testing.assert_allclose(xla, eager, atol=1e-5, rtol=0)
