"""Train ``amu:paper`` for a few epochs on synthetic data on whatever accelerator the Keras
backend sees, and print the device, seconds per epoch and the loss (issue #18).

Made for a GPU machine without TensorFlow: it needs python3 with JAX (or PyTorch), numpy,
and the keras wheel; amu-tf itself is imported from the checkout (no install), and only its
pure-Keras parts are used (the model zoo: no TensorFlow, scikit-learn or pandas).

    KERAS_BACKEND=jax   python3 benchmarks/gpu_check.py            # every GPU JAX sees
    KERAS_BACKEND=torch python3 benchmarks/gpu_check.py --epochs 3
    KERAS_BACKEND=jax   python3 benchmarks/gpu_check.py --devices 1 # one GPU only

With several devices under JAX the batch is split across them by
``keras.distribution.DataParallel`` (what ``ZooClassifier`` uses). The first epoch includes
compilation; the median of the others is the figure to report. See benchmarks/README.md
("GPU check") for how to carry the wheels to a machine without internet.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KERAS_BACKEND", "jax")


def _devices(backend):
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id} ({getattr(d, 'device_kind', '?')})" for d in jax.devices()]
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                    for i in range(torch.cuda.device_count())]
        return ["cpu"]
    import keras

    return list(keras.distribution.list_devices())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="amu:paper")
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--devices", type=int, default=0, help="use the first N devices (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    import keras
    import numpy as np

    from amu_tf.models.zoo import build_model

    backend = keras.backend.backend()
    devices = _devices(backend)
    print(f"backend {backend} (keras {keras.__version__}); devices: {', '.join(devices)}",
          flush=True)
    keras.utils.set_random_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    y = rng.integers(0, 2, a.samples)
    X = rng.normal(size=(a.samples, 160)).astype("float32")
    X[:, :10] += 0.8 * (2 * y[:, None] - 1)  # a planted signal, so the loss must fall

    scope = None
    used = 1
    if backend == "jax" and (a.devices or len(devices)) > 1:
        names = keras.distribution.list_devices()[: a.devices or None]
        used = len(names)
        scope = keras.distribution.DataParallel(devices=names).scope()
        print(f"DataParallel over {used} devices (global batch {a.batch_size})", flush=True)
    with scope if scope is not None else contextlib.nullcontext():
        model = build_model(a.model)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        class _Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                s = time.perf_counter() - self.t
                seconds.append(s)
                print(f"epoch {epoch + 1}: {s:.2f} s, loss {logs['loss']:.4f}", flush=True)

        seconds = []
        model.fit(X, y, batch_size=a.batch_size, epochs=a.epochs, shuffle=True, verbose=0,
                  callbacks=[_Timer()])
    steady = seconds[1:] or seconds
    print(f"RESULT model={a.model} backend={backend} devices={used} device0={devices[0]} "
          f"samples={a.samples} batch={a.batch_size} first_epoch_s={seconds[0]:.2f} "
          f"median_epoch_s={statistics.median(steady):.3f} "
          f"samples_per_s={a.samples / statistics.median(steady):.0f}", flush=True)


if __name__ == "__main__":
    main()
