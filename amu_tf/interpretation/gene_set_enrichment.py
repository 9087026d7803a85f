"""Gene-set over-representation of the top genes against the panel (hypergeometric test, BH).

    sets = read_gmt("c5.go.bp.v2024.1.Hs.symbols.gmt")
    res = enrichment(top_genes, sets, background=panel_symbols())

The background is the panel, not the genome: the top genes can only come from the 160.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from amu_tf.errors import InputDataError
from amu_tf.interpretation.survival_analysis import bh_fdr


def read_gmt(path) -> dict:
    """A GMT file (one set a line: name, description, genes..., tab-separated) -> {name: genes}.
    Raises :class:`InputDataError` if the file is missing or holds no gene set."""
    from amu_tf.data.text_files import read_text

    path = Path(path)
    sets = {}
    for line in read_text(path, "GMT file").splitlines():
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < 3 or not parts[0] or parts[0].startswith("#"):
            continue
        genes = [g for g in parts[2:] if g]
        if genes:
            sets[parts[0]] = sorted(set(genes))
    if not sets:
        raise InputDataError(f"GMT file {path} contains no gene sets")
    return sets


def enrichment(top_genes, gene_sets: dict, background, min_size=2) -> pd.DataFrame:
    """Hypergeometric over-representation of ``top_genes`` in each set, both restricted to
    ``background``. Sets with fewer than ``min_size`` background genes are left out.

    Returns ``gene_set, set_size, overlap, expected, fold, p, fdr, genes`` sorted by p.
    """
    bg = set(background)
    top = set(top_genes) & bg
    M, N = len(bg), len(top)
    if N == 0:
        raise InputDataError("enrichment: none of the top genes is in the background")
    rows = []
    for name, members in gene_sets.items():
        s = set(members) & bg
        if len(s) < min_size:
            continue
        k = len(s & top)
        exp = N * len(s) / M
        rows.append({"gene_set": name, "set_size": len(s), "overlap": k, "expected": exp,
                     "fold": k / exp if exp else np.nan,
                     "p": float(hypergeom.sf(k - 1, M, len(s), N)),
                     "genes": ", ".join(sorted(s & top))})
    if not rows:
        raise InputDataError(
            f"no gene set has {min_size} or more panel genes; check the GMT uses gene symbols")
    out = pd.DataFrame(rows)
    out["fdr"] = bh_fdr(out["p"])
    cols = ["gene_set", "set_size", "overlap", "expected", "fold", "p", "fdr", "genes"]
    return out[cols].sort_values(["p", "gene_set"], kind="mergesort").reset_index(drop=True)
