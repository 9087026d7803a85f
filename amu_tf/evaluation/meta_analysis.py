"""Random-effects meta-analysis of a model's (or signature's) held-out scores across cohorts.

PredictIO (Bareche et al.) and Litchfield et al. (Cell 2021) report a signature's association
with response per cohort and pooled across cohorts with a random-effects model; this module
gives the same numbers for every model of an evaluation:

* **per cohort**: the ROC AUC with its DeLong standard error (DeLong, DeLong & Clarke-Pearson
  1988) and a 95% CI on the logit scale (so it stays inside [0, 1]); and the **log odds ratio
  per SD of the score**: the slope of a logistic regression (statsmodels ``Logit``) of the
  label on the score z-scored within the cohort, with its Wald SE and CI. The score is
  ``logit(p)`` of the model's probability by default (for a biomarker ``p`` is a logistic map
  of its score, so ``logit(p)`` is the score itself up to a linear map; for a trained model it
  is its linear predictor), and the per-SD scaling makes models comparable.
* **pooled**: statsmodels' :func:`~statsmodels.stats.meta_analysis.combine_effects`,
  random effects with the DerSimonian-Laird estimate of tau^2 (``method="dl"``, the default)
  or the iterated Paule-Mandel estimate (``method="iterated"``; statsmodels has no REML),
  tau^2 truncated at 0 (statsmodels 0.15 does not truncate the DerSimonian-Laird one). The
  pooled estimate with its 95% CI, the 95% **prediction interval** for the effect in a new
  cohort (Higgins, Thompson & Spiegelhalter 2009: ``mu +- t(k-2) sqrt(tau^2 + SE^2)``, only
  for k >= 3 cohorts), tau^2, I^2 and Cochran's Q with its p-value. AUCs are pooled on the
  logit scale (delta-method SE ``se / (AUC (1 - AUC))``) and transformed back.

A cohort that cannot give an effect is kept in the per-cohort table with a ``note`` and left
out of the pooling, never a crash: fewer than :data:`MIN_PER_CLASS` responders or
non-responders ("too small"), one class only, a score that separates the classes perfectly
(AUC 0 or 1: the odds ratio is infinite, "separable"), a constant score, or a logistic fit
that does not converge.

Entry points: :func:`meta_analysis_from_predictions` (the ``predictions`` frame of a
:class:`~amu_tf.evaluation.protocols.ProtocolResult`), :func:`meta_analyse` (one model's
arrays), :func:`write_forest_plots` (PNG and SVG per model plus the ranked summary).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from amu_tf.errors import InputDataError

#: a cohort needs at least this many responders and non-responders for a standard error
MIN_PER_CLASS = 3
#: ``logit(p)`` clips ``p`` to ``[EPS, 1 - EPS]``
EPS = 1e-6
#: random-effects estimators of tau^2 (statsmodels ``method_re`` names)
METHODS = {"dl": "DerSimonian-Laird", "iterated": "Paule-Mandel (iterated)"}
EFFECTS = {"log_or": "log odds ratio per SD", "auc": "ROC AUC"}


def logit(p) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` clipped to ``[EPS, 1 - EPS]`` (a probability of exactly
    0 or 1 stays finite)."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _check_arrays(y, score, cohorts=None):
    y = np.asarray(y, dtype=float).ravel()
    score = np.asarray(score, dtype=float).ravel()
    if len(y) != len(score) or (cohorts is not None and len(cohorts) != len(y)):
        raise InputDataError(f"meta-analysis: {len(y)} labels and {len(score)} scores"
                             + ("" if cohorts is None else f" and {len(cohorts)} cohorts")
                             + ": one of each per sample is needed")
    if not np.isin(y, (0.0, 1.0)).all():
        raise InputDataError("meta-analysis: labels must be 0 (non-responder) or 1 "
                             "(responder), without missing values")
    if not np.isfinite(score).all():
        raise InputDataError("meta-analysis: scores contain NaN or inf")
    return y.astype(int), score


def delong_auc(y, score) -> tuple[float, float]:
    """``(AUC, DeLong SE)`` of ``score`` for the label ``y`` (1 = responder).

    The AUC is the Mann-Whitney probability that a responder scores above a non-responder
    (ties count 1/2); its variance is DeLong's: ``var(V10)/m + var(V01)/n`` over the ``m``
    responders' and ``n`` non-responders' placement values. NaN SE with fewer than 2 of a
    class."""
    y, score = _check_arrays(y, score)
    pos, neg = score[y == 1], score[y == 0]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return np.nan, np.nan
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = float(psi.mean())
    if m < 2 or n < 2:
        return auc, np.nan
    return auc, float(np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))


def log_odds_ratio_per_sd(y, score) -> dict:
    """The logistic regression ``logit P(y=1) = a + b z`` with ``z`` the score z-scored over
    the given rows (population SD): ``{"log_or": b, "se": SE(b), "note": ""}``, or NaNs and a
    note when the slope does not exist (one class, constant score, perfect separation, no
    convergence)."""
    import statsmodels.api as sm

    y, score = _check_arrays(y, score)
    out = {"log_or": np.nan, "se": np.nan, "note": ""}
    if len(np.unique(y)) < 2:
        out["note"] = "one class only"
        return out
    sd = score.std()
    if not sd > 0:
        out["note"] = "constant score"
        return out
    auc, _ = delong_auc(y, score)
    if auc in (0.0, 1.0):
        out["note"] = "separable: the score splits the classes perfectly (odds ratio infinite)"
        return out
    z = (score - score.mean()) / sd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.Logit(y, sm.add_constant(z, has_constant="add")).fit(disp=0, maxiter=100)
        except Exception as exc:  # statsmodels' separation / singular-matrix errors
            out["note"] = f"logistic fit failed ({type(exc).__name__})"
            return out
    b, se = float(fit.params[1]), float(fit.bse[1])
    if not fit.mle_retvals.get("converged", True) or not (np.isfinite(b) and np.isfinite(se)):
        out["note"] = "logistic fit did not converge (near separation)"
        return out
    out["log_or"], out["se"] = b, se
    return out


def cohort_effects(y, score, cohorts, *, min_per_class: int = MIN_PER_CLASS,
                   alpha: float = 0.05) -> pd.DataFrame:
    """One row per cohort: ``cohort, n, n_responders, auc, auc_se, auc_ci_low, auc_ci_high,
    log_or, log_or_se, log_or_ci_low, log_or_ci_high, odds_ratio, note``. A cohort with fewer
    than ``min_per_class`` of a class keeps its counts (and its AUC when both classes are
    there) with the note "too small" and NaN effects."""
    y, score = _check_arrays(y, score, cohorts)
    cohorts = np.asarray(cohorts).astype(str)
    zc = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for c in pd.unique(cohorts):
        sel = cohorts == c
        yc, sc = y[sel], score[sel]
        n1 = int(yc.sum())
        n0 = int(len(yc) - n1)
        row = {"cohort": c, "n": int(len(yc)), "n_responders": n1}
        auc, auc_se = delong_auc(yc, sc)
        row.update(auc=auc, auc_se=np.nan, auc_ci_low=np.nan, auc_ci_high=np.nan,
                   log_or=np.nan, log_or_se=np.nan, log_or_ci_low=np.nan,
                   log_or_ci_high=np.nan, odds_ratio=np.nan, note="")
        if n1 == 0 or n0 == 0:
            row["note"] = "one class only: no AUC or odds ratio"
        elif min(n1, n0) < min_per_class:
            row["note"] = (f"too small: {n1} responder(s), {n0} non-responder(s); at least "
                           f"{min_per_class} of each are needed for a standard error")
        else:
            lo = log_odds_ratio_per_sd(yc, sc)
            if auc in (0.0, 1.0) or not auc_se > 0:
                row["note"] = lo["note"] or "AUC without variance"
            else:
                row["auc_se"] = auc_se
                g, gse = np.log(auc / (1 - auc)), auc_se / (auc * (1 - auc))
                row["auc_ci_low"] = float(1 / (1 + np.exp(-(g - zc * gse))))
                row["auc_ci_high"] = float(1 / (1 + np.exp(-(g + zc * gse))))
                if lo["note"]:
                    row["note"] = lo["note"]
                else:
                    b, se = lo["log_or"], lo["se"]
                    row.update(log_or=b, log_or_se=se, log_or_ci_low=b - zc * se,
                               log_or_ci_high=b + zc * se, odds_ratio=float(np.exp(b)))
        rows.append(row)
    return pd.DataFrame(rows)


def pool_effects(effects, variances, *, method: str = "dl", alpha: float = 0.05) -> dict:
    """Random-effects pooling of ``k`` per-cohort effects with statsmodels'
    ``combine_effects``: ``{k, estimate, se, ci_low, ci_high, pi_low, pi_high, tau2, i2, q,
    q_pvalue, method, note}``. Non-finite effects or variances are dropped first. k = 0: all
    NaN; k = 1: that cohort's effect and CI, no heterogeneity ("one cohort: nothing to
    pool"); k = 2: no prediction interval (it needs k >= 3)."""
    from statsmodels.stats.meta_analysis import combine_effects

    if method not in METHODS:
        raise InputDataError(f"meta-analysis method {method!r}: choose from {', '.join(METHODS)}")
    eff = np.asarray(effects, dtype=float)
    var = np.asarray(variances, dtype=float)
    keep = np.isfinite(eff) & np.isfinite(var) & (var > 0)
    eff, var = eff[keep], var[keep]
    k = int(len(eff))
    zc = stats.norm.ppf(1 - alpha / 2)
    out = {"k": k, "estimate": np.nan, "se": np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "pi_low": np.nan, "pi_high": np.nan, "tau2": np.nan, "i2": np.nan, "q": np.nan,
           "q_pvalue": np.nan, "method": METHODS[method], "note": ""}
    if k == 0:
        out["note"] = "no cohort with an estimable effect"
        return out
    if k == 1:
        se = float(np.sqrt(var[0]))
        out.update(estimate=float(eff[0]), se=se, ci_low=float(eff[0] - zc * se),
                   ci_high=float(eff[0] + zc * se), note="one cohort: nothing to pool")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = combine_effects(eff, var, method_re=method, alpha=alpha)
    mu, se = float(res.mean_effect_re), float(res.sd_eff_w_re)
    tau2 = float(res.tau2)
    if not tau2 > 0:
        # statsmodels 0.15 leaves the DerSimonian-Laird moment estimate untruncated: a
        # negative tau^2 (Q < k - 1) must be 0 (DerSimonian & Laird 1986), and then the
        # random-effects estimate is the fixed-effect one
        tau2, mu, se = 0.0, float(res.mean_effect_fe), float(res.sd_eff_w_fe)
    q = float(res.q)
    out.update(estimate=mu, se=se, ci_low=mu - zc * se, ci_high=mu + zc * se, tau2=tau2,
               i2=float(max(0.0, (q - (k - 1)) / q)) if q > 0 else 0.0,
               q=q, q_pvalue=float(stats.chi2.sf(q, k - 1)))
    if k >= 3:
        half = stats.t.ppf(1 - alpha / 2, k - 2) * np.sqrt(tau2 + se ** 2)
        out.update(pi_low=mu - half, pi_high=mu + half)
    else:
        out["note"] = "two cohorts: no prediction interval (needs 3 or more)"
    return out


