"""``CompassPublishedHeadClassifier``: ``recipe:compass-published``, a head trained on
COMPASS's published pan-cancer features and applied to the port's own features."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from amu_tf.errors import InputDataError
from amu_tf.training._sklearn_input import fit_input
from amu_tf.training.compass_probe_classifier import (DEFAULT_CS, CompassProbeClassifier,
                                                      _is_number)

#: our cohort names -> COMPASS's cohort of the same patients (``compass_itrp/``)
DEFAULT_COHORT_MAP = {"GSE78220": "Hugo", "GSE91061_pre": "Riaz", "Liu2019": "Liu"}
#: where ``published_dir`` is read from when not given
PUBLISHED_ENV = "AMU_TF_COMPASS_PUBLISHED"
#: the published files (``../shared/data/compass_itrp/``, README there)
LABELS_FILE = "clinical_label.csv.gz"
READOUT_FILES = {"geneset": "readouts_geneset.csv.gz", "concept": "readouts_celltype.csv.gz"}


class CompassPublishedHeadClassifier(CompassProbeClassifier):
    """A linear head learned on COMPASS's published features of about 1,000 pan-cancer
    patients, applied to the port's features of our own expression.

    COMPASS published, for 987 immunotherapy patients of 13 cohorts (melanoma, bladder,
    kidney, lung, gastric, glioblastoma), the gene-set (132) and cell-type (43) readouts of its
    pre-trained model, extracted before it saw a response label. The port's ``pc1`` features
    follow them closely (median |rho| 0.70-0.78, docs/compass.md) but not exactly, and the
    published readouts' signs are arbitrary. So this head:

    1. reads the port's features (:meth:`make_input_transform`, as ``recipe:compass-probe``:
       COMPASS's input, the frozen pre-trained encoder, ``pc1`` readouts at both levels,
       z-scored within cohort);
    2. matches the training rows to the published patients they are (``cohort_map``: our
       cohort -> COMPASS's; COMPASS's ``Sample_id`` up to its first ``_`` is our patient id
       after the ``cohort:`` prefix), and on those rows, **label-free**, aligns each feature:
       the sign of its Spearman correlation with the published readout of the same name, and
       keeps the features with ``|rho| >= min_rho``;
    3. trains an L2 logistic regression on the published features (z-scored within each
       published cohort) and labels of the **head's rows**: every published patient of a
       cohort that ``cohort_map`` does not name (the non-melanoma cohorts), plus the published
       patients matched to a training row. A published patient of a mapped cohort who is not
       a training row (a held-out cohort's, or a test fold's) is never used, so under
       leave-one-cohort-out or cross-validation the scored patients' published labels stay
       out;
    4. chooses the level (gene set or concept) and C together by inner leave-one-cohort-out
       over the head's published cohorts (mean held-out AUC; ties: the concept level, then
       the smaller C), never looking at our rows' labels;
    5. keeps only the direction of the weights (unit L1 norm, no intercept) in the port's
       feature space (the aligned signs folded in, ``direction_``), maps the score to a
       probability by the median and IQR of the training rows' scores (label-free), and sets
       ``threshold_`` by Youden's J on the training rows' probabilities
       (``threshold_method_ = "youden_train"``: in-sample, and the matched rows' published
       labels also trained the head, so the threshold is somewhat optimistic; the ranking,
       hence the AUC, does not depend on it).

    Do not score it on the published non-melanoma cohorts (``IMVigor210``, ``IMmotion150``,
    ``SU2CLC1``, ``SU2CLC2``, ``Rose``, ``Kim``, ``Zhao``, ``Snyder``, ``Miao``, ``Choueiri``):
    it was trained on their labels. ``../shared/data/cohorts_pancancer`` holds some of the
    same patients (Mariathasan2018_IMvigor210, Miao2018_Kidney, Snyder2017_Urothelial,
    Zhao2019_Brain_benefit; Ravi2023_Lung may overlap SU2C): to score one of those, name its
    published cohort in ``exclude_published``. Every published cohort named in
    ``cohort_map`` (and the default map's Hugo, Riaz and Liu, always) enters the head only
    through matched training rows; a ``cohort_map`` value or ``exclude_published`` name that
    is not a published cohort is refused, so a misspelling cannot let a cohort in.

    ``fit(X, y, groups, cohorts)``: ``groups`` are the rows' patient ids and ``cohorts`` their
    cohorts (the protocols and ``amu train`` pass both); at least ``min_matched`` training
    patients must match a published patient (several samples of one patient count once: the
    first is aligned), else one line says so.

    Args:
        published_dir: the folder of COMPASS's published files (``clinical_label.csv.gz``,
            ``readouts_geneset.csv.gz``, ``readouts_celltype.csv.gz``; in the shared data:
            ``../shared/data/compass_itrp``); default: ``$AMU_TF_COMPASS_PUBLISHED``.
        cohort_map: ``{our cohort: COMPASS cohort}`` of the same patients.
        exclude_published: COMPASS cohorts never to use in the head.
        min_rho: the |Spearman rho| a feature needs with its published readout.
        min_matched: matched training patients needed to align the features.
        level: ``"auto"`` (both levels, chosen by the inner selection), ``"geneset"`` or
            ``"concept"``; the readout is ``pc1``.
        Cs, cohort_units, cohort_cancer_types, batch_size, disk_cache, encoder_config,
            genes, tables, seed, scaler_fit: as :class:`CompassProbeClassifier`.
    """

    recipe = "compass-published"

    def __init__(self, published_dir=None, cohort_map=None, exclude_published=(),
                 min_rho=0.5, min_matched=20, level="auto", Cs=DEFAULT_CS, cohort_units=None,
                 cohort_cancer_types=None, seed=0, batch_size=16, disk_cache=True,
                 encoder_config=None, genes=None, tables=None, scaler_fit="per_cohort"):
        super().__init__(level=level, readout="pc1", Cs=Cs, cohort_units=cohort_units,
                         cohort_cancer_types=cohort_cancer_types, output="direction",
                         seed=seed, batch_size=batch_size, disk_cache=disk_cache,
                         encoder_config=encoder_config, genes=genes, tables=tables,
                         scaler_fit=scaler_fit)
        self.published_dir = published_dir
        self.cohort_map = cohort_map
        self.exclude_published = exclude_published
        self.min_rho = min_rho
        self.min_matched = min_matched

    def check_params(self):
        """The probe's checks, then this head's own: ``min_rho`` in [0, 1], ``min_matched``
        an integer >= 1, ``cohort_map`` a mapping of names, ``exclude_published`` a list of
        names (a bare string would be read letter by letter)."""
        name = self.recipe
        if self.level not in ("auto", "geneset", "concept"):
            raise ValueError(f"{name}: level must be 'auto', 'geneset' or 'concept' (COMPASS "
                             f"published no gene-level readouts), not {self.level!r}")
        super().check_params()
        if not (_is_number(self.min_rho) and 0 <= self.min_rho <= 1):
            raise ValueError(f"{name}: min_rho must be a number in [0, 1], not "
                             f"{self.min_rho!r}")
        if not (_is_number(self.min_matched) and isinstance(self.min_matched, (int, np.integer))
                and self.min_matched >= 1):
            raise ValueError(f"{name}: min_matched must be an integer >= 1, not "
                             f"{self.min_matched!r}")
        cmap = self.cohort_map
        if cmap is not None and not (isinstance(cmap, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in cmap.items())):
            raise ValueError(f"{name}: cohort_map must map our cohort names to COMPASS's, e.g. "
                             f"--param 'cohort_map={{\"GSE78220\": \"Hugo\"}}', not {cmap!r}")
        ex = self.exclude_published
        if ex is not None and (isinstance(ex, (str, bytes))
                               or not isinstance(ex, (list, tuple, set, frozenset))
                               or not all(isinstance(c, str) for c in ex)):
            raise ValueError(f"{name}: exclude_published must be a list of COMPASS cohort "
                             f"names, e.g. --param 'exclude_published=[\"Liu\"]', not {ex!r}")

    # published data ---------------------------------------------------------------------
    def _published(self):
        """``(labels, {level: readouts})`` read from ``published_dir``."""
        where = self.published_dir or os.environ.get(PUBLISHED_ENV)
        if not where:
            raise InputDataError(f"compass-published: give published_dir (or set "
                                 f"${PUBLISHED_ENV}), the folder of COMPASS's published "
                                 "features (../shared/data/compass_itrp)")
        folder = Path(where)
        files = [LABELS_FILE] + list(READOUT_FILES.values())
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise InputDataError(f"compass-published: {folder} lacks {', '.join(missing)}")
        try:
            labels = pd.read_csv(folder / LABELS_FILE, index_col=0)
            readouts = {lv: pd.read_csv(folder / f, index_col=0).drop(columns="CANCER",
                                                                      errors="ignore")
                        for lv, f in READOUT_FILES.items()}
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InputDataError(f"compass-published: cannot read {folder}: {exc}") from None
        for col in ("cohort", "response_label", "Sample_id"):
            if col not in labels.columns:
                raise InputDataError(f"compass-published: {LABELS_FILE} has no {col!r} column")
        for lv, r in readouts.items():
            if not set(labels.index) <= set(r.index):
                raise InputDataError(f"compass-published: {READOUT_FILES[lv]} lacks patients "
                                     f"of {LABELS_FILE}")
        known = set(labels["cohort"].astype(str))
        named = set(self._cohort_map().values()) | set(self.exclude_published or ())
        unknown = sorted(named - known)
        if unknown:
            raise InputDataError(f"compass-published: {', '.join(unknown)} (cohort_map or "
                                 f"exclude_published) is not a published cohort; they are "
                                 f"{', '.join(sorted(known))}")
        labels = labels[labels["response_label"].isin(["R", "NR"])]
        out = {}
        for lv, r in readouts.items():
            try:
                out[lv] = r.loc[labels.index].astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise InputDataError(f"compass-published: {READOUT_FILES[lv]} holds a value "
                                     f"that is not a number ({exc})") from None
        return labels, out

    def _cohort_map(self) -> dict:
        return DEFAULT_COHORT_MAP if self.cohort_map is None else dict(self.cohort_map)

    def _match(self, labels, groups, cohorts):
        """``(our row positions, published ids)`` of the training rows that are published
        patients, one row per published patient (the first)."""
        cmap = self._cohort_map()
        pid = pd.Series(np.asarray(groups).astype(str)).str.split(":", n=1).str[-1].to_numpy()
        cohorts = np.asarray(cohorts).astype(str)
        rows, ids = [], []
        for ours, theirs in cmap.items():
            lab = labels[labels["cohort"] == theirs]
            if lab.empty:
                continue
            key = lab["Sample_id"].astype(str).str.split("_").str[0].to_numpy()
            first = pd.Series(lab.index, index=key).groupby(level=0).first()
            for i in np.flatnonzero(cohorts == ours):
                if pid[i] in first.index and first.loc[pid[i]] not in ids:
                    rows.append(i)
                    ids.append(first.loc[pid[i]])
        return np.asarray(rows, dtype=int), np.asarray(ids, dtype=object)

    @staticmethod
    def _zscore(frame, cohort):
        g = frame.groupby(cohort.to_numpy())
        sd = g.transform(lambda c: c.std(ddof=0)).replace(0.0, 1.0)
        return (frame - g.transform("mean")) / sd

    # fit --------------------------------------------------------------------------------
    def fit(self, X, y, groups=None, cohorts=None, unlabeled=None):
        from scipy.stats import spearmanr
        from sklearn.metrics import roc_auc_score

        from amu_tf.training.threshold import threshold_margin, youden_threshold

        self._checked_params()
        X, self.classes_, y = fit_input(self, X, y, float64=True)
        if groups is None or cohorts is None:
            raise InputDataError("compass-published: fit needs the rows' patients (groups) "
                                 "and cohorts, to find the published patients among them")
        labels, readouts = self._published()
        rows, ids = self._match(labels, groups, cohorts)
        if len(rows) < int(self.min_matched):
            raise InputDataError(
                f"compass-published: {len(rows)} training patient(s) are patients of "
                f"COMPASS's published cohorts "
                f"({', '.join(sorted(set(self._cohort_map().values())))}); aligning the "
                f"features needs at least {self.min_matched}: train on cohorts that include "
                f"them (cohort_map says which of ours they are)")
        # a mapped published cohort enters the head only through matched training rows; the
        # default map's cohorts always count as mapped, whatever cohort_map says
        mapped = set(DEFAULT_COHORT_MAP.values()) | set(self._cohort_map().values())
        excluded = set(self.exclude_published or ())
        head = labels.index[~labels["cohort"].isin(mapped | excluded)].tolist()
        matched = [i for i in ids if labels.loc[i, "cohort"] not in excluded]
        head_ids = pd.Index(head + matched)
        head_cohort = labels.loc[head_ids, "cohort"].astype(str)
        head_y = (labels.loc[head_ids, "response_label"] == "R").to_numpy(int)
        self.head_rows_ = len(head_ids)
        self.head_cohorts_ = sorted(head_cohort.unique())
        self.n_matched_ = len(rows)

        blocks = [b for b in self._blocks(X.shape[1])]
        names = self._tables_names()
        scores, fitted = {}, {}
        for label, start, stop in blocks:
            level = label.split("-")[0]
            feat = names[level]
            if stop - start != len(feat):
                raise InputDataError(f"compass-published: {stop - start} input columns for "
                                     f"the {level} level, which has {len(feat)} features")
            pub = readouts[level]
            cols = [j for j, n in enumerate(feat) if n in pub.columns]
            if not cols:
                raise InputDataError(f"compass-published: {READOUT_FILES[level]} has none of "
                                     f"the {len(feat)} {level} features as columns (a file "
                                     f"of another level, or not COMPASS's readouts?)")
            pz = self._zscore(pub.loc[head_ids, [feat[j] for j in cols]], head_cohort)
            # alignment on the matched training rows: expression-derived features only
            ours = X[rows][:, [start + j for j in cols]]
            theirs = self._zscore(pub.loc[ids, [feat[j] for j in cols]],
                                  labels.loc[ids, "cohort"].astype(str)).to_numpy()
            rho = np.array([spearmanr(ours[:, k], theirs[:, k]).statistic
                            for k in range(len(cols))])
            rho = np.where(np.isfinite(rho), rho, 0.0)
            keep = np.abs(rho) >= float(self.min_rho)
            if not keep.any():
                continue
            Z = pz.to_numpy()[:, keep]
            for C in self.Cs:
                aucs = []
                for c in self.head_cohorts_:
                    te = (head_cohort == c).to_numpy()
                    if len(np.unique(head_y[te])) < 2 or len(np.unique(head_y[~te])) < 2:
                        continue
                    m = self._logreg(C).fit(Z[~te], head_y[~te])
                    aucs.append(roc_auc_score(head_y[te], Z[te] @ m.coef_[0]))
                scores[(label, float(C))] = float(np.mean(aucs)) if aucs else np.nan
            fitted[label] = (start, cols, rho, keep, Z)
        finite = [k for k in scores if np.isfinite(scores[k])]
        if not fitted:
            raise InputDataError(f"compass-published: no port feature reaches |rho| >= "
                                 f"{self.min_rho} with its published readout on the "
                                 f"{len(rows)} matched training patients")
        if not finite:
            raise InputDataError(f"compass-published: the head's published cohorts "
                                 f"({', '.join(self.head_cohorts_)}) give no inner split "
                                 "with both classes on each side; C cannot be chosen")
        order = [b[0] for b in blocks]
        best = max(finite, key=lambda k: (scores[k], -order.index(k[0]), -k[1]))
        self.cv_scores_ = scores
        self.features_, self.C_ = best
        start, cols, rho, keep, Z = fitted[best[0]]
        stop = next(b[2] for b in blocks if b[0] == best[0])
        self.columns_ = (start, stop)
        self.estimator_ = self._logreg(self.C_).fit(Z, head_y)
        w = self._unit(self.estimator_.coef_[0])
        direction = np.zeros(stop - start)
        direction[np.asarray(cols)[keep]] = np.sign(rho[keep]) * w
        self.direction_ = direction
        self.alignment_rho_ = dict(zip([names[best[0].split("-")[0]][j] for j in cols],
                                       rho.round(4).tolist()))
        self.n_features_used_ = int(keep.sum())
        s = X[:, start:stop] @ direction
        self.center_ = float(np.median(s))
        q75, q25 = np.percentile(s, [75, 25])
        self.scale_ = float(q75 - q25) if q75 > q25 else 1.0
        p = self._sigmoid(s)
        self.threshold_ = float(youden_threshold(y, p))
        self.threshold_method_ = "youden_train"
        self.threshold_margin_ = threshold_margin(p, self.threshold_)
        self.selection_used_ = "published_loco"
        return self

    def _tables_names(self):
        if self.tables is not None:
            tables = self.tables
        else:
            from amu_tf.data.compass_concepts import _default_tables

            tables = _default_tables()
        return {"geneset": list(tables["geneset_names"]),
                "concept": list(tables["concept_names"])}

    def score_weights(self):
        check_is_fitted(self, "direction_")
        return super().score_weights()
