"""Issue #25, the second bad-input and fault probe: one table of cases, each a command a new
user could type, that must end in exit status 2, exactly one ``Error:`` line, no traceback and
nothing left behind, plus the formerly silent cases, each asserting the corrected result.

Classes (the issue's): one reader for every text file (encodings, binary files, damaged
artifact JSON, a BOM); tracebacks (negative seeds, transform params, disk full); an artifact
written over its own input; strict schemas with the nearest valid key; content-hash checks
between artifacts; run folders that cannot lie; gene symbols normalised at ingest and gene
coverage for every model; misleading messages.

The expensive set-up (synthetic cohorts, one ingested table, one small `amu run`, a second
table and its audit) is built once per module; each case then runs in-process (CliRunner).
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner



def _amu(args):
    from pipelines.cli import amu

    return CliRunner().invoke(amu, [str(a) for a in args], catch_exceptions=False)


def _one_error(r, message: str | None = None, code: int = 2):
    """Exit ``code``, exactly one ``Error:`` line (containing ``message``), no traceback."""
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert r.exit_code == code, r.output
    assert len(errors) == 1, r.output
    assert "Traceback" not in r.output, r.output
    if message is not None:
        assert message in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small run folder (logreg + cd8a on the synthetic cohorts it writes into RUN/data,
    whose ingest is the table of the cases), and another table (the same minus five rows)
    with its own audit."""
    from components.audit import run_audit

    base = tmp_path_factory.mktemp("second_pass")
    cfg = base / "quick.toml"
    cfg.write_text("n_per_cohort = 16\nn_perm = 10\nn_background = 5\n")
    run = base / "run"
    r = _amu(["run", "--config", cfg, "--models", "logreg,cd8a", "--protocols", "cv",
              "--folds", "2", "--n-boot", "20", "--out", run, "--export-dir", base / "exp"])
    assert r.exit_code == 0, r.output
    other = base / "other.csv"
    pd.read_csv(run / "ingest" / "table.csv.gz", dtype=str).iloc[:-5].to_csv(other,
                                                                           index=False)
    run_audit(other, base / "other_audit")
    return {"base": base, "specs": sorted((run / "data").glob("*.toml")),
            "table": run / "ingest", "other": other, "other_audit": base / "other_audit",
            "run": run}


def _copy_run(w, tmp):
    dst = tmp / "run_copy"
    shutil.copytree(w["run"], dst)
    return dst


def _spec_text(w, cohort="SYN_TPM_A"):
    spec = next(s for s in w["specs"] if Path(s).stem == cohort)
    return Path(spec).read_text(), Path(spec)


def _write_spec(w, tmp, text, name="bad.toml"):
    """A spec beside the synthetic ones (its relative paths resolve there)."""
    _, spec = _spec_text(w)
    path = spec.parent / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


def _report_unchanged(w, tmp):
    return ((tmp / "run_copy" / "report" / "report.md").read_text()
            == (w["run"] / "report" / "report.md").read_text())


def _fake_interpretation(run, summary: bytes):
    from amu_tf.artifacts import ArtifactWriter

    with ArtifactWriter(run / "interpret", "Interpretation") as wr:
        (wr.path / "summary.json").write_bytes(summary)
        (wr.path / "interpretation.md").write_text("## Interpretation\n")


@dataclass
class Case:
    """``setup(world, tmp) -> args`` of `amu`; the one error line must contain ``message``;
    ``gone`` (relative to tmp) must not exist afterwards; ``kept`` must be unchanged."""

    id: str
    setup: Callable
    message: str
    gone: tuple = ()
    code: int = 2
    kept: Callable | None = None


def _out(tmp, name="out"):
    return tmp / name


