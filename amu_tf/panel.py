"""The 160-gene panel of the AMU paper (symbols and NCBI Entrez ids), shipped as package data."""

from __future__ import annotations

import functools
from importlib import resources

import pandas as pd

N_GENES = 160


@functools.lru_cache(maxsize=1)
def load_panel() -> pd.DataFrame:
    """The panel as a DataFrame with columns ``symbol`` and ``entrez_id`` in the paper's order."""
    with resources.files("amu_tf.resources").joinpath("panel160.tsv").open("r") as fh:
        panel = pd.read_csv(fh, sep="\t", dtype={"symbol": str, "entrez_id": str})
    assert len(panel) == N_GENES, len(panel)
    return panel


def panel_symbols() -> list[str]:
    """Gene symbols in the model's input order."""
    return load_panel()["symbol"].tolist()


def panel_entrez() -> list[str]:
    """Entrez ids (as strings) in the model's input order."""
    return load_panel()["entrez_id"].tolist()
