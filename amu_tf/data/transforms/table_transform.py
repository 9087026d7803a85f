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
    ``transform.json`` (naming it, plus :meth:`artifact_record` under ``"record"``) and
    ``transform.joblib``; :func:`amu_tf.data.transforms.load_transform` reads it back (from
    the joblib file: the record is for people and reports, never read back)."""

    per_sample = False  # a new cohort is standardised with its own statistics

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a gene a cohort lacks is NaN there
        tags.transformer_tags.preserves_dtype = ["float32"]  # the output is always float32
        return tags

    def _check_table(self, table) -> None:
        """Refuse anything but a DataFrame: the genes are found by column name. Another input
        is first put through scikit-learn's ``check_array``, so sparse, complex or empty data
        get scikit-learn's message."""
        import pandas as pd

        if not isinstance(table, pd.DataFrame):
            from sklearn.utils import check_array

            from amu_tf.errors import InputDataError

            try:
                check_array(table, ensure_all_finite=False)
            except (TypeError, ValueError) as exc:
                raise InputDataError(f"{type(self).__name__}: {exc}") from None
            raise InputDataError(f"{type(self).__name__} reads named gene columns of a cohort "
                                 f"table (a pandas DataFrame), not {type(table).__name__}")

    def artifact_record(self) -> dict:
        """What the fitted transform chose and measured, as a JSON-able dict that
        :meth:`save` writes into ``transform.json`` under ``"record"``, so a saved model says
        how its input was built without unpickling it. A subclass overrides it; the base
        records nothing (``{}``). A transform saved before the key existed has no
        ``"record"``: readers use ``config.get("record", {})``."""
        return {}

    def save(self, directory):
        import joblib

        from amu_tf import __version__
        from amu_tf.artifacts import to_jsonable

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, d / JOBLIB_FILE)
        (d / "transform.json").write_text(json.dumps(
            {"name": JOBLIB_NAME, "class": type(self).__name__, "transform": self.name,
             "per_sample": bool(self.per_sample), "amu_tf_version": __version__,
             "file": JOBLIB_FILE, "record": to_jsonable(self.artifact_record())},
            indent=2) + "\n")
        return d
