"""The cohort-aware recipes of issue #15: inner leave-one-cohort-out selection, group DRO,
masked-gene pre-training, and that the protocols and ``amu train`` give each estimator the
side information it asks for (cohorts, unlabeled expression) and nothing more."""

import numpy as np
import pytest

from amu_tf.data.synthetic import make_synthetic_table
from amu_tf.training import make_estimator
from amu_tf.training.fit_estimator import fit_estimator, wants_unlabeled
from amu_tf.training.group_dro_logistic_regression import GroupDROLogisticRegression


@pytest.fixture(scope="module")
def table():
    return make_synthetic_table(seed=3, n_per_cohort=40)[0]


def _xy(est, table):
    lab = table["response"].notna().to_numpy()
    rows = table[lab].reset_index(drop=True)
    X = est.make_input_transform().fit(rows).transform(rows)
    return X, rows["response"].to_numpy().astype(int), rows["cohort"].astype(str).to_numpy()


class _Recorder:
    """An estimator that records what ``fit`` was given."""

    wants_unlabeled = True

    def fit(self, X, y, groups=None, cohorts=None, unlabeled=None):
        self.seen_ = dict(n=len(X), groups=groups, cohorts=cohorts, unlabeled=unlabeled)
        self.threshold_ = 0.5
        return self

    def predict_proba(self, X):
        return np.column_stack([np.full(len(X), 0.5), np.full(len(X), 0.5)])


def test_fit_estimator_passes_only_what_fit_declares():
    class Plain:
        def fit(self, X, y):
            self.ok_ = True
            return self

    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    assert fit_estimator(Plain(), X, y, groups=[1, 2, 3, 4], cohorts=list("aabb"),
                         unlabeled=X).ok_
    rec = _Recorder()
    rec.wants_unlabeled = False  # declared in fit, but not configured to pre-train
    fit_estimator(rec, X, y, cohorts=list("aabb"), unlabeled=X)
    assert rec.seen_["unlabeled"] is None and list(rec.seen_["cohorts"]) == list("aabb")
    assert not wants_unlabeled(make_estimator("amu:tiny"))
    assert wants_unlabeled(make_estimator("recipe:amu-pretrained"))
    assert not wants_unlabeled(make_estimator("recipe:stack"))


def test_loco_gives_pretraining_the_scored_rows_expression_never_their_labels(table):
    from amu_tf.evaluation.protocols import run_protocol

    recs = []

    def make(seed):
        recs.append(_Recorder())
        return recs[-1]

    r = run_protocol(table, "loco", {"rec": make}, n_boot=0, progress=False)
    from amu_tf.data.transforms import get_transform

    labeled = table[table["response"].notna()].reset_index(drop=True)
    for rec, fold in zip(recs, r.folds):
        test = labeled[labeled["cohort"].astype(str).isin(fold["test_cohorts"])]
        train = labeled[~labeled.index.isin(test.index)]
        want = get_transform("cohort_z").fit(train).transform(test.reset_index(drop=True))
        # the scored rows' transformed expression, nothing else (no label column reaches it)
        np.testing.assert_allclose(rec.seen_["unlabeled"], want, atol=1e-5)
        assert set(rec.seen_["cohorts"]) == set(fold["train_cohorts"])
        assert rec.seen_["n"] + len(test) == len(labeled)
    assert any("transductive" in n for n in r.notes)


def test_inner_loco_selection_scores_each_candidate_on_a_held_out_cohort(table):
    est = make_estimator("recipe:stack-loco", seed=0)
    X, y, cohorts = _xy(est, table)
    est.fit(X, y, cohorts=cohorts)
    assert est.selection_used_ == "loco"
    held_out = [set(cohorts[test]) for _, test in est.linear_.inner_splits_]
    assert sorted(map(sorted, held_out)) == [[c] for c in sorted(set(cohorts))]
    assert abs(np.abs(est.direction_).sum() - 1) < 1e-9
    one = cohorts == cohorts[0]  # one training cohort: no cohort to hold out
    est1 = make_estimator("recipe:stack-loco", seed=0).fit(X[one], y[one],
                                                           cohorts=cohorts[one])
    assert est1.selection_used_ == "stratified"


