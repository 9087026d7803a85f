"""SHAP attributions for the three model kinds, per-gene importance, the cross-model top-k table.

    res = explain(model, X_explain, X_background, genes)     # ShapResult
    imp = res.importance()                                   # gene, mean_abs_shap, rank
    top, overlap = top_k_table({"svm": imp_svm, "xgboost": imp_xgb, "amu": imp_amu}, k=20)
    fig = summary_figure(res, title="amu"); fig.savefig("amu.png", dpi=FIGURE_DPI)

The explainer is chosen per model and recorded in ``ShapResult.explainer``:

* tree ensembles (XGBoost, random forest, ...): ``shap.TreeExplainer`` (exact, on the model's
  margin: log-odds for XGBoost);
* Keras models emitting 2-class logits: ``shap.GradientExplainer`` (expected gradients) on the
  logit difference ``logit_1 - logit_0`` (the log-odds of class 1), with a background sample;
  if that fails, a model-agnostic ``shap.PermutationExplainer`` on ``P(class 1)``;
* everything else (SVM, logistic regression, any ``predict_proba``): ``shap.PermutationExplainer``
  on ``P(class 1)`` with a k-means summary of the background as masker.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from amu_tf.errors import InputDataError


@dataclass
class ShapResult:
    """SHAP values of one model on the explained rows (``values``: rows x genes)."""

    values: np.ndarray
    data: np.ndarray
    genes: list
    explainer: str
    output: str  # what the attributions add up to, e.g. "log-odds of class 1"
    notes: list = field(default_factory=list)

    def importance(self) -> pd.DataFrame:
        return mean_abs_shap(self.values, self.genes)


def mean_abs_shap(values, genes) -> pd.DataFrame:
    """Per-gene mean |SHAP| (the paper's Data S2-S4), sorted, with ``rank`` 1 = most important."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(genes):
        raise InputDataError(f"SHAP values of shape {values.shape} do not match {len(genes)} genes")
    df = pd.DataFrame({"gene": list(genes), "mean_abs_shap": np.abs(values).mean(axis=0),
                       "mean_shap": values.mean(axis=0)})
    df = df.sort_values("mean_abs_shap", ascending=False, kind="mergesort").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


# ---------------------------------------------------------------- model kinds
def _is_keras(model) -> bool:
    try:
        import keras
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, keras.Model)


_TREE_NAMES = ("XGB", "RandomForest", "ExtraTrees", "GradientBoosting", "DecisionTree",
               "LGBM", "CatBoost", "HistGradientBoosting")


def _is_tree(model) -> bool:
    name = type(model).__name__
    return any(name.startswith(t) for t in _TREE_NAMES)


def unwrap(model, X):
    """What SHAP explains inside ``model``, read from the parts its class declares.

    Returns ``(inner, X_inner, how)``:

    * a Keras model: itself;
    * a :class:`~amu_tf.training.zoo_classifier.ZooClassifier`: its Keras model ``model_``
      (the logits its ``predict_proba`` turns into probabilities);
    * a :class:`~amu_tf.training.searched_classifier.SearchedClassifier`, ``GridSearchCV`` or
      ``RandomizedSearchCV``: its refitted ``best_estimator_`` (what ``predict_proba`` calls),
      unwrapped in turn when it is a tree ensemble or a Keras model;
    * a scikit-learn ``Pipeline`` ending in a tree ensemble whose earlier steps keep one
      column per gene: the final step, on the rows passed through the earlier steps;
    * anything else (an SVM or logistic-regression pipeline, a biomarker, a recipe): the
      model itself, explained model-agnostically.
    """
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline

    from amu_tf.training.searched_classifier import SearchedClassifier
    from amu_tf.training.zoo_classifier import ZooClassifier

    if isinstance(model, ZooClassifier):
        return model.model_, X, f"{type(model).__name__}.model_"
    if isinstance(model, (SearchedClassifier, GridSearchCV, RandomizedSearchCV)):
        inner = model.best_estimator_
        if _is_tree(inner) or _is_keras(inner):
            return unwrap(inner, X)
    elif isinstance(model, Pipeline):
        last = model.steps[-1][1]
        if _is_tree(last):
            Xt = np.asarray(model[:-1].transform(X), dtype=float)
            if Xt.shape == np.shape(X):
                return last, Xt, "pipeline final step"
        return model, X, "pipeline"
    return model, X, "itself"


