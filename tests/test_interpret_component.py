"""The interpret component on in-memory stand-ins of trained models (fast, small data)."""

import json

import numpy as np
import pandas as pd
import pytest

from components.interpret import interpret_models, select_rows

pytestmark = pytest.mark.slow  # trains three small models (~30-60 s)

TRAIN = ["SYN_COUNTS", "SYN_TPM_B"]


class CohortZ:
    """Stand-in transform: per-cohort z-scores, missing genes 0."""

    def __init__(self, genes):
        self.genes = genes

    def transform(self, table):
        X = table[self.genes].to_numpy(float)
        Z = np.zeros_like(X)
        for c in table["cohort"].unique():
            m = (table["cohort"] == c).to_numpy()
            with np.errstate(all="ignore"):
                Z[m] = (X[m] - np.nanmean(X[m], 0)) / np.nanstd(X[m], 0)
        return np.nan_to_num(Z).astype("float32")


@pytest.fixture(scope="module")
def setup():
    import keras
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from xgboost import XGBClassifier

    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.models import build_model
    from amu_tf.panel import panel_symbols

    table, truth = make_synthetic_table(seed=0, signal=True, n_per_cohort=[60, 40, 60])
    genes = panel_symbols()
    tf = CohortZ(genes)
    X = tf.transform(table)
    tr = (table["cohort"].isin(TRAIN) & table["response"].notna()).to_numpy()
    y = table["response"].to_numpy()
    info = {"training_cohorts": TRAIN, "threshold": 0.5}
    xgb = XGBClassifier(n_estimators=60, max_depth=2, n_jobs=1).fit(X[tr], y[tr].astype(int))
    svm = Pipeline([("s", StandardScaler()), ("c", SVC(kernel="linear", C=0.1, probability=True,
                                                       random_state=0))]).fit(X[tr], y[tr].astype(int))
    keras.utils.set_random_seed(0)
    amu = build_model("amu:tiny")
    amu.compile(keras.optimizers.Adam(1e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    amu.fit(X[tr], y[tr].astype(int), epochs=5, batch_size=32, verbose=0)
    models = {"svm": (svm, tf, info), "xgboost": (xgb, tf, info), "amu:tiny": (amu, tf, info)}
    return table, truth, models, genes


def _string(path, modules):
    rows = [f"{a} {b} 900" for m in modules.values() for i, a in enumerate(m) for b in m[i + 1:]]
    path.write_text("protein1 protein2 combined_score\n" + "\n".join(rows) + "\n")
    return path


def test_full_interpretation(setup, tmp_path):
    table, truth, models, genes = setup
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("".join(f"{n}\tx\t" + "\t".join(g) + "\n" for n, g in truth["modules"].items()))
    out = tmp_path / "out"
    s = interpret_models(models, table, out, string=_string(tmp_path / "net.txt", truth["modules"]),
                         gmt=gmt, top_k=20, n_explain=30, n_background=10, n_perm=100,
                         quiet=True)
    # same held-out rows for every model, background from training cohorts
    assert "SYN_TPM_A" in s["rows"]["note"] and s["rows"]["explained"] == 30
    assert s["models"]["xgboost"]["explainer"] == "TreeExplainer"
    assert s["models"]["svm"]["explainer"].startswith("PermutationExplainer")
    assert s["models"]["amu:tiny"]["explainer"].startswith("GradientExplainer")
    resp = set(truth["response_module"])
    for name in ("svm", "xgboost"):
        assert len(resp & set(s["models"][name]["top_genes"])) >= 6, name
    imp = pd.read_csv(out / "shap" / "svm_importance.csv")
    assert list(imp.columns) == ["rank", "gene", "mean_abs_shap", "mean_shap"]
    assert sorted(imp["gene"]) == sorted(genes)
    assert imp["mean_abs_shap"].is_monotonic_decreasing
    top = pd.read_csv(out / "shap" / "top_k.csv")
    assert list(top.columns) == ["rank", "svm", "xgboost", "amu:tiny"] and len(top) == 20
    # embedding files for the Keras model only
    d = out / "embedding" / "amu_tiny"
    E = pd.read_csv(d / "embedding.csv", index_col=0)
    assert E.shape == (160, 8) and list(E.index) == genes
    cos = pd.read_csv(d / "cosine.csv", index_col=0)
    np.testing.assert_allclose(np.diag(cos.to_numpy()), 1.0, atol=1e-6)
    for f in ("euclidean.png", "cosine.png", "dendrogram.png", "tsne.png", "tsne.csv"):
        assert (d / f).stat().st_size > 0, f
    assert 0.0 <= s["network"]["auroc"] <= 1.0 and s["network"]["n_network_genes"] == 70
    cox = pd.read_csv(out / "survival" / "cox.csv")
    assert {"score:svm", "score:xgboost", "score:amu:tiny"} <= set(cox["covariate"])
    assert (cox["fdr"].dropna() >= cox["p"].dropna() - 1e-12).all()
    assert set(s["survival"]["km"]) <= set(models)
    enr = pd.read_csv(out / "enrichment" / "xgboost_enrichment.csv")
    assert enr.iloc[0]["gene_set"] == "response" and enr.iloc[0]["fdr"] < 0.01
    md = (out / "interpretation.md").read_text()
    assert "## Interpretation" in md and "TreeExplainer" in md and "AUROC" in md
    for img in [l.split("](")[1].split(")")[0] for l in md.splitlines() if l.startswith("![")]:
        assert (out / img).is_file(), img
    assert s["skipped"] == {}
    assert json.loads((out / "summary.json").read_text())["models"]["svm"]["explainer"]
    # the markdown is rendered from the written files alone (a copy without the figures and
    # without interpretation.md renders the same); figures never stay in pyplot
    import shutil

    import matplotlib.pyplot as plt

    from amu_tf.interpretation.interpretation_report import interpretation_markdown

    copy = tmp_path / "files_only"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.png", "interpretation.md"))
    assert interpretation_markdown(copy) == md
    assert plt.get_fignums() == []


def test_missing_inputs_are_skipped_not_fatal(setup, tmp_path, capsys):
    table, truth, models, genes = setup
    no_surv = table.drop(columns=["os_time", "os_event"])
    (tmp_path / "empty.gmt").write_text("")
    netf = tmp_path / "net.txt"
    netf.write_text("protein1 protein2 combined_score\nFOO BAR 900\nBAR BAZ 800\n")
    sub = {"xgboost": models["xgboost"], "amu:tiny": models["amu:tiny"]}
    s = interpret_models(sub, no_surv, tmp_path / "o", string=netf, gmt=tmp_path / "empty.gmt",
                         n_explain=20, n_perm=20)
    err = capsys.readouterr().err
    assert "os_time" in s["skipped"]["survival"]
    assert "contains no gene sets" in s["skipped"]["enrichment"]
    assert "no interaction between two panel genes" in s["skipped"]["network"]
    for part in ("survival", "enrichment", "network"):
        assert f"skipping {part}" in err
    assert (tmp_path / "o" / "shap" / "xgboost_importance.csv").is_file()
    md = (tmp_path / "o" / "interpretation.md").read_text()
    assert "### Skipped" in md and "os_time" in md
    # no Keras model: the embedding part is skipped, the rest runs
    s2 = interpret_models({"xgboost": models["xgboost"]}, table, tmp_path / "o2", n_explain=20,
                          quiet=True)
    assert "embedding" in s2["skipped"] and "network" in s2["skipped"]
    assert "survival" in s2


def test_analyses_return_results_and_write_nothing(setup, tmp_path, monkeypatch):
    """Each analysis takes loaded models and returns tables and Figures; only the writer
    touches the disk."""
    from matplotlib.figure import Figure

    from amu_tf.interpretation import analyses
    from amu_tf.interpretation.explained_models import as_bundle, explained_model
    from amu_tf.interpretation.explained_rows import choose_rows

    table, truth, models, genes = setup
    monkeypatch.chdir(tmp_path)
    bundles = {n: as_bundle(models[n], n) for n in ("xgboost", "amu:tiny")}
    assert bundles["amu:tiny"].kind == "keras" and bundles["xgboost"].kind in ("sklearn", "searched")
    rows = choose_rows(table, [b.info for b in bundles.values()], n_explain=15)
    ms = {n: explained_model(n, b, table, rows, genes) for n, b in bundles.items()}
    assert ms["xgboost"].gene_embedding is None and ms["amu:tiny"].gene_embedding.shape == (160, 8)
    shap = analyses.analyse_shap(ms, rows, genes, top_k=10, n_background=5)
    assert list(shap.top.columns) == ["rank", "xgboost", "amu:tiny"]
    assert all(isinstance(f, Figure) for s in shap.models.values() for f in s.figures.values())
    e = analyses.analyse_embedding("amu:tiny", ms["amu:tiny"].gene_embedding, genes,
                                   highlight={"response": truth["response_module"]})
    assert set(e.figures) == {"euclidean", "cosine", "dendrogram", "tsne"}
    sv = analyses.analyse_survival(table, rows, ms, shap, genes)
    assert {"score:xgboost", "score:amu:tiny"} <= set(sv.cox["covariate"])
    assert list(tmp_path.iterdir()) == []


def test_select_rows_fall_back_to_training_rows_with_a_note(setup):
    table, _, models, _ = setup
    ex, bg, note = select_rows(table, [models["svm"][2]])
    assert set(table.loc[ex, "cohort"]) == {"SYN_TPM_A"} and set(table.loc[bg, "cohort"]) == set(TRAIN)
    ex, bg, note = select_rows(table, [{"training_cohorts": ["SYN_COUNTS", "SYN_TPM_A", "SYN_TPM_B"]}])
    assert ex.sum() == table["response"].notna().sum() and "trained on them" in note
