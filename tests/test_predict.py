"""`amu predict` and TF Serving REST bodies answered through the exported signature."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amu_tf.data.cohort_table import gene_columns
from amu_tf.errors import InputDataError
from amu_tf.panel import N_GENES, panel_entrez, panel_symbols
from amu_tf.serving import ExportedModel, answer_request, parse_request
from pipelines.cli import amu
from test_export import ImputeStandardize, keras_probability, make_model_artifact, tiny_table


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """amu:tiny exported once to <base>/amu/1 (no transform: input = model scale)."""
    from components.export import run_export

    root = tmp_path_factory.mktemp("pred")
    model = make_model_artifact(root / "train", threshold=0.45)
    art = run_export(root / "train", base_dir=root / "saved_models")
    return root / "saved_models" / "amu", model, art


def _predict(args):
    r = CliRunner().invoke(amu, ["predict", *map(str, args)])
    return r


def _table(seed=0, n=10):
    t = tiny_table(n, seed=seed)
    t[gene_columns()] = t[gene_columns()] / 10.0  # the scale make_model_artifact trained on
    return t


def test_rest_bodies_in_both_forms_match_amu_predict(served, tmp_path):
    base, model, _ = served
    t = _table(1)
    t.to_csv(tmp_path / "t.csv", index=False)
    r = _predict(["--model", base, "--input", tmp_path / "t.csv", "--out", tmp_path / "p.csv"])
    assert r.exit_code == 0, r.output
    pred = pd.read_csv(tmp_path / "p.csv", dtype={"sample": str})
    assert list(pred.columns) == ["sample", "probability", "predicted_class", "genes_present"]
    assert pred["sample"].tolist() == t["sample"].tolist()
    x = t[gene_columns()].to_numpy("float32")
    np.testing.assert_allclose(pred["probability"], keras_probability(model, x), atol=1e-5)
    np.testing.assert_array_equal(pred["predicted_class"], pred["probability"] >= 0.45)

    rows = x.tolist()
    bodies = {
        "instances": {"instances": rows},
        "instances_obj": {"signature_name": "serving_default",
                          "instances": [{"expression": r} for r in rows]},
        "inputs": {"inputs": {"expression": rows}},
        "inputs_list": {"inputs": rows},
    }
    loaded = ExportedModel.load(base)
    for key, body in bodies.items():
        for through in (loaded, loaded.signature):  # checked wrapper and the bare signature
            resp = answer_request(through, json.dumps(body))
            json.dumps(resp)  # JSON-serialisable like TF Serving's answer
            if key.startswith("instances"):
                assert set(resp) == {"predictions"} and len(resp["predictions"]) == len(t)
                prob = [p["probability"] for p in resp["predictions"]]
                cls = [p["predicted_class"] for p in resp["predictions"]]
                assert all(len(p["logits"]) == 2 for p in resp["predictions"])
            else:
                assert set(resp) == {"outputs"}
                assert set(resp["outputs"]) == {"probability", "logits", "predicted_class"}
                prob, cls = resp["outputs"]["probability"], resp["outputs"]["predicted_class"]
            np.testing.assert_allclose(prob, pred["probability"], atol=1e-6)
            np.testing.assert_array_equal(cls, pred["predicted_class"])


def test_genes_matched_by_entrez_id_in_any_order(served, tmp_path):
    base, _, _ = served
    t = _table(2)
    ref = ExportedModel.load(base).predict_table(t)
    by_entrez = t[["sample"] + gene_columns()].rename(columns=dict(zip(panel_symbols(),
                                                                       panel_entrez())))
    cols = ["sample"] + list(np.random.default_rng(0).permutation(panel_entrez()))
    by_entrez[cols + []].assign(extra_gene=1.0).to_csv(tmp_path / "e.csv", index=False)
    r = _predict(["--model", base, "--input", tmp_path / "e.csv", "--out", tmp_path / "p.csv"])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(tmp_path / "p.csv", dtype={"sample": str})
    np.testing.assert_allclose(got["probability"], ref["probability"], atol=1e-6)
    assert got["sample"].tolist() == t["sample"].tolist()


def test_cohort_spec_and_table_artifact_inputs(served, tmp_path):
    from amu_tf.data.synthetic import generate_default_cohorts
    from components.ingest import ingest_cohort, run_ingest

    base, _, _ = served
    spec = generate_default_cohorts(tmp_path / "syn", n_per_cohort=8)[0]  # all 160 genes
    r = _predict(["--model", base, "--input", spec, "--out", tmp_path / "a.csv"])
    assert r.exit_code == 0, r.output
    table, _ = ingest_cohort(str(spec))
    a = pd.read_csv(tmp_path / "a.csv", dtype={"sample": str})
    assert a["sample"].tolist() == table["sample"].tolist()
    run_ingest([str(spec)], tmp_path / "cohort")
    r = _predict(["--model", base, "--version", 1, "--input", tmp_path / "cohort",
                  "--out", tmp_path / "b.csv"])
    assert r.exit_code == 0, r.output
    b = pd.read_csv(tmp_path / "b.csv", dtype={"sample": str})
    np.testing.assert_allclose(a["probability"], b["probability"], atol=1e-6)


def test_missing_genes_imputed_in_graph_up_to_ten_percent(tmp_path):
    from amu_tf.models import build_model
    from amu_tf.serving import write_saved_model

    model = build_model("amu:tiny")
    rng = np.random.default_rng(0)
    pre = ImputeStandardize(rng.normal(5, 1, N_GENES), rng.uniform(0.5, 2, N_GENES))
    meta = {"genes": [{"symbol": s, "entrez_id": e} for s, e in zip(panel_symbols(),
                                                                      panel_entrez())],
            "threshold": 0.5, "transform": {"name": "t", "per_sample": True, "in_graph": True,
                                            "imputes_in_graph": True}}
    write_saved_model(tmp_path / "m" / "1", model, meta, preprocess=pre)
    m = ExportedModel.load(tmp_path / "m")
    t = tiny_table(6, seed=3)
    drop = panel_symbols()[:16]  # exactly 10%: allowed
    out = m.predict_table(t.drop(columns=drop))
    x = t[gene_columns()].to_numpy("float32")
    x[:, :16] = np.nan
    np.testing.assert_allclose(out["probability"], keras_probability(model, x, pre), atol=1e-5)
    with pytest.raises(InputDataError, match=r"17/160 panel genes are missing"):
        m.predict_table(t.drop(columns=panel_symbols()[:17]))
    # a gene all-NaN in one cohort counts as missing for that cohort
    t2 = pd.concat([t, tiny_table(4, seed=4, cohort="C2")], ignore_index=True)
    t2.loc[t2["cohort"] == "C2", panel_symbols()[:20]] = np.nan
    with pytest.raises(InputDataError, match="missing in cohort C2"):
        m.predict_table(t2)


@pytest.mark.parametrize("case, message", [
    ("no_model", "no exported model"),
    ("no_version", "version 9 of .* does not exist; available: 1"),
    ("corrupt", "cannot load the SavedModel .* \\(corrupt\\?\\)"),
    ("corrupt_variables", "cannot load the SavedModel .* \\(corrupt\\?\\)"),
    ("no_metadata", "no assets/amu_metadata.json"),
    ("unknown_genes", "unknown gene set: none of the 160 panel genes"),
    ("too_many_missing", "40/160 panel genes are missing"),
    ("nan", "NaN value\\(s\\) .* does not impute"),
    ("not_csv", "cannot read .* as CSV|unknown gene set"),
])
def test_clear_errors(served, tmp_path, case, message):
    import shutil

    base, _, _ = served
    t = _table(3, n=4)
    model, version = base, None
    if case == "no_model":
        model = tmp_path / "nothing"
    elif case == "no_version":
        version = 9
    elif case in ("corrupt", "corrupt_variables", "no_metadata"):
        model = tmp_path / "copy"
        shutil.copytree(base, model)
        if case == "corrupt":
            (model / "1" / "saved_model.pb").write_bytes(b"\x00garbage")
        elif case == "corrupt_variables":
            f = model / "1" / "variables" / "variables.data-00000-of-00001"
            f.write_bytes(f.read_bytes()[:100])  # truncated
        else:
            (model / "1" / "assets" / "amu_metadata.json").unlink()
    elif case == "unknown_genes":
        t = pd.DataFrame({"sample": ["a", "b"], "FOO": [1.0, 2.0], "12345678": [3.0, 4.0]})
    elif case == "too_many_missing":
        t = t.drop(columns=panel_symbols()[-40:])
    elif case == "nan":
        t.loc[1, panel_symbols()[5]] = np.nan
    inp = tmp_path / "in.csv"
    if case == "not_csv":
        inp.write_bytes(b"\x89PNG\x00\x01\x02binary")
    else:
        t.to_csv(inp, index=False)
    args = ["--model", model, "--input", inp, "--out", tmp_path / "o.csv"]
    if version:
        args += ["--version", version]
    r = _predict(args)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("Error: ") and len(err.splitlines()) == 1, err
    assert re.search(message, err), err
    assert not (tmp_path / "o.csv").exists()


def test_rest_body_errors():
    x = np.zeros((2, N_GENES)).tolist()
    for body, msg in [
        ({"instances": [r[:-1] for r in x]}, r"shape \[batch, 160\], got \[2, 159\]"),
        ({"inputs": {"expr": x}}, "exactly the key 'expression'"),
        ({"instances": x, "inputs": x}, "exactly one of"),
        ({"instances": [x[0], x[1][:10]]}, "ragged"),
        ({"instances": x, "signature_name": "other"}, "unknown signature_name"),
        ("{not json", "not JSON"),
    ]:
        with pytest.raises(InputDataError, match=msg):
            parse_request(body)
    assert parse_request({"instances": x})[0].shape == (2, N_GENES)


def test_export_missing_gene_limit_is_its_transforms():
    """An export takes its transform's ``max_missing_fraction`` (COMPASS's input: 20%) from
    its metadata, so it accepts and refuses what `amu predict` from the Model artifact does;
    without one, the serving default of 10%. (Before, a COMPASS export refused a cohort
    missing 15% of its genes that the Model artifact predicted.)"""
    m = ExportedModel.__new__(ExportedModel)   # only the metadata panel_table reads
    m.symbols = [f"G{i}" for i in range(20)]
    m.entrez_ids = [""] * 20
    m.n_genes = 20
    df = pd.DataFrame(np.ones((3, 17)), columns=m.symbols[:17])
    df.insert(0, "sample", ["a", "b", "c"])
    m.transform_info = {"name": "compass_input", "params": {"max_missing_fraction": 0.2}}
    table, report = m.panel_table(df)           # 3 of 20 missing: 15% <= 20%
    assert report["n_found"] == 17 and report["missing"] == ["G17", "G18", "G19"]
    assert table[["G17", "G18", "G19"]].isna().all().all()
    # an all-NaN column is missing, not found (before: found 17/20 while G1 was listed missing)
    df_nan = df.assign(G1=np.nan)
    _, report = m.panel_table(df_nan)
    assert report["n_found"] == 16 and report["missing"] == ["G1", "G17", "G18", "G19"]
    # two cohorts: found counts the cohort with the fewest genes (as the Model artifact's
    # genes_present does); missing lists a gene missing in either
    two = pd.concat([df.assign(cohort="A", G1=np.nan), df.assign(cohort="B", G2=np.nan)],
                    ignore_index=True)
    two["sample"] = [f"s{i}" for i in range(len(two))]
    _, report = m.panel_table(two)
    assert report["n_found"] == 16
    assert report["missing"] == ["G1", "G2", "G17", "G18", "G19"]
    m.transform_info = {}
    with pytest.raises(InputDataError, match=r"3/20 genes of the model are missing .*10%"):
        m.panel_table(df)


def test_a_large_csv_with_text_far_down_is_read_without_a_pandas_warning(tmp_path):
    """A gene column that is numeric for the first ~300,000 rows and text at the end made
    pandas (chunked reading) print a DtypeWarning before the one-line refusal; the CSV is
    read in one piece, so the column is text throughout and the transform names the cell."""
    import warnings

    from pipelines.predict_cmd import _read_input

    n = 300_000
    csv = tmp_path / "big.csv"
    csv.write_text("sample,CD8A\n" + "".join(f"s{i},{i % 7}.5\n" for i in range(n - 1))
                   + "sX,abc\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.DtypeWarning)
        table = _read_input(str(csv), None)
    assert len(table) == n and table["CD8A"].iloc[-1] == "abc"
