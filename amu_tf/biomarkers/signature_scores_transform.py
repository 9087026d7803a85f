"""``SignatureScoresTransform``: a cohort table -> several biomarkers' scores as columns."""

from __future__ import annotations

import numpy as np

from amu_tf.biomarkers.biomarker_score import CohortStatistics, cohort_keys
from amu_tf.biomarkers.biomarker_transform import BiomarkerTransform
from amu_tf.data.transforms.table_transform import TableTransform

#: the biomarkers that read a handful of genes (TIDE needs a whole transcriptome)
GENE_SIGNATURES = ("cd274", "cd8a", "cxcl9", "cytolytic", "ifng6", "gep18", "impres")


class SignatureScoresTransform(TableTransform):
    """One column per biomarker of ``biomarkers``, each as :class:`BiomarkerTransform`
    computes it (within-cohort statistics, no labels), then each column z-scored within its
    cohort (``standardise``; statistics frozen from the training rows of a cohort seen at
    ``fit``, else the scored rows' own), so that scores on different scales (IMPRES counts
    0-15 pairs, the others are means of z-scores) weigh alike: the biology as input features
    of a model that learns how to weigh them."""

    def __init__(self, biomarkers=GENE_SIGNATURES, standardise=True):
        self.biomarkers = biomarkers
        self.standardise = standardise

    @property
    def name(self):
        return "signature_scores"

    def fit(self, table, y=None):
        self._check_table(table)
        self.transforms_ = [BiomarkerTransform(b).fit(table) for b in self.biomarkers]
        self.genes_ = sorted({g for t in self.transforms_ for g in t.genes_})
        self.missing_genes_ = {b: t.missing_genes_ for b, t in zip(self.biomarkers,
                                                                  self.transforms_)
                               if t.missing_genes_}
        self.statistics_ = None
        if self.standardise:
            self.statistics_ = CohortStatistics(self.biomarkers).fit(self._scores(table),
                                                                     cohort_keys(table))
        return self

    def _scores(self, table):
        return np.hstack([t.transform(table) for t in self.transforms_]).astype(np.float64)

    def transform(self, table):
        self._check_table(table)
        scores = self._scores(table)
        if self.statistics_ is not None:
            scores = self.statistics_.standardise(scores, cohort_keys(table))
        return scores.astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        return np.asarray([f"biomarker:{b}" for b in self.biomarkers], dtype=object)
