"""The SignatureSets library as baselines ``sig:<name>`` (issue #24, item 1): the folder,
bad files, every scorer against its reference (hand formula or gseapy called directly, as
PredictioR does), direction, within-cohort z-score, coverage and its floor, the classifier."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amu_tf.biomarkers import signature_library as sl
from amu_tf.biomarkers.signature_classifier import SignatureClassifier, make_signature_estimator
from amu_tf.errors import InputDataError

MINI = Path(__file__).parent / "fixtures" / "signatures_mini"
NAMED = ["GA1", "GA2", "GA3", "GA4", "GB1", "GB2", "GB3", "GB4", "GB5",
         "GC1", "GC2", "GC3", "GC4", "GC5", "GC6", "GD1", "GD2", "GD3", "GD4"]


def _table(n=24, cohorts=("A", "B"), n_other=300, seed=0):
    """Two cohorts on a log2-like scale with different means; the GC genes (GSVA set) carry
    the response signal."""
    rng = np.random.default_rng(seed)
    genes = NAMED + [f"G{i:04d}" for i in range(n_other)]
    parts = []
    for k, c in enumerate(cohorts):
        x = rng.normal(5 + k, 1 + 0.5 * k, size=(n, len(genes)))
        y = np.tile([0.0, 1.0], n // 2)
        x[:, 9:15] += 1.2 * y[:, None]
        df = pd.DataFrame(np.abs(x) + 0.1, columns=genes)
        df.insert(0, "cohort", c)
        df.insert(0, "sample", [f"{c}{i}" for i in range(n)])
        df["response"] = y
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def _z(v):
    return (v - v.mean()) / v.std()


def _scalefun(block):
    """PredictioR's ``scalefun``: each gene z-scored over the cohort's samples (R's scale)."""
    return (block - block.mean(axis=0)) / block.std(axis=0, ddof=1)


def test_list_expand_and_resolve(monkeypatch, tmp_path):
    t = sl.list_signatures(MINI).set_index("model")
    assert list(t.index) == ["sig:MINI_Mean", "sig:MINI_ssGSEA", "sig:MINI_GSVA", "sig:MINI_COX",
                             "sig:MINI_PredictIO", "sig:MINI_Tree"]
    assert t.loc["sig:MINI_Mean", "n_genes"] == 4 and t.loc["sig:MINI_GSVA", "pmid"] == "1003"
    assert t.loc["sig:MINI_COX", "scored_by"] == "cox_is"
    assert t.loc["sig:MINI_Tree", "scored_by"] == "" and "placeholder" in t.loc["sig:MINI_Tree", "note"]
    assert sl.expand_model_names(["logreg", "sig:*", "cd8a"], MINI) == [
        "logreg", "sig:MINI_Mean", "sig:MINI_ssGSEA", "sig:MINI_GSVA", "sig:MINI_COX",
        "sig:MINI_PredictIO", "cd8a"]
    assert sl.expand_model_names(["sig:gsva", "sig:specific"], MINI) == [
        "sig:MINI_GSVA", "sig:MINI_COX", "sig:MINI_PredictIO"]
    with pytest.raises(InputDataError, match="MINI_Tree: not scored: IPRES"):
        sl.expand_model_names(["sig:MINI_Tree"], MINI)
    with pytest.raises(InputDataError, match="unknown signature 'Nope'"):
        sl.get_signature("sig:Nope", MINI)
    monkeypatch.setenv(sl.ENV_VAR, str(MINI))
    assert sl.resolve_signatures_dir() == MINI.resolve()
    monkeypatch.delenv(sl.ENV_VAR)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputDataError, match="no signature folder: give one with --signatures"):
        sl.resolve_signatures_dir()
    with pytest.raises(InputDataError, match="not a SignatureSets-format folder"):
        sl.resolve_signatures_dir(tmp_path)