def _proba1(model):
    if _is_keras(model):
        import keras

        def f(X):
            logits = model.predict(np.asarray(X, dtype="float32"), verbose=0, batch_size=1024)
            return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))[:, 1]
        return f
    if hasattr(model, "predict_proba"):
        return lambda X: np.asarray(model.predict_proba(np.asarray(X)))[:, 1]
    if callable(model):
        return lambda X: np.asarray(model(np.asarray(X))).reshape(len(X), -1)[:, -1]
    raise InputDataError(f"cannot explain {type(model).__name__}: no predict_proba")


def _background(X_bg, n_background, seed):
    X_bg = np.asarray(X_bg, dtype=float)
    if len(X_bg) <= n_background:
        return X_bg, len(X_bg), "all background rows"
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_background, n_init=3, random_state=seed).fit(X_bg)
    return km.cluster_centers_, n_background, f"k-means centres ({n_background})"


def _permutation(f, X, X_bg, genes, n_background, seed, max_evals=None, progress=False):
    import shap

    bg, _, how = _background(X_bg, n_background, seed)
    masker = shap.maskers.Independent(bg, max_samples=len(bg))
    p = X.shape[1]
    max_evals = max_evals or 2 * p + 1
    expl = shap.PermutationExplainer(f, masker, seed=seed)
    sv = expl(X, max_evals=max_evals, silent=not progress)
    return np.asarray(sv.values, dtype=float), f"PermutationExplainer (background: {how})"


def explain(model, X, X_background, genes, *, kind=None, n_background=30, seed=0,
            nsamples=200, progress=False) -> ShapResult:
    """SHAP values of ``model`` on rows ``X`` (n x genes), with ``X_background`` (rows the model
    was trained on) as the reference distribution.

    ``kind`` forces ``"tree"``, ``"keras"`` or ``"agnostic"``; by default it is detected.
    """
    import shap

    X = np.asarray(X, dtype=float)
    X_background = np.asarray(X_background, dtype=float)
    if X.ndim != 2 or X.shape[1] != len(genes) or X_background.shape[1:] != X.shape[1:]:
        raise InputDataError(
            f"explain: X {X.shape} / background {X_background.shape} do not match {len(genes)} genes")
    if len(X) == 0:
        raise InputDataError("explain: no rows to explain")
    inner, Xi, how = unwrap(model, X)
    if how == "pipeline final step":
        _, Xb, _ = unwrap(model, X_background)
    else:
        Xb = X_background
    notes = [] if how == "itself" else [f"explained {how}"]
    if kind is None:
        kind = "keras" if _is_keras(inner) else "tree" if _is_tree(inner) else "agnostic"

    if kind == "tree":
        expl = shap.TreeExplainer(inner)
        sv = expl.shap_values(Xi, check_additivity=False)
        if isinstance(sv, list):  # older shap: one array per class
            sv = sv[-1]
        sv = np.asarray(sv, dtype=float)
        if sv.ndim == 3:  # rows x genes x classes
            sv = sv[..., -1]
        out = "margin of class 1 (log-odds for XGBoost)" if type(inner).__name__.startswith("XGB") \
            else "probability of class 1"
        return ShapResult(sv, X, list(genes), "TreeExplainer", out, notes)

    if kind == "keras":
        try:
            import keras

            inp = keras.Input(shape=(X.shape[1],), dtype="float32")
            logits = inner(inp)
            if logits.shape[-1] == 2:
                out = keras.layers.Lambda(lambda z: z[:, 1:2] - z[:, 0:1])(logits)
                out_name = "log-odds of class 1 (logit_1 - logit_0)"
            else:
                out = keras.layers.Lambda(lambda z: z[:, -1:])(logits)
                out_name = "last logit"
            # inputs as a list: shap's GradientExplainer calls the model with a list, and a
            # functional model built on a single tensor warns about the structure each call
            wrapper = keras.Model([inp], out)
            rng = np.random.default_rng(seed)
            bg = Xb[rng.choice(len(Xb), size=min(len(Xb), 100), replace=False)]
            expl = shap.GradientExplainer(wrapper, bg.astype("float32"))
            sv = expl.shap_values(Xi.astype("float32"), nsamples=nsamples, rseed=seed)
            sv = np.asarray(sv, dtype=float).reshape(len(Xi), X.shape[1])
            if not np.all(np.isfinite(sv)):
                raise FloatingPointError("non-finite SHAP values")
            return ShapResult(sv, X, list(genes), "GradientExplainer (expected gradients)",
                              out_name, notes)
        except Exception as exc:  # model-agnostic fallback, recorded
            warnings.warn(f"GradientExplainer failed ({exc}); using PermutationExplainer")
            notes.append(f"GradientExplainer failed: {type(exc).__name__}: {exc}")
            f = _proba1(inner)
            sv, name = _permutation(f, Xi, Xb, genes, n_background, seed, progress=progress)
            return ShapResult(sv, X, list(genes), name, "probability of class 1", notes)

    f = _proba1(model)  # agnostic: explain the whole wrapper on the original inputs
    sv, name = _permutation(f, X, X_background, genes, n_background, seed, progress=progress)
    return ShapResult(sv, X, list(genes), name, "probability of class 1", notes)


