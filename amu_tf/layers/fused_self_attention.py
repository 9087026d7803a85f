"""Multi-head self-attention written for many tiny heads (the AMU paper's 10 heads of dim 2)."""

import math

import keras
from keras import ops

from amu_tf.kernels import tiny_attention as kernels


def _is_symbolic_training(training):
    return training is not None and not isinstance(training, bool)


@keras.saving.register_keras_serializable(package="amu_tf")
class FusedSelfAttention(keras.layers.Layer):
    """Self-attention with the math and the weights of ``keras.layers.MultiHeadAttention``,
    computed in fewer, larger operations.

    ``keras.layers.MultiHeadAttention(num_heads, key_dim, dropout)`` called as ``mha(x, x)``
    computes, per head ``h``::

        q_h = x Wq_h + bq_h,  k_h = x Wk_h + bk_h,  v_h = x Wv_h + bv_h
        P_h = dropout(softmax(q_h k_h^T / sqrt(key_dim)))
        out = sum_h (P_h v_h) Wo_h + bo

    This layer computes the same thing with one fused ``(d, 3 * heads * key_dim)`` QKV
    projection matmul (the ``1/sqrt(key_dim)`` scale folded into the query weights), the
    scores of all heads as one batched matmul into ``[batch, heads, T, T]``, a single
    softmax, dropout on the attention weights (training only), one batched matmul with
    the values and one output matmul; the ``[batch, heads, T, T]`` part has a hand-written
    gradient and a cheaper dropout mask (see :func:`tiny_head_attention`), because with
    heads of width 2 every pass over that tensor is memory-bound. In training on a CPU,
    the compiled kernel of :mod:`amu_tf.kernels.tiny_attention` replaces that part when it
    could be built (it never stores the ``[batch, heads, T, T]`` tensor); inference, and so
    every default SavedModel, uses standard TensorFlow ops, on a CPU
    :func:`blocked_attention` (a few samples at a time, so the scores stay in cache),
    except inside ``amu_tf.kernels.tiny_attention.inference_kernels()`` (the opt-in
    ``amu export --compiled-attention``), where inference runs the compiled op too.
    Its weights are the reference's, in the same order,
    shapes and sub-layer names (``_query_dense``, ``_key_dense``, ``_value_dense``,
    ``_output_dense``: ``EinsumDense`` layers named query, key, value, attention_output),
    so ``set_weights(reference.get_weights())`` switches implementation and ``.keras``
    files are interchangeable.

    Self-attention only (query = key = value), no masks.

    Args:
        num_heads: attention heads.
        key_dim: width of each head (used for queries, keys and values).
        dropout: dropout rate on the attention weights.
        use_bias: biases on the projections.
        kernel_initializer, bias_initializer: initializers of the projections.
        seed: seed of the attention dropout.
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        dropout=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed

    def _sublayer_kwargs(self):
        # fresh initializer instances per projection, as MultiHeadAttention does
        return dict(
            kernel_initializer=self.kernel_initializer.__class__.from_config(
                self.kernel_initializer.get_config()
            ),
            bias_initializer=self.bias_initializer.__class__.from_config(
                self.bias_initializer.get_config()
            ),
            dtype=self.dtype_policy,
        )

    def build(self, query_shape, value_shape=None):
        input_shape = query_shape
        n, k = self.num_heads, self.key_dim
        bias_axes = "de" if self.use_bias else None
        for attr, name in (("_query_dense", "query"), ("_key_dense", "key"),
                           ("_value_dense", "value")):
            dense = keras.layers.EinsumDense(
                "abc,cde->abde", output_shape=(None, n, k), bias_axes=bias_axes, name=name,
                **self._sublayer_kwargs(),
            )
            dense.build(input_shape)
            setattr(self, attr, dense)
        self._dropout_layer = keras.layers.Dropout(
            rate=self.dropout, dtype=self.dtype_policy, seed=self.seed
        )
        self._output_dense = keras.layers.EinsumDense(
            "abcd,cde->abe", output_shape=(None, input_shape[-1]),
            bias_axes="e" if self.use_bias else None, name="attention_output",
            **self._sublayer_kwargs(),
        )
        self._output_dense.build(tuple(input_shape[:-1]) + (n, k))

    # Public names as MultiHeadAttention has them: .keras files store the projections under
    # these, so files are interchangeable between the two implementations.
    @property
    def query_dense(self):
        return self._query_dense

    @property
    def key_dense(self):
        return self._key_dense

    @property
    def value_dense(self):
        return self._value_dense

    @property
    def output_dense(self):
        return self._output_dense

    # The computation ---------------------------------------------------------------------
    def _fused_qkv(self):
        """The ``(d, 3*n*k)`` kernel and ``(3*n*k,)`` bias, query part pre-scaled."""
        n, k = self.num_heads, self.key_dim
        scale = ops.cast(1.0 / math.sqrt(k), self.compute_dtype)
        kernels = [self._query_dense.kernel, self._key_dense.kernel, self._value_dense.kernel]
        kernels = [ops.cast(w, self.compute_dtype) for w in kernels]
        d = kernels[0].shape[0]
        kernel = ops.reshape(ops.concatenate([kernels[0] * scale] + kernels[1:], axis=1),
                             (d, 3 * n * k))
        if not self.use_bias:
            return kernel, None
        biases = [self._query_dense.bias, self._key_dense.bias, self._value_dense.bias]
        biases = [ops.cast(b, self.compute_dtype) for b in biases]
        bias = ops.reshape(ops.concatenate([biases[0] * scale] + biases[1:], axis=0),
                           (3 * n * k,))
        return kernel, bias

    def _attend(self, x, qkv_kernel, qkv_bias, training):
        n, k = self.num_heads, self.key_dim
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        qkv = ops.matmul(x, qkv_kernel)
        if qkv_bias is not None:
            qkv = qkv + qkv_bias
        rate = self.dropout if (self.dropout > 0.0 and training) else 0.0
        if (kernels.use_for_training(training, self.compute_dtype)
                or kernels.use_for_inference(training, self.compute_dtype)):
            # training on a CPU (or an export asking for it): the compiled per-(sample, head)
            # kernel, [B, T, 3*n*k] layout
            seed = self._dropout_seed() if rate else None
            return kernels.tiny_attention(qkv, n, rate, seed)
        qkv = ops.transpose(ops.reshape(qkv, (batch, length, 3, n, k)), (2, 0, 3, 1, 4))
        q, key, v = ops.unstack(qkv, 3, axis=0)  # each (batch, heads, T, k)
        if keras.backend.backend() == "tensorflow" and not _is_symbolic_training(training):
            # TensorFlow ops (imported here: other backends need no TensorFlow installed)
            from amu_tf.layers.tiny_head_attention import blocked_attention, tiny_head_attention

            if not training and kernels.cpu_graph_without_xla():
                # inference on CPU: a few samples at a time, scores in cache (standard ops)
                ctx = blocked_attention(q, key, v)
            else:
                seed = self._dropout_seed() if rate else None
                ctx = tiny_head_attention(q, key, v, rate, seed)
        else:  # generic path (other backends, symbolic ``training``)
            weights = ops.softmax(ops.matmul(q, ops.swapaxes(key, -1, -2)), axis=-1)
            if self.dropout > 0.0:
                weights = self._dropout_layer(weights, training=training)
            ctx = ops.matmul(weights, v)
        return ops.reshape(ops.transpose(ctx, (0, 2, 1, 3)), (batch, length, n * k))

    def _dropout_seed(self):
        from amu_tf.layers.tiny_head_attention import stateless_seed

        return stateless_seed(self._dropout_layer.seed_generator)

    def call(self, query, value=None, training=None):
        if value is not None and value is not query:
            raise ValueError("FusedSelfAttention computes self-attention only: call it as "
                             "layer(x) or layer(x, x)")
        x = query
        n, k = self.num_heads, self.key_dim
        d = x.shape[-1]
        kernel, bias = self._fused_qkv()
        ctx = self._attend(x, kernel, bias, training)
        out = ops.matmul(ctx, ops.reshape(ops.cast(self._output_dense.kernel,
                                                    self.compute_dtype), (n * k, d)))
        if self.use_bias:
            out = out + ops.cast(self._output_dense.bias, self.compute_dtype)
        return out

    def compute_output_shape(self, query_shape, value_shape=None):
        return query_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            dropout=self.dropout,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            seed=self.seed,
        )
        return config
