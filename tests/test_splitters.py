"""Splitters: no row or patient on both sides, upsampled copies stay in training, and the
paper's protocol is shown to leak."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amu_tf.errors import InputDataError
from amu_tf.evaluation.splitters import (
    external_splits,
    grouped_cv_splits,
    loco_splits,
    paper_splits,
)
from amu_tf.training.upsampling import upsample_indices


@st.composite
def patients_and_labels(draw):
    """Patients with 1-3 samples each; labels mostly per patient, sometimes per sample."""
    n_pat = draw(st.integers(12, 40))
    sizes = draw(st.lists(st.integers(1, 3), min_size=n_pat, max_size=n_pat))
    pat_y = draw(st.lists(st.integers(0, 1), min_size=n_pat, max_size=n_pat))
    pat_y[:5] = [1] * 5  # at least 5 patients per class
    pat_y[5:10] = [0] * 5
    groups = np.repeat([f"P{i}" for i in range(n_pat)], sizes)
    y = np.repeat(pat_y, sizes)
    flip = draw(st.booleans())
    if flip:  # a patient whose samples disagree (e.g. pre/on biopsies)
        y = y.copy()
        y[-1] = 1 - y[-1]
    seed = draw(st.integers(0, 1000))
    return y, groups, seed


@settings(max_examples=40, deadline=None)
@given(patients_and_labels(), st.integers(2, 5), st.integers(1, 3))
def test_cv_no_sample_or_patient_on_both_sides(data, n_splits, n_repeats):
    y, groups, seed = data
    folds = grouped_cv_splits(y, groups, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
    assert len(folds) == n_splits * n_repeats
    for r in range(n_repeats):
        tested = np.concatenate([f.test for f in folds if f.repeat == r])
        assert np.array_equal(np.sort(tested), np.arange(len(y)))  # each row once per repeat
    for f in folds:
        assert not set(f.train) & set(f.test)
        assert not set(groups[f.train]) & set(groups[f.test])
        assert len(f.train) + len(f.test) == len(y)


@settings(max_examples=40, deadline=None)
@given(patients_and_labels(), st.integers(0, 10_000))
def test_upsampled_copies_never_cross_a_split(data, up_seed):
    y, groups, seed = data
    for f in grouped_cv_splits(y, groups, n_splits=3, n_repeats=2, seed=seed):
        up = upsample_indices(y, rows=f.train, random_state=up_seed)
        assert set(up) <= set(f.train)
        assert not set(up) & set(f.test)
        assert not set(groups[up]) & set(groups[f.test])
        counts = np.bincount(y[up], minlength=2)
        assert counts[0] == counts[1]  # balanced, from training rows only


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=8, max_size=60))
def test_loco_holds_out_exactly_one_cohort(cohorts):
    cohorts = np.array(cohorts)
    if len(set(cohorts)) < 2:
        with pytest.raises(InputDataError, match="at least two cohorts"):
            loco_splits(cohorts)
        return
    folds = loco_splits(cohorts)
    assert sorted(f.name for f in folds) == sorted(set(cohorts))
    for f in folds:
        assert set(cohorts[f.test]) == {f.name}
        assert f.name not in set(cohorts[f.train])
        assert len(f.train) + len(f.test) == len(cohorts)


def test_external_trains_on_named_cohorts_only():
    cohorts = np.array(["A"] * 5 + ["B"] * 4 + ["C"] * 3)
    folds = external_splits(cohorts, ["A", "B"])
    assert [f.name for f in folds] == ["C"]
    assert set(cohorts[folds[0].train]) == {"A", "B"}
    with pytest.raises(InputDataError, match="both trained on and scored"):
        external_splits(cohorts, ["A"], ["A"])
    with pytest.raises(InputDataError, match="no labeled rows"):
        external_splits(cohorts, ["Z"])


@settings(max_examples=30, deadline=None)
@given(st.integers(20, 120), st.floats(0.2, 0.5), st.integers(0, 1000))
def test_paper_protocol_puts_copies_of_test_responders_in_training(n, rate, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    y[:4], y[4:8] = 1, 0
    (f,) = paper_splits(y, test_size=0.2, seed=seed)
    assert len(f.train) + len(f.test) == n + y.sum()  # responders counted twice
    both = set(f.train) & set(f.test)
    assert both <= set(np.flatnonzero(y == 1))  # only duplicated responders can cross
    # with this many responders some copy almost surely crosses; the honest cv never does
    if y.sum() >= 15:
        assert both


def test_too_few_samples_for_the_folds():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    with pytest.raises(InputDataError, match="too few samples for 5-fold cv: 2 patients are responders"):
        grouped_cv_splits(y, n_splits=5)
    # three samples of one responder patient still count as one patient
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    groups = np.array(["a", "a", "a", "b", "c", "d", "e", "f", "g", "h"])
    with pytest.raises(InputDataError, match="2 patients are responders"):
        grouped_cv_splits(y, groups, n_splits=3)


def test_unlabeled_rows_refused():
    with pytest.raises(InputDataError, match="unlabeled"):
        grouped_cv_splits(np.array([1, 0, np.nan, 1, 0]), n_splits=2)
