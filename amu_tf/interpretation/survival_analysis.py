"""Survival: univariate Cox proportional hazards per gene and for the model's score (the
paper's Figure 4, with CIs and FDR), and Kaplan-Meier curves of predicted responders vs
non-responders with a log-rank p-value. Uses lifelines.

    surv = survival_frame(table)                              # os_time, os_event (checked)
    cox = cox_univariate(surv, table[genes].assign(score=p))  # covariate, hr, ci, p, fdr
    km = kaplan_meier(surv, predicted, "km.png")              # {"logrank_p", ...}
    km, fig = kaplan_meier_figure(surv, predicted)            # the same, plot as a Figure
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from amu_tf.errors import InputDataError


def bh_fdr(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        from scipy.stats import false_discovery_control

        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


def survival_frame(table: pd.DataFrame, time_col="os_time", event_col="os_event",
                   min_rows=10, min_events=3) -> pd.DataFrame:
    """The rows with usable survival, as ``time, event`` indexed like ``table``.

    Raises :class:`InputDataError` with the reason when the columns are missing or too few rows
    or events are left.
    """
    missing = [c for c in (time_col, event_col) if c not in table.columns]
    if missing:
        raise InputDataError(f"no survival data: column(s) {', '.join(missing)} not in the table")
    t = pd.to_numeric(table[time_col], errors="coerce")
    e = pd.to_numeric(table[event_col], errors="coerce")
    ok = t.notna() & e.notna() & (t > 0)
    df = pd.DataFrame({"time": t[ok], "event": e[ok].astype(int)})
    if len(df) < min_rows or df["event"].sum() < min_events:
        raise InputDataError(
            f"too little survival data: {len(df)} rows with {time_col}/{event_col}, "
            f"{int(df['event'].sum())} events (need {min_rows} rows and {min_events} events)")
    return df


def cox_univariate(surv: pd.DataFrame, covariates: pd.DataFrame, standardize=True,
                   penalizer=0.0, strata=None) -> pd.DataFrame:
    """One Cox model per covariate column (rows aligned on ``surv``'s index).

    With ``standardize`` each covariate is z-scored over the rows used, so the hazard ratio is
    per standard deviation. ``strata`` (a Series aligned on ``surv``, e.g. the cohort) gives
    each stratum its own baseline hazard, so cohorts with different survival do not confound.
    Returns ``covariate, hr, ci_low, ci_high, log_hr, se, p, fdr, n,
    events``, sorted by p; FDR is Benjamini-Hochberg over the covariates given.
    """
    from lifelines import CoxPHFitter

    rows = []
    cov = covariates.loc[surv.index]
    for name in cov.columns:
        x = pd.to_numeric(cov[name], errors="coerce")
        ok = x.notna()
        xs = x[ok]
        row = {"covariate": name, "n": int(ok.sum()), "events": int(surv["event"][ok].sum())}
        if ok.sum() < 5 or xs.std() == 0:
            rows.append({**row, "hr": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                         "log_hr": np.nan, "se": np.nan, "p": np.nan})
            continue
        if standardize:
            xs = (xs - xs.mean()) / xs.std()
        df = pd.DataFrame({"time": surv["time"][ok], "event": surv["event"][ok], "x": xs})
        use_strata = None
        if strata is not None:
            st = pd.Series(strata).loc[df.index].astype(str)
            if st.nunique() > 1:
                df["stratum"] = st
                use_strata = ["stratum"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cph = CoxPHFitter(penalizer=penalizer).fit(df, "time", "event", strata=use_strata)
        s = cph.summary.loc["x"]
        rows.append({**row, "hr": s["exp(coef)"], "ci_low": s["exp(coef) lower 95%"],
                     "ci_high": s["exp(coef) upper 95%"], "log_hr": s["coef"],
                     "se": s["se(coef)"], "p": s["p"]})
    out = pd.DataFrame(rows)
    out["fdr"] = bh_fdr(out["p"])
    cols = ["covariate", "hr", "ci_low", "ci_high", "log_hr", "se", "p", "fdr", "n", "events"]
    return out[cols].sort_values("p", kind="mergesort", na_position="last").reset_index(drop=True)


#: resolution of the Kaplan-Meier figures when saved
FIGURE_DPI = 120

KM_LABELS = ("predicted non-responder", "predicted responder")
KM_TITLE = "Overall survival by predicted response"


def kaplan_meier(surv: pd.DataFrame, predicted, path=None, labels=KM_LABELS,
                 title=KM_TITLE) -> dict:
    """KM curves of the two predicted groups (``predicted`` 0/1 aligned on ``surv``) and the
    log-rank test. Writes the plot to ``path`` when given."""
    res, kms = _kaplan_meier_fit(surv, predicted, labels)
    if path is not None:
        _km_figure(kms, res, title).savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")
    return res


def kaplan_meier_figure(surv: pd.DataFrame, predicted, labels=KM_LABELS,
                        title=KM_TITLE):
    """``(result, figure)``: :func:`kaplan_meier`'s numbers and its plot as a ``Figure``."""
    res, kms = _kaplan_meier_fit(surv, predicted, labels)
    return res, _km_figure(kms, res, title)


def _kaplan_meier_fit(surv, predicted, labels):
    """The log-rank numbers and the two fitted ``KaplanMeierFitter`` s."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    g = pd.Series(np.asarray(predicted), index=surv.index).astype(int)
    if g.nunique() < 2:
        raise InputDataError("Kaplan-Meier: every row is predicted in the same group")
    a, b = surv[g == 0], surv[g == 1]
    lr = logrank_test(a["time"], b["time"], a["event"], b["event"])
    res = {"logrank_p": float(lr.p_value), "logrank_stat": float(lr.test_statistic),
           "n_group0": int(len(a)), "n_group1": int(len(b)),
           "events_group0": int(a["event"].sum()), "events_group1": int(b["event"].sum())}
    kms = []
    for part, lab in ((a, labels[0]), (b, labels[1])):
        km = KaplanMeierFitter(label=f"{lab} (n={len(part)})").fit(part["time"], part["event"])
        kms.append(km)
        res[f"median_{'group0' if part is a else 'group1'}"] = float(km.median_survival_time_)
    return res, kms


def _km_figure(kms, res, title):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for km in kms:
        km.plot_survival_function(ax=ax, ci_show=True)
    ax.set_xlabel("days")
    ax.set_ylabel("survival probability")
    ax.set_title(f"{title}\nlog-rank p = {res['logrank_p']:.3g}")
    return fig
