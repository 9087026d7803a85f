"""A cohort table read by `amu train` / `amu evaluate` (issue #25, second probe): a table CSV's
gene symbols get ingest's normalisation, a CohortTable folder that lost its expression.h5ad
is refused, and a constant-expression cohort is refused instead of scored."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amu_tf.data.cohort_table import all_gene_columns, load_cohort_table
from amu_tf.errors import ArtifactError, InputDataError


@pytest.fixture(scope="module")
def table():
    from amu_tf.data.synthetic import make_synthetic_table

    t, _ = make_synthetic_table(seed=0, n_per_cohort=20)
    return t


def _amu(args):
    from pipelines.cli import amu

    return CliRunner().invoke(amu, [str(a) for a in args])


def test_lower_case_and_alias_symbols_of_a_table_csv_are_normalised(tmp_path, table):
    """Cytolytic activity was once scored on GZMA alone when a CSV spelt PRF1 'prf1'."""
    low = table.rename(columns={"PRF1": "prf1", "CD274": "cd274", "CXCL8": "IL8"})
    low.to_csv(tmp_path / "low.csv", index=False)
    df, _ = load_cohort_table(tmp_path / "low.csv")
    assert {"PRF1", "CD274", "CXCL8"} <= set(df.columns)
    assert not {"prf1", "cd274", "IL8"} & set(df.columns)
    r = _amu(["train", "--table", tmp_path / "low.csv", "--model", "cytolytic",
              "--out", tmp_path / "m"])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "m" / "training_summary.json").read_text())
    assert not any(summary["missing_genes"].values()), summary["missing_genes"]


def test_mouse_like_symbols_and_a_gene_given_twice_are_refused(tmp_path, table):
    genes = all_gene_columns(table)
    mouse = table.rename(columns={g: g.capitalize() for g in genes})
    mouse.to_csv(tmp_path / "mouse.csv", index=False)
    with pytest.raises(InputDataError, match="mouse symbols"):
        load_cohort_table(tmp_path / "mouse.csv")
    twice = table.assign(cd8a=table["CD8A"])
    twice.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(InputDataError, match="CD8A is given twice"):
        load_cohort_table(tmp_path / "twice.csv")


def test_a_table_folder_without_its_expression_file_is_refused(tmp_path):
    r = _amu(["synth", tmp_path / "s"])
    assert r.exit_code == 0, r.output
    specs = sorted((tmp_path / "s").glob("*.toml"))
    r = _amu(["ingest", *specs, "--out", tmp_path / "t"])
    assert r.exit_code == 0, r.output
    shutil.copytree(tmp_path / "t", tmp_path / "t2")
    (tmp_path / "t2" / "expression.h5ad").unlink()
    with pytest.raises(ArtifactError, match="expression.h5ad .* is missing"):
        load_cohort_table(tmp_path / "t2")
    r = _amu(["train", "--table", tmp_path / "t2", "--model", "cytolytic", "--out",
              tmp_path / "m"])
    assert r.exit_code == 2 and "is missing" in r.output.strip().splitlines()[-1]
    assert not (tmp_path / "m").exists()


def test_a_constant_expression_cohort_is_refused(tmp_path, table):
    const = table.copy()
    genes = [g for g in all_gene_columns(const) if pd.api.types.is_numeric_dtype(const[g])]
    rows = const["cohort"] == const["cohort"].iloc[0]
    const.loc[rows, genes] = 5.0
    const.to_csv(tmp_path / "const.csv", index=False)
    for args in (["train", "--table", tmp_path / "const.csv", "--model", "logreg", "--out",
                  tmp_path / "m"],
                 ["evaluate", tmp_path / "const.csv", "--models", "cd8a", "--out",
                  tmp_path / "e"]):
        r = _amu(args)
        last = r.output.strip().splitlines()[-1]
        assert r.exit_code == 2 and last.startswith("Error:") and "constant expression" in last
    assert not (tmp_path / "m").exists() and not (tmp_path / "e").exists()
    assert not (tmp_path / "e_audit").exists()
    # one gene that varies is enough to be scored (not refused)
    ok = const.copy()
    ok.loc[rows, genes[0]] = np.arange(rows.sum(), dtype=float)
    ok.to_csv(tmp_path / "ok.csv", index=False)
    load_cohort_table(tmp_path / "ok.csv")
