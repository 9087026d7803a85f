"""Issue #17, second probe: training parameters of the wrong type or range, predictions that
would overwrite what they read, sample ids that look like missing values, HTSeq summary
rows, stale artifacts, damaged metadata, and `amu run` checking its inputs before it removes
a previous run or does any work."""

import gzip
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amu_tf.data.synthetic import generate_default_cohorts, make_synthetic_table
from amu_tf.errors import ArtifactError, SpecError


@pytest.fixture(scope="module")
def table():
    return make_synthetic_table(seed=0, n_per_cohort=20)[0]


def _amu(args):
    from pipelines.cli import amu

    return CliRunner().invoke(amu, args, catch_exceptions=False)


@pytest.mark.parametrize("param,value,match", [
    ("learning_rate", -1.0, "learning_rate must be a number > 0"),
    ("learning_rate", 0, "learning_rate must be a number > 0"),
    ("batch_size", 0, "batch_size must be an integer >= 1"),
    ("patience", "abc", "patience must be an integer >= 0"),
    ("epochs", 0, "epochs must be an integer >= 1"),
    ("validation_fraction", 2, "validation_fraction must be in"),
    ("weight_decay", -0.1, "weight_decay must be a number >= 0"),
])
def test_bad_training_parameters_fail_before_any_work(table, tmp_path, param, value, match):
    from components.train import run_train

    with pytest.raises(SpecError, match=match):
        run_train(table, tmp_path / "m", model="amu:tiny", **{param: value})
    assert not (tmp_path / "m").exists()


def test_an_integer_learning_rate_is_a_learning_rate(table, tmp_path):
    from components.train import run_train

    run_train(table, tmp_path / "m", model="amu:tiny", epochs=1, patience=1,
              learning_rate=1)
    info = json.loads((tmp_path / "m" / "model_info.json").read_text())
    assert info["params"]["learning_rate"] == 1  # accepted and used, not refused


def test_predict_never_overwrites_the_model_or_the_specs_data(table, tmp_path):
    from components.train import run_train

    run_train(table, tmp_path / "model", model="logreg")
    specs = generate_default_cohorts(tmp_path / "syn", n_per_cohort=10)
    info = tmp_path / "model" / "model_info.json"
    before = info.read_bytes()
    r = _amu(["predict", "--model", str(tmp_path / "model"), "--input", str(specs[1]),
              "--out", str(info)])
    assert r.exit_code == 2 and "is the model" not in r.output  # inside the model folder
    assert "lies inside the model" in r.output and info.read_bytes() == before
    data = tmp_path / "syn" / "SYN_TPM_A" / "clinical.tsv"
    clinical = data.read_bytes()
    r = _amu(["predict", "--model", str(tmp_path / "model"), "--input", str(specs[1]),
              "--out", str(data)])
    assert r.exit_code == 2 and "a data file of the input spec" in r.output
    assert data.read_bytes() == clinical


def test_a_sample_called_NA_keeps_its_label(tmp_path):
    from components.ingest import ingest_cohort

    spec = generate_default_cohorts(tmp_path / "syn", n_per_cohort=12)[1]  # SYN_TPM_A
    folder = tmp_path / "syn" / "SYN_TPM_A"
    clin = pd.read_csv(folder / "clinical.tsv", sep="\t", dtype=str, keep_default_na=False)
    old = clin.iloc[0, 0]
    clin.iloc[0, 0] = "NA"
    clin.to_csv(folder / "clinical.tsv", sep="\t", index=False)
    expr_file = next(folder.glob("log2_tpm*"))
    with gzip.open(expr_file, "rt") as fh:
        text = fh.read()
    with gzip.open(expr_file, "wt") as fh:
        fh.write(text.replace(old, "NA"))
    df, _ = ingest_cohort(spec)
    row = df[df["sample"] == "NA"]
    assert len(row) == 1 and row["response"].notna().all()


def test_htseq_summary_rows_are_not_genes_nor_library_size(tmp_path):
    from components.ingest import ingest_cohort

    spec = generate_default_cohorts(tmp_path / "syn", n_per_cohort=12)[0]  # SYN_COUNTS
    want, _ = ingest_cohort(spec)
    counts = tmp_path / "syn" / "SYN_COUNTS" / "counts.csv.gz"
    df = pd.read_csv(counts, index_col=0)
    extra = pd.DataFrame(10 ** 7, index=["__no_feature", "__ambiguous",
                                         "__alignment_not_unique"], columns=df.columns)
    pd.concat([df, extra]).to_csv(counts)
    got, _ = ingest_cohort(spec)
    genes = [c for c in want.columns if c not in ("sample", "cohort") and
             pd.api.types.is_float_dtype(want[c])]
    np.testing.assert_allclose(got[genes].to_numpy(float), want[genes].to_numpy(float),
                               atol=1e-5, equal_nan=True)
    assert not any(str(c).startswith("__") for c in got.columns)


