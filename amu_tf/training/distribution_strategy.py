"""The distribution strategy to train under, by name, and what follows from it.

The project trains on TensorFlow's own distribution engine::

    strategy = get_strategy("auto")          # Mirrored on GPUs, default on a CPU box
    with strategy.scope():
        model = build_model("amu:small"); model.compile(...)

Names (``--strategy`` on the CLI, ``ZooClassifier(strategy=...)``):

- ``auto``: ``MirroredStrategy`` when GPUs are visible, the default strategy otherwise;
- ``default``: the default (no-op) strategy, one device;
- ``mirrored``: ``MirroredStrategy`` over all visible GPUs (the CPU when there is none);
- ``multiworker``: ``MultiWorkerMirroredStrategy`` configured from the standard
  ``TF_CONFIG`` environment variable (one process per worker, the same command on each;
  see :mod:`amu_tf.training.cluster_config`).

``multiworker`` must be created before TensorFlow runs anything else in the process (a
TensorFlow rule for collective ops), and only once, so a command creates it first thing and
:func:`get_strategy` hands out that one instance on later calls (the only state this module
keeps, in the cache of :func:`_multiworker_strategy`).

Under another Keras backend there is no tf.distribute: under JAX :func:`data_parallel` gives
``ZooClassifier`` a ``keras.distribution.DataParallel`` over the devices JAX sees
(``auto``/``mirrored``), or one device (``default``); PyTorch trains on one device. This
module imports TensorFlow only inside the functions that need it, so :func:`data_parallel`
works where TensorFlow is not installed.

Also here: :func:`num_replicas` and :func:`global_batch_size` (the batch a strategy splits
across its replicas) and :func:`synchronized_batch_norm` (BatchNorm statistics over all
replicas, so every worker ends with the same model).
"""

from __future__ import annotations

import contextlib
import functools

from amu_tf.errors import SpecError
from amu_tf.training.cluster_config import cluster_resolver
from amu_tf.training.keras_multiworker_patch import apply_keras_multiworker_patch

STRATEGY_NAMES = ("auto", "default", "mirrored", "multiworker")


def _check_name(name):
    if name not in STRATEGY_NAMES:
        raise SpecError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGY_NAMES)}")


def gpus_visible() -> list:
    """The GPUs TensorFlow sees."""
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def _communication_options():
    """NCCL-or-ring picked by TensorFlow on GPUs; RING on CPU (collectives need it there)."""
    import tensorflow as tf

    impl = (tf.distribute.experimental.CommunicationImplementation.AUTO if gpus_visible()
            else tf.distribute.experimental.CommunicationImplementation.RING)
    return tf.distribute.experimental.CommunicationOptions(implementation=impl)


#: how long a worker may go without a heartbeat before the others abort (seconds). TensorFlow's
#: default is 10 s, which a worker on an oversubscribed CPU (two workers and other jobs on two
#: cores, as in CI) can miss while busy, aborting a healthy run with "heartbeat timeout".
HEARTBEAT_TIMEOUT_S = 120


def _configure_coordination(resolver):
    """Set up TensorFlow's coordination service as ``MultiWorkerMirroredStrategy`` would (it
    keeps a configuration it finds), with :data:`HEARTBEAT_TIMEOUT_S`. Uses TensorFlow's
    internal modules; if they change, the strategy configures itself with TF's defaults."""
    try:
        from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
        from tensorflow.python.distribute import multi_worker_util
        from tensorflow.python.eager import context
    except ImportError:  # pragma: no cover - a TensorFlow without these internals
        return
    ctx = context.context()
    if ctx.coordination_service is not None:
        return
    spec = resolver.cluster_spec()
    jobs = [coordination_config_pb2.CoordinatedJob(name=j, num_tasks=spec.num_tasks(j))
            for j in ("chief", "worker") if j in spec.jobs]
    if resolver.task_type not in ("chief", "worker") or not jobs:
        return
    ctx.configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_S * 1000,
    )


