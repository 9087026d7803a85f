"""The compiled tiny-head attention kernel: build on first use, load, register its gradient.

``tiny_attention_kernel.cc`` (beside this file) is a TensorFlow CPU op computing
``dropout(softmax(q k^T)) v`` for every (sample, head) inside the L1 cache, FlashAttention
style: the ``[batch, heads, T, T]`` tensor is never stored, the backward pass recomputes
the scores and the dropout mask (a counter-based hash). It is used for **training**; at
inference layers keep standard TensorFlow ops, so a default SavedModel needs nothing but
TensorFlow (TF Serving). Inside :func:`inference_kernels` (``amu export
--compiled-attention``) inference uses it too: about 1.9x the throughput on a CPU, but
the SavedModel then holds the custom op ``AmuTinyAttention`` and loads only where this
library is loaded first (``amu predict``, :class:`amu_tf.serving.ExportedModel`, or a TF
Serving binary built with the op).

The op is compiled with the system's C++ compiler against the installed TensorFlow's
headers the first time it is needed (about 20 s) and cached; :mod:`amu_tf.kernels.build`
chooses the flags (tuned for this CPU, never with an extension TensorFlow's headers cannot
compile) and keys the cache by source, TensorFlow, compiler, flags and CPU. Without a
compiler, or when ``AMU_TF_KERNELS=0``, everything falls back, with one warning naming the
reason, to the TensorFlow-ops implementation
(:func:`amu_tf.layers.tiny_head_attention.tiny_head_attention`): slower, and the same model
for a seed, because it draws the very same counter-based dropout masks
(:func:`amu_tf.layers.tiny_head_attention.attention_keep_mask`,
:func:`~amu_tf.layers.tiny_head_attention.hash_dropout`).
"""

import contextlib
import os
import sys
import threading
import warnings
from pathlib import Path

from amu_tf.kernels import build as kernel_build

SOURCE = Path(__file__).with_name("tiny_attention_kernel.cc")
STEM = "amu_tiny_attention"
ENV_SWITCH = "AMU_TF_KERNELS"
_LOCK = threading.Lock()
_INFERENCE = {"depth": 0}
#: the custom op a SavedModel exported with :func:`inference_kernels` contains
INFERENCE_OP = "AmuTinyAttention"
_STATE = {"lib": None, "tried": False, "error": None}


def enabled_by_env():
    """False when ``AMU_TF_KERNELS`` is ``0``/``false``/``off``/``no``."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "off", "no")


def library_path(tf):
    """Where the op for this source, TensorFlow, compiler and CPU lives: the first target
    already built (native, or the ISA-level fallback), else where native would go."""
    paths = [kernel_build.library_path(tf, SOURCE, STEM, march)
             for march in kernel_build.candidate_targets()]
    return next((p for p in paths if p.exists()), paths[0])


def build(tf):
    """Compile the op if its cached library is missing; return the library's path (see
    :func:`amu_tf.kernels.build.build`: flags, cache, remembered failures)."""
    return kernel_build.build(
        tf, SOURCE, STEM, announce=lambda: kernel_build.announce_build("attention kernel"))


def load():
    """The loaded op library, or ``None`` (disabled, or the build failed: warns once)."""
    if not enabled_by_env():
        return None
    with _LOCK:
        if _STATE["tried"]:
            return _STATE["lib"]
        _STATE["tried"] = True
        import tensorflow as tf

        try:
            lib = tf.load_op_library(str(build(tf)))
        except Exception as exc:  # noqa: BLE001 - any failure means: use the TF-ops path
            _STATE["error"] = (str(exc) if isinstance(exc, kernel_build.KernelBuildError)
                               else f"{type(exc).__name__}: {exc}")
            warnings.warn(
                "amu-tf: the compiled attention kernel is unavailable "
                f"({_STATE['error']}); training uses the TensorFlow-ops attention (the same "
                f"model, about 4x slower). `amu doctor` shows the details; {ENV_SWITCH}=0 "
                "switches the kernel off without this warning", RuntimeWarning, stacklevel=2,
            )
            return None
        _register_gradient(tf, lib)
        _STATE["lib"] = lib
        return lib


def available():
    """True when training will use the compiled kernel."""
    return load() is not None


def cpu_graph_without_xla():
    """True when TensorFlow runs the current call on CPUs only and not inside an XLA
    (``jit_compile``) function: where the compiled ops (and the blocked inference loop of
    :func:`amu_tf.layers.tiny_head_attention.blocked_attention`) apply."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    if tf.config.list_logical_devices("GPU"):
        return False
    return not control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _usable(compute_dtype):
    """The compiled ops apply here: float32, TensorFlow backend, on a CPU outside XLA,
    switched on and built."""
    import keras

    if keras.backend.backend() != "tensorflow" or compute_dtype != "float32":
        return False
    if not enabled_by_env() or not cpu_graph_without_xla():
        return False
    return available()


