"""``recipe:compass-published`` (issue #23): a head trained on COMPASS's published features,
applied to the port's features after a label-free sign alignment. Synthetic published files
in ``tmp_path``; the port's features are given directly (the transform is the probe's, tested
in test_compass_probe.py), except in the end-to-end protocol test (tiny random encoder)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from amu_tf.errors import InputDataError
from amu_tf.training import estimator_kind, make_estimator
from amu_tf.training import compass_feature_transform as cft
from amu_tf.training.compass_published_head_classifier import CompassPublishedHeadClassifier

SETS = [f"set{i}" for i in range(8)]
CONCEPTS = ["A", "B", "C", "Reference"]
TABLES = {"n_genes": 40, "geneset_names": SETS,
          "geneset_members": [list(range(5 * i, 5 * i + 5)) for i in range(8)],
          "concept_names": CONCEPTS, "concept_members": [[0, 1], [2, 3], [4, 5], [6, 7]]}
COHORT_MAP = {"C0": "Hugo", "C1": "Liu"}
#: the published cohorts: three not mapped (the "pan-cancer" ones), two mapped to ours
PUBLISHED = {"P1": 60, "P2": 60, "P3": 60, "Hugo": 40, "Liu": 40}
FLIP = {"set0": -1.0, "A": -1.0}  # the port's sign of these features is the published one's opposite


@pytest.fixture()
def world(tmp_path):
    """Published files where the response follows set0 (and concept A); our rows of C0/C1 are
    those published patients (ids ``Pt<k>``), their port features the published ones with
    FLIP's signs, plus a cohort C2 that COMPASS never published."""
    rng = np.random.default_rng(0)
    ids, rows = [], []
    for cohort, n in PUBLISHED.items():
        for k in range(n):
            ids.append((f"{cohort}-{k}", cohort, f"Pt{k}_x"))
    feats = pd.DataFrame(rng.normal(size=(len(ids), 12)), columns=SETS + CONCEPTS,
                         index=[i[0] for i in ids])
    feats["A"] = feats["set0"] + 0.3 * rng.normal(size=len(ids))
    resp = (feats["set0"] + 0.5 * rng.normal(size=len(ids))) > 0
    labels = pd.DataFrame({"Sample_id": [i[2] for i in ids], "cohort": [i[1] for i in ids],
                           "response_label": np.where(resp, "R", "NR")},
                          index=feats.index)
    folder = tmp_path / "published"
    folder.mkdir()
    labels.to_csv(folder / "clinical_label.csv.gz")
    feats[SETS].assign(CANCER=1.0).to_csv(folder / "readouts_geneset.csv.gz")
    feats[CONCEPTS].assign(CANCER=1.0).to_csv(folder / "readouts_celltype.csv.gz")
    # our rows: concept block then gene-set block (the transform's "auto"/pc1 column order)
    for ours, theirs in COHORT_MAP.items():
        sel = labels.index[labels["cohort"] == theirs]
        for pid in sel:
            f = feats.loc[pid]
            x = [f[c] * FLIP.get(c, 1.0) for c in CONCEPTS] + [f[s] * FLIP.get(s, 1.0)
                                                               for s in SETS]
            rows.append((ours, f"{ours}:{labels.loc[pid, 'Sample_id'].split('_')[0]}",
                         int(resp[pid]), x))
    for k in range(30):  # a cohort not published: same signal, flipped as ours
        f = rng.normal(size=12)  # set0 is column 4 of ours (after the 4 concepts), A column 0
        f[0] = f[4] + 0.3 * rng.normal()
        y = int(f[4] + 0.5 * rng.normal() > 0)
        f[[0, 4]] *= -1.0
        rows.append(("C2", f"C2:q{k}", y, list(f)))
    cohorts = np.array([r[0] for r in rows])
    X = np.array([r[3] for r in rows], dtype=np.float64)
    # z within cohort, as the transform does
    for c in np.unique(cohorts):
        m = cohorts == c
        X[m] = (X[m] - X[m].mean(0)) / X[m].std(0)
    return {"dir": str(folder), "X": X, "y": np.array([r[2] for r in rows]),
            "groups": np.array([r[1] for r in rows]), "cohorts": cohorts}


def _est(world, **kw):
    kw = {"published_dir": world["dir"], "cohort_map": COHORT_MAP, "tables": TABLES,
          "Cs": (0.01, 0.1, 1.0), "min_matched": 10, **kw}
    return CompassPublishedHeadClassifier(**kw)


def _fit(est, world, rows):
    w = world
    return est.fit(w["X"][rows], w["y"][rows], groups=w["groups"][rows],
                   cohorts=w["cohorts"][rows])


