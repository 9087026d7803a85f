"""The custom layers: equations checked against plain NumPy, config round-trips."""

import keras
import numpy as np
import pytest

from amu_tf.layers import AMUHead, GeneEmbedding, TransformerEncoder


def _numpy_layer_norm(x, gamma, beta, eps):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def _numpy_encoder(x, layer, norm_first):
    """The transformer encoder equations written out in NumPy from the layer's weights."""
    att = layer.attention
    wq, bq = [w.numpy() for w in att._query_dense.weights]
    wk, bk = [w.numpy() for w in att._key_dense.weights]
    wv, bv = [w.numpy() for w in att._value_dense.weights]
    wo, bo = [w.numpy() for w in att._output_dense.weights]
    g1, b1 = [w.numpy() for w in layer.norm1.weights]
    g2, b2 = [w.numpy() for w in layer.norm2.weights]
    w_in, b_in = [w.numpy() for w in layer.ffn_in.weights]
    w_out, b_out = [w.numpy() for w in layer.ffn_out.weights]
    eps = layer.layer_norm_epsilon

    def mha(h):
        q = np.einsum("btd,dnk->btnk", h, wq) + bq
        k = np.einsum("btd,dnk->btnk", h, wk) + bk
        v = np.einsum("btd,dnk->btnk", h, wv) + bv
        scores = np.einsum("bqnk,bsnk->bnqs", q, k) / np.sqrt(q.shape[-1])
        scores = scores - scores.max(-1, keepdims=True)
        p = np.exp(scores)
        p = p / p.sum(-1, keepdims=True)
        ctx = np.einsum("bnqs,bsnk->bqnk", p, v)
        return np.einsum("bqnk,nkd->bqd", ctx, wo) + bo

    def ffn(h):
        return np.maximum(h @ w_in + b_in, 0) @ w_out + b_out

    if norm_first:
        x = x + mha(_numpy_layer_norm(x, g1, b1, eps))
        return x + ffn(_numpy_layer_norm(x, g2, b2, eps))
    x = _numpy_layer_norm(x + mha(x), g1, b1, eps)
    return _numpy_layer_norm(x + ffn(x), g2, b2, eps)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_matches_numpy(norm_first):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 6)).astype("float32")
    layer = TransformerEncoder(num_heads=3, key_dim=2, intermediate_dim=12, dropout=0.0,
                               norm_first=norm_first)
    layer.build(x.shape)
    # non-trivial LayerNorm parameters so that they are tested too
    for norm in (layer.norm1, layer.norm2):
        norm.gamma.assign(rng.normal(1.0, 0.2, size=6).astype("float32"))
        norm.beta.assign(rng.normal(0.0, 0.2, size=6).astype("float32"))
    got = keras.ops.convert_to_numpy(layer(x, training=False))
    want = _numpy_encoder(x.astype("float64"), layer, norm_first)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_encoder_dropout_applies_only_in_training():
    x = np.random.default_rng(1).normal(size=(2, 5, 4)).astype("float32")
    layer = TransformerEncoder(num_heads=2, key_dim=2, intermediate_dim=8, dropout=0.5)
    a = keras.ops.convert_to_numpy(layer(x, training=False))
    b = keras.ops.convert_to_numpy(layer(x, training=False))
    c = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert layer.attention.get_config()["dropout"] == 0.5  # dropout on attention weights


def test_gene_embedding_scales_with_expression():
    layer = GeneEmbedding(n_genes=5, embed_dim=3)
    x = np.array([[1.0, 2.0, 0.0, -1.0, 0.5]], dtype="float32")
    x2 = x.copy()
    x2[0, 1] *= 2
    t = keras.ops.convert_to_numpy(layer(x))
    t2 = keras.ops.convert_to_numpy(layer(x2))
    e = keras.ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_allclose(t2[0, 1], 2 * t[0, 1], rtol=1e-6)
    np.testing.assert_allclose(np.delete(t2, 1, axis=1), np.delete(t, 1, axis=1))
    np.testing.assert_allclose(t[0], x[0][:, None] * e, rtol=1e-6)
    np.testing.assert_array_equal(t[0, 2], 0.0)  # zero expression -> the zero token


def test_gene_embedding_bias_gives_bias_row_for_zero():
    layer = GeneEmbedding(n_genes=4, embed_dim=3, use_bias=True)
    x = np.array([[0.0, 1.0, 0.0, 3.0]], dtype="float32")
    t = keras.ops.convert_to_numpy(layer(x))
    b = keras.ops.convert_to_numpy(layer.bias)
    e = keras.ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_allclose(t[0, 0], b[0], rtol=1e-6)
    np.testing.assert_allclose(t[0, 2], b[2], rtol=1e-6)
    assert not np.allclose(t[0, 0], t[0, 2])  # zeros no longer collapse to one token
    np.testing.assert_allclose(t[0, 3], 3 * e[3] + b[3], rtol=1e-6)


def test_gene_embedding_rejects_wrong_width():
    with pytest.raises(ValueError, match="expects 5 genes"):
        GeneEmbedding(n_genes=5, embed_dim=3)(np.zeros((1, 6), "float32"))


def test_amu_head_max_over_channels():
    x = np.random.default_rng(2).normal(size=(2, 6, 4)).astype("float32")
    head = AMUHead(channels=3, num_classes=2, dropout=0.0)
    out = keras.ops.convert_to_numpy(head(x, training=False))
    w = keras.ops.convert_to_numpy(head.conv.kernel)[0]  # (4, 3)
    bn = head.batch_norm
    g, b, mean, var = [keras.ops.convert_to_numpy(v) for v in
                       (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)]
    h = (x @ w - mean) / np.sqrt(var + bn.epsilon) * g + b
    pooled = np.maximum(h, 0).max(-1)
    dw, db = [keras.ops.convert_to_numpy(v) for v in (head.classifier.kernel, head.classifier.bias)]
    np.testing.assert_allclose(out, pooled @ dw + db, atol=1e-5)
    assert head.conv.use_bias is False


@pytest.mark.parametrize(
    "layer",
    [
        GeneEmbedding(n_genes=7, embed_dim=3, use_bias=True, name="emb"),
        TransformerEncoder(num_heads=2, key_dim=3, intermediate_dim=9, dropout=0.2,
                           attention_dropout=0.3, norm_first=True, layer_norm_epsilon=1e-6),
        AMUHead(channels=3, num_classes=2, dropout=0.4),
    ],
)
def test_layer_config_round_trip(layer):
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    # and through Keras's registered-object serialisation
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config