def use_for_training(training, compute_dtype="float32"):
    """Whether a layer called with ``training`` should use the compiled ops: training on a
    CPU, float32, TensorFlow backend, outside XLA, switched on and built."""
    return training is True and _usable(compute_dtype)


@contextlib.contextmanager
def inference_kernels():
    """Within this block, layers traced for inference on a CPU use the compiled op too
    (float32, TensorFlow backend, outside XLA, switched on and built; see
    :func:`use_for_inference`). For exporting a faster, non-portable SavedModel."""
    with _LOCK:
        _INFERENCE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _INFERENCE["depth"] -= 1


def use_for_inference(training, compute_dtype="float32"):
    """Whether a layer called with ``training`` (not True) should use the compiled op:
    only inside :func:`inference_kernels`, and where :func:`use_for_training` would."""
    return bool(_INFERENCE["depth"]) and training is not True and _usable(compute_dtype)


def status():
    """One line for logs and ``amu`` output: which attention training uses, and why."""
    if not enabled_by_env():
        return f"attention kernel: off ({ENV_SWITCH}=0), TensorFlow-ops attention"
    if available():
        return ("attention kernel: compiled (training; inference only in --compiled-attention "
                "exports), TensorFlow ops (other inference, default exports)")
    return f"attention kernel: unavailable ({_STATE['error']}), TensorFlow-ops attention"


def _register_gradient(tf, lib):
    from tensorflow.python.framework import ops as tf_ops

    try:
        tf_ops.gradient_registry.lookup("AmuTinyAttention")
        return  # registered already (module reloaded)
    except LookupError:
        pass

    @tf.RegisterGradient("AmuTinyAttention")
    def _grad(op, dy, _dlse):
        dqkv = lib.amu_tiny_attention_grad(
            op.inputs[0], op.inputs[1], op.outputs[0], op.outputs[1], dy,
            num_heads=op.get_attr("num_heads"), rate=op.get_attr("rate"),
        )
        return [dqkv, None]

    @tf.RegisterGradient("AmuHashDropout")
    def _dropout_grad(op, dy):
        # y = x * mask / keep, the mask a function of (seed, index): dx = the same op on dy
        return [lib.amu_hash_dropout(dy, op.inputs[1], rate=op.get_attr("rate")), None]


def tiny_attention(qkv, num_heads, rate=0.0, seed=None):
    """``dropout(softmax(q k^T), rate) v`` per head, through the compiled op.

    ``qkv``: ``[batch, T, 3 * num_heads * key_dim]`` float32, the fused projection with
    the query part already scaled by ``1/sqrt(key_dim)`` (layout of
    ``reshape(qkv, [batch, T, 3, num_heads, key_dim])``). Returns ``[batch, T,
    num_heads * key_dim]``. ``seed``: int32 ``[2]``, needed when ``rate > 0``.
    Raises ``RuntimeError`` when the kernel is unavailable (check :func:`available`).
    """
    lib = load()
    if lib is None:
        raise RuntimeError("the compiled attention kernel is unavailable: " + status())
    import tensorflow as tf

    if seed is None:
        seed = tf.zeros((2,), tf.int32)
    y, _ = lib.amu_tiny_attention(qkv, tf.cast(seed, tf.int32), num_heads=int(num_heads),
                                  rate=float(rate))
    return y


def hash_dropout(x, rate, seed):
    """Inverted dropout of float32 ``x`` through the compiled op: an element is kept when a
    hash of (seed, its flat index) says so (probability ``round((1 - rate) * 2^24) / 2^24``)
    and divided by exactly that probability. About twice as fast as ``keras.layers.Dropout``
    on this CPU (no random tensor is stored; the gradient regenerates the mask).
    Raises ``RuntimeError`` when the kernel is unavailable (check :func:`available`).
    """
    lib = load()
    if lib is None:
        raise RuntimeError("the compiled kernels are unavailable: " + status())
    import tensorflow as tf

    return lib.amu_hash_dropout(x, tf.cast(seed, tf.int32), rate=float(rate))


if __name__ == "__main__":  # python -m amu_tf.kernels.tiny_attention: build and report
    print(status())
    sys.exit(0 if available() else 1)
