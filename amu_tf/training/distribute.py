"""tf.distribute helpers: pick a strategy, size the batch, feed it, and write only on the chief.

The project trains on TensorFlow's own distribution engine::

    strategy = get_strategy("auto")          # Mirrored on GPUs, default on a CPU box
    with strategy.scope():
        model = build_model("amu:small"); model.compile(...)
    ds = make_dataset(X, y, batch_size=32, strategy=strategy, shuffle=True, seed=0)
    out = chief_artifact_dir("runs/x/model", strategy)   # a temp dir on non-chief workers
    model.fit(ds, epochs=..., callbacks=[backup_callback("runs/x/backup", strategy)])
    out.mkdir(parents=True, exist_ok=True); model.save(out / "model.keras")
    remove_if_not_chief(out, strategy)

Names (``--strategy`` on the CLI, ``ZooClassifier(strategy=...)``):

- ``auto``: ``MirroredStrategy`` when GPUs are visible, the default strategy otherwise;
- ``default``: the default (no-op) strategy, one device;
- ``mirrored``: ``MirroredStrategy`` over all visible GPUs (the CPU when there is none);
- ``multiworker``: ``MultiWorkerMirroredStrategy`` configured from the standard
  ``TF_CONFIG`` environment variable (one process per worker, the same command on each).

Under another Keras backend there is no tf.distribute: under JAX :func:`data_parallel` gives
``ZooClassifier`` a ``keras.distribution.DataParallel`` over the devices JAX sees
(``auto``/``mirrored``), or one device (``default``); PyTorch trains on one device.

``multiworker`` must be created before TensorFlow runs anything else in the process (a
TensorFlow rule for collective ops), so a command creates it first thing; the instance is
cached, and ``get_strategy("multiworker")`` returns the same object on later calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from amu_tf.errors import SpecError

STRATEGY_NAMES = ("auto", "default", "mirrored", "multiworker")

_MULTIWORKER = None  # the process's one MultiWorkerMirroredStrategy


# ---------------------------------------------------------------------------- TF_CONFIG
def read_tf_config(required: bool = False) -> dict | None:
    """The parsed, checked ``TF_CONFIG`` (``cluster`` + ``task``), or None when unset.

    Raises :class:`SpecError` (one line) when it is set but malformed, or when it is unset
    and ``required``.
    """
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        if required:
            raise SpecError(
                "strategy 'multiworker' needs the TF_CONFIG environment variable, e.g. "
                'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\' (see docs/distributed.md)'
            )
        return None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SpecError(f"TF_CONFIG is not valid JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(cfg, dict):
        raise SpecError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster, task = cfg.get("cluster"), cfg.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise SpecError("TF_CONFIG has no 'cluster' object (e.g. {\"worker\": [\"h1:port\", ...]})")
    for job, addrs in cluster.items():
        if not isinstance(addrs, list) or not addrs or not all(
            isinstance(a, str) and ":" in a for a in addrs
        ):
            raise SpecError(f"TF_CONFIG cluster job {job!r} must be a list of 'host:port' strings")
    if "worker" not in cluster and "chief" not in cluster:
        raise SpecError("TF_CONFIG cluster needs a 'worker' (or 'chief') job")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise SpecError("TF_CONFIG has no 'task' object with 'type' and 'index'")
    ttype, index = task["type"], task["index"]
    if ttype not in cluster and ttype != "evaluator":
        raise SpecError(f"TF_CONFIG task type {ttype!r} is not a job of the cluster {sorted(cluster)}")
    if not isinstance(index, int) or index < 0 or (
        ttype in cluster and index >= len(cluster[ttype])
    ):
        raise SpecError(
            f"TF_CONFIG task index {index!r} is out of range for job {ttype!r} "
            f"({len(cluster.get(ttype, []))} tasks)"
        )
    return cfg


def _task(strategy=None) -> tuple[str | None, int, bool]:
    """(task type, task index, has a chief job) of this process, None when not clustered."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is not None and getattr(resolver, "task_type", None) is not None:
        try:
            jobs = resolver.cluster_spec().as_dict()
        except Exception:  # noqa: BLE001 - a resolver without a spec: fall back to TF_CONFIG
            jobs = {}
        if jobs:
            return resolver.task_type, int(resolver.task_id or 0), "chief" in jobs
    cfg = read_tf_config(required=False)
    if cfg is None:
        return None, 0, False
    return cfg["task"]["type"], int(cfg["task"]["index"]), "chief" in cfg["cluster"]


def is_chief(strategy=None) -> bool:
    """True on the process that writes artifacts: no cluster at all, the ``chief`` task,
    or ``worker`` 0 when the cluster has no ``chief`` job."""
    ttype, index, has_chief = _task(strategy)
    if ttype is None:
        return True
    if ttype == "chief":
        return True
    return ttype == "worker" and index == 0 and not has_chief


