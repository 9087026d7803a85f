"""Benchmark the `amu:paper` model: Keras MultiHeadAttention reference vs the fused attention.

Builds both implementations with the same weights, checks that they agree (dropout off;
in training mode the optimised model runs the compiled kernel of
``amu_tf.kernels.tiny_attention`` when it could be built), then times, in the same process
and interleaved (reference, optimised, reference, ...), training epochs (warm-up excluded,
median of several repeats) and batched inference of exported SavedModels: the reference,
the portable export (standard ops, ``amu export``) and the compiled-attention export
(``amu export --compiled-attention``), checked to agree to 1e-5. Prints the ratios; the
last line reads ``train_speedup=<x> infer_samples_per_s=<y>`` (``y``: the fastest export,
the compiled one when the kernel could be built; the portable figure is on the line
before).

    .venv/bin/python benchmarks/bench_amu.py                # the figures in benchmarks/README.md
    .venv/bin/python benchmarks/bench_amu.py --repeats 2 --samples 64   # a quick look

No data are read: the inputs are random normal expression vectors (speed does not depend
on the values).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _build(impl, weights=None, **overrides):
    from amu_tf.models import build_model

    model = build_model("amu:paper", attention_impl=impl, **overrides)
    if weights is not None:
        model.set_weights(weights)
    return model


def _compile(model, lr, steps_per_execution=1):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return model


def check_parity(x) -> dict:
    """Max |difference| of the logits, inference and training mode, all dropout off
    (training mode: the compiled kernel, when available)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    ref = _build("keras", dropout=0.0, head_dropout=0.0)
    fused = _build("fused", ref.get_weights(), dropout=0.0, head_dropout=0.0)
    out = {}
    for training in (False, True):
        a = ref(x, training=training).numpy()
        b = fused(x, training=training).numpy()
        out["train" if training else "infer"] = float(np.abs(a - b).max())
    grads = []
    for m in (ref, fused):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(m(tf.constant(x), training=True)))
        grads.append(tape.gradient(loss, m.trainable_weights))
    # relative to the largest gradient entry: some gradients are 0 in exact arithmetic
    # (the key bias: softmax is shift-invariant) and only rounding noise in float32
    pairs = [(g1.numpy(), g2.numpy()) for g1, g2 in zip(*grads)
             if g1 is not None and g2 is not None]
    scale = max(np.abs(a).max() for a, _ in pairs)
    out["grad_rel"] = float(max(np.abs(a - b).max() for a, b in pairs) / scale)
    nones = [(g1 is None, g2 is None) for g1, g2 in zip(*grads)]
    if any(a != b for a, b in nones):
        raise AssertionError("the two implementations have different gradient structure")
    return out


#: training variants: name -> (attention_impl, compiled kernel on)
TRAIN_VARIANTS = {
    "reference": ("keras", False),
    "fused-tfops": ("fused", False),
    "optimised": ("fused", True),
}


def _kernel_env(on):
    from amu_tf.kernels import tiny_attention as kernel

    os.environ[kernel.ENV_SWITCH] = "1" if on else "0"