CASES = [
    # ---- 1. one reader for every user and artifact text file
    Case("spec-utf16", lambda w, t: ["ingest", _write_spec(
        w, t, _spec_text(w)[0].encode("utf-16")), "--out", _out(t)], "UTF-16", ("out",)),
    Case("spec-latin1", lambda w, t: ["ingest", _write_spec(
        w, t, ("# café\n" + _spec_text(w)[0]).encode("latin-1")), "--out", _out(t)],
        "is not UTF-8 text (byte 0xe9 on line 1", ("out",)),
    Case("spec-binary", lambda w, t: ["ingest", _write_spec(
        w, t, b"\x00\x01\x02\x03name"), "--out", _out(t)], "is a binary file", ("out",)),
    Case("spec-gzip", lambda w, t: ["ingest", _write_spec(
        w, t, gzip.compress(_spec_text(w)[0].encode())), "--out", _out(t)],
        "is gzip-compressed, not a text file", ("out",)),
    Case("config-utf16", lambda w, t: ["run", "--config", _file(
        t, "c.toml", "folds = 2\n".encode("utf-16")), "--out", _out(t)], "UTF-16", ("out",)),
    Case("config-bom-accepted", lambda w, t: ["run", "--config", _file(
        t, "c.toml", b"\xef\xbb\xbffolds = 1\n"), "--out", _out(t)],
        "--folds must be an integer >= 2", ("out",)),  # parsed: the value is what is refused
    Case("config-gmt-utf16", lambda w, t: ["run", "--config", _file(
        t, "c.toml", f"gmt = '{_file(t, 's.gmt', _gmt().encode('utf-16'))}'\n".encode()),
        "--out", _out(t)], "GMT file", ("out",)),
    Case("config-gmt-directory", lambda w, t: ["run", "--config", _file(
        t, "c.toml", f"gmt = '{_dir(t, 'sets')}'\n".encode()), "--out", _out(t)],
        "is a directory, not a file", ("out",)),
    Case("config-string-binary", lambda w, t: ["run", "--config", _file(
        t, "c.toml", f"string = '{_file(t, 'net.txt', bytes(range(256)))}'\n".encode()),
        "--out", _out(t)], "STRING file", ("out",)),
    Case("interpret-gmt-latin1", lambda w, t: [
        "interpret", "--model", w["run"] / "train" / "logreg", "--table", w["table"],
        "--gmt", _file(t, "s.gmt", _gmt().replace("GZMA", "GZMA\u00e9").encode("latin-1")),
        "--out", _out(t)], "GMT file", ("out",)),
    Case("interpret-string-utf16", lambda w, t: [
        "interpret", "--model", w["run"] / "train" / "logreg", "--table", w["table"],
        "--string", _file(t, "n.txt", "protein1 protein2 combined_score\nCD8A GZMA 900\n"
                          .encode("utf-16")), "--out", _out(t)], "UTF-16", ("out",)),
    Case("interpret-string-gz-binary", lambda w, t: [
        "interpret", "--model", w["run"] / "train" / "logreg", "--table", w["table"],
        "--string", _file(t, "n.txt.gz", gzip.compress(bytes(range(256)) * 4)), "--out", _out(t)],
        "binary file", ("out",)),
    Case("train-samples-binary", lambda w, t: [
        "transform", w["table"], "--train-samples", _file(t, "ids.txt", b"\x89PNG\r\n\x1a\n"),
        "--out", _out(t)], "a PNG image, not a text file", ("out",)),
    Case("train-samples-utf16", lambda w, t: [
        "transform", w["table"], "--train-samples", _file(t, "ids.txt", "a\nb\n".encode(
            "utf-16-le")), "--out", _out(t)], "looks like UTF-16", ("out",)),
    Case("artifact-json-garbage", lambda w, t: ["report", _damage(
        _copy_run(w, t), "evaluate/artifact.json", b"{\x9c\xff\x00garbage")],
        "artifact metadata", (), kept=_report_unchanged),
    Case("artifact-json-truncated", lambda w, t: ["report", _damage(
        _copy_run(w, t), "audit/artifact.json", b'{"type": "AuditReport", "uri"')],
        "is damaged: not valid JSON", (), kept=_report_unchanged),
    Case("interpretation-summary-garbage", lambda w, t: ["report", _with_interpretation(
        _copy_run(w, t), b"\x9c\x00\x01garbage")], "interpretation summary",
        (), kept=_report_unchanged),
    Case("interpretation-summary-not-json", lambda w, t: ["report", _with_interpretation(
        _copy_run(w, t), b"{not json")], "is damaged: not valid JSON", (),
        kept=_report_unchanged),
    Case("run-config-garbage-export", lambda w, t: ["export", _damage(
        _copy_run(w, t), "run_config.toml", b"\xff\xfe\x00\x00"), "--base-dir", _out(t)],
        "run_config.toml", ("out",)),
    Case("blessing-garbage-export", lambda w, t: [
        "export", "--model", _damage(_copy_run(w, t), "evaluate/blessing.json",
                                     b"\x93garbage") / "train" / "logreg",
        "--base-dir", _out(t)], "evaluation blessing", ("out",)),
    Case("model-info-garbage-export", lambda w, t: [
        "export", "--model", _damage(_copy_run(w, t), "train/logreg/model_info.json",
                                     b"[1, 2") / "train" / "logreg", "--base-dir", _out(t)],
        "model info", ("out",)),
    Case("damaged-h5ad", lambda w, t: [
        "predict", "--model", w["run"] / "train" / "logreg", "--input",
        _damage(_copy_table(w, t), "expression.h5ad", b"\x89HDF\r\n\x1a\ngarbage"),
        "--out", _out(t, "p.csv")], "expression.h5ad is damaged", ("p.csv",)),
    # ---- 2. tracebacks that are one line now
    Case("run-negative-seed", lambda w, t: ["run", "--seed", "-1", "--out", _out(t)],
         "--seed must be an integer >= 0", ("out",)),
    Case("config-negative-seed", lambda w, t: ["run", "--config", _file(
        t, "c.toml", b"seed = -1\n"), "--out", _out(t)],
        "got -1 (the option, or `seed =` in the --config file)", ("out",)),
    Case("run-huge-seed", lambda w, t: ["run", "--seed", "4294967296", "--out", _out(t)],
         "must be an integer from 0 to 2147483647", ("out",)),
    Case("train-huge-seed", lambda w, t: [
        "train", "--table", w["table"], "--model", "logreg", "--seed", "99999999999", "--out",
        _out(t)], "--seed must be an integer from 0 to 2147483647", ("out",)),
    Case("train-negative-seed", lambda w, t: [
        "train", "--table", w["table"], "--model", "logreg", "--seed", "-1", "--out",
        _out(t)], "--seed must be an integer >= 0", ("out",)),
    Case("evaluate-negative-seed", lambda w, t: [
        "evaluate", w["table"], "--models", "cd8a", "--seed", "-1", "--out", _out(t)],
        "--seed must be an integer >= 0", ("out", "out_audit")),
    Case("paper-eps-abc", lambda w, t: [
        "transform", w["table"], "-t", "paper", "--param", "eps=abc", "--out", _out(t)],
        "eps must be a number, got 'abc'", ("out",)),
    Case("paper-eps-zero", lambda w, t: [
        "transform", w["table"], "-t", "paper", "--param", "eps=0", "--out", _out(t)],
        "eps must be > 0", ("out",)),
    Case("transform-param-mistyped", lambda w, t: [
        "transform", w["table"], "-t", "paper", "--param", "standardise=true", "--out",
        _out(t)], "did you mean 'standardize'?", ("out",)),
    # ---- 3. an artifact is never written over its own input
    Case("transform-out-is-input", lambda w, t: [
        "transform", _copy_table(w, t), "--out", t / "table"], "is an input of this step",
        (), kept=lambda w, t: (t / "table" / "table.csv.gz").is_file()
        and (t / "table" / "expression.h5ad").is_file()),
    Case("transform-out-inside-input", lambda w, t: [
        "transform", _copy_table(w, t), "--out", t / "table" / "t"],
        "lies inside an input", ("table/t",)),
    Case("transform-out-holds-input", lambda w, t: [
        "transform", _copy_table(w, t) / "table.csv.gz", "--out", t / "table"],
        "holds an input of this step", (),
        kept=lambda w, t: (t / "table" / "table.csv.gz").is_file()),
    Case("train-out-is-table", lambda w, t: [
        "train", "--table", _copy_table(w, t), "--model", "logreg", "--out", t / "table"],
        "is an input of this step", (),
        kept=lambda w, t: (t / "table" / "table.csv.gz").is_file()),
    Case("evaluate-out-is-table", lambda w, t: [
        "evaluate", _copy_table(w, t), "--models", "cd8a", "--out", t / "table"],
        "is an input of this step", ("table_audit",),
        kept=lambda w, t: (t / "table" / "table.csv.gz").is_file()),
    Case("audit-out-is-table", lambda w, t: [
        "audit", _copy_table(w, t), "--out", t / "table"], "is an input of this step", (),
        kept=lambda w, t: (t / "table" / "table.csv.gz").is_file()),
    # ---- 4. strict schemas, one layer for specs and configs
    Case("spec-response-mapp", lambda w, t: ["ingest", _write_spec(
        w, t, _spec_text(w)[0] + "\n[clinical.response_mapp]\nCR = 1\n"), "--out", _out(t)],
        "unknown key 'response_mapp' in [clinical]; did you mean 'response_map'?", ("out",)),
    Case("spec-os-event-mean", lambda w, t: ["ingest", _write_spec(
        w, t, _spec_text(w)[0].replace("[survival]", "[survival]\nos_event_mean = "
                                       "\"censored\"")), "--out", _out(t)],
        "did you mean 'os_event_means'?", ("out",)),
    Case("spec-expression-unit", lambda w, t: ["ingest", _write_spec(
        w, t, _spec_text(w)[0].replace("[expression]", "[expression]\nunit = \"tpm\"")),
        "--out", _out(t)], "unknown key 'unit' in [expression]; did you mean 'units'?",
        ("out",)),
    Case("spec-top-level-nmae", lambda w, t: ["ingest", _write_spec(
        w, t, "nmae = 'x'\n" + _spec_text(w)[0]), "--out", _out(t)],
        "did you mean 'name'?", ("out",)),
    Case("spec-species-unknown", lambda w, t: ["ingest", _write_spec(
        w, t, "species = 'martian'\n" + _spec_text(w)[0]), "--out", _out(t)],
        "species 'martian' is not one of", ("out",)),
    Case("config-mistyped-key", lambda w, t: ["run", "--config", _file(
        t, "c.toml", b"n_bot = 10\n"), "--out", _out(t)],
        "unknown key 'n_bot'; did you mean 'n_boot'?", ("out",)),
    # ---- 5. content hashes: an artifact vouches only for what it names
    Case("evaluate-audit-of-another-table", lambda w, t: [
        "evaluate", w["table"], "--models", "cd8a", "--protocols", "cv", "--folds", "2",
        "--audit", w["other_audit"], "--out", _out(t)], "is not an audit of the table",
        ("out", "out_audit")),
    Case("report-audit-of-another-table", lambda w, t: [
        "report", _copy_run(w, t), "--audit", w["other_audit"]],
        "is not an audit of the table", (), kept=_report_unchanged),
    # ---- 6. run folders that cannot lie
    Case("overwrite-a-running-run", lambda w, t: [
        "run", "--quick", "--overwrite", "--out", _running_run(t, os.getpid())],
        "holds a run still in progress", (), kept=lambda w, t: (t / "busy" / "marker").is_file()),
    Case("plain-run-into-a-running-run", lambda w, t: [
        "run", "--quick", "--out", _running_run(t, os.getpid())],
        "holds a run still in progress", (), kept=lambda w, t: (t / "busy" / "marker").is_file()),
    Case("evaluate-failure-leaves-no-audit", lambda w, t: [
        "evaluate", w["table"], "--models", "cd8a", "--folds", "1000", "--out", _out(t)],
        "too few samples for 1000-fold cv", ("out", "out_audit")),
    Case("evaluate-unknown-external-cohort", lambda w, t: [
        "evaluate", w["table"], "--models", "cd8a", "--protocols", "external",
        "--train-cohorts", "NOPE", "--out", _out(t)], "NOPE", ("out", "out_audit")),
    # ---- 7. genes: symbols normalised at ingest, coverage for every model
    Case("mouse-symbols-refused", lambda w, t: ["ingest", _recased_spec(
        w, t, str.capitalize), "--out", _out(t)], "written like mouse symbols", ("out",)),
    # TIDE correlates with ~22,800 genes: a 600-gene table is refused when it is fitted
    Case("tide-on-a-small-table", lambda w, t: [
        "train", "--table", w["table"], "--model", "tide", "--out", _out(t)],
        "genes of TIDE's model", ("out",)),
    Case("constant-expression-predict", lambda w, t: [
        "predict", "--model", w["run"] / "train" / "logreg", "--input", _constant_csv(w, t),
        "--out", _out(t, "p.csv")], "constant expression", ("p.csv",)),
    Case("constant-expression-ingest", lambda w, t: [
        "ingest", _constant_spec(w, t), "--out", _out(t)], "constant expression", ("out",)),
]


