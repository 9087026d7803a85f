"""Presets of the AMU and AMU-FT models, as data."""

AMU_PRESETS = {
    "paper": {
        "description": "Exactly as the paper's authors coded it: d 20, 10 heads of dim 2, "
        "ff 200, 8 post-LN layers, head 20->5 channels (83,462 params, BN excluded).",
        "config": {
            "n_genes": 160,
            "embed_dim": 20,
            "num_layers": 8,
            "num_heads": 10,
            "key_dim": 2,
            "intermediate_dim": 200,
            "dropout": 0.1,
            "head_channels": 5,
            "head_dropout": 0.5,
            "use_bias": False,
            "norm_first": False,
        },
    },
    "small": {
        "description": "CPU-friendly: d 16, 4 heads of dim 4, ff 64, 2 post-LN layers; "
        "the default for `amu run`.",
        "config": {
            "n_genes": 160,
            "embed_dim": 16,
            "num_layers": 2,
            "num_heads": 4,
            "key_dim": 4,
            "intermediate_dim": 64,
            "dropout": 0.1,
            "head_channels": 4,
            "head_dropout": 0.3,
            "use_bias": False,
            "norm_first": False,
        },
    },
    "tiny": {
        "description": "For tests and smoke runs: d 8, 2 heads of dim 4, ff 16, 1 layer.",
        "config": {
            "n_genes": 160,
            "embed_dim": 8,
            "num_layers": 1,
            "num_heads": 2,
            "key_dim": 4,
            "intermediate_dim": 16,
            "dropout": 0.1,
            "head_channels": 4,
            "head_dropout": 0.2,
            "use_bias": False,
            "norm_first": False,
        },
    },
}

AMU_FT_PRESETS = {
    "base": {
        "description": "Paper widths with per-gene bias tokens and pre-LN, 4 layers.",
        "config": {
            "n_genes": 160,
            "embed_dim": 20,
            "num_layers": 4,
            "num_heads": 10,
            "key_dim": 2,
            "intermediate_dim": 200,
            "dropout": 0.1,
            "head_channels": 5,
            "head_dropout": 0.5,
        },
    },
    "small": {
        "description": "CPU-friendly bias tokens + pre-LN: d 16, 4 heads, ff 64, 2 layers.",
        "config": {
            "n_genes": 160,
            "embed_dim": 16,
            "num_layers": 2,
            "num_heads": 4,
            "key_dim": 4,
            "intermediate_dim": 64,
            "dropout": 0.1,
            "head_channels": 4,
            "head_dropout": 0.3,
        },
    },
}
