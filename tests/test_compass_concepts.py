"""CompassConcepts: gene-set and concept features from encoder outputs (fast: a small
hand-made concept table)."""

import numpy as np
import pytest

from amu_tf.data.compass_concepts import CompassConcepts, concept_tables, geneset_vectors
from amu_tf.errors import InputDataError

TSV = ("GeneSet\tBroadCelltypePathway\tLineage\tGeneSet_index\tConcept_index\tDescription\t"
       "Genes\tReference\tn_genes\n"
       "S_b\tReference\tx\t2\t9\td\tG4:G5\tp\t2\n"
       "S_a\tTcell\tx\t0\t0\td\tG0:G1:NOTAGENE\tp\t3\n"
       "S_c\tTcell\tx\t1\t0\td\tG2\tp\t1\n")
GENES = [f"G{i}" for i in range(6)]


def test_tables_follow_compass_order():
    t = concept_tables(TSV, GENES)
    assert t["geneset_names"] == ["S_a", "S_c", "S_b"]
    assert t["geneset_members"] == [[0, 1], [2], [4, 5]]
    assert t["concept_names"] == ["Tcell", "Reference"]
    assert t["concept_members"] == [[0, 1], [2]]


def test_pooling_and_readouts():
    t = concept_tables(TSV, GENES)
    rng = np.random.default_rng(0)
    enc = rng.normal(size=(7, 8, 3)).astype("float32")          # 2 special + 6 gene tokens
    sets = geneset_vectors(enc, t)
    np.testing.assert_allclose(sets[:, 0], enc[:, 2:4].mean(1), rtol=1e-6)
    mean = CompassConcepts(level="concept", readout="mean", tables=t).fit(enc)
    expected = (sets[:, 0] + sets[:, 1]) / 2
    np.testing.assert_allclose(mean.transform(enc)[:, 0], expected.mean(-1), rtol=1e-5)
    pc = CompassConcepts(level="geneset", readout="pc1", tables=t).fit(enc)
    out = pc.transform(sets)                                     # pre-pooled input too
    assert out.shape == (7, 3) and out.dtype == np.float32
    z = sets[:, 2] - sets[:, 2].mean(0)
    top = np.linalg.svd(z, full_matrices=False)[1][0]
    assert abs(np.var(out[:, 2]) - top ** 2 / 7) < 1e-4        # the top component's variance
    vec = CompassConcepts(level="geneset", readout="vector", tables=t).fit(enc)
    assert vec.transform(enc).shape == (7, 9)
    assert list(vec.get_feature_names_out()[:2]) == ["S_a:0", "S_a:1"]
    with pytest.raises(InputDataError):
        CompassConcepts(level="cells", tables=t).fit(enc)


def test_gene_level_is_compass_gene_readout():
    """level="gene": COMPASS's gene-level extractor under its pooling scorer, each gene
    token's mean over the channels, one feature per gene, named by the tables' genes; the
    same from the full encodings and from pre-read gene scores; no readout but "mean"."""
    from amu_tf.data.compass_concepts import gene_scores

    t = concept_tables(TSV, GENES)
    assert t["gene_names"] == GENES
    rng = np.random.default_rng(1)
    enc = rng.normal(size=(5, 8, 3)).astype("float32")
    scores = gene_scores(enc, t)
    np.testing.assert_allclose(scores, enc[:, 2:, :].mean(-1), rtol=1e-6)
    gene = CompassConcepts(level="gene", readout="mean", tables=t).fit(enc)
    assert list(gene.get_feature_names_out()) == GENES
    np.testing.assert_allclose(gene.transform(enc), scores, rtol=1e-6)
    np.testing.assert_allclose(gene.transform(scores), scores, rtol=1e-6)
    for readout in ("pc1", "vector"):
        with pytest.raises(InputDataError, match="level 'gene' has only the readout"):
            CompassConcepts(level="gene", readout=readout, tables=t).fit(enc)
    with pytest.raises(InputDataError, match="encodings of shape"):
        gene_scores(enc[:, :4], t)
