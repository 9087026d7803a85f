"""Bad input to `amu ingest` (plausibility of the declared units, spec value types, spec
paths under --data-root) and to `amu predict` (nothing invented, the log2 scale, `--out`):
each case gets a non-zero exit, one `Error: ...` line without a traceback, and nothing
written (issue #17).

The cohorts are tiny and hand-made: 6 samples, the 160 panel genes plus 1000 other ids (so
the genome-wide checks apply); the predict model is amu:tiny exported once per module.
"""

from __future__ import annotations

import errno

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amu_tf.data.cohort_spec import CohortSpec
from amu_tf.data.cohort_table import gene_columns
from amu_tf.data.expression_reader import check_log2_range, expression_matrix, to_log2_scale
from amu_tf.errors import InputDataError, SpecError
from amu_tf.panel import load_panel
from pipelines.cli import amu

PANEL = load_panel()
SYMBOLS = PANEL["symbol"].tolist()
ENTREZ = PANEL["entrez_id"].astype(str).tolist()
N_EXTRA = 1000
IDS = ENTREZ + [str(990000 + i) for i in range(N_EXTRA)]
N = 6
SAMPLES = [f"P{i}_pre" for i in range(N)]


# ------------------------------------------------------------------------------ helpers
def _tpm(seed=0):
    """genes x samples TPM (columns sum to 1e6) over all IDS."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(1.5, 2.0, size=(len(IDS), N))
    return x / x.sum(axis=0) * 1e6


def _counts(seed=0):
    rng = np.random.default_rng(seed + 1)
    return rng.poisson(_tpm(seed) * 20.0).astype(float)  # libraries of about 2e7 reads


SPEC = """name = "TINY"
[expression]
file = "{file}"
layout = "genes_x_samples"
units = "{units}"
gene_id = "entrez"
{expr_extra}
[clinical]
file = "{clin}"
sample = "sample"
patient = "patient"
response = "BOR"
treatment_value = "nivolumab"
timepoint_value = "pre"
{clin_extra}
{tail}
"""


def _cohort(root, values=None, units="counts", file="expr.csv", clin="clin.tsv",
            expr_extra="", clin_extra="", tail="", head=""):
    """Write expr.csv (genes x samples, Entrez ids), clin.tsv and spec.toml under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    values = _counts() if values is None else values
    df = pd.DataFrame(values, index=IDS, columns=SAMPLES)
    df.to_csv(root / "expr.csv")
    pd.DataFrame({"sample": SAMPLES, "patient": [s[:2] for s in SAMPLES],
                  "BOR": ["CR", "PR", "SD", "PD", "PD", "SD"]}).to_csv(
        root / "clin.tsv", sep="\t", index=False)
    spec = root / "spec.toml"
    spec.write_text(head + SPEC.format(file=file, units=units, clin=clin, expr_extra=expr_extra,
                                       clin_extra=clin_extra, tail=tail))
    return spec


def _one_line_error(res, code=2) -> str:
    assert res.exit_code == code, (res.exit_code, res.output)
    assert "Traceback" not in res.output, res.output
    err = res.stderr.strip()
    assert err.startswith("Error: ") and "\n" not in err, err
    return err


def _ingest_fails(tmp_path, spec, data_root=None) -> str:
    out = tmp_path / "runs" / "cohort"
    args = ["ingest", str(spec), "--out", str(out)]
    if data_root is not None:
        args += ["--data-root", str(data_root)]
    err = _one_line_error(CliRunner().invoke(amu, args))
    assert not out.exists()
    left = list(out.parent.iterdir()) if out.parent.exists() else []
    assert left == [], left  # no temporary folder either
    return err


def test_tiny_cohorts_are_valid(tmp_path):
    """The fixtures themselves pass, in every unit (so each failure below is the one change)."""
    tpm = _tpm()
    for i, (units, values) in enumerate([("counts", _counts()), ("tpm", tpm), ("fpkm", tpm / 3),
                                         ("log2(tpm+1)", np.log2(tpm + 1)),
                                         ("log2(tpm+0.001)", np.log2(tpm + 0.001))]):
        spec = _cohort(tmp_path / f"c{i}", values, units)
        out = tmp_path / f"out{i}"
        res = CliRunner().invoke(amu, ["ingest", str(spec), "--out", str(out)])
        assert res.exit_code == 0, (units, res.output)
        assert "TINY: 6 samples" in res.output


