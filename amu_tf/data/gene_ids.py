"""Match an expression file's gene ids (symbol, Entrez, Ensembl) to the 160-gene panel.

* ``symbol``: exact match to the panel symbol, then a case-insensitive match.
* ``entrez``: numeric ids (``"7124"``, ``"7124.0"``) matched to the panel's Entrez ids.
* ``ensembl``: ``ENSG...`` with or without a version suffix (``ENSG00000232810.3``); the
  panel ships only symbols and Entrez ids, so the spec must name a mapping file (TSV/CSV with
  columns ``ensembl_id`` and ``symbol``; versions are stripped on both sides).

Genes outside the panel keep their own symbol (:func:`map_to_symbols`): a symbol file's own
spelling, and for Entrez or Ensembl ids the HGNC symbol of ``tidepy``'s gene reference (the
table TIDE itself maps genes with); ids it does not know are left out and counted.

A declared id type that does not match what the file holds (e.g. ``entrez`` declared but the
ids look like symbols) is refused with :class:`InputDataError`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pandas as pd

from amu_tf.errors import InputDataError
from amu_tf.panel import load_panel

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$", re.IGNORECASE)
_NUMERIC = re.compile(r"^\d+(\.0+)?$")


def guess_id_type(ids) -> str:
    """'entrez', 'ensembl' or 'symbol': what most of the ids look like."""
    ids = [str(i).strip() for i in ids if str(i).strip() and str(i) != "nan"]
    if not ids:
        return "symbol"
    n = len(ids)
    if sum(bool(_NUMERIC.match(i)) for i in ids) > n / 2:
        return "entrez"
    if sum(bool(_ENSEMBL.match(i)) for i in ids) > n / 2:
        return "ensembl"
    return "symbol"


def strip_version(ensembl_id: str) -> str:
    return str(ensembl_id).strip().split(".")[0].upper()


def _norm_entrez(i) -> str:
    s = str(i).strip()
    return s[: s.index(".")] if _NUMERIC.match(s) and "." in s else s


def read_ensembl_map(path: str | Path) -> dict[str, str]:
    """``{ensembl id without version: panel symbol}`` from a mapping file."""
    path = Path(path)
    sep = "," if path.suffix.lower() == ".csv" or path.name.lower().endswith(".csv.gz") else "\t"
    try:
        m = pd.read_csv(path, sep=sep, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputDataError(f"cannot read Ensembl mapping {path}: {exc}".splitlines()[0]) from None
    cols = {c.lower(): c for c in m.columns}
    if "ensembl_id" not in cols or "symbol" not in cols:
        raise InputDataError(f"Ensembl mapping {path} needs columns ensembl_id and symbol")
    m = m.dropna(subset=[cols["ensembl_id"], cols["symbol"]])
    return {strip_version(e): s.strip() for e, s in zip(m[cols["ensembl_id"]], m[cols["symbol"]])}


def map_to_panel(ids, id_type: str, ensembl_map: dict[str, str] | None = None, where: str = ""):
    """Map each id to a panel symbol (or None).

    Returns a list of the same length as ``ids``; raises :class:`InputDataError` when the ids
    do not look like ``id_type``.
    """
    ids = [str(i).strip() for i in ids]
    guessed = guess_id_type(ids)
    if guessed != id_type:
        raise InputDataError(
            f"{where}gene ids look like {guessed} ids (e.g. {ids[0]!r}) but the spec says "
            f"gene_id = {id_type!r}"
        )
    panel = load_panel()
    if id_type == "entrez":
        lookup = dict(zip(panel["entrez_id"].astype(str), panel["symbol"]))
        return [lookup.get(_norm_entrez(i)) for i in ids]
    if id_type == "ensembl":
        if ensembl_map is None:
            raise InputDataError(f"{where}gene_id = 'ensembl' needs an ensembl_map file")
        symbols = set(panel["symbol"])
        out = []
        for i in ids:
            s = ensembl_map.get(strip_version(i))
            out.append(s if s in symbols else None)
        return out
    exact = set(panel["symbol"])
    upper = {s.upper(): s for s in panel["symbol"]}
    return [i if i in exact else upper.get(i.upper()) for i in ids]


@functools.lru_cache(maxsize=1)
def _gene_reference():
    """``({entrez: symbol}, {ensembl: symbol})`` from tidepy's bundled gene reference (HGNC
    symbols to Entrez and Ensembl ids), the first symbol of each id kept."""
    from tidepy.utils import read_data_object

    ref = read_data_object("Gene_Ref.pkl")
    by_entrez, by_ensembl = {}, {}
    for symbol, entrez in ref["Symbol"].items():
        by_entrez.setdefault(str(int(entrez)), str(symbol))
    for ensembl, entrez in ref["ENSG"].items():
        symbol = by_entrez.get(str(int(entrez)))
        if symbol is not None:
            by_ensembl.setdefault(strip_version(ensembl), symbol)
    return by_entrez, by_ensembl


def known_symbols() -> frozenset:
    """Every gene symbol amu-tf knows: the panel's, tidepy's HGNC reference, and the old
    names of :data:`~amu_tf.biomarkers.biomarker_presets.GENE_ALIASES`."""
    from amu_tf.biomarkers.biomarker_presets import GENE_ALIASES

    by_entrez, _ = _gene_reference()
    names = set(by_entrez.values()) | set(load_panel()["symbol"])
    names |= {n for new, olds in GENE_ALIASES.items() for n in (new, *olds)}
    return frozenset(names)


#: old or common names of genes the biomarkers and the panel read, under their current HGNC
#: symbol (with biomarker_presets.GENE_ALIASES): a file that says IL8 means CXCL8
WELL_KNOWN_ALIASES = {
    "CXCL8": ("IL8", "IL-8"), "CD274": ("PDL1", "PD-L1", "B7-H1", "B7H1"),
    "PDCD1": ("PD1", "PD-1"), "PDCD1LG2": ("PDL2", "PD-L2", "B7-DC"),
    "CTLA4": ("CTLA-4",), "VSIR": ("C10orf54", "VISTA"), "NRDE2": ("C14orf102",),
    "TIGIT": ("VSIG9",), "HAVCR2": ("TIM3", "TIM-3"), "LAG3": ("LAG-3",),
    "IDO1": ("IDO", "INDO"), "CCN2": ("CTGF",), "CCN1": ("CYR61",), "H2AZ1": ("H2AFZ",),
}

#: share of an expression file's symbols written like mouse (MGI) symbols, ``Cd8a``, above
#: which the file is taken for a mouse one
MOUSE_LIKE_SHARE = 0.5
_TITLE = re.compile(r"^[A-Z][a-z][a-z0-9]*$|^[A-Z][a-z0-9]*[a-z][a-z0-9]*$")


def alias_map() -> dict[str, str]:
    """``{old name (upper case): current symbol}`` of :data:`WELL_KNOWN_ALIASES` and the
    biomarkers' ``GENE_ALIASES``."""
    from amu_tf.biomarkers.biomarker_presets import GENE_ALIASES

    out = {}
    for table in (WELL_KNOWN_ALIASES, GENE_ALIASES):
        for new, olds in table.items():
            for old in olds:
                out.setdefault(old.upper(), new)
    return out


