"""Which process of which cluster this is: the ``TF_CONFIG`` environment variable.

A multi-worker job runs the same command on every worker, each with its own ``TF_CONFIG``::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}'

Two readers of that variable, for two needs:

- :func:`read_tf_config` checks it without TensorFlow and turns every malformed value into a
  one-line :class:`SpecError`. It must work without TensorFlow because the chief-only
  writing (:mod:`amu_tf.training.chief_output`) asks for this process's role under every
  Keras backend, JAX included, where TensorFlow may not be installed. It cannot hand the
  checking to TensorFlow's resolver either: ``TFConfigClusterResolver`` accepts a JSON list,
  a missing ``task`` or ``cluster``, an address without a port, an index past the end of
  the job or a task type the cluster does not have without complaint (it reports no task,
  an empty cluster or the bad value as given), and raises a bare ``JSONDecodeError`` or
  ``TypeError`` for the rest.
- :func:`cluster_resolver` gives TensorFlow's own ``TFConfigClusterResolver`` for a checked
  ``TF_CONFIG``: ``MultiWorkerMirroredStrategy`` is built from it, and once a strategy
  carries a resolver, :func:`task_info` reads the role from that resolver rather than from
  the environment.

The role: :func:`is_chief` (the one process that writes artifacts), :func:`task_name`
(``"worker-1"``), :func:`worker_index` and :func:`worker_count` (this process's place in,
and the size of, the group of processes that train together).
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

from amu_tf.errors import SpecError

#: the jobs whose tasks train together under MultiWorkerMirroredStrategy, in rank order
TRAINING_JOBS = ("chief", "worker")


class ClusterTask(NamedTuple):
    """This process in its cluster: its task ``type`` and ``index``, and ``job_sizes``, the
    number of tasks of each job of the cluster. Outside a cluster ``type`` is None, ``index``
    0 and ``job_sizes`` empty."""

    type: str | None
    index: int
    job_sizes: dict[str, int]


def read_tf_config(required: bool = False) -> dict | None:
    """The parsed, checked ``TF_CONFIG`` (``cluster`` + ``task``), or None when unset.

    Raises :class:`SpecError` (one line) when it is set but malformed, or when it is unset
    and ``required``. Needs no TensorFlow.
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
    if not any(job in cluster for job in TRAINING_JOBS):
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


def cluster_resolver(required: bool = True):
    """TensorFlow's ``tf.distribute.cluster_resolver.TFConfigClusterResolver`` for this
    process, after :func:`read_tf_config` has checked the variable it reads (so a malformed
    ``TF_CONFIG`` is a one-line :class:`SpecError` here, not a silently empty cluster).
    None when ``TF_CONFIG`` is unset and not ``required``. Imports TensorFlow."""
    if read_tf_config(required=required) is None:
        return None
    import tensorflow as tf

    return tf.distribute.cluster_resolver.TFConfigClusterResolver()


def _from_resolver(resolver) -> ClusterTask | None:
    """The role a strategy's cluster resolver reports; None when it has no task or no
    cluster spec (a strategy that is not multi-worker)."""
    if resolver is None or getattr(resolver, "task_type", None) is None:
        return None
    try:
        jobs = resolver.cluster_spec().as_dict()
    except Exception:  # noqa: BLE001 - a resolver without a spec: fall back to TF_CONFIG
        return None
    if not jobs:
        return None
    return ClusterTask(resolver.task_type, int(resolver.task_id or 0),
                       {job: len(tasks) for job, tasks in jobs.items()})


def task_info(strategy=None) -> ClusterTask:
    """This process's :class:`ClusterTask`: from ``strategy``'s cluster resolver when it has
    one with a task (a multi-worker strategy), else from ``TF_CONFIG`` (``ClusterTask(None, 0, {})``
    when it is unset). Imports nothing from TensorFlow itself."""
    found = _from_resolver(getattr(strategy, "cluster_resolver", None))
    if found is not None:
        return found
    cfg = read_tf_config(required=False)
    if cfg is None:
        return ClusterTask(None, 0, {})
    return ClusterTask(cfg["task"]["type"], int(cfg["task"]["index"]),
                       {job: len(addrs) for job, addrs in cfg["cluster"].items()})


def in_cluster(strategy=None) -> bool:
    """True when this process is a task of a ``TF_CONFIG`` cluster (or of ``strategy``'s)."""
    return task_info(strategy).type is not None


def is_chief(strategy=None) -> bool:
    """True on the process that writes artifacts: no cluster at all, the ``chief`` task,
    or ``worker`` 0 when the cluster has no ``chief`` job."""
    task = task_info(strategy)
    if task.type is None or task.type == "chief":
        return True
    return task.type == "worker" and task.index == 0 and "chief" not in task.job_sizes


def task_name(strategy=None) -> str:
    """``"worker-1"``, ``"chief-0"``; ``"local"`` outside a cluster."""
    task = task_info(strategy)
    return "local" if task.type is None else f"{task.type}-{task.index}"


def worker_count(strategy=None) -> int:
    """How many processes train together: the tasks of the ``chief`` and ``worker`` jobs
    (an ``evaluator`` does not train); 1 outside a cluster."""
    task = task_info(strategy)
    if task.type is None:
        return 1
    return sum(task.job_sizes.get(job, 0) for job in TRAINING_JOBS)


def worker_index(strategy=None) -> int | None:
    """This process's rank among the :func:`worker_count` training processes: the chief is
    0 and ``worker`` i follows it (i + 1 when there is a chief, i otherwise), the order
    MultiWorkerMirroredStrategy numbers them in; 0 outside a cluster, None for a task that
    does not train (an ``evaluator``)."""
    task = task_info(strategy)
    if task.type is None or task.type == "chief":
        return 0
    if task.type == "worker":
        return task.index + (1 if "chief" in task.job_sizes else 0)
    return None


__all__ = [
    "ClusterTask", "TRAINING_JOBS", "cluster_resolver", "in_cluster", "is_chief",
    "read_tf_config", "task_info", "task_name", "worker_count", "worker_index",
]
