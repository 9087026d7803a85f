"""Bad-input probe of the signature library and of --calibrate: each case ends in exit status
2 with exactly one ``Error:`` line that says what is wrong, or in a reported omission, never a
silent one.

* a signature listed in ``signature_information_io.csv`` whose gene-set file ``IO/<name>.csv``
  is missing: named alone, one line saying the file is missing (not "its method is not
  implemented"); in a group (``sig:*``, ``sig:gsva``), left out with that reason in the
  evaluation's ``dropped_models`` and its report; ``amu zoo`` lists it as not scorable;
* a gene-set file that is not UTF-8 text (garbage bytes, UTF-16, Latin-1): the project's text
  reader's one line, not "lacks the column(s) gene_name, weight";
* ``--calibrate`` on too few samples of a class: what is short and what the user can do, not
  "use a smaller cv" (no option sets the calibration's cv).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amu_tf.biomarkers import signature_library as sl
from amu_tf.errors import InputDataError

MINI = Path(__file__).parent / "fixtures" / "signatures_mini"
NAMED = ["GA1", "GA2", "GA3", "GA4", "GB1", "GB2", "GB3", "GB4", "GB5",
         "GC1", "GC2", "GC3", "GC4", "GC5", "GC6", "GD1", "GD2", "GD3", "GD4"]
MISSING = "its gene-set file IO/MINI_GSVA.csv is missing from the signature folder"


def _amu(args):
    from pipelines.cli import amu

    return CliRunner().invoke(amu, [str(a) for a in args], catch_exceptions=False)


def _one_error(r, message: str, code: int = 2) -> str:
    """Exit ``code``, exactly one ``Error:`` line containing ``message``, no traceback."""
    errors = [line for line in r.output.splitlines() if "Error:" in line]
    assert r.exit_code == code, r.output
    assert len(errors) == 1, r.output
    assert "Traceback" not in r.output, r.output
    assert message in errors[0], errors[0]
    return errors[0]


def _cohort_table(n_per_cohort=24, cohorts=("A", "B"), n_responders=None, seed=0):
    """A cohort table the mini signatures can score (their genes, 300 others) with every
    panel gene (a cohort-table CSV needs them); responders carry the GC genes' signal."""
    from amu_tf.panel import panel_symbols

    rng = np.random.default_rng(seed)
    genes = NAMED + [f"G{i:04d}" for i in range(300)]
    genes += [g for g in panel_symbols() if g not in genes]
    parts = []
    for k, c in enumerate(cohorts):
        y = np.tile([0.0, 1.0], n_per_cohort // 2)
        if n_responders is not None:
            y = (np.arange(n_per_cohort) < n_responders).astype(float)
        x = rng.normal(5 + k, 1 + 0.5 * k, size=(n_per_cohort, len(genes)))
        x[:, 9:15] += 1.2 * y[:, None]
        meta = pd.DataFrame({"sample": [f"{c}{i}" for i in range(n_per_cohort)],
                             "patient": [f"{c}p{i}" for i in range(n_per_cohort)],
                             "cohort": c, "response": y})
        parts.append(pd.concat([meta, pd.DataFrame(np.abs(x) + 0.1, columns=genes)], axis=1))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("sig_bad_input") / "table.csv"
    _cohort_table().to_csv(path, index=False)
    return path


@pytest.fixture(autouse=True)
def _own_signature_env(monkeypatch):
    """--signatures sets $AMU_TF_SIGNATURES in this process: restored after each test."""
    monkeypatch.setenv(sl.ENV_VAR, str(MINI))


def _library(tmp_path, gene_set_bytes=None, name="MINI_GSVA") -> Path:
    """A copy of the mini library whose ``IO/<name>.csv`` is removed (``None``) or holds
    ``gene_set_bytes``."""
    folder = tmp_path / "sigs"
    shutil.copytree(MINI, folder)
    path = folder / "IO" / f"{name}.csv"
    if gene_set_bytes is None:
        path.unlink()
    else:
        path.write_bytes(gene_set_bytes)
    return folder


GARBAGE = bytes(np.random.default_rng(7).integers(0, 256, 400, dtype=np.uint8)) + b"\0"

# (case, bytes of IO/MINI_GSVA.csv (None: missing), models, what the one Error: line says)
ERROR_CASES = [
    ("missing file, named alone", None, "sig:MINI_GSVA", MISSING),
    ("missing file, named beside a group", None, "sig:specific,sig:MINI_GSVA", MISSING),
    ("garbage bytes", GARBAGE, "sig:MINI_GSVA", "is a binary file, not text"),
    ("garbage bytes break the library", GARBAGE, "sig:MINI_Mean",
     "is a binary file, not text"),
    ("gzip bytes", b"\x1f\x8b\x08\x00garbage", "sig:*", "is gzip-compressed, not a text file"),
    ("UTF-16", "gene_name,weight\nGC1,1\n".encode("utf-16"), "sig:MINI_GSVA",
     "is UTF-16-encoded text; save it as UTF-8"),
    ("Latin-1", "gene_name,weight\nGC1\xe9,1\n".encode("latin-1"), "sig:MINI_GSVA",
     "is not UTF-8 text (byte 0xe9 on line 2"),
]


@pytest.mark.parametrize("case, data, models, message", ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
def test_bad_signature_files_are_one_error_line(tmp_path, table_csv, case, data, models,
                                                message):
    folder = _library(tmp_path, data)
    r = _amu(["evaluate", table_csv, "--models", models, "--signatures", folder,
              "--protocols", "cv", "--folds", "2", "--n-boot", "0", "--out", tmp_path / "o"])
    line = _one_error(r, message)
    assert "lacks the column" not in line and "not implemented" not in line
    assert "IO/MINI_GSVA.csv" in line
    assert not (tmp_path / "o").exists()


def test_missing_gene_set_file_in_a_group_is_left_out_with_the_reason(tmp_path, table_csv):
    folder = _library(tmp_path)
    out = tmp_path / "o"
    r = _amu(["evaluate", table_csv, "--models", "sig:*,logreg", "--signatures", folder,
              "--protocols", "cv", "--folds", "2", "--n-boot", "0", "--out", out])
    assert r.exit_code == 0, r.output
    params = json.loads((out / "artifact.json").read_text())["parameters"]
    assert MISSING in params["dropped_models"]["sig:MINI_GSVA"]
    assert "sig:MINI_GSVA" not in params["models"]
    assert {"sig:MINI_Mean", "sig:MINI_ssGSEA", "sig:MINI_COX", "sig:MINI_PredictIO",
            "logreg"} <= set(params["models"])
    assert "`sig:MINI_GSVA`" in (out / "report.md").read_text()


def test_zoo_lists_a_missing_gene_set_file_as_not_scorable(tmp_path):
    folder = _library(tmp_path)
    r = _amu(["zoo", "--signatures", folder])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("sig:MINI_GSVA "))
    assert "not scorable" in line and MISSING in line
    assert "4 of 6 scorable" in r.output
    tree = next(x for x in r.output.splitlines() if x.startswith("sig:MINI_Tree "))
    assert "not scored: IPRES" in tree and "placeholder" in tree


# (case, models asked, what the group keeps, what unscorable_signatures reports)
GROUP_CASES = [
    ("sig:*", ["sig:*"], ["sig:MINI_Mean", "sig:MINI_ssGSEA", "sig:MINI_GSVA", "sig:MINI_COX",
                          "sig:MINI_PredictIO"], {"sig:MINI_GSVA"}),
    ("sig:gsva", ["sig:gsva"], ["sig:MINI_GSVA"], {"sig:MINI_GSVA"}),
    ("sig:weighted_mean", ["sig:weighted_mean"], ["sig:MINI_Mean"], set()),
]


@pytest.mark.parametrize("case, asked, expanded, reported", GROUP_CASES,
                         ids=[c[0] for c in GROUP_CASES])
def test_library_carries_a_missing_file_to_its_reported_omission(tmp_path, case, asked,
                                                                  expanded, reported):
    folder = _library(tmp_path)
    assert sl.expand_model_names(asked, folder) == expanded
    got = sl.unscorable_signatures(_cohort_table(), expanded, folder)
    assert set(got) == reported
    for why in got.values():
        assert MISSING in why and "\n" not in why
    t = sl.list_signatures(folder).set_index("model")
    assert t.loc["sig:MINI_GSVA", "scored_by"] == "" and MISSING in t.loc["sig:MINI_GSVA", "note"]
    # named alone or fitted: refused in one line; the placeholder keeps its message
    with pytest.raises(InputDataError, match=MISSING):
        sl.expand_model_names(["sig:MINI_GSVA"], folder)
    with pytest.raises(InputDataError, match=MISSING):
        sl.SignatureTransform("sig:MINI_GSVA", folder).fit(_cohort_table())
    with pytest.raises(InputDataError, match="MINI_Tree: not scored: IPRES"):
        sl.expand_model_names(["sig:MINI_Tree"], folder)
    # the other GSVA-family signatures still score without it
    s = sl.signature_scores(_cohort_table(), "sig:MINI_PredictIO", folder)
    assert np.isfinite(s).all()


def test_the_signature_table_itself_is_read_by_the_text_reader(tmp_path, table_csv):
    folder = tmp_path / "sigs"
    shutil.copytree(MINI, folder)
    info = folder / sl.INFO_FILE
    # a stray cp1252 byte in a free-text column (as in the published table) is tolerated
    info.write_bytes(info.read_bytes().replace(b"log TPM,Weighted", b"log TPM\x96,Weighted"))
    assert len(sl.list_signatures(folder)) == 6
    broken = tmp_path / "broken"  # another folder: the library is cached per folder
    shutil.copytree(MINI, broken)
    (broken / sl.INFO_FILE).write_bytes(b"PK\x03\x04" + GARBAGE)
    r = _amu(["evaluate", table_csv, "--models", "sig:MINI_Mean", "--signatures", broken,
              "--out", tmp_path / "o"])
    _one_error(r, "signature table")
    assert "is a zip archive, not a text file" in r.output


# ------------------------------------------------------------------ --calibrate, too few
@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    """10 rows, 4 responders (the probe's table)."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.csv"
    _cohort_table(n_per_cohort=10, cohorts=("A",), n_responders=4).to_csv(path, index=False)
    return path


CALIBRATE_CASES = [
    ("evaluate cv --folds 2", ["evaluate", "{tiny}", "--models", "logreg", "--calibrate",
                               "isotonic", "--folds", "2", "--protocols", "cv", "--n-boot", "0",
                               "--out", "{out}"],
     ["--calibrate isotonic: the smaller class has 2 sample(s) among the 5 training rows of "
      "a split", "uses 5 folds and needs at least 5 of each class", "more samples",
      "fewer protocol folds (--folds", "leave out --calibrate"]),
    ("train --calibrate", ["train", "--table", "{tiny}", "--model", "logreg", "--calibrate",
                           "sigmoid", "--out", "{out}"],
     ["the smaller class has 4 sample(s) among the 10 training rows",
      "uses 5 folds and needs at least 5 of each class", "more samples",
      "leave out --calibrate"]),
]


@pytest.mark.parametrize("case, args, says", CALIBRATE_CASES, ids=[c[0] for c in CALIBRATE_CASES])
def test_calibration_with_too_few_samples_says_what_is_short(tmp_path, tiny_csv, case, args,
                                                             says):
    out = tmp_path / "o"
    r = _amu([a.format(tiny=tiny_csv, out=out) for a in args])
    line = _one_error(r, says[0])
    for s in says[1:]:
        assert s in line, line
    assert "smaller cv" not in line
    assert not out.exists()


def test_calibration_shortage_is_a_typed_one_line_error():
    from amu_tf.evaluation.calibration import CalibratedClassifier
    from amu_tf.training import make_estimator
    from amu_tf.training.probability_calibration import (TooFewForCalibration,
                                                         out_of_fold_probabilities)

    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.array([1, 1, 1] + [0] * 9)
    with pytest.raises(TooFewForCalibration) as exc:
        out_of_fold_probabilities(make_estimator("logreg"), X, y)
    assert (exc.value.n_min, exc.value.n_rows, exc.value.cv) == (3, 12, 5)
    assert isinstance(exc.value, InputDataError) and "\n" not in str(exc.value)
    with pytest.raises(InputDataError, match="3 sample") as exc:
        CalibratedClassifier(make_estimator("logreg"), method="sigmoid").fit(X, y)
    assert str(exc.value).startswith("--calibrate sigmoid: the smaller class has 3 sample(s) "
                                      "among the 12 training rows of a split")
    assert "\n" not in str(exc.value)