# ------------------------------------------------------------------- 1. units plausibility
def _v(kind):
    """A genes x samples matrix that is wrong for its declared unit, by ``kind``."""
    tpm, counts = _tpm(), _counts()
    if kind == "count_1e308":
        counts[5, 2] = 1e308  # finite library of 1e308
        return counts
    if kind == "count_overflow":
        counts[[5, 7], 2] = 1e308  # the library size overflows to inf
        return counts
    if kind == "count_zero_library":
        counts[:, 4] = 0
        return counts
    if kind == "tpm_as_counts":
        return tpm
    if kind == "rounded_tpm_as_counts":
        return np.round(tpm)
    if kind == "log2_as_counts":
        return np.log2(tpm + 1)
    if kind in ("counts_as_tpm", "counts_as_fpkm", "counts_as_log2", "counts_as_log2_001"):
        return counts
    if kind == "tpm_times_3":
        return tpm * 3
    if kind == "fpkm_1e9":
        return tpm * 1000
    if kind == "tpm_overflow":
        tpm[[1, 2], 0] = 1e308
        return tpm
    if kind == "log2_001_as_tpm":
        return np.log2(tpm + 0.001)
    if kind == "log2_as_tpm":
        return np.log2(tpm + 1)
    if kind == "tpm_tiny_sums":
        x = np.zeros_like(tpm)
        x[0] = 100.0
        return x
    if kind == "tpm_as_log2":
        return tpm
    if kind == "log2_1e300":
        x = np.log2(tpm + 0.001)
        x[3, 1] = 1e300
        return x
    if kind == "log2_minus_50":
        x = np.log2(tpm + 1)
        x[8, 5] = -50.0
        return x
    if kind == "log2_inf":
        x = np.log2(tpm + 1)
        x[8, 5] = np.inf
        return x
    raise KeyError(kind)


@pytest.mark.parametrize("kind, units, message", [
    ("count_1e308", "counts", r"sample P2_pre has a library size of 1e308 .*not plausible raw counts"),
    ("count_overflow", "counts", r"library size of sample P2_pre overflows to inf"),
    ("count_zero_library", "counts", r"sample P4_pre has a library size of 0"),
    ("tpm_as_counts", "counts", r"of sample P0_pre are not whole numbers: they look like TPM, not raw counts"),
    ("rounded_tpm_as_counts", "counts", r"every sample sums to 1e6 .*look like TPM, not raw counts"),
    ("log2_as_counts", "counts", r"look like log2 values, not raw counts"),
    ("counts_as_tpm", "tpm", r"sample P0_pre holds whole numbers summing to 2e7: the values look like raw counts, not tpm"),
    ("counts_as_fpkm", "fpkm", r"sample P0_pre holds whole numbers summing to 2e7: .*raw counts, not fpkm"),
    ("log2_001_as_tpm", "tpm", r"negative value .* but units = 'tpm'; the values look like log2"),
    ("tpm_times_3", "tpm", r"sums to 3e6 \(a TPM column sums to 1e6 at most\)"),
    ("fpkm_1e9", "fpkm", r"sums to 1e9 \(an FPKM column sums to well below 1e8\)"),
    ("tpm_overflow", "tpm", r"column sum of sample P0_pre overflows to inf"),
    ("log2_as_tpm", "tpm", r"values of sample P0_pre are at most .* over 1160 genes: they look like log2 values, not tpm"),
    ("tpm_tiny_sums", "tpm", r"sample P0_pre sums to 1e2 over 1160 genes"),
    ("counts_as_log2", "log2(tpm+1)", r"values up to .* \(sample P0_pre\) look like raw counts, not log2\(tpm\+1\)"),
    ("counts_as_log2_001", "log2(tpm+0.001)", r"look like raw counts, not log2\(tpm\+0.001\)"),
    ("tpm_as_log2", "log2(tpm+1)", r"look like TPM, not log2\(tpm\+1\)"),
    ("log2_1e300", "log2(tpm+0.001)", r"value 1e300 \(gene \d+, sample P1_pre\) is not plausible"),
    ("log2_minus_50", "log2(tpm+1)", r"value -50 \(gene \d+, sample P5_pre\) is not plausible"),
    ("log2_inf", "log2(tpm+1)", r"NaN/inf value"),
])
def test_implausible_values_for_the_declared_unit(tmp_path, kind, units, message):
    import re

    spec = _cohort(tmp_path / "data", _v(kind), units)
    err = _ingest_fails(tmp_path, spec)
    assert re.search(message, err), err
    assert "expression file expr.csv" in err  # names the file


