"""CompassInputTransform: COMPASS's preprocessing from a cohort table (fast, no download:
the gene list is given; the real 15,672 come from the wheel)."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from amu_tf.data.transforms.compass_input_transform import SCALER_MEASURED, CompassInputTransform
from amu_tf.errors import InputDataError

FIXTURE = Path(__file__).parent / "fixtures" / "compass_parity.npz"


def _table(values, genes, cohort="A"):
    df = pd.DataFrame(values, columns=genes)
    df.insert(0, "cohort", cohort)
    df.insert(0, "sample", [f"{cohort}{i}" for i in range(len(df))])
    return df


def test_matches_compass_datascaler_on_real_samples():
    with np.load(FIXTURE) as npz:
        tpm, expected = npz["scaler_tpm"].astype(np.float64), npz["scaler_out"]
    genes = [f"G{i}" for i in range(tpm.shape[1])]
    table = _table(np.log2(tpm + 1.0), genes, "Liu2019")
    t = CompassInputTransform(genes=genes).fit(table)
    np.testing.assert_allclose(t.transform(table), expected, rtol=1e-5, atol=1e-6)
    assert t.scaler_fit_ == "per_cohort" and t.scaler_cohorts_ == ["Liu2019"]


def test_missing_genes_get_the_fill_and_too_many_are_refused():
    genes = [f"G{i}" for i in range(10)]
    rng = np.random.default_rng(0)
    table = _table(rng.random((6, 8)) * 5, genes[:8])
    t = CompassInputTransform(genes=genes, max_missing_fraction=0.2).fit(table)
    out = t.transform(table)
    assert out.shape == (6, 10) and out.dtype == np.float32
    assert np.all(out[:, 8:] == 0.0)
    assert t.missing_genes_ == {"A": ["G8", "G9"]}
    with pytest.raises(InputDataError, match="lacks 2 of COMPASS's 10 genes"):
        CompassInputTransform(genes=genes, max_missing_fraction=0.1).fit(table)


def test_per_cohort_and_training_scalers():
    genes = ["G0", "G1"]
    a = _table(np.array([[0.0, 1.0], [2.0, 3.0], [1.0, 2.0], [1.0, 1.0], [0.5, 2.5]]), genes, "A")
    b = _table(a[genes].to_numpy() + 10.0, genes, "B")
    per = CompassInputTransform(genes=genes).fit(a)
    # a cohort unseen at fit is scaled on its own rows: the offset of 10 disappears
    np.testing.assert_allclose(per.transform(b), per.transform(a), atol=1e-6)
    frozen = CompassInputTransform(genes=genes, scaler_fit="training").fit(a)
    assert frozen.scaler_cohorts_ == [] and frozen.transform(b).min() > 1.0
    with pytest.raises(InputDataError, match="not seen at fit"):
        per.transform(b.iloc[:3])


def test_fpkm_is_rescaled_to_tpm():
    genes = ["G0", "G1", "G2"]
    fpkm = np.array([[10.0, 30.0, 60.0], [1.0, 1.0, 2.0], [5.0, 0.0, 5.0]])
    table = _table(np.log2(fpkm + 1.0), genes, "F")
    t = CompassInputTransform(genes=genes, cohort_units={"F": "FPKM"}).fit(table)
    tpm = fpkm / fpkm.sum(1, keepdims=True) * 1e6
    x = np.log2(tpm + 1.0)
    expected = (x - x.min(0)) / (x.max(0) - x.min(0))
    np.testing.assert_allclose(t.transform(table), expected, rtol=1e-5, atol=1e-6)
    assert t.units_["F"].startswith("fpkm:")


def test_sklearn_contract_and_save(tmp_path):
    genes = ["G0", "G1"]
    table = _table(np.arange(12.0).reshape(6, 2), genes)
    t = CompassInputTransform(genes=genes, scaler_fit="training")
    assert clone(t).get_params() == t.get_params()
    t.fit(table)
    assert t.cancer_codes(table).tolist() == [25] * 6
    t.save(tmp_path / "tr")
    from amu_tf.data.transforms import load_transform

    again = load_transform(tmp_path / "tr")
    np.testing.assert_array_equal(again.transform(table), t.transform(table))
    with pytest.raises(InputDataError):
        CompassInputTransform(genes=genes, scaler_fit="global").fit(table)


def test_the_unit_the_table_carries_is_used():
    """A table read from a CohortTable artifact (or built by amu predict from a spec) carries
    its cohorts' units: an FPKM cohort is rescaled without cohort_units being passed, also
    after the row slicing the protocols do; an explicit cohort_units still wins."""
    from amu_tf.data.cohort_table import UNITS_ATTR

    genes = ["G0", "G1", "G2"]
    fpkm = np.array([[10.0, 30.0, 60.0], [1.0, 1.0, 2.0], [5.0, 0.0, 5.0], [2.0, 8.0, 1.0]])
    table = _table(np.log2(fpkm + 1.0), genes, "F")
    explicit = CompassInputTransform(genes=genes, cohort_units={"F": "fpkm"}).fit(table)
    bare = CompassInputTransform(genes=genes).fit(table)
    table.attrs[UNITS_ATTR] = {"F": "fpkm"}
    sliced = table[table["sample"] != "F3"].reset_index(drop=True)  # as a protocol's split
    carried = CompassInputTransform(genes=genes).fit(sliced)
    assert carried.units_["F"].startswith("fpkm:") and bare.units_["F"].startswith("tpm:")
    np.testing.assert_allclose(carried.transform(sliced), explicit.fit(sliced).transform(sliced),
                               rtol=1e-6)
    plain = sliced.copy()
    plain.attrs = {}  # the same rows without the units: taken as TPM, another input
    assert not np.allclose(bare.fit(plain).transform(plain), carried.transform(sliced))
    told = CompassInputTransform(genes=genes, cohort_units={"F": "tpm"}).fit(sliced)
    assert told.units_["F"].startswith("tpm:")
    # scored later from a table that carries no unit (a CSV): the unit it was fitted with
    np.testing.assert_allclose(carried.transform(plain), carried.transform(sliced), rtol=1e-6)
    contradicting = sliced.copy()
    contradicting.attrs[UNITS_ATTR] = {"F": "tpm"}
    with pytest.raises(InputDataError, match="was fpkm when the model was fitted"):
        carried.transform(contradicting)


def test_read_table_carries_the_recorded_units(tmp_path):
    from amu_tf.data.cohort_table import cohort_units, read_table
    from components.ingest import run_ingest

    from test_ingest import _tiny_counts_cohort

    spec, *_ = _tiny_counts_cohort(tmp_path)
    run_ingest([spec], tmp_path / "out")
    assert cohort_units(read_table(tmp_path / "out")) == {"TINY": "counts"}


@pytest.mark.parametrize("value,expected", [
    ("abc", "the first, 'abc' (gene G1, sample A2), is not a number"),
    (np.inf, "is infinite"),
    (-50.0, "is below 0: COMPASS reads log2(x + 1)"),
])
def test_values_log2_x_plus_1_cannot_hold_are_refused(value, expected):
    """Text, infinite and negative values in a gene COMPASS reads (any gene, not only the
    panel's) are refused in fit and transform: before, text became a missing value, inf
    broke the gene's min-max scaling and a negative value (log2 of x + 0.001, a z-score)
    was scaled as if it were log2(x + 1)."""
    genes = ["G0", "G1", "G2"]
    good = _table(np.arange(12.0).reshape(4, 3), genes)
    bad = good.astype({"G1": object})
    bad.loc[2, "G1"] = value
    with pytest.raises(InputDataError, match=re.escape(expected)):
        CompassInputTransform(genes=genes).fit(bad)
    fitted = CompassInputTransform(genes=genes).fit(good)
    with pytest.raises(InputDataError, match="compass_input: 1 value"):
        fitted.transform(bad)
    # a missing value stays allowed (filled), and 0 is a valid log2(0 + 1)
    ok = good.copy()
    ok.loc[1, "G0"], ok.loc[2, "G2"] = np.nan, 0.0
    assert np.isfinite(CompassInputTransform(genes=genes).fit(good).transform(ok)).all()


def test_numeric_columns_read_as_text_columns_are():
    """An all-numeric block is read in one step, a block with text columns column by
    column: the same values either way (float64, float32, int, a missing value), and inf or
    a negative value in a numeric column is refused as it is in a text one."""
    genes = ["G0", "G1", "G2", "G3"]
    rng = np.random.default_rng(3)
    good = _table(rng.random((6, 4)) * 8, genes)
    good["G1"] = good["G1"].astype(np.float32)
    good["G2"] = np.arange(6) * 2                       # integer counts-like column
    good.loc[4, "G3"] = np.nan
    text = good.astype({g: object for g in genes})
    t = CompassInputTransform(genes=genes).fit(good)
    np.testing.assert_array_equal(t.transform(good), t.transform(text))
    np.testing.assert_array_equal(
        CompassInputTransform(genes=genes).fit(text).transform(text), t.transform(good))
    for value, expected in ((np.inf, "is infinite"), (-50.0, "is below 0")):
        bad = good.copy()
        bad.loc[2, "G0"] = value
        assert bad["G0"].dtype == np.float64
        with pytest.raises(InputDataError, match=expected):
            CompassInputTransform(genes=genes).fit(bad)


def _two_cohorts(offset=0.0, scale=1.0, seed=0, n=(8, 6), n_genes=40):
    """Cohort A and a cohort B drawn alike, then B's log2 values scaled and shifted (a planted
    per-cohort platform effect); responses drawn at random (the measurement never reads
    them)."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    a = _table(rng.random((n[0], n_genes)) * 4 + 1, genes, "A")
    b = _table((rng.random((n[1], n_genes)) * 4 + 1) * scale + offset, genes, "B")
    table = pd.concat([a, b], ignore_index=True)
    table["response"] = rng.integers(0, 2, len(table))
    return table, genes


