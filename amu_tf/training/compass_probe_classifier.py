"""``CompassProbeClassifier``: ``recipe:compass-probe``, a linear probe on COMPASS's
pre-trained encoder."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from amu_tf.training._sklearn_input import fit_input, predict_input

DEFAULT_CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def fit_in_row_space(model, X, y):
    """Fit the L2-penalised ``LogisticRegression`` ``model`` on ``X``, ``y`` and return it.

    With more columns than rows (the gene level: 15,672 features, a few hundred patients)
    the fit runs on the row space of ``X``: the penalised optimum ``w`` lies there (a part of
    ``w`` orthogonal to every row changes no prediction and only adds to the penalty; the
    intercept is not penalised). With ``X X' = U L U'`` (the rows' Gram matrix, ``n x n``) and
    ``V' = L^-1/2 U' X`` (orthonormal rows spanning that space), the regression on
    ``Z = X V = U L^1/2`` (as many columns as rows) with the same ``C`` has the optimum
    ``b = V' w``, ``||b|| = ||w||``: the same objective, solved in a few hundred dimensions,
    where lbfgs converges in fewer, cheaper steps than on the full, ill-conditioned problem
    (measured in benchmarks/README.md). Directions whose singular value is below 1e-6 of the
    largest are dropped (the penalty keeps their weight near 0 anyway). ``coef_`` is mapped
    back to the columns of ``X`` (``w = V b``), so the model predicts from ``X`` as if fitted
    on it. Another penalty (L1, elastic net, none) is refused: its optimum need not lie in
    the row space."""
    penalty = getattr(model, "penalty", "l2")
    l2 = penalty == "l2" or (penalty == "deprecated" and not getattr(model, "l1_ratio", 0))
    if not l2:
        raise ValueError(f"fit_in_row_space needs an L2 penalty, not {penalty!r} (l1_ratio "
                         f"{getattr(model, 'l1_ratio', None)!r})")
    names = getattr(X, "columns", None)
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    if p <= n:
        return model.fit(X, y)
    lam, U = np.linalg.eigh(X @ X.T)
    keep = lam > max(float(lam[-1]), 1e-300) * 1e-12
    if not keep.any():  # all-zero rows: nothing to span, the plain fit (intercept only)
        return model.fit(X, y)
    root = np.sqrt(lam[keep])
    Z = U[:, keep] * root                          # X V
    vt = (U[:, keep] / root).T @ X                 # V'
    model.fit(Z, y)
    model.coef_ = model.coef_ @ vt
    model.n_features_in_ = p
    if names is not None:
        model.feature_names_in_ = np.asarray(names, dtype=object)
    return model


class CompassProbeClassifier(ClassifierMixin, BaseEstimator):
    """An L2 logistic regression on COMPASS concept features, its C chosen by inner
    leave-one-cohort-out.

    What it reads is :meth:`make_input_transform`: a
    :class:`~amu_tf.training.compass_feature_transform.CompassFeatureTransform` of the
    genome-wide table (COMPASS's genes, min-max per cohort, the frozen pre-trained encoder,
    concept features, z-scored within cohort; label-free, encoder features cached per sample:
    see that class for why the cache is leak-free). The protocols fit it on the training rows.

    ``fit(X, y, groups=None, cohorts=None, unlabeled=None)``: for each C of ``Cs``, the
    training rows' out-of-fold probabilities of inner splits that are the training cohorts
    (one held out at a time) when ``cohorts`` names two or more cohorts that each hold both
    classes, else patient-grouped stratified folds (``selection_used_`` says which). The C
    whose mean held-out AUC over the inner folds is the highest wins (ties: the smaller C,
    the stronger regularisation); the model is refitted on all training rows with it, and
    ``threshold_`` is Youden's J on that C's out-of-fold probabilities (training rows only,
    ``threshold_method_ = "youden_oof"``). Arithmetic is float64. ``unlabeled`` is accepted
    for the recipes' signature and not used.

    With ``level`` or ``readout`` ``"auto"`` (the default), the input holds one column block
    per feature variant (concept / gene-set level x ``pc1`` / ``mean`` readout) and the same
    inner splits choose the variant together with C (``features_``, ``C_``): a nested choice
    that never looks at the scored cohort. ``level="gene"`` reads COMPASS's gene-level
    readout instead (one feature per gene, 15,672; ``readout`` ``"mean"`` or ``"auto"``), so
    its weights can be read gene by gene.

    ``output="direction"`` (the default) keeps only the direction of the fitted weights (unit
    L1 norm, no intercept; ``direction_``) and maps the score to a probability by the median
    and IQR of the training rows' scores (``center_``, ``scale_``, label-free), as
    ``recipe:stack-direction`` does: within a cohort the ranking is the same, but every fold's
    scores sit on one scale, so predictions pooled over held-out cohorts are comparable.

    Args:
        level, readout, cohort_units, cohort_cancer_types, batch_size, disk_cache,
            encoder_config, genes, tables: of the feature transform.
        scaler_fit: COMPASS's input min-max scaler, ``"per_cohort"`` (default: each
            cohort's own rows, the scored cohort's at scoring, expression only) or
            ``"training"`` (one scaler on the training rows, frozen); see
            :class:`~amu_tf.data.transforms.compass_input_transform.CompassInputTransform`.
            The fitted transform records the choice and its label-free effect on the
            encoder input (``transform.json``'s ``"record"``).
        Cs: the inverse regularisation strengths searched.
        output: ``"probability"`` (the regression's) or ``"direction"`` (see above).
        inner_splits: folds of the stratified fallback.
        seed: seed of the stratified fallback's folds.
    """

    #: its name among the recipes (``amu train``'s summary reads it)
    recipe = "compass-probe"

    def __init__(self, level="auto", readout="auto", Cs=DEFAULT_CS, cohort_units=None,
                 cohort_cancer_types=None, output="direction", inner_splits=5, seed=0,
                 batch_size=16, disk_cache=True, encoder_config=None, genes=None, tables=None,
                 scaler_fit="per_cohort"):
        self.level = level
        self.readout = readout
        self.Cs = Cs
        self.cohort_units = cohort_units
        self.cohort_cancer_types = cohort_cancer_types
        self.output = output
        self.inner_splits = inner_splits
        self.seed = seed
        self.batch_size = batch_size
        self.disk_cache = disk_cache
        self.encoder_config = encoder_config
        self.genes = genes
        self.tables = tables
        self.scaler_fit = scaler_fit

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # responder or not
        return tags

    def check_params(self):
        """Raise ValueError naming the first parameter of the wrong type or range (``amu
        train`` calls it before any work; ``fit`` calls it first)."""
        name = self.recipe
        Cs = self.Cs
        if (isinstance(Cs, (str, bytes)) or not hasattr(Cs, "__len__") or len(Cs) == 0
                or not all(_is_number(c) and c > 0 for c in Cs)):
            raise ValueError(f"{name}: Cs must be a non-empty list of positive numbers, e.g. "
                             f"--param 'Cs=[0.01, 0.1, 1]', not {Cs!r}")
        if self.output not in ("probability", "direction"):
            raise ValueError(f"{name}: output must be 'probability' or 'direction', not "
                             f"{self.output!r}")
        for key, low in (("inner_splits", 2), ("batch_size", 1)):
            v = getattr(self, key)
            if not (_is_number(v) and isinstance(v, (int, np.integer)) and v >= low):
                raise ValueError(f"{name}: {key} must be an integer >= {low}, not {v!r}")
        from amu_tf.data.compass_concepts import check_level_readout

        check_level_readout(self.level, self.readout, name)
        from amu_tf.data.transforms.compass_input_transform import SCALER_FITS

        if not (isinstance(self.scaler_fit, str) and self.scaler_fit in SCALER_FITS):
            raise ValueError(f"{name}: scaler_fit must be one of "
                             f"{', '.join(repr(f) for f in SCALER_FITS)}, not "
                             f"{self.scaler_fit!r}")

    def make_input_transform(self):
        """The unfitted transform whose output this classifier takes."""
        from amu_tf.training.compass_feature_transform import CompassFeatureTransform

        return CompassFeatureTransform(level=self.level, readout=self.readout,
                                       cohort_units=self.cohort_units,
                                       cohort_cancer_types=self.cohort_cancer_types,
                                       scaler_fit=self.scaler_fit,
                                       batch_size=self.batch_size, disk_cache=self.disk_cache,
                                       encoder_config=self.encoder_config, genes=self.genes,
                                       tables=self.tables)

    def _checked_params(self):
        """:meth:`check_params` for ``fit``: the same message as a user-facing error."""
        from amu_tf.errors import InputDataError

        try:
            self.check_params()
        except ValueError as exc:
            raise InputDataError(str(exc)) from None

    # inner selection --------------------------------------------------------------------
    def _inner_splits(self, y, groups, cohorts):
        """``(list of (train, test) index arrays, selection)``."""
        if cohorts is not None:
            cohorts = np.asarray(cohorts).astype(str)
            names = np.unique(cohorts)
            if len(names) >= 2 and all(len(np.unique(y[cohorts == c])) == 2 for c in names):
                idx = np.arange(len(y))
                return [(idx[cohorts != c], idx[cohorts == c]) for c in names], "loco"
        from sklearn.model_selection import StratifiedGroupKFold

        n = int(min(self.inner_splits, np.bincount(y).min()))
        if n < 2:
            from amu_tf.errors import InputDataError

            raise InputDataError("compass-probe: fewer than 2 training rows of a class; the "
                                 "inner cross-validation cannot choose C")
        g = np.arange(len(y)) if groups is None else np.asarray(groups)
        cv = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=self.seed)
        return list(cv.split(np.zeros(len(y)), y, g)), "stratified"

    def _fit_logreg(self, label, C, X, y):
        """The regression of C on the variant ``label``'s columns: solved in the rows' space
        for the gene level (15,672 columns: :func:`fit_in_row_space`, the same optimum in a
        fraction of the time), plainly for the gene-set and concept levels (at most 132
        columns, cheap either way; their measured figures stay reproducible)."""
        if label.startswith("gene-"):
            return fit_in_row_space(self._logreg(C), X, y)
        return self._logreg(C).fit(X, y)

    @staticmethod
    def _logreg(C):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=float(C), max_iter=5000)

    def _blocks(self, n_columns):
        """``[(label, start, stop)]`` of the input's feature variants (one block unless
        ``level`` or ``readout`` is ``"auto"``)."""
        from amu_tf.training.compass_feature_transform import feature_blocks, feature_variants

        variants = feature_variants(self.level, self.readout)
        if len(variants) == 1:
            return [(f"{variants[0][0]}-{variants[0][1]}", 0, n_columns)]
        if self.tables is not None:
            tables = self.tables
        else:
            from amu_tf.data.compass_concepts import _default_tables

            tables = _default_tables()
        blocks = feature_blocks(self.level, self.readout, tables)
        if blocks[-1][2] != n_columns:
            from amu_tf.errors import InputDataError

            raise InputDataError(f"compass-probe: {n_columns} input columns, but the feature "
                                 f"variants {[b[0] for b in blocks]} make {blocks[-1][2]}")
        return blocks

    def fit(self, X, y, groups=None, cohorts=None, unlabeled=None):
        from sklearn.metrics import roc_auc_score

        from amu_tf.training.threshold import threshold_margin, youden_threshold

        self._checked_params()
        X, self.classes_, y = fit_input(self, X, y, float64=True)
        splits, self.selection_used_ = self._inner_splits(y, groups, cohorts)
        blocks = self._blocks(X.shape[1])
        direction = self.output == "direction"
        scores, oof = {}, {}
        for label, start, stop in blocks:
            Xb = X[:, start:stop]
            for C in self.Cs:
                p = np.full(len(y), np.nan)
                aucs = []
                for tr, te in splits:
                    if len(np.unique(y[tr])) < 2:
                        continue
                    m = self._fit_logreg(label, C, Xb[tr], y[tr])
                    p[te] = (Xb[te] @ self._unit(m.coef_[0]) if direction
                             else m.predict_proba(Xb[te])[:, 1])
                    if len(np.unique(y[te])) == 2:
                        aucs.append(roc_auc_score(y[te], p[te]))
                scores[(label, float(C))] = float(np.mean(aucs)) if aucs else np.nan
                oof[(label, float(C))] = p
        finite = [k for k in scores if np.isfinite(scores[k])]
        # the best mean held-out AUC; ties: the earlier variant, then the smaller C
        best = (max(finite, key=lambda k: (scores[k], -[b[0] for b in blocks].index(k[0]),
                                           -k[1]))
                if finite else (blocks[0][0], float(min(self.Cs))))
        self.cv_scores_ = scores
        self.features_, self.C_ = best
        self.columns_ = next((start, stop) for label, start, stop in blocks if label == best[0])
        Xb = X[:, slice(*self.columns_)]
        self.estimator_ = self._fit_logreg(self.features_, self.C_, Xb, y)
        p = oof[best]
        self.direction_ = None
        if direction:  # scores on one scale in every fold: the weights' direction only
            self.direction_ = self._unit(self.estimator_.coef_[0])
            s = Xb @ self.direction_
            self.center_ = float(np.median(s))
            q75, q25 = np.percentile(s, [75, 25])
            self.scale_ = float(q75 - q25) if q75 > q25 else 1.0
            p = self._sigmoid(p)
        ok = np.isfinite(p)
        self.threshold_ = float(youden_threshold(y[ok], p[ok]))
        self.threshold_method_ = "youden_oof"
        self.threshold_margin_ = threshold_margin(p[ok], self.threshold_)
        return self

    @staticmethod
    def _unit(w):
        w = np.asarray(w, dtype=np.float64)
        return w / max(float(np.abs(w).sum()), 1e-12)

    def _sigmoid(self, s):
        return 1.0 / (1.0 + np.exp(-(np.asarray(s) - self.center_) / self.scale_))

    def score_weights(self):
        """The logistic regression's weights of the input features."""
        check_is_fitted(self, "estimator_")
        w = np.zeros(self.n_features_in_)
        w[slice(*self.columns_)] = (self.estimator_.coef_[0] if self.direction_ is None
                                    else self.direction_)
        return w

    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        X = predict_input(self, X, float64=True)[:, slice(*self.columns_)]
        if self.direction_ is None:
            return self.estimator_.predict_proba(X)
        p = self._sigmoid(X @ self.direction_)
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        """Class labels at the frozen ``threshold_`` on the positive-class probability."""
        positive = self.predict_proba(X)[:, 1] >= self.threshold_
        return self.classes_[positive.astype(int)]


def _is_number(v) -> bool:
    """A real number, not a bool (JSON's true would pass as 1 otherwise)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and bool(np.isfinite(v))