def task_name(strategy=None) -> str:
    """``"worker-1"``, ``"chief-0"``; ``"local"`` outside a cluster."""
    ttype, index, _ = _task(strategy)
    return "local" if ttype is None else f"{ttype}-{index}"


# ---------------------------------------------------------------------------- strategies
def gpus_visible() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def _communication_options():
    """NCCL-or-ring picked by TensorFlow on GPUs; RING on CPU (collectives need it there)."""
    import tensorflow as tf

    impl = (tf.distribute.experimental.CommunicationImplementation.AUTO if gpus_visible()
            else tf.distribute.experimental.CommunicationImplementation.RING)
    return tf.distribute.experimental.CommunicationOptions(implementation=impl)


def _patch_keras_multiworker() -> bool:
    """Work around two Keras 3 bugs that stop ``fit`` under MultiWorkerMirroredStrategy
    (keras-team/keras#20585, tensorflow/tensorflow#72388; present in Keras 3.15):

    1. the TensorFlow trainer builds its metrics/optimizer from the first batch, got by
       ``strategy.reduce("MEAN", (x, y), axis=None)``; with several workers the collective
       reduce is handed the whole ``(x, y)`` tuple and fails ("Attempt to convert a value
       (PerReplica ...) to a Tensor"). The build only needs shapes and dtypes, so the patch
       takes this worker's first replica's batch instead (no collective);
    2. each step's logs (scalar loss and metrics) are reduced across workers with
       ``strategy.reduce("MEAN", v, axis=0)``, which fails on scalars ("Invalid reduction
       dimension 0 for input with 0 dimensions"). The patch reduces scalars with
       ``axis=None`` (the mean over all replicas of all workers), non-scalars as before.

    Applied once, when a multi-worker strategy is created; the patched functions hand
    every single-worker strategy to the original code. Returns True when in place.
    """
    try:
        from keras.src import tree
        from keras.src.backend.tensorflow import trainer as tf_trainer
    except ImportError:  # another Keras layout: nothing to patch
        return False
    cls = tf_trainer.TensorFlowTrainer
    original_build = getattr(cls, "_maybe_symbolic_build", None)
    original_reduce = getattr(tf_trainer, "reduce_per_replica", None)
    is_multi_worker = getattr(tf_trainer, "_collective_all_reduce_multi_worker", None)
    if original_build is None or original_reduce is None or is_multi_worker is None:
        return False
    if getattr(original_build, "_amu_patched", False):
        return True
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


def get_strategy(name: str = "auto"):
    """A ``tf.distribute.Strategy`` by name (see the module docstring); an instance passes
    through. Unknown names and a missing/invalid ``TF_CONFIG`` raise :class:`SpecError`."""
    global _MULTIWORKER
    import tensorflow as tf

    if isinstance(name, tf.distribute.Strategy):
        return name
    if name is None:
        name = "default"
    if name not in STRATEGY_NAMES:
        raise SpecError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGY_NAMES)}")
    if name == "auto":
        name = "mirrored" if gpus_visible() else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    # multiworker
    if _MULTIWORKER is not None:
        return _MULTIWORKER
    read_tf_config(required=True)
    _patch_keras_multiworker()
    try:
        _MULTIWORKER = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=_communication_options()
        )
    except (RuntimeError, ValueError) as exc:
        raise SpecError(
            "could not start MultiWorkerMirroredStrategy (create it before any other "
            f"TensorFlow work in the process): {str(exc).splitlines()[0]}"
        ) from None
    return _MULTIWORKER


def num_replicas(strategy=None) -> int:
    import tensorflow as tf

    return int((strategy or tf.distribute.get_strategy()).num_replicas_in_sync)


def global_batch_size(per_replica: int, strategy=None) -> int:
    """The global batch: ``per_replica`` x replicas in sync (all workers, all devices)."""
    per_replica = int(per_replica)
    if per_replica < 1:
        raise ValueError(f"batch size must be >= 1, got {per_replica}")
    return per_replica * num_replicas(strategy)


