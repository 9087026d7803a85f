"""``SignatureClassifier``: a library signature (``sig:<name>``) as a training-free
scikit-learn classifier."""

from __future__ import annotations

from amu_tf.biomarkers.biomarker_classifier import BiomarkerClassifier
from amu_tf.biomarkers.biomarker_score import MIN_GENE_FRACTION
from amu_tf.biomarkers.signature_library import PREFIX, SignatureTransform, get_signature


class SignatureClassifier(BiomarkerClassifier):
    """Classifies by one published signature of the library: higher score = predicted
    responder. Exactly :class:`BiomarkerClassifier` (``fit`` learns the label-free logistic
    map and the Youden threshold on the training rows only) on the output of
    :class:`~amu_tf.biomarkers.signature_library.SignatureTransform`, which
    :meth:`make_input_transform` gives the protocols.

    Args:
        signature: ``sig:<name>`` or ``<name>`` of a signature of the folder.
        signatures_dir: the SignatureSets folder (default: ``$AMU_TF_SIGNATURES``, else
            ``../shared/data/signatures``).
        min_gene_fraction: the coverage floor of its transform.
    """

    def __init__(self, signature="sig:IFN_Ayers", signatures_dir=None,
                 min_gene_fraction=MIN_GENE_FRACTION):
        self.signature = signature
        self.signatures_dir = signatures_dir
        self.min_gene_fraction = min_gene_fraction

    def make_input_transform(self):
        """The unfitted transform whose output this classifier takes."""
        return SignatureTransform(self.signature, self.signatures_dir, self.min_gene_fraction)

    @property
    def description(self):
        sig = get_signature(self.signature, self.signatures_dir)
        way = "negated, " if sig.direction < 0 else ""
        return (f"{sig.name}: {len(set(sig.genes))} genes, {sig.method} ({sig.scorer}), "
                f"{sig.association} ({way}z within cohort); PMID {sig.pmid}")


def make_signature_estimator(name: str, signatures_dir=None, **params):
    """``SignatureClassifier`` for ``sig:<name>`` (checked to exist and be scorable)."""
    sig = get_signature(name, signatures_dir)
    return SignatureClassifier(PREFIX + sig.name, signatures_dir=signatures_dir, **params)
