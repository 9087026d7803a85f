"""Calibration of predicted probabilities: do they mean what they say? (TRIPOD+AI)

Discrimination (AUC) says whether responders score higher; calibration says whether a
predicted 30% means that about 30 of 100 such patients respond. Per cohort (and pooled):

* **Brier score**: the mean of ``(y - p)^2`` (0 is perfect; a constant prediction at the
  prevalence ``q`` scores ``q (1 - q)``), with a stratified-bootstrap 95% CI (responders and
  non-responders resampled separately, as every CI of amu-tf, ``metrics.py``).
* **Calibration intercept** (calibration-in-the-large): ``a`` of the logistic model
  ``logit P(y=1) = a + logit(p)`` (``logit(p)`` as an offset; statsmodels GLM, Binomial).
  0 is ideal; below 0 the model over-predicts response, above 0 it under-predicts.
* **Calibration slope**: ``b`` of ``logit P(y=1) = a + b logit(p)`` (statsmodels ``Logit``).
  1 is ideal; below 1 the predictions are too extreme (the usual sign of over-fitting),
  above 1 too modest. Both with Wald 95% CIs (Van Calster et al., J Clin Epidemiol 2016;
  Steyerberg, Clinical Prediction Models, ch. 15).

``p`` is clipped to ``[1e-6, 1 - 1e-6]`` before the logit. A cohort with one class gets its
Brier score and the note "one class only"; one with fewer than :data:`MIN_PER_CLASS`
responders or non-responders the note "too small for a calibration slope"; a ``logit(p)``
that separates the classes perfectly, "separable" (the slope is infinite). Never a crash.

:func:`reliability_figure` draws the reliability diagram (observed response rate against
mean predicted probability per bin, with a histogram of the predictions).

:class:`CalibratedClassifier` is the optional probability calibration (Platt's logistic
recalibration or isotonic regression), a scikit-learn meta-estimator fitted only on the
rows given to its ``fit`` (out-of-fold predictions inside them), so a protocol that fits it
on a split's training rows never calibrates on test rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils.metaestimators import available_if

from amu_tf.errors import InputDataError

#: a calibration slope needs at least this many responders and non-responders
MIN_PER_CLASS = 5
EPS = 1e-6


def _logit(p):
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _check(y, p):
    y = np.asarray(y, dtype=float).ravel()
    p = np.asarray(p, dtype=float).ravel()
    if len(y) != len(p):
        raise InputDataError(f"calibration: {len(y)} labels but {len(p)} probabilities")
    if not np.isin(y, (0.0, 1.0)).all():
        raise InputDataError("calibration: labels must be 0 (non-responder) or 1 (responder), "
                             "without missing values")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise InputDataError("calibration: probabilities must be finite and within [0, 1]")
    return y.astype(int), p


def brier_score(y, p) -> float:
    """Mean squared difference between the label (0/1) and the probability."""
    y, p = _check(y, p)
    return float(np.mean((y - p) ** 2))


def calibration_intercept(y, p) -> tuple[float, float]:
    """``(a, SE(a))`` of ``logit P(y=1) = a + offset(logit p)`` (calibration-in-the-large);
    raises ``ValueError`` when it cannot be estimated (one class)."""
    import statsmodels.api as sm

    y, p = _check(y, p)
    if len(np.unique(y)) < 2:
        raise ValueError("one class only")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(),
                     offset=_logit(p)).fit()
    return float(fit.params[0]), float(fit.bse[0])


def calibration_slope(y, p) -> tuple[float, float]:
    """``(b, SE(b))`` of ``logit P(y=1) = a + b logit(p)``; raises ``ValueError`` when it
    cannot be estimated (one class, constant ``p``, separation, no convergence)."""
    import statsmodels.api as sm

    y, p = _check(y, p)
    lp = _logit(p)
    if len(np.unique(y)) < 2:
        raise ValueError("one class only")
    if np.ptp(lp) == 0:
        raise ValueError("constant probabilities: no slope")
    lo1, hi0 = lp[y == 1].min(), lp[y == 0].max()
    if lo1 > hi0 or lp[y == 1].max() < lp[y == 0].min():
        raise ValueError("separable: the probabilities split the classes perfectly "
                         "(the slope is infinite)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.Logit(y, sm.add_constant(lp, has_constant="add")).fit(disp=0, maxiter=100)
    b, se = float(fit.params[1]), float(fit.bse[1])
    if not fit.mle_retvals.get("converged", True) or not (np.isfinite(b) and np.isfinite(se)):
        raise ValueError("the logistic fit did not converge (near separation)")
    return b, se


def calibration_metrics(y, p, *, alpha: float = 0.05, n_boot: int = 1000, seed: int = 0,
                        min_per_class: int = MIN_PER_CLASS) -> dict:
    """Brier score (bootstrap CI), calibration intercept and slope (Wald CIs) of one set of
    predictions: ``{n, n_responders, mean_p, observed_rate, brier, brier_ci_low,
    brier_ci_high, intercept, intercept_ci_low, intercept_ci_high, slope, slope_ci_low,
    slope_ci_high, note}`` (NaN where not estimable, with the reason in ``note``)."""
    from amu_tf.evaluation.metrics import stratified_bootstrap_indices

    y, p = _check(y, p)
    n1 = int(y.sum())
    n0 = int(len(y) - n1)
    zc = stats.norm.ppf(1 - alpha / 2)
    out = {"n": int(len(y)), "n_responders": n1,
           "mean_p": float(p.mean()) if len(p) else np.nan,
           "observed_rate": float(y.mean()) if len(y) else np.nan,
           "brier": float(np.mean((y - p) ** 2)) if len(y) else np.nan}
    for k in ("brier_ci_low", "brier_ci_high", "intercept", "intercept_ci_low",
              "intercept_ci_high", "slope", "slope_ci_low", "slope_ci_high"):
        out[k] = np.nan
    out["note"] = ""
    if len(y) == 0:
        out["note"] = "no rows"
        return out
    if n1 == 0 or n0 == 0:
        out["note"] = "one class only: Brier score alone"
        return out
    if n_boot > 0:
        idx = stratified_bootstrap_indices(y, n_boot, seed)
        b = np.mean((y[idx] - p[idx]) ** 2, axis=1)
        out["brier_ci_low"] = float(np.quantile(b, alpha / 2))
        out["brier_ci_high"] = float(np.quantile(b, 1 - alpha / 2))
    if min(n1, n0) < min_per_class:
        out["note"] = (f"too small for a calibration slope: {n1} responder(s), {n0} "
                       f"non-responder(s); at least {min_per_class} of each are needed")
        return out
    a, ase = calibration_intercept(y, p)
    out.update(intercept=a, intercept_ci_low=a - zc * ase, intercept_ci_high=a + zc * ase)
    try:
        b, bse = calibration_slope(y, p)
        out.update(slope=b, slope_ci_low=b - zc * bse, slope_ci_high=b + zc * bse)
    except ValueError as exc:
        out["note"] = str(exc)
    return out


def calibration_per_cohort(y, p, cohorts, *, pooled: bool = True, **kwargs) -> pd.DataFrame:
    """:func:`calibration_metrics` per cohort (one row each, ``cohort`` first) and, with
    ``pooled``, over all rows (``cohort == "pooled"``)."""
    y, p = _check(y, p)
    cohorts = np.asarray(cohorts).astype(str)
    if len(cohorts) != len(y):
        raise InputDataError(f"calibration: {len(y)} labels but {len(cohorts)} cohorts")
    rows = [{"cohort": c, **calibration_metrics(y[cohorts == c], p[cohorts == c], **kwargs)}
            for c in pd.unique(cohorts)]
    if pooled:
        rows.append({"cohort": "pooled", **calibration_metrics(y, p, **kwargs)})
    return pd.DataFrame(rows)


def _averaged(pm: pd.DataFrame) -> pd.DataFrame:
    """One row per sample: ``p`` averaged over repeats when there are several."""
    if "repeat" in pm.columns and "row" in pm.columns and pm["repeat"].nunique() > 1:
        agg = {"y": ("y", "first"), "p": ("p", "mean")}
        if "cohort" in pm.columns:
            agg["cohort"] = ("cohort", "first")
        return pm.groupby("row", sort=True).agg(**agg).reset_index()
    return pm


def calibration_from_predictions(predictions: pd.DataFrame, models=None, **kwargs) -> pd.DataFrame:
    """:func:`calibration_per_cohort` for every model of an evaluation's held-out predictions
    (``model``, ``y``, ``p``, ``cohort``; a row's ``p`` averaged over repeats): one row per
    (model, cohort) plus each model's pooled row."""
    need = {"model", "y", "p"}
    if not need <= set(predictions.columns):
        raise InputDataError("calibration: the predictions need the columns model, y, p")
    models = list(pd.unique(predictions["model"])) if models is None else list(models)
    parts = []
    for m in models:
        pm = _averaged(predictions[predictions["model"] == m])
        cohorts = pm["cohort"] if "cohort" in pm.columns else np.full(len(pm), "all")
        t = calibration_per_cohort(pm["y"], pm["p"], cohorts, **kwargs)
        t.insert(0, "model", m)
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def reliability_curve(y, p, n_bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Per bin of predicted probability: ``mean_p``, ``observed_rate``, ``n`` (empty bins
    dropped; ``strategy`` ``quantile`` for equal-count bins, ``uniform`` for equal widths)."""
    y, p = _check(y, p)
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        raise InputDataError(f"reliability bins {strategy!r}: 'quantile' or 'uniform'")
    b = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, max(len(edges) - 2, 0))
    rows = [{"mean_p": float(p[b == i].mean()), "observed_rate": float(y[b == i].mean()),
             "n": int((b == i).sum())} for i in np.unique(b)]
    return pd.DataFrame(rows)


def reliability_figure(curves, n_bins: int = 10, strategy: str = "quantile",
                       title: str | None = None) -> Figure:
    """The reliability diagram of several models on one figure: observed response rate
    against mean predicted probability per bin (the diagonal is perfect calibration), and
    below it the histogram of each model's probabilities.

    ``curves``: ``{name: (y, p)}`` or a predictions frame (``model``, ``y``, ``p``; one
    curve per model, ``p`` averaged over repeats)."""
    if isinstance(curves, pd.DataFrame):
        curves = {m: (g["y"].to_numpy(), g["p"].to_numpy())
                  for m, g in ((m, _averaged(curves[curves["model"] == m]))
                               for m in pd.unique(curves["model"]))}
    fig = Figure(figsize=(7, 7.5))
    ax, axh = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    for name, (y, p) in curves.items():
        y, p = _check(y, p)
        rc = reliability_curve(y, p, n_bins, strategy)
        m = calibration_metrics(y, p, n_boot=0)
        extra = (f", slope {m['slope']:.2f}" if np.isfinite(m["slope"]) else "")
        ax.plot(rc["mean_p"], rc["observed_rate"], "o-", ms=4, lw=1.2,
                label=f"{name}: Brier {m['brier']:.3f}{extra}")
        axh.hist(p, bins=20, range=(0, 1), histtype="step", lw=1.2)
    ax.set(ylabel="observed response rate", xlim=(0, 1), ylim=(-0.02, 1.02))
    ax.legend(loc="upper left", fontsize=7)
    axh.set(xlabel="predicted probability of response", ylabel="samples")
    fig.suptitle(title or f"Reliability diagram ({strategy} bins, {n_bins})", fontsize=9)
    fig.tight_layout()
    return fig


def write_reliability_figure(curves, path, **kwargs) -> list:
    """Write :func:`reliability_figure` as PNG and SVG (``path`` with or without suffix);
    returns both paths."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = reliability_figure(curves, **kwargs)
    out = []
    for ext in (".png", ".svg"):
        q = path.with_suffix(ext)
        fig.savefig(q, dpi=120)
        out.append(q)
    return out


# ------------------------------------------------------------- the optional calibrator
def _inner_has(name):
    return lambda self: hasattr(self.estimator, name)


class CalibratedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier whose probabilities are recalibrated on out-of-fold predictions of its
    own training rows.

    ``fit(X, y, groups=None, cohorts=None)``:

    1. out-of-fold probabilities of ``estimator`` over ``X``: ``cv``-fold stratified splits
       of the given rows (``StratifiedGroupKFold`` by ``groups``, i.e. patients, when given),
       a clone fitted on each training part with the same side information;
    2. the calibrator fitted on those out-of-fold probabilities and ``y``: ``sigmoid``
       (Platt: a logistic regression of ``y`` on ``logit(p)``) or ``isotonic`` (scikit-learn's
       ``IsotonicRegression``, clipped to [0, 1]);
    3. ``estimator_``: a clone fitted on all the given rows; ``threshold_``: Youden's J on
       the calibrated out-of-fold probabilities.

    Only the rows given to ``fit`` are used, so inside a protocol split the calibration never
    sees a test row. (scikit-learn's ``CalibratedClassifierCV(ensemble=False)`` does steps
    1-3 but neither forwards patient groups to its folds and to the project's estimators nor
    keeps the out-of-fold predictions needed for a training-only threshold; it is the
    reference for the calibrators used here.) ``predict_proba`` is
    ``calibrator(estimator_.predict_proba(X)[:, 1])``; ``make_input_transform`` is the inner
    estimator's, when it has one.
    """

    def __init__(self, estimator=None, method="sigmoid", cv=5, seed=0):
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.seed = seed

    @available_if(_inner_has("make_input_transform"))
    def make_input_transform(self):
        """The inner estimator's input transform (a biomarker's score, ...)."""
        return self.estimator.make_input_transform()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            inner = self.estimator.__sklearn_tags__()
            tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X, y, groups=None, cohorts=None):
        """Out-of-fold probabilities, the calibrator, the final estimator and the threshold,
        all from these rows only (see the class docstring;
        :func:`~amu_tf.training.probability_calibration.fit_probability_calibration` does
        steps 1, 2 and the threshold, the same code that recalibrates an exported model)."""
        from sklearn.preprocessing import LabelEncoder

        from amu_tf.training.fit_estimator import fit_estimator
        from amu_tf.training.probability_calibration import (METHODS, TooFewForCalibration,
                                                             fit_probability_calibration)

        if self.estimator is None:
            raise InputDataError("CalibratedClassifier needs an estimator to calibrate")
        if self.method not in METHODS:
            raise InputDataError(f"calibration method {self.method!r}: 'sigmoid' (Platt) or "
                                 "'isotonic'")
        enc = LabelEncoder().fit(np.asarray(y).ravel())
        self.classes_ = enc.classes_
        if len(self.classes_) != 2:
            raise InputDataError("CalibratedClassifier: two classes are needed, got "
                                 f"{len(self.classes_)}")
        yy = enc.transform(np.asarray(y).ravel())
        try:
            self.calibration_ = fit_probability_calibration(
                self.estimator, X, yy, method=self.method, groups=groups, cohorts=cohorts,
                cv=self.cv, seed=self.seed)
        except TooFewForCalibration as exc:  # fitted on a protocol split's training rows
            raise InputDataError(
                f"--calibrate {self.method}: the smaller class has {exc.n_min} sample(s) among "
                f"the {exc.n_rows} training rows of a split; out-of-fold recalibration uses "
                f"{exc.cv} folds and needs at least {exc.cv} of each class: give more samples, "
                "use fewer protocol folds (--folds: more training rows per split), or leave "
                "out --calibrate") from None
        except InputDataError as exc:
            raise InputDataError(f"CalibratedClassifier: {exc}") from None
        self.estimator_ = clone(self.estimator)
        fit_estimator(self.estimator_, X, y, groups=groups, cohorts=cohorts)
        self.threshold_ = self.calibration_.threshold
        self.threshold_method_ = "youden_oof_calibrated"
        self.oof_brier_ = self.calibration_.fitted_on["brier_after"]
        return self

    def predict_proba(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "calibration_")
        p = np.asarray(self.estimator_.predict_proba(X), dtype=float)[:, 1]
        p = np.clip(self.calibration_.apply(np.nan_to_num(p, nan=0.5)), 0.0, 1.0)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)]
