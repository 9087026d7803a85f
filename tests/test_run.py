"""`amu run` end to end (quick), its leak stop, and `amu evaluate` on the paper's table."""

import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amu_tf.panel import panel_symbols
from pipelines.cli import amu


@pytest.mark.slow
def test_amu_run_quick_end_to_end(tmp_path, browser_check):
    """The real command in a fresh process with a clean environment, in which the user asked
    TensorFlow for all its C++ logs (TF_CPP_MIN_LOG_LEVEL=0): every step's artifact, the
    report, the export, and only amu-tf's own lines (no TensorFlow, absl, XLA or CUDA line)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    export_dir = tmp_path / "served"
    env = {k: os.environ[k] for k in ("PATH", "HOME", "AMU_TF_CACHE_DIR", "AMU_TF_KERNELS")
           if k in os.environ}
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--quick", "--out",
                           str(out), "--export-dir", str(export_dir)], capture_output=True,
                          text=True, env=env, timeout=900)
    res = SimpleNamespace(exit_code=done.returncode, output=done.stdout + done.stderr)
    assert res.exit_code == 0, res.output
    lines = [ln for chunk in res.output.splitlines() for ln in chunk.split("\r")]
    foreign = [ln for ln in lines if re.search(
        r"Warning|WARNING|Traceback|^[IWEF]\d{4} |cuda|CUDA|oneDNN|absl|XLA|xla_|"
        r"tensorflow/|node_def", ln)]
    assert not foreign, foreign[:5]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["options"]["models"]
    # a second run into the finished folder is refused (it would mix two runs), before work
    again = CliRunner().invoke(amu, ["run", "--quick", "--out", str(out)])
    assert again.exit_code == 2 and "pass --overwrite to replace it" in again.output
    for step in ("ingest", "audit", "transform", "train", "evaluate", "interpret", "report"):
        assert (out / step / "artifact.json").is_file() or \
            any((p / "artifact.json").is_file() for p in (out / step).iterdir()), step
    ev = out / "evaluate"
    assert f"report: {out / 'report' / 'report.md'}" in res.output
    report = (out / "report" / "report.md").read_text()
    for heading in ("## Data", "## Leakage audit", "## Protocols", "## Results", "## Blessing",
                    "## Trained models against the best biomarker"):
        assert heading in report
    assert "amu:tiny" in report.split("## Trained models against the best biomarker")[1]
    # the same report as one page that a browser opens with every figure
    assert f"html report: {out / 'report' / 'report.html'}" in res.output
    browser_check(out / "report" / "report.html", min_images=3)
    assert "CLEAN" in report
    for proto in ("cv", "loco"):
        assert (ev / "figures" / f"roc_pr_{proto}.png").stat().st_size > 10_000
        assert f"../evaluate/figures/roc_pr_{proto}.png" in report
    m = pd.read_csv(ev / "metrics.csv")
    assert set(m["model"]) == {"amu:tiny", "logreg", "cd8a", "cxcl9"}
    assert set(m["protocol"]) == {"cv", "loco"}
    assert (m["roc_auc_ci_low"] < m["roc_auc"]).all() and (m["roc_auc"] < m["roc_auc_ci_high"]).all()
    assert m["f1_weighted_ci_low"].notna().all()
    meta = json.loads((ev / "artifact.json").read_text())
    input_types = {i["type"] for i in meta["inputs"]}
    assert {"CohortTable", "AuditReport", "Model"} <= input_types
    blessing = json.loads((ev / "blessing.json").read_text())
    lows = m.groupby("model")["roc_auc_ci_low"].min()
    for model, b in blessing.items():
        assert b["blessed"] == bool(lows[model] > 0.5)

    # interpret: the zoo model only (no xgboost/svm in --quick); its section is in the run's
    # report (a Report artifact of the evaluation, audit and interpretation), and every
    # figure it links exists
    report_inputs = {i["type"] for i in json.loads(
        (out / "report" / "artifact.json").read_text())["inputs"]}
    assert report_inputs == {"ModelEvaluation", "AuditReport", "Interpretation"}
    interp = json.loads((out / "interpret" / "artifact.json").read_text())
    assert interp["properties"]["models"] == ["amu:tiny"]
    assert "## Interpretation" in report and "### SHAP" in report
    assert report.index("## Interpretation") > report.index("## Results")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert any("shap/" in link for link in links)
    for link in links:
        assert (out / "report" / link).resolve().is_file(), link
    top = pd.read_csv(out / "interpret" / "shap" / "top_k.csv")
    assert len(top) == 20

    # export: a TF Serving version folder in --export-dir, with the evaluation's honest metrics
    version = export_dir / "amu_default" / "1"
    assert f"exported: {version}" in res.output
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    meta = json.loads((version / "assets" / "amu_metadata.json").read_text())
    honest = meta["metrics"]["protocols"]
    assert set(honest) == {"cv", "loco"}
    amu_rows = m[m["model"] == "amu:tiny"].set_index("protocol")
    for proto, h in honest.items():
        assert h["roc_auc"]["value"] == pytest.approx(amu_rows.loc[proto, "roc_auc"], abs=1e-4)
        lo, hi = h["roc_auc"]["ci95"]
        assert lo == pytest.approx(amu_rows.loc[proto, "roc_auc_ci_low"], abs=1e-4)
        assert lo < h["roc_auc"]["value"] < hi
        assert h["n"] == amu_rows.loc[proto, "n"] > 0
    assert meta["metrics"]["blessed"] == blessing["amu:tiny"]["blessed"] is True
    pushed = json.loads((version / "artifact.json").read_text())
    assert [i["type"] for i in pushed["inputs"]] == ["Model", "ModelEvaluation"]


def test_verbose_lets_the_library_logs_through():
    """``amu --verbose`` (and AMU_TF_VERBOSE=1) keep the user's TF_CPP_MIN_LOG_LEVEL, so
    TensorFlow's own start-up lines show; without it they do not."""
    import os
    import subprocess
    import sys

    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"

    def tf_lines(args):
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", *args],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        return [ln for ln in (done.stdout + done.stderr).splitlines()
                if re.match(r"[IWEF]\d{4} ", ln)]

    assert tf_lines(["--verbose", "zoo"])  # (amu run --quick above shows the quiet side)