def normalise_symbols(ids, species: str = "human", where: str = "") -> tuple[list, dict]:
    """Every gene symbol in its HGNC spelling, once, at ingest: case (``cd274`` and
    ``Cd274`` -> ``CD274``; a known symbol keeps its own case, ``C10orf54``) and well-known
    old names (``IL8`` -> ``CXCL8``, unless the file also has ``CXCL8``). A file whose
    symbols look like mouse ones (``Cd8a``, ``Gzma``: title case) is refused unless the spec
    says ``species = "mouse"``: human and mouse genes share most letters, not their
    biology. Returns ``(symbols, notes)``: ``notes`` has ``recased`` (how many),
    ``renamed`` ({old: new}) and ``species``."""
    ids = [str(i).strip() for i in ids]
    words = [i for i in ids if i[:1].isalpha()]
    title = sum(bool(_TITLE.match(i)) for i in words)
    mouse_like = bool(words) and title > MOUSE_LIKE_SHARE * len(words)
    if mouse_like and species != "mouse":
        example = next(i for i in words if _TITLE.match(i))
        raise InputDataError(
            f"{where}{title} of {len(words)} gene symbols are written like mouse symbols "
            f"(e.g. {example!r}); the panel and the biomarkers are human genes. If this is a "
            "mouse cohort, say species = \"mouse\" in the spec (its symbols are then "
            "read as their human orthologues' upper-case spelling)")
    canon = {s.upper(): s for s in known_symbols()}
    aliases = alias_map()
    upper_ids = {i.upper() for i in ids}
    out, renamed, recased = [], {}, 0
    for i in ids:
        if not i:
            out.append(None)
            continue
        key = i.upper()
        new = aliases.get(key)
        if new is not None and new.upper() not in upper_ids:
            renamed[i] = new
            out.append(new)
            continue
        symbol = canon.get(key, key)
        recased += symbol != i
        out.append(symbol)
    return out, {"recased": recased, "renamed": renamed, "species": species}


