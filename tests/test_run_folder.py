"""Steps meet only through artifacts: the run configuration (TOML, written into the run
folder), `amu report RUN_DIR` and `amu export RUN_DIR` on a finished folder alone, the
Pusher's blessing check, and the train step's use of the TransformGraph."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from amu_tf.errors import SpecError
from pipelines.cli import amu
from pipelines.run_config import QUICK, RUN_CONFIG_FILE, RunConfig


def _amu(args):
    return CliRunner().invoke(amu, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small finished run without a zoo model: logreg and the CD8A biomarker on the
    synthetic default with no planted signal (so the biomarker is not blessed)."""
    root = tmp_path_factory.mktemp("run")
    res = _amu(["run", "--quick", "--no-signal", "--models", "logreg,cd8a", "--protocols", "cv",
                "--folds", "2", "--n-boot", "50", "--out", root / "run", "--export-dir",
                root / "sm"])
    assert res.exit_code == 0, res.output
    return root / "run"


# ----------------------------------------------------------------------------- configuration
def test_config_precedence_defaults_quick_file_then_command_line(tmp_path):
    assert RunConfig().folds == 5 and RunConfig.build().models[:2] == ["amu:small", "logreg"]
    quick = RunConfig.build(quick=True)
    assert (quick.folds, quick.epochs, quick.models) == (QUICK["folds"], QUICK["epochs"],
                                                         QUICK["models"])
    f = tmp_path / "run.toml"
    f.write_text('quick = true\nfolds = 4\nmodels = "logreg, cd8a"\n')
    cfg = RunConfig.build(f, folds=2)
    assert (cfg.folds, cfg.models, cfg.epochs) == (2, ["logreg", "cd8a"], QUICK["epochs"])
    # TIDE needs a whole transcriptome: only the default set for real cohorts has it
    assert "tide" not in RunConfig.build().models
    assert "tide" in RunConfig.build(cohorts=["a.toml"]).models


def test_quick_on_the_command_line_wins_over_the_file_and_flags_turn_off(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("folds = 4\nepochs = 30\nallow_leaks = true\nquick = true\n")
    cfg = RunConfig.build(f, quick=True, epochs=2)  # `--quick --epochs 2 --config f`
    assert (cfg.folds, cfg.epochs, cfg.n_boot) == (QUICK["folds"], 2, QUICK["n_boot"])
    from_file = RunConfig.build(f)  # the file's own values win over its quick preset
    assert (from_file.folds, from_file.epochs) == (4, 30) and from_file.allow_leaks
    off = RunConfig.build(f, quick=False, allow_leaks=False)  # --no-quick --no-allow-leaks
    assert (off.folds, off.n_boot, off.allow_leaks) == (4, 1000, False)
    assert RunConfig().strategy == "auto"  # what --strategy defaults to


def test_config_round_trips_through_its_toml(tmp_path):
    cfg = RunConfig.build(quick=True, models=["logreg"], gmt="sets with \"quotes\".gmt",
                          train_cohorts=["A"], seed=3)
    path = cfg.write(tmp_path / RUN_CONFIG_FILE)
    assert RunConfig.from_toml(path) == cfg


@pytest.mark.parametrize("text, message, parse_error", [
    ("folds = 'five'\n", "folds must be an integer", True),
    ("allow_leaks = 1\n", "allow_leaks must be true or false", True),
    ("modles = ['logreg']\n", "unknown key 'modles'; did you mean 'models'?", True),
    ("folds = \n", "is not valid TOML", True),
    ("strategy = 'bogus'\n", "--strategy 'bogus'", False),  # values: checked before work
    ("n_explain = 0\n", "--n-explain must be an integer >= 1", False),
])
def test_a_bad_config_file_is_one_line(tmp_path, text, message, parse_error):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    if parse_error:
        with pytest.raises(SpecError, match=message):
            RunConfig.build(f)
    res = _amu(["run", "--config", f, "--out", tmp_path / "run"])
    assert res.exit_code == 2 and message in res.output and not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, message", [
    (["--folds", "1000"], "too few samples for 1000-fold cv"),
    (["--protocols", "external", "--train-cohorts", "NOPE"], "NOPE"),
    (["--models", "logreg,logreg"], "'logreg' is given twice"),
    (["--transform", "nope"], "unknown transform 'nope'"),
])
def test_a_run_the_table_cannot_carry_fails_before_any_training(tmp_path, args, message):
    out = tmp_path / "run"
    res = _amu(["run", "--quick", "--models", "logreg", *args, "--out", out])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (out / "train").exists()


