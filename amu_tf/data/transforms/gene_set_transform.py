"""``GeneSetTransform``: a cohort table -> the z-scores of a named set of genes."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from amu_tf.biomarkers.biomarker_score import CohortStatistics, cohort_keys, gene_values
from amu_tf.data.transforms.table_transform import TableTransform
from amu_tf.errors import InputDataError


class GeneSetTransform(TableTransform):
    """Each gene of ``genes`` z-scored within its cohort (statistics frozen from the training
    rows of a cohort seen at ``fit``, else the scored rows' own, as ``cohort_z``); a gene a
    cohort lacks is 0 there (its cohort mean). A gene absent from every training row is
    refused; so is a gene set of which fewer than ``min_gene_fraction`` is present."""

    def __init__(self, genes=(), min_gene_fraction=0.8):
        self.genes = genes
        self.min_gene_fraction = min_gene_fraction

    @property
    def name(self):
        return f"gene_set[{len(self.genes)}]"

    @classmethod
    def from_file(cls, path, **params):
        """The genes of a text file (one symbol per line, ``#`` comments) or of the first set
        of a GMT file (name, description, then the genes, tab-separated)."""
        from pathlib import Path

        from amu_tf.data.text_files import read_text

        p = Path(path)
        lines = [ln.strip() for ln in read_text(p, "gene set file").splitlines()
                 if ln.strip() and not ln.startswith("#")]
        if p.suffix.lower() == ".gmt" or (lines and lines[0].count("\t") >= 2):
            genes = [g for g in lines[0].split("\t")[2:] if g]
        else:
            genes = lines
        if not genes:
            raise InputDataError(f"gene set file {path} names no gene")
        return cls(tuple(dict.fromkeys(genes)), **params)

    def _genes_to_fit(self, table) -> list:
        """The genes ``fit`` looks for in ``table`` (here: ``genes`` as given)."""
        return list(self.genes)

    def fit(self, table, y=None):
        self._check_table(table)
        genes = self._genes_to_fit(table)
        values = gene_values(table, genes)
        seen = ~np.all(np.isnan(values), axis=0)
        if seen.sum() < self.min_gene_fraction * len(genes):
            raise InputDataError(f"gene set: only {int(seen.sum())} of its {len(genes)} genes "
                                 "are in the training rows")
        self.genes_ = [g for g, s in zip(genes, seen) if s]
        self.missing_genes_ = [g for g, s in zip(genes, seen) if not s]
        self.statistics_ = CohortStatistics(self.genes_).fit(values[:, seen],
                                                             cohort_keys(table))
        return self

    def transform(self, table):
        check_is_fitted(self, "statistics_")
        self._check_table(table)
        z = self.statistics_.standardise(gene_values(table, self.genes_), cohort_keys(table))
        return np.nan_to_num(z, nan=0.0).astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.genes_, dtype=object)
