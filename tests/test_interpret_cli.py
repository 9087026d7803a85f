"""`amu interpret` end to end on hand-made Model artifacts (the documented layout)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from amu_tf.artifacts import Artifact, ArtifactWriter


pytestmark = pytest.mark.slow  # trains three small models (~30-60 s)

@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    import joblib
    import keras
    from xgboost import XGBClassifier

    from amu_tf.data.cohort_table import TABLE_FILE, gene_matrix, write_table
    from amu_tf.data.synthetic import make_synthetic_table
    from amu_tf.models import build_model

    root = tmp_path_factory.mktemp("interp")
    table, truth = make_synthetic_table(seed=0, signal=True, n_per_cohort=[60, 30, 50])
    table = table[table["cohort"] != "SYN_TPM_A"].reset_index(drop=True)  # no missing genes
    with ArtifactWriter(root / "cohort", "CohortTable") as w:
        write_table(table, w.path / TABLE_FILE)
    tr = ((table["cohort"] == "SYN_COUNTS") & table["response"].notna()).to_numpy()
    X = gene_matrix(table).astype("float32")
    y = table["response"].to_numpy()[tr].astype(int)
    info = {"training_cohorts": ["SYN_COUNTS"], "threshold": 0.5, "threshold_method": "fixed"}
    with ArtifactWriter(root / "xgb", "Model") as w:
        joblib.dump(XGBClassifier(n_estimators=30, max_depth=2, n_jobs=1).fit(X[tr], y),
                    w.path / "model.joblib")
        (w.path / "model_info.json").write_text(json.dumps({"model": "xgboost", **info}))
    keras.utils.set_random_seed(0)
    amu = build_model("amu:tiny")
    amu.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    amu.fit(X[tr], y, epochs=2, verbose=0)
    with ArtifactWriter(root / "amu", "Model") as w:
        amu.save(w.path / "model.keras")
        (w.path / "model_info.json").write_text(json.dumps({"model": "amu:tiny", **info}))
    return root, truth


def test_amu_interpret_writes_an_interpretation_artifact(artifacts):
    from pipelines.cli import amu

    root, truth = artifacts
    (root / "empty.gmt").write_text("")
    m = truth["response_module"]
    (root / "net.txt").write_text("protein1 protein2 combined_score\n" + "".join(
        f"{a} {b} 700\n" for i, a in enumerate(m) for b in m[i + 1:]))
    res = CliRunner().invoke(amu, [
        "interpret", "--model", str(root / "xgb"), "--model", str(root / "amu"),
        "--table", str(root / "cohort"), "--out", str(root / "interp"),
        "--gmt", str(root / "empty.gmt"), "--n-explain", "20", "--n-perm", "50",
        "--string", str(root / "net.txt"), "--network-similarity", "abs_cosine"])
    assert res.exit_code == 0, res.output
    assert "xgboost: TreeExplainer" in res.output
    assert "amu:tiny: GradientExplainer" in res.output
    assert "skipped enrichment: GMT file" in res.output and "skipped network" not in res.output
    art = Artifact.load(root / "interp", expected_type="Interpretation")
    hashes = {i["uri"]: i["content_hash"] for i in art.inputs}
    assert hashes[str(root / "xgb")] == Artifact.load(root / "xgb").content_hash
    assert str(root / "cohort") in hashes
    summary = json.loads((art.path / "summary.json").read_text())
    assert "SYN_TPM_B" in summary["rows"]["note"] and summary["rows"]["explained"] == 20
    assert summary["network"]["similarity"] == "abs_cosine"
    assert summary["network"]["n_interacting_pairs"] == 45
    assert "survival" in summary and (art.path / "survival" / "cox.csv").is_file()
    assert (art.path / "embedding" / "amu_tiny" / "tsne.png").is_file()
    assert (art.path / "interpretation.md").read_text().startswith("## Interpretation")
    from components.interpret import report_section

    report_dir = root / "report"
    report_dir.mkdir()
    md = report_section(art.path, relative_to=report_dir)
    links = [l.split("](")[1].split(")")[0] for l in md.splitlines() if l.startswith("![")]
    assert links and all(l.startswith("../interp/") for l in links)
    assert all((report_dir / l).is_file() for l in links)


def test_amu_interpret_user_errors_exit_2(artifacts, tmp_path):
    from pipelines.cli import amu

    root, _ = artifacts
    res = CliRunner().invoke(amu, ["interpret", "--model", str(root / "xgb"), "--table",
                                   str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "cohort table" in res.output and "not found" in res.output
    res = CliRunner().invoke(amu, ["interpret", "--model", str(root / "cohort"), "--table",
                                   str(root / "cohort"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "expected 'Model'" in res.output
    assert not (tmp_path / "o").exists()


def test_run_interpret_on_models_from_run_train(tmp_path):
    """The real Model artifacts (transform inside) written by components/train.py."""
    from amu_tf.data.cohort_table import TABLE_FILE, write_table
    from amu_tf.data.synthetic import make_synthetic_table
    from components.interpret import run_interpret
    from components.train import run_train

    table, truth = make_synthetic_table(seed=0, signal=True, n_per_cohort=[60, 40, 60])
    with ArtifactWriter(tmp_path / "cohort", "CohortTable") as w:
        write_table(table, w.path / TABLE_FILE)
    train = ["SYN_COUNTS", "SYN_TPM_B"]
    run_train(tmp_path / "cohort", tmp_path / "xgb", model="xgboost", transform="cohort_z",
              train_cohorts=train, inner_cv=2)
    run_train(tmp_path / "cohort", tmp_path / "amu", model="amu:tiny", transform="cohort_z",
              train_cohorts=train, epochs=3)
    art = run_interpret([tmp_path / "xgb", tmp_path / "amu"], tmp_path / "cohort",
                        tmp_path / "interp", n_explain=30, n_perm=20, quiet=True)
    assert art.properties["explainers"] == {"xgboost": "TreeExplainer",
                                            "amu:tiny": "GradientExplainer (expected gradients)"}
    s = json.loads((art.path / "summary.json").read_text())
    assert "SYN_TPM_A" in s["rows"]["note"]
    resp = set(truth["response_module"])
    assert len(resp & set(s["models"]["xgboost"]["top_genes"])) >= 5
    assert set(art.properties["skipped"]) == {"network", "enrichment"}