def _file(tmp, name, data: bytes):
    p = tmp / name
    p.write_bytes(data)
    return p


def _dir(tmp, name):
    p = tmp / name
    p.mkdir(exist_ok=True)
    return p


def _gmt():
    return "IMMUNE\tdesc\tCD8A\tGZMA\tPRF1\tCXCL9\nOTHER\tdesc\tMKI67\tTOP2A\tMYC\n"


def _damage(root, rel, data: bytes):
    (root / rel).write_bytes(data)
    return root


def _with_interpretation(run, summary: bytes):
    _fake_interpretation(run, summary)
    return run


def _copy_table(w, tmp):
    dst = tmp / "table"
    if not dst.exists():
        shutil.copytree(w["table"], dst)
    return dst


def _running_run(tmp, pid):
    """A run folder whose run.json says a run of process ``pid`` on this host is running."""
    from amu_tf.artifacts import _HOST

    out = tmp / "busy"
    out.mkdir()
    (out / "marker").write_text("x")
    (out / "run.json").write_text(json.dumps({"status": "running", "pid": pid,
                                              "host": _HOST}))
    return out


def _recased_spec(w, tmp, how):
    """A copy of SYN_TPM_A whose gene symbols are rewritten by ``how``."""
    text, spec = _spec_text(w)
    folder = tmp / "recased"
    shutil.copytree(spec.parent / "SYN_TPM_A", folder)
    expr = next(folder.glob("log2_tpm*"))
    df = pd.read_csv(expr, sep="\t", index_col=0)
    df.index = [how(g) for g in df.index]
    df.to_csv(expr, sep="\t", index_label="gene_symbol")
    out = tmp / "recased.toml"
    out.write_text(text.replace("SYN_TPM_A/", "recased/"))
    return out