@pytest.mark.parametrize("edit, message", [
    (("IO/MINI_Mean.csv", "GA2\",1", "GA2\",heavy"), "weight 'heavy' is not a number"),
    (("IO/MINI_Mean.csv", "\"weight\"", "\"w\""), "lacks the column"),
    (("signature_information_io.csv", "MINI_GSVA,sensitive", "MINI_GSVA,helpful"),
     "neither 'sensitive' nor 'resistance'"),
    (("IO/MINI_PredictIO.csv", "\"sensitive\",NA\n\"MINI_PredictIO\",\"\",\"protein_coding\",\"GC3\"",
      "\"up\",NA\n\"MINI_PredictIO\",\"\",\"protein_coding\",\"GC3\""), "PredictIO weight 'up'"),
])
def test_malformed_files_are_one_line_errors(tmp_path, edit, message):
    folder = tmp_path / "sigs"
    shutil.copytree(MINI, folder)
    path, old, new = edit
    text = (folder / path).read_text()
    assert old in text
    (folder / path).write_text(text.replace(old, new, 1))
    with pytest.raises(InputDataError, match=message) as exc:
        sl.list_signatures(folder)
    assert "\n" not in str(exc.value)


def test_weighted_mean_matches_predictior_formula_and_freezes_training_statistics():
    table = _table()
    got = sl.signature_scores(table, "MINI_Mean", MINI)
    w = np.array([1, 1, -1, 0.5])
    for c in ("A", "B"):
        rows = table["cohort"] == c
        z = _scalefun(table.loc[rows, ["GA1", "GA2", "GA3", "GA4"]].to_numpy())
        ref = (z * w).sum(axis=1) / 4  # geneSigMean: sum(x * weight) / nrow(sig)
        assert got[rows.to_numpy()] == pytest.approx(_z(ref), abs=1e-5)
    # test rows of a cohort seen in training: scored with the training rows' statistics
    train, test = table.iloc[::2], table.iloc[1::2]
    tf_ = sl.SignatureTransform("sig:MINI_Mean", MINI).fit(train)
    out = tf_.transform(test)[:, 0]
    rows_tr, rows_te = (train["cohort"] == "A").to_numpy(), (test["cohort"] == "A").to_numpy()
    g = ["GA1", "GA2", "GA3", "GA4"]
    mu, sd = train.loc[rows_tr, g].mean().to_numpy(), train.loc[rows_tr, g].std(ddof=0).to_numpy()
    raw_tr = (((train.loc[rows_tr, g].to_numpy() - mu) / sd) * w).sum(1) / 4
    raw_te = (((test.loc[rows_te, g].to_numpy() - mu) / sd) * w).sum(1) / 4
    assert out[rows_te] == pytest.approx((raw_te - raw_tr.mean()) / raw_tr.std(), abs=1e-5)
    assert tf_.coverage_ == {"A": 1.0, "B": 1.0}


def test_ssgsea_and_gsva_equal_gseapy_called_directly():
    import gseapy

    table = _table()
    got_ss = sl.signature_scores(table, "MINI_ssGSEA", MINI)
    got_gv = sl.signature_scores(table, "MINI_GSVA", MINI)
    genes = sl.SignatureTransform("MINI_GSVA", MINI)._all_genes(table)
    for c in ("A", "B"):
        rows = (table["cohort"] == c).to_numpy()
        # population SD as CohortStatistics: a per-gene constant factor from R's scale
        block = table.loc[rows, genes].to_numpy()
        mat = pd.DataFrame(((block - block.mean(0)) / block.std(0)).T, index=genes,
                           columns=[f"s{i}" for i in range(rows.sum())])
        ss = gseapy.ssgsea(mat, {"x": ["GB1", "GB2", "GB3", "GB4", "GB5"]}, min_size=1,
                           sample_norm_method="rank", correl_norm_type="rank", weight=0.25,
                           outdir=None, threads=1).res2d.set_index("Name")["ES"]
        ref = -ss.reindex(mat.columns).to_numpy(float)  # resistance: negated
        assert got_ss[rows] == pytest.approx(_z(ref), abs=1e-5)
        gv = gseapy.gsva(mat, {"x": ["GC1", "GC2", "GC3", "GC4", "GC5", "GC6"]}, min_size=1,
                         kcdf="Gaussian", mx_diff=True, outdir=None, threads=1)
        ref = gv.res2d.set_index("Name")["ES"].reindex(mat.columns).to_numpy(float)
        assert got_gv[rows] == pytest.approx(_z(ref), abs=1e-5)
    # the planted signal: the GSVA score ranks responders higher in both cohorts
    from sklearn.metrics import roc_auc_score

    for c in ("A", "B"):
        rows = (table["cohort"] == c).to_numpy()
        assert roc_auc_score(table.loc[rows, "response"], got_gv[rows]) > 0.8


