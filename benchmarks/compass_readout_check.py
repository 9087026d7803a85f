"""The port's concept features from our own expression against COMPASS's published readouts.

    .venv/bin/python benchmarks/compass_readout_check.py --data-root ../shared/data

For the Hugo (GSE78220), Riaz (GSE91061_pre) and Liu (Liu2019) patients that
``compass_itrp/`` shares with us: our cohort files are read as ``amu ingest`` reads them
(``examples/cohorts/*.toml``), put through ``CompassInputTransform`` (the cohort's unit,
min-max scaler fitted per cohort; with ``--scaler-fit training`` one scaler fitted on the other
shared melanoma cohorts, as leave-one-cohort-out fits it), encoded by the ``compass`` preset, and read out by
``CompassConcepts`` (gene-set and concept level; readouts ``mean`` and ``pc1``, the latter
fitted on the cohort's own rows). Each feature is Spearman-correlated, within a cohort and
across its patients, with the published readout of the same name
(``readouts_geneset.csv.gz``, ``readouts_celltype.csv.gz``: COMPASS's pre-trained model,
its own trained projector, uniformly re-quantified TPM). As a baseline without the encoder,
the mean of the set's min-max scaled expression (``input mean``) is correlated the same way.
Printed: per cohort and level, the median |rho|, the median and 10th-90th percentile of
the per-feature correlations, and how many features reach |rho| >= 0.5. The published
readouts' signs are arbitrary (each is a learned linear score; even the plain expression
mean of a set correlates negatively with many of them), so |rho| is the measure.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

COHORTS = {"GSE78220": "Hugo", "GSE91061_pre": "Riaz", "Liu2019": "Liu"}


def _match(table, labels, compass_cohort):
    """Our rows and COMPASS's ids of the same patients (COMPASS's ``Sample_id`` up to its
    first ``_`` is our patient id: ``Pt1``, ``Pt1_Pre``, ``Patient166_T``)."""
    ours = table["patient"].str.split(":", n=1).str[1].to_numpy()
    lab = labels[labels["cohort"] == compass_cohort]
    key = lab["Sample_id"].astype(str).str.split("_").str[0]
    first = pd.Series(lab.index, index=key.to_numpy()).groupby(level=0).first()
    rows = [i for i, p in enumerate(ours) if p in first.index]
    return np.array(rows), first.loc[ours[rows]].to_numpy()


def _summary(ours, published, names):
    rho = []
    for j, n in enumerate(names):
        if n in published.columns:
            r = spearmanr(ours[:, j], published[n].to_numpy()).statistic
            if np.isfinite(r):
                rho.append(r)
    rho = np.array(rho)
    return (f"median |rho| {np.median(np.abs(rho)):.2f}; rho median {np.median(rho):+.2f} (p10 {np.percentile(rho, 10):+.2f}, "
            f"p90 {np.percentile(rho, 90):+.2f}), |rho|>=0.5: {int((np.abs(rho) >= 0.5).sum())}"
            f"/{len(rho)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--scaler-fit", choices=("per_cohort", "training"), default="per_cohort",
                        help="per_cohort: each cohort's min-max scaler on its own rows (the "
                             "default of the COMPASS models); training: one scaler fitted on "
                             "the other shared melanoma cohorts' rows (examples/cohorts), as "
                             "under leave-one-cohort-out with scaler_fit='training'")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from amu_tf.data.cohort_reader import read_cohort
    from amu_tf.data.cohort_spec import CohortSpec
    from amu_tf.data.compass_concepts import (CompassConcepts, _default_tables,
                                              encode_genesets, pooling_matrix)
    from amu_tf.data.transforms.compass_input_transform import CompassInputTransform
    from amu_tf.models.compass_encoder import CompassEncoder

    itrp = os.path.join(args.data_root, "compass_itrp")
    labels = pd.read_csv(os.path.join(itrp, "clinical_label.csv.gz"), index_col=0)
    published = {
        "geneset": pd.read_csv(os.path.join(itrp, "readouts_geneset.csv.gz"), index_col=0),
        "concept": pd.read_csv(os.path.join(itrp, "readouts_celltype.csv.gz"), index_col=0),
    }
    tables = _default_tables()
    model = CompassEncoder.from_preset("compass")
    every = {}  # the shared melanoma cohorts, for the pooled scaler
    if args.scaler_fit == "training":
        import glob

        for path in sorted(glob.glob("examples/cohorts/*.toml")):
            spec = CohortSpec.from_toml(path, data_root=args.data_root)
            every[spec.name] = (read_cohort(spec)[0], spec.units)
    print(f"scaler_fit {args.scaler_fit}")
    for name, compass_cohort in COHORTS.items():
        spec = CohortSpec.from_toml(f"examples/cohorts/{name}.toml", data_root=args.data_root)
        table, _ = read_cohort(spec)
        rows, ids = _match(table, labels, compass_cohort)
        table = table.iloc[rows].reset_index(drop=True)
        if args.scaler_fit == "training":  # fitted on the other cohorts' rows, no labels
            others = [t for c, (t, _) in every.items() if c != spec.name]
            units = {c: u for c, (_, u) in every.items()}
            transform = CompassInputTransform(scaler_fit="training", cohort_units=units).fit(
                pd.concat(others, ignore_index=True))
        else:
            transform = CompassInputTransform(cohort_units={spec.name: spec.units}).fit(table)
        inputs = transform.encoder_inputs(table)
        sets = encode_genesets(model, inputs, batch_size=args.batch_size, tables=tables)
        n_missing = (len(transform.missing_genes_[spec.name]) if spec.name in
                     transform.missing_genes_ else "(counted by the per_cohort run)")
        print(f"{compass_cohort} ({name}, {spec.units}): {len(rows)} shared patients, "
              f"{n_missing} of 15672 genes missing")
        set_input = inputs["expression"] @ pooling_matrix(tables["geneset_members"],
                                                          tables["n_genes"]).T
        concept_pool = pooling_matrix(tables["concept_members"], len(tables["geneset_names"]))
        for level in ("geneset", "concept"):
            pub = published[level].loc[ids]
            for readout in ("mean", "pc1"):
                feats = CompassConcepts(level=level, readout=readout, tables=tables).fit(sets)
                out = feats.transform(sets)
                print(f"  {level:8s} {readout:5s}: "
                      f"{_summary(out, pub, feats.feature_names_)}")
            base = set_input if level == "geneset" else set_input @ concept_pool.T
            names = tables["geneset_names" if level == "geneset" else "concept_names"]
            print(f"  {level:8s} input mean (no encoder): {_summary(base, pub, names)}")


if __name__ == "__main__":
    main()
