"""COMPASS's TCGA-pre-trained encoder, converted from its PyPI wheel into Keras weights.

COMPASS (Shen et al. 2025, MIT; PyPI ``immuno-compass``) ships its pre-trained encoder,
distilled onto one Performer layer, as ``compass/model/_distilled.pth`` inside the wheel,
together with its tokenizer tables (the 15,672 genes in token order, the gene-set /
cell-type concepts, the 33 cancer codes). This module

1. fetches the wheel with ``pip download`` (the package registry is the only network used;
   a local copy can be named by ``$AMU_TF_COMPASS_WHEEL``), pinned to version
   :data:`COMPASS_VERSION` and refused unless its sha256 is :data:`COMPASS_WHEEL_SHA256`;
2. reads ``_distilled.pth`` **without torch**: a torch checkpoint is a zip holding one pickle
   (``data.pkl``) and one raw little-endian file per tensor storage (``data/<key>``); a
   restricted :class:`pickle.Unpickler` that knows only ``collections.OrderedDict``,
   ``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` type names rebuilds each
   tensor as a NumPy array from its storage file (any other global is refused, so the
   pickle cannot run code);
3. renames the torch state dict into the Keras port's weight names
   (:func:`keras_weights`: linear kernels transposed to Keras's ``(in, out)``) and caches
   them, with the tokenizer tables, in ``$AMU_TF_CACHE_DIR/compass/<sha256[:16]>-v1/``
   (default ``~/.cache/amu_tf/compass``): written into a temporary folder, renamed into
   place under a file lock, as the kernel cache does (``amu_tf/kernels/build.py``).

``load_compass_assets()`` is the one entry point: it converts once and then reads the cache.
Nothing from the wheel is committed to this repository.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from amu_tf.errors import AmuError

#: the pinned wheel
COMPASS_PACKAGE = "immuno-compass"
COMPASS_VERSION = "2.5.3"
COMPASS_WHEEL_NAME = "immuno_compass-2.5.3-py3-none-any.whl"
#: sha256 of ``immuno_compass-2.5.3-py3-none-any.whl`` as the registry served it (observed
#: 2026 with ``pip download --no-deps immuno-compass==2.5.3``)
COMPASS_WHEEL_SHA256 = "b998b000b1a8551a711e53aba7e8d9003fd14b676a7712405e80c74b505a0ab8"
#: a local copy of the wheel to use instead of downloading it (still sha256-checked)
WHEEL_ENV = "AMU_TF_COMPASS_WHEEL"
#: files inside the wheel
DISTILLED_MEMBER = "compass/model/_distilled.pth"
TOKENS_MEMBER = "compass/tokenizer/gene_tokens_long.json"
CONCEPTS_MEMBER = "compass/tokenizer/conception_processed.tsv"
CANCER_CODE_MEMBER = "compass/tokenizer/cancer_code.json"
#: the layout version of the cache folder (bump when the cached files change)
CACHE_LAYOUT = 1


class CompassUnavailableError(AmuError):
    """The COMPASS wheel cannot be fetched or does not match the pinned hash."""


# --------------------------------------------------------------------------------------
# Reading a torch checkpoint without torch
# --------------------------------------------------------------------------------------
#: torch storage type name -> NumPy dtype (little-endian, as torch writes them)
_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _StorageType:
    """Stands for a ``torch.<X>Storage`` class inside the pickle: only its dtype matters."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """NumPy stand-in for ``torch._utils._rebuild_tensor_v2``: a strided view, copied."""
    size = tuple(int(s) for s in size)
    if not size:
        return storage[storage_offset].copy()
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=tuple(int(s) * item for s in stride)
    )
    return np.array(view, copy=True)


class TorchCheckpointUnpickler(pickle.Unpickler):
    """Unpickles a torch zip checkpoint's ``data.pkl`` into NumPy arrays, without torch.

    Only the globals a plain state dict needs are resolved; anything else (a module class, a
    function that would run code) raises :class:`pickle.UnpicklingError`.
    """

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a checkpoint")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}/data/{key}")
            arr = np.frombuffer(raw, dtype=storage_type.dtype)
            if arr.size < int(numel):
                raise pickle.UnpicklingError(f"storage {key} holds {arr.size} < {numel} items")
            self._storages[key] = arr
        return self._storages[key]


def read_torch_checkpoint(source) -> object:
    """The object saved by ``torch.save`` (new zip format) with every tensor as an ndarray.

    ``source`` is a path or the checkpoint's bytes.
    """
    data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pkls) != 1:
            raise pickle.UnpicklingError("not a torch zip checkpoint (no single data.pkl)")
        prefix = pkls[0][: -len("/data.pkl")]
        order = f"{prefix}/byteorder"
        if order in archive.namelist() and archive.read(order).strip() != b"little":
            raise pickle.UnpicklingError("big-endian torch checkpoints are not supported")
        with archive.open(pkls[0]) as fh:
            return TorchCheckpointUnpickler(io.BytesIO(fh.read()), archive, prefix).load()


# --------------------------------------------------------------------------------------
# The wheel
# --------------------------------------------------------------------------------------
def cache_root() -> Path:
    """``$AMU_TF_CACHE_DIR/compass`` (default ``~/.cache/amu_tf/compass``), created; a
    private temporary folder when that cannot be written."""
    root = Path(os.environ.get("AMU_TF_CACHE_DIR")
                or os.path.join(os.path.expanduser("~"), ".cache", "amu_tf")) / "compass"
    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=root).close()
        return root
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"amu_tf-{os.getuid()}" / "compass"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_wheel(path: Path) -> Path:
    got = sha256_of(path)
    if got != COMPASS_WHEEL_SHA256:
        raise CompassUnavailableError(
            f"{path} has sha256 {got}, not the pinned {COMPASS_WHEEL_SHA256} of "
            f"{COMPASS_PACKAGE}=={COMPASS_VERSION}; refusing it"
        )
    return path


def fetch_wheel() -> Path:
    """The pinned, hash-checked wheel: ``$AMU_TF_COMPASS_WHEEL``, else the cached copy, else
    ``pip download --no-deps immuno-compass==2.5.3`` into the cache.

    Raises :class:`CompassUnavailableError` (one line) when it cannot be had.
    """
    local = os.environ.get(WHEEL_ENV)
    if local:
        if not Path(local).is_file():
            raise CompassUnavailableError(f"${WHEEL_ENV} names {local}, which is not a file")
        return _check_wheel(Path(local))
    folder = cache_root() / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / COMPASS_WHEEL_NAME
    if target.is_file():
        return _check_wheel(target)
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".download-{os.getpid()}-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
               "--disable-pip-version-check", "--only-binary=:all:", "-q",
               f"{COMPASS_PACKAGE}=={COMPASS_VERSION}", "-d", tmp]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise CompassUnavailableError(f"pip download of {COMPASS_PACKAGE} failed: {err}")
        got = Path(tmp) / COMPASS_WHEEL_NAME
        if done.returncode != 0 or not got.is_file():
            lines = (done.stderr or done.stdout or "no output").strip().splitlines()
            raise CompassUnavailableError(
                f"pip download {COMPASS_PACKAGE}=={COMPASS_VERSION} failed: {lines[-1]}")
        _check_wheel(got)
        os.replace(got, target)
    return target


# --------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------
#: torch state-dict name -> (Keras port weight name, transpose?)
_NAME_MAP = {
    "pid_token_embedder": ("patient_token", False),
    "cancer_token_embedder.weight": ("cancer_embedding/embeddings", False),
    "gene_token_embedder.abundance_embedder.layers.0.weight": ("gene_embedding/embeddings", False),
    "gene_token_embedder.abundance_embedder.layers.0.bias": ("gene_embedding/bias", False),
    "encoder.layers.0.self_attn.fast_attention.projection_matrix":
        ("block/attention/projection_matrix", False),
    "encoder.layers.0.self_attn.to_q.weight": ("block/attention/query_kernel", True),
    "encoder.layers.0.self_attn.to_k.weight": ("block/attention/key_kernel", True),
    "encoder.layers.0.self_attn.to_v.weight": ("block/attention/value_kernel", True),
    "encoder.layers.0.self_attn.to_out.weight": ("block/attention/output_kernel", True),
    "encoder.layers.0.self_attn.to_out.bias": ("block/attention/output_bias", False),
    "encoder.layers.0._ff_block.0.weight": ("block/ffn_inner/kernel", True),
    "encoder.layers.0._ff_block.0.bias": ("block/ffn_inner/bias", False),
    "encoder.layers.0._ff_block.3.weight": ("block/ffn_outer/kernel", True),
    "encoder.layers.0._ff_block.3.bias": ("block/ffn_outer/bias", False),
    "encoder.layers.0.norm1.weight": ("block/attention_norm/gamma", False),
    "encoder.layers.0.norm1.bias": ("block/attention_norm/beta", False),
    "encoder.layers.0.norm2.weight": ("block/ffn_norm/gamma", False),
    "encoder.layers.0.norm2.bias": ("block/ffn_norm/beta", False),
}


def read_distilled(wheel_path) -> tuple[dict, list]:
    """``(state_dict, genes)`` of the wheel's ``_distilled.pth``: the torch names with NumPy
    arrays, and the gene symbols in the order of the gene embedding's rows."""
    with zipfile.ZipFile(wheel_path) as wheel:
        obj = read_torch_checkpoint(wheel.read(DISTILLED_MEMBER))
    state, genes = obj
    return dict(state), [str(g) for g in genes]


