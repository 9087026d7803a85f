"""A fitted probability recalibration as data: Platt's logistic map or isotonic regression,
fitted on out-of-fold predictions of the training rows, stored with a Model artifact and
applied in NumPy (``amu predict --model``) and inside an exported SavedModel's graph.

    cal = fit_probability_calibration(make_estimator("logreg"), X, y, method="sigmoid",
                                      groups=patients)
    cal.apply(p)                    # NumPy: the recalibrated probabilities
    cal.apply_tf(p_tensor)          # the same map as TensorFlow ops (TF Serving)
    cal.write(model_dir); ProbabilityCalibration.read(model_dir)

What is fitted, and on what (:func:`fit_probability_calibration`):

1. out-of-fold probabilities of a clone of the estimator over the given rows
   (:func:`out_of_fold_probabilities`: ``cv``-fold stratified splits, patient-grouped when
   ``groups`` is given, each clone fitted with the same side information);
2. the map fitted on those probabilities and the labels: ``sigmoid`` (Platt: scikit-learn's
   ``LogisticRegression`` of ``y`` on ``logit(p)``, practically unpenalised) or ``isotonic``
   (scikit-learn's ``IsotonicRegression``, clipped to [0, 1]);
3. the decision threshold in the recalibrated scale: Youden's J on the recalibrated
   out-of-fold probabilities.

Only the rows given are read, so inside a protocol split it never sees a test row, and for a
final model it sees the training rows only. The map is stored as its parameters (slope and
intercept, or the isotonic knots) and applied by formula; scikit-learn's fitted objects are
the reference the tests compare that formula against.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from amu_tf.errors import ArtifactError, InputDataError

CALIBRATION_FILE = "probability_calibration.json"
METHODS = ("sigmoid", "isotonic")
EPS = 1e-6  # p is clipped to [EPS, 1 - EPS] before the logit (as in calibration.py)


def _logit(p):
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


class TooFewForCalibration(InputDataError):
    """Too few samples of a class among the rows given for ``cv``-fold out-of-fold
    predictions (each fold needs one of each class). ``n_min`` (samples of the smaller
    class), ``n_rows`` and ``cv`` let a caller say it in its own terms (a protocol split's
    training rows: :class:`~amu_tf.evaluation.calibration.CalibratedClassifier`)."""

    def __init__(self, n_min: int, n_rows: int, cv: int):
        self.n_min, self.n_rows, self.cv = int(n_min), int(n_rows), int(cv)
        super().__init__(
            f"probability calibration: the smaller class has {self.n_min} sample(s) among the "
            f"{self.n_rows} training rows; out-of-fold recalibration uses {self.cv} folds and "
            f"needs at least {self.cv} of each class: give more samples, or leave out "
            "--calibrate")

    def __reduce__(self):  # picklable (a parallel protocol's worker sends it back)
        return type(self), (self.n_min, self.n_rows, self.cv)


def _take(a, idx):
    if a is None:
        return None
    return a.iloc[idx] if hasattr(a, "iloc") else np.asarray(a)[idx]


def out_of_fold_probabilities(estimator, X, y, groups=None, cohorts=None, cv: int = 5,
                              seed: int = 0) -> np.ndarray:
    """P(class 1) of every row from a clone of ``estimator`` fitted without it: ``cv``-fold
    stratified splits of the rows given (``StratifiedGroupKFold`` by ``groups``, i.e.
    patients, when given). ``y`` must be 0/1. A NaN probability is replaced by the mean.
    Fewer than ``cv`` samples of a class: :class:`TooFewForCalibration`."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    from amu_tf.training.fit_estimator import fit_estimator

    yy = np.asarray(y).astype(int).ravel()
    n_min = int(np.bincount(yy, minlength=2).min())
    if n_min < cv:
        raise TooFewForCalibration(n_min, len(yy), cv)
    if groups is not None:
        splits = StratifiedGroupKFold(cv, shuffle=True, random_state=seed).split(X, yy, groups)
    else:
        splits = StratifiedKFold(cv, shuffle=True, random_state=seed).split(X, yy)
    oof = np.full(len(yy), np.nan)
    for tr, te in splits:
        est = clone(estimator)
        fit_estimator(est, _take(X, tr), _take(y, tr), groups=_take(groups, tr),
                      cohorts=_take(cohorts, tr))
        oof[te] = np.asarray(est.predict_proba(_take(X, te)))[:, 1]
    if np.isnan(oof).all():
        raise InputDataError("probability calibration: the model gave no finite out-of-fold "
                             "probability")
    return np.nan_to_num(oof, nan=float(np.nanmean(oof)))


