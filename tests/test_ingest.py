"""Ingest: specs, unit conversions, gene ids, clinical mapping, the CohortTable artifact, and
(slow) the exact counts on the three shared cohorts."""

import gzip
import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amu_tf.artifacts import Artifact
from amu_tf.data.clinical_reader import map_response
from amu_tf.data.cohort_spec import DEFAULT_RESPONSE_MAP, CohortSpec
from amu_tf.data.cohort_table import META_COLUMNS, gene_columns, read_table
from amu_tf.data.expression_reader import to_log2_scale
from amu_tf.data.gene_ids import guess_id_type, map_to_panel
from amu_tf.errors import InputDataError, SpecError
from amu_tf.panel import load_panel
from components.ingest import format_summary, ingest_cohort, run_ingest
from pipelines.cli import amu

PANEL = load_panel()
SYMBOLS = PANEL["symbol"].tolist()
ENTREZ = PANEL["entrez_id"].astype(str).tolist()


def _spec_text(expr_file, clin_file, units="counts", gene_id="entrez", extra_expr="",
               extra_clin="", survival=""):
    return f"""name = "TINY"
[expression]
file = "{expr_file}"
layout = "genes_x_samples"
units = "{units}"
gene_id = "{gene_id}"
{extra_expr}
[clinical]
file = "{clin_file}"
sample = "sample"
patient = "patient"
response = "BOR"
treatment_value = "nivolumab"
timepoint_value = "pre"
{extra_clin}
{survival}
"""


def _tiny_counts_cohort(tmp_path, n=6, drop=(), seed=0):
    """A GEO-style count CSV (Entrez ids, unnamed first column) + clinical TSV."""
    rng = np.random.default_rng(seed)
    ids = [e for s, e in zip(SYMBOLS, ENTREZ) if s not in drop] + ["999001", "999002"]
    counts = rng.integers(0, 500, size=(len(ids), n))
    samples = [f"P{i}_Pre" for i in range(n)]
    pd.DataFrame(counts, index=ids, columns=samples).to_csv(tmp_path / "counts.csv")
    bor = (["CR", "PR", "SD", "PD", "NE", ""] * n)[:n]
    clin = pd.DataFrame({
        "sample": samples, "patient": [f"P{i}" for i in range(n)], "BOR": bor,
        "OS": [30.0 * (i + 1) for i in range(n)], "OS_SOR": [i % 2 for i in range(n)],
    })
    clin.to_csv(tmp_path / "clin.tsv", sep="\t", index=False)
    survival = ('[survival]\ntime_unit = "months"\nos_time = "OS"\nos_event = "OS_SOR"\n'
                'os_event_means = "censored"\n')
    spec = tmp_path / "tiny.toml"
    spec.write_text(_spec_text("counts.csv", "clin.tsv", survival=survival))
    return spec, counts, ids, samples


# --------------------------------------------------------------------------- conversions
def test_counts_become_log2_cpm_over_all_genes():
    counts = np.array([[10.0, 0.0], [30.0, 5.0], [60.0, 5.0]])  # 3 genes x 2 samples
    got = to_log2_scale(counts, "counts")
    cpm = counts / counts.sum(axis=0) * 1e6
    np.testing.assert_allclose(got, np.log2(cpm + 1))
    assert got[1, 1] == pytest.approx(np.log2(0.5e6 + 1))


def test_tpm_and_log2_tpm_conversions_agree():
    tpm = np.array([[0.0, 1.0], [3.0, 1000.0]])
    via_tpm = to_log2_scale(tpm, "tpm")
    np.testing.assert_allclose(via_tpm, np.log2(tpm + 1))
    np.testing.assert_allclose(to_log2_scale(np.log2(tpm + 0.001), "log2(tpm+0.001)"), via_tpm,
                               atol=1e-9)
    np.testing.assert_allclose(to_log2_scale(np.log2(tpm + 1), "log2(tpm+1)"), via_tpm)
    np.testing.assert_allclose(to_log2_scale(tpm, "fpkm"), via_tpm)
    # the floor of a log2(TPM+0.001) file (log2(0.001) rounded) maps to 0, never below
    assert to_log2_scale(np.array([[-9.96578428466209, -10.5]]), "log2(tpm+0.001)").min() == 0.0