def keras_weights(state: dict) -> dict:
    """The torch state dict renamed into the Keras port's names (float32, kernels as
    ``(in, out)``). Refuses a state dict with names it does not know or lacks."""
    unknown = sorted(set(state) - set(_NAME_MAP))
    missing = sorted(set(_NAME_MAP) - set(state))
    if unknown or missing:
        raise CompassUnavailableError(
            f"unexpected COMPASS encoder layout: unknown {unknown[:3]}, missing {missing[:3]}")
    out = {}
    for torch_name, (name, transpose) in _NAME_MAP.items():
        arr = np.asarray(state[torch_name], dtype=np.float32)
        out[name] = np.ascontiguousarray(arr.T if transpose else arr)
    return out


def read_tokenizer_tables(wheel_path) -> dict:
    """The tokenizer tables of the wheel: ``tokens`` (token index -> symbol, ``-1`` CLS,
    ``-2`` CANCER), ``cancer_codes`` (TCGA code -> index) and ``concepts`` (the text of
    ``conception_processed.tsv``: one row per gene set with its broad cell-type / pathway
    concept, indices and genes)."""
    with zipfile.ZipFile(wheel_path) as wheel:
        return {
            "tokens": json.loads(wheel.read(TOKENS_MEMBER)),
            "cancer_codes": json.loads(wheel.read(CANCER_CODE_MEMBER)),
            "concepts": wheel.read(CONCEPTS_MEMBER).decode("utf-8"),
        }


