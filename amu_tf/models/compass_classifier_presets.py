"""Presets of :class:`~amu_tf.models.compass_classifier.CompassClassifier` (``amu:compass``),
as data. ``config`` is the model's; ``input_genes`` (tests only) names the genes of a
random-weight encoder's input, which otherwise are COMPASS's 15,672 from the wheel."""

from amu_tf.models.compass_presets import COMPASS_PRESETS

_TINY_GENES = [f"GENE{i}" for i in range(40)]

COMPASS_CLASSIFIER_PRESETS = {
    "pretrained": {
        "description": "COMPASS's TCGA-pre-trained encoder (preset 'compass' of "
        "CompassEncoder, immuno-compass 2.5.3) fine-tuned under a small head: the mean of "
        "the encoded gene tokens -> Dense 16 (ReLU) -> dropout 0.1 -> Dense 1; the encoder "
        "at a tenth of the head's learning rate. Input: COMPASS's 15,672 genes "
        "(compass_input).",
        "config": {
            "encoder_config": dict(COMPASS_PRESETS["compass"]["config"]),
            "head_units": 16,
            "dropout": 0.1,
            # COMPASS's own head pools the gene tokens; the patient token alone gave constant
            # predictions in the one fold tried (docs/compass.md)
            "readout": "mean",
        },
        "weights": "immuno-compass",
    },
    "tiny": {
        "description": "Tests only: a random-weight 40-gene encoder (d 8) under the same "
        "head; its input genes are GENE0..GENE39.",
        "config": {
            "encoder_config": {"n_genes": 40, "embed_dim": 8, "num_cancer_types": 33,
                               "num_heads": 2, "head_dim": 4, "num_features": 6,
                               "intermediate_dim": 16},
            "head_units": 8,
            "dropout": 0.0,
            "readout": "patient",
            "input_genes": _TINY_GENES,
        },
    },
}