def _pooled_rows(per_cohort: pd.DataFrame, method: str, alpha: float) -> list[dict]:
    rows = []
    lo = pool_effects(per_cohort["log_or"], per_cohort["log_or_se"] ** 2, method=method,
                      alpha=alpha)
    rows.append({"effect": "log_or", **lo})
    a = per_cohort["auc"].to_numpy(float)
    with np.errstate(all="ignore"):
        g = np.log(a / (1 - a))
        gvar = (per_cohort["auc_se"].to_numpy(float) / (a * (1 - a))) ** 2
    au = pool_effects(g, gvar, method=method, alpha=alpha)
    expit = (lambda v: float(1 / (1 + np.exp(-v))) if np.isfinite(v) else np.nan)
    for key in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
        au[key] = expit(au[key])
    au["se"] = np.nan  # on the logit scale; the CI carries the uncertainty
    rows.append({"effect": "auc", **au})
    excluded = per_cohort.loc[per_cohort["note"] != "", "cohort"].tolist()
    for r in rows:
        r["cohorts_excluded"] = ", ".join(map(str, excluded))
    return rows


def meta_analyse(y, score, cohorts, *, model: str = "model", method: str = "dl",
                 alpha: float = 0.05, min_per_class: int = MIN_PER_CLASS):
    """One model's meta-analysis: ``(per_cohort, pooled)`` DataFrames, both with a ``model``
    column; ``pooled`` has one row per effect (``log_or``, ``auc``: see
    :func:`pool_effects` for the columns; AUC rows on the AUC scale). ``score`` is used as
    given (pass ``logit(p)`` for probabilities, as :func:`meta_analysis_from_predictions`
    does)."""
    per = cohort_effects(y, score, cohorts, min_per_class=min_per_class, alpha=alpha)
    per.insert(0, "model", model)
    pooled = pd.DataFrame(_pooled_rows(per, method, alpha))
    pooled.insert(0, "model", model)
    return per, pooled


