"""``CompassInputTransform``: a genome-wide cohort table -> COMPASS's encoder input."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from amu_tf.biomarkers.biomarker_score import MIN_NEW_COHORT, cohort_keys, resolve_columns
from amu_tf.data.transforms.table_transform import TableTransform
from amu_tf.errors import InputDataError

#: how each published unit reached the table (``amu_tf.data.expression_reader``), and what
#: this transform does to get log2(TPM + 1) from it
UNIT_HANDLING = {
    "tpm": "as is (the table holds log2(TPM + 1))",
    "log2(tpm+1)": "as is",
    "log2(tpm+0.001)": "as is (ingest re-based it to log2(TPM + 1))",
    "fpkm": "FPKM -> TPM by rescaling each sample to sum 1e6 over COMPASS's genes it has",
    "counts": "log2(CPM + 1) used as log2(TPM + 1): no gene lengths; a per-gene length "
              "factor is mostly absorbed by the per-cohort min-max scaler",
}
SCALER_FITS = ("per_cohort", "training")
#: where the effect of ``scaler_fit`` on the scores is measured (``artifact_record``)
SCALER_NOTE = ("the effect of scaler_fit on the scores (LOCO AUCs) is measured by "
               "benchmarks/bench_compass_generalisation.py --scaler-fit training against the "
               "default and reported in docs/compass.md; scaler_effect_ is the label-free "
               "effect on this fit's encoder input")
#: what that measurement found, carried in every record (docs/compass.md, "The scaler: what
#: the choice does"): the paired difference of the LOCO AUC, training minus per_cohort,
#: pooled over the four shared melanoma cohorts, as [value, ci_low, ci_high]
SCALER_MEASURED = {
    "date": "2026-12-05",
    "protocol": "leave-one-cohort-out over GSE78220, GSE91061_pre, Liu2019 and "
                "Markovits2023_PD1 (231 labeled patients); 95% CI of 1,000 paired stratified "
                "bootstrap resamples",
    "training_minus_per_cohort_pooled_auc": {
        "recipe:compass-probe": [-0.039, -0.085, 0.004],
        "recipe:compass-published": [0.025, -0.013, 0.064]},
    "spearman_of_the_scores_within_cohort": [0.66, 0.95],
    "verdict": "no measurable change: every CI, per cohort and pooled, includes 0; "
               "per_cohort is the default, chosen before the measurement",
}


def _span(lo, hi):
    """``hi - lo`` where it is a positive finite range, else 1 (as ``MinMaxScaler`` and
    :meth:`CompassInputTransform.transform` treat a constant or missing gene)."""
    span = hi - lo
    return np.where(np.isfinite(span) & (span > 0), span, 1.0)


def scaler_effect(values, cohorts, per_cohort, pooled) -> dict:
    """How far the other ``scaler_fit`` would move each fit cohort's encoder input,
    label-free (expression only).

    ``values``: ``(n, genes)`` log2(TPM + 1) of the fit rows, NaN where missing;
    ``cohorts``: ``(n,)`` their cohorts; ``per_cohort``: ``{cohort: (lo, hi)}`` min and max
    per gene on each cohort's rows; ``pooled``: ``(lo, hi)`` on all rows. For each cohort:

    * ``mean_abs_diff``: the mean over the cohort's values (its rows x the genes it has;
      a missing value is the same fill under both scalers, so it is left out) of
      ``|per-cohort-scaled - pooled-scaled|``, in the [0, 1] units of the encoder input;
    * ``median_range_ratio``: the median over the genes the cohort has (and the pool
      varies on) of the cohort's range / the pooled range (1: the cohort spans the pool;
      small: the pooled scaler squeezes the cohort into a narrow band).

    ``pooled`` is the row-weighted mean of the cohorts' values. With one fit cohort both
    scalers are the same: 0 and 1. Rounded to 4 decimals (the input is float32 downstream;
    a difference below 1e-4 does not matter to the encoder)."""
    plo, phi = pooled
    pspan = _span(plo, phi)
    prange = phi - plo
    out, n_rows, diffs, ratios = {}, [], [], []
    for c in sorted(per_cohort):
        rows = cohorts == c
        v = values[rows]
        lo, hi = per_cohort[c]
        with np.errstate(invalid="ignore"):
            d = np.abs((v - lo) / _span(lo, hi) - (v - plo) / pspan)
        finite = np.isfinite(d)
        diff = float(d[finite].mean()) if finite.any() else 0.0
        has = np.isfinite(hi - lo) & np.isfinite(prange) & (prange > 0)
        ratio = float(np.median((hi - lo)[has] / prange[has])) if has.any() else 1.0
        out[str(c)] = {"rows": int(rows.sum()), "mean_abs_diff": round(diff, 4),
                       "median_range_ratio": round(ratio, 4)}
        n_rows.append(int(rows.sum()))
        diffs.append(diff)
        ratios.append(ratio)
    w = np.asarray(n_rows, dtype=np.float64)
    summary = {"rows": int(w.sum()),
               "mean_abs_diff": round(float(np.dot(w, diffs) / w.sum()), 4) if len(w) else 0.0,
               "median_range_ratio": round(float(np.dot(w, ratios) / w.sum()), 4)
               if len(w) else 1.0}
    return {"cohorts": out, "pooled": summary}


class CompassInputTransform(TableTransform):
    """COMPASS's input contract, read from its code (``compass/model/scaler.py``,
    ``compass/main.py``): the 15,672 genes of its tokenizer in token order, each
    ``log2(TPM + 1)`` and then min-max scaled per gene to [0, 1] (scikit-learn's
    ``MinMaxScaler``: a constant gene becomes 0; values outside the fitted range are not
    clipped). The cancer-type token is separate (:meth:`cancer_codes`; melanoma = SKCM = 25).

    **Units.** The cohort table stores every cohort as ``log2(x + 1)`` of its published unit
    (counts -> CPM, TPM and log2 TPM -> TPM, FPKM -> FPKM); the unit is recorded per cohort
    in the CohortTable artifact's summary, and reaches this transform with the table
    (``read_table`` of the artifact and ``amu predict`` of a spec put it in
    ``DataFrame.attrs``, :func:`amu_tf.data.cohort_table.cohort_units`) or as
    ``cohort_units`` (``{cohort: unit}``, which wins); a cohort neither names is taken as
    TPM. :data:`UNIT_HANDLING` says what
    is done for each; ``units_`` records it.

    **The scaler.** COMPASS fits its min-max scaler on its pre-training data (TCGA, not in
    the wheel) and refits it on the user's data when it starts from the distilled encoder.
    ``scaler_fit="per_cohort"`` (default) fits min and max per gene on each cohort's rows
    given to ``fit`` and, for a cohort not seen there, on that cohort's own rows at
    ``transform`` (as ``cohort_z`` does; expression only, never labels; at least
    5 samples): it removes cohort-level unit and platform offsets, which is what lets the
    encoder's features transfer across cohorts. ``"training"`` fits one scaler on all rows
    given to ``fit`` and applies it frozen to every row (per-sample; cohort offsets pass
    through). ``scaler_fit_`` and ``scaler_cohorts_`` record the choice. Whichever is
    chosen, ``fit`` also measures, from expression only, how far the other choice would move
    each fit cohort's input (``scaler_effect_``, :func:`scaler_effect`); the saved transform
    records both (:meth:`artifact_record`, ``transform.json``'s ``"record"``). What the
    choice does to the scores is measured by ``benchmarks/bench_compass_generalisation.py
    --scaler-fit training`` and reported in ``docs/compass.md``.

    **Missing genes.** A gene a cohort lacks (not in the table, or NaN for all of that
    cohort's rows) gets ``missing_fill`` after scaling (default 0.0: the cohort's minimum,
    which is what COMPASS computes for a gene filled with TPM 0). A cohort missing more
    than ``max_missing_fraction`` (default 0.2, i.e. 3,134) of the 15,672 genes is refused
    with one line; ``missing_genes_`` lists each fitted cohort's missing genes.
    """

    def __init__(self, scaler_fit="per_cohort", max_missing_fraction=0.2, missing_fill=0.0,
                 cohort_units=None, cancer_type="SKCM", genes=None):
        self.scaler_fit = scaler_fit
        self.max_missing_fraction = max_missing_fraction
        self.missing_fill = missing_fill
        self.cohort_units = cohort_units
        self.cancer_type = cancer_type
        self.genes = genes

    name = "compass_input"
    #: what the model reads (``model_info.json``'s ``input_scale``, the export's
    #: ``expected_input_scale``)
    input_scale = ("COMPASS's 15,672 genes in the wheel's order, from the cohort table's "
                   "log2(x + 1) of each cohort's unit (counts -> CPM, FPKM -> TPM, TPM as is), "
                   "min-max scaled per gene (scaler_fit: per cohort by default, a cohort's own "
                   "rows, no labels); NOT the 160-gene panel and NOT cohort_z z-scores")

    # ------------------------------------------------------------------------------------
    def _compass_genes(self):
        if self.genes is not None:
            return list(self.genes)
        from amu_tf.utils.transformers.convert_compass import load_compass_assets

        return list(load_compass_assets()["genes"])

    def _unit(self, cohort, table_units=None):
        """The cohort's unit: ``cohort_units`` if it names the cohort, else what the table
        carries (:func:`amu_tf.data.cohort_table.cohort_units`), else, for a cohort seen at
        fit, the unit used then, else TPM. A table whose unit contradicts the one a seen
        cohort was fitted with is refused (its scaler was fitted on other values)."""
        norm = lambda d: {str(k): str(v).lower().replace(" ", "")  # noqa: E731
                          for k, v in (d or {}).items()}
        given, carried = norm(self.cohort_units), norm(table_units)
        fitted = getattr(self, "unit_by_cohort_", {})
        c = str(cohort)
        if c in given:
            unit = given[c]
        elif c in carried:
            unit = carried[c]
            if c in fitted and fitted[c] != unit:
                raise InputDataError(f"compass_input: cohort {cohort} is {unit} in this table "
                                     f"but was {fitted[c]} when the model was fitted")
        else:
            unit = fitted.get(c, "tpm")
        if unit not in UNIT_HANDLING:
            raise InputDataError(f"compass_input: cohort {cohort}: unknown unit {unit!r} "
                                 f"(one of {sorted(UNIT_HANDLING)})")
        return unit

    def _log2_tpm1(self, table, genes, cohorts):
        """``(n, len(genes))`` log2(TPM + 1), NaN where missing, and each cohort's unit."""
        cols = resolve_columns(table.columns, genes)
        present = [j for j, g in enumerate(genes) if cols[g] is not None]
        out = np.full((len(table), len(genes)), np.nan)
        if present:
            block = table[[cols[genes[j]] for j in present]]
            if all(isinstance(dt, np.dtype) and dt.kind in "fiu" for dt in block.dtypes):
                num = block.to_numpy(np.float64)   # numbers already: no per-column parse
            else:
                num = block.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
            self._check_values(block, num, table)
            out[:, present] = num
        from amu_tf.data.cohort_table import cohort_units

        units = {}
        carried = cohort_units(table)
        for c in np.unique(cohorts):
            unit = self._unit(c, carried)
            units[str(c)] = unit
            if unit != "fpkm":
                continue
            rows = cohorts == c
            # summed over COMPASS's genes the table holds (not every gene of the table), so an
            # exported model, which receives only its own genes, rescales as training did
            total = np.nansum(np.exp2(out[rows]) - 1.0, axis=1, keepdims=True)
            if not np.all(total > 0):
                raise InputDataError(f"compass_input: cohort {c} has a sample with no "
                                     "expression to rescale FPKM to TPM")
            out[rows] = np.log2((np.exp2(out[rows]) - 1.0) / total * 1e6 + 1.0)
        return out, units

    @staticmethod
    def _check_values(block, v, table):
        """Refuse what COMPASS's log2(x + 1) input cannot hold: text in a gene's column,
        infinite values and values below 0 (log2 of x + 1 for non-negative x; a table of
        log2(x + 0.001), z-scores or other centred values would be min-max scaled as if it
        were that, silently). ``v`` is ``block`` as float64 (text coerced to NaN). NaN is a
        missing value and is filled later."""
        samples = (table["sample"].astype(str).to_numpy() if "sample" in table.columns
                   else table.index.astype(str).to_numpy())
        text = np.isnan(v) & block.notna().to_numpy()
        with np.errstate(invalid="ignore"):
            for bad, what in ((text, "is not a number"), (np.isinf(v), "is infinite"),
                              (v < -1e-6, "is below 0: COMPASS reads log2(x + 1) of "
                                          "non-negative expression, so a table of log2(x + "
                                          "0.001), z-scores or other centred values cannot "
                                          "be its input")):
                if bad.any():
                    r, c = np.argwhere(bad)[0]
                    shown = (repr(block.iat[r, c]) if bad is text else f"{v[r, c]:g}")
                    raise InputDataError(
                        f"compass_input: {int(bad.sum())} value(s) of COMPASS's genes; the "
                        f"first, {shown} (gene {block.columns[c]}, sample "
                        f"{samples[r]}), {what}")

    def _check_missing(self, values, cohorts, genes):
        missing = {}
        for c in np.unique(cohorts):
            absent = np.all(np.isnan(values[cohorts == c]), axis=0)
            frac = absent.mean()
            if frac > self.max_missing_fraction:
                raise InputDataError(
                    f"compass_input: cohort {c} lacks {int(absent.sum())} of COMPASS's "
                    f"{len(genes)} genes ({frac:.0%} > max_missing_fraction "
                    f"{self.max_missing_fraction:.0%}); the encoder would see mostly filled tokens")
            missing[str(c)] = [g for g, a in zip(genes, absent) if a]
        return missing

    @staticmethod
    def _min_max(values):
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmin(values, axis=0), np.nanmax(values, axis=0)

    # ------------------------------------------------------------------------------------
    def fit(self, table, y=None):
        """Learn the genes' min and max from ``table``'s expression (``y`` is ignored)."""
        self._check_table(table)
        if self.scaler_fit not in SCALER_FITS:
            raise InputDataError(f"compass_input: scaler_fit must be one of {SCALER_FITS}, "
                                 f"not {self.scaler_fit!r}")
        from amu_tf.utils.transformers.convert_compass import load_compass_assets

        codes = load_compass_assets()["cancer_codes"] if self.genes is None else None
        genes = self._compass_genes()
        cohorts = cohort_keys(table)
        values, units = self._log2_tpm1(table, genes, cohorts)
        self.missing_genes_ = self._check_missing(values, cohorts, genes)
        # both scalers, for the one chosen and to measure the other (min of the cohorts' mins
        # is the pooled min exactly, so the pooled one costs no further pass)
        per_cohort = {str(c): self._min_max(values[cohorts == c]) for c in np.unique(cohorts)}
        pooled = self._min_max(np.stack([lo for lo, _ in per_cohort.values()]
                                        + [hi for _, hi in per_cohort.values()]))
        if self.scaler_fit == "training":
            self.scaler_ = {None: pooled}
            self.scaler_cohorts_ = []
        else:
            self.scaler_ = per_cohort
            self.scaler_cohorts_ = sorted(self.scaler_)
        self.scaler_effect_ = scaler_effect(values, cohorts.astype(str), per_cohort, pooled)
        self.scaler_fit_ = self.scaler_fit
        self.genes_ = genes
        self.units_ = {c: f"{u}: {UNIT_HANDLING[u]}" for c, u in units.items()}
        self.unit_by_cohort_ = dict(units)  # what transform uses for these cohorts
        code_table = codes or {"SKCM": 25}
        if self.cancer_type not in code_table or code_table[self.cancer_type] < 0:
            raise InputDataError(f"compass_input: unknown cancer type {self.cancer_type!r}")
        self.cancer_code_ = int(code_table[self.cancer_type])
        self.n_features_out_ = len(genes)
        return self

    def transform(self, table):
        """``(n, 15672)`` float32 encoder input, in COMPASS's gene order."""
        check_is_fitted(self, "scaler_")
        self._check_table(table)
        cohorts = cohort_keys(table)
        values, _ = self._log2_tpm1(table, self.genes_, cohorts)
        self._check_missing(values, cohorts, self.genes_)
        out = np.empty_like(values)
        for c in np.unique(cohorts):
            rows = cohorts == c
            if self.scaler_fit_ == "training":
                lo, hi = self.scaler_[None]
            elif str(c) in self.scaler_:
                lo, hi = self.scaler_[str(c)]
            else:
                if rows.sum() < MIN_NEW_COHORT:
                    raise InputDataError(
                        f"compass_input: cohort {c} was not seen at fit and has only "
                        f"{int(rows.sum())} sample(s); its scaler is fitted on its own rows, "
                        f"which needs at least {MIN_NEW_COHORT}")
                lo, hi = self._min_max(values[rows])
            span = hi - lo
            span = np.where(np.isfinite(span) & (span > 0), span, 1.0)   # as MinMaxScaler
            out[rows] = (values[rows] - lo) / span
        out = np.where(np.isfinite(out), out, self.missing_fill)
        return out.astype(np.float32)

    def artifact_record(self) -> dict:
        """The choice and its measured input effect, for ``transform.json``: ``scaler_fit_``,
        ``scaler_cohorts_``, ``units_``, ``n_missing_genes_`` (per fit cohort, of
        ``n_genes``), ``max_missing_fraction``, ``scaler_effect_``, ``scaler_note`` (where
        the effect on the scores is measured) and ``scaler_measured`` (what it found,
        :data:`SCALER_MEASURED`). ``{}`` before ``fit``."""
        if not hasattr(self, "scaler_fit_"):
            return {}
        return {"scaler_fit_": self.scaler_fit_,
                "scaler_cohorts_": list(self.scaler_cohorts_),
                "units_": dict(self.units_),
                "n_genes": len(self.genes_),
                "n_missing_genes_": {c: len(g) for c, g in self.missing_genes_.items()},
                "max_missing_fraction": float(self.max_missing_fraction),
                "scaler_effect_": getattr(self, "scaler_effect_", None),
                "scaler_note": SCALER_NOTE,
                "scaler_measured": copy.deepcopy(SCALER_MEASURED)}

    def cancer_codes(self, table):
        """``(n,)`` int32 cancer-type token of each row (``cancer_type`` for every row)."""
        check_is_fitted(self, "cancer_code_")
        return np.full(len(table), self.cancer_code_, dtype=np.int32)

    def encoder_inputs(self, table):
        """The :class:`~amu_tf.models.compass_encoder.CompassEncoder` input dict."""
        return {"expression": self.transform(table), "cancer_type": self.cancer_codes(table)}

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "genes_")
        return np.asarray(self.genes_, dtype=object)
