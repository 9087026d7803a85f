"""Self-supervised pre-training of an AMU model's gene embedding and encoders by masked-gene
reconstruction (issue #15, lever 1): the "mRNA embedding" idea of the AMU paper taken
literally, on expression alone, no label.

Each step hides a random ``mask_rate`` share of every sample's genes (their input value set
to 0, the cohort mean of a ``cohort_z`` input, so their tokens ``x_g * E_g`` are empty) and
asks the encoders to reconstruct the hidden values from the visible genes; the loss is the
mean squared error over the hidden genes only. A per-gene linear read-out of each token
(:class:`_GeneReadout`, thrown away afterwards) turns the encoders' output back into one value
per gene: a shared read-out could not tell the hidden genes apart, as their tokens are all
zero. The gene embedding and encoder weights are those of the classifier itself (the layers
are shared), so fine-tuning starts from what pre-training learnt.
"""

from __future__ import annotations

import numpy as np


def _readout_class():
    import keras

    class _GeneReadout(keras.layers.Layer):
        """``value_g = h_g . w_g + b_g``: one linear read-out per gene token."""

        def build(self, input_shape):
            n_genes, dim = int(input_shape[-2]), int(input_shape[-1])
            self.w = self.add_weight(name="w", shape=(n_genes, dim),
                                     initializer="glorot_uniform")
            self.b = self.add_weight(name="b", shape=(n_genes,), initializer="zeros")

        def call(self, h):
            return keras.ops.sum(h * self.w, axis=-1) + self.b

    return _GeneReadout


def reconstruction_model(model):
    """A Keras model ``expression -> reconstructed expression`` that shares ``model``'s
    gene embedding, encoders and final norm (``model`` is an AMU-family zoo model)."""
    import keras

    from amu_tf.layers.transformer_encoder import TransformerEncoder

    try:
        embedding = model.get_layer("gene_embedding")
    except ValueError:
        raise ValueError(f"masked-gene pre-training needs a model with a gene embedding "
                         f"(the amu and amu-ft families), not {model.name!r}") from None
    inputs = keras.Input(shape=(embedding.n_genes,), dtype="float32", name="masked_expression")
    x = embedding(inputs)
    for layer in model.layers:
        if isinstance(layer, TransformerEncoder):
            x = layer(x)
    if any(layer.name == "final_norm" for layer in model.layers):
        x = model.get_layer("final_norm")(x)
    out = _readout_class()(name="gene_readout")(x)
    return keras.Model(inputs, out, name=f"{model.name}_masked_genes")


def masked_mse(y_true, y_pred):
    """Mean squared error over the hidden genes: ``y_true`` is ``[values, mask]`` side by
    side (``mask`` 1 where the gene was hidden)."""
    from keras import ops

    n = ops.shape(y_pred)[-1]
    values, mask = y_true[:, :n], y_true[:, n:]
    err = ops.square(y_pred - values) * mask
    return ops.sum(err, axis=-1) / ops.maximum(ops.sum(mask, axis=-1), 1.0)


def masked_copies(X, epochs: int, mask_rate: float, seed: int):
    """``epochs`` masked copies of ``X`` stacked (one fresh mask per sample and epoch): the
    masked inputs and the ``[values, mask]`` targets of :func:`masked_mse`. Genes missing in a
    sample (NaN) are never a target and are fed as 0."""
    X = np.asarray(X, dtype=np.float32)
    rng = np.random.default_rng(seed)
    finite = np.isfinite(X)
    values = np.where(finite, X, 0.0).astype(np.float32)
    mask = (rng.random((epochs,) + X.shape) < mask_rate) & finite[None]
    inputs = np.where(mask, 0.0, values[None]).reshape(-1, X.shape[1]).astype(np.float32)
    targets = np.concatenate([np.broadcast_to(values, mask.shape).reshape(-1, X.shape[1]),
                              mask.reshape(-1, X.shape[1]).astype(np.float32)], axis=1)
    return inputs, targets


def pretrain_masked_genes(model, X, *, epochs=30, mask_rate=0.15, batch_size=32,
                          learning_rate=1e-3, seed=0, verbose=0, multiple=1) -> dict:
    """Pre-train ``model``'s embedding and encoders in place on the rows of ``X`` (no
    labels); returns ``{"loss": [...], "baseline_loss": ...}``: the masked MSE per epoch, and
    that of predicting every hidden gene as 0 (the cohort mean), which pre-training must beat
    to have learnt anything. ``multiple``: pad each epoch's rows with rows that hide nothing
    (loss 0) to a multiple of it (the device count of a data-parallel distribution)."""
    import keras

    if not 0 < mask_rate < 1:
        raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate!r}")
    if epochs < 1:
        raise ValueError(f"pre-training epochs must be at least 1, got {epochs!r}")
    recon = reconstruction_model(model)
    recon.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=masked_mse)
    inputs, targets = masked_copies(X, epochs, mask_rate, seed)
    n = X.shape[1]
    mask = targets[:, n:]
    baseline = float(np.mean((np.square(targets[:, :n]) * mask).sum(1)
                             / np.maximum(mask.sum(1), 1.0)))
    per_epoch = len(X)
    losses = []
    for e in range(epochs):  # one fit per epoch: each epoch sees its own masks, shuffled
        part = slice(e * per_epoch, (e + 1) * per_epoch)
        x_e, t_e = inputs[part], targets[part]
        pad = (-len(x_e)) % multiple
        if pad:
            x_e = np.concatenate([x_e, np.zeros((pad, n), np.float32)])
            t_e = np.concatenate([t_e, np.zeros((pad, 2 * n), np.float32)])
        hist = recon.fit(x_e, t_e, batch_size=batch_size, epochs=1, shuffle=True,
                         verbose=verbose)
        losses.append(float(hist.history["loss"][-1]))
    return {"loss": losses, "baseline_loss": baseline, "n_rows": int(len(X)),
            "mask_rate": float(mask_rate)}
