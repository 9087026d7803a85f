"""Evaluation protocols: fit and score several estimators on the same splits of a table.

    result = run_protocol(table, "cv", ["amu:small", "logreg"], transform="cohort_z")
    result.metrics          # one row per model: every metric with a 95% bootstrap CI
    result.predictions      # every test prediction (model, repeat, fold, sample, y, p, pred)

For every split (``amu_tf.evaluation.splitters``), only the training rows are used to fit
anything: the transform is fitted on the training rows, each estimator on the transformed
training rows (with patients as groups, so its own inner splits, upsampling, search and
threshold stay inside them), and the test rows are scored at the estimator's frozen
``threshold_``. Out-of-fold predictions are pooled per repeat; metrics are computed on the
pooled predictions (mean over repeats, rows resampled for the CI: see
``metrics.metrics_with_ci``).

Protocols (``PROTOCOLS``): ``cv`` grouped repeated stratified k-fold, ``loco`` leave one
cohort out (metrics pooled and per held-out cohort), ``external`` train on some cohorts and
score the others, and ``paper``, the paper's protocol (responders duplicated before a random
80/20 split), which is LEAKY: every output of it says so.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from amu_tf.errors import InputDataError
from amu_tf.evaluation import splitters
from amu_tf.evaluation.metrics import METRICS, metrics_with_ci

PROTOCOLS = ("cv", "loco", "external", "paper")
LEAKY_PROTOCOLS = ("paper",)

PROTOCOL_DESCRIPTIONS = {
    "cv": "repeated stratified {n_splits}-fold cross-validation grouped by patient "
          "({n_repeats} repeat(s)); out-of-fold predictions pooled per repeat",
    "loco": "leave one cohort out: train on all other cohorts, score the held-out one",
    "external": "train on {train_cohorts}, score {test_cohorts}",
    "paper": "LEAKY: the paper's protocol. Responders duplicated BEFORE a random "
             "{test_pct}% test split ({n_repeats} repeat(s)): copies of test responders are "
             "in training, so these numbers are inflated and say nothing about new patients",
}


def is_leaky(protocol: str) -> bool:
    return protocol in LEAKY_PROTOCOLS


def protocol_label(protocol: str) -> str:
    """``cv`` or ``paper (LEAKY)``: the name every output uses."""
    return f"{protocol} (LEAKY)" if is_leaky(protocol) else protocol


@dataclass
class ProtocolResult:
    """What one protocol gave for several models."""

    protocol: str
    leaky: bool
    description: str
    models: list
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    per_cohort: pd.DataFrame | None = None
    folds: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return protocol_label(self.protocol)


class IdentityTransform:
    """The gene columns as they are (for tables already on a usable scale); fits nothing."""

    name = "none"
    per_sample = True

    def fit(self, table):
        return self

    def transform(self, table):
        from amu_tf.data.cohort_table import gene_columns

        return table[gene_columns()].to_numpy(dtype=np.float32)


def resolve_transform(spec):
    """A fresh, unfitted transform: a name (``get_transform``), ``None``/"none" (identity),
    a transform object (``sklearn.clone``: its parameters, none of its fitted state; an
    object that is not a scikit-learn estimator is deep-copied), or a zero-argument
    factory."""
    if spec is None or spec == "none":
        return IdentityTransform()
    if isinstance(spec, str):
        from amu_tf.data.transforms import get_transform

        return get_transform(spec)
    if callable(spec) and not hasattr(spec, "fit"):
        return spec()
    return _fresh(spec)


def _make_estimator(spec, seed, params):
    if isinstance(spec, str):
        from amu_tf.training import make_estimator

        return make_estimator(spec, seed=seed, **params)
    if callable(spec) and not hasattr(spec, "fit"):
        return spec(seed)
    return _fresh(spec)


def _fresh(obj):
    """An unfitted copy: ``sklearn.clone`` for scikit-learn estimators and amu-tf's
    transforms, a deep copy of anything else."""
    from sklearn.base import BaseEstimator, clone

    return clone(obj) if isinstance(obj, BaseEstimator) else copy.deepcopy(obj)


class FoldInputs:
    """The model inputs of one split: the protocol's transform fitted on the training rows
    (once, shared by the models that use it), or an estimator's own input transform (the
    biomarkers read their genes of the genome-wide table), each fitted on the training rows
    only."""

    def __init__(self, train, test, transform, missing_genes=None):
        self.train, self.test, self.transform = train, test, transform
        self._cache = {}
        self.missing_genes = missing_genes if missing_genes is not None else {}

    def _fitted(self, key, make):
        if key not in self._cache:
            tf_ = make()
            tf_.fit(self.train)
            X_tr = np.asarray(tf_.transform(self.train), dtype=np.float32)
            X_te = np.asarray(tf_.transform(self.test), dtype=np.float32)
            # genes a biomarker lacks in a training or a scored cohort (for the notes)
            for found in (getattr(tf_, "missing_genes_", None),
                          getattr(tf_, "last_missing_genes_", None)):
                for cohort, genes in (found if isinstance(found, dict) else {}).items():
                    if isinstance(genes, list) and genes:
                        self.missing_genes.setdefault(tf_.name, {})[cohort] = genes
            self._cache[key] = (X_tr, X_te)
        return self._cache[key]

    def for_estimator(self, est):
        own = getattr(est, "make_input_transform", None)
        if own is not None:
            return self._fitted(("own", repr(own())), own)
        return self._fitted(("protocol",), lambda: resolve_transform(self.transform))


def _is_keras(est) -> bool:
    return type(est).__name__ == "ZooClassifier"


def _patients(df: pd.DataFrame) -> np.ndarray:
    if "patient" in df.columns:
        pat = df["patient"].where(df["patient"].notna(), df["sample"])
    else:
        pat = df["sample"]
    return pat.astype(str).to_numpy()


def _normalise_models(models) -> dict:
    if isinstance(models, str):
        models = [models]
    if isinstance(models, dict):
        return dict(models)
    out = {}
    for m in models:
        label = m if isinstance(m, str) else type(m).__name__
        out[label] = m
    return out


def make_folds(labeled: pd.DataFrame, protocol: str, *, n_splits=5, n_repeats=1, seed=0,
               test_size=0.2, train_cohorts=None, test_cohorts=None, paper_duplicate=True):
    y = labeled["response"].to_numpy(dtype=float)
    if protocol == "cv":
        return splitters.grouped_cv_splits(y, _patients(labeled), n_splits, n_repeats, seed)
    if protocol == "loco":
        return splitters.loco_splits(labeled["cohort"].astype(str).to_numpy(), y)
    if protocol == "external":
        return splitters.external_splits(labeled["cohort"].astype(str).to_numpy(),
                                         train_cohorts, test_cohorts)
    if protocol == "paper":
        return splitters.paper_splits(y, test_size, n_repeats, seed, duplicate=paper_duplicate)
    raise InputDataError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")


def _check_cohorts(table: pd.DataFrame, protocol: str, train_cohorts, test_cohorts):
    if "cohort" not in table.columns:
        return
    lab = table.groupby(table["cohort"].astype(str))["response"].apply(lambda s: s.notna().sum())
    empty = sorted(lab[lab == 0].index)
    if protocol == "loco" and empty:
        raise InputDataError(
            f"cohort {empty[0]!r} has no labeled samples, so leave-one-cohort-out cannot "
            "score it; remove it from the table or use another protocol"
        )
    if protocol == "external":
        named = [str(c) for c in list(train_cohorts or []) + list(test_cohorts or [])]
        for c in named:
            if c in empty:
                raise InputDataError(f"cohort {c!r} has no labeled samples; it cannot be "
                                     "trained on or scored")


def protocol_folds(table: pd.DataFrame, protocol: str, *, seed=0, n_splits=5, n_repeats=1,
                   test_size=0.2, train_cohorts=None, test_cohorts=None, paper_duplicate=True):
    """``(labeled rows, folds)`` of ``protocol`` on ``table``, or a one-line error when the
    table cannot carry it (no labels, one class, too few patients per class for the folds,
    unknown or unlabeled cohorts). Reads only which rows are labeled and how, no expression:
    `amu run` calls it right after ingest so a bad combination fails before any training."""
    _check_cohorts(table, protocol, train_cohorts, test_cohorts)
    labeled = table[table["response"].notna()].reset_index(drop=True)
    if labeled.empty:
        raise InputDataError("the table has no labeled samples")
    if labeled["response"].nunique() < 2:
        raise InputDataError("the labeled samples are all of one class; nothing to evaluate")
    folds = make_folds(labeled, protocol, n_splits=n_splits, n_repeats=n_repeats, seed=seed,
                       test_size=test_size, train_cohorts=train_cohorts,
                       test_cohorts=test_cohorts, paper_duplicate=paper_duplicate)
    return labeled, folds


def run_protocol(table: pd.DataFrame, protocol: str, models, *, transform="cohort_z",
                 seed: int = 0, n_splits: int = 5, n_repeats: int = 1, test_size: float = 0.2,
                 train_cohorts=None, test_cohorts=None, n_boot: int = 1000,
                 estimator_params: dict | None = None, progress: bool = True,
                 paper_duplicate: bool = True) -> ProtocolResult:
    """Run ``protocol`` for every model in ``models`` on the labeled rows of ``table``.

    Args:
        table: a cohort table (``amu_tf.data.cohort_table``); unlabeled rows are left out.
        models: estimator names for ``make_estimator`` (``"amu:small"``, ``"logreg"``, ...),
            or a dict ``{label: name | unfitted estimator | factory(seed)}``.
        transform: transform name, ``None`` (gene columns as they are), a transform object
            or a factory; a fresh copy is fitted on each split's training rows.
        estimator_params: ``{label: {param: value}}`` for named estimators (e.g. epochs).
        n_boot: bootstrap resamples for the CIs (0: no CIs).
        paper_duplicate: ``paper`` only; False when the table's responders are duplicated
            already (the split is then random on the rows as they are, still LEAKY).
    """
    if protocol not in PROTOCOLS:
        raise InputDataError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if "response" not in table.columns:
        raise InputDataError("the table has no 'response' column; is it a cohort table?")
    models = _normalise_models(models)
    if not models:
        raise InputDataError("no model to evaluate")
    estimator_params = estimator_params or {}
    labeled, folds = protocol_folds(table, protocol, seed=seed, n_splits=n_splits,
                                    n_repeats=n_repeats, test_size=test_size,
                                    train_cohorts=train_cohorts, test_cohorts=test_cohorts,
                                    paper_duplicate=paper_duplicate)
    n_unlabeled = int(len(table) - len(labeled))
    y_all = labeled["response"].to_numpy().astype(int)
    patients = _patients(labeled)
    from amu_tf.training.fit_estimator import fit_estimator, wants_unlabeled  # (imports Keras)

    cohorts_all = (labeled["cohort"].astype(str).to_numpy() if "cohort" in labeled.columns
                   else None)
    pretrained = set()  # models pre-trained on the scored rows' expression (for the notes)

    rows, fold_info = [], []
    missing_genes = {}  # input transform name -> {cohort: genes it lacks}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(folds) * len(models), desc=f"evaluate {protocol_label(protocol)}",
                   unit="fit", leave=False)
    for fold in folds:
        train = labeled.iloc[fold.train].reset_index(drop=True)
        test = labeled.iloc[fold.test].reset_index(drop=True)
        y_tr = y_all[fold.train]
        if len(np.unique(y_tr)) < 2:
            raise InputDataError(
                f"{protocol} split '{fold.name}': the training rows hold only one class "
                f"({'responders' if y_tr[0] == 1 else 'non-responders'}); a model cannot "
                "learn from them"
            )
        inputs = FoldInputs(train, test, transform, missing_genes)
        fold_info.append({
            "repeat": fold.repeat, "fold": fold.fold, "name": fold.name,
            "n_train": int(len(fold.train)), "n_test": int(len(fold.test)),
            "train_cohorts": sorted(train["cohort"].astype(str).unique()) if "cohort" in train else [],
            "test_cohorts": sorted(test["cohort"].astype(str).unique()) if "cohort" in test else [],
        })
        for label, spec in models.items():
            est = _make_estimator(spec, seed, estimator_params.get(label, {}))
            X_tr, X_te = inputs.for_estimator(est)
            unlabeled = None
            if wants_unlabeled(est):  # self-supervised pre-training (no labels)
                unlabeled = X_te
                pretrained.add(label)
            fit_estimator(est, X_tr, y_tr, groups=patients[fold.train],
                          cohorts=cohorts_all[fold.train] if cohorts_all is not None else None,
                          unlabeled=unlabeled)
            p = np.asarray(est.predict_proba(X_te))[:, 1]
            thr = float(getattr(est, "threshold_", 0.5))
            pred = (p >= thr).astype(int)
            keras_model = _is_keras(est)
            del est
            if keras_model:
                import keras

                keras.backend.clear_session()
            rows.append(pd.DataFrame({
                "protocol": protocol, "leaky": is_leaky(protocol), "model": label,
                "repeat": fold.repeat, "fold": fold.fold, "fold_name": fold.name,
                "row": fold.test,
                "sample": test["sample"].astype(str).to_numpy(),
                "patient": patients[fold.test],
                "cohort": test["cohort"].astype(str).to_numpy() if "cohort" in test else "",
                "y": y_all[fold.test], "p": p, "threshold": thr, "pred": pred,
            }))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    preds = pd.concat(rows, ignore_index=True)

    metrics_rows, cohort_rows = [], []
    for label in models:
        pm = preds[preds["model"] == label]
        metrics_rows.append(_summarise(pm, label, protocol, n_boot, seed))
        if protocol in ("loco", "external"):
            for cohort, pc in pm.groupby("cohort"):
                r = _summarise(pc, label, protocol, n_boot, seed)
                r["cohort"] = cohort
                cohort_rows.append(r)
    metrics = pd.DataFrame(metrics_rows)
    per_cohort = pd.DataFrame(cohort_rows) if cohort_rows else None
    desc = PROTOCOL_DESCRIPTIONS[protocol].format(
        n_splits=n_splits, n_repeats=n_repeats, test_pct=int(round(test_size * 100)),
        train_cohorts=", ".join(map(str, train_cohorts or [])),
        test_cohorts=", ".join(sorted({f.name for f in folds})))
    notes = []
    if n_unlabeled:
        notes.append(f"{n_unlabeled} unlabeled sample(s) left out of training and metrics")
    from amu_tf.biomarkers import is_biomarker

    if any(is_biomarker(spec) for spec in models.values()):
        notes.append("the biomarkers score each cohort on its own genes' z-scores (mean/sd "
                     "frozen from the training rows of a cohort seen in training, else of the "
                     "held-out cohort's own expression: no labels); only their thresholds are "
                     "fitted, on the training rows")
    for name, lacking in sorted(missing_genes.items()):
        notes.append(f"{name}: genes absent from a cohort, left out of its score there: "
                     + "; ".join(f"{c}: {', '.join(g)}" for c, g in sorted(lacking.items())))
    if pretrained:
        notes.append(f"{', '.join(sorted(pretrained))}: self-supervised pre-training read the "
                     "expression (never the labels) of the scored rows too, as cohort_z reads "
                     "their mean/sd: transductive, so its scores depend on the scored cohort")
    if transform == "cohort_z" and protocol in ("loco", "external"):
        notes.append("cohort_z standardises a held-out cohort with the mean/sd of its own "
                     "expression (no labels; like ComBat without covariates), so its scores "
                     "depend on the other samples of that cohort")
    if protocol == "paper" and paper_duplicate:
        n_dup = int((y_all == 1).sum())
        notes.append(f"LEAKY: {n_dup} responder rows were duplicated before splitting; test "
                     "rows include copies of training rows")
    elif protocol == "paper":
        notes.append("LEAKY: the table's responders were already duplicated by its authors; "
                     "split at random as it is, so copies sit on both sides")
    return ProtocolResult(protocol, is_leaky(protocol), desc, list(models), preds, metrics,
                          per_cohort, fold_info, notes)


def _summarise(pm: pd.DataFrame, label: str, protocol: str, n_boot: int, seed: int) -> dict:
    """Metrics (with CIs) of one model's pooled predictions."""
    by_rep = [g.sort_values("row", kind="mergesort") for _, g in pm.groupby("repeat")]
    same_rows = all(np.array_equal(g["row"].to_numpy(), by_rep[0]["row"].to_numpy())
                    for g in by_rep)
    y0 = by_rep[0]["y"].to_numpy()
    out = {"model": label, "protocol": protocol, "leaky": is_leaky(protocol),
           "n": int(len(y0)), "n_responders": int(y0.sum()), "n_repeats": len(by_rep),
           "threshold_mean": float(pm["threshold"].mean()),
           "threshold_min": float(pm["threshold"].min()),
           "threshold_max": float(pm["threshold"].max())}
    two_classes = len(np.unique(y0)) == 2
    if same_rows:
        m = metrics_with_ci(y0, np.vstack([g["p"].to_numpy() for g in by_rep]),
                            np.vstack([g["pred"].to_numpy() for g in by_rep]),
                            n_boot=n_boot if two_classes else 0, seed=seed)
    else:  # each repeat scored different rows (paper): average per-repeat estimates
        ms = [metrics_with_ci(g["y"].to_numpy(), g["p"].to_numpy(), g["pred"].to_numpy(),
                              n_boot=n_boot, seed=seed) for g in by_rep]
        m = {k: {s: float(np.mean([mm[k][s] for mm in ms])) for s in ("value", "ci_low", "ci_high")}
             for k in METRICS}
    for k in METRICS:
        out[k] = m[k]["value"]
        out[f"{k}_ci_low"] = m[k]["ci_low"]
        out[f"{k}_ci_high"] = m[k]["ci_high"]
    return out