def test_scaler_effect_is_zero_for_one_fit_cohort():
    """With one fit cohort the per-cohort and the pooled scaler are the same scaler."""
    table, genes = _two_cohorts()
    a = table[table["cohort"] == "A"]
    for fit in ("per_cohort", "training"):
        eff = CompassInputTransform(genes=genes, scaler_fit=fit).fit(a).scaler_effect_
        assert eff["cohorts"]["A"] == {"rows": 8, "mean_abs_diff": 0.0,
                                       "median_range_ratio": 1.0}
        assert eff["pooled"] == eff["cohorts"]["A"]


def test_scaler_effect_grows_with_a_planted_cohort_offset():
    """Two cohorts drawn alike: a small effect (sampling only); B's log2 values shifted
    further and further: the effect grows and B's range shrinks relative to the pooled one
    (which spans both cohorts); B squeezed without a shift: its range ratio drops. The same
    whichever scaler is chosen (it measures the other choice), and it matches the two fitted
    scalers applied to B's rows."""
    effects = {}
    for offset, scale in ((0.0, 1.0), (1.0, 1.0), (3.0, 1.0), (6.0, 1.0), (0.0, 0.3)):
        table, genes = _two_cohorts(offset, scale)
        per = CompassInputTransform(genes=genes).fit(table)
        frozen = CompassInputTransform(genes=genes, scaler_fit="training").fit(table)
        assert per.scaler_effect_ == frozen.scaler_effect_
        effects[offset, scale] = per.scaler_effect_
        b = table[table["cohort"] == "B"]
        direct = np.abs(per.transform(b).astype(float) - frozen.transform(b)).mean()
        assert per.scaler_effect_["cohorts"]["B"]["mean_abs_diff"] == pytest.approx(direct,
                                                                                   abs=1e-4)
    shifts = [effects[o, 1.0] for o in (0.0, 1.0, 3.0, 6.0)]
    diffs = [e["pooled"]["mean_abs_diff"] for e in shifts]
    ratios = [e["cohorts"]["B"]["median_range_ratio"] for e in shifts]
    assert diffs[0] < 0.1 and diffs == sorted(diffs) and diffs[-1] > 0.3
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] < 0.4
    squeezed = effects[0.0, 0.3]
    assert squeezed["cohorts"]["B"]["median_range_ratio"] < 0.3 < ratios[0]
    assert squeezed["pooled"]["mean_abs_diff"] > 2 * diffs[0]
    w = {c: v["rows"] for c, v in squeezed["cohorts"].items()}
    assert squeezed["pooled"]["rows"] == sum(w.values()) == 14
    assert squeezed["pooled"]["mean_abs_diff"] == pytest.approx(
        sum(w[c] * squeezed["cohorts"][c]["mean_abs_diff"] for c in w) / 14, abs=2e-4)


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # G0 in B, by design
def test_scaler_effect_reads_no_labels_and_skips_missing_genes():
    """The measurement is the same with the responses permuted, dropped or passed as y; a
    gene a cohort lacks is left out of its difference (not counted as a 0 or a fill)."""
    table, genes = _two_cohorts(2.0, 0.5)
    base = CompassInputTransform(genes=genes).fit(table, table["response"]).scaler_effect_
    permuted = table.copy()
    permuted["response"] = np.random.default_rng(1).permutation(table["response"].to_numpy())
    assert CompassInputTransform(genes=genes).fit(
        permuted, permuted["response"]).scaler_effect_ == base
    assert CompassInputTransform(genes=genes).fit(
        table.drop(columns="response")).scaler_effect_ == base
    lacking = table.copy()
    lacking.loc[lacking["cohort"] == "B", "G0"] = np.nan
    eff = CompassInputTransform(genes=genes).fit(lacking).scaler_effect_
    assert np.isfinite(eff["cohorts"]["B"]["mean_abs_diff"])
    # by hand: B's difference over the genes it has, G0 left out (TPM table: values as is)
    v = lacking[genes].to_numpy(float)
    b = (lacking["cohort"] == "B").to_numpy()

    def scaled(x, rows):
        lo, hi = np.nanmin(v[rows], 0), np.nanmax(v[rows], 0)
        span = np.where(np.isfinite(hi - lo) & (hi - lo > 0), hi - lo, 1.0)
        return (x - lo) / span

    all_rows = np.ones(len(v), bool)
    d = np.abs(scaled(v[b], b) - scaled(v[b], all_rows))[:, 1:]  # G0 is column 0
    assert genes[0] == "G0"
    assert eff["cohorts"]["B"]["mean_abs_diff"] == pytest.approx(d.mean(), abs=1e-4)


