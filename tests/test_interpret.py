"""SHAP and the AMU embedding against the planted truth of the synthetic cohort."""

import numpy as np
import pytest

from amu_tf.interpretation import explain, module_cohesion, top_k_table

EPOCHS = 40
PRESET = "amu:small"  # amu:tiny (d 8) gives a weaker, seed-dependent embedding effect


def _standardize(table, genes, train):
    """Per-cohort z-scores with means/sds from the training rows only."""
    X = table[genes].to_numpy(float)
    Z = np.zeros_like(X)
    for c in table["cohort"].unique():
        m = (table["cohort"] == c).to_numpy()
        with np.errstate(all="ignore"):
            mu = np.nanmean(X[m & train], 0)
            sd = np.nanstd(X[m & train], 0)
        Z[m] = (X[m] - mu) / np.where(sd > 0, sd, 1)
    return np.nan_to_num(Z).astype("float32")


@pytest.fixture(scope="module", params=[True, False], ids=["signal", "no_signal"])
def fitted(request):
    import keras
    from xgboost import XGBClassifier

    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.models import build_model
    from amu_tf.panel import panel_symbols

    table, truth = make_synthetic_table(seed=0, signal=request.param)
    table = table[table["response"].notna()].reset_index(drop=True)
    genes = panel_symbols()
    train = np.random.default_rng(0).random(len(table)) >= 0.25
    Z = _standardize(table, genes, train)
    y = table["response"].to_numpy(int)
    xgb = XGBClassifier(n_estimators=100, max_depth=3, n_jobs=1, random_state=0)
    xgb.fit(Z[train], y[train])
    keras.utils.set_random_seed(0)
    amu = build_model(PRESET)
    amu.compile(keras.optimizers.Adam(1e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    amu.fit(Z[train], y[train], epochs=EPOCHS, batch_size=32, verbose=0)
    res = {name: explain(m, Z[~train], Z[train], genes, seed=0)
           for name, m in (("xgboost", xgb), ("amu", amu))}
    return {"signal": request.param, "truth": truth, "genes": genes, "shap": res,
            "embedding": amu.gene_embeddings}


@pytest.mark.slow
def test_planted_module_tops_shap(fitted):
    resp = set(fitted["truth"]["response_module"])
    assert fitted["shap"]["xgboost"].explainer == "TreeExplainer"
    assert fitted["shap"]["amu"].explainer.startswith("GradientExplainer")
    imps = {n: r.importance() for n, r in fitted["shap"].items()}
    top, overlap = top_k_table(imps, k=20)
    for name in imps:
        hits = len(resp & set(top[name]))
        if fitted["signal"]:
            assert hits >= 7, (name, hits)  # of 10 planted genes in the top 20 of 160
        else:
            assert hits <= 5, (name, hits)  # chance: 20/160 * 10 = 1.25
    if fitted["signal"]:
        assert overlap.loc[0, "n_shared"] >= 6


@pytest.mark.slow
def test_response_module_cohesive_in_embedding_only_with_signal(fitted):
    """Genes that drive the label get aligned (or, for the module's down-regulated half,
    anti-aligned) embedding rows; |cosine| within the response module beats random gene sets
    only when the module carries the signal."""
    truth, genes, E = fitted["truth"], fitted["genes"], fitted["embedding"]
    res = module_cohesion(E, genes, {"response": truth["response_module"]},
                          metric="abs_cosine", n_perm=500, seed=0).iloc[0]
    if fitted["signal"]:
        assert res["p"] < 0.05 and res["within"] > res["random_mean"]
    else:
        assert res["p"] > 0.05
