"""The published training-free biomarkers of immunotherapy response as zoo baselines.

    from amu_tf.biomarkers import BIOMARKERS, BiomarkerTransform, BiomarkerClassifier
    scores = BiomarkerTransform("cd8a").fit(train_table).transform(test_table)

Names (``BIOMARKERS``): ``cd274``, ``cd8a``, ``cxcl9``, ``cytolytic``, ``ifng6``, ``gep18``,
``impres``, ``tide``; each with its genes, reference and one-line description in
:mod:`amu_tf.biomarkers.biomarker_presets`. ``make_estimator("cd8a")`` gives a
:class:`BiomarkerClassifier`; the evaluation protocols feed it its own
:class:`BiomarkerTransform` of the genome-wide table.
"""

from amu_tf.biomarkers.biomarker_classifier import BiomarkerClassifier
from amu_tf.biomarkers.biomarker_presets import BIOMARKERS, biomarker_genes
from amu_tf.biomarkers.biomarker_transform import BiomarkerTransform


def is_biomarker(name) -> bool:
    """A published biomarker or a library signature (``sig:<name>``): training-free."""
    return isinstance(name, str) and (name in BIOMARKERS or name.startswith("sig:"))


__all__ = ["BIOMARKERS", "BiomarkerClassifier", "BiomarkerTransform", "biomarker_genes",
           "is_biomarker"]