# --------------------------------------------------------------------------- gene ids
def test_gene_id_types_are_matched_to_the_panel(tmp_path):
    assert map_to_panel(["7124", "7124.0", "1"], "entrez")[:2] == ["TNF", "TNF"]
    assert map_to_panel(["TNF", "tnf", "NOTAGENE"], "symbol") == ["TNF", "TNF", None]
    assert guess_id_type(["ENSG00000232810.3", "ENSG00000111537"]) == "ensembl"
    ens = {"ENSG00000232810": "TNF", "ENSG00000111537": "IFNG"}
    assert map_to_panel(["ENSG00000232810.3", "ENSG00000111537", "ENSG00000000001"], "ensembl",
                        ens) == ["TNF", "IFNG", None]
    with pytest.raises(InputDataError, match="look like symbol"):
        map_to_panel(["TNF", "IFNG", "CD8A"], "entrez")


def test_ensembl_ids_with_versions_via_mapping_file(tmp_path):
    ens = [f"ENSG{i:011d}.{i % 3 + 1}" for i in range(len(SYMBOLS))]
    pd.DataFrame({"ensembl_id": [e.split(".")[0] for e in ens], "symbol": SYMBOLS}).to_csv(
        tmp_path / "map.tsv", sep="\t", index=False)
    vals = np.arange(len(SYMBOLS) * 2, dtype=float).reshape(-1, 2)
    pd.DataFrame(vals, index=pd.Index(ens, name="gene_id"), columns=["S1", "S2"]).to_csv(
        tmp_path / "tpm.tsv", sep="\t")
    pd.DataFrame({"sample": ["S1", "S2"], "patient": ["A", "B"], "BOR": ["PR", "PD"]}).to_csv(
        tmp_path / "clin.tsv", sep="\t", index=False)
    spec = tmp_path / "s.toml"
    spec.write_text(_spec_text("tpm.tsv", "clin.tsv", units="tpm", gene_id="ensembl",
                               extra_expr='ensembl_map = "map.tsv"'))
    table, s = ingest_cohort(spec)
    assert s["genes_found"] == 160
    np.testing.assert_allclose(table[SYMBOLS].to_numpy(), np.log2(vals.T + 1))
    # without the map the spec is refused
    spec.write_text(_spec_text("tpm.tsv", "clin.tsv", units="tpm", gene_id="ensembl"))
    with pytest.raises(SpecError, match="ensembl_map"):
        CohortSpec.from_toml(spec)


def test_duplicate_gene_rows_sum_counts_and_keep_max_mean_otherwise(tmp_path):
    ids = ENTREZ + [ENTREZ[0]]  # the first panel gene twice
    counts = np.full((len(ids), 2), 10.0)
    counts[-1] = [30.0, 50.0]
    pd.DataFrame(counts, index=ids, columns=["S1", "S2"]).to_csv(tmp_path / "c.csv")
    pd.DataFrame({"sample": ["S1", "S2"], "patient": ["A", "B"], "BOR": ["PR", "PD"]}).to_csv(
        tmp_path / "clin.tsv", sep="\t", index=False)
    spec = tmp_path / "s.toml"
    spec.write_text(_spec_text("c.csv", "clin.tsv"))
    table, s = ingest_cohort(spec)
    assert s["duplicate_genes"] == [SYMBOLS[0]]
    assert "1 gene symbol(s) on more than one row, merged (counts summed)" in format_summary(s)
    lib = counts.sum(axis=0)
    np.testing.assert_allclose(table[SYMBOLS[0]], np.log2((10 + counts[-1]) / lib * 1e6 + 1))
    # TPM: the row with the larger mean wins, no summing
    # a gene outside the panel on two rows too: merged alike, and reported (genome-wide
    # models such as COMPASS's read it)
    assert "GAPDH" not in SYMBOLS
    sym = SYMBOLS + [SYMBOLS[0], "GAPDH", "GAPDH"]
    tpm = np.full((len(sym), 2), 4.0)
    tpm[-3] = [1.0, 2.0]
    tpm[0] = [7.0, 9.0]
    tpm[-2] = [3.0, 5.0]
    tpm[-1] = [20.0, 30.0]
    pd.DataFrame(tpm, index=pd.Index(sym, name="g"), columns=["S1", "S2"]).to_csv(
        tmp_path / "t.tsv", sep="\t")
    spec.write_text(_spec_text("t.tsv", "clin.tsv", units="tpm", gene_id="symbol"))
    table, s = ingest_cohort(spec)
    np.testing.assert_allclose(table[SYMBOLS[0]], np.log2(np.array([7.0, 9.0]) + 1))
    np.testing.assert_allclose(table["GAPDH"], np.log2(np.array([20.0, 30.0]) + 1))
    assert s["duplicate_genes"] == [SYMBOLS[0]]
    assert s["duplicate_genes_all"] == sorted([SYMBOLS[0], "GAPDH"])
    assert ("2 gene symbol(s) on more than one row, merged (the row with the highest mean "
            "kept)") in format_summary(s)


