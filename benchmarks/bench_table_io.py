"""Time the genome-wide cohort table: ingest of a 20,000-gene x 400-sample log2(TPM+1) file
(spec -> CohortTable artifact: table.csv.gz + expression.h5ad) and loading it back.

    .venv/bin/python benchmarks/bench_table_io.py [--genes 20000] [--samples 400] [--repeats 5]

Synthetic values (speed does not depend on them); real panel and biomarker symbols first,
then made-up symbols. Prints ingest seconds and the median / best load seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)

    from amu_tf.data.cohort_table import read_table
    from amu_tf.data.synthetic import biomarker_panel_extras
    from amu_tf.kernels.build import cpu_model
    from amu_tf.panel import panel_symbols
    from components.ingest import run_ingest

    d = Path(tempfile.mkdtemp(prefix="amu_io-"))
    known = panel_symbols() + biomarker_panel_extras()
    genes = known + [f"GENE{i:05d}" for i in range(a.genes - len(known))]
    rng = np.random.default_rng(0)
    tpm = rng.lognormal(1.0, 2.0, size=(len(genes), a.samples))
    tpm = tpm / tpm.sum(axis=0) * 1e6
    samples = [f"S{i}" for i in range(a.samples)]
    expr = pd.DataFrame(np.log2(tpm + 1), index=pd.Index(genes, name="gene_symbol"),
                        columns=samples)
    expr.to_csv(d / "expr.tsv.gz", sep="\t", float_format="%.4f")
    pd.DataFrame({"sample": samples, "response": rng.choice(["CR", "PD"], a.samples)}).to_csv(
        d / "clin.tsv", sep="\t", index=False)
    (d / "c.toml").write_text(
        'name = "BIG"\n[expression]\nfile = "expr.tsv.gz"\nlayout = "genes_x_samples"\n'
        'units = "log2(tpm+1)"\ngene_id = "symbol"\ngene_column = "gene_symbol"\n'
        '[clinical]\nfile = "clin.tsv"\nsample = "sample"\nresponse = "response"\n')
    t0 = time.perf_counter()
    run_ingest([d / "c.toml"], d / "cohort", data_root=d)
    ingest = time.perf_counter() - t0
    loads = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        table = read_table(d / "cohort")
        loads.append(time.perf_counter() - t0)
    print(f"CPU: {cpu_model()}; {len(genes)} genes x {a.samples} samples")
    print(f"ingest {ingest:.1f} s; load median {statistics.median(loads):.2f} s, best "
          f"{min(loads):.2f} s ({table.shape[1]} columns)")


if __name__ == "__main__":
    main()