def test_the_record_is_written_to_transform_json(tmp_path):
    """``save`` writes the choice and its measured effect under transform.json's "record";
    the transform loads back as before, and one saved before the record existed (no key)
    still loads."""
    import json

    from amu_tf.data.transforms import load_transform

    table, genes = _two_cohorts(3.0, 1.0)
    t = CompassInputTransform(genes=genes).fit(table.drop(columns=["G1"]))
    t.save(tmp_path / "tr")
    config = json.loads((tmp_path / "tr" / "transform.json").read_text())
    rec = config["record"]
    assert rec["scaler_fit_"] == "per_cohort" and rec["scaler_cohorts_"] == ["A", "B"]
    assert rec["n_missing_genes_"] == {"A": 1, "B": 1} and rec["n_genes"] == 40
    assert rec["max_missing_fraction"] == 0.2 and rec["units_"]["A"].startswith("tpm:")
    assert rec["scaler_effect_"] == t.scaler_effect_
    assert "--scaler-fit training" in rec["scaler_note"] and "\n" not in rec["scaler_note"]
    assert rec["scaler_measured"] == json.loads(json.dumps(SCALER_MEASURED))
    np.testing.assert_array_equal(load_transform(tmp_path / "tr").transform(table),
                                  t.transform(table))
    del config["record"]
    (tmp_path / "tr" / "transform.json").write_text(json.dumps(config))
    assert load_transform(tmp_path / "tr").scaler_fit_ == "per_cohort"
    assert CompassInputTransform(genes=genes).artifact_record() == {}  # not fitted