def top_k_table(importances: dict, k: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's Table 5: the top ``k`` genes of each model side by side, and their overlaps.

    ``importances`` maps a model name to its :func:`mean_abs_shap` frame. Returns
    ``(top, overlap)``: ``top`` has a ``rank`` column and one column per model; ``overlap`` has
    one row per pair of models (and one for all of them) with the number and names of shared genes.
    """
    from itertools import combinations

    names = list(importances)
    top = pd.DataFrame({"rank": np.arange(1, k + 1)})
    sets = {}
    for n in names:
        genes = importances[n]["gene"].tolist()[:k]
        top[n] = genes + [""] * (k - len(genes))
        sets[n] = set(genes)
    rows = []
    for r in range(2, len(names) + 1):
        for combo in combinations(names, r):
            shared = set.intersection(*(sets[c] for c in combo))
            rows.append({"models": " & ".join(combo), "n_shared": len(shared),
                         "genes": ", ".join(sorted(shared))})
    return top, pd.DataFrame(rows, columns=["models", "n_shared", "genes"])


#: resolution of the SHAP figures when saved
FIGURE_DPI = 120


def summary_figure(result: ShapResult, max_display=20, title=None):
    """Beeswarm summary plot (Fig S1-S3 style) as a :class:`matplotlib.figure.Figure`.

    ``shap.summary_plot`` draws on pyplot's current figure and has no ``ax`` argument, so
    this is the one place that uses pyplot: the figure is made with interactive mode off and
    closed in pyplot before it is returned (pyplot keeps no reference and shows nothing;
    the Figure object stays drawable and is saved with ``fig.savefig``)."""
    import matplotlib.pyplot as plt
    import shap

    with plt.ioff():
        plt.figure()
        try:
            shap.summary_plot(result.values, result.data, feature_names=result.genes,
                              max_display=max_display, show=False,
                              rng=np.random.default_rng(0))
        finally:
            fig = plt.gcf()
            plt.close(fig)
    if title:
        fig.suptitle(title)
    return fig


def bar_figure(importance: pd.DataFrame, k=20, title=None):
    """Horizontal bar plot of the top-``k`` mean |SHAP| genes (a ``Figure``)."""
    from matplotlib.figure import Figure

    top = importance.head(k).iloc[::-1]
    fig = Figure(figsize=(5, 0.25 * len(top) + 1))
    ax = fig.subplots()
    ax.barh(top["gene"], top["mean_abs_shap"], color="#3b75af")
    ax.set_xlabel("mean |SHAP|")
    if title:
        ax.set_title(title)
    return fig