def meta_analysis_from_predictions(predictions: pd.DataFrame, models=None, *,
                                   method: str = "dl", score: str = "logit",
                                   alpha: float = 0.05, min_per_class: int = MIN_PER_CLASS):
    """Meta-analysis of every model of an evaluation's held-out predictions.

    Args:
        predictions: rows with ``model``, ``cohort``, ``y``, ``p`` (and ``row``/``repeat``
            when there are several repeats: each row's ``p`` is averaged over the repeats
            first, so every sample counts once), e.g. ``ProtocolResult.predictions`` of
            ``loco`` (each cohort scored by a model trained on the others).
        models: the models to analyse (default: all, in order of appearance).
        method: ``"dl"`` (DerSimonian-Laird) or ``"iterated"`` (Paule-Mandel).
        score: ``"logit"`` (``logit(p)``, default) or ``"p"``.

    Returns:
        ``(per_cohort, pooled)``: DataFrames over all models (columns as
        :func:`meta_analyse`).
    """
    need = {"model", "cohort", "y", "p"}
    if not need <= set(predictions.columns):
        raise InputDataError("meta-analysis: the predictions need the columns "
                             f"{', '.join(sorted(need))} (missing "
                             f"{', '.join(sorted(need - set(predictions.columns)))})")
    if score not in ("logit", "p"):
        raise InputDataError(f"meta-analysis score {score!r}: 'logit' or 'p'")
    models = list(pd.unique(predictions["model"])) if models is None else list(models)
    pers, pools = [], []
    for m in models:
        pm = predictions[predictions["model"] == m]
        if pm.empty:
            raise InputDataError(f"meta-analysis: no predictions of model {m!r}")
        key = "row" if "row" in pm.columns else None
        if key is not None and "repeat" in pm.columns and pm["repeat"].nunique() > 1:
            pm = (pm.groupby(key, sort=True)
                  .agg(y=("y", "first"), p=("p", "mean"), cohort=("cohort", "first"))
                  .reset_index())
        s = logit(pm["p"]) if score == "logit" else pm["p"].to_numpy(float)
        per, pooled = meta_analyse(pm["y"].to_numpy(), s, pm["cohort"].astype(str).to_numpy(),
                                   model=m, method=method, alpha=alpha,
                                   min_per_class=min_per_class)
        pers.append(per)
        pools.append(pooled)
    return pd.concat(pers, ignore_index=True), pd.concat(pools, ignore_index=True)


