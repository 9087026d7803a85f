"""Interpretation: SHAP for every model kind, the AMU gene embedding, network agreement,
survival and gene-set enrichment. One concept per module:

* the methods, on arrays and tables: ``shap_importance``, ``embedding_analysis``,
  ``network_agreement``, ``survival_analysis``, ``gene_set_enrichment``;
* an Interpretation artifact from them: ``explained_rows`` (which rows), ``explained_models``
  (each loaded model's input, scores, kind and embedding), ``analyses`` (one function per
  analysis, returning tables and figures), ``interpretation_files`` (the writer) and
  ``interpretation_report`` (the markdown, rendered from the written files). The component
  ``components/interpret.py`` composes them; these modules load Keras only when a model is.
"""

from amu_tf.interpretation.embedding_analysis import module_cohesion, similarity_matrices
from amu_tf.interpretation.gene_set_enrichment import enrichment, read_gmt
from amu_tf.interpretation.network_agreement import network_auroc, read_string_network
from amu_tf.interpretation.shap_importance import ShapResult, explain, mean_abs_shap, top_k_table
from amu_tf.interpretation.survival_analysis import cox_univariate, kaplan_meier, survival_frame

__all__ = ["ShapResult", "cox_univariate", "enrichment", "explain", "kaplan_meier",
           "mean_abs_shap", "module_cohesion", "network_auroc", "read_gmt",
           "read_string_network", "similarity_matrices", "survival_frame", "top_k_table"]
