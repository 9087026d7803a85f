"""``VariableGenesTransform``: the ``n`` most variable genes of the training rows, z-scored
within cohort."""

from __future__ import annotations

import warnings

import numpy as np

from amu_tf.data.transforms.gene_set_transform import GeneSetTransform
from amu_tf.errors import InputDataError


class VariableGenesTransform(GeneSetTransform):
    """Chooses, at ``fit`` and from the training rows only, the ``n`` genes of the
    genome-wide table with the largest within-cohort variance of log2 expression (the mean
    over the training cohorts of each gene's variance inside a cohort, so a batch offset
    between cohorts does not count as variance), among the genes every training cohort has;
    then z-scores them within cohort as :class:`GeneSetTransform`. No label is used; the
    chosen genes are ``genes_``."""

    def __init__(self, n=1000, min_gene_fraction=1.0):
        self.n = n
        self.min_gene_fraction = min_gene_fraction

    @property
    def name(self):
        return f"variable_genes[{self.n}]"

    def _genes_to_fit(self, table) -> list:
        """The ``n`` genes of largest mean within-cohort variance in ``table``."""
        from amu_tf.biomarkers.biomarker_score import cohort_keys
        from amu_tf.data.cohort_table import all_gene_columns

        if not isinstance(self.n, int) or self.n < 1:
            raise InputDataError(f"variable_genes: n must be a positive integer, got {self.n!r}")
        genes = all_gene_columns(table)
        values = table[genes].to_numpy(np.float64)
        cohorts = cohort_keys(table)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per_cohort = np.vstack([np.nanvar(values[cohorts == c], axis=0)
                                    for c in np.unique(cohorts)])
        everywhere = np.all(np.isfinite(per_cohort), axis=0)
        score = np.where(everywhere, per_cohort.mean(axis=0), -np.inf)
        if everywhere.sum() < self.n:
            raise InputDataError(
                f"variable_genes: {self.n} genes asked for, but only {int(everywhere.sum())} "
                "are measured in every training cohort (ingest keeps every gene: is the "
                "table genome-wide?)")
        order = np.argsort(-score, kind="mergesort")[: self.n]
        return [genes[i] for i in sorted(order)]
