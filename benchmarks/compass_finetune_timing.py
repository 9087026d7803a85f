"""How long one epoch of fine-tuning COMPASS's encoder under a small head takes on this
machine (issue #23, ``amu:compass``): is it feasible on CPU?

    .venv/bin/python benchmarks/compass_finetune_timing.py --batch-size 16 --steps 2

Builds the ``compass`` preset (pre-trained weights), a head (mean of the gene tokens ->
Dense(16, relu) -> Dense(1, sigmoid)), Adam with the encoder's gradients scaled by 0.1 (a
lower learning rate for the encoder), and times ``--steps`` training steps on one random
batch of COMPASS's shape (speed does not depend on the values), after one warm-up step.
Prints samples per second and the implied time of one epoch over the 231 labeled patients
of the four shared cohorts, and of a leave-one-cohort-out run (4 folds x ``--epochs``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    a = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from amu_tf.kernels.build import cpu_model
    from amu_tf.models.compass_encoder import CompassEncoder

    enc = CompassEncoder.from_preset("compass")
    head1 = keras.layers.Dense(16, activation="relu")
    head2 = keras.layers.Dense(1, activation="sigmoid")
    opt = keras.optimizers.Adam(1e-3)
    rng = np.random.default_rng(0)
    x = rng.random((a.batch_size, enc.n_genes), dtype=np.float32)
    ct = np.full(a.batch_size, 25, np.int32)
    y = (rng.random((a.batch_size, 1)) > 0.5).astype(np.float32)
    loss_fn = keras.losses.BinaryCrossentropy()

    @tf.function
    def step(x, ct, y):
        with tf.GradientTape() as tape:
            tokens = enc({"expression": x, "cancer_type": ct}, training=True)
            p = head2(head1(tf.reduce_mean(tokens[:, 2:, :], axis=1)))
            loss = loss_fn(y, p)
        enc_vars = enc.trainable_variables
        head_vars = head1.trainable_variables + head2.trainable_variables
        grads = tape.gradient(loss, enc_vars + head_vars)
        grads = [tf.IndexedSlices(g.values * 0.1, g.indices, g.dense_shape)
                 if isinstance(g, tf.IndexedSlices) else g * 0.1
                 for g in grads[:len(enc_vars)]] + grads[len(enc_vars):]
        opt.apply_gradients(zip(grads, enc_vars + head_vars))
        return loss

    step(x, ct, y)  # warm-up (tracing)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step(x, ct, y)
    dt = (time.perf_counter() - t0) / a.steps
    sps = a.batch_size / dt
    epoch = 231 / sps
    print(f"CPU: {cpu_model()}; {len(os.sched_getaffinity(0))} cores visible; batch "
          f"{a.batch_size}: {dt:.1f} s per step, {sps:.2f} samples/s in training; one epoch "
          f"over 231 patients {epoch / 60:.1f} min; LOCO, 4 folds x {a.epochs} epochs of about "
          f"3/4 of them: {4 * a.epochs * 0.75 * epoch / 3600:.1f} h")


if __name__ == "__main__":
    main()
