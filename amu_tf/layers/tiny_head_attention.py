"""Scaled-dot-product attention core for many tiny heads, with a hand-written gradient.

With heads of width 2 (the AMU paper: 10 heads of dim 2 over 160 genes) the work is in the
``[batch, heads, T, T]`` score tensor, 1 MB per sample in float32, and every pass over it is
memory-bound. TensorFlow's automatic gradient of ``dropout(softmax(S)) @ V`` makes about a
dozen passes (softmax gradient with its own reduction, dropout's mask multiply and select,
a float random tensor as large as the scores). This version makes fewer:

* the dropout mask is the compiled kernel's counter-based hash of each element's position
  (:func:`attention_keep_mask`: the same mask bit for bit, so the kernel and this path train
  the same model for a seed), a bool mask applied with one select; the ``1/keep`` rescale
  is applied to the small ``[batch, heads, T, 2]`` output;
* the softmax gradient uses ``rowsum(dP * P) = rowsum(dY * Y)`` (as FlashAttention does),
  a reduction over the small output instead of over the scores.

Keep probability: ``round((1 - rate) * 2^24) / 2^24``, and the output is divided by exactly
that, so dropout stays unbiased.
"""

import math

import numpy as np
import tensorflow as tf


def stateless_seed(seed_generator):
    """The next seed of a ``keras.random.SeedGenerator`` as the int32 ``[2]`` tensor that
    stateless random ops and the compiled kernels take."""
    return tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), "int32")


_GOLDEN = 0x9E3779B9  # 2^32 / golden ratio: the counter stride of the hash
_KEEP_BITS = 24  # an element is kept when (hash >> 8) < round((1 - rate) * 2^24)


def _u32(value):
    return tf.constant(value, tf.uint32)


