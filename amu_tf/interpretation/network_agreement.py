"""Does embedding similarity agree with a known interaction network? One AUROC and its
permutation p-value, instead of hand-picked neighbourhoods.

    edges = read_string_network("9606.protein.links.v12.0.txt.gz",
                                mapping="9606.protein.info.v12.0.txt.gz", min_score=700)
    res = network_auroc(cosine_df, edges, n_perm=1000)   # {"auroc", "p_value", ...}

The file format is STRING's ``protein.links``: whitespace-separated ``protein1 protein2
combined_score`` with a header line (STRING's web export ``#node1 node2 ... combined_score``
and API TSV ``... preferredName_A preferredName_B ... score`` are read too; 0-1 scores are
scaled to STRING's 0-1000). Proteins are gene symbols, or STRING ids
(``9606.ENSP...``) translated with a mapping file: STRING's ``protein.info`` (columns
``#string_protein_id`` and ``preferred_name``) or any two-column ``id symbol`` table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf.errors import InputDataError


def read_mapping(path) -> dict:
    """STRING id -> symbol, from ``protein.info`` or a two-column file."""
    from amu_tf.data.text_files import check_text_file

    check_text_file(path, "STRING mapping file")
    df = pd.read_csv(path, sep=None, engine="python", dtype=str, comment=None)
    cols = [c.lstrip("#").strip() for c in df.columns]
    df.columns = cols
    if "string_protein_id" in cols and "preferred_name" in cols:
        return dict(zip(df["string_protein_id"], df["preferred_name"]))
    if len(cols) < 2:
        raise InputDataError(f"{path}: a mapping needs two columns (STRING id, symbol)")
    return dict(zip(df.iloc[:, 0], df.iloc[:, 1]))


def read_string_network(path, mapping=None, min_score=0, keep=None,
                        chunksize=1_000_000) -> pd.DataFrame:
    """Read a STRING-format edge list into ``gene1, gene2, score`` (undirected, deduplicated,
    self-loops dropped, edges with ``combined_score < min_score`` dropped).

    ``keep`` (e.g. the panel's symbols) drops edges not joining two kept genes while reading,
    in chunks, so STRING's genome-wide file (~13 million lines) needs little memory.
    """
    from amu_tf.data.text_files import check_text_file

    path = check_text_file(path, "STRING file")
    try:
        header = pd.read_csv(path, sep=r"\s+", nrows=0).columns
    except pd.errors.EmptyDataError:
        raise InputDataError(f"network file {path} is empty") from None
    # STRING's web export ("#node1 node2 ... combined_score") and API TSV
    # ("preferredName_A preferredName_B ... score", scores 0-1) name the columns differently
    alias = {"node1": "protein1", "node2": "protein2", "preferredName_A": "protein1",
             "preferredName_B": "protein2", "score": "combined_score"}
    names = {c: c.lstrip("#") for c in header}
    if "protein1" not in names.values():
        names = {c: alias.get(n, n) for c, n in names.items()}
    if not {"protein1", "protein2"} <= set(names.values()):
        raise InputDataError(f"{path}: expected STRING columns 'protein1 protein2 "
                             f"combined_score', got {list(header)[:5]}")
    use = [c for c, n in names.items() if n in ("protein1", "protein2", "combined_score")]
    m = None
    if mapping is not None:
        m = read_mapping(mapping) if not isinstance(mapping, dict) else mapping
    keep = set(keep) if keep is not None else None
    parts = []
    for df in pd.read_csv(path, sep=r"\s+", dtype=str, usecols=use, chunksize=chunksize):
        df = df.rename(columns=names)
        a, b = df["protein1"], df["protein2"]
        if m is not None:
            a, b = a.map(m), b.map(m)
        score = pd.to_numeric(df["combined_score"], errors="coerce") if "combined_score" in df \
            else pd.Series(1000.0, index=df.index)
        part = pd.DataFrame({"gene1": a, "gene2": b, "score": score}).dropna()
        if keep is not None:
            part = part[part["gene1"].isin(keep) & part["gene2"].isin(keep)]
        parts.append(part)
    out = pd.concat(parts, ignore_index=True) if parts else \
        pd.DataFrame(columns=["gene1", "gene2", "score"])
    if len(out) and out["score"].max() <= 1.0:  # 0-1 scores (web export, API): STRING's 0-1000
        out["score"] = out["score"] * 1000.0
    out = out[(out["gene1"] != out["gene2"]) & (out["score"] >= min_score)]
    lo = np.minimum(out["gene1"], out["gene2"])
    hi = np.maximum(out["gene1"], out["gene2"])
    out = pd.DataFrame({"gene1": lo, "gene2": hi, "score": out["score"].astype(float)})
    return out.groupby(["gene1", "gene2"], as_index=False)["score"].max()


def _auroc(scores, labels):
    """AUROC of ``scores`` for the pairs with ``labels`` (ties count half)."""
    from amu_tf.evaluation.metrics import auc_rows

    return float(auc_rows(np.asarray(labels, dtype=float)[None, :],
                          np.asarray(scores, dtype=float)[None, :])[0])


def network_auroc(similarity: pd.DataFrame, edges: pd.DataFrame, n_perm=1000, seed=0,
                  higher_is_closer=True, network_genes_only=False) -> dict:
    """AUROC of the similarity of gene pairs for interacting (an edge) vs non-interacting pairs,
    over all pairs of the genes in ``similarity`` (the panel): a pair without an edge counts as
    non-interacting, as in a genome-wide STRING file. With ``network_genes_only`` only genes
    with at least one edge to another panel gene take part (for a partial network, where a
    missing gene means "unknown" rather than "no interaction").

    The p-value permutes gene labels of the similarity matrix (rows and columns together),
    keeping both the network's and the embedding's structure: ``(1 + #perm >= obs) / (n_perm + 1)``.
    Raises :class:`InputDataError` when no edge joins two panel genes.
    """
    genes = list(similarity.index)
    pos = {g: i for i, g in enumerate(genes)}
    e = edges[edges["gene1"].isin(pos) & edges["gene2"].isin(pos)]
    if e.empty:
        raise InputDataError(
            f"the network has no interaction between two panel genes "
            f"({len(edges)} edges; check the symbols or pass the STRING id mapping)")
    members = sorted(set(e["gene1"]) | set(e["gene2"]), key=pos.get) if network_genes_only \
        else genes
    idx = np.array([pos[g] for g in members])
    n = len(idx)
    if n < 3:
        raise InputDataError(f"the network touches only {n} panel genes; too few to score")
    S = similarity.to_numpy(dtype=float)
    if not higher_is_closer:
        S = -S
    local = {g: i for i, g in enumerate(members)}
    A = np.zeros((n, n), dtype=bool)
    ia = e["gene1"].map(local).to_numpy()
    ib = e["gene2"].map(local).to_numpy()
    A[ia, ib] = A[ib, ia] = True
    iu = np.triu_indices(n, 1)
    labels = A[iu]
    if labels.all():
        raise InputDataError("every pair of network genes interacts; no non-interacting pairs")
    sub = S[np.ix_(idx, idx)]
    obs = _auroc(sub[iu], labels)
    rng = np.random.default_rng(seed)
    null = np.empty(n_perm)
    for k in range(n_perm):
        perm = rng.permutation(idx)  # relabel the genes of the similarity matrix
        null[k] = _auroc(S[np.ix_(perm, perm)][iu], labels)
    return {"auroc": float(obs), "p_value": float((1 + np.sum(null >= obs)) / (n_perm + 1)),
            "null_mean": float(null.mean()), "n_perm": int(n_perm), "n_genes": int(n),
            "n_network_genes": int(len(set(e["gene1"]) | set(e["gene2"]))),
            "n_interacting_pairs": int(labels.sum()),
            "n_non_interacting_pairs": int((~labels).sum()),
            "n_edges_in_file": int(len(edges))}