def test_library_call_raises_and_no_nonfinite_reaches_a_table():
    counts = _counts()
    counts[[5, 7], 2] = 1e308
    with pytest.raises(InputDataError, match="overflows to inf"):
        expression_matrix(counts, IDS, SAMPLES, "counts", "entrez")
    with pytest.raises(InputDataError, match="overflows to inf"):
        to_log2_scale(counts, "counts")
    x = np.log2(_tpm() + 0.001)
    x[0, 0] = 1e300
    with pytest.raises(InputDataError, match="not plausible for log2"):
        expression_matrix(x, IDS, SAMPLES, "log2(tpm+0.001)", "entrez")
    # a valid file: every value of the table is finite
    table, _ = expression_matrix(_counts(), IDS, SAMPLES, "counts", "entrez")
    assert np.isfinite(table[gene_columns()].to_numpy()).all()
    with pytest.raises(InputDataError, match=r"look like raw counts, not log2 expression"):
        check_log2_range(_counts(), IDS, SAMPLES)


def test_estimated_counts_with_some_fractions_are_accepted(tmp_path):
    """RSEM-like expected counts: a minority of fractional values is still counts."""
    counts = _counts()
    counts[::5] += 0.37  # a fifth of the genes fractional
    spec = _cohort(tmp_path / "data", counts, "counts")
    res = CliRunner().invoke(amu, ["ingest", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output


# ------------------------------------------------------------- 2. spec types and paths
@pytest.mark.parametrize("edit, message", [
    (("expr_extra", "sep = 9"), r"'sep' in \[expression\] must be a string, got int 9"),
    (("clin_extra", "sep = true"), r"'sep' in \[clinical\] must be a string, got bool"),
    (("replace", 'sample = "sample"', 'sample = ["sample"]'),
     r"'sample' in \[clinical\] must be a string, got list \['sample'\]"),
    (("replace", 'name = "TINY"', "name = 123"), r"'name' must be a string, got int 123"),
    (("head", "min_panel_fraction = true\n"), r"min_panel_fraction must be a number .*got bool True"),
    (("replace", 'file = "expr.csv"', "file = 5"), r"'file' in \[expression\] must be a string"),
    (("replace", 'response = "BOR"', "response = 1.5"), r"'response' in \[clinical\] must be a string"),
    (("replace", 'units = "counts"', "units = 3"), r"'units' in \[expression\] must be a string"),
    (("replace", 'gene_id = "entrez"', 'gene_id = ["entrez"]'), r"'gene_id' in \[expression\] must be a string"),
    (("replace", 'patient = "patient"', "patient = {a = 1}"),
     r"'patient' in \[clinical\] must be a string, got dict"),
    (("replace", 'timepoint_value = "pre"', "timepoint_value = 2024-01-01"),
     r"'timepoint_value' in \[clinical\] must be a string, got date"),
    (("tail", "[clinical.response_map]\nCR = true\nPD = 0\n"), r"response_map\['CR'\] = True, expected 0 or 1"),
    (("tail", '[survival]\nos_time = 3\nos_event = "e"\n'), r"'os_time' in \[survival\] must be a string"),
    (("head", 'survival = "OS"\n'), r"'survival' must be a \[survival\] table"),
    (("tail", "[survival]\ntime_unit = 7\n"), r"'time_unit' in \[survival\] must be a string"),
])
def test_spec_values_of_the_wrong_type(tmp_path, edit, message):
    import re

    kind, *rest = edit
    kw = {}
    if kind in ("expr_extra", "clin_extra", "tail", "head"):
        kw[kind] = rest[0]
    spec = _cohort(tmp_path / "data", **kw)
    if kind == "replace":
        text = spec.read_text()
        assert rest[0] in text
        spec.write_text(text.replace(rest[0], rest[1], 1))
    err = _ingest_fails(tmp_path, spec)
    assert re.search(message, err), err
    assert "spec.toml" in err  # names the spec


def test_spec_type_errors_from_the_library():
    base = {"name": "x", "expression": {"file": "a", "layout": "genes_x_samples",
                                        "units": "tpm", "gene_id": "symbol"},
            "clinical": {"file": "b", "sample": "s", "response": "r"}}
    with pytest.raises(SpecError, match="'name' must be a string"):
        CohortSpec.from_dict({**base, "name": 123})
    with pytest.raises(SpecError, match="min_panel_fraction must be a number"):
        CohortSpec.from_dict({**base, "min_panel_fraction": True})
    with pytest.raises(SpecError, match=r"'expression' must be a \[expression\] table"):
        CohortSpec.from_dict({**base, "expression": "a.csv"})
    assert CohortSpec.from_dict(base).min_panel_fraction == 0.8


@pytest.mark.parametrize("key, value", [
    ("file", "../../../../etc/passwd"),
    ("file", "cohorts/../../outside.csv"),
    ("clin", "../outside_clin.tsv"),
    ("ensembl", "../../map.tsv"),
])
def test_relative_spec_paths_may_not_leave_the_data_root(tmp_path, key, value):
    root = tmp_path / "data"
    kw = {"file": "expr.csv"}
    if key == "file":
        kw["file"] = value
    elif key == "clin":
        kw["clin"] = value
    spec = _cohort(root, **kw)
    # the escaping targets exist: refused for where they are, not for being missing
    (tmp_path / "outside.csv").write_text("x\n")
    (tmp_path / "outside_clin.tsv").write_text("x\n")
    if key == "ensembl":
        text = spec.read_text().replace('gene_id = "entrez"', 'gene_id = "ensembl"')
        spec.write_text(text.replace("[clinical]", f'ensembl_map = "{value}"\n[clinical]'))
    err = _ingest_fails(tmp_path, spec, data_root=root)
    assert "leads outside the data root" in err and repr(value) in err, err


def test_absolute_paths_and_paths_inside_the_root_are_allowed(tmp_path):
    root = tmp_path / "data"
    spec = _cohort(root, file="sub/../expr.csv")  # a '..' that stays inside is fine
    s = CohortSpec.from_toml(spec, data_root=root)
    assert s.expression_file == root / "sub/../expr.csv"
    spec.write_text(spec.read_text().replace('"sub/../expr.csv"', f'"{root / "expr.csv"}"'))
    s = CohortSpec.from_toml(spec, data_root=tmp_path / "elsewhere")
    assert s.expression_file == root / "expr.csv"  # absolute: explicit, accepted
    with pytest.raises(SpecError, match="leads outside the data root"):
        CohortSpec.from_dict({"name": "x", "expression": {"file": "../a", "layout": "genes_x_samples",
                                                          "units": "tpm", "gene_id": "symbol"},
                              "clinical": {"file": "b", "sample": "s", "response": "r"}},
                             base=root, confine=True)


@pytest.mark.parametrize("case, message", [
    ("directory", "is a directory, not a file"),
    ("device", "is not a regular file"),
    ("semicolons", r"no samples or no genes \(the header looks ';'-separated: set sep"),
])
def test_expression_file_that_is_not_a_table(tmp_path, case, message):
    root = tmp_path / "data"
    spec = _cohort(root)
    if case == "directory":
        (root / "adir").mkdir()
        spec.write_text(spec.read_text().replace('"expr.csv"', '"adir"'))
    elif case == "device":
        spec.write_text(spec.read_text().replace('"expr.csv"', '"/dev/null"'))
    else:
        df = pd.read_csv(root / "expr.csv", index_col=0)
        df.to_csv(root / "expr.csv", sep=";")
    assert message_in(message, _ingest_fails(tmp_path, spec))


def message_in(pattern, err):
    import re

    assert re.search(pattern, err), err
    return True


# ------------------------------------------------------------------------- 3. amu predict
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """amu:tiny trained by hand (test_export helper), exported to <root>/saved_models/amu."""
    from components.export import run_export
    from test_export import make_model_artifact

    root = tmp_path_factory.mktemp("badpred")
    make_model_artifact(root / "train", threshold=0.45)
    run_export(root / "train", base_dir=root / "saved_models")
    return root / "saved_models" / "amu", root / "train"


def _good_table(n=5):
    from test_export import tiny_table

    t = tiny_table(n, seed=3)
    t[gene_columns()] = t[gene_columns()] / 10.0  # the scale make_model_artifact trained on
    return t


def _predict_fails(args, out) -> str:
    err = _one_line_error(CliRunner().invoke(amu, ["predict", *map(str, args)]))
    assert not out.exists(), out
    return err


def _bad_table(case, tmp_path):
    """(input path, --out) for one bad-input ``case``."""
    t = _good_table()
    g = gene_columns()
    out = tmp_path / "o" / "p.csv"
    inp = tmp_path / "in.csv"
    if case == "string_cell":
        t[g[7]] = t[g[7]].astype(object)
        t.loc[2, g[7]] = "high"
    elif case == "no_sample_column":
        t = t.drop(columns=["sample"])
    elif case == "duplicate_ids":
        t.loc[3, "sample"] = t.loc[1, "sample"]
    elif case == "empty_id":
        t.loc[0, "sample"] = ""
    elif case == "header_only":
        t = t.iloc[:0]
    elif case == "linear_scale":
        t[g] = np.round(2.0 ** (t[g] * 10.0) * 40)  # counts-like, in the thousands
    elif case == "linear_fractional":
        t[g] = 2.0 ** (t[g] * 10.0) + 0.123
    elif case == "one_linear_sample":
        t.loc[4, g] = 2.0 ** (t.loc[4, g].astype(float) * 10.0) * 100
    elif case == "inf_cell":
        t.loc[1, g[3]] = np.inf
    elif case == "huge_negative":
        t.loc[1, g[3]] = -1e5
    elif case == "out_is_input":
        out = inp
    elif case == "out_is_dir":
        out = tmp_path / "adir"
        out.mkdir()
    elif case == "out_under_a_file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "p.csv"
    elif case == "out_not_writable":
        out = "/proc/amu-test-predictions.csv"
    elif case == "empty_file":
        inp.write_text("")
        return inp, out
    elif case == "device":
        return "/dev/null", out
    t.to_csv(inp, index=False)
    return inp, out


PREDICT_CASES = [
    ("string_cell", r"non-numeric value 'high' for gene \S+ of sample C1_s2"),
    ("no_sample_column", r"has no 'sample' column .*not invented"),
    ("duplicate_ids", r"duplicate sample id 'C1_s1' \(data rows 2, 4"),
    ("empty_id", r"1 row\(s\) have no sample id"),
    ("header_only", r"has no data rows"),
    ("linear_scale", r"look like raw counts, not log2 expression .*give it a cohort spec"),
    ("linear_fractional", r"look like linear-scale TPM/FPKM, not log2 expression"),
    ("one_linear_sample", r"\(sample C1_s4\) look like .*not log2 expression"),
    ("inf_cell", r"infinite value\(s\), first at gene \S+, sample C1_s1"),
    ("huge_negative", r"value -1e5 \(gene \S+, sample C1_s1\) is not plausible"),
    ("out_is_input", r"--out .* is the input .*would overwrite it"),
    ("out_is_dir", r"--out .*adir is a directory; give a file path"),
    ("out_under_a_file", r"cannot write --out .*afile is not a directory"),
    ("out_not_writable", r"cannot write --out /proc/amu-test-predictions.csv"),
    ("empty_file", r"input .* is empty"),
    ("device", r"input /dev/null is not a regular file"),
]


@pytest.mark.parametrize("case, message", PREDICT_CASES)
def test_predict_exported_model_refuses(served, tmp_path, case, message):
    import re
    from pathlib import Path

    base, _ = served
    inp, out = _bad_table(case, tmp_path)
    before = Path(inp).read_bytes() if Path(inp).is_file() else None
    err = _predict_fails(["--model", base, "--input", inp, "--out", out],
                         Path(out) if case not in ("out_is_input", "out_is_dir") else tmp_path / "none")
    assert re.search(message, err), err
    assert not (tmp_path / "o").exists()  # no folder made for --out either
    if before is not None:
        assert Path(inp).read_bytes() == before  # the input is untouched
    if case == "out_is_dir":
        assert list(Path(out).iterdir()) == []


@pytest.mark.parametrize("case, message", [
    c for c in PREDICT_CASES
    if c[0] in ("string_cell", "no_sample_column", "duplicate_ids", "header_only",
                "linear_scale", "out_is_input", "out_is_dir")
])
def test_predict_model_artifact_refuses(served, tmp_path, case, message):
    import re
    from pathlib import Path

    _, model = served
    inp, out = _bad_table(case, tmp_path)
    err = _predict_fails(["--model", model, "--input", inp, "--out", out],
                         Path(out) if case not in ("out_is_input", "out_is_dir") else tmp_path / "none")
    assert re.search(message, err), err


def test_predict_write_error_is_one_line_and_leaves_nothing(served, tmp_path, monkeypatch):
    """No space left on device while writing --out (simulated): one line naming the path,
    no temporary file and no folder made for it."""
    base, _ = served
    t = _good_table()
    t.to_csv(tmp_path / "in.csv", index=False)

    def full(self, path, *a, **k):
        with open(path, "w") as fh:
            fh.write("sample,prob")  # a partial temporary file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    out = tmp_path / "o" / "deeper" / "p.csv"
    res = CliRunner().invoke(amu, ["predict", "--model", str(base), "--input",
                                   str(tmp_path / "in.csv"), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("predicting")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert f"cannot write predictions to {out}: No space left on device" in lines[0]
    assert not (tmp_path / "o").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_predict_table_library_call_refuses(served):
    from amu_tf.serving import ExportedModel

    base, _ = served
    m = ExportedModel.load(base)
    t = _good_table()
    with pytest.raises(InputDataError, match="no 'sample' column"):
        m.predict_table(t.drop(columns=["sample"]))
    t2 = t.copy()
    t2[SYMBOLS[0]] = t2[SYMBOLS[0]].astype(object)
    t2.loc[0, SYMBOLS[0]] = "n/a?"
    with pytest.raises(InputDataError, match=rf"non-numeric value 'n/a\?' for gene {SYMBOLS[0]}"):
        m.predict_table(t2)
    with pytest.raises(InputDataError, match="no data rows"):
        m.predict_table(t.iloc[:0])
    # valid input still scores, sample ids as given
    assert m.predict_table(t)["sample"].tolist() == t["sample"].tolist()


def test_predict_still_works_for_valid_input(served, tmp_path):
    """The checks leave the documented path alone: exported model and Model artifact."""
    base, model = served
    t = _good_table()
    t.to_csv(tmp_path / "in.csv", index=False)
    for i, m in enumerate((base, model)):
        out = tmp_path / f"p{i}.csv"
        res = CliRunner().invoke(amu, ["predict", "--model", str(m), "--input",
                                       str(tmp_path / "in.csv"), "--out", str(out)])
        assert res.exit_code == 0, res.output
        pred = pd.read_csv(out, dtype={"sample": str})
        assert pred["sample"].tolist() == t["sample"].tolist()
        assert np.isfinite(pred["probability"]).all()