def test_make_estimator_and_kind(world, monkeypatch):
    est = make_estimator("recipe:compass-published", published_dir=world["dir"])
    assert isinstance(est, CompassPublishedHeadClassifier)
    # published_dir defaults to $AMU_TF_COMPASS_PUBLISHED
    monkeypatch.setenv("AMU_TF_COMPASS_PUBLISHED", world["dir"])
    c = world["cohorts"]
    from_env = _fit(_est(world, published_dir=None), world, c == "C0")
    assert from_env.head_rows_ == 60 * 3 + 40
    assert estimator_kind(est) == "recipe" == estimator_kind("recipe:compass-published")
    assert clone(est).get_params()["published_dir"] == world["dir"]


def test_aligns_signs_without_labels_and_transfers(world):
    """Trained with C0 (Hugo) rows only, it scores C1 and C2, whose labels it never saw: the
    head's direction on the port's set0 is negative (the port's sign is flipped) and the
    ranking follows the response."""
    c = world["cohorts"]
    est = _fit(_est(world), world, c == "C0")
    assert est.selection_used_ == "published_loco"
    assert est.alignment_rho_["set0" if est.features_.startswith("geneset") else "A"] < -0.5
    cols = slice(*est.columns_)
    # set0 and A are the first column of their blocks: the largest weight, negative
    assert int(np.argmax(np.abs(est.direction_))) == 0 and est.direction_[0] < 0
    for held in ("C1", "C2"):
        m = c == held
        p = est.predict_proba(world["X"][m])[:, 1]
        assert roc_auc_score(world["y"][m], p) > 0.8
    assert est.n_matched_ == 40
    assert np.abs(est.direction_).sum() == pytest.approx(1.0)
    assert world["X"][:, cols].shape[1] == len(est.direction_)


def test_scored_patients_published_labels_stay_out(world):
    """A mapped cohort's published patients enter the head only as training rows: none of
    Liu's when C1 is held out, only the training half of it under a split of C1."""
    c = world["cohorts"]
    held_out = _fit(_est(world), world, c == "C0")
    assert "Liu" not in held_out.head_cohorts_
    assert held_out.head_rows_ == 60 * 3 + 40
    both = _fit(_est(world), world, np.isin(c, ["C0", "C1"]))
    assert both.head_rows_ == 60 * 3 + 40 + 40
    half = np.isin(c, ["C0"]) | ((c == "C1") & (np.cumsum(c == "C1") <= 20))
    split = _fit(_est(world), world, half)
    assert split.head_rows_ == 60 * 3 + 40 + 20
    excluded = _fit(_est(world, exclude_published=("P1",)), world, c == "C0")
    assert "P1" not in excluded.head_cohorts_ and excluded.head_rows_ == 60 * 2 + 40
    # a custom map that leaves Liu out still keeps Liu's published patients out of the head
    # (the default map's cohorts always count as mapped)
    partial = _fit(_est(world, cohort_map={"C0": "Hugo"}), world, c == "C0")
    assert "Liu" not in partial.head_cohorts_ and partial.head_rows_ == 60 * 3 + 40


def test_nothing_of_a_scored_patient_reaches_the_fit(world, tmp_path):
    """Scrambling the published labels and readouts of Liu's patients (C1, not a training
    cohort here) changes nothing fitted; permuting our rows' labels changes neither the
    alignment nor the head (only the threshold reads them)."""
    c = world["cohorts"]
    rows = np.isin(c, ["C0", "C2"])
    base = _fit(_est(world), world, rows)
    folder = tmp_path / "scrambled"
    folder.mkdir()
    labels = pd.read_csv(f"{world['dir']}/clinical_label.csv.gz", index_col=0)
    liu = labels["cohort"] == "Liu"
    labels.loc[liu, "response_label"] = labels.loc[liu, "response_label"].map(
        {"R": "NR", "NR": "R"})
    labels.to_csv(folder / "clinical_label.csv.gz")
    rng = np.random.default_rng(1)
    for name in ("readouts_geneset.csv.gz", "readouts_celltype.csv.gz"):
        r = pd.read_csv(f"{world['dir']}/{name}", index_col=0)
        cols = [k for k in r.columns if k != "CANCER"]
        r.loc[liu, cols] = rng.normal(size=(int(liu.sum()), len(cols)))
        r.to_csv(folder / name)
    scrambled = _fit(_est(world, published_dir=str(folder)), world, rows)
    for a, b in ((base, scrambled),):
        assert (a.features_, a.C_) == (b.features_, b.C_)
        np.testing.assert_allclose(a.direction_, b.direction_, atol=1e-12)
        assert a.threshold_ == pytest.approx(b.threshold_)
    w = world
    perm = np.random.default_rng(2).permutation(int(rows.sum()))
    shuffled = _est(world).fit(w["X"][rows], w["y"][rows][perm], groups=w["groups"][rows],
                               cohorts=w["cohorts"][rows])
    assert (shuffled.features_, shuffled.C_) == (base.features_, base.C_)
    np.testing.assert_allclose(shuffled.direction_, base.direction_, atol=1e-12)