# ----------------------------------------------------------------------------- figures
def _effect_columns(effect):
    if effect == "log_or":
        return "log_or", "log_or_ci_low", "log_or_ci_high", 0.0
    if effect == "auc":
        return "auc", "auc_ci_low", "auc_ci_high", 0.5
    raise InputDataError(f"forest plot effect {effect!r}: choose from {', '.join(EFFECTS)}")


def _fmt(v, lo, hi):
    if not np.isfinite(v):
        return "n/a"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{v:.2f}"
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


def forest_figure(per_cohort: pd.DataFrame, pooled: pd.DataFrame, effect: str = "log_or",
                  title: str | None = None) -> Figure:
    """One model's forest plot: a square (area ~ random-effects weight) and CI per cohort,
    cohorts left out of the pooling listed with their note, the pooled estimate as a
    diamond (its 95% CI) with the prediction interval as a bar, tau^2 and I^2 in the
    caption. ``per_cohort``/``pooled`` are one model's rows of :func:`meta_analyse`."""
    col, lo_col, hi_col, null = _effect_columns(effect)
    pool = pooled[pooled["effect"] == effect].iloc[0]
    n_rows = len(per_cohort) + 2
    fig = Figure(figsize=(9.5, 1.2 + 0.42 * n_rows))
    ax = fig.subplots()
    ok = per_cohort["note"].eq("") & np.isfinite(per_cohort[col]) & \
        np.isfinite(per_cohort[lo_col])
    var = ((per_cohort[hi_col] - per_cohort[lo_col]) / (2 * 1.96)) ** 2
    tau2 = pool["tau2"] if np.isfinite(pool["tau2"]) else 0.0
    with np.errstate(all="ignore"):
        w = np.where(ok, 1.0 / (var + tau2), 0.0)
    w = np.where(np.isfinite(w), w, 0.0)
    w = w / w.sum() if w.sum() > 0 else w
    labels, texts = [], []
    for i, (_, r) in enumerate(per_cohort.iterrows()):
        yv = n_rows - 1 - i
        name = f"{r['cohort']} (n={r['n']}, {r['n_responders']} R)"
        labels.append((yv, name))
        if ok.iloc[i]:
            ax.plot([r[lo_col], r[hi_col]], [yv, yv], color="black", lw=1.2)
            ax.plot(r[col], yv, "s", color="steelblue", ms=4 + 14 * np.sqrt(w[i]))
            texts.append((yv, f"{_fmt(r[col], r[lo_col], r[hi_col])}  w {100 * w[i]:.0f}%"))
        else:
            texts.append((yv, "excluded: " + r["note"].split(":")[0]))
    yd = 0.5
    est, clo, chi = pool["estimate"], pool["ci_low"], pool["ci_high"]
    if np.isfinite(est):
        if np.isfinite(pool["pi_low"]):
            ax.plot([pool["pi_low"], pool["pi_high"]], [yd, yd], color="firebrick", lw=2,
                    alpha=0.45, label="95% prediction interval")
        ax.fill([clo, est, chi, est], [yd, yd + 0.3, yd, yd - 0.3], color="firebrick",
                label="pooled (random effects), 95% CI")
        ax.legend(loc="lower right", fontsize=7, frameon=False)
    labels.append((yd, f"pooled ({pool['k']} cohorts)"))
    texts.append((yd, _fmt(est, clo, chi)))
    ax.axvline(null, color="grey", ls="--", lw=1)
    ax.set_yticks([v for v, _ in labels], [t for _, t in labels], fontsize=8)
    ax.set_ylim(-0.3, n_rows - 0.3)
    lows = pd.concat([per_cohort.loc[ok, lo_col], pd.Series([clo, pool["pi_low"], null])])
    highs = pd.concat([per_cohort.loc[ok, hi_col], pd.Series([chi, pool["pi_high"], null])])
    x0, x1 = np.nanmin(lows.to_numpy(float)), np.nanmax(highs.to_numpy(float))
    pad = 0.05 * (x1 - x0 if x1 > x0 else 1.0)
    ax.set_xlim(x0 - pad, x1 + pad)
    tx = ax.secondary_yaxis("right")
    tx.set_yticks([v for v, _ in texts], [t for _, t in texts], fontsize=8)
    ax.set_xlabel(EFFECTS[effect] + (" (0 = no association)" if effect == "log_or"
                                      else " (0.5 = chance)"))
    i2 = pool["i2"]
    het = (f"tau² {pool['tau2']:.3f}, I² {100 * i2:.0f}%, Q p={pool['q_pvalue']:.2g}"
           if np.isfinite(i2) else pool["note"])
    model = per_cohort["model"].iloc[0] if "model" in per_cohort else "model"
    fig.suptitle(title or f"{model}: {EFFECTS[effect]} per cohort, {pool['method']}; {het}",
                 fontsize=9)
    fig.tight_layout()
    return fig


