"""The compiled tiny-head attention kernel (training path) against the TensorFlow-ops one."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from amu_tf.kernels import tiny_attention as kernel
from amu_tf.layers.tiny_head_attention import tiny_head_attention

pytestmark = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None, reason="no C++ compiler"
)

B, T, H, D = 3, 37, 4, 2


def _qkv(seed=0, b=B, t=T, h=H, d=D):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal(size=(b, t, 3 * h * d)).astype("float32"))


def _reference(qkv, h=H, d=D):
    """The TF-ops path on the same fused layout (dropout off)."""
    b, t = qkv.shape[0], qkv.shape[1]
    x = tf.transpose(tf.reshape(qkv, (b, t, 3, h, d)), (2, 0, 3, 1, 4))
    q, k, v = tf.unstack(x, 3, axis=0)
    y = tiny_head_attention(q, k, v)
    return tf.reshape(tf.transpose(y, (0, 2, 1, 3)), (b, t, h * d))


def _count_calls(monkeypatch, name):
    """Wrap ``kernel.<name>`` so each call is counted; returns the list of calls."""
    calls = []
    real = getattr(kernel, name)

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(kernel, name, spy)
    return calls


def _value_and_grad(fn, qkv, weights):
    with tf.GradientTape() as tape:
        tape.watch(qkv)
        loss = tf.reduce_sum(fn(qkv) * weights)
    return fn(qkv), tape.gradient(loss, qkv)


def test_kernel_builds_here():
    assert kernel.available(), kernel.status()
    assert "compiled" in kernel.status()
    assert kernel.library_path(tf).exists()


@pytest.mark.parametrize("h,d", [(4, 2), (2, 3), (1, 1), (2, 4), (1, 6)])
def test_forward_and_gradient_match_tf_ops_without_dropout(h, d):
    qkv = _qkv(1, h=h, d=d)
    w = tf.constant(np.random.default_rng(2).normal(size=(B, T, h * d)).astype("float32"))
    y_ref, g_ref = _value_and_grad(lambda x: _reference(x, h, d), qkv, w)
    y_ker, g_ker = _value_and_grad(lambda x: kernel.tiny_attention(x, h), qkv, w)
    np.testing.assert_allclose(y_ker.numpy(), y_ref.numpy(), atol=1e-5, rtol=0)
    scale = float(tf.reduce_max(tf.abs(g_ref)))
    assert float(tf.reduce_max(tf.abs(g_ker - g_ref))) <= 1e-5 * max(scale, 1.0)


def test_large_scores_do_not_overflow():
    qkv = _qkv(3) * 30.0  # scores in the thousands: softmax must stay finite
    y_ref = _reference(qkv)
    y_ker = kernel.tiny_attention(qkv, H)
    assert np.isfinite(y_ker.numpy()).all()
    np.testing.assert_allclose(y_ker.numpy(), y_ref.numpy(), atol=1e-3 * 30, rtol=1e-4)


@pytest.mark.parametrize("rate", [0.0, 0.3])
@pytest.mark.parametrize("t", [6, 40])
def test_rows_whose_score_bound_is_far_above_the_maximum(rate, t):
    """The kernel shifts scores by a cheap upper bound of the row maximum (from the keys'
    per-dimension ranges); keys (100, -100) and (-100, 100) with query (1, 1) put that
    bound 200 above the true maximum, where exp underflows: such rows must be redone with
    the exact maximum and still be right (values and gradients). ``t = 40``: rows 0-31
    go through the sixteen-rows-per-vector forward, rows 32-39 one at a time."""
    h, d = 1, 2
    q = np.ones((1, t, d), "float32")
    rng = np.random.default_rng(9)
    k = np.concatenate([np.array([[100, -100], [-100, 100]], "float32"),
                        rng.uniform(-1, 1, size=(t - 2, d)).astype("float32")])
    v = rng.normal(size=(t, d)).astype("float32")
    qkv = tf.constant(np.concatenate([q, k[None], v[None]], axis=-1))
    seed = tf.constant([5, 6], tf.int32)
    y = kernel.tiny_attention(qkv, h, rate=rate, seed=seed).numpy()
    assert np.isfinite(y).all()
    if rate == 0.0:
        np.testing.assert_allclose(y, _reference(qkv, h, d).numpy(), atol=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(qkv)
        loss = tf.reduce_sum(kernel.tiny_attention(qkv, h, rate=rate, seed=seed))
    assert np.isfinite(tape.gradient(loss, qkv).numpy()).all()


def _ones_values_qkv(seed):
    """Values all 1: without dropout every output is exactly 1; with dropout it is the
    kept attention mass divided by the keep probability."""
    qkv = _qkv(seed, b=8, t=64).numpy()
    qkv[..., 2 * H * D:] = 1.0
    return tf.constant(qkv)


def test_dropout_is_unbiased_seeded_and_keeps_the_right_fraction():
    qkv = _ones_values_qkv(4)
    seed = tf.constant([11, 7], tf.int32)
    np.testing.assert_allclose(kernel.tiny_attention(qkv, H).numpy(), 1.0, atol=1e-5)
    y1 = kernel.tiny_attention(qkv, H, rate=0.1, seed=seed).numpy()
    y2 = kernel.tiny_attention(qkv, H, rate=0.1, seed=seed).numpy()
    y3 = kernel.tiny_attention(qkv, H, rate=0.1, seed=tf.constant([12, 7], tf.int32)).numpy()
    np.testing.assert_array_equal(y1, y2)  # same seed, same mask
    assert not np.array_equal(y1, y3)  # another seed, another mask
    assert abs(y1.mean() - 1.0) < 0.01  # unbiased: E[kept mass / keep] = 1
    assert y1.std() > 0.05  # and really dropping


def test_dropout_mask_fraction_with_uniform_attention():
    # all scores 0: every attention weight is 1/T, so y = (kept count / T) / keep
    qkv = np.zeros((16, 100, 3 * H * D), "float32")
    qkv[..., 2 * H * D:] = 1.0
    y = kernel.tiny_attention(tf.constant(qkv), H, rate=0.25,
                              seed=tf.constant([1, 2], tf.int32)).numpy()
    keep = 0.75
    kept_fraction = y * keep  # per row: kept count / T
    assert abs(kept_fraction.mean() - keep) < 0.005
    # the per-row fraction of kept keys is binomial(T, keep) / T
    assert abs(kept_fraction.std() - np.sqrt(keep * (1 - keep) / 100)) < 0.01


def test_dropout_gradient_matches_finite_differences():
    qkv = _qkv(5)
    seed = tf.constant([3, 4], tf.int32)
    w = tf.constant(np.random.default_rng(6).normal(size=(B, T, H * D)).astype("float32"))

    def loss(x):
        return tf.reduce_sum(kernel.tiny_attention(x, H, rate=0.2, seed=seed) * w)

    with tf.GradientTape() as tape:
        tape.watch(qkv)
        value = loss(qkv)
    grad = tape.gradient(value, qkv)
    direction = tf.constant(np.random.default_rng(7).normal(size=qkv.shape).astype("float32"))
    eps = 1e-2
    numeric = (loss(qkv + eps * direction) - loss(qkv - eps * direction)) / (2 * eps)
    analytic = tf.reduce_sum(grad * direction)
    assert abs(float(numeric - analytic)) <= 2e-3 * abs(float(analytic)) + 1e-3


def test_bad_input_gets_a_clear_error():
    with pytest.raises(tf.errors.InvalidArgumentError, match="3 \\* num_heads"):
        kernel.tiny_attention(tf.zeros((2, 5, 7)), 2)


def test_model_training_mode_matches_tf_ops_path(monkeypatch):
    """A whole AMU model in training mode with dropout off: kernel and TF-ops paths give
    the same logits and gradients."""
    from amu_tf.models.zoo import build_model

    model = build_model("amu:tiny", dropout=0.0, head_dropout=0.0)
    x = tf.constant(np.random.default_rng(8).normal(size=(4, 160)).astype("float32"))

    def run():
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_sum(logits[:, 1])
        return logits.numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]

    calls = _count_calls(monkeypatch, "tiny_attention")
    monkeypatch.setenv(kernel.ENV_SWITCH, "1")
    logits_k, grads_k = run()
    assert calls, "training mode did not use the compiled kernel"
    n_calls = len(calls)
    model(x, training=False)
    assert len(calls) == n_calls  # inference (and so every export) never uses the kernel
    monkeypatch.setenv(kernel.ENV_SWITCH, "0")
    logits_t, grads_t = run()
    assert len(calls) == n_calls  # switched off: the TF-ops path
    np.testing.assert_allclose(logits_k, logits_t, atol=1e-5, rtol=0)
    for gk, gt in zip(grads_k, grads_t):
        np.testing.assert_allclose(gk, gt, atol=1e-5 * max(1.0, np.abs(gt).max()), rtol=0)


def test_failed_build_is_one_line_and_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("AMU_TF_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "/bin/false")
    with pytest.raises(RuntimeError, match="compiling the kernel failed: false -march=native"):
        kernel.build(tf)
    assert not list((tmp_path / "kernels").glob("*.so"))


def test_switch_off_by_environment(monkeypatch):
    monkeypatch.setenv(kernel.ENV_SWITCH, "0")
    assert kernel.load() is None
    assert "off" in kernel.status()


def test_hash_dropout_rate_scale_and_gradient():
    x = tf.constant(np.random.default_rng(10).uniform(1.0, 2.0, size=(64, 50, 30))
                    .astype("float32"))
    seed = tf.constant([7, 8], tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = kernel.hash_dropout(x, 0.2, seed)
        loss = tf.reduce_sum(y * 3.0)
    kept = y.numpy() != 0
    keep = round(0.8 * 2 ** 24) / 2 ** 24
    assert abs(kept.mean() - keep) < 0.005
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / keep, rtol=1e-6)
    # the gradient regenerates the same mask: 3 / keep where kept, 0 where dropped
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), np.where(kept, 3.0 / keep, 0.0),
                               rtol=1e-6)
    np.testing.assert_array_equal(kernel.hash_dropout(x, 0.2, seed).numpy(), y.numpy())
    other = kernel.hash_dropout(x, 0.2, tf.constant([7, 9], tf.int32)).numpy()
    assert not np.array_equal(other != 0, kept)
    np.testing.assert_array_equal(kernel.hash_dropout(x, 0.0, seed).numpy(), x.numpy())


def test_encoder_dropouts_use_the_hash_op_in_training_only(monkeypatch):
    import keras

    from amu_tf.layers import TransformerEncoder

    calls = _count_calls(monkeypatch, "hash_dropout")
    x = tf.constant(np.random.default_rng(11).normal(size=(4, 10, 8)).astype("float32"))

    def fresh():
        keras.utils.set_random_seed(1)
        return TransformerEncoder(num_heads=2, key_dim=4, intermediate_dim=16, dropout=0.3)

    encoder = fresh()
    a = encoder(x, training=True).numpy()
    assert len(calls) == 3  # attention output, FFN activation, FFN output
    assert not np.array_equal(a, encoder(x, training=True).numpy())  # new masks per call
    np.testing.assert_array_equal(fresh()(x, training=True).numpy(), a)  # seeded: repeatable
    n_calls = len(calls)
    encoder(x, training=False)
    assert len(calls) == n_calls  # inference adds none


def test_kernel_and_tf_ops_dropout_masks_are_the_same_bits():
    """Forward with dropout: the kernel and the TF-ops path (its hash in TF ops) keep the
    same attention weights, so their outputs agree to float rounding; so does the encoder's
    hashed dropout, bit for bit."""
    from amu_tf.layers.tiny_head_attention import hash_dropout

    qkv = _qkv(seed=12, b=2, t=40, h=3, d=2)
    seed = tf.constant([31, -5], tf.int32)
    b, t = qkv.shape[0], qkv.shape[1]
    x = tf.transpose(tf.reshape(qkv, (b, t, 3, 3, 2)), (2, 0, 3, 1, 4))
    q, k, v = tf.unstack(x, 3, axis=0)
    ref = tf.reshape(tf.transpose(tiny_head_attention(q, k, v, 0.4, seed), (0, 2, 1, 3)),
                     (b, t, 6))
    got = kernel.tiny_attention(qkv, 3, 0.4, seed)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=2e-6, rtol=1e-5)
    y = tf.constant(np.random.default_rng(13).normal(size=(7, 33, 5)).astype("float32"))
    np.testing.assert_array_equal(kernel.hash_dropout(y, 0.3, seed).numpy(),
                                  hash_dropout(y, 0.3, seed).numpy())


def test_one_seed_one_model_with_and_without_the_kernel(monkeypatch):
    """amu:tiny with every dropout on, trained twice with the same seed: once through the
    compiled kernel, once with AMU_TF_KERNELS=0 (the TF-ops path). Same model to float
    tolerance: predictions within 1e-4, the same early-stopping epoch."""
    from amu_tf.training import make_estimator

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 60)
    y[:2] = [0, 1]
    X = rng.normal(size=(60, 160)).astype("float32")
    X[:, :8] += 1.2 * (2 * y[:, None] - 1)

    calls = _count_calls(monkeypatch, "tiny_attention")

    def fit():
        return make_estimator("amu:tiny", seed=4, epochs=8, patience=2, batch_size=16,
                              learning_rate=3e-3, model_overrides={"dropout": 0.2}).fit(X, y)

    monkeypatch.setenv(kernel.ENV_SWITCH, "1")
    with_kernel = fit()
    n_kernel = len(calls)
    monkeypatch.setenv(kernel.ENV_SWITCH, "0")
    without = fit()
    assert n_kernel > 0 and len(calls) == n_kernel  # each run took the path it was meant to
    assert with_kernel.best_epoch_ == without.best_epoch_
    assert with_kernel.epochs_run_ == without.epochs_run_
    np.testing.assert_allclose(with_kernel.predict_proba(X), without.predict_proba(X),
                               atol=1e-4, rtol=0)
