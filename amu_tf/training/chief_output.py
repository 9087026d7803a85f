"""Where each worker of a cluster writes, so that one artifact comes out of a multi-worker job.

Multi-worker saving needs every worker to run the same saving code, but only one copy
should survive: the chief's (:func:`~amu_tf.training.cluster_config.is_chief`). So::

    with written_by_chief("runs/x/model") as target:   # a temp folder on other workers
        target.mkdir(parents=True, exist_ok=True)
        model.save(target / "model.keras")             # every worker saves, and at the
                                                       # end only the chief's copy stays

and each worker backs up its training state into a folder of its own
(:func:`backup_callback`). Outside a cluster every process is its own chief: ``target`` is
the path itself and backups go straight into the folder given. The role is read from the
strategy when one is given, else from ``TF_CONFIG``; reading it needs no TensorFlow, so the
chief-only writing works under every Keras backend.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from amu_tf.training.cluster_config import in_cluster, is_chief, task_name

#: temporary folders handed to non-chief workers by :func:`chief_artifact_dir`, so that
#: :func:`remove_if_not_chief` deletes only folders this process made
_TEMP_DIRS: set[Path] = set()


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


def backup_dir_for(backup_dir, strategy=None) -> Path:
    """This worker's own backup folder: ``backup_dir`` outside a cluster, else
    ``backup_dir/<task>-<index>`` (Keras 3's BackupAndRestore is not multi-worker aware:
    workers sharing a folder would overwrite, and delete, each other's files)."""
    backup_dir = Path(backup_dir)
    return backup_dir / task_name(strategy) if in_cluster(strategy) else backup_dir


def backup_callback(backup_dir, strategy=None, delete_checkpoint: bool = True, **kwargs):
    """``keras.callbacks.BackupAndRestore`` saving every epoch into this worker's folder
    (:func:`backup_dir_for`); a restarted ``fit`` resumes from the last finished epoch.
    The model must be built (zoo models are) before ``fit``."""
    import keras

    return keras.callbacks.BackupAndRestore(
        backup_dir=str(backup_dir_for(backup_dir, strategy)),
        delete_checkpoint=delete_checkpoint, **kwargs,
    )


__all__ = [
    "backup_callback", "backup_dir_for", "chief_artifact_dir", "remove_if_not_chief",
    "written_by_chief",
]