def _constant_spec(w, tmp):
    text, spec = _spec_text(w)
    folder = tmp / "const"
    shutil.copytree(spec.parent / "SYN_TPM_A", folder)
    expr = next(folder.glob("log2_tpm*"))
    df = pd.read_csv(expr, sep="\t", index_col=0)
    df.loc[:, :] = np.log2(1e6 / len(df) + 0.001)  # TPM summing to 1e6: only constant
    df.to_csv(expr, sep="\t", index_label="gene_symbol")
    out = tmp / "const.toml"
    out.write_text(text.replace("SYN_TPM_A/", "const/"))
    return out


def _constant_csv(w, tmp):
    from amu_tf.data.cohort_table import gene_columns

    t = pd.read_csv(w["table"] / "table.csv.gz")
    genes = [g for g in gene_columns() if g in t.columns]
    t.loc[:, genes] = 5.0
    out = tmp / "const.csv"
    t.to_csv(out, index=False)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_and_leaves_nothing(world, tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    args = case.setup(world, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = _amu(args)
    _one_error(r, case.message, case.code)
    for rel in case.gone:
        assert not (tmp_path / rel).exists(), f"{rel} left behind"
    hidden = [p for p in tmp_path.rglob(".*tmp-*")]
    assert not hidden, hidden
    if case.kept is not None:
        assert case.kept(world, tmp_path)
    new = sorted(p.name for p in tmp_path.iterdir())
    assert set(new) <= set(before), (before, new)  # nothing new beside the inputs


# ------------------------------------------------------------------ hash checks, corrected
def test_a_transform_of_another_table_is_refused(world, tmp_path):
    from components.train import run_train
    from components.transform import run_transform

    graph = run_transform(world["table"], tmp_path / "graph", "cohort_z", labeled_only=True)
    with pytest.raises(Exception, match="was fitted on another table"):
        run_train(world["other"], tmp_path / "m", model="logreg",
                  transform_uri=graph.uri)
    assert not (tmp_path / "m").exists()


def test_report_with_another_tables_audit_and_force_says_so(world, tmp_path):
    run = _copy_run(world, tmp_path)
    r = _amu(["report", run, "--audit", world["other_audit"], "--force"])
    assert r.exit_code == 0, r.output
    text = (run / "report" / "report.md").read_text()
    assert "Forced (--force)" in text and "is not an audit of the table" in text


def test_the_same_table_as_csv_and_as_folder_is_one_table(world, tmp_path):
    """An audit of the artifact folder vouches for its table.csv.gz given on its own."""
    r = _amu(["evaluate", world["table"] / "table.csv.gz", "--models", "cd8a",
              "--protocols", "cv", "--folds", "2", "--n-boot", "10",
              "--audit", world["run"] / "audit", "--out", tmp_path / "e"])
    assert r.exit_code == 0, r.output


# ------------------------------------------------------------------ readers, corrected
def test_a_spec_with_a_bom_is_read(world, tmp_path):
    text, _ = _spec_text(world)
    spec = _write_spec(world, tmp_path, b"\xef\xbb\xbf" + text.encode(), name="bom.toml")
    r = _amu(["ingest", spec, "--out", tmp_path / "out"])
    assert r.exit_code == 0, r.output


def test_train_samples_with_a_bom_and_crlf_are_read(world, tmp_path):
    ids = pd.read_csv(world["table"] / "table.csv.gz", usecols=["sample"])["sample"][:30]
    f = tmp_path / "ids.txt"
    f.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(ids).encode() + b"\r\n")
    r = _amu(["transform", world["table"], "--train-samples", f, "--out", tmp_path / "t"])
    assert r.exit_code == 0, r.output
    fitted = (tmp_path / "t" / "fit_samples.txt").read_text().split()
    assert fitted == list(ids)


def test_a_gmt_with_a_bom_is_read(tmp_path):
    from amu_tf.interpretation.gene_set_enrichment import read_gmt

    f = tmp_path / "s.gmt"
    f.write_bytes(b"\xef\xbb\xbf" + _gmt().encode())
    assert set(read_gmt(f)) == {"IMMUNE", "OTHER"}


# ------------------------------------------------------------------ disk full during export
@pytest.mark.parametrize("failure", ["tf-full", "oserror-readonly"])
def test_export_on_a_full_or_read_only_disk_is_one_line_and_leaves_nothing(
        world, tmp_path, monkeypatch, failure):
    import tensorflow as tf

    import components.export as export

    def broken(path, *args, **kwargs):
        Path(path, "saved_model.pb").write_bytes(b"half")
        if failure == "tf-full":
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(export, "write_saved_model", broken)
    r = _amu(["export", "--model", world["run"] / "train" / "logreg",
              "--base-dir", tmp_path / "models", "--name", "m"])
    line = _one_error(r)
    assert ("no space left on device" in line if failure == "tf-full"
            else "Read-only file system" in line)
    assert not (tmp_path / "models").exists()


# ------------------------------------------------------------------ run folders
def _fail_fast_run(out):
    """An `amu run` that fails after validation, after ingest wrote into the folder."""
    return _amu(["run", "--quick", "--models", "logreg", "--protocols", "external",
                 "--train-cohorts", "NOPE", "--out", out])


def test_a_failed_run_is_recorded_and_a_plain_rerun_replaces_it(tmp_path):
    out = tmp_path / "run"
    _one_error(_fail_fast_run(out), "NOPE")
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    (out / "stale_marker").write_text("x")
    r = _fail_fast_run(out)
    _one_error(r, "NOPE")  # the same failure again, not "exists already"
    assert "replacing the failed run" in r.output
    assert not (out / "stale_marker").exists()


def test_an_abandoned_run_is_replaced_by_a_plain_rerun(tmp_path):
    out = _running_run(tmp_path, pid=2 ** 22 + 12345)  # no such process
    r = _fail_fast_run(out)
    _one_error(r, "NOPE")
    assert "replacing the killed run" in r.output and not (out / "marker").exists()


def test_ctrl_c_records_failed_in_one_line(tmp_path, monkeypatch):
    import pipelines.run_cmd as run_cmd

    def interrupted(ctx):
        raise KeyboardInterrupt

    steps = [(n, interrupted if n == "audit" else f) for n, f in run_cmd.STEPS]
    monkeypatch.setattr(run_cmd, "STEPS", steps)
    out = tmp_path / "run"
    r = _amu(["run", "--quick", "--models", "logreg", "--out", out])
    _one_error(r, "interrupted", code=130)
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_sigterm_records_failed_in_one_line(tmp_path, monkeypatch):
    """`timeout` or a batch system sends SIGTERM: the run record says failed, not running."""
    import os
    import signal

    import pipelines.run_cmd as run_cmd

    def terminated(ctx):
        os.kill(os.getpid(), signal.SIGTERM)

    steps = [(n, terminated if n == "audit" else f) for n, f in run_cmd.STEPS]
    monkeypatch.setattr(run_cmd, "STEPS", steps)
    out = tmp_path / "run"
    r = _amu(["run", "--quick", "--models", "logreg", "--out", out])
    _one_error(r, "terminated (SIGTERM)", code=143)
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the run


# ------------------------------------------------------------------ genes, corrected
def _genome_wide(table_dir):
    from amu_tf.data.cohort_table import read_table

    return read_table(table_dir)


def test_lower_case_symbols_are_upper_cased_for_every_gene(world, tmp_path):
    r = _amu(["ingest", _recased_spec(world, tmp_path, str.lower), "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.output
    assert "upper-cased to their HGNC spelling" in r.output
    t = _genome_wide(tmp_path / "o")
    for gene in ("CD274", "PRF1", "GZMA", "CD8A"):  # panel and non-panel genes alike
        assert gene in t.columns and t[gene].notna().all(), gene
    from amu_tf.data.cohort_table import META_COLUMNS

    assert not [c for c in t.columns if c not in META_COLUMNS and c.islower()]


def test_mouse_symbols_are_read_when_the_spec_says_mouse(world, tmp_path):
    spec = _recased_spec(world, tmp_path, str.capitalize)
    spec.write_text('species = "mouse"\n' + spec.read_text())
    r = _amu(["ingest", spec, "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.output
    assert "mouse symbols read as their human orthologues' spelling" in r.output
    assert "CD8A" in _genome_wide(tmp_path / "o").columns


def test_il8_is_renamed_cxcl8_and_reported(world, tmp_path):
    r = _amu(["ingest", _recased_spec(world, tmp_path,
                                      lambda g: "IL8" if g == "CXCL8" else g),
              "--out", tmp_path / "o"])
    assert r.exit_code == 0 and "renamed IL8 -> CXCL8" in r.output, r.output
    assert _genome_wide(tmp_path / "o")["CXCL8"].notna().all()


def test_lower_case_csv_is_scored_like_the_original(world, tmp_path):
    t = pd.read_csv(world["table"] / "table.csv.gz", dtype={"sample": str})
    t.to_csv(tmp_path / "upper.csv", index=False)
    from amu_tf.data.cohort_table import gene_columns

    panel = set(gene_columns())
    t.rename(columns={c: c.lower() for c in t.columns if c in panel}).to_csv(
        tmp_path / "lower.csv", index=False)
    for name in ("upper", "lower"):
        r = _amu(["predict", "--model", world["run"] / "train" / "cd8a", "--input",
                  tmp_path / f"{name}.csv", "--out", tmp_path / f"{name}_p.csv"])
        assert r.exit_code == 0, r.output
    a, b = (pd.read_csv(tmp_path / f"{n}_p.csv") for n in ("upper", "lower"))
    np.testing.assert_allclose(a["probability"], b["probability"])
    assert (a["genes_present"] == 1.0).all()  # the share of the model's genes, recorded