def mix32(x):
    """Wellons' "lowbias32" integer mixer on a uint32 tensor (wrapping arithmetic): the
    counter-based random generator of the compiled kernels, in TensorFlow ops."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))
    x = x * _u32(0x7FEB352D)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(15)))
    x = x * _u32(0x846CA68B)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))


def keep_threshold(rate):
    """``(threshold, 1 / keep)`` of the hashed dropout: an element is kept with probability
    ``keep = threshold / 2^24`` and the kept ones are divided by exactly that."""
    # as the kernel: the op's float32 ``rate`` attribute, in double, rounded half away from 0
    rate32 = float(np.float32(rate))
    threshold = max(1, int(math.floor((1.0 - rate32) * 2 ** _KEEP_BITS + 0.5)))
    return threshold, float(2 ** _KEEP_BITS / threshold)


def hash_key(seed):
    """The uint32 key a stateless int32 ``[2]`` seed gives the hash (as the kernel's
    ``make_dropout``)."""
    seed = tf.cast(tf.cast(seed, tf.int32), tf.uint32)
    return mix32(tf.bitwise.bitwise_xor(seed[0], mix32(seed[1] + _u32(_GOLDEN))))


def _index_u32(n):
    """``0 .. n-1`` as uint32 (wrapping past 2^32, as the kernel's 32-bit counters do)."""
    return tf.cast(tf.bitwise.bitwise_and(tf.range(tf.cast(n, tf.int64), dtype=tf.int64),
                                          tf.constant(0xFFFFFFFF, tf.int64)), tf.uint32)


def _kept(hashes, threshold):
    return tf.bitwise.right_shift(hashes, _u32(32 - _KEEP_BITS)) < _u32(threshold)


def attention_keep_mask(shape, rate, seed):
    """The boolean keep mask of the attention weights ``[batch, heads, T, T]``: element
    ``(b, h, i, j)`` is kept when ``mix32(mix32(((b * heads + h) * T + i) ^ key) + j *
    golden) >> 8 < threshold``, bit for bit the mask of the compiled kernel's forward and
    backward passes, so both attention paths train the same model for the same seed."""
    threshold, _ = keep_threshold(rate)
    b, h, t = shape[0], shape[1], shape[2]
    rows = mix32(tf.bitwise.bitwise_xor(_index_u32(b * h * t), hash_key(seed)))
    cols = _index_u32(t) * _u32(_GOLDEN)
    hashes = mix32(tf.reshape(rows, tf.stack([b, h, t, 1])) + cols)
    return _kept(hashes, threshold)


def hash_dropout(x, rate, seed):
    """Inverted dropout with the compiled ``AmuHashDropout`` op's mask, in TensorFlow ops:
    element ``i`` of the flattened ``x`` is kept when ``mix32(i * golden + key) >> 8 <
    threshold`` and then divided by ``keep``. The same output as the compiled op bit for bit,
    portable (any device, any graph); its gradient is the same mask on ``dy``."""
    if rate <= 0.0:
        return x
    threshold, inv_keep = keep_threshold(rate)
    key = hash_key(seed)

    @tf.custom_gradient
    def drop(x):
        keep = _kept(mix32(_index_u32(tf.size(x)) * _u32(_GOLDEN) + key), threshold)
        keep = tf.reshape(keep, tf.shape(x))
        zero = tf.zeros((), x.dtype)
        scale = tf.constant(inv_keep, x.dtype)

        def grad(dy):
            return tf.where(keep, dy * scale, zero)

        return tf.where(keep, x * scale, zero), grad

    return drop(x)


def tiny_head_attention(q, k, v, rate=0.0, seed=None):
    """``dropout(softmax(q k^T), rate) @ v`` for ``q, k, v`` of shape ``(..., T, key_dim)``.

    ``q`` must already carry the ``1/sqrt(key_dim)`` scale. ``seed`` is a stateless seed
    (shape ``(2,)`` int32), needed when ``rate > 0``.
    """

    @tf.custom_gradient
    def attend(q, k, v):
        p = tf.nn.softmax(tf.matmul(q, k, transpose_b=True))
        if rate > 0.0:
            keep = attention_keep_mask(tf.shape(p), rate, seed)
            p_kept = tf.where(keep, p, tf.zeros((), p.dtype))
            inv_keep = tf.constant(keep_threshold(rate)[1], p.dtype)
            y = tf.matmul(p_kept, v) * inv_keep
        else:
            keep, p_kept, inv_keep = None, p, None
            y = tf.matmul(p, v)

        def grad(dy):
            dy_scaled = dy * inv_keep if inv_keep is not None else dy
            dp_kept = tf.matmul(dy_scaled, v, transpose_b=True)
            dv = tf.matmul(p_kept, dy_scaled, transpose_a=True)
            # rowsum(dP * P) over the T keys equals rowsum(dY * Y) over the key_dim outputs
            row = tf.reduce_sum(dy * y, -1, keepdims=True)
            dp = tf.where(keep, dp_kept, tf.zeros((), dp_kept.dtype)) if keep is not None \
                else dp_kept
            ds = p * (dp - row)
            dq = tf.matmul(ds, k)
            dk = tf.matmul(ds, q, transpose_a=True)
            return dq, dk, dv

        return y, grad

    return attend(q, k, v)


#: samples per block of :func:`blocked_attention` (8 x 10 heads x 160 x 160 float32 = 8 MB of
#: scores per block: it stays in a server CPU's cache, unlike the whole batch's; the block
#: sizes compared are in benchmarks/README.md).
INFERENCE_BLOCK = 8


def blocked_attention(q, k, v, block=INFERENCE_BLOCK):
    """``softmax(q k^T) @ v`` (no dropout: inference) computed ``block`` samples at a time.

    Same standard ops as the unblocked form, so a SavedModel using it needs nothing but
    TensorFlow (TF Serving included); the ``[block, heads, T, T]`` score tensor of each step
    stays in the cache instead of the ``[batch, heads, T, T]`` tensor going through memory
    several times. Blocks are slices of the (dynamic) batch; the last one may be smaller, so
    nothing is padded and a single sample costs one small step.
    """
    batch = tf.shape(q)[0]
    n_blocks = (batch + block - 1) // block

    def step(i, out):
        lo = i * block
        hi = tf.minimum(lo + block, batch)
        qb, kb, vb = q[lo:hi], k[lo:hi], v[lo:hi]
        yb = tf.matmul(tf.nn.softmax(tf.matmul(qb, kb, transpose_b=True)), vb)
        return i + 1, out.write(i, yb)

    out = tf.TensorArray(q.dtype, size=n_blocks, infer_shape=False,
                         element_shape=tf.TensorShape([None]).concatenate(q.shape[1:]))
    _, out = tf.while_loop(lambda i, _: i < n_blocks, step, (tf.constant(0), out),
                           parallel_iterations=2)
    y = out.concat()
    return tf.ensure_shape(y, q.shape)
