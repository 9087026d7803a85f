"""Training recipes as data: named sets of :class:`ZooClassifier` parameters.

``ZooClassifier(model="amu:paper", recipe="fast")`` takes the recipe's values for every
parameter the caller left at its default; a parameter given explicitly (a value different
from the ``__init__`` default) wins over the recipe.

- ``paper``: the authors' published code: Adam, lr 1e-5, L2 1e-4 (here as weight decay),
  batch 32, 2000 epochs, no early stopping (``patience`` = epochs): hours per fold of
  ``amu:paper`` on a CPU.
- ``fast``: AdamW at lr 3e-4 (decoupled weight decay 1e-4, the paper's L2 strength), the
  paper's two-step decay (x0.1 at 50% and 75% of the planned steps), at most 60 epochs,
  early stopping on the inner validation loss (patience 8, best weights restored), batch
  32. The learning rate and batch size were chosen with ``benchmarks/bench_recipe.py``
  (its results: ``benchmarks/README.md``).
"""

from __future__ import annotations

from types import MappingProxyType

RECIPES = MappingProxyType({
    "paper": MappingProxyType({
        "optimizer": "adam",
        "learning_rate": 1e-5,
        "weight_decay": 1e-4,
        "batch_size": 32,
        "epochs": 2000,
        "patience": 2000,
        "schedule": None,
    }),
    "fast": MappingProxyType({
        "optimizer": "adamw",
        "learning_rate": 3e-4,
        "weight_decay": 1e-4,
        "batch_size": 32,
        "epochs": 60,
        "patience": 8,
        "schedule": "two_step",
    }),
})


def get_recipe(name) -> dict:
    """A copy of recipe ``name``'s parameters (a dict is returned as a copy, None as {})."""
    if name is None:
        return {}
    if isinstance(name, dict):
        return dict(name)
    try:
        return dict(RECIPES[name])
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}") from None


def resolve_params(recipe, params: dict, defaults: dict) -> dict:
    """``params`` with the recipe's values where a param equals its default.

    ``defaults`` are the estimator's ``__init__`` defaults; a param set to anything else
    counts as an explicit choice and is kept.
    """
    out = dict(params)
    for key, value in get_recipe(recipe).items():
        if key not in defaults:
            raise ValueError(f"recipe sets unknown parameter {key!r}")
        if params.get(key, defaults[key]) == defaults[key]:
            out[key] = value
    return out
