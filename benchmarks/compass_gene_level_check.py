"""How far COMPASS's gene-level readout follows each gene's own input (label-free).

    .venv/bin/python benchmarks/compass_gene_level_check.py --table runs/shared/cohort

The gene level of ``compass_concepts`` (``level="gene"``) is each gene token's encoding
averaged over its 32 channels (COMPASS's gene-level readout under its pooling scorer). The
token starts as ``ReLU(w_g * x_g + b_g)`` (per channel) and one Performer layer mixes in the
other genes, so this script measures, per gene and within each cohort, the Spearman
correlation between the gene's readout and the gene's own scaled input ``x_g``
(``CompassInputTransform``, min-max per cohort): near 1 in absolute value means the readout
is a monotone function of the gene's own expression, the context adding little. Printed per cohort: the 10th, 50th and 90th
percentiles of |rho| over the genes that vary, and the share with rho > 0 (the sign is that of
the gene's embedding, arbitrary). No label is read. ``--table`` is a CohortTable folder (``amu
ingest examples/cohorts/*.toml --data-root ../shared/data --out runs/shared/cohort``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def spearman_columns(a, b) -> np.ndarray:
    """Spearman rho of each column of ``a`` with the same column of ``b`` (rows: samples)."""
    ra, rb = rankdata(a, axis=0), rankdata(b, axis=0)
    ra = (ra - ra.mean(0)) / np.where(ra.std(0) > 0, ra.std(0), 1.0)
    rb = (rb - rb.mean(0)) / np.where(rb.std(0) > 0, rb.std(0), 1.0)
    return (ra * rb).mean(0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="a CohortTable folder")
    a = ap.parse_args(argv)

    from bench_compass_generalisation import _units

    from amu_tf.data.cohort_table import read_table
    from amu_tf.kernels.build import cpu_model
    from amu_tf.training.compass_feature_transform import CompassFeatureTransform

    table = read_table(a.table)
    tf = CompassFeatureTransform(level="gene", readout="mean", cohort_units=_units(a.table))
    tf.fit(table)
    X = tf.input_.transform(table)
    cohorts = table["cohort"].astype(str).to_numpy()
    print(f"CPU: {cpu_model()}")
    for c in np.unique(cohorts):
        rows = cohorts == c
        G = tf.encoder_features(X[rows], tf.input_.cancer_code_, "gene")
        ok = (X[rows].std(0) > 0) & (G.std(0) > 0)
        rho = spearman_columns(G[:, ok], X[rows][:, ok])
        q = np.percentile(np.abs(rho), [10, 50, 90])
        print(f"{c}: {int(rows.sum())} samples, {int(ok.sum())} genes varying; |rho| of the "
              f"gene's readout with its own input: 10th {q[0]:.3f}, median {q[1]:.3f}, 90th "
              f"{q[2]:.3f}; rho > 0 for {np.mean(rho > 0):.2f}")


if __name__ == "__main__":
    main()