def test_group_dro_lowers_the_worst_cohorts_loss():
    rng = np.random.default_rng(0)
    # a large cohort where feature 0 predicts, a small one where only feature 1 does
    n_a, n_b = 600, 60
    X = rng.normal(size=(n_a + n_b, 2))
    logit = np.r_[3 * X[:n_a, 0], 3 * X[n_a:, 1]]
    y = (rng.random(n_a + n_b) < 1 / (1 + np.exp(-logit))).astype(int)
    cohorts = np.r_[["big"] * n_a, ["small"] * n_b]

    def worst(model):
        p = np.clip(model.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
        loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        return max(loss[cohorts == c].mean() for c in ("big", "small"))

    erm = GroupDROLogisticRegression(rounds=1, step=0.0).fit(X, y)  # plain (one group)
    dro = GroupDROLogisticRegression().fit(X, y, cohorts=cohorts)
    assert worst(dro) < worst(erm) - 0.02
    # the small cohort weighs far more than its 9% of the rows
    assert dro.cohort_weights_[list(dro.cohorts_).index("small")] > 3 * n_b / (n_a + n_b)
    assert dro.coef_[0, 1] > erm.coef_[0, 1]  # the small cohort's gene gains weight


def test_stack_dro_runs_under_loco(table):
    from amu_tf.evaluation.protocols import run_protocol

    r = run_protocol(table, "loco", ["recipe:stack-dro", "recipe:stack-loco"], n_boot=0,
                     progress=False)
    assert r.predictions["p"].between(0, 1).all()
    assert not any("transductive" in n for n in r.notes)


def test_amu_cohort_val_stops_on_one_whole_training_cohort(table):
    est = make_estimator("recipe:amu-cohort-val", seed=0, epochs=2, patience=1)
    X, y, cohorts = _xy(est, table)
    est.fit(X, y, cohorts=cohorts)
    inner = est.estimator_
    val = set(cohorts[inner.inner_val_indices_])
    assert len(val) == 1 and not val & set(cohorts[inner.inner_train_indices_])



def test_masked_copies_hide_genes_and_never_target_a_missing_one():
    from amu_tf.training.masked_gene_pretraining import masked_copies, masked_mse

    X = np.arange(1, 201, dtype=np.float32).reshape(10, 20)
    X[0, 3] = np.nan
    inputs, targets = masked_copies(X, epochs=50, mask_rate=0.25, seed=1)
    values, mask = targets[:, :20], targets[:, 20:]
    assert inputs.shape == values.shape == (500, 20)
    assert 0.2 < mask.mean() < 0.3
    assert np.all(inputs[mask == 1] == 0) and np.all(inputs[mask == 0] == values[mask == 0])
    assert not mask[0::10, 3].any()  # the missing gene of sample 0 is never a target
    pred = values + mask * 2.0  # error 2 on every hidden gene, none elsewhere
    loss = np.asarray(masked_mse(targets, pred))
    np.testing.assert_allclose(loss[mask.sum(1) > 0], 4.0, rtol=1e-6)


def test_pretraining_learns_gene_correlations_in_the_classifiers_own_layers():
    import keras

    from amu_tf.models.zoo import build_model
    from amu_tf.training.masked_gene_pretraining import pretrain_masked_genes

    rng = np.random.default_rng(0)
    factors = rng.normal(size=(300, 4))
    X = (factors @ rng.normal(size=(4, 160)) + 0.1 * rng.normal(size=(300, 160)))
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)  # 4 modules of correlated genes
    keras.utils.set_random_seed(0)
    model = build_model("amu:tiny")
    before = model.gene_embeddings.copy()
    out = pretrain_masked_genes(model, X, epochs=15, mask_rate=0.15, learning_rate=3e-3)
    assert out["loss"][-1] < 0.6 * out["baseline_loss"]  # hidden genes read from the others
    assert not np.allclose(model.gene_embeddings, before)  # the classifier's layers moved


def test_zoo_classifier_pretrains_only_when_asked_and_only_amu(table):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 160)).astype(np.float32)
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    est = make_estimator("amu:tiny", epochs=1, pretrain={"epochs": 2})
    est.fit(X, y, unlabeled=X[:7])
    assert est.pretraining_["n_rows"] == 67 and len(est.pretraining_["loss"]) == 2
    assert make_estimator("amu:tiny", epochs=1).fit(X, y).pretraining_ is None
    with pytest.raises(ValueError, match="unknown pretrain option"):
        make_estimator("amu:tiny", pretrain={"epoch": 2}).fit(X, y)
    with pytest.raises(ValueError, match="needs a gene embedding"):
        make_estimator("cnn:paper", pretrain={"epochs": 2}).fit(X, y)


def test_amu_train_pretrains_on_the_tables_unlabeled_rows(table, tmp_path):
    import json

    from components.train import run_train

    n_unlabeled = int(table["response"].isna().sum())
    assert n_unlabeled > 0
    run_train(table, tmp_path / "m", model="recipe:amu-pretrained", epochs=1, patience=1)
    info = json.loads((tmp_path / "m" / "model_info.json").read_text())
    assert info["n_pretraining_unlabeled"] == n_unlabeled
    run_train(table, tmp_path / "s", model="recipe:stack")  # no pre-training: none read
    assert json.loads((tmp_path / "s" / "model_info.json").read_text())[
        "n_pretraining_unlabeled"] == 0


def test_loco_recipes_fall_back_when_a_training_cohort_has_one_class(table):
    est = make_estimator("recipe:stack-loco", seed=0)
    X, y, cohorts = _xy(est, table)
    y = y.copy()
    y[cohorts == cohorts[0]] = 1  # that cohort: responders only
    est.fit(X, y, cohorts=cohorts)
    assert est.selection_used_ == "stratified"
