"""The AMU gene embedding (one row per panel gene): similarity matrices, clustering, t-SNE,
and a measured test of whether genes of a known module sit closer than random pairs.

    euclid, cosine = similarity_matrices(E, genes)           # DataFrames genes x genes
    stats = module_cohesion(E, genes, {"response": [...]})  # within vs random pairs
    fig = tsne_figure(tsne_coordinates(E, genes)); fig.savefig("tsne.png", dpi=FIGURE_DPI)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from amu_tf.errors import InputDataError


def _check(E, genes):
    E = np.asarray(E, dtype=float)
    if E.ndim != 2 or E.shape[0] != len(genes):
        raise InputDataError(f"embedding of shape {E.shape} does not match {len(genes)} genes")
    return E


def cosine_similarity(E) -> np.ndarray:
    E = np.asarray(E, dtype=float)
    norm = np.linalg.norm(E, axis=1, keepdims=True)
    U = E / np.where(norm == 0, 1.0, norm)
    return np.clip(U @ U.T, -1.0, 1.0)


def euclidean_distance(E) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(E, E)


def similarity_matrices(E, genes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(euclidean distance, cosine similarity)`` as gene x gene DataFrames (Fig S5-S6)."""
    E = _check(E, genes)
    return (pd.DataFrame(euclidean_distance(E), index=genes, columns=genes),
            pd.DataFrame(cosine_similarity(E), index=genes, columns=genes))


def module_cohesion(E, genes, modules: dict, metric="cosine", n_perm=1000, seed=0) -> pd.DataFrame:
    """Are genes of each module closer in the embedding than random gene pairs?

    For each module (a list of symbols; those not in ``genes`` are ignored) the mean pairwise
    similarity of its genes (``cosine``; ``abs_cosine``, which also counts anti-aligned rows
    as close, for modules whose genes move in opposite directions; or minus the
    ``euclidean`` distance) is compared with the same
    statistic for ``n_perm`` random gene sets of the same size. Returns one row per module with
    ``within`` (mean within-module similarity), ``random_mean``, ``z`` and the one-sided
    permutation ``p`` (share of random sets at least as cohesive, with the +1 correction).
    """
    E = _check(E, genes)
    if metric == "cosine":
        S = cosine_similarity(E)
    elif metric == "abs_cosine":
        S = np.abs(cosine_similarity(E))
    elif metric == "euclidean":
        S = -euclidean_distance(E)
    else:
        raise ValueError(f"unknown metric {metric!r}: cosine, abs_cosine or euclidean")
    pos = {g: i for i, g in enumerate(genes)}
    rng = np.random.default_rng(seed)
    rows = []
    for name, members in modules.items():
        idx = np.array([pos[g] for g in members if g in pos])
        if len(idx) < 2:
            continue
        m = len(idx)

        def stat(ix):
            sub = S[np.ix_(ix, ix)]
            return (sub.sum() - np.trace(sub)) / (m * (m - 1))

        obs = stat(idx)
        null = np.array([stat(rng.choice(len(genes), m, replace=False)) for _ in range(n_perm)])
        sd = null.std(ddof=1) or np.nan
        rows.append({"module": name, "n_genes": m, "metric": metric, "within": obs,
                     "random_mean": null.mean(), "z": (obs - null.mean()) / sd,
                     "p": (1 + np.sum(null >= obs)) / (n_perm + 1)})
    return pd.DataFrame(rows, columns=["module", "n_genes", "metric", "within", "random_mean",
                                       "z", "p"])


#: resolution of the embedding figures when saved
FIGURE_DPI = 150


def heatmap_figure(matrix: pd.DataFrame, title="", cmap="viridis", order=None):
    """Heatmap of a gene x gene matrix (a ``Figure``), genes in ``order`` (e.g. the
    clustering's leaves)."""
    from matplotlib.figure import Figure

    if order is not None:
        matrix = matrix.loc[order, order]
    n = len(matrix)
    fig = Figure(figsize=(12, 11))
    ax = fig.subplots()
    im = ax.imshow(matrix.to_numpy(), cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(matrix.columns, rotation=90, fontsize=4)
    ax.set_yticklabels(matrix.index, fontsize=4)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return fig


def cluster_linkage(E, genes, method="average", metric="cosine"):
    """The hierarchical clustering of the embedding rows (scipy's linkage matrix), which
    :func:`cluster_order` and :func:`dendrogram_figure` draw from."""
    from scipy.cluster.hierarchy import linkage

    return linkage(_check(E, genes), method=method, metric=metric)


def cluster_order(E, genes, method="average", metric="cosine", Z=None) -> list:
    """Leaf order of a hierarchical clustering of the embedding rows (``Z``: its linkage,
    when computed already)."""
    from scipy.cluster.hierarchy import leaves_list

    Z = cluster_linkage(E, genes, method, metric) if Z is None else Z
    return [genes[i] for i in leaves_list(Z)]


def dendrogram_figure(E, genes, method="average", metric="cosine", Z=None):
    """Hierarchical clustering of the genes' embedding rows (Fig S4), a ``Figure`` (``Z``: its
    linkage, when computed already)."""
    from matplotlib.figure import Figure
    from scipy.cluster.hierarchy import dendrogram

    Z = cluster_linkage(E, genes, method, metric) if Z is None else Z
    fig = Figure(figsize=(22, 6))
    ax = fig.subplots()
    dendrogram(Z, labels=list(genes), leaf_rotation=90, leaf_font_size=5, ax=ax)
    ax.set_title(f"Hierarchical clustering of gene embeddings ({method} linkage, {metric})")
    return fig


def tsne_coordinates(E, genes, seed=0, perplexity=15.0, metric="cosine") -> pd.DataFrame:
    """2-D t-SNE of the embedding rows (sklearn.manifold.TSNE)."""
    from sklearn.manifold import TSNE

    E = _check(E, genes)
    perplexity = min(perplexity, (len(E) - 1) / 3)
    xy = TSNE(n_components=2, perplexity=perplexity, metric=metric, init="random",
              random_state=seed).fit_transform(E)
    return pd.DataFrame({"gene": list(genes), "tsne_1": xy[:, 0], "tsne_2": xy[:, 1]})


def tsne_figure(coords: pd.DataFrame, highlight: dict | None = None,
                title="t-SNE of gene embeddings"):
    """t-SNE map with gene labels (Fig 5), a ``Figure``; ``highlight`` colours named gene
    groups."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 9))
    ax = fig.subplots()
    colour = ["#9a9a9a"] * len(coords)
    if highlight:
        palette = colormaps["tab10"]
        for i, (name, members) in enumerate(highlight.items()):
            c = to_hex(palette(i % 10))
            for j in np.flatnonzero(coords["gene"].isin(members).to_numpy()):
                colour[j] = c
            ax.scatter([], [], color=c, label=name)
        ax.legend(fontsize=7, loc="best")
    ax.scatter(coords["tsne_1"], coords["tsne_2"], c=colour, s=14)
    for _, r in coords.iterrows():
        ax.annotate(r["gene"], (r["tsne_1"], r["tsne_2"]), fontsize=5, alpha=0.8)
    ax.set_title(title)
    return fig