def test_cox_is_predictio_and_ips_by_hand():
    import gseapy

    table = _table()
    got = sl.signature_scores(table, "MINI_COX", MINI)
    for c in ("A", "B"):
        rows = (table["cohort"] == c).to_numpy()
        t = table[rows]
        ratio = t[["GD1", "GD2"]].mean(1) / t[["GD3", "GD4"]].mean(1)
        assert got[rows] == pytest.approx(_z(-ratio.to_numpy()), abs=1e-5)
    got = sl.signature_scores(table, "MINI_PredictIO", MINI)
    genes = sl.SignatureTransform("MINI_GSVA", MINI)._all_genes(table)
    rows = (table["cohort"] == "A").to_numpy()
    block = table.loc[rows, genes].to_numpy()
    mat = pd.DataFrame(((block - block.mean(0)) / block.std(0)).T, index=genes)
    es = gseapy.gsva(mat, {"s": ["GC1", "GC2", "GC3"], "r": ["GB1", "GB2"]}, min_size=1,
                     outdir=None, threads=1).res2d.pivot(index="Name", columns="Term", values="ES")
    ref = (es["s"] - es["r"]).reindex(mat.columns).to_numpy(float)
    assert got[rows] == pytest.approx(_z(ref), abs=1e-5)
    # IPS (IPSfun): per group mean z times mean weight, class means summed
    z = np.array([[1.0, 3.0, -1.0, 2.0, 0.5, 4.0]])
    groups = ["g1", "g1", "g2", "g3", "g4", "g5"]
    classes = ["MHC", "MHC", "MHC", "CP", "EC", "SC"]
    w = [1, 1, 1, -1, 1, 1]
    mhc = np.mean([2.0 * 1, -1.0 * 1])
    assert sl.ips_score(z, w, groups, classes) == pytest.approx([mhc - 2.0 + 0.5 + 4.0])


def test_coverage_is_reported_and_refused_below_the_floor():
    table = _table()
    partial = table.copy()
    partial.loc[partial["cohort"] == "B", ["GC5", "GC6"]] = np.nan  # 4 of 6 in B
    tf_ = sl.SignatureTransform("MINI_GSVA", MINI).fit(partial)
    assert tf_.coverage_ == {"A": 1.0, "B": pytest.approx(4 / 6)}
    assert tf_.missing_genes_ == {"B": ["GC5", "GC6"]}
    assert np.isfinite(tf_.transform(partial)).all()
    partial.loc[partial["cohort"] == "B", ["GC3", "GC4"]] = np.nan  # 2 of 6: below one half
    with pytest.raises(InputDataError, match=r"MINI_GSVA: cohort B has 2 of its 6 genes \(33%, "
                                             r"the floor is 50%\)"):
        sl.SignatureTransform("MINI_GSVA", MINI).fit(partial)
    none = table.drop(columns=["GA1", "GA2", "GA3", "GA4"])
    with pytest.raises(InputDataError, match="cohort A has 0 of its 4 genes"):
        sl.SignatureTransform("MINI_Mean", MINI).fit(none)
    with pytest.raises(InputDataError, match="IPS standardises each sample"):
        tf_ = sl.SignatureTransform("MINI_Mean", MINI)
        tf_.signature_ = sl.get_signature("MINI_Mean", MINI).__class__(
            **{**sl.get_signature("MINI_Mean", MINI).__dict__, "scorer": "ips",
               "groups": ("a",) * 4, "classes": ("MHC",) * 4})
        tf_._ips(table)


def test_signature_classifier_in_a_leave_one_cohort_out_protocol():
    from sklearn.base import clone

    from amu_tf.evaluation.protocols import run_protocol

    table = _table(cohorts=("A", "B", "C"))
    est = make_signature_estimator("sig:MINI_GSVA", signatures_dir=str(MINI))
    assert isinstance(est, SignatureClassifier) and "6 genes" in est.description
    assert clone(est).get_params()["signature"] == "sig:MINI_GSVA"
    r = run_protocol(table, "loco", {"sig:MINI_GSVA": est}, n_boot=0)
    auc = r.metrics.set_index("model").loc["sig:MINI_GSVA", "roc_auc"]
    assert auc > 0.8


