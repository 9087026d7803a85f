"""The published biomarkers as baselines: scores, missing genes, the classifier, and the
shared-cohort table of issue #14 reproduced."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from amu_tf.biomarkers import BIOMARKERS, BiomarkerClassifier, BiomarkerTransform
from amu_tf.biomarkers.biomarker_presets import biomarker_genes
from amu_tf.errors import InputDataError


def _table(genes, n=30, cohorts=("A", "B"), seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for c in cohorts:
        df = pd.DataFrame(rng.normal(5, 1, size=(n, len(genes))), columns=list(genes))
        df.insert(0, "cohort", c)
        df.insert(0, "sample", [f"{c}{i}" for i in range(n)])
        df["response"] = rng.integers(0, 2, n).astype(float)
        rows.append(df)
    return pd.concat(rows, ignore_index=True)


def test_every_biomarker_has_reference_description_and_genes():
    assert set(BIOMARKERS) == {"cd274", "cd8a", "cxcl9", "cytolytic", "ifng6", "gep18",
                               "impres", "tide"}
    for name, spec in BIOMARKERS.items():
        assert spec["reference"] and spec["description"] and spec["label"]
        assert name == "tide" or biomarker_genes(name)
    assert len(BIOMARKERS["gep18"]["weights"]) == 18
    assert len(BIOMARKERS["impres"]["pairs"]) == 15


def test_single_gene_score_ranks_as_the_gene_within_a_cohort():
    t = _table(["CD8A", "XYZ"])
    s = BiomarkerTransform("cd8a").fit(t).transform(t)[:, 0]
    for c in ("A", "B"):
        rows = (t["cohort"] == c).to_numpy()
        assert np.corrcoef(s[rows], t.loc[rows, "CD8A"])[0, 1] > 0.9999
        assert abs(s[rows].mean()) < 1e-5 and abs(s[rows].std() - 1) < 1e-4  # z within cohort


def test_seen_cohorts_keep_training_statistics_new_cohorts_use_their_own():
    t = _table(["CD8A"], cohorts=("A", "B"))
    tr = BiomarkerTransform("cd8a").fit(t[t.cohort == "A"])
    one = t[t.cohort == "A"].iloc[:3]
    # one sample of a seen cohort: the same score alone or with the others
    np.testing.assert_allclose(tr.transform(one), tr.transform(t[t.cohort == "A"])[:3])
    new = t[t.cohort == "B"].copy()
    new["CD8A"] += 10  # a shifted new cohort is standardised by its own mean
    assert abs(tr.transform(new).mean()) < 1e-5


def test_impres_counts_pairs_within_each_sample():
    genes = biomarker_genes("impres")
    t = _table(genes, n=6, cohorts=("A",))
    t.loc[5, list(genes)] = 0.0  # all tied: no pair counts
    s = BiomarkerTransform("impres").fit(t).transform(t)[:, 0]
    pairs = BIOMARKERS["impres"]["pairs"]
    want = [sum(t.loc[i, a] > t.loc[i, b] for a, b in pairs) for i in range(6)]
    np.testing.assert_array_equal(s, want)
    assert s[5] == 0
    # within-sample: shifting one sample's genes together leaves its score unchanged
    shifted = t.copy()
    shifted.loc[0, list(genes)] += 3.0
    assert BiomarkerTransform("impres").fit(t).transform(shifted)[0, 0] == s[0]


def test_gene_aliases_are_found():
    genes = [("C10orf54" if g == "VSIR" else g) for g in biomarker_genes("impres")]
    t = _table(genes, cohorts=("A",))
    s = BiomarkerTransform("impres").fit(t).transform(t)
    assert np.isfinite(s).all()


def test_missing_genes_are_named_and_too_many_refused():
    t = _table(["GZMA", "XYZ"])  # PRF1 absent: cytolytic has 1 of 2 genes, allowed
    tr = BiomarkerTransform("cytolytic").fit(t)
    assert tr.missing_genes_ == {"A": ["PRF1"], "B": ["PRF1"]}
    with pytest.raises(InputDataError, match="biomarker CXCL9: cohort A has only 0 of its 1 "
                                             "genes \\(missing: CXCL9\\)"):
        BiomarkerTransform("cxcl9").fit(t)
    with pytest.raises(InputDataError, match="IFN-gamma 6: cohort A has only 0 of its 6"):
        BiomarkerTransform("ifng6").fit(t)


def test_classifier_learns_only_the_threshold():
    rng = np.random.default_rng(3)
    s = rng.normal(size=(80, 1))
    y = (s[:, 0] + rng.normal(scale=0.8, size=80) > 0).astype(int)
    clf = BiomarkerClassifier("cd8a").fit(s, y)
    p = clf.predict_proba(s)[:, 1]
    assert np.all(np.diff(p[np.argsort(s[:, 0])]) >= 0)  # monotone in the score
    assert roc_auc_score(y, p) == roc_auc_score(y, s[:, 0])
    flipped = BiomarkerClassifier("cd8a").fit(s, 1 - y)  # labels change only the threshold
    np.testing.assert_array_equal(flipped.predict_proba(s), clf.predict_proba(s))
    assert clf.threshold_method_ == "youden_train" and 0 < clf.threshold_ < 1
    assert set(clf.predict(s)) <= {0, 1}


#: issue #14's table: AUC of each score within each shared cohort (CR/PR vs SD/PD)
PUBLISHED = {
    "cd8a": {"GSE91061_pre": 0.656, "GSE78220": 0.511, "Liu2019": 0.516},
    "cxcl9": {"GSE91061_pre": 0.638, "GSE78220": 0.505, "Liu2019": 0.557},
    "cd274": {"GSE91061_pre": 0.541, "GSE78220": 0.588, "Liu2019": 0.503},
    "cytolytic": {"GSE91061_pre": 0.623, "GSE78220": 0.412, "Liu2019": 0.541},
    "ifng6": {"GSE91061_pre": 0.626, "GSE78220": 0.462, "Liu2019": 0.532},
    "gep18_unweighted": {"GSE91061_pre": 0.603, "GSE78220": 0.462, "Liu2019": 0.535},
    "tide": {"GSE91061_pre": 0.372, "GSE78220": 0.775, "Liu2019": 0.512},
}


@pytest.fixture(scope="module")
def shared_table(shared_data, tmp_path_factory):
    from pathlib import Path

    from components.ingest import run_ingest

    specs = sorted(str(p) for p in (Path(__file__).parents[1] / "examples" / "cohorts")
                   .glob("*.toml"))
    out = tmp_path_factory.mktemp("shared") / "cohort"
    run_ingest(specs, out, data_root=shared_data)
    from amu_tf.data.cohort_table import read_table

    table = read_table(out)
    return table[table["response"].notna()].reset_index(drop=True)


@pytest.mark.slow
def test_shared_cohort_table_is_reproduced_within_002(shared_table, monkeypatch):
    from amu_tf.biomarkers import biomarker_presets

    gep = BIOMARKERS["gep18"]
    monkeypatch.setitem(biomarker_presets.BIOMARKERS, "gep18_unweighted",
                        dict(gep, kind="mean_z", genes=tuple(gep["weights"])))
    for name, want in PUBLISHED.items():
        for cohort, auc in want.items():
            rows = shared_table[shared_table["cohort"] == cohort].reset_index(drop=True)
            others = shared_table[shared_table["cohort"] != cohort]
            s = BiomarkerTransform(name).fit(others).transform(rows)[:, 0]
            got = roc_auc_score(rows["response"], s)
            assert abs(got - auc) <= 0.02, (name, cohort, got, auc)
    # Markovits (issue #15): CD8A 0.873, CXCL9 0.860, IFN-gamma 6 0.844
    rows = shared_table[shared_table["cohort"] == "Markovits2023_PD1"].reset_index(drop=True)
    for name, auc in {"cd8a": 0.873, "cxcl9": 0.860, "ifng6": 0.844}.items():
        s = BiomarkerTransform(name).fit(rows).transform(rows)[:, 0]
        assert abs(roc_auc_score(rows["response"], s) - auc) <= 0.02


def test_biomarker_trains_to_a_model_artifact_and_predicts_through_the_cli(tmp_path):
    """`amu train --model cd8a` semantics through run_train, then `amu predict` on the Model
    artifact directly: the same probabilities as the bundle, at its frozen threshold."""
    from click.testing import CliRunner

    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.training.model_bundle import ModelBundle
    from components.train import run_train
    from pipelines.cli import amu

    table, _ = make_synthetic_table(seed=1, n_per_cohort=30)
    art = run_train(table, tmp_path / "model", model="cxcl9")
    bundle = ModelBundle.load(art.uri)
    assert bundle.kind == "biomarker" and bundle.info["genes"]["symbols"] == ["CXCL9"]
    csv = tmp_path / "table.csv"
    table.to_csv(csv, index=False)
    res = CliRunner().invoke(amu, ["predict", "--model", str(art.uri), "--input", str(csv),
                                   "--out", str(tmp_path / "pred.csv")])
    assert res.exit_code == 0, res.output
    assert "cxcl9 (biomarker)" in res.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    np.testing.assert_allclose(pred["probability"], bundle.predict_proba(table)[:, 1],
                               rtol=1e-6)
    assert (pred["predicted_class"] == (pred["probability"] >= bundle.threshold)).all()
    res = CliRunner().invoke(amu, ["predict", "--model", str(art.uri), "--input", str(csv),
                                   "--version", "2"])
    assert res.exit_code != 0 and "--version applies to exported models" in res.output


def test_protocol_reports_biomarkers_beside_models_and_compares(tmp_path):
    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.evaluation.biomarker_comparison import compare_with_biomarkers
    from amu_tf.evaluation.protocols import run_protocol

    table, _ = make_synthetic_table(seed=2, n_per_cohort=40)
    r = run_protocol(table, "loco", ["logreg", "cd8a", "impres"], n_boot=100, progress=False)
    assert set(r.metrics["model"]) == {"logreg", "cd8a", "impres"}
    assert any("biomarkers score each cohort" in n for n in r.notes)
    cmp = compare_with_biomarkers(r, n_boot=100)
    assert set(cmp["scope"]) == {"pooled", "SYN_COUNTS", "SYN_TPM_A", "SYN_TPM_B"}
    assert (cmp["model"] == "logreg").all()
    for _, row in cmp.iterrows():
        assert row["ci_low"] <= row["auc_difference"] <= row["ci_high"]
        best = r.per_cohort if row["scope"] != "pooled" else r.metrics
        sel = best[best["model"].isin(["cd8a", "impres"])]
        if row["scope"] != "pooled":
            sel = sel[sel["cohort"] == row["scope"]]
        assert row["auc_biomarker"] == pytest.approx(sel["roc_auc"].max())
        assert row["verdict"].startswith("logreg ")
    # the planted synthetic module is learnable: logreg beats the signal-free biomarkers pooled
    pooled = cmp[cmp["scope"] == "pooled"].iloc[0]
    assert "beats" in pooled["verdict"] and pooled["ci_low"] > 0


def test_protocol_notes_name_the_genes_a_cohort_lacks():
    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.evaluation.protocols import run_protocol

    table, _ = make_synthetic_table(seed=4, n_per_cohort=30)
    table.loc[table["cohort"] == "SYN_TPM_B", "PRF1"] = np.nan  # the held-out cohort lacks it
    r = run_protocol(table, "loco", ["cytolytic"], n_boot=0, progress=False)
    note = [n for n in r.notes if n.startswith("biomarker:cytolytic")]
    assert note == ["biomarker:cytolytic: genes absent from a cohort, left out of its score "
                    "there: SYN_TPM_B: PRF1"]


def test_loco_per_cohort_rows_survive_missing_gene_notes():
    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.evaluation.protocols import run_protocol

    table, _ = make_synthetic_table(seed=5, n_per_cohort=30)
    table.loc[table["cohort"] == "SYN_TPM_A", "GZMA"] = np.nan
    r = run_protocol(table, "loco", ["cytolytic", "cd8a"], n_boot=0, progress=False)
    assert set(r.per_cohort["cohort"]) == {"SYN_COUNTS", "SYN_TPM_A", "SYN_TPM_B"}
