"""Cross-cohort recipes as data: what a model reads and how it is fitted, chosen to transfer
to a cohort it never saw (issue #15). Each is an estimator name (``make_estimator``) of the
form ``recipe:<name>``; ``benchmarks/bench_generalisation.py`` measures every one of them
against every biomarker under leave-one-cohort-out.

Every recipe fits only on its training rows: the input transforms use no label (within-cohort
statistics, as ``cohort_z``), the estimators search their regularisation by inner
cross-validation on the training rows and freeze their threshold there.

- ``consensus``: training-free: the mean of the seven gene-signature biomarkers' scores
  (CD274, CD8A, CXCL9, cytolytic, IFN-gamma 6, GEP 18, IMPRES), each score z-scored within
  its cohort so that they weigh alike. Only the threshold is fitted.
- ``stack``: an L2 logistic regression on those seven scores (biology as the features; the
  model learns their weights on the training cohorts).
- ``stack-direction``: the same logistic regression, but only the direction of its weights
  is kept: the score is ``scores . w / |w|_1`` (no intercept), which has mean 0 and a
  comparable spread in every cohort (the scores are z-scored within cohort), so the outputs of
  models fitted on different cohorts can be pooled; the threshold is fitted on the training
  rows as for a biomarker.
- ``immune-genes``: an L2 logistic regression on the z-scores of the signatures' 35 genes
  (genome-wide table), no other gene.
- ``immune-amu``: ``amu:tiny`` on the same 35 immune genes instead of the paper's panel.
- ``panel-rank``: the paper's panel through within-sample ranks (no cohort statistics at all),
  L2 logistic regression: the cohort-robust transform of the panel.
- ``stack-loco``: ``stack-direction`` whose regularisation is chosen by inner
  leave-one-cohort-out on the training cohorts (each candidate scored by its AUC on a training
  cohort it was not fitted on), not by a pooled stratified split: selection that rewards
  transfer.
- ``stack-dro``: the seven scores weighted by group-DRO logistic regression (the weights that
  minimise the worst training cohort's loss, :class:`GroupDROLogisticRegression`), direction
  kept as in ``stack-direction``.
- ``variable-logreg``: the 1,000 genes with the largest within-cohort variance on the training
  rows (genome-wide table, no label), z within cohort, L2 logistic regression with its
  regularisation chosen by inner leave-one-cohort-out: a larger gene set chosen without labels.
- ``amu-pretrained``: ``amu:small`` on the panel (``cohort_z``) whose gene embedding and
  encoders are first pre-trained by masked-gene reconstruction on the expression of every row
  it may read without labels (the training rows and, under the protocols, the scored rows'
  expression as ``cohort_z`` reads it; the report says so; under ``amu train`` the table's
  unlabeled rows), then fine-tuned on the labels.
- ``amu-cohort-val``: ``amu:small`` on the panel, early stopping and threshold on one whole
  training cohort held out (inner leave-one-cohort-out) instead of a random 20% of the rows.

Keys of a recipe: ``input`` (what it reads), ``estimator`` (``mean``, ``logreg``,
``group_dro`` or a zoo name), ``direction`` (keep only the direction of a linear model's
weights, no intercept), ``selection`` (``stratified``, or ``loco``: inner splits by training
cohort), ``pretrain`` (masked-gene pre-training options), ``description``.
"""

from __future__ import annotations

from types import MappingProxyType

from amu_tf.biomarkers.biomarker_presets import biomarker_genes
from amu_tf.biomarkers.signature_scores_transform import GENE_SIGNATURES


def immune_genes() -> tuple:
    """The genes of the seven gene-signature biomarkers, once each, in signature order."""
    return tuple(dict.fromkeys(g for b in GENE_SIGNATURES for g in biomarker_genes(b)))


TRANSFER_RECIPES = MappingProxyType({
    "consensus": {"input": "signature_scores", "estimator": "mean",
                  "description": "mean of the 7 gene-signature biomarkers (training-free)"},
    "stack": {"input": "signature_scores", "estimator": "logreg",
              "description": "L2 logistic regression on the 7 biomarker scores"},
    "stack-direction": {"input": "signature_scores", "estimator": "logreg", "direction": True,
                        "description": "weights of the 7 biomarker scores learnt by L2 "
                                       "logistic regression, score without intercept"},
    "immune-genes": {"input": "immune_genes", "estimator": "logreg",
                     "description": "L2 logistic regression on the 35 signature genes"},
    "immune-amu": {"input": "immune_genes", "estimator": "amu:tiny",
                   "description": "amu:tiny on the 35 signature genes"},
    "panel-rank": {"input": "panel_rank", "estimator": "logreg",
                   "description": "L2 logistic regression on within-sample ranks of the panel"},
    "stack-loco": {"input": "signature_scores", "estimator": "logreg", "direction": True,
                   "selection": "loco",
                   "description": "stack-direction, regularisation by inner "
                                  "leave-one-cohort-out"},
    "stack-dro": {"input": "signature_scores", "estimator": "group_dro", "direction": True,
                  "description": "group-DRO logistic regression on the 7 biomarker scores "
                                 "(worst training cohort), direction kept"},
    "variable-logreg": {"input": "variable_genes", "n_genes": 1000, "estimator": "logreg",
                        "selection": "loco",
                        "description": "L2 logistic regression on the 1,000 most variable "
                                       "genes, regularisation by inner leave-one-cohort-out"},
    "amu-pretrained": {"input": "panel_z", "estimator": "amu:small",
                       "pretrain": {"epochs": 30, "mask_rate": 0.15},
                       "description": "amu:small pre-trained by masked-gene reconstruction "
                                      "on unlabeled expression, then fine-tuned"},
    "amu-cohort-val": {"input": "panel_z", "estimator": "amu:small", "selection": "loco",
                       "description": "amu:small, early stopping on a held-out training "
                                      "cohort"},
})