# ---------------------------------------------------------------------------- input
def make_dataset(x, y=None, batch_size: int = 32, strategy=None, shuffle: bool = False,
                 seed: int | None = 0, sample_weight=None):
    """An in-memory ``tf.data.Dataset`` for ``model.fit``/``evaluate`` under ``strategy``.

    ``batch_size`` is the per-replica batch; the dataset is batched at the global batch
    (:func:`global_batch_size`), which the strategy splits across replicas. Auto-sharding
    is set to ``DATA`` (in-memory data has no files to shard by): every worker builds the
    same dataset (same seed, so the same shuffled order) and keeps its own share of each
    global batch. Shuffling reshuffles every epoch from ``seed``. Elements are ``x``,
    ``(x, y)`` or ``(x, y, sample_weight)``.
    """
    import numpy as np
    import tensorflow as tf

    x = np.asarray(x, dtype=np.float32)
    parts = [x]
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        parts.append(y)
    if sample_weight is not None:
        if y is None:
            raise ValueError("sample_weight needs y")
        sample_weight = np.asarray(sample_weight, dtype=np.float32)
        if len(sample_weight) != len(x):
            raise ValueError(f"x has {len(x)} rows but sample_weight has {len(sample_weight)}")
        parts.append(sample_weight)
    if shuffle and seed is None and _task(strategy)[0] is not None:
        raise ValueError("shuffling on several workers needs a seed (every worker must "
                         "draw the same order for DATA sharding to split it)")
    ds = tf.data.Dataset.from_tensor_slices(parts[0] if len(parts) == 1 else tuple(parts))
    if shuffle:
        ds = ds.shuffle(max(1, len(x)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(global_batch_size(batch_size, strategy))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    if seed is not None:
        options.deterministic = True
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


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


# ---------------------------------------------------------------------------- writing
def backup_dir_for(backup_dir, strategy=None) -> Path:
    """This worker's own backup folder: ``backup_dir`` outside a cluster, else
    ``backup_dir/<task>-<index>`` (Keras 3's BackupAndRestore is not multi-worker aware:
    workers sharing a folder would overwrite, and delete, each other's files)."""
    backup_dir = Path(backup_dir)
    ttype, _, _ = _task(strategy)
    return backup_dir if ttype is None else backup_dir / task_name(strategy)


def backup_callback(backup_dir, strategy=None, delete_checkpoint: bool = True, **kwargs):
    """``keras.callbacks.BackupAndRestore`` saving every epoch into this worker's folder
    (:func:`backup_dir_for`); a restarted ``fit`` resumes from the last finished epoch.
    The model must be built (zoo models are) before ``fit``."""
    import keras

    return keras.callbacks.BackupAndRestore(
        backup_dir=str(backup_dir_for(backup_dir, strategy)),
        delete_checkpoint=delete_checkpoint, **kwargs,
    )


_TEMP_DIRS: set[Path] = set()  # temporary folders handed to non-chief workers


def chief_artifact_dir(path, strategy=None) -> Path:
    """Where this worker writes ``path``: ``path`` itself on the chief; on other workers
    ``<fresh temp folder>/<name of path>`` (not yet existing, like ``path`` may not be), so
    every worker runs the same save code (as multi-worker saving requires) but only the
    chief's copy is kept. Pass the result to :func:`remove_if_not_chief` when done."""
    path = Path(path)
    if is_chief(strategy):
        return path
    tmp = Path(tempfile.mkdtemp(prefix=f"amu-{task_name(strategy)}-"))
    _TEMP_DIRS.add(tmp)
    return tmp / path.name


def remove_if_not_chief(path, strategy=None) -> None:
    """Delete what a non-chief worker wrote under :func:`chief_artifact_dir` (its whole
    temporary folder); does nothing on the chief."""
    if is_chief(strategy):
        return
    path = Path(path)
    tmp = path.parent if path.parent in _TEMP_DIRS else path
    shutil.rmtree(tmp, ignore_errors=True)
    _TEMP_DIRS.discard(tmp)


@contextlib.contextmanager
def written_by_chief(path, strategy=None):
    """``with written_by_chief(uri) as target: ...write target...``: :func:`chief_artifact_dir`
    and :func:`remove_if_not_chief` in one block, e.g. around an ``ArtifactWriter(target,
    ...)``. Outside a cluster ``target`` is ``path`` and nothing is removed; the strategy
    may be omitted (the role comes from ``TF_CONFIG``)."""
    target = chief_artifact_dir(path, strategy)
    try:
        yield target
    finally:
        remove_if_not_chief(target, strategy)


# ---------------------------------------------------------------------------- CLI
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
    if name not in STRATEGY_NAMES:
        raise SpecError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGY_NAMES)}")
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


def strategy_option(func=None, *, default: str = "auto"):
    """Click option ``--strategy auto|default|mirrored|multiworker`` (value: the name).

    Use as ``@strategy_option`` on a command; pass the name to
    ``ZooClassifier(strategy=...)`` or :func:`get_strategy`. For ``multiworker`` call
    ``get_strategy`` at the start of the command, before other TensorFlow work.
    """
    import click

    decorator = click.option(
        "--strategy", "strategy",
        type=click.Choice(STRATEGY_NAMES), default=default, show_default=True,
        help="tf.distribute strategy: auto = MirroredStrategy when GPUs are visible, else "
        "default; mirrored = all local GPUs; multiworker = MultiWorkerMirroredStrategy "
        "from TF_CONFIG (run the same command on every worker).",
    )
    if func is None:
        return decorator
    return decorator(func)


__all__ = [
    "STRATEGY_NAMES", "backup_callback", "backup_dir_for", "chief_artifact_dir",
    "get_strategy", "global_batch_size", "gpus_visible", "is_chief", "make_dataset",
    "data_parallel", "num_replicas", "read_tf_config", "remove_if_not_chief", "strategy_option",
    "synchronized_batch_norm", "task_name", "written_by_chief",
]