def test_an_artifact_whose_input_was_rewritten_is_reported_stale(tmp_path):
    from amu_tf.artifacts import Artifact
    from components.ingest import run_ingest
    from components.train import run_train

    specs = generate_default_cohorts(tmp_path / "syn", n_per_cohort=12)
    run_ingest([str(s) for s in specs], tmp_path / "ingest")
    run_train(tmp_path / "ingest", tmp_path / "model", model="logreg")
    assert Artifact.load(tmp_path / "model").stale_inputs() == []
    run_ingest([str(s) for s in specs[:2]], tmp_path / "ingest")  # re-ingested, other data
    lines = Artifact.load(tmp_path / "model").stale_inputs()
    assert len(lines) == 1 and "is stale" in lines[0] and "ingest" in lines[0]
    r = _amu(["export", "--model", str(tmp_path / "model"), "--base-dir",
              str(tmp_path / "sm"), "--name", "lr"])
    assert "warning:" in r.output and "is stale" in r.output


def test_damaged_export_metadata_is_one_line(tmp_path):
    from amu_tf.serving import ExportedModel
    from amu_tf.serving.saved_model_export import SIGNATURE_KEY

    loaded = SimpleNamespace(signatures={SIGNATURE_KEY: None})
    good = {"genes": [{"symbol": "CD8A"}], "n_genes": 1, "threshold": 0.3}
    assert ExportedModel(tmp_path, loaded, good).threshold == 0.3
    for bad in ({**good, "threshold": "abc"}, {k: v for k, v in good.items()
                                                if k != "threshold"},
                {**good, "n_genes": "many"}):
        with pytest.raises(ArtifactError, match="amu_metadata.json is damaged"):
            ExportedModel(tmp_path, loaded, bad)


def _finished_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "complete"}))
    (run / "report.md").write_text("the old report")
    return run


def test_run_checks_specs_and_export_options_before_removing_a_previous_run(tmp_path):
    run = _finished_run(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "X"\n[expression]\nfile = "nope.tsv"\nunits = "counts"\n'
                   'gene_id = "symbol"\n[clinical]\nfile = "nope2.tsv"\nsample = "s"\n'
                   'response = "r"\n')
    r = _amu(["run", "--cohorts", str(bad), "--overwrite", "--out", str(run)])
    assert r.exit_code == 2 and (run / "report.md").read_text() == "the old report"
    (tmp_path / "smfile").write_text("x")
    r = _amu(["run", "--quick", "--overwrite", "--out", str(run), "--export-dir",
              str(tmp_path / "smfile")])
    assert r.exit_code == 2 and "--export-dir" in r.output
    r = _amu(["run", "--quick", "--overwrite", "--out", str(run), "--export-name",
              "../../evil"])
    assert r.exit_code == 2 and "--export-name" in r.output
    assert (run / "report.md").read_text() == "the old report"


def test_a_run_that_fails_says_so_in_its_record(tmp_path, monkeypatch):
    import pipelines.run_cmd as run_cmd

    def boom(ctx, steps=None):
        raise RuntimeError("a step failed")

    monkeypatch.setattr(run_cmd, "run_pipeline", boom)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        _amu(["run", "--quick", "--out", str(out)])
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "a step failed" in record["error"]
    # a failed run is a leftover, not a result: a plain rerun replaces it (issue #25)
    (out / "stale").write_text("x")
    with pytest.raises(RuntimeError):
        _amu(["run", "--quick", "--out", str(out)])
    assert not (out / "stale").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_a_sample_annotation_among_the_genes_is_refused_and_featurecounts_columns_dropped(
        tmp_path):
    from amu_tf.errors import InputDataError
    from components.ingest import ingest_cohort

    specs = generate_default_cohorts(tmp_path / "syn", n_per_cohort=12)
    expr = next((tmp_path / "syn" / "SYN_TPM_A").glob("log2_tpm*"))
    df = pd.read_csv(expr, sep="\t", index_col=0)
    want, _ = ingest_cohort(specs[1])
    annotated = pd.concat([df, pd.DataFrame([np.arange(df.shape[1]) % 3 + 1],
                                            index=["batch"], columns=df.columns)])
    annotated.to_csv(expr, sep="\t", index_label=df.index.name)
    with pytest.raises(InputDataError, match="'batch' is not a known gene symbol"):
        ingest_cohort(specs[1])
    # featureCounts' Chr/Start/End/Strand/Length columns are annotation, not samples
    fc = df.copy()
    for i, c in enumerate(["Chr", "Start", "End", "Strand", "Length"]):
        fc.insert(i, c, 1000 + i)
    fc.to_csv(expr, sep="\t", index_label=df.index.name)
    got, _ = ingest_cohort(specs[1])
    assert list(got["sample"]) == list(want["sample"])


@pytest.mark.parametrize("value", ["abc", "-1", "true", "2"])
def test_transform_parameters_out_of_range_are_one_line(tmp_path, value):
    from components.ingest import run_ingest

    specs = generate_default_cohorts(tmp_path / "syn", n_per_cohort=10)
    run_ingest([str(s) for s in specs], tmp_path / "cohort")
    r = _amu(["transform", str(tmp_path / "cohort"), "--param",
              f"max_missing_fraction={value}", "--out", str(tmp_path / "t")])
    assert r.exit_code == 2 and "max_missing_fraction must be a fraction in [0, 1]" in r.output
    assert not (tmp_path / "t").exists()
