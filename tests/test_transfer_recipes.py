"""The cross-cohort recipes of issue #15: their inputs and that they run under the protocols."""

import numpy as np
import pytest

from amu_tf.data.transforms.gene_set_transform import GeneSetTransform
from amu_tf.biomarkers.signature_scores_transform import (GENE_SIGNATURES,
                                                          SignatureScoresTransform)
from amu_tf.data.synthetic import make_synthetic_table
from amu_tf.errors import InputDataError
from amu_tf.training import RECIPE_ESTIMATORS, make_estimator
from amu_tf.training.transfer_recipes import immune_genes


@pytest.fixture(scope="module")
def table():
    return make_synthetic_table(seed=3, n_per_cohort=40)[0]


def test_immune_genes_are_the_signatures_genes_once_each():
    genes = immune_genes()
    assert len(genes) == len(set(genes)) == 35
    assert {"CD8A", "CXCL9", "CD274", "STAT1", "VSIR", "TIGIT"} <= set(genes)


def test_signature_scores_are_the_biomarkers_columns(table):
    from amu_tf.biomarkers import BiomarkerTransform

    raw = SignatureScoresTransform(standardise=False).fit(table)
    X = raw.transform(table)
    assert X.shape == (len(table), len(GENE_SIGNATURES))
    np.testing.assert_array_equal(X[:, 1:2], BiomarkerTransform("cd8a").fit(table)
                                  .transform(table))
    assert X[:, GENE_SIGNATURES.index("impres")].max() > 3  # IMPRES counts pairs
    Z = SignatureScoresTransform().fit(table).transform(table)
    rows = (table["cohort"] == "SYN_COUNTS").to_numpy()
    np.testing.assert_allclose(Z[rows].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Z[rows].std(0), 1, atol=1e-4)  # each score weighs alike


def test_gene_set_z_scores_within_cohort_and_refuses_absent_genes(table):
    t = GeneSetTransform(("CD8A", "CXCL9", "NOT_A_GENE"), min_gene_fraction=0.5).fit(table)
    assert t.genes_ == ["CD8A", "CXCL9"] and t.missing_genes_ == ["NOT_A_GENE"]
    X = t.transform(table)
    rows = (table["cohort"] == "SYN_TPM_A").to_numpy()
    assert abs(X[rows].mean()) < 1e-5 and abs(X[rows, 0].std() - 1) < 1e-4
    with pytest.raises(InputDataError, match="only 2 of its 3 genes"):
        GeneSetTransform(("CD8A", "CXCL9", "NOT_A_GENE")).fit(table)


def test_recipes_run_under_loco(table):
    from amu_tf.evaluation.protocols import run_protocol

    names = ["recipe:consensus", "recipe:stack", "recipe:stack-direction",
             "recipe:immune-genes", "recipe:panel-rank"]
    assert set(names) <= set(RECIPE_ESTIMATORS)
    r = run_protocol(table, "loco", names, n_boot=0, progress=False)
    assert set(r.metrics["model"]) == set(names)
    assert r.predictions["p"].between(0, 1).all()
    # the planted module is in the panel, not in the immune genes: panel-rank finds it
    auc = r.metrics.set_index("model")["roc_auc"]
    assert auc["recipe:panel-rank"] > 0.7


def test_immune_amu_trains_an_amu_model_on_the_immune_genes(table):
    y = table["response"].to_numpy()
    lab = ~np.isnan(y)
    est = make_estimator("recipe:immune-amu", seed=0, epochs=2, patience=1)
    X = est.make_input_transform().fit(table[lab]).transform(table[lab])
    est.fit(X, y[lab].astype(int))
    assert est.estimator_.model_.inputs[0].shape[-1] == 35
    assert est.predict_proba(X).shape == (int(lab.sum()), 2)
    with pytest.raises(ValueError, match="unknown recipe"):
        make_estimator("recipe:nope")


@pytest.mark.parametrize("recipe", ["recipe:consensus", "recipe:stack", "recipe:immune-genes"])
def test_recipe_model_artifact_round_trips(table, tmp_path, recipe):
    from amu_tf.training.model_bundle import ModelBundle
    from components.train import run_train

    art = run_train(table, tmp_path / "m", model=recipe)
    bundle = ModelBundle.load(art.uri)
    assert bundle.kind == "recipe"
    p = bundle.predict_proba(table)[:, 1]
    assert np.isfinite(p).all() and p.shape == (len(table),)
    assert bundle.info["n_genes"] > 1 and bundle.info["transform"] != "cohort_z"


def test_stack_direction_keeps_only_the_direction_of_the_weights(table):
    y = table["response"].to_numpy()
    lab = ~np.isnan(y)
    est = make_estimator("recipe:stack-direction", seed=0)
    X = est.make_input_transform().fit(table[lab]).transform(table[lab])
    est.fit(X, y[lab].astype(int))
    assert abs(np.abs(est.direction_).sum() - 1) < 1e-9
    p = est.predict_proba(X)[:, 1]
    order = np.argsort(X @ est.direction_)
    assert np.all(np.diff(p[order]) >= 0)  # monotone in the direction's score, no intercept


def test_amu_run_exports_the_recommended_recipe_on_real_cohorts(table, tmp_path):
    from components.train import run_train
    from pipelines.run_config import RunConfig
    from pipelines.run_folder import RECOMMENDED, export_choices, export_run

    run_train(table, tmp_path / "train" / "recipe_consensus", model=RECOMMENDED)
    real = RunConfig(cohorts=["a.toml"], models=["logreg", RECOMMENDED],
                     export_dir=str(tmp_path / "sm"))
    assert export_choices(real) == [(RECOMMENDED, "recipe_consensus")]
    said = []
    export_run(tmp_path, real, None, say=said.append)  # no evaluation: exported, says so
    assert (tmp_path / "sm" / "recipe_consensus" / "1" / "saved_model.pb").is_file()
    assert any("recommended for a new cohort" in s for s in said)
    synthetic = RunConfig(models=["logreg", RECOMMENDED], export_dir=str(tmp_path / "sm"))
    assert export_choices(synthetic) == []  # the synthetic default exports its zoo model only
    export_run(tmp_path, synthetic, None, say=said.append)
    assert not (tmp_path / "sm" / "recipe_consensus" / "2").exists()


def test_held_out_labels_never_change_any_prediction(table):
    """Under LOCO the held-out cohort's labels must not reach anything fitted: permuting them
    leaves every prediction of the biomarkers, recipes and a baseline unchanged."""
    from amu_tf.evaluation.protocols import run_protocol

    models = ["cd8a", "impres", "recipe:consensus", "recipe:stack-direction", "logreg"]
    base = run_protocol(table, "loco", models, n_boot=0, progress=False).predictions
    shuffled = table.copy()
    rows = (shuffled["cohort"] == "SYN_TPM_B").to_numpy()
    shuffled.loc[rows, "response"] = np.random.default_rng(0).permutation(
        shuffled.loc[rows, "response"].to_numpy())
    again = run_protocol(shuffled, "loco", models, n_boot=0, progress=False).predictions
    held = base["cohort"] == "SYN_TPM_B"
    np.testing.assert_allclose(again.loc[held, "p"].to_numpy(), base.loc[held, "p"].to_numpy(),
                               rtol=0, atol=0)
