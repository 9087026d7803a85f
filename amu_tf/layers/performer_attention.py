"""Performer (FAVOR+) self-attention: softmax attention in time linear in the tokens."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="amu_tf")
class PerformerAttention(keras.layers.Layer):
    """Multi-head self-attention with the FAVOR+ positive random-feature softmax kernel.

    Softmax attention ``softmax(q k^T / sqrt(d)) v`` over all 15,674 tokens of a COMPASS
    sample would need a 15,674^2 matrix per head; FAVOR+ (Choromanski et al. 2021) replaces
    ``exp(q.k / sqrt(d))`` by ``phi(q).phi(k)`` with ``m`` positive random features, so the
    cost is linear in the tokens. This is the math of COMPASS's ``FastAttention`` (from
    lucidrains' performer-pytorch), step for step, so converted weights give the same outputs:

    - ``s = d**-0.25``; ``u = s * x @ P^T`` for the ``(m, d)`` projection matrix ``P``;
    - ``phi(x) = m**-0.5 * (exp(u - s**2 * |x|^2 / 2 - c) + eps)``, ``eps = 1e-4``, where the
      stabiliser ``c`` is, for queries, the row max of ``u`` over the features, and for keys
      the max of ``u`` over everything (heads, tokens, features): over the whole batch in
      the reference (``key_stabilizer="batch"``: a sample's output then depends slightly on
      its batch-mates through ``eps``), or per sample (``"sample"``, the default: the same
      output as the reference run one sample at a time, whatever the batch);
    - ``out_i = phi(q_i) . (sum_j phi(k_j) v_j^T) / (phi(q_i) . sum_j phi(k_j))``.

    The projection matrix is a weight (not trainable, not redrawn): the converted model uses
    the matrix COMPASS was trained with. Q, K, V have no bias; the output projection has one.
    There is no dropout (COMPASS's distilled encoder has none).

    Args:
        num_heads: number of heads.
        head_dim: width of each head (COMPASS: 32, with 2 heads on a model width of 32).
        num_features: number of random features ``m`` (COMPASS: ``int(d * ln d)`` = 110).
        key_stabilizer: ``"sample"`` or ``"batch"`` (see above).
        epsilon: the ``eps`` added to every feature.
        projection_initializer: initializer of the projection matrix when it is not loaded
            (default: N(0, 1) entries, an unstructured FAVOR draw, for which
            ``phi(q).phi(k)`` is an unbiased estimate of ``exp(q.k / sqrt(d))``).

    Input ``(batch, tokens, dim)``; output the same shape.
    """

    def __init__(self, num_heads=2, head_dim=32, num_features=110, key_stabilizer="sample",
                 epsilon=1e-4, projection_initializer=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if key_stabilizer not in ("sample", "batch"):
            raise ValueError(f"key_stabilizer must be 'sample' or 'batch', got {key_stabilizer!r}")
        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        self.num_features = int(num_features)
        self.key_stabilizer = key_stabilizer
        self.epsilon = float(epsilon)
        self.projection_initializer = keras.initializers.get(
            projection_initializer or keras.initializers.RandomNormal(stddev=1.0))
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        inner = self.num_heads * self.head_dim
        self.query_kernel = self.add_weight(name="query_kernel", shape=(dim, inner),
                                            initializer=self.kernel_initializer)
        self.key_kernel = self.add_weight(name="key_kernel", shape=(dim, inner),
                                          initializer=self.kernel_initializer)
        self.value_kernel = self.add_weight(name="value_kernel", shape=(dim, inner),
                                            initializer=self.kernel_initializer)
        self.output_kernel = self.add_weight(name="output_kernel", shape=(inner, dim),
                                             initializer=self.kernel_initializer)
        self.output_bias = self.add_weight(name="output_bias", shape=(dim,),
                                           initializer=self.bias_initializer)
        self.projection_matrix = self.add_weight(
            name="projection_matrix", shape=(self.num_features, self.head_dim),
            initializer=self.projection_initializer, trainable=False)

    def _heads(self, x, kernel):
        # (b, n, dim) @ (dim, h*d) -> (b, h, n, d)
        y = ops.matmul(x, kernel)
        shape = ops.shape(y)
        y = ops.reshape(y, (shape[0], shape[1], self.num_heads, self.head_dim))
        return ops.transpose(y, (0, 2, 1, 3))

    def _features(self, x, is_query):
        scale = self.head_dim ** -0.25
        ratio = self.num_features ** -0.5
        projection = ops.cast(self.projection_matrix, x.dtype)
        u = ops.einsum("bhnd,md->bhnm", x * scale, projection)
        diag = ops.sum(ops.square(x), axis=-1, keepdims=True) * (scale ** 2 / 2.0)
        if is_query:
            c = ops.max(u, axis=-1, keepdims=True)
        elif self.key_stabilizer == "sample":
            c = ops.max(u, axis=(1, 2, 3), keepdims=True)
        else:
            c = ops.max(u)
        return ratio * (ops.exp(u - diag - c) + self.epsilon)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        q = self._features(self._heads(x, self.query_kernel), is_query=True)
        k = self._features(self._heads(x, self.key_kernel), is_query=False)
        v = self._heads(x, self.value_kernel)
        k_sum = ops.sum(k, axis=2)                                   # (b, h, m)
        denominator = ops.einsum("bhnm,bhm->bhn", q, k_sum)
        context = ops.einsum("bhnm,bhne->bhme", k, v)                # (b, h, m, d)
        out = ops.einsum("bhnm,bhme->bhne", q, context) / ops.expand_dims(denominator, -1)
        out = ops.transpose(out, (0, 2, 1, 3))
        shape = ops.shape(out)
        out = ops.reshape(out, (shape[0], shape[1], self.num_heads * self.head_dim))
        return ops.matmul(out, self.output_kernel) + self.output_bias

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            head_dim=self.head_dim,
            num_features=self.num_features,
            key_stabilizer=self.key_stabilizer,
            epsilon=self.epsilon,
            projection_initializer=keras.initializers.serialize(self.projection_initializer),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
