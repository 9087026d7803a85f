"""TF Serving's model layout: ``<base>/<name>/<version>/`` with integer versions that only grow.

TF Serving watches ``<base>/<name>`` and serves the highest all-digit sub-folder. A new
version is written into a hidden temporary folder (``.version.tmp-<pid>-XXXX``, which TF Serving
ignores because its name is not a number) and renamed into place only when complete, so a
half-written export is never visible and an existing version is never overwritten.

    with VersionWriter("saved_models/amu") as w:
        write_saved_model(w.path)          # into the hidden temp folder
    w.version, w.final_path               # e.g. 3, saved_models/amu/3
"""

from __future__ import annotations

import os
from pathlib import Path

from amu_tf.artifacts import StagedFolder
from amu_tf.errors import ArtifactError

SAVED_MODEL_FILE = "saved_model.pb"


def list_versions(model_dir: str | os.PathLike) -> list[int]:
    """The complete versions under ``model_dir`` (all-digit folder names), ascending."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def latest_version(model_dir: str | os.PathLike) -> int | None:
    versions = list_versions(model_dir)
    return versions[-1] if versions else None


def next_version(model_dir: str | os.PathLike) -> int:
    """One more than the highest existing version (1 for an empty or new folder)."""
    latest = latest_version(model_dir)
    return 1 if latest is None else latest + 1


def resolve_version_dir(model: str | os.PathLike, version: int | None = None) -> Path:
    """Find the SavedModel folder to load.

    ``model`` is either a version folder itself (it holds ``saved_model.pb``) or a model
    folder of numbered versions; ``version`` picks one (default: the highest).
    """
    model = Path(model)
    if not model.exists():
        raise ArtifactError(f"no exported model at {model}")
    if (model / SAVED_MODEL_FILE).is_file() and version is None:
        return model
    versions = list_versions(model)
    if not versions:
        raise ArtifactError(
            f"{model} holds no SavedModel versions (expected numbered folders like {model}/1)"
        )
    if version is None:
        version = versions[-1]
    if version not in versions:
        raise ArtifactError(
            f"version {version} of {model} does not exist; available: "
            f"{', '.join(map(str, versions))}"
        )
    path = model / str(version)
    if not (path / SAVED_MODEL_FILE).is_file():
        raise ArtifactError(f"{path} is not a SavedModel (no {SAVED_MODEL_FILE})")
    return path


class VersionWriter(StagedFolder):
    """Context manager that writes the next version of ``model_dir`` atomically.

    Inside the ``with`` block, write into ``writer.path`` (a hidden temporary folder
    ``.version.tmp-<pid>-*`` in ``model_dir``, which TF Serving ignores). On a clean exit it
    is renamed to ``model_dir/<version>``; if that version appeared meanwhile (another
    export), the next free number is taken instead: nothing is ever overwritten. On an
    exception the temporary folder is removed; one left by a killed export is removed by the
    next export.
    """

    def __init__(self, model_dir: str | os.PathLike):
        self.model_dir = Path(model_dir)
        self.path: Path | None = None
        self.version: int | None = None
        self.final_path: Path | None = None

    def __enter__(self) -> "VersionWriter":
        try:
            self._stage(self.model_dir, "version")
        except OSError as exc:
            raise ArtifactError(f"cannot write {self.model_dir}: {exc.strerror or exc}") from None
        self.version = next_version(self.model_dir)
        return self

    def _publish(self) -> None:
        for _ in range(1000):
            target = self.model_dir / str(self.version)
            if not target.exists():
                try:
                    # os.rename onto an existing non-empty folder fails, so a version that
                    # appears between the check and the rename is not clobbered either.
                    os.rename(self.path, target)
                    self.final_path = target
                    return
                except OSError:
                    if not target.exists():
                        raise
            self.version = max(self.version + 1, next_version(self.model_dir))
        raise ArtifactError(f"could not find a free version number under {self.model_dir}")