@functools.cache
def _multiworker_strategy():
    """The process's one ``MultiWorkerMirroredStrategy``, built from a checked ``TF_CONFIG``
    (its ``TFConfigClusterResolver``) with the Keras workaround in place. Cached: TensorFlow
    allows one per process. A failed attempt raises and caches nothing."""
    import tensorflow as tf

    resolver = cluster_resolver(required=True)
    apply_keras_multiworker_patch()
    _configure_coordination(resolver)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver, communication_options=_communication_options()
        )
    except (RuntimeError, ValueError) as exc:
        raise SpecError(
            "could not start MultiWorkerMirroredStrategy (create it before any other "
            f"TensorFlow work in the process): {str(exc).splitlines()[0]}"
        ) from None


def get_strategy(name: str = "auto"):
    """A ``tf.distribute.Strategy`` by name (see the module docstring); an instance passes
    through. Unknown names and a missing/invalid ``TF_CONFIG`` raise :class:`SpecError`."""
    import tensorflow as tf

    if isinstance(name, tf.distribute.Strategy):
        return name
    if name is None:
        name = "default"
    _check_name(name)
    if name == "auto":
        name = "mirrored" if gpus_visible() else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return _multiworker_strategy()


def data_parallel(name="auto"):
    """Under a Keras backend other than TensorFlow: a ``keras.distribution.DataParallel``
    over every device the backend sees (each batch split across them, weights replicated,
    gradients averaged), or None for one device. ``name`` is the strategy name of the
    TensorFlow path: ``auto`` and ``mirrored`` spread over all devices, ``default`` keeps one;
    ``multiworker`` is TensorFlow's (JAX's multi-host set-up is
    ``keras.distribution.initialize``) and is refused here."""
    import keras

    if not isinstance(name, (str, type(None))):
        raise SpecError(f"a tf.distribute strategy object needs the TensorFlow backend, not "
                        f"{keras.backend.backend()}")
    name = name or "default"
    _check_name(name)
    if name == "multiworker":
        raise SpecError("--strategy multiworker is TensorFlow's MultiWorkerMirroredStrategy; "
                        f"under the {keras.backend.backend()} backend use one process per "
                        "host with keras.distribution.initialize(), or KERAS_BACKEND="
                        "tensorflow")
    if name == "default" or keras.backend.backend() != "jax":
        return None  # Keras's distribution API is JAX's; PyTorch trains on one device
    devices = keras.distribution.list_devices()
    if len(devices) < 2:
        return None
    return keras.distribution.DataParallel(devices=devices)


def num_replicas(strategy=None) -> int:
    """Replicas in sync under ``strategy`` (all devices of all workers); the current
    strategy's when None."""
    import tensorflow as tf

    return int((strategy or tf.distribute.get_strategy()).num_replicas_in_sync)


def global_batch_size(per_replica: int, strategy=None) -> int:
    """The global batch: ``per_replica`` x replicas in sync (all workers, all devices)."""
    per_replica = int(per_replica)
    if per_replica < 1:
        raise ValueError(f"batch size must be >= 1, got {per_replica}")
    return per_replica * num_replicas(strategy)


@contextlib.contextmanager
def synchronized_batch_norm(model, strategy=None):
    """Within the block, every ``BatchNormalization`` of ``model`` computes its batch
    statistics over the global batch (all replicas of all workers; Keras's
    ``synchronized=True``) when ``strategy`` has more than one replica, so the moving
    mean/variance, like the trainable weights, are the same on every worker and equal to
    what one device would compute. Without it each worker keeps moving statistics of its
    own shard and the workers' saved models differ. The flag is restored afterwards (the
    saved config is unchanged)."""
    import keras

    layers = []
    if num_replicas(strategy) > 1:
        layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
                  if isinstance(layer, keras.layers.BatchNormalization)
                  and not layer.synchronized]
    for layer in layers:
        layer.synchronized = True
    try:
        yield model
    finally:
        for layer in layers:
            layer.synchronized = False


__all__ = [
    "STRATEGY_NAMES", "data_parallel", "get_strategy", "global_batch_size", "gpus_visible",
    "num_replicas", "synchronized_batch_norm",
]