def test_verbose_is_read_before_the_command(monkeypatch):
    from pipelines.cli import _verbose_requested

    monkeypatch.delenv("AMU_TF_VERBOSE", raising=False)
    assert _verbose_requested(["--verbose", "run"])
    assert not _verbose_requested(["run", "--verbose"])  # a sub-command's option, not ours
    assert not _verbose_requested(["run", "--quick"]) and not _verbose_requested([])
    monkeypatch.setenv("AMU_TF_VERBOSE", "1")
    assert _verbose_requested(["run"])


def test_amu_run_stops_on_a_leak(tmp_path, monkeypatch):
    import components.audit

    leaky = SimpleNamespace(has_leak=True, leaks=["row sum"],
                            lines=lambda: ["LEAK    row_sum vs label: AUC 1.0"])

    def fake_audit(table, output_uri, **kw):
        output_uri.mkdir(parents=True)
        return SimpleNamespace(uri=output_uri), leaky

    monkeypatch.setattr(components.audit, "run_audit", fake_audit)
    out = tmp_path / "run"
    res = CliRunner().invoke(amu, ["run", "--quick", "--out", str(out)])
    assert res.exit_code == 1
    assert "leak" in res.output and "--allow-leaks" in res.output
    assert not (out / "train").exists() and not (out / "evaluate").exists()


def _toy_paper_table(path, n=80, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, size=(n, 160))
    x /= x.sum(1, keepdims=True)
    df = pd.DataFrame(x, columns=panel_symbols()[::-1])  # column order need not be the panel's
    df["response"] = (rng.random(n) < 0.35).astype(int)
    df.to_csv(path, index=False)
    return path


