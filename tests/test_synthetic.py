"""The synthetic default cohort: formats, recorded truth, and that the planted signal is (and,
switched off, is not) learnable by a plain logistic regression."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from lifelines.statistics import logrank_test
from lifelines.utils import concordance_index
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from amu_tf.data.cohort_table import META_COLUMNS, gene_columns, read_table
from amu_tf.data.synthetic import TRUTH_FILE, generate_default_cohorts, make_synthetic_table
from amu_tf.panel import panel_symbols
from pipelines.cli import amu


def _cohort_z(table):
    """Per-cohort standardised log expression (missing genes -> 0 = the cohort mean)."""
    x = table[gene_columns()].astype(float)
    for _, idx in table.groupby("cohort").groups.items():
        sub = x.loc[idx]
        x.loc[idx] = (sub - sub.mean()) / sub.std().replace(0, 1)
    return x.fillna(0.0).to_numpy()


def _cv_auc(table, seed=0):
    t = table[table["response"].notna()].reset_index(drop=True)
    x, y = _cohort_z(t), t["response"].to_numpy()
    # the standardisation uses labels of no row; the classifier sees only training folds
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    p = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    return roc_auc_score(y, p)


def test_table_contract_and_truth():
    table, truth = make_synthetic_table(seed=0)
    n_fixed = len(META_COLUMNS) + len(gene_columns())
    assert list(table.columns)[:n_fixed] == META_COLUMNS + gene_columns()
    # then the genes outside the panel, the biomarkers' among them in every cohort
    extras = truth["biomarker_genes_among_extras"]
    assert {"CD274", "CXCL9", "PRF1", "TIGIT", "VSIR"} <= set(extras)
    assert table[extras].notna().all().all()
    assert table["sample"].is_unique
    assert set(table["cohort"]) == {"SYN_COUNTS", "SYN_TPM_A", "SYN_TPM_B"}
    assert all(60 <= n <= 100 for n in table["cohort"].value_counts())
    mod = truth["response_module"]
    assert len(mod) == 10 and set(mod) <= set(panel_symbols())
    assert len(truth["response_module_up"]) == len(truth["response_module_down"]) == 5
    others = [g for k, v in truth["modules"].items() if k != "response" for g in v]
    assert len(truth["modules"]) >= 4 and not set(others) & set(mod)
    # one NE patient, unlabeled
    assert (table["response_raw"] == "NE").sum() == 1
    assert table.loc[table["response_raw"] == "NE", "response"].isna().all()
    # one panel gene missing in one cohort, as recorded
    (missing,) = truth["cohorts"]["SYN_TPM_A"]["missing_panel_genes"]
    assert table.loc[table["cohort"] == "SYN_TPM_A", missing].isna().all()
    assert table.loc[table["cohort"] != "SYN_TPM_A", missing].notna().all()
    # different response rates
    rates = table.groupby("cohort")["response"].mean()
    assert rates.max() - rates.min() > 0.15


def test_seeded():
    a, ta = make_synthetic_table(seed=3)
    b, tb = make_synthetic_table(seed=3)
    c, tc = make_synthetic_table(seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert ta == tb
    assert not np.allclose(a[gene_columns()].fillna(0), c[gene_columns()].fillna(0))


def test_batch_effects_between_cohorts():
    table, _ = make_synthetic_table(seed=0, signal=False)
    means = table.groupby("cohort")[gene_columns()].mean()
    # per-gene cohort shifts of ~0.7 log2 units: typical between-cohort gap well above noise
    gap = (means.loc["SYN_TPM_A"] - means.loc["SYN_TPM_B"]).abs().median()
    assert gap > 0.3


def test_signal_on_is_learnable():
    aucs = [_cv_auc(make_synthetic_table(seed=s)[0], seed=s) for s in (0, 1)]
    assert min(aucs) > 0.8, aucs


def test_signal_off_is_chance():
    aucs = [_cv_auc(make_synthetic_table(seed=s, signal=False)[0], seed=s) for s in range(4)]
    assert abs(np.mean(aucs) - 0.5) < 0.12, aucs


def test_planted_module_carries_the_signal():
    table, truth = make_synthetic_table(seed=2)
    t = table[table["response"].notna()].reset_index(drop=True)
    x = pd.DataFrame(_cohort_z(t), columns=gene_columns())
    y = t["response"].to_numpy()
    gene_auc = {g: roc_auc_score(y, x[g]) for g in gene_columns()}
    top = sorted(gene_auc, key=lambda g: -abs(gene_auc[g] - 0.5))[:10]
    assert len(set(top) & set(truth["response_module"])) >= 7
    for g in truth["response_module_up"]:
        assert gene_auc[g] > 0.5
    for g in truth["response_module_down"]:
        assert gene_auc[g] < 0.5


def test_survival_follows_response():
    table, _ = make_synthetic_table(seed=0)
    t = table[table["response"].notna() & table["os_time"].notna()]
    # responders live longer: log-rank test of responders vs non-responders, and C > 0.5
    r, n = t[t["response"] == 1], t[t["response"] == 0]
    assert logrank_test(r["os_time"], n["os_time"], r["os_event"], n["os_event"]).p_value < 1e-3
    assert concordance_index(t["os_time"], t["response"], t["os_event"]) > 0.55
    assert set(t["os_event"].unique()) == {0.0, 1.0}
    p = table[table["pfs_time"].notna()]
    assert (p["pfs_time"] <= p["os_time"] + 1e-6).all()


def test_files_round_trip_through_amu_ingest(tmp_path):
    specs = generate_default_cohorts(tmp_path / "syn", seed=1)
    truth = json.loads((tmp_path / "syn" / TRUTH_FILE).read_text())
    assert truth["seed"] == 1 and len(truth["response_module"]) == 10
    head = (tmp_path / "syn/SYN_COUNTS/counts.csv.gz").open("rb").read(2)
    assert head == b"\x1f\x8b"  # gzip
    counts = pd.read_csv(tmp_path / "syn/SYN_COUNTS/counts.csv.gz", index_col=0)
    assert counts.index.dtype.kind == "i" and len(counts) > 160  # Entrez ids + non-panel genes
    assert (counts.to_numpy() >= 0).all() and counts.dtypes.map(lambda d: d.kind == "i").all()
    res = CliRunner().invoke(amu, ["ingest", *map(str, specs), "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    assert "SYN_COUNTS: 80 samples, 79 labeled" in res.output
    assert "159/160 panel genes (missing: " in res.output
    from_files = read_table(tmp_path / "t")
    in_memory, _ = make_synthetic_table(seed=1)
    np.testing.assert_allclose(from_files[gene_columns()].to_numpy(),
                               in_memory[gene_columns()].to_numpy(), atol=1e-4)
    np.testing.assert_array_equal(from_files["response"], in_memory["response"])
    np.testing.assert_allclose(from_files["os_time"], in_memory["os_time"], rtol=1e-5)


@pytest.mark.parametrize("signal", [True, False])
def test_amu_synth_command(tmp_path, signal):
    args = ["synth", str(tmp_path / "s"), "--seed", "2"] + ([] if signal else ["--no-signal"])
    res = CliRunner().invoke(amu, args)
    assert res.exit_code == 0, res.output
    truth = json.loads((tmp_path / "s" / TRUTH_FILE).read_text())
    assert truth["signal"] is signal
    assert sorted(p.name for p in (tmp_path / "s").glob("*.toml")) == [
        "SYN_COUNTS.toml", "SYN_TPM_A.toml", "SYN_TPM_B.toml"]


def test_row_sums_carry_no_label():
    """The planted module's up/down pairs cancel, so a leakage audit finds no row-sum signal:
    the per-cohort AUC of the row sum behaves as under no signal at all."""
    aucs = []
    for seed in range(10):
        table, _ = make_synthetic_table(seed=seed)
        t = table[table["response"].notna()]
        for _, sub in t.groupby("cohort"):
            aucs.append(roc_auc_score(sub["response"], sub[gene_columns()].sum(axis=1)))
    assert abs(np.mean(aucs) - 0.5) < 0.04 and np.std(aucs) < 0.09, (np.mean(aucs), np.std(aucs))
