"""``recipe:compass-probe`` (issue #23): the feature transform and the probe, on a tiny
random-weight encoder over synthetic genes (the real preset is exercised by
``benchmarks/bench_compass_generalisation.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amu_tf.errors import InputDataError
from amu_tf.training import estimator_kind, make_estimator
from amu_tf.training import compass_feature_transform as cft
from amu_tf.training.compass_probe_classifier import CompassProbeClassifier

N_GENES = 40
GENES = [f"GENE{i}" for i in range(N_GENES)]
TINY = {"n_genes": N_GENES, "embed_dim": 8, "num_cancer_types": 33, "num_heads": 2,
        "head_dim": 4, "num_features": 6, "intermediate_dim": 16}
TABLES = {
    "n_genes": N_GENES,
    "geneset_names": [f"set{i}" for i in range(8)],
    "geneset_members": [list(range(5 * i, 5 * i + 5)) for i in range(8)],
    "concept_names": ["A", "B", "C", "Reference"],
    "concept_members": [[0, 1], [2, 3], [4, 5], [6, 7]],
}


def _table(n_per=(20, 24, 18), seed=0, genes=GENES):
    rng = np.random.default_rng(seed)
    parts = []
    for c, n in enumerate(n_per):
        y = np.arange(n) % 2
        rng.shuffle(y)
        expr = rng.gamma(2.0, 2.0, size=(n, len(genes))) + c  # a cohort offset
        expr[:, :10] += 2.5 * y[:, None]                      # signal in the first sets
        df = pd.DataFrame(np.log2(expr + 1.0), columns=genes)
        df.insert(0, "response", y.astype(float))
        df.insert(0, "cohort", f"C{c}")
        df.insert(0, "patient", [f"C{c}:p{i}" for i in range(n)])
        df.insert(0, "sample", [f"C{c}:s{i}" for i in range(n)])
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def _probe(**kw):
    kw = {"encoder_config": TINY, "genes": GENES, "tables": TABLES, "disk_cache": False,
          "level": "concept", "readout": "pc1", "Cs": (0.01, 0.1, 1.0), "batch_size": 8, **kw}
    return CompassProbeClassifier(**kw)


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AMU_TF_CACHE_DIR", str(tmp_path / "cache"))
    cft.clear_memory_cache()
    yield
    cft.clear_memory_cache()


def _fit(est, table):
    tf = est.make_input_transform().fit(table)
    X = tf.transform(table)
    est.fit(X, table["response"].to_numpy(int), groups=table["patient"].to_numpy(),
            cohorts=table["cohort"].to_numpy())
    return tf, X


def test_make_estimator_and_kind():
    est = make_estimator("recipe:compass-probe", seed=3, readout="mean")
    assert isinstance(est, CompassProbeClassifier) and est.seed == 3 and est.readout == "mean"
    assert estimator_kind("recipe:compass-probe") == "recipe" == estimator_kind(est)


def test_fit_predict_contract():
    table = _table()
    est = _probe()
    tf, X = _fit(est, table)
    assert X.dtype == np.float32 and X.shape == (len(table), len(TABLES["concept_names"]))
    # z-scored within each cohort
    for c in table["cohort"].unique():
        rows = (table["cohort"] == c).to_numpy()
        np.testing.assert_allclose(X[rows].mean(0), 0.0, atol=1e-5)
    p = est.predict_proba(X)
    assert p.shape == (len(table), 2) and np.all((p >= 0) & (p <= 1))
    assert set(est.predict(X)) <= {0, 1}
    assert est.selection_used_ == "loco" and est.C_ in est.Cs
    assert est.threshold_method_ == "youden_oof" and 0 <= est.threshold_ <= 1
    assert est.threshold_margin_ is not None
    assert est.score_weights().shape == (X.shape[1],)
    # one training cohort: stratified folds instead
    one = table[table["cohort"] == "C1"].reset_index(drop=True)
    est1 = _probe()
    _fit(est1, one)
    assert est1.selection_used_ == "stratified"


def test_auto_chooses_the_variant_by_inner_loco():
    table = _table()
    est = _probe(level="auto", readout="auto")
    tf, X = _fit(est, table)
    n_c, n_s = len(TABLES["concept_names"]), len(TABLES["geneset_names"])
    assert X.shape[1] == 2 * n_c + 2 * n_s
    assert len(tf.get_feature_names_out()) == X.shape[1]
    assert est.features_ in {"concept-pc1", "concept-mean", "geneset-pc1", "geneset-mean"}
    assert len(est.cv_scores_) == 4 * len(est.Cs)
    assert est.cv_scores_[(est.features_, est.C_)] == max(est.cv_scores_.values())
    w = est.score_weights()
    assert np.count_nonzero(w) <= est.columns_[1] - est.columns_[0]
    assert est.predict_proba(X).shape == (len(table), 2)


def test_direction_output_ranks_as_the_regression():
    table = _table()
    prob, direc = _probe(output="probability"), _probe(output="direction")
    _, X = _fit(prob, table)
    _fit(direc, table)
    assert direc.C_ == prob.C_ and direc.features_ == prob.features_
    a, b = prob.predict_proba(X)[:, 1], direc.predict_proba(X)[:, 1]
    from scipy.stats import spearmanr

    assert spearmanr(a, b).statistic > 0.999
    assert abs(np.abs(direc.score_weights()).sum() - 1.0) < 1e-12
    assert direc.threshold_method_ == "youden_oof" and 0 <= direc.threshold_ <= 1


def test_a_new_cohort_is_scored_on_its_own_rows():
    table = _table()
    train = table[table["cohort"] != "C2"].reset_index(drop=True)
    test = table[table["cohort"] == "C2"].reset_index(drop=True)
    est = _probe()
    tf, _ = _fit(est, train)
    Xt = tf.transform(test)
    np.testing.assert_allclose(Xt.mean(0), 0.0, atol=1e-5)
    with pytest.raises(InputDataError, match="at least 5"):
        tf.transform(test.iloc[:3])


def test_c_search_uses_only_the_training_cohorts(monkeypatch):
    table = _table(n_per=(20, 24, 18, 16))
    train = table[table["cohort"] != "C3"].reset_index(drop=True)
    tf = _probe().make_input_transform().fit(train)
    X = tf.transform(train)
    row_cohort = {X[i].tobytes(): c for i, c in enumerate(train["cohort"])}
    seen = []
    real = CompassProbeClassifier._logreg

    def spy(C):
        model = real(C)
        fit = model.fit

        def recording_fit(Xf, yf):
            seen.append(sorted({row_cohort[np.asarray(r, np.float32).tobytes()] for r in Xf}))
            return fit(Xf, yf)

        model.fit = recording_fit
        return model

    monkeypatch.setattr(CompassProbeClassifier, "_logreg", staticmethod(spy))
    est = _probe()
    est.fit(X, train["response"].to_numpy(int), cohorts=train["cohort"].to_numpy())
    inner, final = seen[:-1], seen[-1]
    assert len(inner) == len(est.Cs) * 3
    assert all(len(s) == 2 for s in inner)                   # one training cohort held out
    assert {tuple(s) for s in inner} == {("C0", "C1"), ("C0", "C2"), ("C1", "C2")}
    assert final == ["C0", "C1", "C2"]                       # never C3


def test_predictions_do_not_depend_on_row_order():
    table = _table()
    perm = np.random.default_rng(1).permutation(len(table))
    est_a = _probe()
    tf_a, X_a = _fit(est_a, table)
    p_a = est_a.predict_proba(X_a)[:, 1]
    cft.clear_memory_cache()  # recompute the encoder in another row order
    shuffled = table.iloc[perm].reset_index(drop=True)
    est_b = _probe()
    tf_b, X_b = _fit(est_b, shuffled)
    np.testing.assert_allclose(X_b, X_a[perm], rtol=0, atol=1e-6)
    np.testing.assert_allclose(est_b.predict_proba(X_b)[:, 1], p_a[perm], rtol=0, atol=1e-6)
    assert est_a.C_ == est_b.C_
    assert abs(est_a.threshold_ - est_b.threshold_) < 1e-6


def test_cache_gives_the_same_features(monkeypatch, tmp_path):
    table = _table()
    no_cache = _probe().make_input_transform().fit(table).transform(table)
    cft.clear_memory_cache()
    disk = _probe(disk_cache=True).make_input_transform()
    first = disk.fit(table).transform(table)
    files = list((tmp_path / "cache" / "compass" / "features").rglob("*.npy"))
    assert len(files) == len(table)
    np.testing.assert_array_equal(first, no_cache)
    # from disk only: the encoder must not run
    cft.clear_memory_cache()

    def no_encoder(self):
        raise AssertionError("the encoder ran although every row was cached")

    monkeypatch.setattr(cft.CompassFeatureTransform, "_encoder", no_encoder)
    again = _probe(disk_cache=True).make_input_transform().fit(table).transform(table)
    np.testing.assert_array_equal(again, no_cache)
    # in memory only, too
    memory = _probe().make_input_transform().fit(table).transform(table)
    np.testing.assert_array_equal(memory, no_cache)


def test_cancer_type_token_per_cohort(monkeypatch):
    from amu_tf.utils.transformers import convert_compass

    monkeypatch.setattr(convert_compass, "load_compass_assets",
                        lambda: {"cancer_codes": {"SKCM": 25, "BLCA": 1, "NORMAL": -1}})
    table = _table()
    # the mean readout: nothing fitted across cohorts, so the others stay exactly as they were
    plain = _probe(readout="mean").make_input_transform().fit(table)
    mixed = _probe(readout="mean", cohort_cancer_types={"C1": "BLCA"}).make_input_transform()
    mixed.fit(table)
    a, b = plain.transform(table), mixed.transform(table)
    c1 = (table["cohort"] == "C1").to_numpy()
    np.testing.assert_array_equal(a[~c1], b[~c1])      # the other cohorts keep SKCM
    assert not np.allclose(a[c1], b[c1])                # another token, other encodings
    assert len(mixed.genes_) == N_GENES
    with pytest.raises(InputDataError, match="unknown cancer type"):
        _probe(cohort_cancer_types={"C1": "XYZ"}).make_input_transform().fit(table)


def test_too_many_missing_genes_is_one_line():
    table = _table()
    table = table.drop(columns=GENES[:12])   # 30% of the genes
    with pytest.raises(InputDataError) as exc:
        _probe().make_input_transform().fit(table)
    assert "lacks 12" in str(exc.value) and "\n" not in str(exc.value)


def test_loco_protocol_end_to_end():
    from amu_tf.evaluation.protocols import run_protocol

    table = _table()
    res = run_protocol(table, "loco", {"probe": _probe()}, transform=None, n_boot=0,
                       progress=False)
    assert len(res.predictions) == len(table)
    assert set(res.per_cohort["cohort"]) == {"C0", "C1", "C2"}


def test_sklearn_contract():
    from collections import Counter

    from sklearn.utils.estimator_checks import check_estimator

    est = CompassProbeClassifier(level="concept", readout="pc1", Cs=(1.0,), inner_splits=2)
    why = ("predict() applies the threshold_ chosen by Youden's J on out-of-fold predictions, "
           "not 0.5, so it can disagree with argmax(predict_proba) by design")
    results = check_estimator(est, expected_failed_checks={"check_classifiers_train": why},
                              on_skip=None, on_fail=None)
    counts = Counter(r["status"] for r in results)
    failed = sorted(r["check_name"] for r in results if r["status"] == "failed")
    assert counts["failed"] == 0, failed
    assert counts["passed"] >= 50, counts


@pytest.mark.skipif(__import__("keras").backend.backend() != "tensorflow",
                    reason="a SavedModel is written under the TensorFlow backend")
@pytest.mark.parametrize("output,level,readout", [("probability", "concept", "pc1"),
                                                  ("direction", "concept", "pc1"),
                                                  ("direction", "gene", "mean")])
def test_export_as_a_savedmodel_and_predict_from_it(tmp_path, output, level, readout):
    """`amu export` writes the probe as a TF Serving SavedModel (its concept features made
    in Python from assets/transform/, the regression in the graph); the served probabilities
    equal the Model artifact's, and a new cohort is scored on its own rows. The gene level
    too: one input per gene."""
    from amu_tf.serving import ExportedModel, read_metadata
    from amu_tf.training.model_bundle import ModelBundle
    from components.export import run_export
    from components.train import run_train

    table = _table()
    params = {"encoder_config": TINY, "genes": GENES, "tables": TABLES, "disk_cache": False,
              "level": level, "readout": readout, "Cs": (0.01, 0.1, 1.0), "batch_size": 8,
              "output": output}
    art = run_train(table, tmp_path / "probe", model="recipe:compass-probe", **params)
    pushed = run_export(art.uri, base_dir=tmp_path / "sm", name="probe")
    meta = read_metadata(pushed.properties["path"])
    n_inputs = N_GENES if level == "gene" else len(TABLES["concept_names"])
    assert meta["n_inputs"] == n_inputs and meta["n_genes"] == N_GENES
    assert meta["transform"]["python_side"] and not meta["transform"]["in_graph"]
    new = _table(n_per=(16,), seed=5).assign(cohort="NEW")
    new["sample"] = "NEW:" + new["sample"]
    bundle = ModelBundle.load(art.uri)
    served = ExportedModel.load(tmp_path / "sm" / "probe")
    for df in (table, new):
        want = bundle.predict_proba(df)[:, 1]
        got = served.predict_table(df.drop(columns=["response", "patient"]))
        np.testing.assert_allclose(got["probability"], want, atol=1e-5)
        assert got["probability"].std() > 0


def test_compiled_extraction_matches_the_eager_encoder():
    """encode_genesets's compiled path (XLA under TensorFlow, jax.jit under JAX) gives the
    eager encoder's gene-set vectors: a last batch padded with zero rows changes nothing,
    and weights assigned after the first call are used."""
    from amu_tf.data.compass_concepts import encode_genesets
    from amu_tf.models.compass_encoder import CompassEncoder

    model = CompassEncoder(**TINY)
    rng = np.random.default_rng(3)
    x = rng.random((11, N_GENES), dtype=np.float32)
    inputs = {"expression": x, "cancer_type": np.full(11, 25, np.int32)}
    for step in range(2):
        for var in model.weights:
            var.assign((rng.standard_normal(tuple(var.shape)) * 0.3).astype(np.float32))
        eager = encode_genesets(model, inputs, batch_size=4, tables=TABLES, compiled=False)
        compiled = encode_genesets(model, inputs, batch_size=4, tables=TABLES)
        assert compiled.shape == eager.shape == (11, 8, TINY["embed_dim"])
        np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-5)
        # one sample alone (padded to the batch) gives its rows of the whole cohort
        single = encode_genesets(model, {k: v[5:6] for k, v in inputs.items()},
                                 batch_size=4, tables=TABLES)
        np.testing.assert_allclose(single[0], compiled[5], rtol=1e-5, atol=1e-5)
    from amu_tf.data.compass_concepts import _EXTRACTORS

    assert len(_EXTRACTORS.get(model, {})) == 1  # the compiled path ran, compiled once
    # the reference's batch-wide key stabiliser: not padded, so the same batches as eager
    batch_model = CompassEncoder(**TINY, key_stabilizer="batch")
    for var in batch_model.weights:
        var.assign((rng.standard_normal(tuple(var.shape)) * 0.3).astype(np.float32))
    np.testing.assert_allclose(
        encode_genesets(batch_model, inputs, batch_size=4, tables=TABLES),
        encode_genesets(batch_model, inputs, batch_size=4, tables=TABLES, compiled=False),
        rtol=1e-5, atol=1e-5)


def test_compiled_gene_level_extraction_matches_the_eager_encoder():
    """encode_genes's compiled path gives the eager encoder's gene tokens' channel means,
    a padded last batch included; it is compiled apart from the gene-set extractor."""
    from amu_tf.data.compass_concepts import _EXTRACTORS, encode_genes, encode_genesets
    from amu_tf.models.compass_encoder import CompassEncoder

    model = CompassEncoder(**TINY)
    rng = np.random.default_rng(4)
    for var in model.weights:
        var.assign((rng.standard_normal(tuple(var.shape)) * 0.3).astype(np.float32))
    x = rng.random((7, N_GENES), dtype=np.float32)
    inputs = {"expression": x, "cancer_type": np.full(7, 25, np.int32)}
    full = np.asarray(model(inputs, training=False))
    eager = encode_genes(model, inputs, batch_size=4, tables=TABLES, compiled=False)
    compiled = encode_genes(model, inputs, batch_size=4, tables=TABLES)
    assert compiled.shape == eager.shape == (7, N_GENES)
    np.testing.assert_allclose(eager, full[:, 2:, :].mean(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-5)
    encode_genesets(model, inputs, batch_size=4, tables=TABLES)
    assert len(_EXTRACTORS[model]) == 2  # one compiled function per read-out


def test_gene_level_probe_reads_one_feature_per_gene(monkeypatch, tmp_path):
    """level="gene": one z-scored feature per gene, named by gene; the weights can be read
    gene by gene; its encoder outputs are cached under their own keys (the gene-set ones
    keep theirs), and read back from disk without the encoder."""
    table = _table()
    est = _probe(level="gene", readout="auto", output="probability", disk_cache=True)
    tf, X = _fit(est, table)
    assert X.shape == (len(table), N_GENES) and est.features_ == "gene-mean"
    names = list(tf.get_feature_names_out())
    assert names == [f"gene-mean:{g}" for g in GENES]
    assert tf.artifact_record()["blocks_"] == [["gene-mean", 0, N_GENES]]
    for c in table["cohort"].unique():
        rows = (table["cohort"] == c).to_numpy()
        np.testing.assert_allclose(X[rows].mean(0), 0.0, atol=1e-5)
    assert est.score_weights().shape == (N_GENES,)
    assert est.predict_proba(X).shape == (len(table), 2)
    X0 = tf.input_.transform(table)
    code = tf.input_.cancer_code_
    gene_keys, set_keys = tf._row_keys(X0, code, "gene"), tf._row_keys(X0, code)
    # the gene-set vectors keep the keys they had before the gene level (caches stay valid)
    import hashlib

    prefix = f"{cft.CACHE_VERSION}|{tf._encoder_id()}|{int(code)}|".encode()
    assert set_keys == [hashlib.sha256(prefix + np.ascontiguousarray(r).tobytes()).hexdigest()
                        for r in X0]
    assert not set(gene_keys) & set(set_keys)
    cache = tmp_path / "cache" / "compass" / "features"
    assert {p.stem for p in cache.rglob("*.npy")} == set(gene_keys)
    assert np.load(next(cache.rglob("*.npy"))).shape == (N_GENES,)
    cft.clear_memory_cache()

    def no_encoder(self):
        raise AssertionError("the encoder ran although every row was cached")

    monkeypatch.setattr(cft.CompassFeatureTransform, "_encoder", no_encoder)
    again = _probe(level="gene", readout="mean", disk_cache=True).make_input_transform()
    np.testing.assert_array_equal(again.fit(table).transform(table), X)


def test_gene_level_bad_readout_is_refused_before_any_work(monkeypatch):
    def no_encoder(self):
        raise AssertionError("the encoder ran for a refused option")

    monkeypatch.setattr(cft.CompassFeatureTransform, "_encoder", no_encoder)
    with pytest.raises(InputDataError, match="level 'gene' has only the readout"):
        _probe(level="gene", readout="pc1").fit(np.zeros((10, N_GENES)), np.arange(10) % 2)
    with pytest.raises(InputDataError, match="level 'gene' has only the readout"):
        _probe(level="gene", readout="vector").make_input_transform().fit(_table())


def test_row_space_fit_is_the_full_fit():
    """fit_in_row_space (more columns than rows) reaches the full regression's optimum:
    the same weights, intercept and probabilities, solved in the rows' dimensions; with
    fewer columns than rows it is the plain fit."""
    from sklearn.linear_model import LogisticRegression

    from amu_tf.training.compass_probe_classifier import fit_in_row_space

    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, 400)) * np.logspace(0, -2, 30)[:, None]  # spread spectrum
    X[:, 200:] = X[:, :200] + 0.01 * rng.standard_normal((30, 200))  # collinear columns
    y = (X[:, :5].sum(1) + rng.standard_normal(30) > 0).astype(int)
    Xt = rng.standard_normal((10, 400))
    for C in (0.01, 1.0):
        def tight():
            return LogisticRegression(C=C, max_iter=100000, tol=1e-12)

        full = tight().fit(X, y)
        row = fit_in_row_space(tight(), X, y)
        assert row.coef_.shape == (1, 400) and row.n_features_in_ == 400
        np.testing.assert_allclose(row.coef_, full.coef_, atol=1e-5 * np.abs(full.coef_).max())
        np.testing.assert_allclose(row.intercept_, full.intercept_, atol=1e-5)
        np.testing.assert_allclose(row.predict_proba(Xt), full.predict_proba(Xt), atol=1e-6)
    tall = rng.standard_normal((50, 4))
    yt = (tall[:, 0] > 0).astype(int)
    np.testing.assert_array_equal(
        fit_in_row_space(LogisticRegression(), tall, yt).coef_,
        LogisticRegression().fit(tall, yt).coef_)
    # a DataFrame keeps its column names; all-zero rows fall back to the intercept-only fit
    df = pd.DataFrame(X, columns=[f"g{i}" for i in range(400)])
    named = fit_in_row_space(LogisticRegression(C=0.01), df, y)
    assert list(named.feature_names_in_) == list(df.columns)
    logit = X @ named.coef_[0] + named.intercept_[0]
    np.testing.assert_allclose(named.predict_proba(df)[:, 1], 1 / (1 + np.exp(-logit)))
    zero = fit_in_row_space(LogisticRegression(), np.zeros((30, 400)), y)
    assert not zero.coef_.any() and zero.coef_.shape == (1, 400)
    # another penalty's optimum need not lie in the row space: refused
    with pytest.raises(ValueError, match="needs an L2 penalty"):
        fit_in_row_space(LogisticRegression(l1_ratio=1.0, solver="saga"), X, y)