@dataclass
class ProbabilityCalibration:
    """A fitted recalibration map ``p -> p'`` and the threshold in its scale.

    ``sigmoid``: ``p' = 1 / (1 + exp(-(slope * logit(p) + intercept)))``; ``isotonic``:
    linear interpolation through ``knots_x``/``knots_y`` (constant outside them)."""

    method: str
    slope: float | None = None
    intercept: float | None = None
    knots_x: list = field(default_factory=list)
    knots_y: list = field(default_factory=list)
    threshold: float = 0.5  # Youden's J on the recalibrated out-of-fold probabilities
    fitted_on: dict = field(default_factory=dict)  # rows, cohorts, cv, Brier before/after

    # ------------------------------------------------------------------ fitting
    @classmethod
    def from_probabilities(cls, p, y, method: str = "sigmoid") -> "ProbabilityCalibration":
        """Fit the map on probabilities ``p`` (out-of-fold) and 0/1 labels ``y``; the
        threshold is Youden's J on the recalibrated ``p``."""
        from amu_tf.training.threshold import youden_threshold

        p, y = np.asarray(p, dtype=float).ravel(), np.asarray(y).astype(int).ravel()
        ref = reference_calibrator(p, y, method)
        if method == "sigmoid":
            cal = cls(method, slope=float(ref.coef_[0, 0]), intercept=float(ref.intercept_[0]))
        else:
            cal = cls(method, knots_x=[float(v) for v in ref.X_thresholds_],
                      knots_y=[float(v) for v in ref.y_thresholds_])
        q = cal.apply(p)
        cal.threshold = float(youden_threshold(y, q))
        cal.fitted_on = {"n_rows": int(len(y)), "n_responders": int(y.sum()),
                         "brier_before": round(float(np.mean((y - p) ** 2)), 6),
                         "brier_after": round(float(np.mean((y - q) ** 2)), 6)}
        return cal

    # ------------------------------------------------------------------ applying
    def apply(self, p) -> np.ndarray:
        """The recalibrated probabilities of ``p`` (NumPy, float64)."""
        p = np.asarray(p, dtype=float)
        if self.method == "sigmoid":
            z = self.slope * _logit(p) + self.intercept
            return 1.0 / (1.0 + np.exp(-z))
        xs, ys = np.asarray(self.knots_x), np.asarray(self.knots_y)
        return np.clip(np.interp(p, xs, ys), 0.0, 1.0)

    def apply_tf(self, p):
        """The same map as TensorFlow ops on a float32 tensor (for a SavedModel's graph)."""
        import tensorflow as tf

        p = tf.cast(p, tf.float32)
        if self.method == "sigmoid":  # in float64: 1 - EPS is not exact in float32
            pc = tf.clip_by_value(tf.cast(p, tf.float64), EPS, 1 - EPS)
            z = self.slope * (tf.math.log(pc) - tf.math.log1p(-pc)) + self.intercept
            return tf.cast(tf.sigmoid(z), tf.float32)
        # in float64: knots a float32 step apart would move a steep segment
        xs = tf.constant(self.knots_x, tf.float64)
        ys = tf.constant(self.knots_y, tf.float64)
        n = len(self.knots_x)
        if n == 1:
            return tf.fill(tf.shape(p), tf.cast(ys[0], tf.float32))
        pc = tf.clip_by_value(tf.cast(p, tf.float64), xs[0], xs[-1])
        # np.interp: the segment [x_{i-1}, x_i] with x_{i-1} <= p < x_i (the last at x_max)
        i = tf.clip_by_value(tf.searchsorted(xs, pc, side="right"), 1, n - 1)
        x0, x1 = tf.gather(xs, i - 1), tf.gather(xs, i)
        y0, y1 = tf.gather(ys, i - 1), tf.gather(ys, i)
        w = tf.math.divide_no_nan(pc - x0, x1 - x0)
        return tf.cast(tf.clip_by_value(y0 + w * (y1 - y0), 0.0, 1.0), tf.float32)

    def describe(self) -> str:
        """One sentence: the map and the rows it was fitted on."""
        how = ("Platt's logistic recalibration" if self.method == "sigmoid"
               else "isotonic regression")
        f = self.fitted_on
        cohorts = ", ".join(f.get("cohorts", [])) or "the training cohorts"
        return (f"recalibrated by {how}, fitted on {f.get('cv', '?')}-fold out-of-fold "
                f"predictions of its {f.get('n_rows', '?')} training rows ({cohorts}); "
                f"out-of-fold Brier {f.get('brier_before', float('nan')):.3f} before, "
                f"{f.get('brier_after', float('nan')):.3f} after; threshold "
                f"{self.threshold:.3f} (Youden's J on the recalibrated out-of-fold "
                "probabilities)")

    # ------------------------------------------------------------------ storage
    def to_json(self) -> dict:
        return {"format": 1, **asdict(self)}

    def write(self, folder) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, folder) -> "ProbabilityCalibration | None":
        """The calibration stored in a Model folder, or None when it has none."""
        from amu_tf.data.text_files import read_json

        path = Path(folder) / CALIBRATION_FILE
        if not path.is_file():
            return None
        data = read_json(path, "probability calibration", error=ArtifactError)
        try:
            data = dict(data)
            data.pop("format", None)
            cal = cls(**data)
            ok = cal.method in METHODS and (
                (cal.method == "sigmoid" and np.isfinite([cal.slope, cal.intercept]).all())
                or (cal.method == "isotonic" and len(cal.knots_x) == len(cal.knots_y) > 0))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ArtifactError(f"{path} is damaged (not a sigmoid or isotonic calibration)")
        return cal


def reference_calibrator(p, y, method: str):
    """The scikit-learn object the map is read from (and the tests' reference)."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if method == "sigmoid":
        return LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
    if method == "isotonic":
        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    raise InputDataError(f"calibration method {method!r}: 'sigmoid' (Platt) or 'isotonic'")


def fit_probability_calibration(estimator, X, y, method: str = "sigmoid", groups=None,
                                cohorts=None, cv: int = 5, seed: int = 0
                                ) -> ProbabilityCalibration:
    """Steps 1-3 of the module docstring on the rows given; ``estimator`` is an unfitted
    template (cloned per fold)."""
    if method not in METHODS:
        raise InputDataError(f"calibration method {method!r}: 'sigmoid' (Platt) or 'isotonic'")
    oof = out_of_fold_probabilities(estimator, X, y, groups=groups, cohorts=cohorts, cv=cv,
                                    seed=seed)
    cal = ProbabilityCalibration.from_probabilities(oof, y, method)
    cal.fitted_on["cv"] = int(cv)
    cal.fitted_on["grouped_by_patient"] = groups is not None
    if cohorts is not None:
        cal.fitted_on["cohorts"] = sorted({str(c) for c in np.asarray(cohorts)})
    return cal
