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
    try:
        return cls(**params)
    except TypeError as exc:
        raise SpecError(f"bad parameters for transform {name!r}: {exc}") from None


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
