"""Presets of the COMPASS encoder port, as data.

``weights`` names where a preset's pre-trained weights come from: ``"immuno-compass"`` means
the distilled TCGA-pre-trained encoder of the pinned ``immuno-compass`` wheel, converted by
``amu_tf.utils.transformers.convert_compass`` (fetched, hash-checked and cached on first use).
"""

COMPASS_PRESETS = {
    "compass": {
        "description": "COMPASS's TCGA-pre-trained encoder (immuno-compass 2.5.3, distilled "
        "onto one Performer layer): 15,672 gene tokens ReLU(w_g x_g + b_g), a patient and a "
        "cancer-type token (33 TCGA types), d 32, 2 heads of 32, 110 random features, ff 64, "
        "post-LN; 1,020,160 parameters.",
        "config": {
            "n_genes": 15672,
            "embed_dim": 32,
            "num_cancer_types": 33,
            "num_heads": 2,
            "head_dim": 32,
            "num_features": 110,
            "intermediate_dim": 64,
            "norm_first": False,
            "key_stabilizer": "sample",
        },
        "weights": "immuno-compass",
    },
}
