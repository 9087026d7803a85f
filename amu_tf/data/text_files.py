"""One reader for every text file a user or an artifact gives amu-tf: cohort specs and run
configs (TOML), gene sets (GMT), STRING networks, sample lists, artifact JSON.

    text = read_text(path, "GMT file")                  # str, BOM stripped
    data = read_json(run / "artifact.json", "artifact metadata", error=ArtifactError)
    raw = read_toml(spec, "cohort spec")
    check_text_file(string_file, "STRING file")         # sniff a large file before the work

Text is UTF-8, with or without a byte-order mark (Excel and Notepad write one). Anything else
is refused in one line naming the file and what it looks like: a UTF-16/UTF-32 file (a BOM,
or NUL bytes between ASCII letters), a binary file (NUL bytes, or a known magic number such as
gzip, HDF5, zip), bytes that are not UTF-8 (Latin-1, Windows-1252: where the first bad byte
is). A missing file, a directory and a device are named as such, never as "not valid TOML" or
"does not exist". Why one reader: each format used to decode on its own and fail in its own
way (a traceback for UTF-16 GMT files, "not valid TOML" for a BOM, a UnicodeDecodeError from a
binary sample list).
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import stat
import tomllib
from pathlib import Path

from amu_tf.errors import InputDataError

#: bytes read to judge a file too large to read whole before the work (a STRING network)
SNIFF_BYTES = 1 << 16

_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_MAGIC = ((b"\x89HDF", "an HDF5 file (an .h5/.h5ad?)"), (b"PK\x03\x04", "a zip archive"),
          (b"\x1f\x8b", "gzip-compressed"), (b"BZh", "bzip2-compressed"),
          (b"\xfd7zXZ", "xz-compressed"), (b"\x89PNG", "a PNG image"),
          (b"%PDF", "a PDF document"), (b"\x93NUMPY", "a NumPy array file"))


def check_path(path, what: str = "file", error=InputDataError) -> Path:
    """``path`` as a Path when it is a readable regular file; else ``error`` saying whether it
    is missing, a directory or not a regular file (a device, a pipe)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise error(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise error(f"{what} {path} is not a regular file (a device or a pipe?)")
    return path


def _judge(data: bytes, path: Path, what: str, error, partial: bool) -> str:
    """``data`` (the start of the file when ``partial``) decoded, or ``error`` saying why it
    is not UTF-8 text."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise error(f"{what} {path} is {name}-encoded text; save it as UTF-8")
    head = data[:SNIFF_BYTES]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            raise error(f"{what} {path} is {name}, not a text file")
    if b"\0" in head:
        # UTF-16 without a BOM: ASCII letters alternate with NUL bytes
        pairs = head[: len(head) - len(head) % 2]
        if pairs and (pairs[1::2].count(0) > 0.4 * len(pairs) / 2
                      or pairs[0::2].count(0) > 0.4 * len(pairs) / 2):
            raise error(f"{what} {path} looks like UTF-16 text (without a byte-order mark); "
                        "save it as UTF-8")
        raise error(f"{what} {path} is a binary file, not text (it holds NUL bytes)")
    try:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        return decoder.decode(data, final=not partial)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line "
                    f"{line}; Latin-1 or Windows-1252?); save it as UTF-8") from None


def read_text(path, what: str = "file", error=InputDataError) -> str:
    """The whole of text file ``path`` as a str (a leading BOM dropped; newlines as written).
    ``what`` names the file in the one-line ``error`` (missing, a directory, binary, not
    UTF-8)."""
    path = check_path(path, what, error)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return _judge(data, path, what, error, partial=False)


def check_text_file(path, what: str = "file", error=InputDataError) -> Path:
    """Refuse ``path`` up front, as :func:`read_text` would, reading only its start (a
    gzip-compressed ``*.gz`` file is judged on its decompressed start): for files too large
    to read before the work begins (a genome-wide STRING network)."""
    path = check_path(path, what, error)
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
        if path.suffix == ".gz" and head.startswith(b"\x1f\x8b"):
            with gzip.open(path, "rb") as fh:
                head = fh.read(SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise error(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    _judge(head, path, what, error, partial=True)
    return path


def read_json(path, what: str = "JSON file", error=InputDataError):
    """The parsed JSON of ``path``; one line naming the file when it is not JSON (damaged,
    truncated, garbage bytes)."""
    text = read_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} {path} is damaged: not valid JSON ({exc.msg}, line {exc.lineno})") \
            from None


def read_toml(path, what: str = "TOML file", error=InputDataError) -> dict:
    """The parsed TOML of ``path`` (a BOM is fine); one line naming the file and the first
    syntax error otherwise."""
    text = read_text(path, what, error)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{what} {path} is not valid TOML: {first}") from None
