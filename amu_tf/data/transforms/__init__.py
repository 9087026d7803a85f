"""Transforms of cohort tables (log2 panel expression) into model input.

scikit-learn style: ``fit(table)`` on training rows only, ``transform(table) -> float32
(n, 160)``, ``save(dir)``; ``load_transform(dir)`` reads one back.

    from amu_tf.data.transforms import get_transform, load_transform
    t = get_transform("cohort_z").fit(train_rows)
    X = t.transform(test_rows); t.save("runs/x/transform"); t2 = load_transform("runs/x/transform")

Names (``TRANSFORMS``): ``paper`` (constituent ratio + log with pseudocount), ``cohort_z``
(per-cohort gene z-scores; default for multi-cohort work; not per-sample), ``rank``
(within-sample ranks; single sample), ``reference_z`` (gene z-scores with frozen training
mean/std; single sample). Per-sample transforms give ``as_keras_layer()`` for export. These
read the paper's 160-gene panel; two read other genes of the genome-wide table, z-scored
within cohort: ``gene_set:FILE`` (a gene list or GMT file) and ``variable_genes:N`` (the N
most variable genes, chosen on the training rows only).
"""

from __future__ import annotations

from amu_tf.data.transforms.base_transform import BaseTransform, read_config
from amu_tf.data.transforms.cohort_z_transform import CohortZTransform
from amu_tf.data.transforms.paper_transform import PaperTransform
from amu_tf.data.transforms.rank_transform import RankTransform
from amu_tf.data.transforms.reference_z_transform import ReferenceZTransform
from amu_tf.errors import SpecError

TRANSFORMS = {
    "paper": PaperTransform,
    "cohort_z": CohortZTransform,
    "rank": RankTransform,
    "reference_z": ReferenceZTransform,
}
DEFAULT_TRANSFORM = "cohort_z"


#: transforms of the genome-wide table that choose their own genes, as ``name:argument``
GENE_CHOOSING = ("gene_set", "variable_genes")


def _gene_choosing(name: str, params: dict):
    """``gene_set:FILE`` (a gene list or GMT file) or ``variable_genes:N`` (the N most
    variable genes of the training rows), both z-scored within cohort."""
    kind, _, arg = name.partition(":")
    if kind == "gene_set":
        from amu_tf.data.transforms.gene_set_transform import GeneSetTransform

        if not arg:
            raise SpecError("transform gene_set needs a file: gene_set:PATH")
        return GeneSetTransform.from_file(arg, **params)
    from amu_tf.data.transforms.variable_genes_transform import VariableGenesTransform

    try:
        n = int(arg or 1000)
    except ValueError:
        raise SpecError(f"transform {name!r}: variable_genes:N needs an integer N") from None
    if n < 1:
        raise SpecError(f"transform {name!r}: N must be at least 1")
    return VariableGenesTransform(n, **params)


def get_transform(name: str = DEFAULT_TRANSFORM, **params) -> BaseTransform:
    """An unfitted transform by name (``TRANSFORMS``, or ``gene_set:FILE`` /
    ``variable_genes:N``) with its parameters."""
    if isinstance(name, BaseTransform) or hasattr(name, "fit"):
        return name
    if isinstance(name, str) and name.partition(":")[0] in GENE_CHOOSING:
        return _gene_choosing(name, params)
    try:
        cls = TRANSFORMS[name]
    except KeyError:
        raise SpecError(
            f"unknown transform {name!r}; choose one of {', '.join(TRANSFORMS)}"
        ) from None
    check_params(cls, params, f"transform {name!r}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"bad parameters for transform {name!r}: {exc}") from None


def check_params(cls, params: dict, what: str) -> None:
    """Every parameter in ``params`` is one of ``cls``'s constructor's (else the nearest
    name), of its default's type (a bool for a flag; an int or float for a number) and, for a
    number, >= 0 (a fraction <= 1); ``eps`` > 0. One-line :class:`SpecError` otherwise:
    ``--param eps=abc`` was a TypeError deep in the first transform."""
    import inspect

    from amu_tf.data.schema import nearest

    sig = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
           if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for key, value in params.items():
        if key not in sig:
            guess = nearest(key, sig)
            raise SpecError(f"{what} has no parameter {key!r}"
                            f"{f'; did you mean {guess!r}?' if guess else ''} "
                            f"(parameters: {', '.join(sig)})")
        default = sig[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SpecError(f"{what}: {key} must be true or false, got {value!r}")
        elif isinstance(default, (int, float)):
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if key.endswith("fraction"):
                if not is_number or not 0 <= value <= 1:
                    raise SpecError(f"{what}: {key} must be a fraction in [0, 1], got "
                                    f"{value!r}")
                continue
            if not is_number or (isinstance(default, int) and not isinstance(value, int)):
                kind = "an integer" if isinstance(default, int) else "a number"
                raise SpecError(f"{what}: {key} must be {kind}, got {value!r}")
            if value < 0 or (key == "eps" and value <= 0):
                raise SpecError(f"{what}: {key} must be {'> 0' if key == 'eps' else '>= 0'}, "
                                f"got {value!r}")


def load_transform(directory) -> BaseTransform:
    """A fitted transform saved with ``save(directory)`` (also a TransformGraph artifact
    folder)."""
    config, arrays = read_config(directory)
    name = config.get("name")
    if name == "joblib":  # biomarker scores, gene sets (amu_tf.data.transforms.table_transform)
        import joblib
        from pathlib import Path

        from amu_tf.data.transforms.table_transform import JOBLIB_FILE

        return joblib.load(Path(directory) / JOBLIB_FILE)
    if name not in TRANSFORMS:
        from amu_tf.errors import ArtifactError

        raise ArtifactError(f"{directory} holds an unknown transform {name!r}")
    return TRANSFORMS[name]._from_config(config, arrays)


__all__ = ["BaseTransform", "CohortZTransform", "PaperTransform", "RankTransform",
           "ReferenceZTransform", "TRANSFORMS", "DEFAULT_TRANSFORM", "get_transform",
           "load_transform"]