def test_predictions_do_not_depend_on_row_order(world):
    c = world["cohorts"]
    rows = np.flatnonzero(np.isin(c, ["C0", "C2"]))
    a = _fit(_est(world), world, rows)
    b = _fit(_est(world), world, rows[::-1].copy())
    test = world["X"][c == "C1"]
    np.testing.assert_allclose(a.predict_proba(test), b.predict_proba(test), atol=1e-9)
    assert a.threshold_ == pytest.approx(b.threshold_)


def test_bad_inputs_are_one_line(world, tmp_path, monkeypatch):
    monkeypatch.delenv("AMU_TF_COMPASS_PUBLISHED", raising=False)
    c = world["cohorts"]
    with pytest.raises(InputDataError, match="at least 10"):
        _fit(_est(world), world, c == "C2")  # no training row is a published patient
    with pytest.raises(InputDataError, match="published_dir"):
        _fit(_est(world, published_dir=None), world, c == "C0")  # and no $AMU_TF_COMPASS_PUBLISHED
    with pytest.raises(InputDataError, match="lacks clinical_label"):
        _fit(_est(world, published_dir=str(tmp_path)), world, c == "C0")
    with pytest.raises(InputDataError, match="groups"):
        _est(world).fit(world["X"], world["y"])
    with pytest.raises(InputDataError, match=r"\|rho\|"):
        # our features unrelated to the published ones: no feature reaches |rho| 0.99
        noise = dict(world, X=np.random.default_rng(1).normal(size=world["X"].shape))
        _fit(_est(world, min_rho=0.99), noise, c == "C0")
    with pytest.raises(InputDataError, match="Riaz2017 .*not a published cohort"):
        _fit(_est(world, cohort_map={"C0": "Hugo", "C1": "Riaz2017"}), world, c == "C0")
    with pytest.raises(InputDataError, match="IMvigor210 .*not a published cohort"):
        _fit(_est(world, exclude_published=("IMvigor210",)), world, c == "C0")
    with pytest.raises(InputDataError, match=r"min_rho must be a number in \[0, 1\]"):
        _fit(_est(world, min_rho=1.01), world, c == "C0")


def test_wrong_published_files_are_one_line(world, tmp_path):
    """A published folder whose readout files are swapped, or hold text, is refused naming
    the file (before: a pandas traceback)."""
    import shutil

    c = world["cohorts"]
    swapped = tmp_path / "swapped"
    shutil.copytree(world["dir"], swapped)
    (swapped / "readouts_geneset.csv.gz").rename(swapped / "tmp.csv.gz")
    (swapped / "readouts_celltype.csv.gz").rename(swapped / "readouts_geneset.csv.gz")
    (swapped / "tmp.csv.gz").rename(swapped / "readouts_celltype.csv.gz")
    with pytest.raises(InputDataError, match="has none of the .* features as columns"):
        _fit(_est(world, published_dir=str(swapped)), world, c == "C0")
    text = tmp_path / "text"
    shutil.copytree(world["dir"], text)
    r = pd.read_csv(text / "readouts_geneset.csv.gz", index_col=0)
    r = r.astype({"set3": object})
    r.iloc[5, r.columns.get_loc("set3")] = "oops"
    r.to_csv(text / "readouts_geneset.csv.gz")
    with pytest.raises(InputDataError, match="readouts_geneset.csv.gz holds a value that is "
                                             "not a number"):
        _fit(_est(world, published_dir=str(text)), world, c == "C0")


def test_loco_protocol_end_to_end(world, tmp_path, monkeypatch):
    """Through the protocols on a tiny random encoder: they pass the patients and cohorts,
    and each held-out cohort is scored (features of a random encoder barely follow the
    published ones, so no alignment floor here)."""
    from amu_tf.evaluation.protocols import run_protocol

    from test_compass_probe import GENES, TINY, _table

    monkeypatch.setenv("AMU_TF_CACHE_DIR", str(tmp_path / "cache"))
    cft.clear_memory_cache()
    table = _table()
    table["patient"] = table["patient"].str.replace(":p", ":Pt", regex=False)
    est = _est(world, min_rho=0.0, encoder_config=TINY, genes=GENES, disk_cache=False,
               batch_size=8, cohort_map={"C0": "Hugo", "C1": "Liu"})
    res = run_protocol(table, "loco", {"head": est}, transform=None, n_boot=0,
                       progress=False)
    cft.clear_memory_cache()
    assert len(res.predictions) == len(table)
    assert set(res.per_cohort["cohort"]) == {"C0", "C1", "C2"}
    assert np.isfinite(res.predictions["p"]).all()
