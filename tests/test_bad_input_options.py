"""Bad options and labels get one line and exit status 2 before any work, nothing written."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipelines.cli import amu


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory):
    from amu_tf.data.synthetic import make_synthetic_table

    table, _ = make_synthetic_table(seed=0, n_per_cohort=20)
    path = tmp_path_factory.mktemp("t") / "table.csv"
    table.to_csv(path, index=False)
    return path, table


def _one_line_error(res, expected):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("Error: ") and expected in lines[-1], res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("args,expected", [
    (["--models", "amu:tiny,nope"], "--models: unknown estimator 'nope'"),
    (["--models", "amu:huge"], "unknown preset 'huge' for amu"),
    (["--models", "lightgbm"], "unknown estimator 'lightgbm'"),
    (["--models", "recipe:nope"], "unknown recipe 'nope'"),
    (["--protocols", "cv,bogus"], "--protocols: unknown protocol 'bogus'"),
    (["--folds", "1"], "--folds must be an integer >= 2, got 1"),
    (["--repeats", "0"], "--repeats must be an integer >= 1, got 0"),
    (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    (["--patience", "0"], "--patience must be an integer >= 1"),
    (["--n-boot", "-1"], "--n-boot must be an integer >= 0"),
    (["--interpret-models", "svm"], "--interpret-models: 'svm' is not among the run's models"),
])
def test_amu_run_validates_options_before_any_work(tmp_path, args, expected):
    out = tmp_path / "run"
    res = CliRunner().invoke(amu, ["run", "--quick", "--out", str(out), *args])
    _one_line_error(res, expected)
    assert not out.exists()  # nothing started, nothing half-written


@pytest.mark.parametrize("args,expected", [
    (["--models", "logreg,nope"], "--models: unknown estimator 'nope'"),
    (["--protocols", "loco,xx"], "unknown protocol 'xx'"),
    (["--folds", "1"], "--folds must be an integer >= 2"),
    (["--repeats", "0"], "--repeats must be an integer >= 1"),
])
def test_amu_evaluate_validates_options(tmp_path, table_csv, args, expected):
    out = tmp_path / "ev"
    res = CliRunner().invoke(amu, ["evaluate", str(table_csv[0]), "--out", str(out), *args])
    _one_line_error(res, expected)
    assert not out.exists()


@pytest.mark.parametrize("args,expected", [
    (["--model", "amu:huge"], "unknown preset 'huge'"),
    (["--model", "knn"], "unknown estimator 'knn'"),
    (["--model", "amu:tiny", "--epochs", "0"], "--epochs must be an integer >= 1"),
    (["--model", "cd8a", "--param", "C=1"], "biomarker 'cd8a' takes no parameters"),
    # run_train's own arguments are options, not --param (they collided before)
    (["--model", "recipe:compass-probe", "--param", "seed=3"],
     "seed is not an estimator parameter: use --seed"),
    (["--model", "amu:tiny", "--param", "calibrate=sigmoid"], "use --calibrate"),
    # the COMPASS models' parameters: types and ranges before any work (the encoder and the
    # feature extraction never start)
    (["--model", "recipe:compass-probe", "--param", "Cs=abc"],
     "Cs must be a non-empty list of positive numbers"),
    (["--model", "recipe:compass-probe", "--param", "Cs=[]"], "Cs must be a non-empty list"),
    (["--model", "recipe:compass-probe", "--param", "Cs=[-1]"], "Cs must be a non-empty list"),
    (["--model", "recipe:compass-probe", "--param", "output=foo"],
     "output must be 'probability' or 'direction', not 'foo'"),
    (["--model", "recipe:compass-probe", "--param", "inner_splits=1"],
     "inner_splits must be an integer >= 2, not 1"),
    (["--model", "recipe:compass-probe", "--param", "batch_size=0"],
     "batch_size must be an integer >= 1, not 0"),
    (["--model", "recipe:compass-published", "--param", "min_rho=-1"],
     "min_rho must be a number in [0, 1], not -1"),
    (["--model", "recipe:compass-published", "--param", "min_matched=abc"],
     "min_matched must be an integer >= 1"),
    (["--model", "recipe:compass-published", "--param", "cohort_map=foo"],
     "cohort_map must map our cohort names to COMPASS's"),
    (["--model", "recipe:compass-published", "--param", "exclude_published=Liu"],
     "exclude_published must be a list of COMPASS cohort names"),
    (["--model", "recipe:compass-published", "--param", "exclude_published=5"],
     "exclude_published must be a list of COMPASS cohort names"),
    (["--model", "recipe:compass-probe", "--param", "level=genes"],
     "level must be one of 'auto', 'gene', 'geneset', 'concept', not 'genes'"),
    (["--model", "recipe:compass-probe", "--param", "level=gene", "--param", "readout=pc1"],
     "level 'gene' has only the readout(s) 'mean', not 'pc1'"),
    (["--model", "recipe:compass-published", "--param", "level=gene"],
     "COMPASS published no gene-level readouts"),
    (["--model", "amu:compass", "--param", "encoder_lr_scale=-1"],
     "encoder_lr_scale must be a number >= 0, got -1"),
    (["--model", "amu:compass", "--param", 'model_overrides={"readout": "foo"}'],
     "readout must be 'patient' or 'mean', got 'foo'"),
    (["--model", "amu:compass", "--param", "model_overrides=x"],
     "model_overrides must map config keys to values"),
    (["--model", "amu:tiny", "--param", 'model_overrides={"dropoutt": 0.1}'],
     "amu:tiny has no config key 'dropoutt'"),
])
def test_amu_train_validates_options(tmp_path, table_csv, args, expected):
    out = tmp_path / "model"
    res = CliRunner().invoke(amu, ["train", "--table", str(table_csv[0]), "--out", str(out),
                                   *args])
    _one_line_error(res, expected)
    assert not out.exists()


@pytest.mark.parametrize("column,value,expected", [
    ("response", 2.0, "response 2 (sample"),
    ("response", "yes", "response 'yes'"),
    ("CD8A", "abc", "gene CD8A holds 'abc'"),
    ("CD8A", np.inf, "gene CD8A holds an infinite value"),
])
def test_bad_labels_and_values_in_a_table_are_refused(tmp_path, table_csv, column, value,
                                                      expected):
    table = table_csv[1].copy()
    table[column] = table[column].astype(object)
    table.loc[3, column] = value
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    for cmd in (["train", "--table", str(path), "--model", "logreg", "--out",
                 str(tmp_path / "m")],
                ["evaluate", str(path), "--models", "logreg", "--out", str(tmp_path / "e")],
                ["audit", str(path), "--out", str(tmp_path / "a")]):
        res = CliRunner().invoke(amu, cmd)
        _one_line_error(res, expected)
    assert not any((tmp_path / d).exists() for d in ("m", "e", "a"))


def test_run_overwrite_never_removes_a_folder_that_is_not_a_run(tmp_path):
    d = tmp_path / "thesis"
    d.mkdir()
    (d / "chapter1.tex").write_text("...")
    res = CliRunner().invoke(amu, ["run", "--quick", "--out", str(d), "--overwrite"])
    _one_line_error(res, "is not an amu run folder")
    assert (d / "chapter1.tex").is_file()
    f = tmp_path / "file"
    f.write_text("x")
    res = CliRunner().invoke(amu, ["run", "--quick", "--out", str(f)])
    _one_line_error(res, "is a file; give a run folder")
