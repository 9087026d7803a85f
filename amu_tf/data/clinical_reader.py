"""Read a cohort's clinical table into the cohort-table metadata columns.

Response: the spec's ``response_map`` (default CR/PR -> 1, SD/PD -> 0) applied to the
stripped, upper-cased value; anything else is unlabeled with a reason
(``"NE not in response map"``, ``"no response value"``, ``"no clinical record"``).

Survival: times are converted to days (``time_unit``); events become 1 = event (death /
progression), 0 = censored. ``<end>_event_means = "censored"`` declares a file whose flag is
1 for censored (GSE91061's ``OS_SOR``/``PFS_SOR`` are 0 for an event), and it is inverted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from amu_tf.data.cohort_spec import TIME_UNITS
from amu_tf.data.expression_reader import read_delimited
from amu_tf.errors import InputDataError

NO_RECORD = "no clinical record"
NO_VALUE = "no response value"


def map_response(raw, response_map: dict) -> tuple[float, str]:
    """``(label, unlabeled_reason)`` for one raw response value."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw).strip() == "":
        return np.nan, NO_VALUE
    key = str(raw).strip().upper()
    if key in ("NA", "NAN", "N/A"):
        return np.nan, NO_VALUE
    if key in response_map:
        return float(response_map[key]), ""
    return np.nan, f"{str(raw).strip()} not in response map"


def _event(series: pd.Series, means: str, where: str) -> pd.Series:
    v = pd.to_numeric(series, errors="coerce")
    bad = v.notna() & ~v.isin([0, 1])
    if bad.any():
        raise InputDataError(f"{where}: event flag {series[bad].iloc[0]!r} is not 0 or 1")
    return 1.0 - v if means == "censored" else v


#: cell texts read as missing (pandas' defaults), except in the sample-id column
MISSING_WORDS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                           "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None",
                           "n/a", "nan", "null"})


def read_clinical(spec) -> pd.DataFrame:
    """The clinical file as metadata columns indexed by sample id (unique)."""
    where = f"cohort {spec.name}: clinical file {spec.clinical_file.name}"
    df = read_delimited(spec.clinical_file, spec.clinical_sep, "clinical", dtype=str,
                        keep_default_na=False)
    # missing-value words mean "missing" in every column but the sample id, where "NA" (or
    # "None") can be a real id
    for c in df.columns:
        if str(c).strip() != spec.sample_column:
            df[c] = df[c].where(~df[c].str.strip().isin(MISSING_WORDS))
    return clinical_meta(df, spec, where)


def clinical_meta(df: pd.DataFrame, spec, where: str = "clinical table") -> pd.DataFrame:
    """Map a clinical table (all columns as strings) to metadata columns indexed by sample."""
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    needed = [spec.sample_column, spec.response_column]
    needed += [c for c in (spec.patient_column, spec.timepoint_column, spec.treatment_column) if c]
    surv = spec.survival
    needed += [surv[k] for k in ("os_time", "os_event", "pfs_time", "pfs_event") if surv.get(k)]
    for c in needed:
        if c not in df.columns:
            raise InputDataError(f"{where}: no column {c!r} (columns: {', '.join(df.columns[:8])}...)")
    sample = df[spec.sample_column].astype(str).str.strip()
    if sample.duplicated().any():
        raise InputDataError(f"{where}: duplicate sample id {sample[sample.duplicated()].iloc[0]!r}")

    out = pd.DataFrame(index=pd.Index(sample, name="sample"))
    pat = df[spec.patient_column] if spec.patient_column else sample
    out["patient"] = pat.astype(str).str.strip().to_numpy()
    labels = [map_response(v, spec.response_map) for v in df[spec.response_column]]
    out["response"] = [lab for lab, _ in labels]
    out["response_raw"] = df[spec.response_column].fillna("").astype(str).str.strip().to_numpy()
    out["unlabeled_reason"] = [r for _, r in labels]
    out["timepoint"] = (
        df[spec.timepoint_column].to_numpy() if spec.timepoint_column else spec.timepoint_value
    )
    out["treatment"] = (
        df[spec.treatment_column].to_numpy() if spec.treatment_column else spec.treatment_value
    )
    scale = TIME_UNITS[surv.get("time_unit", "days")]
    for end in ("os", "pfs"):
        if surv.get(f"{end}_time"):
            t = pd.to_numeric(df[surv[f"{end}_time"]], errors="coerce") * scale
            if (t < 0).any():
                raise InputDataError(f"{where}: negative {end.upper()} time")
            out[f"{end}_time"] = t.to_numpy()
            out[f"{end}_event"] = _event(
                df[surv[f"{end}_event"]], surv.get(f"{end}_event_means", "event"), where
            ).to_numpy()
        else:
            out[f"{end}_time"] = np.nan
            out[f"{end}_event"] = np.nan
    return out