def test_the_recorded_scaler_measurement_is_the_documented_one():
    """The record carries what docs/compass.md reports for the scaler choice (the pooled
    paired differences of its table), so the artifact and the docs cannot drift apart."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "compass.md").read_text()
    heading = "### The scaler: what the choice does"
    assert heading in doc, "docs/compass.md lost the scaler measurement's section"
    section = doc.split(heading, 1)[1].split("\n## ", 1)[0]
    num = r"([+-]?\d\.\d{3})"
    for model, (value, lo, hi) in SCALER_MEASURED["training_minus_per_cohort_pooled_auc"].items():
        m = re.search(rf"\| {re.escape(model)} \| pooled \| \S+ \| \S+ \| {num} "
                      rf"\[{num}, {num}\] \|", section)
        assert m, model
        assert [float(g) for g in m.groups()] == [value, lo, hi]
        assert lo <= value <= hi


def test_feature_transform_record_adds_its_level_and_readout():
    """The probe's transform returns its input transform's record plus its own choices
    (checked without running an encoder: the fitted input transform is set directly)."""
    from amu_tf.training.compass_feature_transform import CompassFeatureTransform

    table, genes = _two_cohorts(1.0, 1.0)
    ft = CompassFeatureTransform(level="concept", readout="pc1", scaler_fit="training",
                                 genes=genes)
    assert ft.artifact_record() == {}
    ft.input_ = ft._input().fit(table)
    ft.blocks_, ft.n_features_out_ = [("concept-pc1", 0, 3)], 3
    rec = ft.artifact_record()
    assert rec["scaler_fit_"] == "training" and rec["scaler_cohorts_"] == []
    assert rec["level"] == "concept" and rec["readout"] == "pc1"
    assert rec["blocks_"] == [["concept-pc1", 0, 3]] and rec["n_features_out_"] == 3
    assert rec["scaler_effect_"] == ft.input_.scaler_effect_


@pytest.mark.parametrize("recipe", ["recipe:compass-probe", "recipe:compass-published"])
def test_scaler_fit_is_a_checked_parameter_of_the_compass_recipes(recipe):
    """``scaler_fit`` reaches the feature transform, survives clone, and a value that is
    not a scaler is refused by check_params in one line, before any work."""
    from amu_tf.training import make_estimator

    est = make_estimator(recipe, scaler_fit="training")
    assert clone(est).get_params()["scaler_fit"] == "training"
    assert est.make_input_transform().scaler_fit == "training"
    assert make_estimator(recipe).make_input_transform().scaler_fit == "per_cohort"
    est.check_params()
    with pytest.raises(ValueError) as err:
        clone(est).set_params(scaler_fit="bogus").check_params()
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith(
        "scaler_fit must be one of 'per_cohort', 'training', not 'bogus'")
