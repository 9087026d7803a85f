"""The key check shared by every TOML amu-tf reads: cohort specs (each section) and `amu run`
configs. A key that is not in the schema is refused, naming the nearest valid key, because a
mistyped key left unread silently changes the result (``[clinical.response_mapp]`` fell back
to the default map; ``os_event_mean = "censored"`` left the events un-inverted).

    check_keys(raw["clinical"], CLINICAL_KEYS, where="spec.toml", section="clinical")
"""

from __future__ import annotations

import difflib

from amu_tf.errors import SpecError


def nearest(name: str, choices) -> str | None:
    """The valid name closest to ``name`` (difflib, case-insensitive), None when none is
    close."""
    choices = list(choices)
    lower = {c.lower(): c for c in choices}
    hit = difflib.get_close_matches(str(name).lower(), list(lower), n=1, cutoff=0.6)
    return lower[hit[0]] if hit else None


def check_keys(table: dict, known, where, section: str | None = None, error=SpecError) -> None:
    """Raise ``error`` for the first key of ``table`` not in ``known``: ``<where>: unknown key
    'x' in [section]; did you mean 'y'? (valid: ...)``."""
    known = sorted(known)
    unknown = [k for k in table if k not in known]
    if not unknown:
        return
    key = unknown[0]
    at = f" in [{section}]" if section else ""
    guess = nearest(key, known)
    hint = f"; did you mean {guess!r}?" if guess else ""
    raise error(f"{where}: unknown key {key!r}{at}{hint} (valid: {', '.join(known)})")
