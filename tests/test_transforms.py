"""Transforms: fitted on training rows only, saved and re-applied, per-sample where claimed,
in-graph parity for export, and the missing-gene policy."""

import keras
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from amu_tf.data.cohort_table import META_COLUMNS, gene_columns
from amu_tf.data.transforms import TRANSFORMS, get_transform, load_transform
from amu_tf.data.transforms.transform_layer import TransformLayer
from amu_tf.errors import InputDataError, SpecError

GENES = gene_columns()
PER_SAMPLE = [n for n, c in TRANSFORMS.items() if c.per_sample]


def make_table(n_per_cohort=(12, 10), seed=0, shift=1.5) -> pd.DataFrame:
    """A small cohort table (log2 scale) with a per-cohort batch shift."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(1, 10, size=len(GENES))
    frames = []
    for k, n in enumerate(n_per_cohort):
        x = base + k * shift + rng.normal(0, 1, size=(n, len(GENES)))
        meta = pd.DataFrame({c: [""] * n for c in META_COLUMNS})
        meta["sample"] = [f"C{k}_S{i}" for i in range(n)]
        meta["patient"] = meta["sample"]
        meta["cohort"] = f"C{k}"
        meta["response"] = rng.integers(0, 2, size=n).astype(float)
        frames.append(pd.concat([meta, pd.DataFrame(np.clip(x, 0, None), columns=GENES)],
                                axis=1))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def table():
    return make_table()


def test_get_transform_names_and_errors():
    assert set(TRANSFORMS) == {"paper", "cohort_z", "rank", "reference_z"}
    assert get_transform("paper", eps=1e-3).eps == 1e-3
    with pytest.raises(SpecError, match="unknown transform"):
        get_transform("zscore")
    with pytest.raises(SpecError, match="transform 'rank' has no parameter 'eps'"):
        get_transform("rank", eps=1.0)
    with pytest.raises(InputDataError, match="not fitted"):
        get_transform("rank").transform(make_table((3,)))


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_save_load_round_trip_identical(tmp_path, table, name):
    train, test = table.iloc[:15], table.iloc[15:].copy()
    test.iloc[0, test.columns.get_loc(GENES[3])] = np.nan  # an imputed cell too
    params = {"standardize": True} if name == "paper" else {}
    t = get_transform(name, **params).fit(train)
    before = t.transform(test)
    assert before.dtype == np.float32 and before.shape == (len(test), 160)
    assert np.isfinite(before).all()
    t.save(tmp_path / "t")
    t2 = load_transform(tmp_path / "t")
    assert type(t2) is type(t) and t2.get_params() == t.get_params()
    np.testing.assert_array_equal(t2.transform(test), before)
    assert t2.imputation_report()["per_gene"] == {GENES[3]: 1}


# Property: the fitted statistics and the output for given rows do not depend on other
# (test) rows, whatever they contain.
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(test_values=arrays(np.float64, (6, 160), elements=st.floats(0.01, 15)),
       name=st.sampled_from(list(TRANSFORMS)))
def test_fit_uses_training_rows_only(table, test_values, name):
    train = table[table["cohort"] == "C0"].reset_index(drop=True)
    ref = get_transform(name).fit(train)
    ref_state = {k: np.array(v, dtype=object) for k, v in ref._learned().items()}
    expected_train_out = ref.transform(train)

    test = train.iloc[:6].copy()
    test[GENES] = test_values
    test["sample"] = [f"T{i}" for i in range(6)]
    # fitting on the training rows again after seeing test rows changes nothing
    t = get_transform(name).fit(train)
    t.transform(test)
    for k, v in t._learned().items():
        np.testing.assert_array_equal(np.array(v, dtype=object), ref_state[k])
    # the training rows transformed in a batch with test rows of their own cohort (cohort_z:
    # frozen training statistics) or of any cohort (per-sample) are unchanged
    both = pd.concat([train, test], ignore_index=True)
    np.testing.assert_allclose(t.transform(both)[: len(train)], expected_train_out, atol=1e-6)


def test_paper_zero_and_ratio_one_differ():
    x = np.zeros((2, 160))
    x[0, 0] = 8.0  # all of sample 0's expression in gene 0: ratio 1; the rest ratio 0
    x[1, :] = 5.0  # uniform: ratio 1/160
    t = get_transform("paper").fit(x)
    out = t.transform(x).astype(np.float64)
    assert out[0, 0] == pytest.approx(np.log(1 + 1e-6), abs=1e-6)  # ratio 1 -> ~0
    assert out[0, 1] == pytest.approx(np.log(1e-6), rel=1e-6)  # ratio 0 -> log(eps)
    assert out[0, 0] - out[0, 1] > 13  # the paper's -ln bug maps both to 0
    assert out[1, 0] == pytest.approx(np.log(1 / 160 + 1e-6), rel=1e-6)
    # a constituent ratio: invariant to scaling the linear values (library size)
    y = np.log2((2.0 ** x - 1) * 7 + 1)
    np.testing.assert_allclose(t.transform(y), out, atol=1e-5)
    with pytest.raises(InputDataError, match="zero expression over the whole panel"):
        t.transform(np.zeros((1, 160)))


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_per_sample_transforms_are_single_sample_invariant(table, name):
    t = get_transform(name).fit(table.iloc[:12])
    batch = t.transform(table)
    for i in (0, 13, len(table) - 1):
        np.testing.assert_array_equal(t.transform(table.iloc[[i]]), batch[[i]])


def test_rank_scaled_with_ties_averaged():
    x = np.tile(np.arange(160, dtype=float), (2, 1))
    x[1, :4] = 0.0  # four-way tie at the bottom
    t = get_transform("rank").fit(x)
    out = t.transform(x)
    np.testing.assert_allclose(out[0], np.arange(160) / 159, atol=1e-7)
    np.testing.assert_allclose(out[1, :4], 1.5 / 159, atol=1e-7)  # ranks 1..4 -> 2.5 -> 1.5/159
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name,params", [("paper", {}), ("paper", {"standardize": True}),
                                         ("rank", {}), ("reference_z", {})])
def test_keras_layer_parity_including_nan(tmp_path, table, name, params):
    t = get_transform(name, **params).fit(table.iloc[:12])
    x = table[GENES].to_numpy(np.float64).copy()
    x[2, [5, 9]] = np.nan
    x[7, 0] = np.nan
    x[3, 10:14] = x[3, 20]  # ties for rank
    expected = t.transform(x)
    layer = t.as_keras_layer()
    got = np.asarray(layer(x.astype(np.float32)))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # get_config round trip and a saved model holding the layer
    clone = TransformLayer.from_config(layer.get_config())
    np.testing.assert_allclose(np.asarray(clone(x.astype(np.float32))), got, atol=0)
    inp = keras.Input((160,))
    model = keras.Model(inp, layer(inp))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x.astype(np.float32), verbose=0), got, atol=1e-5)


def test_cohort_z_frozen_for_training_cohorts_own_stats_for_new(table):
    train = table[table["cohort"] == "C0"]
    new = table[table["cohort"] == "C1"]
    t = get_transform("cohort_z").fit(train)
    assert t.cohorts_ == ["C0"]
    z_train = t.transform(train)
    np.testing.assert_allclose(z_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z_train.std(0), 1, atol=1e-4)
    z_new = t.transform(new)  # the +1.5 batch shift of C1 is removed by its own statistics
    np.testing.assert_allclose(z_new.mean(0), 0, atol=1e-5)
    assert t.last_cohort_sources_ == {"C1": "own statistics of its 10 samples"}
    # reference_z keeps the shift: the difference cohort_z removes
    assert get_transform("reference_z").fit(train).transform(new).mean() > 0.8
    with pytest.raises(InputDataError, match="not seen in training and has only 3"):
        t.transform(new.iloc[:3])
    t.transform(train.iloc[:1])  # one sample of a training cohort is fine (frozen stats)
    with pytest.raises(InputDataError, match="needs a whole cohort"):
        t.as_keras_layer()
    assert not t.per_sample


def test_missing_gene_policy(table):
    train = table.iloc[:12].copy()
    train[GENES[0]] = np.nan  # missing in every training row
    with pytest.raises(InputDataError, match=f"{GENES[0]} are missing in every training row"):
        get_transform("reference_z").fit(train)
    t = get_transform("reference_z", impute_all_missing=True).fit(train)
    assert t.all_missing_genes_ == [GENES[0]]
    assert t.fit_imputation_["per_gene"] == {GENES[0]: 12}

    t = get_transform("reference_z").fit(table.iloc[:12])
    test = table.iloc[12:].copy()
    test.iloc[0, test.columns.get_loc(GENES[1])] = np.nan
    test.iloc[1, test.columns.get_loc(GENES[1])] = np.nan
    out = t.transform(test)
    assert t.imputation_report() == {"n_samples": len(test), "n_cells": 2,
                                     "per_gene": {GENES[1]: 2}}
    assert out[0, 1] == pytest.approx(0.0, abs=1e-6)  # imputed with the training mean
    too_many = test.copy()
    too_many.loc[too_many.index[4], GENES[:17]] = np.nan  # 17/160 > 10%
    with pytest.raises(InputDataError, match=r"1 sample\(s\) miss more than 10%.*C1_S4"):
        t.transform(too_many)
    ok = test.copy()
    ok.loc[ok.index[4], GENES[:16]] = np.nan  # exactly 10% is allowed
    t.transform(ok)
    inf = test.copy()
    inf.iloc[0, inf.columns.get_loc(GENES[2])] = np.inf
    with pytest.raises(InputDataError, match="inf"):
        t.transform(inf)
    with pytest.raises(InputDataError, match="lacks 1 panel gene"):
        t.transform(test.drop(columns=[GENES[5]]))


def test_run_transform_artifact_and_cli(tmp_path, table):
    from click.testing import CliRunner

    from amu_tf.artifacts import Artifact
    from amu_tf.data.cohort_table import write_table
    from components.transform import run_transform
    from pipelines.cli import amu

    test = table.copy()
    test.loc[15, GENES[7]] = np.nan
    write_table(test, tmp_path / "t.csv")
    train_ids = test["sample"].iloc[:12].tolist()
    art = run_transform(tmp_path / "t.csv", tmp_path / "tf", "reference_z", train_samples=train_ids)
    art = Artifact.load(art.uri, expected_type="TransformGraph")
    assert art.inputs and art.inputs[0]["content_hash"]
    p = art.properties
    assert p["n_fit_rows"] == 12 and p["fit_cohorts"] == ["C0"] and not p["fit_on_all_rows"]
    assert p["table_imputation"]["per_gene"] == {GENES[7]: 1}
    assert (art.path / "fit_samples.txt").read_text().split() == train_ids
    from amu_tf.data.cohort_table import read_table

    test = read_table(tmp_path / "t.csv")  # as written (6 significant digits)
    loaded = load_transform(art.uri)
    expected = get_transform("reference_z").fit(test.iloc[:12]).transform(test)
    np.testing.assert_array_equal(loaded.transform(test), expected)
    written = pd.read_csv(art.path / "transformed.csv.gz")
    np.testing.assert_allclose(written[GENES].to_numpy(), expected, rtol=1e-6, atol=1e-6)

    r = CliRunner().invoke(amu, ["transform", str(tmp_path / "t.csv"), "-t", "paper", "--out",
                                 str(tmp_path / "p"), "--train-cohort", "C1", "--param",
                                 "standardize=true"])
    assert r.exit_code == 0, r.output
    assert "paper (per sample): fitted on 10 rows of C1" in r.output
    assert load_transform(tmp_path / "p").standardize is True
    r = CliRunner().invoke(amu, ["transform", str(tmp_path / "t.csv"), "--out",
                                 str(tmp_path / "x"), "--train-cohort", "NOPE"])
    assert r.exit_code == 2 and "not in the table" in r.output
    assert not (tmp_path / "x").exists()


def test_synthetic_cohort_missing_gene_imputed_and_reported():
    from amu_tf.data.synthetic import make_synthetic_table

    df, _ = make_synthetic_table(seed=0)
    missing = [g for g in GENES if df.loc[df["cohort"] == "SYN_TPM_A", g].isna().all()]
    assert len(missing) == 1
    train = df[df["cohort"] != "SYN_TPM_A"]
    test = df[df["cohort"] == "SYN_TPM_A"]
    for name in TRANSFORMS:
        t = get_transform(name).fit(train)
        out = t.transform(test)
        assert np.isfinite(out).all()
        assert t.imputation_report()["per_gene"] == {missing[0]: len(test)}
    # cohort_z: a gene imputed for a whole new cohort carries no batch offset (0)
    z = get_transform("cohort_z").fit(train).transform(test)
    assert np.all(z[:, GENES.index(missing[0])] == 0)
