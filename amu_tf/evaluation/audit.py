"""Leakage audit: what makes a published result too good to be true, checked on the table
before any model sees it.

    result = LeakageAudit().audit_table(df)        # or audit_table(df)
    result.has_leak, result.findings               # Finding(name, severity, evidence, numbers)
    print("\\n".join(result.lines()))

Checks (each gives one or more findings; severity ``leak``, ``warning`` or ``ok``):

* **per-sample statistics vs label**: row sum, library size (sum of linear values), zero
  count and missing (NaN) count of each sample, computed on the values as given; the AUC of
  the statistic for the label (and within each cohort with >= 5 samples of each class). A leak
  when ``max(AUC, 1 - AUC) >= 0.95``, a warning from 0.8. A statistic this predictive means a
  model can read the label off the normalisation, not the biology (the paper table's responder
  rows were divided by ``sum + label``).
* **duplicates**: exact duplicate expression rows (counted per class: rows that repeat an
  earlier row) and near-duplicates (Pearson r > 0.9999 between two rows' panel values that
  are not exact copies). Copies on both sides of a split are a leak; near-duplicates of one
  patient are a warning (keep them in one group).
* **sample and patient ids**: the same sample id twice is a leak; a patient with several
  samples is fine (reported; group splits by patient).
* **cohort confounded with label**: with two or more cohorts, a cohort of >= 10 labeled
  samples that are all one class, or Cramér's V between cohort and label >= 0.8, is a leak
  (the model can learn the cohort); V >= 0.5 is a warning.

Input tables: the cohort table (``amu_tf.data.cohort_table``, log2 scale) or the paper's own
table format (160 gene columns + ``response``; values are constituent ratios or ``-ln`` of
them), detected by :func:`detect_format`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from amu_tf.panel import panel_symbols

LEAK, WARNING, OK = "leak", "warning", "ok"
SEVERITY_ORDER = {LEAK: 0, WARNING: 1, OK: 2}

COHORT_TABLE = "cohort_table"
PAPER_TABLE = "paper_table"


@dataclass
class Finding:
    """One audit result: what was checked, how bad, the evidence in words and numbers."""

    name: str
    severity: str
    evidence: str
    numbers: dict = field(default_factory=dict)
    check: str = ""

    def line(self) -> str:
        return f"{self.severity.upper():8s}{self.name}: {self.evidence}"


@dataclass
class AuditResult:
    """All findings for one table, plus what the table was."""

    findings: list
    source: str = ""
    table_format: str = COHORT_TABLE
    value_scale: str = "log2"
    n_samples: int = 0
    n_labeled: int = 0
    n_responders: int = 0
    thresholds: dict = field(default_factory=dict)

    @property
    def leaks(self) -> list:
        return [f for f in self.findings if f.severity == LEAK]

    @property
    def warnings(self) -> list:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def has_leak(self) -> bool:
        return bool(self.leaks)

    def verdict(self) -> str:
        if self.has_leak:
            return (f"LEAKY: {len(self.leaks)} leak(s), {len(self.warnings)} warning(s) - do not "
                    "train or report metrics on this table as it is")
        return f"CLEAN: no leak found ({len(self.warnings)} warning(s))"

    def header(self) -> str:
        return (f"audit of {self.source or 'table'} ({self.table_format}, values "
                f"{self.value_scale}):"
                f" {self.n_samples} samples, {self.n_labeled} labeled, "
                f"{self.n_responders} responders")

    def lines(self) -> list[str]:
        """The findings, leaks first, then the verdict."""
        ordered = sorted(self.findings, key=lambda f: SEVERITY_ORDER[f.severity])
        return [self.header()] + [f.line() for f in ordered] + [self.verdict()]

    def to_json(self) -> dict:
        return {
            "source": self.source, "table_format": self.table_format,
            "value_scale": self.value_scale, "n_samples": self.n_samples,
            "n_labeled": self.n_labeled, "n_responders": self.n_responders,
            "has_leak": self.has_leak, "n_leaks": len(self.leaks),
            "n_warnings": len(self.warnings), "verdict": self.verdict(),
            "thresholds": self.thresholds,
            "findings": [asdict(f) for f in sorted(
                self.findings, key=lambda f: SEVERITY_ORDER[f.severity])],
        }

    def to_markdown(self) -> str:
        out = [f"# Leakage audit: {self.source or 'table'}", "",
               f"{self.header()}.", "", f"**{self.verdict()}**", "",
               "| severity | check | evidence |", "|---|---|---|"]
        for f in sorted(self.findings, key=lambda f: SEVERITY_ORDER[f.severity]):
            out.append(f"| {f.severity} | {f.name} | {f.evidence.replace('|', '/')} |")
        t = self.thresholds
        out += ["", f"Thresholds: statistic AUC leak >= {t.get('leak_auc')}, warning >= "
                f"{t.get('warning_auc')} (max(AUC, 1 - AUC)); near-duplicate Pearson r > "
                f"{t.get('near_duplicate_r')}; cohort-label Cramér's V leak >= "
                f"{t.get('cramers_v_leak')}, warning >= {t.get('cramers_v_warning')}; a cohort "
                f"all one class with >= {t.get('min_confounded_cohort')} labeled samples.", ""]
        return "\n".join(out)


def detect_format(df: pd.DataFrame) -> str:
    """``paper_table`` for the paper's own CSV (160 gene columns + ``response``, no sample or
    cohort columns), else ``cohort_table``."""
    genes = set(panel_symbols())
    cols = set(df.columns)
    if "response" in cols and genes <= cols and not ({"sample", "cohort"} & cols):
        return PAPER_TABLE
    return COHORT_TABLE


def paper_table_scale(x: np.ndarray) -> str:
    """The scale of the paper authors' table: ``"ratio"`` (each gene's share of the panel,
    all values in [0, 1]) or ``"-ln ratio"`` (their log file; a value above 1 is a ratio
    below 0.37, which 160 shares summing to 1 must have). The one rule used by the audit and
    by ``components.evaluate.load_paper_table``."""
    finite = x[np.isfinite(x)]
    if finite.size and finite.min() >= 0 and finite.max() <= 1:
        return "ratio"
    return "-ln ratio"


def _value_scale(x: np.ndarray, table_format: str) -> str:
    return "log2" if table_format == COHORT_TABLE else paper_table_scale(x)


LINEAR_TEXT = {"log2": "2**x - 1", "ratio": "the ratios", "-ln ratio": "exp(-x), 0 kept 0"}


def to_linear(x: np.ndarray, scale: str) -> np.ndarray:
    """The values on a linear scale (library size = their row sum); for the paper's table
    the ratios (-ln undone, a 0 of the log file kept as a zero ratio)."""
    if scale == "log2":
        return np.clip(np.power(2.0, x) - 1.0, 0, None)
    if scale == "ratio":
        return x
    # -ln(ratio) with zero ratios left at 0 (the paper's convention)
    return np.where(x == 0, 0.0, np.exp(-x))


def _auc(stat: np.ndarray, y: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(stat)
    if len(np.unique(y[ok])) < 2:
        return None
    return float(roc_auc_score(y[ok], stat[ok]))


def _fmt(v: float) -> str:
    return f"{v:.6g}"


class LeakageAudit:
    """The audit, with its thresholds as parameters (scikit-learn style: stored, not used
    until ``audit_table``)."""

    def __init__(self, leak_auc: float = 0.95, warning_auc: float = 0.8,
                 near_duplicate_r: float = 0.9999, cramers_v_leak: float = 0.8,
                 cramers_v_warning: float = 0.5, min_confounded_cohort: int = 10,
                 min_class_per_cohort: int = 5):
        self.leak_auc = leak_auc
        self.warning_auc = warning_auc
        self.near_duplicate_r = near_duplicate_r
        self.cramers_v_leak = cramers_v_leak
        self.cramers_v_warning = cramers_v_warning
        self.min_confounded_cohort = min_confounded_cohort
        self.min_class_per_cohort = min_class_per_cohort

    def get_params(self, deep: bool = False) -> dict:
        return dict(vars(self))

    # ----------------------------------------------------------------------------------
    def audit_table(self, df: pd.DataFrame, source: str = "") -> AuditResult:
        """Run every check on ``df`` (a cohort table or the paper's table)."""
        from amu_tf.errors import InputDataError

        fmt = detect_format(df)
        genes = panel_symbols()
        missing = [g for g in genes if g not in df.columns]
        if missing:
            raise InputDataError(
                f"{source or 'table'} lacks {len(missing)} of the 160 panel gene columns "
                f"(first: {missing[0]}); is it a cohort table or the paper's table?")
        if "response" not in df.columns:
            raise InputDataError(f"{source or 'table'} has no 'response' column to audit against")
        df = df.reset_index(drop=True)
        try:
            x = df[genes].to_numpy(dtype=np.float64)
            y_all = pd.to_numeric(df["response"], errors="raise").to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputDataError(f"{source or 'table'} has non-numeric values: {exc}") from None
        scale = _value_scale(x, fmt)
        result = AuditResult(findings=[], source=source, table_format=fmt, value_scale=scale,
                             n_samples=len(df), n_labeled=int(np.isfinite(y_all).sum()),
                             n_responders=int(np.nansum(y_all == 1)),
                             thresholds=self.get_params())
        f = result.findings
        f += self._sample_statistics(df, x, y_all, scale)
        f += self._duplicates(df, x, y_all)
        f += self._ids(df)
        f += self._cohort_confounding(df, y_all)
        return result

    # -- per-sample statistics ----------------------------------------------------------
    def _severity_auc(self, a: float) -> str:
        if a >= self.leak_auc:
            return LEAK
        if a >= self.warning_auc:
            return WARNING
        return OK

    def _sample_statistics(self, df, x, y_all, scale) -> list:
        with np.errstate(all="ignore"):
            stats = {
                "row_sum": ("row sum of the values as given", np.nansum(x, axis=1)),
                "library_size": (f"sum of linear values ({LINEAR_TEXT[scale]})",
                                 np.nansum(to_linear(x, scale), axis=1)),
                "zero_count": ("number of genes exactly 0", (x == 0).sum(axis=1).astype(float)),
                "missing_count": ("number of missing (NaN) genes",
                                  np.isnan(x).sum(axis=1).astype(float)),
            }
        if scale == "ratio":  # library size of ratios is the row sum: one finding is enough
            stats.pop("library_size")
        lab = np.isfinite(y_all)
        y = y_all[lab].astype(int)
        cohorts = (df["cohort"].astype(str).to_numpy()[lab] if "cohort" in df.columns
                   else None)
        findings = []
        for key, (what, stat_all) in stats.items():
            stat = stat_all[lab]
            pooled = _auc(stat, y)
            if pooled is None:
                findings.append(Finding(f"{key} vs label", OK,
                                        "not computable: fewer than two classes labeled",
                                        {"auc": None}, "sample_statistic"))
                continue
            if np.ptp(stat[np.isfinite(stat)]) == 0:
                findings.append(Finding(f"{key} vs label", OK,
                                        f"{what}: {_fmt(stat[0])} for every labeled sample",
                                        {"auc": 0.5, "separation": 0.5, "constant": True},
                                        "sample_statistic"))
                continue
            parts = {"pooled": pooled}
            if cohorts is not None and len(np.unique(cohorts)) > 1:
                for c in np.unique(cohorts):
                    m = cohorts == c
                    counts = np.bincount(y[m], minlength=2)
                    if counts.min() >= self.min_class_per_cohort:
                        parts[c] = _auc(stat[m], y[m])
            worst_key = max(parts, key=lambda k: max(parts[k], 1 - parts[k]))
            a = parts[worst_key]
            sep = max(a, 1 - a)
            sev = self._severity_auc(sep)
            m = np.ones(len(y), bool) if worst_key == "pooled" else cohorts == worst_key
            resp, non = stat[m & (y == 1)], stat[m & (y == 0)]
            direction = "lower" if a < 0.5 else "higher"
            where = "all labeled samples" if worst_key == "pooled" else f"cohort {worst_key}"
            ev = (f"{what}: AUC {sep:.3f} in {where} (responders {direction}; AUC of the raw "
                  f"statistic {a:.3f}); responders {_fmt(resp.min())}..{_fmt(resp.max())} "
                  f"(mean {_fmt(resp.mean())}), non-responders {_fmt(non.min())}.."
                  f"{_fmt(non.max())} (mean {_fmt(non.mean())})")
            if sev == LEAK:
                lo, hi = (resp, non) if a < 0.5 else (non, resp)
                if lo.max() < hi.min():
                    ev += f"; a threshold between {_fmt(lo.max())} and {_fmt(hi.min())} " \
                          "separates the classes perfectly"
            findings.append(Finding(
                f"{key} vs label", sev, ev,
                {"auc": a, "separation": sep, "where": worst_key,
                 "auc_by_part": parts, "responder_mean": float(resp.mean()),
                 "nonresponder_mean": float(non.mean())},
                "sample_statistic"))
        return findings

    # -- duplicates -----------------------------------------------------------------------
    @staticmethod
    def _class_counts(y_all, rows) -> dict:
        lab = {"responders": 0, "non_responders": 0, "unlabeled": 0}
        for v in y_all[rows]:
            if not np.isfinite(v):
                lab["unlabeled"] += 1
            elif v == 1:
                lab["responders"] += 1
            else:
                lab["non_responders"] += 1
        return lab

    @staticmethod
    def _class_text(c: dict) -> str:
        parts = [f"{c['responders']} responder", f"{c['non_responders']} non-responder"]
        if c["unlabeled"]:
            parts.append(f"{c['unlabeled']} unlabeled")
        return ", ".join(parts)

    def _patients(self, df) -> np.ndarray | None:
        if "patient" not in df.columns:
            return None
        p = df["patient"]
        return np.asarray(p.where(p.notna() & (p.astype(str) != ""), None), dtype=object)

    def _duplicates(self, df, x, y_all) -> list:
        findings = []
        genes_df = pd.DataFrame(x)
        dup = genes_df.duplicated(keep="first").to_numpy()
        in_group = genes_df.duplicated(keep=False).to_numpy()
        n_groups = int(genes_df[in_group].drop_duplicates().shape[0]) if in_group.any() else 0
        counts = self._class_counts(y_all, dup)
        if dup.any():
            conflicting = 0
            if in_group.any():
                keyed = genes_df[in_group].copy()
                keyed["_y"] = y_all[in_group]
                key_cols = list(range(x.shape[1]))
                conflicting = int((keyed.groupby(key_cols, dropna=False)["_y"]
                                   .nunique(dropna=False) > 1).sum())
            ev = (f"{int(dup.sum())} rows repeat an earlier row exactly ({self._class_text(counts)}"
                  f" rows duplicated), in {n_groups} group(s) of identical rows")
            if conflicting:
                ev += f"; {conflicting} group(s) carry different labels"
            ev += "; a random split puts copies on both sides"
            findings.append(Finding("exact duplicate rows", LEAK, ev,
                                    {"n_duplicate_rows": int(dup.sum()), "n_groups": n_groups,
                                     "by_class": counts, "conflicting_label_groups": conflicting},
                                    "duplicates"))
        else:
            findings.append(Finding("exact duplicate rows", OK, "no two rows are identical",
                                    {"n_duplicate_rows": 0, "by_class": counts}, "duplicates"))

        # near duplicates among the distinct rows
        keep = np.nonzero(~dup)[0]
        xs = x[keep]
        col_mean = np.nanmean(np.where(np.isnan(xs).all(axis=0), 0.0, xs), axis=0) \
            if len(xs) else np.zeros(x.shape[1])
        xs = np.where(np.isnan(xs), col_mean, xs)
        xc = xs - xs.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(xc, axis=1)
        valid = norm > 0
        xc = xc[valid] / norm[valid, None]
        idx = keep[valid]
        pairs = []
        step = 512
        top = -1.0
        for s in range(0, len(xc), step):
            r = xc[s:s + step] @ xc.T
            r[np.arange(len(r)), np.arange(s, s + len(r))] = -1.0  # not a row with itself
            top = max(top, float(r.max()) if r.size else -1.0)
            ii, jj = np.nonzero(r > self.near_duplicate_r)
            for a, b in zip(ii + s, jj):
                if a < b:
                    pairs.append((int(idx[a]), int(idx[b]), float(r[a - s, b])))
        patients = self._patients(df)
        same = [p for p in pairs if patients is not None and patients[p[0]] is not None
                and patients[p[0]] == patients[p[1]]]
        other = [p for p in pairs if p not in same]
        ids = (df["sample"].astype(str).to_numpy() if "sample" in df.columns
               else np.array([f"row {i}" for i in range(len(df))]))
        rows_other = np.zeros(len(df), bool)
        for a, b, _ in other:
            rows_other[b] = True
        numbers = {"n_pairs": len(pairs), "n_pairs_other_patient": len(other),
                   "n_pairs_same_patient": len(same),
                   "by_class": self._class_counts(y_all, rows_other),
                   "max_r": top,
                   "examples": [[str(ids[a]), str(ids[b]), r] for a, b, r in pairs[:10]]}
        if other:
            a, b, r = other[0]
            findings.append(Finding(
                "near-duplicate rows", LEAK,
                f"{len(other)} pair(s) of distinct rows with Pearson r > {self.near_duplicate_r} "
                f"from different (or unknown) patients ({self._class_text(numbers['by_class'])} "
                f"second rows), e.g. {ids[a]} ~ {ids[b]} (r = {r:.6f})", numbers, "duplicates"))
        elif same:
            findings.append(Finding(
                "near-duplicate rows", WARNING,
                f"{len(same)} pair(s) of samples of the same patient with Pearson r > "
                f"{self.near_duplicate_r}: keep each patient in one group when splitting",
                numbers, "duplicates"))
        else:
            findings.append(Finding(
                "near-duplicate rows", OK,
                f"no two distinct rows have Pearson r > {self.near_duplicate_r} "
                f"(highest {top:.4f})", numbers, "duplicates"))
        return findings

    # -- ids ------------------------------------------------------------------------------
    def _ids(self, df) -> list:
        findings = []
        if "sample" in df.columns:
            s = df["sample"].astype(str)
            d = s[s.duplicated(keep=False)]
            if len(d):
                uniq = sorted(d.unique())
                findings.append(Finding(
                    "duplicated sample ids", LEAK,
                    f"{len(uniq)} sample id(s) occur more than once ({len(d)} rows), e.g. "
                    f"{', '.join(uniq[:5])}", {"n_ids": len(uniq), "n_rows": int(len(d)),
                                               "examples": uniq[:20]}, "ids"))
            else:
                findings.append(Finding("duplicated sample ids", OK,
                                        f"all {len(s)} sample ids are unique", {"n_ids": 0},
                                        "ids"))
        else:
            findings.append(Finding("duplicated sample ids", OK,
                                    "no sample column: ids not checked (rows checked as "
                                    "duplicates above)", {"checked": False}, "ids"))
        patients = self._patients(df)
        if patients is not None:
            p = pd.Series(patients).dropna().astype(str)
            vc = p.value_counts()
            multi = vc[vc > 1]
            ev = (f"{len(multi)} patient(s) have several samples ({int(multi.sum())} samples); "
                  "fine when splits group by patient" if len(multi)
                  else f"{len(vc)} patients, one sample each")
            findings.append(Finding("patients with several samples", OK, ev,
                                    {"n_patients": int(len(vc)),
                                     "n_multi_sample_patients": int(len(multi)),
                                     "examples": list(multi.index[:10])}, "ids"))
        return findings

    # -- cohort vs label ------------------------------------------------------------------
    def _cohort_confounding(self, df, y_all) -> list:
        if "cohort" not in df.columns:
            return []
        lab = np.isfinite(y_all)
        cohort = df["cohort"].astype(str).to_numpy()[lab]
        y = y_all[lab].astype(int)
        names = sorted(np.unique(cohort))
        rates = {c: (int((cohort == c).sum()), int(y[cohort == c].sum())) for c in names}
        rate_text = ", ".join(f"{c} {r}/{n} responders" for c, (n, r) in rates.items())
        numbers = {"cohorts": {c: {"labeled": n, "responders": r} for c, (n, r) in rates.items()}}
        if len(names) < 2:
            if len(names) == 1 and len(np.unique(y)) == 1:
                return [Finding("cohort vs label", WARNING,
                                f"one cohort, all labeled samples one class ({rate_text})",
                                numbers, "cohort")]
            return [Finding("cohort vs label", OK, f"one cohort ({rate_text}); nothing to confound",
                            numbers, "cohort")]
        ct = pd.crosstab(cohort, y)
        v = _cramers_v(ct.to_numpy())
        numbers["cramers_v"] = v
        pure = [c for c, (n, r) in rates.items()
                if n >= self.min_confounded_cohort and r in (0, n)]
        numbers["single_class_cohorts"] = pure
        if pure or v >= self.cramers_v_leak:
            why = (f"cohort(s) {', '.join(pure)} all one class" if pure
                   else f"Cramér's V {v:.2f} >= {self.cramers_v_leak}")
            sev = LEAK
        elif v >= self.cramers_v_warning:
            why, sev = f"Cramér's V {v:.2f} >= {self.cramers_v_warning}", WARNING
        else:
            why, sev = f"Cramér's V {v:.2f}", OK
        return [Finding("cohort vs label", sev, f"{why} ({rate_text})", numbers, "cohort")]


def _cramers_v(table: np.ndarray) -> float:
    """Cramér's V of a contingency table of counts (no bias, no Yates correction); empty rows
    and columns are dropped first (their expected counts would be 0), and a table left with
    one row or column has V 0."""
    from scipy.stats.contingency import association

    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return 0.0
    return float(association(table, method="cramer", correction=False))


def audit_table(df: pd.DataFrame, source: str = "", **params) -> AuditResult:
    """``LeakageAudit(**params).audit_table(df)``."""
    return LeakageAudit(**params).audit_table(df, source=source)