def test_the_run_writes_its_config_and_records_it(run_dir):
    cfg = RunConfig.from_toml(run_dir / RUN_CONFIG_FILE)
    assert (cfg.models, cfg.protocols, cfg.folds, cfg.n_boot, cfg.signal) == (
        ["logreg", "cd8a"], ["cv"], 2, 50, False)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["options"]["folds"] == 2


def test_a_run_repeated_from_its_config_gives_the_same_metrics(run_dir, tmp_path):
    res = _amu(["run", "--config", run_dir / RUN_CONFIG_FILE, "--out", tmp_path / "again",
                "--export-dir", tmp_path / "sm"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "again" / "evaluate" / "metrics.csv").read_text() == \
        (run_dir / "evaluate" / "metrics.csv").read_text()


# ----------------------------------------------------------------------------- artifacts only
def test_amu_report_renders_the_run_report_from_the_folder_alone(run_dir):
    first = (run_dir / "report" / "report.md").read_text()
    res = _amu(["report", run_dir])
    assert res.exit_code == 0, res.output
    again = (run_dir / "report" / "report.md").read_text()
    strip = lambda md: [ln for ln in md.splitlines() if not ln.startswith("amu-tf ")]  # noqa
    assert strip(again) == strip(first)
    for heading in ("## Data", "## Leakage audit", "## Results", "## Blessing"):
        assert heading in again
    assert "Verdict: **clean**" in again and "../evaluate/figures/roc_pr_cv.png" in again
    meta = json.loads((run_dir / "report" / "artifact.json").read_text())
    assert {i["type"] for i in meta["inputs"]} == {"ModelEvaluation", "AuditReport"}


def test_a_copied_run_folder_reports_its_own_audit(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    res = _amu(["report", copy / "."])
    assert res.exit_code == 0, res.output
    assert f"`{copy / 'audit'}`" in (copy / "report" / "report.md").read_text()
    # the recorded audit gone from both places: one line naming --audit, not "not run"
    shutil.rmtree(copy / "audit")
    meta = json.loads((copy / "evaluate" / "artifact.json").read_text())
    for ref in meta["inputs"]:
        if ref["type"] == "AuditReport":
            ref["uri"] = str(tmp_path / "gone" / "audit")
    (copy / "evaluate" / "artifact.json").write_text(json.dumps(meta))
    res = _amu(["report", copy])
    assert res.exit_code == 2 and "give the audit with --audit" in res.output
    res = _amu(["report", copy, "--audit", run_dir / "audit"])
    assert res.exit_code == 0, res.output
    assert f"`{run_dir / 'audit'}`" in (copy / "report" / "report.md").read_text()


def test_report_and_export_refuse_a_folder_that_is_not_a_run(tmp_path):
    for args in (["report", tmp_path], ["export", tmp_path]):
        res = _amu(args)
        assert res.exit_code == 2 and "is not an amu run folder" in res.output


def test_export_takes_the_evaluation_and_refuses_an_unblessed_model(run_dir, tmp_path):
    blessing = json.loads((run_dir / "evaluate" / "blessing.json").read_text())
    assert blessing["cd8a"]["blessed"] is False  # no planted signal
    res = _amu(["export", "--model", run_dir / "train" / "cd8a", "--base-dir", tmp_path])
    assert res.exit_code == 2 and "was not blessed" in res.output and "--force" in res.output
    assert not (tmp_path / "cd8a").exists()
    res = _amu(["export", "--model", run_dir / "train" / "cd8a", "--base-dir", tmp_path,
                "--force"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "cd8a" / "1" / "assets" / "amu_metadata.json").read_text())
    assert meta["metrics"]["blessed"] is False and meta["metrics"]["forced"] is True
    auc = meta["metrics"]["protocols"]["cv"]["roc_auc"]
    assert auc["ci95"][0] == pytest.approx(blessing["cd8a"]["auc_ci_low"]["cv"], abs=1e-4)
    pushed = json.loads((tmp_path / "cd8a" / "1" / "artifact.json").read_text())
    assert [i["type"] for i in pushed["inputs"]] == ["Model", "ModelEvaluation"]


def test_export_refuses_an_evaluation_that_did_not_evaluate_this_model(run_dir, tmp_path):
    import shutil

    from components.train import run_train

    run = tmp_path / "run"  # a copy of the run whose logreg is trained again (other seed)
    shutil.copytree(run_dir, run)
    shutil.rmtree(run / "train" / "logreg")
    run_train(run_dir / "ingest", run / "train" / "logreg", model="logreg", seed=7)
    res = _amu(["export", "--model", run / "train" / "logreg", "--base-dir", tmp_path / "sm"])
    assert res.exit_code == 2 and "does not vouch for" in res.output
    assert "trained again" in res.output and not (tmp_path / "sm").exists()
    res = _amu(["export", "--model", run / "train" / "logreg", "--base-dir", tmp_path / "sm",
                "--force"])  # as the error promised: the metadata says it was forced
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "sm" / "logreg" / "1" / "assets" /
                       "amu_metadata.json").read_text())
    assert meta["metrics"]["forced"] is True and "trained again" in meta["metrics"]["forced_past"]


