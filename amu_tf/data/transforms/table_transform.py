"""``TableTransform``: base of the transforms that read named genes of a cohort table
(biomarker scores, gene sets): scikit-learn's contract, saved with joblib."""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.base import BaseEstimator, TransformerMixin

JOBLIB_FILE = "transform.joblib"
#: ``transform.json``'s ``name`` for a joblib-saved transform (read by ``load_transform``)
JOBLIB_NAME = "joblib"


class TableTransform(TransformerMixin, BaseEstimator):
    """``fit(table)`` / ``transform(table)`` on a cohort table; ``save(directory)`` writes
    ``transform.json`` (naming it) and ``transform.joblib``;
    :func:`amu_tf.data.transforms.load_transform` reads it back."""

    per_sample = False  # a new cohort is standardised with its own statistics

    def save(self, directory):
        import joblib

        from amu_tf import __version__

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, d / JOBLIB_FILE)
        (d / "transform.json").write_text(json.dumps(
            {"name": JOBLIB_NAME, "class": type(self).__name__, "transform": self.name,
             "per_sample": bool(self.per_sample), "amu_tf_version": __version__,
             "file": JOBLIB_FILE}, indent=2) + "\n")
        return d
