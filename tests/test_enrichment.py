import numpy as np
import pytest
from scipy.stats import fisher_exact

from amu_tf.errors import InputDataError
from amu_tf.interpretation.gene_set_enrichment import enrichment, read_gmt


def _gmt(path, sets):
    path.write_text("".join(f"{n}\thttp://x/{n}\t" + "\t".join(g) + "\n" for n, g in sets.items()))
    return path


def test_enrichment_finds_planted_set_and_matches_fisher(tmp_path):
    bg = [f"G{i}" for i in range(160)]
    top = bg[:20]
    sets = {"PLANTED": bg[:12] + bg[100:104], "RANDOM": bg[40:70], "OUTSIDE": ["X1", "X2", "X3"],
            "TINY": [bg[0], "X9"]}
    res = enrichment(top, read_gmt(_gmt(tmp_path / "s.gmt", sets)), bg).set_index("gene_set")
    assert list(res.index) == ["PLANTED", "RANDOM"]  # sets with < 2 panel genes left out
    assert res.loc["PLANTED", "overlap"] == 12 and res.loc["PLANTED", "set_size"] == 16
    assert res.loc["PLANTED", "fdr"] < 1e-6
    assert res.loc["RANDOM", "p"] == pytest.approx(1.0)
    # one-sided hypergeometric == one-sided Fisher exact test
    table = [[12, 8], [4, 136]]
    assert res.loc["PLANTED", "p"] == pytest.approx(fisher_exact(table, "greater")[1], rel=1e-9)
    assert res.loc["PLANTED", "fdr"] >= res.loc["PLANTED", "p"]


def test_empty_gmt_is_a_clear_error(tmp_path):
    (tmp_path / "e.gmt").write_text("")
    with pytest.raises(InputDataError, match="contains no gene sets"):
        read_gmt(tmp_path / "e.gmt")
    with pytest.raises(InputDataError, match="does not exist"):
        read_gmt(tmp_path / "nope.gmt")
    sets = read_gmt(_gmt(tmp_path / "o.gmt", {"A": ["X1", "X2"]}))
    with pytest.raises(InputDataError, match="no gene set has"):
        enrichment(["G1"], sets, ["G1", "G2", "G3"])