def summary_forest_figure(pooled: pd.DataFrame, effect: str = "log_or",
                          title: str | None = None) -> Figure:
    """Every model's pooled estimate (95% CI as a bar, prediction interval as a thin line),
    ranked from the largest pooled effect at the top; models without a pooled estimate
    are listed at the bottom."""
    _, _, _, null = _effect_columns(effect)
    t = pooled[pooled["effect"] == effect].copy()
    t["_key"] = t["estimate"].fillna(-np.inf)
    t = t.sort_values("_key", ascending=True, kind="mergesort")
    n = len(t)
    fig = Figure(figsize=(9.5, 1.2 + 0.32 * max(n, 1)))
    ax = fig.subplots()
    names, texts = [], []
    for i, (_, r) in enumerate(t.iterrows()):
        if np.isfinite(r["pi_low"]):
            ax.plot([r["pi_low"], r["pi_high"]], [i, i], color="grey", lw=0.8)
        if np.isfinite(r["estimate"]):
            ax.plot([r["ci_low"], r["ci_high"]], [i, i], color="black", lw=2)
            ax.plot(r["estimate"], i, "D", color="firebrick", ms=5)
        names.append(f"{r['model']} (k={r['k']})")
        i2 = f", I² {100 * r['i2']:.0f}%" if np.isfinite(r["i2"]) else ""
        texts.append(_fmt(r["estimate"], r["ci_low"], r["ci_high"]) + i2)
    ax.axvline(null, color="grey", ls="--", lw=1)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    tx = ax.secondary_yaxis("right")
    tx.set_yticks(range(n), texts, fontsize=7)
    ax.set_xlabel(f"pooled {EFFECTS[effect]} (random effects; bar 95% CI, line 95% "
                  "prediction interval)")
    fig.suptitle(title or f"All models ranked by pooled {EFFECTS[effect]}", fontsize=9)
    fig.tight_layout()
    return fig


