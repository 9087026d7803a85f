"""A workaround for two Keras 3 bugs that stop ``fit`` under MultiWorkerMirroredStrategy.

keras-team/keras#20585 and tensorflow/tensorflow#72388 (present in Keras 3.15):

1. the TensorFlow trainer builds its metrics/optimizer from the first batch, got by
   ``strategy.reduce("MEAN", (x, y), axis=None)``; with several workers the collective
   reduce is handed the whole ``(x, y)`` tuple and fails ("Attempt to convert a value
   (PerReplica ...) to a Tensor"). The build only needs shapes and dtypes, so the patch
   takes this worker's first replica's batch instead (no collective);
2. each step's logs (scalar loss and metrics) are reduced across workers with
   ``strategy.reduce("MEAN", v, axis=0)``, which fails on scalars ("Invalid reduction
   dimension 0 for input with 0 dimensions"). The patch reduces scalars with
   ``axis=None`` (the mean over all replicas of all workers), non-scalars as before.

The patch replaces private Keras code: ``TensorFlowTrainer._maybe_symbolic_build`` and
``reduce_per_replica`` in ``keras.src.backend.tensorflow.trainer``, and relies on that
module's ``_collective_all_reduce_multi_worker``. Before patching, :func:`patch_problem`
checks the installed Keras: Keras 3, those three names present, and the two replaced
functions still taking the arguments the replacements pass on. If the check fails the patch
is not applied and a warning says why (once per reason and process), since multi-worker
``fit`` is then likely to fail with one of the errors above; single-worker training is not
affected either way (the patched functions hand every single-worker strategy to the
original code).
"""

from __future__ import annotations

import functools
import inspect
import warnings

#: the parameters (after ``self``) of the replaced functions that the replacements pass on
_BUILD_PARAMS = ("iterator", "data_batch")
_REDUCE_PARAMS = ("values", "strategy", "reduction")


def _params(fn) -> tuple[str, ...]:
    """The parameter names of ``fn`` without ``self`` (of the original, for a patched one:
    ``inspect.signature`` follows ``__wrapped__``); () when they cannot be read."""
    try:
        return tuple(p for p in inspect.signature(fn).parameters if p != "self")
    except (TypeError, ValueError):
        return ()


def patch_problem() -> str | None:
    """None when the installed Keras has what the patch replaces, else why not (one line)."""
    import keras

    version = getattr(keras, "__version__", "?")
    if not version.startswith("3."):
        return f"Keras {version} is not Keras 3"
    try:
        from keras.src.backend.tensorflow import trainer as tf_trainer
    except ImportError:
        return f"Keras {version} has no keras.src.backend.tensorflow.trainer"
    build = getattr(getattr(tf_trainer, "TensorFlowTrainer", None), "_maybe_symbolic_build", None)
    if build is None:
        return f"Keras {version} has no TensorFlowTrainer._maybe_symbolic_build"
    for name in ("reduce_per_replica", "_collective_all_reduce_multi_worker"):
        if getattr(tf_trainer, name, None) is None:
            return f"Keras {version} has no keras.src.backend.tensorflow.trainer.{name}"
    reduce = tf_trainer.reduce_per_replica  # once patched, signature() reads __wrapped__
    if _params(build) != _BUILD_PARAMS:
        return (f"Keras {version}'s TensorFlowTrainer._maybe_symbolic_build takes "
                f"{_params(build)}, not {_BUILD_PARAMS}")
    if _params(reduce) != _REDUCE_PARAMS:
        return (f"Keras {version}'s reduce_per_replica takes {_params(reduce)}, "
                f"not {_REDUCE_PARAMS}")
    return None


@functools.cache
def _warn_once(problem: str) -> None:
    warnings.warn(
        f"amu_tf: the Keras multi-worker workaround (keras-team/keras#20585) is not applied: "
        f"{problem}; model.fit under MultiWorkerMirroredStrategy may fail "
        "(see amu_tf/training/keras_multiworker_patch.py)",
        RuntimeWarning, stacklevel=3,
    )


def apply_keras_multiworker_patch() -> bool:
    """Put the workaround in place (once; later calls find it there). Returns True when it
    is in place, False (after a one-time warning) when the installed Keras fails
    :func:`patch_problem`. Called when a multi-worker strategy is created."""
    problem = patch_problem()
    if problem is not None:
        _warn_once(problem)
        return False
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    cls = tf_trainer.TensorFlowTrainer
    original_build = cls._maybe_symbolic_build
    if getattr(original_build, "_amu_patched", False):
        return True
    original_reduce = tf_trainer.reduce_per_replica
    is_multi_worker = tf_trainer._collective_all_reduce_multi_worker
    import tensorflow as tf

    def _first_local(strategy, v):
        if isinstance(v, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(v)[0]
        return v

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if (getattr(self, "_distribute_strategy", None) is None or iterator is None
                or not is_multi_worker(self.distribute_strategy)):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        strategy = self.distribute_strategy
        for _, _, it in iterator:
            data_batch = tree.map_structure(lambda v: _first_local(strategy, v), next(it))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and is_multi_worker(strategy):
            def _reduce(v):
                rank = _first_local(strategy, v).shape.rank
                return strategy.reduce("MEAN", v, axis=None if rank == 0 else 0)

            return tree.map_structure(_reduce, values)
        return original_reduce(values, strategy, reduction)

    for fn, orig in ((_maybe_symbolic_build, original_build),
                     (reduce_per_replica, original_reduce)):
        fn._amu_patched = True
        fn.__wrapped__ = orig
    cls._maybe_symbolic_build = _maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    return True


__all__ = ["apply_keras_multiworker_patch", "patch_problem"]
