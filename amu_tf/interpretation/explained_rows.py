"""Which rows an interpretation explains, and which it uses as the SHAP background.

    rows = choose_rows(table, [info_a, info_b], rows="heldout", n_explain=200, seed=0)
    rows.explain, rows.background, rows.note        # positions into the table, and why

Every model is explained on the same rows: the labeled rows of cohorts none of the models was
trained on (``model_info.json`` ``training_cohorts``). When every cohort was used in training,
all labeled rows are explained and ``note`` says the attributions are on training rows. The
background (reference distribution) is always the training rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from amu_tf.errors import InputDataError

#: at most this many training rows form the SHAP background sample
N_BACKGROUND_ROWS = 500


@dataclass(frozen=True)
class ExplainedRows:
    """The explained rows and the background rows (sorted positions into the table)."""

    explain: np.ndarray
    background: np.ndarray
    note: str
    sample_ids: pd.Series | None = None  # the explained rows' ``sample`` column, if any


def select_rows(table: pd.DataFrame, infos: list[dict], rows="heldout"):
    """``(explain_mask, background_mask, note)``: the rows to explain (held-out cohorts' labeled
    rows, or all labeled rows) and the training rows used as SHAP background."""
    labeled = table["response"].notna().to_numpy() if "response" in table else np.ones(len(table), bool)
    trained = set()
    for info in infos:
        trained |= set(info.get("training_cohorts") or [])
    in_train = table["cohort"].isin(trained).to_numpy() if trained and "cohort" in table \
        else np.zeros(len(table), bool)
    if rows == "heldout" and in_train.any() and (~in_train & labeled).any():
        return (~in_train & labeled), (in_train & labeled), (
            f"held-out rows: cohorts not used in training "
            f"({', '.join(sorted(set(table.loc[~in_train, 'cohort'].astype(str))))})")
    note = ("all labeled rows; the models were trained on them (no held-out cohort in the "
            "table), so attributions describe the fitted models, not generalisation")
    if not trained:
        note = "all labeled rows (model_info.json lists no training cohorts)"
    bg = in_train & labeled if in_train.any() else labeled
    return labeled, bg, note


def sample_rows(mask, n, seed) -> np.ndarray:
    """The positions where ``mask`` is true; a seeded sample of ``n`` of them (kept in order)
    when there are more."""
    idx = np.flatnonzero(mask)
    if n is not None and len(idx) > n:
        idx = np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))
    return idx


def choose_rows(table: pd.DataFrame, infos: list[dict], rows="heldout", n_explain=200,
                seed=0) -> ExplainedRows:
    """The rows to explain (at most ``n_explain``) and the background rows (at most
    :data:`N_BACKGROUND_ROWS`), both seeded samples; see :func:`select_rows`.
    Raises :class:`InputDataError` when no labeled row is left to explain."""
    explain_mask, bg_mask, note = select_rows(table, infos, rows)
    if not explain_mask.any():
        raise InputDataError("interpret: the table has no labeled rows to explain")
    ex = sample_rows(explain_mask, n_explain, seed)
    samples = table["sample"].iloc[ex] if "sample" in table else None
    return ExplainedRows(ex, sample_rows(bg_mask, N_BACKGROUND_ROWS, seed), note, samples)