def test_a_model_exported_without_an_evaluation_says_so(run_dir, tmp_path):
    import shutil

    alone = tmp_path / "logreg"  # outside the run folder: no evaluation to find
    shutil.copytree(run_dir / "train" / "logreg", alone)
    res = _amu(["export", "--model", alone, "--base-dir", tmp_path / "sm"])
    assert res.exit_code == 0, res.output
    assert "exported without an evaluation" in res.output
    meta = json.loads((tmp_path / "sm" / "logreg" / "1" / "assets" /
                       "amu_metadata.json").read_text())
    assert meta["metrics"]["source"].startswith("none") and meta["metrics"]["blessed"] is None


def test_export_of_a_run_without_a_zoo_model_exports_nothing_and_says_so(run_dir, tmp_path):
    res = _amu(["export", run_dir, "--base-dir", tmp_path])
    assert res.exit_code == 2 and "nothing was exported" in res.output


# ----------------------------------------------------------------------------- train <- transform
def test_train_on_the_transform_graph_gives_the_model_train_fits_itself(run_dir, tmp_path):
    from amu_tf.errors import InputDataError
    from amu_tf.training.model_bundle import ModelBundle
    from components.train import run_train
    from components.transform import run_transform

    table = run_dir / "ingest"
    graph = run_dir / "transform"
    a = ModelBundle.load(run_train(table, tmp_path / "own", model="logreg").uri)
    b = ModelBundle.load(run_train(table, tmp_path / "graph", model="logreg",
                                   transform_uri=graph).uri)
    from amu_tf.data.cohort_table import read_table

    df = read_table(table)
    pa, pb = a.predict_proba(df), b.predict_proba(df)
    np.testing.assert_array_equal(pa, pb)
    meta = json.loads((tmp_path / "graph" / "artifact.json").read_text())
    assert [i["type"] for i in meta["inputs"]] == ["CohortTable", "TransformGraph"]
    # a TransformGraph fitted on other rows (here: all rows, unlabeled ones too) is refused
    other = run_transform(table, tmp_path / "all_rows", "cohort_z")
    with pytest.raises(InputDataError, match="fitted on other rows"):
        run_train(table, tmp_path / "x", model="logreg", transform_uri=other.uri)
    with pytest.raises(InputDataError, match="not the 'rank' transform"):
        run_train(table, tmp_path / "y", model="logreg", transform="rank", transform_uri=graph)
