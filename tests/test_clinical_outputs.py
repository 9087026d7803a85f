"""The evaluation's meta-analysis, calibration and decision curves (issue #24), written by
`amu evaluate` for every honest protocol and shown in its report, with a published signature
(``sig:<name>``) scored beside a trained model and a biomarker."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

INFO = ("signature,association,RNA.type,method,cancer.type,score.function,PMID\n"
        "TEST_Tcell,sensitive,log TPM,Weighted Mean,melanoma,geneSigMean,123\n"
        "TEST_Absent,sensitive,log TPM,Weighted Mean,melanoma,geneSigMean,456\n")


def _signature_folder(root):
    (root / "IO").mkdir(parents=True)
    (root / "signature_information_io.csv").write_text(INFO)
    rows = ["signature_name,gene_id,gene_type,gene_name,weight,entrez_id"]
    rows += [f"TEST_Tcell,,protein_coding,{g},1,NA" for g in ("CD8A", "GZMA", "PRF1", "CXCL9")]
    (root / "IO" / "TEST_Tcell.csv").write_text("\n".join(rows) + "\n")
    rows = ["signature_name,gene_id,gene_type,gene_name,weight,entrez_id"]
    rows += [f"TEST_Absent,,protein_coding,{g},1,NA" for g in ("NOTAGENE1", "NOTAGENE2")]
    (root / "IO" / "TEST_Absent.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    from amu_tf.data.synthetic import make_synthetic_table
    from pipelines.cli import amu

    tmp = tmp_path_factory.mktemp("clinical")
    table, _ = make_synthetic_table(seed=1, n_per_cohort=40)
    table.to_csv(tmp / "table.csv", index=False)
    sigs = _signature_folder(tmp / "sigs")
    out = tmp / "evaluate"
    # a signature named alone whose genes a cohort lacks is refused in one line, before work
    alone = CliRunner().invoke(amu, [
        "evaluate", str(tmp / "table.csv"), "--out", str(tmp / "alone"), "--models",
        "sig:TEST_Absent", "--signatures", str(sigs), "--protocols", "loco"])
    assert alone.exit_code == 2 and "TEST_Absent" in alone.output, alone.output
    assert not (tmp / "alone").exists()
    res = CliRunner().invoke(amu, [
        "evaluate", str(tmp / "table.csv"), "--out", str(out), "--models", "logreg,cd8a,sig:*",
        "--signatures", str(sigs), "--protocols", "cv,loco", "--folds", "3", "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    return out


def test_every_honest_protocol_gets_meta_analysis_calibration_and_decision_curves(evaluation):
    record = json.loads((evaluation / "evaluation.json").read_text())["report"]["clinical"]
    assert set(record) == {"cv", "loco"}
    for label, rec in record.items():
        pooled = pd.read_csv(evaluation / rec["meta"]["pooled"])
        assert set(pooled["model"]) == {"logreg", "cd8a", "sig:TEST_Tcell"}
        log_or = pooled[pooled["effect"] == "log_or"].set_index("model")
        assert (log_or["k"] == 3).all()  # three synthetic cohorts pooled
        assert (log_or["ci_low"] <= log_or["estimate"]).all()
        assert (log_or["estimate"] <= log_or["ci_high"]).all()
        assert (log_or["pi_low"] <= log_or["ci_low"] + 1e-9).all()  # wider than the CI
        assert log_or.loc["logreg", "estimate"] > 0  # the planted signal is found
        forest = [evaluation / f for f in rec["meta"]["forest"]]
        assert all(f.stat().st_size > 5000 for f in forest) and len(forest) == 4
        assert all(f.with_suffix(".svg").is_file() for f in forest)
        calib = pd.read_csv(evaluation / rec["calibration"]["table"])
        assert set(calib["cohort"]) == {"SYN_COUNTS", "SYN_TPM_A", "SYN_TPM_B", "pooled"}
        assert calib["brier"].between(0, 1).all()
        curve = pd.read_csv(evaluation / rec["decision_curve"]["table"])
        assert curve["threshold"].min() == pytest.approx(0.05)
        assert curve["threshold"].max() == pytest.approx(0.80)
        none = curve[curve["model"] == "treat none"]
        assert (none["net_benefit"] == 0).all()


def test_the_report_shows_them_with_tripod(evaluation):
    report = (evaluation / "report.md").read_text()
    for heading in ("## Meta-analysis across cohorts", "## Calibration", "## Decision curves",
                    "## TRIPOD+AI: what this report covers"):
        assert heading in report
    assert "sig:TEST_Tcell" in report and "sample size justification" in report
    # sig:* leaves out, and says so, the signature no cohort can score
    assert "Left out (1; they cannot be scored on these cohorts" in report
    assert "is missing): `sig:TEST_Absent`" in report
    assert "forest_loco_summary.png" in report and "reliability_loco.png" in report
    page = (evaluation / "report.html").read_text()
    assert "Meta-analysis across cohorts" in page and page.count("data:image/png") >= 6


def test_the_report_says_whether_probabilities_are_recalibrated(evaluation, tmp_path):
    from amu_tf.evaluation.calibration import CalibratedClassifier
    from amu_tf.training import make_estimator
    from pipelines.cli import amu

    assert "No model's probabilities were recalibrated" in (evaluation / "report.md").read_text()
    est = make_estimator("logreg", calibrate="sigmoid")
    assert isinstance(est, CalibratedClassifier) and est.method == "sigmoid"
    with pytest.raises(ValueError, match="choose from sigmoid, isotonic"):
        make_estimator("logreg", calibrate="beta")
    out = tmp_path / "calibrated"
    res = CliRunner().invoke(amu, [
        "evaluate", str(evaluation.parent / "table.csv"), "--out", str(out), "--models",
        "logreg", "--calibrate", "isotonic", "--protocols", "loco", "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    report = (out / "report.md").read_text()
    assert "recalibrated by isotonic regression" in report
    assert json.loads((out / "evaluation.json").read_text())["parameters"]["calibrate"] == \
        "isotonic"
