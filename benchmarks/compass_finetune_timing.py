"""How long fine-tuning ``amu:compass`` (COMPASS's pre-trained encoder under a small head)
takes on this machine (issue #23): is it feasible on CPU?

    .venv/bin/python benchmarks/compass_finetune_timing.py --batch-size 16 --steps 2

Builds the zoo model ``amu:compass`` (``CompassClassifier.from_preset("pretrained")``: the
converted pre-trained encoder, the patient token -> Dense 16 -> Dense 1 head), compiles it
with the optimizer ``ZooClassifier`` gives it (``LayerwiseAdam``: the encoder at a tenth of
the head's learning rate), and times ``--steps`` calls of ``train_on_batch`` on one random
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

    from amu_tf.kernels.build import cpu_model
    from amu_tf.models.compass_classifier import CompassClassifier
    from amu_tf.training.zoo_classifier import ZooClassifier

    model = CompassClassifier.from_preset("pretrained")
    est = ZooClassifier(model="amu:compass")
    model.compile(optimizer=est._make_optimizer(100, model),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.random((a.batch_size, model.n_genes), dtype=np.float32)
    y = np.arange(a.batch_size) % 2
    model.train_on_batch(x, y)  # warm-up (tracing)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        model.train_on_batch(x, y)
    dt = (time.perf_counter() - t0) / a.steps
    sps = a.batch_size / dt
    epoch = 231 / sps
    print(f"CPU: {cpu_model()}; {len(os.sched_getaffinity(0))} cores visible; Keras backend "
          f"{keras.backend.backend()}; batch {a.batch_size}: {dt:.1f} s per step, {sps:.2f} "
          f"samples/s in training; one epoch over 231 patients {epoch / 60:.1f} min; LOCO, "
          f"4 folds x {a.epochs} epochs of about 3/4 of them: "
          f"{4 * a.epochs * 0.75 * epoch / 3600:.1f} h")


if __name__ == "__main__":
    main()