def time_training(x, y, batch_size, repeats, steps_per_execution, variants=TRAIN_VARIANTS):
    """Median seconds per epoch of each variant, interleaved (reference, fused, kernel,
    reference, ...). ``optimised`` is what the project trains with: fused attention with
    the compiled kernel (falls back to ``fused-tfops`` where it cannot be built)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    weights = _build("keras").get_weights()
    models = {name: _compile(_build(impl, weights), 1e-4,
                             1 if impl == "keras" else steps_per_execution)
              for name, (impl, _) in variants.items()}

    def data():
        return (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
                .batch(batch_size).prefetch(tf.data.AUTOTUNE))

    ds = data()
    times = {name: [] for name in models}
    for name, m in models.items():  # warm-up: tracing (the kernel switch is read here)
        _kernel_env(variants[name][1])
        m.fit(ds, epochs=1, verbose=0)
    for _ in range(repeats):
        for name, m in models.items():
            _kernel_env(variants[name][1])
            start = time.perf_counter()
            m.fit(ds, epochs=1, verbose=0)
            times[name].append(time.perf_counter() - start)
    _kernel_env(True)
    return {k: statistics.median(v) for k, v in times.items()}, times


def _export(model, path, mode):
    """``mode``: ``portable`` (standard ops), ``xla`` (the same in ``jit_compile``) or
    ``compiled`` (attention traced with the compiled op, as ``amu export
    --compiled-attention``)."""
    import contextlib

    import tensorflow as tf

    from amu_tf.kernels import tiny_attention as kernel

    @tf.function(input_signature=[tf.TensorSpec([None, model.n_genes], tf.float32,
                                                name="expression")],
                 jit_compile=mode == "xla")
    def serve(expression):
        return {"logits": model(expression, training=False)}

    module = tf.Module()
    module.model = model
    module.serve = serve
    tracing = kernel.inference_kernels() if mode == "compiled" else contextlib.nullcontext()
    with tracing:
        tf.saved_model.save(module, path, signatures={"serving_default": serve})
    has_op = kernel.INFERENCE_OP.encode() in open(os.path.join(path, "saved_model.pb"), "rb").read()
    if has_op != (mode == "compiled"):
        raise AssertionError(f"{mode} export: custom op in graph = {has_op}")


def time_inference(x, batch_sizes, repeats, weights, xla=False):
    """Samples per second of loaded SavedModels: the Keras reference; the fused model with
    standard ops (``portable``, what ``amu export`` writes by default); the same under XLA
    (``--xla``); the fused model with the compiled attention op (``compiled``, ``amu export
    --compiled-attention``: not portable)."""
    import tensorflow as tf

    from amu_tf.kernels import tiny_attention as kernel

    variants = {"reference": ("keras", "portable"), "portable": ("fused", "portable")}
    if xla:
        variants["portable+xla"] = ("fused", "xla")
    if kernel.available():
        variants["compiled"] = ("fused", "compiled")
    loaded = {}
    tmp = tempfile.mkdtemp(prefix="bench_amu_")
    for name, (impl, mode) in variants.items():
        path = os.path.join(tmp, name)
        _export(_build(impl, weights), path, mode)
        loaded[name] = tf.saved_model.load(path).signatures["serving_default"]
    results = {}
    for bs in batch_sizes:
        batches = [tf.constant(x[i:i + bs]) for i in range(0, len(x) - bs + 1, bs)]
        n = sum(int(b.shape[0]) for b in batches)
        for fn in loaded.values():  # warm-up (XLA compiles per batch shape)
            fn(expression=batches[0])
        times = {name: [] for name in loaded}
        for _ in range(repeats):
            for name, fn in loaded.items():
                start = time.perf_counter()
                for b in batches:
                    fn(expression=b)["logits"].numpy()
                times[name].append(time.perf_counter() - start)
        results[bs] = {name: n / statistics.median(t) for name, t in times.items()}
    # agreement of the exported models
    out = {name: fn(expression=tf.constant(x[:16]))["logits"].numpy()
           for name, fn in loaded.items()}
    diff = {k: float(np.abs(out[k] - out["reference"]).max()) for k in out if k != "reference"}
    return results, diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=224, help="training set size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per model")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--infer-samples", type=int, default=1024)
    parser.add_argument("--infer-batch", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--infer-repeats", type=int, default=5)
    parser.add_argument("--xla", action="store_true",
                        help="also time the portable export under XLA (slower here)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    print(f"machine: {_cpu_name()}, {os.cpu_count()} CPU(s) visible, "
          f"load average {os.getloadavg()[0]:.2f} at start; python {platform.python_version()}, "
          f"tensorflow {tf.__version__}, keras {keras.__version__}")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(max(args.samples, args.infer_samples), 160)).astype("float32")
    y = rng.integers(0, 2, size=len(x))

    parity = check_parity(x[:8])
    print(f"parity (dropout off): max |logit diff| inference {parity['infer']:.2e}, "
          f"training mode {parity['train']:.2e}; max gradient diff / max |gradient| "
          f"{parity['grad_rel']:.2e}")
    if max(parity["infer"], parity["train"]) > 1e-5:
        print("PARITY FAILED", file=sys.stderr)
        return 1

    from amu_tf.kernels import tiny_attention as kernel

    print(kernel.status())
    med, all_times = time_training(x[:args.samples], y[:args.samples], args.batch_size,
                                   args.repeats, args.steps_per_execution)
    speedup = med["reference"] / med["optimised"]
    for name, t in all_times.items():
        print(f"train {name:11s}: median {med[name]:.3f} s/epoch "
              f"({args.samples} samples, batch {args.batch_size}); runs "
              + " ".join(f"{v:.2f}" for v in t))
    best = {k: min(v) for k, v in all_times.items()}
    print(f"train speedup, best epochs (reference / optimised): "
          f"{best['reference'] / best['optimised']:.2f}x (epochs throttled by a CPU quota "
          f"inflate medians; the best epoch of each is the unthrottled figure)")
    print(f"train speedup (reference / fused-tfops): "
          f"{med['reference'] / med['fused-tfops']:.2f}x; "
          f"(reference / optimised = fused + compiled kernel): {speedup:.2f}x")

    keras.utils.set_random_seed(0)
    weights = _build("keras").get_weights()
    infer, diff = time_inference(x[:args.infer_samples], args.infer_batch,
                                 args.infer_repeats, weights, xla=args.xla)
    print("SavedModel agreement, max |logit diff| vs reference: "
          + ", ".join(f"{k} {v:.2e}" for k, v in diff.items()))
    if max(diff.values()) > 1e-5:
        print("SAVEDMODEL PARITY FAILED", file=sys.stderr)
        return 1
    for bs, row in infer.items():
        print(f"infer batch {bs:4d}: " + ", ".join(f"{k} {v:.0f}/s" for k, v in row.items())
              + "; vs reference: " + ", ".join(f"{k} {v / row['reference']:.2f}x"
                                              for k, v in row.items() if k != "reference"))
    best_portable = max(row["portable"] for row in infer.values())
    fastest = "compiled" if "compiled" in next(iter(infer.values())) else "portable"
    best = max(row[fastest] for row in infer.values())
    print(f"best SavedModel throughput: portable (standard ops) {best_portable:.0f}/s; "
          f"{fastest} {best:.0f}/s")
    print(f"train_speedup={speedup:.2f} infer_samples_per_s={best:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
