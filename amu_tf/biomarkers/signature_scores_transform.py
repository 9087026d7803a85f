"""``SignatureScoresTransform``: a cohort table -> several biomarkers' scores as columns."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from amu_tf.biomarkers.biomarker_transform import BiomarkerTransform

#: the biomarkers that read a handful of genes (TIDE needs a whole transcriptome)
GENE_SIGNATURES = ("cd274", "cd8a", "cxcl9", "cytolytic", "ifng6", "gep18", "impres")


class SignatureScoresTransform(TransformerMixin, BaseEstimator):
    """One column per biomarker of ``biomarkers``, each as :class:`BiomarkerTransform`
    computes it (within-cohort statistics, no labels): the biology as input features of a
    model that learns how to weigh them."""

    per_sample = False

    def __init__(self, biomarkers=GENE_SIGNATURES):
        self.biomarkers = biomarkers

    @property
    def name(self):
        return "signature_scores"

    def fit(self, table, y=None):
        self.transforms_ = [BiomarkerTransform(b).fit(table) for b in self.biomarkers]
        self.genes_ = sorted({g for t in self.transforms_ for g in t.genes_})
        self.missing_genes_ = {b: t.missing_genes_ for b, t in zip(self.biomarkers,
                                                                  self.transforms_)
                               if t.missing_genes_}
        return self

    def transform(self, table):
        return np.hstack([t.transform(table) for t in self.transforms_]).astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        return np.asarray([f"biomarker:{b}" for b in self.biomarkers], dtype=object)