def safe_name(model: str) -> str:
    """A file-name-safe form of a model name (``sig:IFN_Ayers`` -> ``sig_IFN_Ayers``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(model)).strip("_") or "model"


def write_forest_plots(per_cohort: pd.DataFrame, pooled: pd.DataFrame, out_dir,
                       effect: str = "log_or", prefix: str = "forest") -> list[Path]:
    """Write ``{prefix}_<model>.png/.svg`` for every model and ``{prefix}_summary.png/.svg``
    (all models ranked) under ``out_dir``; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(fig, stem):
        for ext in ("png", "svg"):
            p = out_dir / f"{stem}.{ext}"
            fig.savefig(p, dpi=120)
            paths.append(p)

    for m in pd.unique(per_cohort["model"]):
        save(forest_figure(per_cohort[per_cohort["model"] == m],
                           pooled[pooled["model"] == m], effect),
             f"{prefix}_{safe_name(m)}")
    save(summary_forest_figure(pooled, effect), f"{prefix}_summary")
    return paths


def pooled_markdown(pooled: pd.DataFrame, effect: str = "log_or") -> str:
    """The pooled rows of one effect as a Markdown table (model, k, estimate [CI],
    prediction interval, tau^2, I^2, note), ranked by estimate."""
    from amu_tf.evaluation.tables import to_markdown

    t = pooled[pooled["effect"] == effect].sort_values("estimate", ascending=False,
                                                       na_position="last")
    shown = pd.DataFrame({
        "model": t["model"], "cohorts": t["k"],
        f"pooled {EFFECTS[effect]} (95% CI)": [_fmt(*v) for v in
                                               zip(t["estimate"], t["ci_low"], t["ci_high"])],
        "95% prediction interval": [f"[{a:.2f}, {b:.2f}]" if np.isfinite(a) else "n/a"
                                    for a, b in zip(t["pi_low"], t["pi_high"])],
        "tau²": t["tau2"].map(lambda v: f"{v:.3f}" if np.isfinite(v) else "n/a"),
        "I²": t["i2"].map(lambda v: f"{100 * v:.0f}%" if np.isfinite(v) else "n/a"),
        "note": t["note"].fillna("")})  # a CSV read back turns "" into NaN
    return to_markdown(shown, index=False)
