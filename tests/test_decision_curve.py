"""Decision curves (issue #24, item 4): net benefit by hand on six rows, treat-all and
treat-none, the table from predictions, the figure."""

import numpy as np
import pandas as pd
import pytest

from amu_tf.errors import InputDataError
from amu_tf.evaluation import decision_curve as dc

Y = np.array([1, 1, 0, 1, 0, 0])
P = np.array([0.9, 0.4, 0.7, 0.2, 0.3, 0.1])


def test_net_benefit_on_six_rows_by_hand():
    nb = dc.net_benefit(Y, P, [0.25, 0.5, 0.8])
    # pt 0.25: treat 0.9, 0.4, 0.7, 0.3 -> TP 2, FP 2: 2/6 - 2/6 * (0.25 / 0.75)
    # pt 0.5: treat 0.9, 0.7 -> TP 1, FP 1: 1/6 - 1/6 * 1;  pt 0.8: treat 0.9 -> 1/6
    assert nb == pytest.approx([2 / 6 - 2 / 6 / 3, 0.0, 1 / 6])
    all_ = dc.net_benefit_treat_all(Y, [0.25, 0.5, 0.8])
    assert all_ == pytest.approx([0.5 - 0.5 / 3, 0.0, 0.5 - 0.5 * 4])
    # treating everyone is the model that predicts 1 for all
    assert dc.net_benefit(Y, np.ones(6), [0.25, 0.5, 0.8]) == pytest.approx(all_)


def test_table_thresholds_strategies_and_usefulness():
    t = dc.decision_curve(Y, {"m": P})
    assert t["threshold"].min() == 0.05 and t["threshold"].max() == 0.8
    assert len(dc.THRESHOLDS) == 76
    assert list(pd.unique(t["model"])) == ["m", "treat all", "treat none"]
    assert (t.loc[t["model"] == "treat none", "net_benefit"] == 0).all()
    row = t[(t["model"] == "m") & np.isclose(t["threshold"], 0.8)].iloc[0]
    assert row["net_benefit"] == pytest.approx(1 / 6) and row["useful"]
    row = t[(t["model"] == "m") & np.isclose(t["threshold"], 0.25)].iloc[0]
    assert not row["useful"]  # 0.222 < treat all 0.333
    wide = dc.decision_curve_wide(t)
    assert list(wide.columns) == ["m", "treat all", "treat none"] and len(wide) == 16


def test_from_predictions_pools_rows_and_averages_repeats(tmp_path):
    rows = []
    for rep in (0, 1):
        for m, q in (("a", P), ("b", 1 - P)):
            rows.append(pd.DataFrame({"model": m, "repeat": rep, "row": np.arange(6), "y": Y,
                                      "p": q + (0.02 if rep else -0.02)}))
    t = dc.decision_curve_from_predictions(pd.concat(rows), thresholds=[0.25, 0.5, 0.8])
    a = t[t["model"] == "a"]["net_benefit"].to_numpy()
    assert a == pytest.approx(dc.net_benefit(Y, P, [0.25, 0.5, 0.8]))
    paths = dc.write_decision_curve(dc.decision_curve(Y, {"a": P, "b": 1 - P}), tmp_path / "dca_loco")
    assert [p.suffix for p in paths] == [".png", ".svg", ".csv"]
    assert all(p.stat().st_size > 500 for p in paths)
    bad = pd.concat(rows)
    bad = bad[~((bad["model"] == "b") & (bad["row"] == 0))]
    with pytest.raises(InputDataError, match="other rows"):
        dc.decision_curve_from_predictions(bad)


def test_bad_input():
    with pytest.raises(InputDataError, match=r"\(0, 1\)"):
        dc.net_benefit(Y, P, [0.0, 0.5])
    with pytest.raises(InputDataError, match="labels"):
        dc.net_benefit([1, 2], [0.1, 0.2])
