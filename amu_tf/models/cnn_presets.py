"""Presets of the CNN baseline, as data."""

CNN_PRESETS = {
    "paper": {
        "description": "The paper's baseline: Conv1D 1->10 k1; 10->10 k2 s2; 10->5 k2 s2; "
        "Dense 200->2; one BatchNorm (737 params, BN excluded).",
        "config": {"n_genes": 160, "filters": (10, 10, 5), "kernel_sizes": (1, 2, 2),
                   "strides": (1, 2, 2), "dropout": 0.0},
    },
}
