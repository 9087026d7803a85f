"""Transforms that choose their genes from the genome-wide table: a gene-set file, or the N
most variable genes of the training rows (never of the scored rows)."""

import numpy as np
import pandas as pd
import pytest

from amu_tf.data.cohort_table import all_gene_columns

from amu_tf.data.synthetic import make_synthetic_table
from amu_tf.data.transforms import get_transform, load_transform
from amu_tf.errors import InputDataError, SpecError


@pytest.fixture(scope="module")
def table():
    t = make_synthetic_table(seed=6, n_per_cohort=30)[0]
    return t[t["response"].notna()].reset_index(drop=True)


def test_variable_genes_are_chosen_on_training_rows_only(table):
    train = table[table["cohort"] != "SYN_TPM_B"]
    test = table[table["cohort"] == "SYN_TPM_B"].copy()
    t = get_transform("variable_genes:20").fit(train)
    genes = list(t.genes_)
    assert len(genes) == 20
    # a gene made very variable in the scored rows only: chosen when those rows are fitted on,
    # not when only the training rows are (what the protocols fit)
    outside = next(g for g in all_gene_columns(train)
                   if g not in genes and train[g].notna().all() and test[g].notna().all())
    test[outside] = test[outside] + np.random.default_rng(0).normal(0, 50, len(test))
    both = get_transform("variable_genes:20").fit(pd.concat([train, test]))
    assert outside in both.genes_
    assert list(get_transform("variable_genes:20").fit(train).genes_) == genes
    assert list(t.transform(test).shape) == [len(test), 20]
    X = t.transform(test)
    assert X.shape == (len(test), 20) and np.isfinite(X).all()
    # the chosen genes have the largest mean within-cohort variance of the measured ones
    all_genes = [g for g in all_gene_columns(train) if train[g].notna().all()]
    var = train.groupby("cohort")[all_genes].var(ddof=0).mean()
    assert var[genes].min() >= var.drop(genes).max()


def test_variable_genes_refuses_more_genes_than_measured(table):
    with pytest.raises(InputDataError, match="only .* are measured in every training cohort"):
        get_transform("variable_genes:100000").fit(table)
    with pytest.raises(SpecError, match="needs an integer N"):
        get_transform("variable_genes:many")


def test_gene_set_file_and_gmt(table, tmp_path):
    txt = tmp_path / "genes.txt"
    txt.write_text("# T cells\nCD8A\nCXCL9\nCD8A\n")
    t = get_transform(f"gene_set:{txt}").fit(table)
    assert t.genes_ == ["CD8A", "CXCL9"]
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("IFNG\thttp://x\tIFNG\tSTAT1\tIDO1\nOTHER\t-\tA\tB\n")
    assert get_transform(f"gene_set:{gmt}").genes == ("IFNG", "STAT1", "IDO1")
    with pytest.raises(InputDataError, match="does not exist"):
        get_transform(f"gene_set:{tmp_path / 'none.txt'}")
    with pytest.raises(SpecError, match="needs a file"):
        get_transform("gene_set")


def test_gene_choosing_transforms_save_load_and_run_in_protocols(table, tmp_path):
    from amu_tf.evaluation.protocols import run_protocol

    t = get_transform("variable_genes:30").fit(table)
    t.save(tmp_path / "t")
    back = load_transform(tmp_path / "t")
    np.testing.assert_array_equal(back.transform(table), t.transform(table))
    r = run_protocol(table, "loco", ["logreg"], transform="variable_genes:30", n_boot=0,
                     progress=False)
    assert r.predictions["p"].between(0, 1).all()