def map_to_symbols(ids, id_type: str, ensembl_map: dict[str, str] | None = None,
                   where: str = "", species: str = "human", notes: dict | None = None):
    """Map every id to a gene symbol (or None when unknown): panel genes to their panel
    symbol (:func:`map_to_panel`), the others to their own symbol (see the module notes),
    an old symbol of :data:`~amu_tf.biomarkers.biomarker_presets.GENE_ALIASES` to its current
    one. Symbols are normalised first (:func:`normalise_symbols`); what that changed is put
    in ``notes`` when given."""
    from amu_tf.biomarkers.biomarker_presets import GENE_ALIASES

    current = {old: new for new, olds in GENE_ALIASES.items() for old in olds}
    ids = [str(i).strip() for i in ids]
    if id_type == "symbol" and guess_id_type(ids) == "symbol":
        normal, found = normalise_symbols(ids, species, where)
        if notes is not None:
            notes.update(found)
        ids = [n or "" for n in normal]
    panel = map_to_panel(ids, id_type, ensembl_map, where)
    if id_type == "symbol":
        other = [i or None for i in ids]
    else:
        by_entrez, by_ensembl = _gene_reference()
        if id_type == "entrez":
            other = [by_entrez.get(_norm_entrez(i)) for i in ids]
        else:
            own = ensembl_map or {}
            other = [own.get(strip_version(i)) or by_ensembl.get(strip_version(i)) for i in ids]
    # old symbols (C10orf54) under their current name (VSIR): one column per gene
    return [p if p is not None else current.get(o, o) for p, o in zip(panel, other)]


def entrez_ids(symbols) -> list[str]:
    """The Entrez id of each symbol ("" when unknown): the panel's, else tidepy's reference
    (under the symbol or one of its old names, e.g. VSIR as C10orf54)."""
    from amu_tf.biomarkers.biomarker_presets import GENE_ALIASES

    panel = dict(zip(load_panel()["symbol"], load_panel()["entrez_id"].astype(str)))
    by_entrez, _ = _gene_reference()
    by_symbol = {}
    for e, s in by_entrez.items():
        by_symbol.setdefault(s, e)

    def one(s):
        for name in (s,) + tuple(GENE_ALIASES.get(s, ())):
            if name in panel or name in by_symbol:
                return panel.get(name) or by_symbol[name]
        return ""

    return [one(s) for s in symbols]