@pytest.mark.slow
def test_the_59_shared_signatures_load_and_score_a_real_cohort(shared_data, tmp_path):
    from components.ingest import run_ingest

    from amu_tf.data.cohort_table import read_table

    folder = shared_data / "signatures"
    t = sl.list_signatures(folder).set_index("model")
    assert len(t) == 59 and (t["scored_by"] != "").sum() == 56
    assert set(t.index[t["scored_by"] == ""]) == {"sig:IPRES_Hugo", "sig:IPSOV_Shen",
                                                  "sig:PassON_Du"}
    assert t.loc["sig:CYT_Rooney", "n_genes"] == 2 and t.loc["sig:IFN_Ayers", "pmid"] == "28650338"
    assert t.loc["sig:PredictIO_Bareche", "scored_by"] == "predictio"
    assert len(sl.expand_model_names(["sig:*"], folder)) == 56
    spec = Path(__file__).parents[1] / "examples" / "cohorts" / "GSE78220.toml"
    run_ingest([str(spec)], tmp_path / "cohort", data_root=shared_data)
    table = read_table(tmp_path / "cohort")
    table = table[table["response"].notna()].reset_index(drop=True)
    refused = {}
    for model in sl.expand_model_names(["sig:*"], folder):
        tf_ = sl.SignatureTransform(model, str(folder))
        try:
            s = tf_.fit_transform(table)[:, 0]
        except InputDataError as exc:
            assert "\n" not in str(exc)
            refused[model] = str(exc)
            continue
        assert np.isfinite(s).all(), model
        assert abs(s.mean()) < 1e-4 and s.std() == pytest.approx(1, abs=1e-3)
        assert min(tf_.coverage_.values()) >= sl.MIN_GENE_FRACTION
    assert len(refused) <= 3, refused


@pytest.mark.parametrize("model", ["sig:MINI_Mean", "sig:MINI_GSVA"])
def test_a_signature_trains_as_a_final_model_and_predicts(tmp_path, monkeypatch, model):
    """`amu run` on real cohorts trains every signature as a final model: the Model artifact
    records its name and coverage, loads and predicts (a real run once crashed here)."""
    import json

    from amu_tf.training.model_bundle import ModelBundle
    from components.train import run_train

    monkeypatch.setenv("AMU_TF_SIGNATURES", str(MINI))
    table = _table(cohorts=("A", "B"))
    art = run_train(table, tmp_path / "m", model=model)
    summary = json.loads((art.path / "training_summary.json").read_text())
    assert summary["biomarker"] == model and summary["kind"] == "biomarker"
    assert summary["missing_genes"] == {"A": [], "B": []} or not any(
        summary["missing_genes"].values())
    bundle = ModelBundle.load(art.uri)
    p = bundle.predict_proba(table)[:, 1]
    assert np.isfinite(p).all() and p.std() > 0


def test_gsva_scores_a_small_group_of_a_fitted_cohort_with_its_fit_rows(tmp_path):
    """A cross-validation test fold can hold 3 samples of a small cohort (a real `amu run`
    once stopped there): GSVA then scores them together with the cohort's fit rows, exactly
    as if those rows had been given with them; a new cohort of 3 samples is refused in one
    line, and a saved transform (which does not carry the context) refuses them too."""
    import joblib

    table = _table(n=24, cohorts=("A", "B"))
    fit_rows = table.index[(table["cohort"] == "A") & (table.index % 8 != 0)]
    new = table.index[(table["cohort"] == "A") & (table.index % 8 == 0)]
    assert len(new) == 3
    train = table.loc[fit_rows.union(table.index[table["cohort"] == "B"])]
    tf_ = sl.SignatureTransform("sig:MINI_GSVA", str(MINI)).fit(train)
    small = tf_.transform(table.loc[new])
    together = tf_.transform(pd.concat([table.loc[fit_rows], table.loc[new]]))[-3:]
    np.testing.assert_allclose(small, together, atol=1e-4)
    assert np.isfinite(small).all()
    other = table.loc[new].assign(cohort="NEW")
    with pytest.raises(InputDataError, match="needs at least 5") as exc:
        tf_.transform(other)
    assert "\n" not in str(exc.value)
    tf_.save(tmp_path / "t")
    loaded = joblib.load(next((tmp_path / "t").glob("*.joblib")))
    assert not getattr(loaded, "_gsva_context", {})
    with pytest.raises(InputDataError, match="needs at least 5 of them"):
        loaded.transform(table.loc[new])
