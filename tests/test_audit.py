"""Leakage audit: planted leaks are found with their evidence, clean tables pass, the paper's
own table fails for the documented reasons, the shared cohorts are clean."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amu_tf.data.cohort_table import META_COLUMNS, gene_columns, write_table
from amu_tf.evaluation.audit import LEAK, OK, WARNING, LeakageAudit, audit_table, detect_format
from components.audit import load_audit_report, run_audit

GENES = gene_columns()


def make_table(n=60, cohorts=("A", "B"), seed=0, rate=0.4) -> pd.DataFrame:
    """A clean cohort table: log2-scale noise, labels independent of everything."""
    rng = np.random.default_rng(seed)
    frames = []
    for c in cohorts:
        x = rng.uniform(2, 10, size=len(GENES)) + rng.normal(0, 1, size=(n, len(GENES)))
        meta = pd.DataFrame({col: [""] * n for col in META_COLUMNS})
        meta["sample"] = [f"{c}_{i}" for i in range(n)]
        meta["patient"] = meta["sample"]
        meta["cohort"] = c
        meta["response"] = (rng.random(n) < rate).astype(float)
        frames.append(pd.concat([meta, pd.DataFrame(np.clip(x, 0, None), columns=GENES)], axis=1))
    return pd.concat(frames, ignore_index=True)


def finding(result, name):
    (f,) = [f for f in result.findings if f.name == name]
    return f


def _amu(args):
    from pipelines.cli import amu

    return CliRunner().invoke(amu, args)


def test_clean_table_is_clean_and_report_written(tmp_path):
    df = make_table()
    art, result = run_audit(df, tmp_path / "audit")
    assert not result.has_leak, result.lines()
    assert {f.severity for f in result.findings} <= {OK, WARNING}
    assert art.type == "AuditReport" and art.properties["has_leak"] is False
    report = load_audit_report(art.uri)
    assert report["verdict"].startswith("CLEAN") and report["n_samples"] == 120
    assert "# Leakage audit" in (art.path / "report.md").read_text()
    names = {f["name"] for f in report["findings"]}
    assert {"row_sum vs label", "library_size vs label", "zero_count vs label",
            "missing_count vs label", "exact duplicate rows", "near-duplicate rows",
            "duplicated sample ids", "cohort vs label"} <= names


def test_planted_row_sum_leak_is_found(tmp_path):
    df = make_table()
    # the paper's kind of leak: every row rescaled to a fixed sum that depends on the label
    x = df[GENES].to_numpy()
    target = 900.0 + 0.5 * df["response"].to_numpy()
    df[GENES] = x + ((target - x.sum(1)) / len(GENES))[:, None]
    result = audit_table(df)
    f = finding(result, "row_sum vs label")
    assert f.severity == LEAK and f.numbers["separation"] == pytest.approx(1.0)
    assert f.numbers["auc"] > 0.5 and "responders higher" in f.evidence
    assert "separates the classes perfectly" in f.evidence
    assert result.has_leak
    # the same table through the CLI: findings printed, exit status 1
    write_table(df, tmp_path / "t.csv")
    r = _amu(["audit", str(tmp_path / "t.csv")])
    assert r.exit_code == 1, r.output
    assert "LEAK    row_sum vs label" in r.output and "LEAKY" in r.output
    # a weaker offset is a warning, not a leak: the thresholds are applied as documented
    df2 = make_table(seed=1)
    rng = np.random.default_rng(5)
    x = df2[GENES].to_numpy()
    target = 900.0 + 0.5 * df2["response"].to_numpy() + rng.normal(0, 0.3, len(df2))
    df2[GENES] = x + ((target - x.sum(1)) / len(GENES))[:, None]
    f2 = finding(audit_table(df2), "row_sum vs label")
    assert 0.8 <= f2.numbers["separation"] < 0.95 and f2.severity == WARNING


def test_planted_duplicates_counted_exactly():
    df = make_table()
    resp = np.nonzero(df["response"].to_numpy() == 1)[0]
    non = np.nonzero(df["response"].to_numpy() == 0)[0]
    copies = df.iloc[np.r_[resp[:7], non[:3], resp[:2]]].copy()  # resp[:2] copied twice
    copies["sample"] = [f"copy{i}" for i in range(len(copies))]
    copies["patient"] = copies["sample"]
    result = audit_table(pd.concat([df, copies], ignore_index=True))
    f = finding(result, "exact duplicate rows")
    assert f.severity == LEAK
    assert f.numbers["n_duplicate_rows"] == 12 and f.numbers["n_groups"] == 10
    assert f.numbers["by_class"] == {"responders": 9, "non_responders": 3, "unlabeled": 0}
    assert finding(result, "near-duplicate rows").severity == OK  # copies are not "near"


def test_near_duplicates_other_patient_leak_same_patient_warning():
    df = make_table()
    twin = df.iloc[[3]].copy()
    twin[GENES] = twin[GENES].to_numpy() * (1 + 1e-6)  # not identical, r ~ 1
    twin["sample"] = "twin"
    twin["patient"] = "someone_else"
    f = finding(audit_table(pd.concat([df, twin], ignore_index=True)), "near-duplicate rows")
    assert f.severity == LEAK and f.numbers["n_pairs_other_patient"] == 1
    assert "A_3 ~ twin" in f.evidence
    twin["patient"] = df.loc[3, "patient"]
    result = audit_table(pd.concat([df, twin], ignore_index=True))
    assert finding(result, "near-duplicate rows").severity == WARNING
    p = finding(result, "patients with several samples")
    assert p.severity == OK and p.numbers["n_multi_sample_patients"] == 1


def test_duplicated_sample_ids_leak():
    df = make_table()
    df.loc[5, "sample"] = df.loc[4, "sample"]
    f = finding(audit_table(df), "duplicated sample ids")
    assert f.severity == LEAK and f.numbers == {"n_ids": 1, "n_rows": 2, "examples": ["A_4"]}


def test_cohort_confounded_with_label():
    df = make_table(n=30, cohorts=("A", "B", "C"))
    df.loc[df["cohort"] == "C", "response"] = 1.0  # 30 samples, all responders
    f = finding(audit_table(df), "cohort vs label")
    assert f.severity == LEAK and f.numbers["single_class_cohorts"] == ["C"]
    # perfect confounding by label rate only (no single-class cohort of >= 10): Cramér's V
    df = make_table(n=40, cohorts=("A", "B"))
    df["response"] = (df["cohort"] == "A").astype(float)
    df.loc[[0, 41], "response"] = [0.0, 1.0]
    f = finding(LeakageAudit(min_confounded_cohort=1000).audit_table(df), "cohort vs label")
    assert f.severity == LEAK and f.numbers["cramers_v"] > 0.9


def test_paper_format_detected_and_its_leak_found(tmp_path):
    rng = np.random.default_rng(0)
    lin = rng.gamma(0.5, 1.0, size=(40, 160))
    y = np.r_[np.ones(15), np.zeros(25)]
    ratios = lin / (lin.sum(1, keepdims=True) + y[:, None] * 1e-4)  # the paper's sum + label
    df = pd.DataFrame(ratios, columns=GENES)
    df["response"] = y.astype(int)
    df.to_csv(tmp_path / "paper.csv", index=False)
    assert detect_format(df) == "paper_table"
    art, result = run_audit(tmp_path / "paper.csv", tmp_path / "audit")
    assert result.table_format == "paper_table" and result.value_scale == "ratio"
    f = finding(result, "row_sum vs label")
    assert f.severity == LEAK and f.numbers["auc"] == pytest.approx(0.0)


@pytest.mark.parametrize("content,match", [("", "is empty"),
                                           ("a,b\n1,2\n", "lacks 160 of the 160 panel gene")])
def test_bad_input_exit_2(tmp_path, content, match):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    r = _amu(["audit", str(p), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and match in r.output
    assert not (tmp_path / "out").exists()
    r = _amu(["audit", str(tmp_path / "nope.csv")])
    assert r.exit_code == 2 and "does not exist" in r.output


@pytest.mark.slow
def test_paper_table_four_row_sum_leak(shared_data, tmp_path):
    r = _amu(["audit", str(shared_data / "paper_table" / "four.csv"), "--out",
              str(tmp_path / "a")])
    assert r.exit_code == 1, r.output
    assert "LEAK    row_sum vs label: row sum of the values as given: AUC 1.000" in r.output
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    f = [f for f in report["findings"] if f["name"] == "row_sum vs label"][0]
    assert f["numbers"]["separation"] == 1.0 and report["n_samples"] == 207


@pytest.mark.slow
def test_paper_table_upsampled_73_duplicated_responders(shared_data):
    _, result = run_audit(shared_data / "paper_table" / "logfourupsample.csv")
    f = finding(result, "exact duplicate rows")
    assert f.severity == LEAK
    assert f.numbers["by_class"] == {"responders": 73, "non_responders": 0, "unlabeled": 0}
    assert "73 rows repeat an earlier row exactly (73 responder" in f.evidence


@pytest.mark.slow
def test_shared_cohorts_are_clean(shared_data, tmp_path):
    from pathlib import Path

    specs = Path(__file__).resolve().parents[1] / "examples" / "cohorts"
    r = _amu(["audit", str(specs / "GSE91061_pre.toml"), str(specs / "Liu2019.toml"),
              str(specs / "GSE78220.toml"), "--data-root", str(shared_data)])
    assert r.exit_code == 0, r.output
    assert "199 samples, 195 labeled, 71 responders" in r.output
    assert "CLEAN: no leak found" in r.output and "LEAK " not in r.output
