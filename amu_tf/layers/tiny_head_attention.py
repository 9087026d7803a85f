"""Scaled-dot-product attention core for many tiny heads, with a hand-written gradient.

With heads of width 2 (the AMU paper: 10 heads of dim 2 over 160 genes) the work is in the
``[batch, heads, T, T]`` score tensor, 1 MB per sample in float32, and every pass over it is
memory-bound. TensorFlow's automatic gradient of ``dropout(softmax(S)) @ V`` makes about a
dozen passes (softmax gradient with its own reduction, dropout's mask multiply and select,
a float random tensor as large as the scores). This version makes fewer:

* the dropout mask is drawn as 16-bit integers, two per 32-bit Philox output, compared in
  place (half the random numbers, a bool mask instead of a float one) and applied with one
  select; the ``1/keep`` rescale is applied to the small ``[batch, heads, T, 2]`` output;
* the softmax gradient uses ``rowsum(dP * P) = rowsum(dY * Y)`` (as FlashAttention does),
  a reduction over the small output instead of over the scores.

Keep probability: ``round((1 - rate) * 65536) / 65536`` (0.899994 for rate 0.1), and the
output is divided by exactly that, so dropout stays unbiased.
"""

import tensorflow as tf


def stateless_seed(seed_generator):
    """The next seed of a ``keras.random.SeedGenerator`` as the int32 ``[2]`` tensor that
    stateless random ops and the compiled kernels take."""
    return tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), "int32")


def dropout_keep_mask(x, rate, seed):
    """A boolean ``keep`` mask shaped as ``x`` with ``P(keep) ~= 1 - rate``, and that
    probability. Two 16-bit uniform draws per 32-bit stateless Philox output; the last
    dimension of ``x`` must be static.
    """
    threshold = int(round((1.0 - rate) * 65536))
    last = int(x.shape[-1])
    half = (last + 1) // 2
    bits = tf.random.stateless_uniform(
        tf.concat([tf.shape(x)[:-1], [half]], 0), seed=seed, minval=None, maxval=None,
        dtype=tf.uint32,
    )
    low = tf.bitwise.bitwise_and(bits, tf.constant(0xFFFF, tf.uint32)) < tf.constant(
        threshold, tf.uint32
    )
    high = bits < tf.constant(threshold << 16, tf.uint32)
    keep = tf.concat([low, high], -1)
    if 2 * half != last:
        keep = keep[..., :last]
    return keep, threshold / 65536.0


def tiny_head_attention(q, k, v, rate=0.0, seed=None):
    """``dropout(softmax(q k^T), rate) @ v`` for ``q, k, v`` of shape ``(..., T, key_dim)``.

    ``q`` must already carry the ``1/sqrt(key_dim)`` scale. ``seed`` is a stateless seed
    (shape ``(2,)`` int32), needed when ``rate > 0``.
    """

    @tf.custom_gradient
    def attend(q, k, v):
        p = tf.nn.softmax(tf.matmul(q, k, transpose_b=True))
        if rate > 0.0:
            keep, keep_prob = dropout_keep_mask(p, rate, seed)
            p_kept = tf.where(keep, p, tf.zeros((), p.dtype))
            inv_keep = tf.constant(1.0 / keep_prob, p.dtype)
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
#: scores per block: stays in this CPU's 32 MB cache, unlike the whole batch's). Measured on
#: the 2-core EPYC (amu:paper, batch 256, tf.function, medians of 5): unblocked 465
#: samples/s, blocks of 2: 607, 4: 663, 8: 674.
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
