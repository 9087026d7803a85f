import numpy as np
import pandas as pd
import pytest

from amu_tf.errors import InputDataError
from amu_tf.interpretation.embedding_analysis import module_cohesion, similarity_matrices
from amu_tf.interpretation.network_agreement import network_auroc, read_string_network


def _planted(n_genes=60, n_mod=4, size=8, dim=10, seed=0):
    """An embedding whose module genes share a direction, and the modules' gene lists."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    E = rng.normal(size=(n_genes, dim))
    order = rng.permutation(n_genes)
    modules = {}
    for k in range(n_mod):
        idx = order[k * size:(k + 1) * size]
        centre = rng.normal(size=dim) * 2
        E[idx] = centre + 0.7 * rng.normal(size=(size, dim))
        modules[f"m{k}"] = [genes[i] for i in idx]
    return E, genes, modules


def _write(path, rows, header="protein1 protein2 combined_score"):
    path.write_text(header + "\n" + "\n".join(" ".join(map(str, r)) for r in rows) + "\n")
    return path


def test_auroc_high_for_module_network_and_half_for_random(tmp_path):
    E, genes, modules = _planted()
    _, cos = similarity_matrices(E, genes)
    rows = [(a, b, 900) for m in modules.values() for i, a in enumerate(m) for b in m[i + 1:]]
    # a few noise edges, as a real network has
    rng = np.random.default_rng(1)
    rows += [(genes[i], genes[j], 400) for i, j in rng.integers(0, len(genes), (10, 2)) if i != j]
    res = network_auroc(cos, read_string_network(_write(tmp_path / "mod.txt", rows)), n_perm=200)
    assert res["auroc"] > 0.85
    assert res["p_value"] < 0.01

    aucs = []
    for seed in range(5):
        r = np.random.default_rng(100 + seed)
        pairs = {tuple(sorted(r.choice(len(genes), 2, replace=False))) for _ in range(120)}
        rand = [(genes[i], genes[j], 800) for i, j in pairs]
        res_r = network_auroc(cos, read_string_network(_write(tmp_path / f"r{seed}.txt", rand)),
                              n_perm=100, seed=seed)
        aucs.append(res_r["auroc"])
        assert 0.35 < res_r["auroc"] < 0.65
    assert abs(np.mean(aucs) - 0.5) < 0.06


def test_string_ids_with_mapping_and_min_score(tmp_path):
    E, genes, modules = _planted()
    _, cos = similarity_matrices(E, genes)
    ids = {g: f"9606.ENSP{i:011d}" for i, g in enumerate(genes)}
    m = modules["m0"]
    rows = [(ids[a], ids[b], 950) for i, a in enumerate(m) for b in m[i + 1:]]
    rows += [(ids[b], ids[a], 950) for i, a in enumerate(m) for b in m[i + 1:]]  # STRING lists both
    rows += [(ids[genes[0]], ids[genes[1]], 150)]
    net = _write(tmp_path / "links.txt", rows)
    info = tmp_path / "info.txt"
    info.write_text("#string_protein_id\tpreferred_name\tprotein_size\n"
                    + "".join(f"{v}\t{k}\t100\n" for k, v in ids.items()))
    edges = read_string_network(net, mapping=info, min_score=400)
    assert len(edges) == len(m) * (len(m) - 1) // 2
    assert set(edges["gene1"]) | set(edges["gene2"]) == set(m)
    res = network_auroc(cos, edges, n_perm=50)
    assert res["n_genes"] == len(genes) and res["n_network_genes"] == len(m)
    assert res["n_interacting_pairs"] == len(edges) and res["auroc"] > 0.85
    with pytest.raises(InputDataError, match="no non-interacting"):
        network_auroc(cos, edges, network_genes_only=True)


def test_network_without_panel_genes_is_a_clear_error(tmp_path):
    E, genes, _ = _planted()
    _, cos = similarity_matrices(E, genes)
    edges = read_string_network(_write(tmp_path / "x.txt", [("FOO", "BAR", 900), ("BAR", "BAZ", 800)]))
    with pytest.raises(InputDataError, match="no interaction between two panel genes"):
        network_auroc(cos, edges)
    with pytest.raises(InputDataError, match="expected STRING columns"):
        read_string_network(_write(tmp_path / "bad.txt", [("a", "b")], header="x y"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(InputDataError, match="empty"):
        read_string_network(tmp_path / "empty.txt")


def test_module_cohesion_planted_vs_random():
    E, genes, modules = _planted()
    res = module_cohesion(E, genes, modules, n_perm=300).set_index("module")
    assert (res["p"] < 0.01).all() and (res["within"] > res["random_mean"]).all()
    rng = np.random.default_rng(5)
    rand = {f"r{k}": list(rng.choice(genes, 8, replace=False)) for k in range(20)}
    res_r = module_cohesion(E, genes, rand, n_perm=300)
    assert (res_r["p"] < 0.01).sum() <= 2
    eu = module_cohesion(E, genes, modules, metric="euclidean", n_perm=300)
    assert (eu["p"] < 0.01).all()
    # anti-aligned module: cosine says far, abs_cosine says close
    E2 = E.copy()
    half = [genes.index(g) for g in modules["m1"][:4]]
    E2[half] *= -1
    res2 = module_cohesion(E2, genes, {"m1": modules["m1"]}, metric="abs_cosine", n_perm=300)
    assert res2["p"].iloc[0] < 0.01


def test_string_web_export_and_api_formats(tmp_path):
    web = tmp_path / "web.tsv"
    web.write_text("#node1\tnode2\tnode1_string_id\tnode2_string_id\tcombined_score\n"
                   "CD8A\tGZMB\t9606.ENSP1\t9606.ENSP2\t0.912\nCD8A\tIL6\t9606.ENSP1\t9606.ENSP3\t0.3\n")
    e = read_string_network(web, min_score=400)
    assert e[["gene1", "gene2"]].values.tolist() == [["CD8A", "GZMB"]]
    assert e["score"].iloc[0] == pytest.approx(912)
    api = tmp_path / "api.tsv"
    api.write_text("stringId_A\tstringId_B\tpreferredName_A\tpreferredName_B\tncbiTaxonId\tscore\n"
                   "9606.ENSP2\t9606.ENSP1\tGZMB\tCD8A\t9606\t0.75\n")
    e = read_string_network(api, min_score=700)
    assert e[["gene1", "gene2"]].values.tolist() == [["CD8A", "GZMB"]]


def test_chunked_reading_with_keep_matches_full_read(tmp_path):
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(30)]
    rows = [(genes[i], genes[j], int(s)) for i, j, s in
            zip(rng.integers(0, 30, 500), rng.integers(0, 30, 500), rng.integers(150, 1000, 500))]
    f = _write(tmp_path / "big.txt", rows)
    full = read_string_network(f, min_score=400)
    keep = genes[:20]
    part = read_string_network(f, min_score=400, keep=keep, chunksize=37)
    expect = full[full["gene1"].isin(keep) & full["gene2"].isin(keep)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expect)
    assert len(part) > 0 and (full["score"] >= 400).all()
