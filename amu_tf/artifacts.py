"""TFX-style typed artifacts: a folder plus ``artifact.json`` naming its type, inputs,
parameters and a content hash.

Components talk to each other only through artifacts. An artifact is written into a hidden
temporary sibling folder and renamed into place only when complete, so a crash never leaves
a half-written artifact that a later step could mistake for a finished one.

    with ArtifactWriter("runs/x/cohort", "CohortTable", inputs=[spec], parameters={...}) as w:
        table.to_csv(w.path / "table.csv.gz")
    art = w.artifact            # the finished Artifact
    art = Artifact.load("runs/x/cohort", expected_type="CohortTable")
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import random
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from amu_tf import __version__
from amu_tf.data.text_files import read_json
from amu_tf.errors import ArtifactError

METADATA_FILE = "artifact.json"

# The artifact types of the pipeline (TFX's standard-artifact idea, our names).
ARTIFACT_TYPES = (
    "CohortSpec",  # an input file, recorded by path and hash
    "CohortTable",  # ingest: tidy samples x panel-gene table
    "AuditReport",  # audit: findings and verdict
    "TransformGraph",  # transform: a fitted transform
    "Model",  # train: model, transform, threshold, summary
    "ModelEvaluation",  # evaluate: metrics, tables, figures, blessing, its own report
    "Interpretation",  # interpret: SHAP, embeddings, survival, enrichment
    "Report",  # report: the run's report.md, rendered from the artifacts above
    "PushedModel",  # export: a TF Serving version folder
)


def hash_path(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and bytes, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        files = [(path.name, path)]
    else:
        files = sorted(
            (p.relative_to(path).as_posix(), p)
            for p in path.rglob("*")
            if p.is_file() and p.name != METADATA_FILE
        )
    for rel, p in files:
        h.update(rel.encode())
        h.update(b"\0")
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class Artifact:
    """A finished artifact: its folder and its metadata."""

    type: str
    uri: Path
    parameters: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    content_hash: str = ""
    properties: dict = field(default_factory=dict)
    created: str = ""
    amu_tf_version: str = __version__

    @property
    def path(self) -> Path:
        return Path(self.uri)

    def ref(self) -> dict:
        """How another artifact records this one as an input."""
        return {"type": self.type, "uri": str(self.uri), "content_hash": self.content_hash}

    def to_json(self) -> dict:
        return {
            "type": self.type,
            "uri": str(self.uri),
            "parameters": self.parameters,
            "inputs": self.inputs,
            "content_hash": self.content_hash,
            "properties": self.properties,
            "created": self.created,
            "amu_tf_version": self.amu_tf_version,
        }

    @classmethod
    def load(cls, uri: str | os.PathLike, expected_type: str | None = None) -> "Artifact":
        uri = Path(uri)
        meta_file = uri / METADATA_FILE
        if not meta_file.is_file():
            raise ArtifactError(f"{uri} is not an amu-tf artifact (no {METADATA_FILE})")
        meta = read_json(meta_file, "artifact metadata", error=ArtifactError)
        if not isinstance(meta, dict) or not isinstance(meta.get("type"), str):
            raise ArtifactError(f"artifact metadata {meta_file} is damaged: no artifact type")
        if expected_type is not None and meta.get("type") != expected_type:
            raise ArtifactError(
                f"{uri} is a {meta.get('type')!r} artifact, expected {expected_type!r}"
            )
        meta["uri"] = uri
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in meta.items() if k in known})

    def stale_inputs(self) -> list[str]:
        """One line per recorded input that has changed since this artifact was made: an
        input artifact rewritten at its folder (its content hash differs), or an input file
        edited. Inputs no longer at their recorded path are not judged (runs move)."""
        lines = []
        for ref in self.inputs:
            uri, recorded = Path(str(ref.get("uri", ""))), ref.get("content_hash")
            if not recorded or not uri.exists():
                continue
            try:
                if uri.is_dir():
                    now = read_json(uri / METADATA_FILE, error=ArtifactError).get("content_hash")
                else:
                    now = hash_path(uri)
            except (OSError, ValueError, AttributeError, ArtifactError):
                continue
            if now != recorded:
                lines.append(f"{self.uri} is stale: its input {uri} ({ref.get('type')}) "
                             f"changed since it was made (hash {recorded[:12]}, now "
                             f"{str(now)[:12]}); run the steps after it again")
        return lines

    @classmethod
    def for_file(cls, path: str | os.PathLike, type: str = "CohortSpec") -> "Artifact":
        """Record an external input file (not written by amu-tf) so its hash is traceable."""
        path = Path(path)
        return cls(type=type, uri=path, content_hash=hash_path(path))


def check_output_not_input(output, inputs, option: str = "--out") -> None:
    """Refuse to write an artifact at ``output`` when it is one of its ``inputs`` (paths or
    Artifacts), holds one of them (a ``table.csv.gz`` inside it), or lies inside one: the
    writer replaces ``output`` as a whole, so ``amu transform T --out T`` destroyed the
    table it read. Called before any work, and again by :class:`ArtifactWriter`."""
    from amu_tf.errors import SpecError

    out = Path(os.path.abspath(os.path.expanduser(str(output))))
    for item in inputs:
        if item is None:
            continue
        uri = item.uri if isinstance(item, Artifact) else item
        if isinstance(uri, dict):  # an input reference (Artifact.ref())
            uri = uri.get("uri")
        if not isinstance(uri, (str, os.PathLike)):  # a DataFrame given in memory
            continue
        src = Path(os.path.abspath(os.path.expanduser(str(uri))))
        if src == out:
            raise SpecError(f"{option} {output} is an input of this step; writing there would "
                            "destroy it: choose another folder")
        if out in src.parents:
            raise SpecError(f"{option} {output} holds an input of this step ({src}); writing "
                            "there would destroy it: choose another folder")
        if src in out.parents and src.is_dir():
            raise SpecError(f"{option} {output} lies inside an input of this step ({src}); "
                            "writing there would change it: choose another folder")


def identity_hashes(art: "Artifact", names=()) -> set[str]:
    """The content hashes that name the data of ``art``: its own; for a table file inside an
    artifact folder, that folder's artifact's; for an artifact folder, those of its files
    called ``names`` (``amu audit runs/x/ingest/table.csv.gz`` and ``amu audit runs/x/ingest``
    name one table)."""
    hashes = {art.content_hash} if art.content_hash else set()
    path = Path(str(art.uri))
    try:
        if path.is_file() and (path.parent / METADATA_FILE).is_file():
            parent = read_json(path.parent / METADATA_FILE, error=ArtifactError)
            if isinstance(parent, dict) and parent.get("content_hash"):
                hashes.add(parent["content_hash"])
        elif path.is_dir():
            hashes |= {hash_path(path / n) for n in names
                       if n != METADATA_FILE and (path / n).is_file()}
    except (OSError, ArtifactError):
        pass
    return hashes


def vouches_for(voucher: "Artifact", art: "Artifact") -> bool:
    """Whether ``voucher`` (an audit, an evaluation, a fitted transform) records ``art`` (a
    table) among its inputs by content hash, or was made from exactly the cohort specs
    ``art`` was ingested from. A path alone proves nothing: tables are rewritten in place
    and folders are copied."""
    refs = [ref for ref in voucher.inputs if isinstance(ref, dict)]
    recorded = {ref.get("content_hash") for ref in refs}
    names = {Path(str(ref.get("uri", ""))).name for ref in refs}
    if identity_hashes(art, names) & recorded:
        return True
    specs = {ref.get("content_hash") for ref in art.inputs
             if isinstance(ref, dict) and ref.get("type") == "CohortSpec"}
    theirs = {ref.get("content_hash") for ref in refs if ref.get("type") == "CohortSpec"}
    return bool(specs) and specs == theirs


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a single file aside (``.<name>.tmp-<pid>``) and rename it into place, so a reader
    never sees half of it (the file-sized sibling of :class:`StagedFolder`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def safe_name(name: str, sep: str = "_") -> str:
    """``name`` as one file or folder name: runs of characters other than letters, digits,
    ``_``, ``.`` and ``-`` become ``sep`` (``amu:small`` -> ``amu_small``)."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", sep, str(name)).strip(sep) or "model"


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from dicts/lists of numpy scalars and arrays, paths and floats;
    non-finite floats become ``None`` (JSON has no NaN)."""
    import math

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _foreign(uri: Path, looks: int = 3) -> str | None:
    """What ``uri`` is when it is something an artifact writer must not replace (a file, a
    non-empty folder without ``artifact.json``), else None. A folder is called foreign only
    when several listings agree: a concurrent writer may be swapping its artifact in, and
    the listing of an artifact that another writer is deleting is partial."""
    for look in range(looks):
        try:
            entries = os.listdir(uri)
        except NotADirectoryError:
            return "a file"
        except FileNotFoundError:
            return None
        if not entries or METADATA_FILE in entries:
            return None
        time.sleep(0.01 * (look + 1))
    return "a folder that is not an artifact"


#: this machine, in the names of hidden staging folders: only its own dead writers' leftovers
#: are removed (a model folder on a shared volume may have writers on other hosts)
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(uri: Path) -> int:
    """Remove the ``.<name>.tmp-<pid>@<host>-*`` and ``.<name>.old-<pid>-*`` folders that
    writers of ``uri`` on this machine left beside it when killed mid-write (their process is
    gone). A folder of another host is never touched: its pid means nothing here. Returns
    how many were removed."""
    gone = 0
    for p in Path(uri).parent.glob(f".{Path(uri).name}.*"):
        kind, _, rest = p.name[len(Path(uri).name) + 2:].partition("-")
        if kind not in ("tmp", "old"):
            continue
        pid_text, _, host = rest.split("-")[0].partition("@")
        if host and host != _HOST:
            continue
        try:
            pid = int(pid_text)
        except ValueError:
            continue
        if not pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            gone += 1
    return gone


def _remove_aside(old: Path) -> None:
    """Remove what was moved aside: a folder, or a symbolic link given as ``--out`` (which
    ``shutil.rmtree`` refuses, and would leave behind as a hidden ``.<name>.old-*``)."""
    if old.is_symlink() or old.is_file():
        try:
            old.unlink()
        except OSError:
            pass
    else:
        shutil.rmtree(old, ignore_errors=True)


def _move_into_place(path: Path, uri: Path, tries: int = 200) -> None:
    """Rename the finished folder ``path`` to ``uri``, moving an existing ``uri`` aside
    first; safe against other writers of the same ``uri`` doing the same meanwhile."""
    for _ in range(tries):
        old = None
        if uri.exists():
            old = uri.with_name(f".{uri.name}.old-{os.getpid()}@{_HOST}-{uuid.uuid4().hex[:8]}")
            try:
                os.replace(uri, old)
            except FileNotFoundError:  # another writer moved it first
                old = None
        try:
            os.replace(path, uri)
        except OSError as exc:
            # ENOTEMPTY/EEXIST: another writer put its artifact at ``uri`` between the two
            # renames (and may already have moved it aside again, so ``uri.exists()`` is no
            # test of that). Any other error (read-only, full disk, ...) is real: put the
            # previous artifact back and say so.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                if old is not None:
                    try:
                        os.replace(old, uri)
                    except OSError:
                        pass
                raise ArtifactError(f"cannot move the finished artifact into {uri}: "
                                    f"{exc.strerror or exc}") from None
            if old is not None:  # another writer put its artifact there meanwhile: again
                _remove_aside(old)
            time.sleep(random.uniform(0.0, 0.005))
            continue
        if old is not None:
            _remove_aside(old)
        return
    raise ArtifactError(f"could not move the finished artifact into {uri}: other writers "
                        "kept replacing it")


class StagedFolder:
    """Base of the writers (:class:`ArtifactWriter`, ``serving_versions.VersionWriter``): the
    output is built in ``self.path``, a hidden sibling ``.<name>.tmp-<pid>@<host>-*`` of its
    destination (readable like any new folder), and :meth:`_publish` moves it into place on a
    clean exit; on any failure the folder is removed. Leftovers of writers killed mid-write
    (their pid is gone) are removed when the next writer stages."""

    path: Path | None = None

    def _stage(self, parent: Path, name: str) -> Path:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(parent / name)
        # a plain mkdir (not mkdtemp's 0700): the finished folder takes the mode any new
        # folder gets, so another user (a TF Serving process) can read it
        self.path = parent / f".{name}.tmp-{os.getpid()}@{_HOST}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        return self.path

    def _publish(self) -> None:
        raise NotImplementedError

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.path is not None
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return False
        try:
            self._publish()
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)
            raise
        return False


class ArtifactWriter(StagedFolder):
    """Context manager that writes an artifact atomically.

    Inside the ``with`` block, write files into ``writer.path`` (a temporary folder). On a
    clean exit the metadata is written and the folder is renamed to ``uri``; on an exception
    the temporary folder is removed and nothing appears at ``uri``.

    ``overwrite=True`` replaces an existing artifact at ``uri`` (the old one is removed only
    after the new one is complete).
    """

    def __init__(
        self,
        uri: str | os.PathLike,
        type: str,
        inputs: Iterable[Artifact] = (),
        parameters: dict | None = None,
        overwrite: bool = True,
    ):
        if type not in ARTIFACT_TYPES:
            raise ValueError(f"unknown artifact type {type!r}")
        self.uri = Path(uri)
        self.type = type
        self.inputs = [a.ref() for a in inputs]
        self.parameters = parameters or {}
        self.properties: dict = {}
        self.overwrite = overwrite
        self.path: Path | None = None
        self.artifact: Artifact | None = None

    def __enter__(self) -> "ArtifactWriter":
        check_output_not_input(self.uri, self.inputs)
        if self.uri.exists() and not self.overwrite:
            raise ArtifactError(f"{self.uri} exists already and will not be overwritten")
        what = _foreign(self.uri)
        if what:
            raise ArtifactError(f"{self.uri} exists and is {what}; it is not replaced: "
                                "choose another --out or remove it")
        try:
            self._stage(self.uri.parent, self.uri.name)
        except OSError as exc:
            raise ArtifactError(f"cannot write {self.uri}: {exc.strerror or exc}") from None
        return self

    def _publish(self) -> None:
        art = Artifact(
            type=self.type,
            uri=self.uri,
            parameters=to_jsonable(self.parameters),
            inputs=self.inputs,
            content_hash=hash_path(self.path),
            properties=to_jsonable(self.properties),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )
        (self.path / METADATA_FILE).write_text(json.dumps(art.to_json(), indent=2) + "\n")
        _move_into_place(self.path, self.uri)
        self.artifact = art
