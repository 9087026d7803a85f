"""The published training-free response biomarkers, as data.

Every entry: ``kind`` (how the score is computed, see :mod:`amu_tf.biomarkers.biomarker_score`),
its genes (with ``weights`` or ``pairs`` where the publication gives them), a one-line
``description`` and the ``reference`` it comes from. Higher scores mean "predicted responder"
for every biomarker (TIDE is negated).

Sources of the numbers (public code that implements the publications, read and compared):
GEP weights (Cristescu et al., Science 2018, Table S2B) from
``olapuentesantana/easier`` (R/compute.Tcell_inflamed.R) and
``olapuentesantana/mechanistic_biomarkers_immuno-oncology``
(R/Signatures_response_ICBs/ObtainTcellInflamedAyers.R), identical; the IMPRES pairs
(Auslander et al., Nat Med 2018) from ``olapuentesantana/easier`` (R/compute_IMPRES.R) and
``ashyamal/COMPASS`` (itrp/model/impres.py), identical.
"""

#: old symbols still found in expression files, per current HGNC symbol
GENE_ALIASES = {
    "VSIR": ("C10orf54",),
    "NRDE2": ("C14orf102",),
    "PDCD1LG2": ("PDL2",),
}

BIOMARKERS = {
    "cd274": {
        "label": "CD274 (PD-L1)",
        "kind": "mean_z",
        "genes": ("CD274",),
        "description": "PD-L1 mRNA: the checkpoint ligand that anti-PD-1 blocks",
        "reference": "Topalian et al., N Engl J Med 2012 (PD-L1 expression and response)",
    },
    "cd8a": {
        "label": "CD8A",
        "kind": "mean_z",
        "genes": ("CD8A",),
        "description": "CD8A mRNA: cytotoxic T-cell infiltration",
        "reference": "Tumeh et al., Nature 2014 (CD8+ T cells at the invasive margin)",
    },
    "cxcl9": {
        "label": "CXCL9",
        "kind": "mean_z",
        "genes": ("CXCL9",),
        "description": "CXCL9 mRNA: the IFN-gamma-induced T-cell chemokine",
        "reference": "Ayers et al., J Clin Invest 2017; Litchfield et al., Cell 2021",
    },
    "cytolytic": {
        "label": "cytolytic (GZMA, PRF1)",
        "kind": "mean_z",
        "genes": ("GZMA", "PRF1"),
        "description": "cytolytic activity: mean of GZMA and PRF1 (log scale, z within cohort)",
        "reference": "Rooney et al., Cell 2015 (geometric mean of GZMA and PRF1 TPM)",
    },
    "ifng6": {
        "label": "IFN-gamma 6",
        "kind": "mean_z",
        "genes": ("IFNG", "STAT1", "IDO1", "CXCL10", "CXCL9", "HLA-DRA"),
        "description": "Ayers' 6-gene IFN-gamma signature: mean over its genes",
        "reference": "Ayers et al., J Clin Invest 2017",
    },
    "gep18": {
        "label": "GEP 18 (weighted)",
        "kind": "weighted_z",
        "weights": {
            "CCL5": 0.008346, "CD27": 0.072293, "CD274": 0.042853, "CD276": -0.0239,
            "CD8A": 0.031021, "CMKLR1": 0.151253, "CXCL9": 0.074135, "CXCR6": 0.004313,
            "HLA-DQA1": 0.020091, "HLA-DRB1": 0.058806, "HLA-E": 0.07175, "IDO1": 0.060679,
            "LAG3": 0.123895, "NKG7": 0.075524, "PDCD1LG2": 0.003734, "PSMB10": 0.032999,
            "STAT1": 0.250229, "TIGIT": 0.084767,
        },
        "description": "T-cell-inflamed gene expression profile: 18 genes, published weights",
        "reference": "Ayers et al., J Clin Invest 2017; weights: Cristescu et al., Science "
                     "2018, Table S2B",
    },
    "impres": {
        "label": "IMPRES",
        "kind": "pairs",
        "pairs": (
            ("PDCD1", "TNFSF4"), ("CD27", "PDCD1"), ("CTLA4", "TNFSF4"), ("CD40", "CD28"),
            ("CD86", "TNFSF4"), ("CD28", "CD86"), ("CD80", "TNFSF9"), ("CD274", "VSIR"),
            ("CD86", "HAVCR2"), ("CD40", "PDCD1"), ("CD86", "CD200"), ("CD40", "CD80"),
            ("CD28", "CD276"), ("CD40", "CD274"), ("TNFRSF14", "CD86"),
        ),
        "description": "immuno-predictive score: of 15 checkpoint gene pairs, how many have "
                       "the first gene above the second (within the sample)",
        "reference": "Auslander et al., Nat Med 2018",
    },
    "tide": {
        "label": "TIDE (negated)",
        "kind": "tide",
        "genes": (),
        "description": "T-cell dysfunction and exclusion (tidepy, cancer='Melanoma'), genes "
                       "centred within cohort; negated so that higher = responder",
        "reference": "Jiang et al., Nat Med 2018; tidepy (Fu et al., Genome Med 2020)",
    },
}


def biomarker_genes(name):
    """The genes a biomarker reads (all genes of the cohort for TIDE: empty tuple)."""
    spec = BIOMARKERS[name]
    if spec["kind"] == "weighted_z":
        return tuple(spec["weights"])
    if spec["kind"] == "pairs":
        return tuple(dict.fromkeys(g for pair in spec["pairs"] for g in pair))
    return tuple(spec["genes"])