def test_evaluate_paper_table_marks_the_leaky_protocol(tmp_path):
    src = _toy_paper_table(tmp_path / "four.csv")
    out = tmp_path / "ev"
    res = CliRunner().invoke(amu, ["evaluate", "--paper-table", str(src), "--out", str(out),
                                   "--models", "logreg", "--n-boot", "100", "--folds", "3"])
    assert res.exit_code == 0, res.output
    m = pd.read_csv(out / "metrics.csv")
    assert dict(zip(m["protocol"], m["protocol_label"])) == {"cv": "cv", "paper": "paper (LEAKY)"}
    assert m.set_index("protocol").loc["paper", "leaky"] and not m.set_index("protocol").loc["cv", "leaky"]
    assert "LEAKY" in (out / "table_paper.md").read_text()
    assert "LEAKY" not in (out / "table_cv.md").read_text()
    report = (out / "report.md").read_text()
    assert "LEAKY results inside" in report and "four.csv" in report
    blessing = json.loads((out / "blessing.json").read_text())
    assert "cv" in blessing["logreg"]["auc_ci_low"] and "paper" not in blessing["logreg"]["auc_ci_low"]


def test_evaluate_errors(tmp_path):
    res = CliRunner().invoke(amu, ["evaluate"])
    assert res.exit_code == 2 and "TABLE or --paper-table" in res.output
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"A": [1, 2], "response": [0, 1]}).to_csv(bad, index=False)
    res = CliRunner().invoke(amu, ["evaluate", "--paper-table", str(bad)])
    assert res.exit_code == 2 and "not the paper's table" in res.output


@pytest.mark.slow
def test_paper_protocol_inflates_a_random_forest_on_the_papers_table(shared_data, tmp_path):
    out = tmp_path / "ev"
    res = CliRunner().invoke(amu, ["evaluate", "--paper-table",
                                   str(shared_data / "paper_table" / "four.csv"), "--out",
                                   str(out), "--models", "rf", "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    auc = pd.read_csv(out / "metrics.csv").set_index("protocol")["roc_auc"]
    assert auc["paper"] > 0.85 and auc["cv"] < 0.7 and auc["paper"] - auc["cv"] > 0.2


def test_amu_run_takes_a_shell_glob_of_specs(tmp_path, monkeypatch):
    """`--cohorts dir/*.toml` expands to several paths; all of them are ingested."""
    from amu_tf.data.synthetic import generate_default_cohorts
    from pipelines import run_cmd

    specs = generate_default_cohorts(tmp_path / "data", seed=0, n_per_cohort=12)
    seen = {}

    def fake_evaluate(ctx):
        seen["cohorts"] = sorted(ctx.artifacts["ingest"].properties["cohorts"])
        ctx.artifacts["evaluate"] = SimpleNamespace(uri=ctx.step_dir("evaluate"))

    monkeypatch.setattr(run_cmd, "STEPS", [("ingest", run_cmd.step_ingest),
                                           ("evaluate", fake_evaluate)])
    out = tmp_path / "run"
    res = CliRunner().invoke(amu, ["run", "--cohorts", *map(str, specs), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert seen["cohorts"] == ["SYN_COUNTS", "SYN_TPM_A", "SYN_TPM_B"]
    assert not (out / "data").exists()  # given specs: nothing synthetic generated


def test_evaluate_a_cohort_table_artifact_external(tmp_path):
    from amu_tf.data.synthetic import generate_default_cohorts
    from components.ingest import run_ingest

    specs = generate_default_cohorts(tmp_path / "data", seed=2, n_per_cohort=30)
    table = run_ingest(specs, tmp_path / "ingest")
    out = tmp_path / "ev"
    res = CliRunner().invoke(amu, ["evaluate", str(table.uri), "--out", str(out), "--models",
                                   "logreg", "--protocols", "cv,external", "--folds", "3",
                                   "--train-cohorts", "SYN_COUNTS,SYN_TPM_A", "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    pc = pd.read_csv(out / "metrics_per_cohort.csv")
    assert list(pc["cohort"]) == ["SYN_TPM_B"] and list(pc["protocol"]) == ["external"]
    assert (out / "table_external_SYN_TPM_B.md").is_file()
    report = (out / "report.md").read_text()
    assert "train on SYN_COUNTS, SYN_TPM_A, score SYN_TPM_B" in report
    assert "Verdict: **clean**" in report
    meta = json.loads((out / "artifact.json").read_text())
    assert meta["inputs"][0]["type"] == "CohortTable"
