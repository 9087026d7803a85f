"""Bad input to `amu ingest`: a one-line error, exit status 2, and no output folder.

Valid cohorts come from the synthetic generator (published formats); each test breaks one
thing.
"""

import gzip

import pandas as pd
import pytest
from click.testing import CliRunner

from amu_tf.data.synthetic import generate_default_cohorts
from pipelines.cli import amu


@pytest.fixture
def cohorts(tmp_path):
    data = tmp_path / "data"
    specs = generate_default_cohorts(data, seed=5, n_per_cohort=12)
    return data, {p.stem: p for p in specs}


def _ingest(tmp_path, *specs, expect=2):
    out = tmp_path / "runs" / "cohort"
    res = CliRunner().invoke(amu, ["ingest", *map(str, specs), "--out", str(out)])
    assert res.exit_code == expect, res.output
    if expect == 2:
        err = res.stderr.strip()
        assert err.startswith("Error: ") and "\n" not in err, err
        assert "Traceback" not in res.output
        assert not out.exists()
        leftovers = list(out.parent.iterdir()) if out.parent.exists() else []
        assert leftovers == [], leftovers  # no half-written temporary folder either
        return err
    return res.output


def _counts(data):
    return pd.read_csv(data / "SYN_COUNTS/counts.csv.gz", index_col=0, dtype=str)


def _write_counts(data, df):
    df.to_csv(data / "SYN_COUNTS/counts.csv.gz")


def test_valid_cohorts_pass(cohorts, tmp_path):
    data, specs = cohorts
    out = _ingest(tmp_path, *specs.values(), expect=0)
    assert "SYN_COUNTS: 12 samples" in out and (tmp_path / "runs/cohort/table.csv.gz").is_file()


def test_empty_file(cohorts, tmp_path):
    data, specs = cohorts
    (data / "SYN_TPM_B/clinical.tsv").write_text("")
    assert "is empty" in _ingest(tmp_path, specs["SYN_TPM_B"])


def test_unreadable_file(cohorts, tmp_path):
    data, specs = cohorts
    (data / "SYN_COUNTS/counts.csv.gz").write_bytes(b"\x1f\x8b\x08garbage-not-gzip" * 10)
    assert "cannot read expression file" in _ingest(tmp_path, specs["SYN_COUNTS"])


def test_no_panel_genes(cohorts, tmp_path):
    data, specs = cohorts
    df = _counts(data)
    df.index = [str(800000 + i) for i in range(len(df))]
    _write_counts(data, df)
    assert "no panel genes found" in _ingest(tmp_path, specs["SYN_COUNTS"])


def test_gene_id_type_not_matching_spec(cohorts, tmp_path):
    data, specs = cohorts
    spec = specs["SYN_TPM_B"]
    spec.write_text(spec.read_text().replace('gene_id = "symbol"', 'gene_id = "entrez"'))
    err = _ingest(tmp_path, spec)
    assert "look like symbol ids" in err and "gene_id = 'entrez'" in err


@pytest.mark.parametrize("value,msg", [("12x", "non-numeric value '12x'"),
                                       ("-3", "negative value -3"),
                                       ("inf", "NaN/inf"),
                                       ("", "NaN/inf")])
def test_bad_count_values(cohorts, tmp_path, value, msg):
    data, specs = cohorts
    df = _counts(data)
    df.iloc[3, 2] = value
    _write_counts(data, df)
    assert msg in _ingest(tmp_path, specs["SYN_COUNTS"])


def test_nan_in_log_tpm(cohorts, tmp_path):
    data, specs = cohorts
    f = data / "SYN_TPM_B/log2_tpm.tsv.gz"
    df = pd.read_csv(f, sep="\t", index_col=0)
    df.iloc[0, 0] = float("nan")
    df.to_csv(f, sep="\t")
    assert "NaN/inf" in _ingest(tmp_path, specs["SYN_TPM_B"])


def test_duplicate_sample_ids_in_expression(cohorts, tmp_path):
    data, specs = cohorts
    f = data / "SYN_TPM_B/log2_tpm.tsv.gz"
    with gzip.open(f, "rt") as fh:
        lines = fh.read().splitlines()
    head = lines[0].split("\t")
    head[2] = head[1]
    lines[0] = "\t".join(head)
    with gzip.open(f, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    assert f"duplicate sample id '{head[1]}'" in _ingest(tmp_path, specs["SYN_TPM_B"])


def test_duplicate_sample_ids_in_clinical(cohorts, tmp_path):
    data, specs = cohorts
    f = data / "SYN_TPM_B/clinical.tsv"
    clin = pd.read_csv(f, sep="\t")
    pd.concat([clin, clin.iloc[[0]]]).to_csv(f, sep="\t", index=False)
    assert "duplicate sample id" in _ingest(tmp_path, specs["SYN_TPM_B"])


def test_sample_ids_that_do_not_overlap(cohorts, tmp_path):
    data, specs = cohorts
    f = data / "SYN_TPM_B/clinical.tsv"
    clin = pd.read_csv(f, sep="\t")
    clin["Sample ID"] = "other_" + clin["Sample ID"]
    clin.to_csv(f, sep="\t", index=False)
    assert "no expression sample id matches" in _ingest(tmp_path, specs["SYN_TPM_B"])


def test_partial_overlap_is_reported_not_an_error(cohorts, tmp_path):
    data, specs = cohorts
    f = data / "SYN_TPM_B/clinical.tsv"
    clin = pd.read_csv(f, sep="\t")
    clin.iloc[2:].to_csv(f, sep="\t", index=False)
    out = _ingest(tmp_path, specs["SYN_TPM_B"], expect=0)
    assert "SYN_TPM_B: 12 samples" in out and "2 no clinical record" in out


def test_response_outside_mapping_is_unlabeled_and_counted(cohorts, tmp_path):
    data, specs = cohorts
    f = data / "SYN_TPM_B/clinical.tsv"
    clin = pd.read_csv(f, sep="\t")
    clin.loc[[0, 1, 2], "BR"] = ["MR", "MR", "unknown"]
    clin.to_csv(f, sep="\t", index=False)
    out = _ingest(tmp_path, specs["SYN_TPM_B"], expect=0)
    assert "9 labeled" in out and "3 unlabeled (2 MR not in response map, 1 unknown not in" in out


def test_spec_pointing_to_missing_file(cohorts, tmp_path):
    data, specs = cohorts
    (data / "SYN_TPM_A/log2_tpm.tsv.gz").unlink()
    err = _ingest(tmp_path, specs["SYN_COUNTS"], specs["SYN_TPM_A"])
    assert "does not exist" in err and "log2_tpm.tsv.gz" in err


def test_missing_or_invalid_spec(cohorts, tmp_path):
    data, specs = cohorts
    assert "does not exist" in _ingest(tmp_path, data / "nope.toml")
    bad = data / "bad.toml"
    bad.write_text("name = \n")
    assert "not valid TOML" in _ingest(tmp_path, bad)
    spec = specs["SYN_TPM_B"]
    spec.write_text(spec.read_text().replace('units = "log2(tpm+0.001)"', 'units = "rpkm"'))
    assert "units 'rpkm'" in _ingest(tmp_path, spec)


def test_missing_clinical_column(cohorts, tmp_path):
    data, specs = cohorts
    spec = specs["SYN_TPM_B"]
    spec.write_text(spec.read_text().replace('response = "BR"', 'response = "BOR"'))
    assert "no column 'BOR'" in _ingest(tmp_path, spec)