def cache_folder() -> Path:
    return cache_root() / f"{COMPASS_WHEEL_SHA256[:16]}-v{CACHE_LAYOUT}"


def convert(force: bool = False) -> Path:
    """Convert the wheel once; return the cache folder holding ``weights.npz``,
    ``genes.json``, ``tokens.json``, ``cancer_codes.json``, ``concepts.tsv`` and
    ``source.json``. Concurrent callers wait on a lock; a half-written folder is never seen."""
    final = cache_folder()
    if final.is_dir() and not force:
        return final
    root = final.parent
    with open(root / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if final.is_dir() and not force:
                return final
            wheel = fetch_wheel()
            state, genes = read_distilled(wheel)
            weights = keras_weights(state)
            tables = read_tokenizer_tables(wheel)
            token_genes = [tables["tokens"][str(i)] for i in range(len(genes))]
            if token_genes != genes:
                raise CompassUnavailableError(
                    "the distilled encoder's gene order differs from gene_tokens_long.json")
            tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".converting-{os.getpid()}-"))
            try:
                np.savez(tmp / "weights.npz", **weights)
                (tmp / "genes.json").write_text(json.dumps(genes))
                (tmp / "tokens.json").write_text(json.dumps(tables["tokens"]))
                (tmp / "cancer_codes.json").write_text(json.dumps(tables["cancer_codes"]))
                (tmp / "concepts.tsv").write_text(tables["concepts"])
                (tmp / "source.json").write_text(json.dumps({
                    "package": COMPASS_PACKAGE, "version": COMPASS_VERSION,
                    "wheel_sha256": COMPASS_WHEEL_SHA256, "member": DISTILLED_MEMBER,
                    "n_params": int(sum(a.size for a in weights.values())),
                }, indent=1))
                if final.exists():
                    shutil.rmtree(final)
                os.rename(tmp, final)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            return final
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@functools.lru_cache(maxsize=1)
def load_compass_assets() -> dict:
    """Converted weights and tables (converting on first use): ``weights`` (name -> array),
    ``genes`` (15,672 symbols in token order), ``cancer_codes`` (code -> index),
    ``concepts`` (text of the concept table), ``source`` (package, version, sha256)."""
    folder = convert()
    with np.load(folder / "weights.npz") as npz:
        weights = {k: npz[k] for k in npz.files}
    return {
        "weights": weights,
        "genes": json.loads((folder / "genes.json").read_text()),
        "cancer_codes": json.loads((folder / "cancer_codes.json").read_text()),
        "concepts": (folder / "concepts.tsv").read_text(),
        "source": json.loads((folder / "source.json").read_text()),
        "folder": str(folder),
    }