# --------------------------------------------------------------------------- clinical
def test_response_mapping_default_and_unlabeled_reasons():
    assert DEFAULT_RESPONSE_MAP == {"CR": 1, "PR": 1, "SD": 0, "PD": 0}
    assert map_response("pr ", DEFAULT_RESPONSE_MAP) == (1.0, "")
    assert map_response("PD", DEFAULT_RESPONSE_MAP) == (0.0, "")
    lab, why = map_response("MR", DEFAULT_RESPONSE_MAP)
    assert np.isnan(lab) and why == "MR not in response map"
    lab, why = map_response(np.nan, DEFAULT_RESPONSE_MAP)
    assert np.isnan(lab) and why == "no response value"


def test_ingest_cohort_values_labels_survival(tmp_path):
    spec, counts, ids, samples = _tiny_counts_cohort(tmp_path)
    table, s = ingest_cohort(spec)
    assert list(table.columns) == META_COLUMNS + gene_columns()
    assert table["sample"].tolist() == samples
    assert table["patient"].iloc[0] == "TINY:P0"
    assert table["response"].iloc[:4].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert table["response"].iloc[4:].isna().all()
    assert s["samples"] == 6 and s["labeled"] == 4 and s["responders"] == 2
    assert s["unlabeled"] == {"NE not in response map": 1, "no response value": 1}
    # log2 CPM with the library over all genes (including the two non-panel ids)
    expect = np.log2(counts[: len(SYMBOLS)] / counts.sum(axis=0) * 1e6 + 1).T
    np.testing.assert_allclose(table[SYMBOLS].to_numpy(), expect)
    # OS_SOR-style flag inverted (1 = censored in the file), months -> days
    assert table["os_event"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(table["os_time"], [30.0 * (i + 1) * 365.25 / 12 for i in range(6)])
    assert table["pfs_time"].isna().all()
    line = format_summary(s)
    assert "6 samples, 4 labeled, 2 responders, 160/160 panel genes" in line
    assert "1 NE not in response map" in line


def test_missing_panel_genes_are_nan_and_reported_and_refused_past_threshold(tmp_path):
    spec, *_ = _tiny_counts_cohort(tmp_path, drop=("MIF", "TNF"))
    table, s = ingest_cohort(spec)
    assert s["genes_found"] == 158 and s["missing_genes"] == sorted(
        ["MIF", "TNF"], key=SYMBOLS.index)
    assert table["MIF"].isna().all() and table["TNF"].isna().all()
    assert table[[g for g in SYMBOLS if g not in ("MIF", "TNF")]].notna().all().all()
    assert "(missing: " in format_summary(s)
    spec, *_ = _tiny_counts_cohort(tmp_path, drop=SYMBOLS[:40])
    with pytest.raises(InputDataError, match=r"only 120/160 panel genes found, need 128"):
        ingest_cohort(spec)


def test_partial_overlap_of_sample_ids_is_reported(tmp_path):
    spec, counts, ids, samples = _tiny_counts_cohort(tmp_path)
    clin = pd.read_csv(tmp_path / "clin.tsv", sep="\t")
    clin = clin.iloc[1:]  # first expression sample has no clinical record
    extra = pd.DataFrame({"sample": ["X1", "X2"], "patient": ["X1", "X2"], "BOR": ["PR", "PD"],
                          "OS": [1.0, 2.0], "OS_SOR": [0, 1]})
    pd.concat([clin, extra]).to_csv(tmp_path / "clin.tsv", sep="\t", index=False)
    table, s = ingest_cohort(spec)
    assert s["samples"] == 6
    assert s["expression_without_clinical"] == 1 and s["clinical_without_expression"] == 2
    assert table.loc[0, "unlabeled_reason"] == "no clinical record"
    assert "2 clinical rows without expression" in format_summary(s)


def test_spec_errors():
    with pytest.raises(SpecError, match="units"):
        CohortSpec.from_dict({"name": "x", "expression": {"file": "a", "layout": "genes_x_samples",
                              "units": "rpkm2", "gene_id": "symbol"},
                              "clinical": {"file": "b", "sample": "s", "response": "r"}})
    with pytest.raises(SpecError, match="missing 'name'"):
        CohortSpec.from_dict({"expression": {}, "clinical": {}})
    with pytest.raises(SpecError, match="response_map"):
        CohortSpec.from_dict({"name": "x", "expression": {"file": "a", "layout": "genes_x_samples",
                              "units": "tpm", "gene_id": "symbol"},
                              "clinical": {"file": "b", "sample": "s", "response": "r",
                                           "response_map": {"CR": 2}}})


def test_run_ingest_writes_a_cohort_table_artifact(tmp_path):
    spec, *_ = _tiny_counts_cohort(tmp_path)
    art = run_ingest([spec], tmp_path / "out")
    again = Artifact.load(tmp_path / "out", expected_type="CohortTable")
    assert again.content_hash == art.content_hash
    assert again.properties["cohorts"]["TINY"]["labeled"] == 4
    assert {i["uri"] for i in again.inputs} == {str(spec), str(tmp_path / "counts.csv"),
                                               str(tmp_path / "clin.tsv")}
    table = read_table(tmp_path / "out")
    assert table.shape == (6, len(META_COLUMNS) + 160)


# --------------------------------------------------------------------------- shared data
EXPECTED = {
    "GSE91061_pre": (51, 49, 10, 159, ["MIF"]),
    "Liu2019": (121, 119, 47, 160, []),
    "GSE78220": (27, 27, 14, 160, []),
}


@pytest.mark.slow
def test_shared_cohorts_read_exactly_as_published(shared_data, tmp_path):
    runner = CliRunner()
    specs = [f"examples/cohorts/{n}.toml" for n in ("GSE91061_pre", "Liu2019", "GSE78220")]
    res = runner.invoke(amu, ["ingest", *specs, "--data-root", str(shared_data),
                              "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    lines = {ln.split(":")[0]: ln for ln in res.output.splitlines() if ln.split(":")[0] in EXPECTED}
    art = Artifact.load(tmp_path / "t", expected_type="CohortTable")
    table = read_table(tmp_path / "t")
    for name, (n, lab, resp, found, missing) in EXPECTED.items():
        s = art.properties["cohorts"][name]
        assert (s["samples"], s["labeled"], s["responders"], s["genes_found"]) == (n, lab, resp, found)
        assert s["missing_genes"] == missing
        assert re.search(rf"{n} samples, {lab} labeled, {resp} responders, {found}/160", lines[name])
        sub = table[table["cohort"] == name]
        assert len(sub) == n and int((sub["response"] == 1).sum()) == resp
    assert art.properties["cohorts"]["GSE91061_pre"]["unlabeled"] == {"NE not in response map": 2}
    assert art.properties["cohorts"]["Liu2019"]["unlabeled"] == {"MR not in response map": 2}
    assert table["MIF"][table["cohort"] == "GSE91061_pre"].isna().all()
    assert table["sample"].is_unique
    # Riaz's OS_SOR is inverted: in the table 1 = death
    riaz = pd.read_csv(shared_data / "cohorts/GSE91061_Riaz2017_pre/samples.tsv", sep="\t")
    sub = table[table["cohort"] == "GSE91061_pre"].set_index("sample")
    np.testing.assert_array_equal(sub.loc[riaz["sample"], "os_event"].to_numpy(),
                                  1 - riaz["OS_SOR"].to_numpy())


@pytest.mark.slow
def test_shared_counts_match_an_independent_cpm(shared_data):
    table, _ = ingest_cohort("examples/cohorts/GSE91061_pre.toml", data_root=shared_data)
    with gzip.open(shared_data / "cohorts/GSE91061_Riaz2017_pre/GSE91061_pre_raw_counts.csv.gz") as f:
        raw = pd.read_csv(f, index_col=0)
    cpm = raw / raw.sum() * 1e6
    tnf = np.log2(cpm.loc[7124] + 1)  # TNF's Entrez id
    np.testing.assert_allclose(table.set_index("sample")["TNF"].loc[tnf.index], tnf, rtol=1e-10)
    assert json.dumps(_) is not None


def test_samples_x_genes_layout_with_symbols(tmp_path):
    rng = np.random.default_rng(1)
    vals = rng.uniform(0, 8, size=(3, len(SYMBOLS)))  # log2(TPM+1), samples as rows
    df = pd.DataFrame(vals, columns=SYMBOLS)
    df.insert(0, "sample_id", ["A", "B", "C"])
    df.to_csv(tmp_path / "x.csv", index=False)
    pd.DataFrame({"sample": ["C", "A", "B"], "patient": ["c", "a", "b"],
                  "BOR": ["SD", "CR", "pd"]}).to_csv(tmp_path / "clin.tsv", sep="\t", index=False)
    spec = tmp_path / "s.toml"
    spec.write_text(_spec_text("x.csv", "clin.tsv", units="log2(tpm+1)", gene_id="symbol")
                    .replace("genes_x_samples", "samples_x_genes"))
    table, s = ingest_cohort(spec)
    assert table["sample"].tolist() == ["A", "B", "C"]
    assert table["response"].tolist() == [1.0, 0.0, 0.0]  # joined by id, not by row order
    np.testing.assert_allclose(table[SYMBOLS].to_numpy(), vals)
    assert s["genes_found"] == 160
