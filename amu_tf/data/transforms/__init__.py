"""Transforms of cohort tables (log2 panel expression) into model input.

scikit-learn style: ``fit(table)`` on training rows only, ``transform(table) -> float32
(n, 160)``, ``save(dir)``; ``load_transform(dir)`` reads one back.

    from amu_tf.data.transforms import get_transform, load_transform
    t = get_transform("cohort_z").fit(train_rows)
    X = t.transform(test_rows); t.save("runs/x/transform"); t2 = load_transform("runs/x/transform")

Names (``TRANSFORMS``): ``paper`` (constituent ratio + log with pseudocount), ``cohort_z``
(per-cohort gene z-scores; default for multi-cohort work; not per-sample), ``rank``
(within-sample ranks; single sample), ``reference_z`` (gene z-scores with frozen training
mean/std; single sample). Per-sample transforms give ``as_keras_layer()`` for export.
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


def get_transform(name: str = DEFAULT_TRANSFORM, **params) -> BaseTransform:
    """An unfitted transform by name (``TRANSFORMS``) with its parameters."""
    if isinstance(name, BaseTransform):
        return name
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
    if name == "joblib":  # biomarker scores, gene sets (amu_tf.biomarkers.table_transform)
        import joblib
        from pathlib import Path

        from amu_tf.biomarkers.table_transform import JOBLIB_FILE

        return joblib.load(Path(directory) / JOBLIB_FILE)
    if name not in TRANSFORMS:
        from amu_tf.errors import ArtifactError

        raise ArtifactError(f"{directory} holds an unknown transform {name!r}")
    return TRANSFORMS[name]._from_config(config, arrays)


__all__ = ["BaseTransform", "CohortZTransform", "PaperTransform", "RankTransform",
           "ReferenceZTransform", "TRANSFORMS", "DEFAULT_TRANSFORM", "get_transform",
           "load_transform"]
