"""``BiomarkerTransform``: a cohort table -> one column, a published biomarker's score."""

from __future__ import annotations

import numpy as np

from amu_tf.biomarkers.biomarker_presets import BIOMARKERS, biomarker_genes
from amu_tf.biomarkers.biomarker_score import (MIN_GENE_FRACTION, CohortStatistics,
                                               check_coverage, cohort_keys, combine,
                                               gene_values, impres, tide, tide_coverage)
from amu_tf.data.transforms.table_transform import TableTransform
from amu_tf.errors import SpecError


class BiomarkerTransform(TableTransform):
    """The score of biomarker ``biomarker`` (a key of :data:`BIOMARKERS`) for every row of a
    cohort table, as a float32 ``(n, 1)`` matrix. Learns no label: ``fit`` freezes the
    within-cohort gene statistics of the cohorts in its rows (see
    :mod:`amu_tf.biomarkers.biomarker_score`). ``missing_genes_`` lists the genes each
    training cohort lacks, ``last_missing_genes_`` those of the cohorts last transformed.

    Args:
        biomarker: the biomarker's name (``cd8a``, ``gep18``, ``impres``, ``tide``, ...).
        min_gene_fraction: a cohort holding fewer of the biomarker's genes is refused.
        cancer: TIDE's cancer type (``Melanoma``, ``NSCLC``, ``Other``).
    """

    def __init__(self, biomarker="cd8a", min_gene_fraction=MIN_GENE_FRACTION,
                 cancer="Melanoma"):
        self.biomarker = biomarker
        self.min_gene_fraction = min_gene_fraction
        self.cancer = cancer

    @property
    def name(self):
        return f"biomarker:{self.biomarker}"

    def _kind(self):
        if self.biomarker not in BIOMARKERS:
            raise SpecError(f"unknown biomarker {self.biomarker!r}; choose from "
                            f"{', '.join(BIOMARKERS)}")
        return BIOMARKERS[self.biomarker]["kind"]

    def _values(self, table):
        from amu_tf.data.cohort_table import all_gene_columns

        if self._kind() == "tide":
            genes = self.genes_ if hasattr(self, "genes_") else all_gene_columns(table)
            return genes, gene_values(table, genes)
        genes = biomarker_genes(self.biomarker)
        return genes, gene_values(table, genes)

    def fit(self, table, y=None):
        self._check_table(table)
        kind = self._kind()
        cohorts = cohort_keys(table)
        genes, values = self._values(table)
        if kind != "tide":
            self.missing_genes_ = check_coverage(self.biomarker, values, cohorts,
                                                 self.min_gene_fraction)
        else:  # coverage of TIDE's genome-wide model, per cohort
            self.missing_genes_ = {}
            self.coverage_ = tide_coverage(genes, values, cohorts, self.min_gene_fraction)
        self.genes_ = list(genes)
        self.statistics_ = None if kind == "pairs" else CohortStatistics(genes).fit(values,
                                                                                    cohorts)
        self.n_features_out_ = 1
        return self

    def transform(self, table):
        self._check_table(table)
        kind = self._kind()
        cohorts = cohort_keys(table)
        genes, values = self._values(table)
        if kind == "pairs":
            self.last_missing_genes_ = check_coverage(self.biomarker, values, cohorts,
                                                      self.min_gene_fraction)
            score = impres(values)
        elif kind == "tide":
            import pandas as pd

            self.last_coverage_ = tide_coverage(genes, values, cohorts,
                                                self.min_gene_fraction)
            centred = self.statistics_.standardise(values, cohorts, centre_only=True)
            score = tide(pd.DataFrame(centred, columns=genes), cancer=self.cancer)
        else:
            self.last_missing_genes_ = check_coverage(self.biomarker, values, cohorts,
                                                      self.min_gene_fraction)
            score = combine(self.biomarker, self.statistics_.standardise(values, cohorts))
        return np.asarray(score, dtype=np.float32)[:, None]

    def get_feature_names_out(self, input_features=None):
        return np.asarray([self.name], dtype=object)
