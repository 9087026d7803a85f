"""Write tests/fixtures/compass_parity.npz: COMPASS's own torch encoder on 32 real samples.

Run in the benchmark-only venv (torch + immuno-compass, see docs/compass.md), from the
repository root::

    /work/compass_venv/bin/python benchmarks/compass_parity_fixture.py \\
        --cohort ../shared/data/cohorts/Liu2019/log2_tpm.tsv.gz

What it does, and what the fixture holds (about 0.7 MB; nothing else of the cohort):

1. reads the cohort (log2(TPM + 0.001) by gene symbol), turns it back into TPM, takes
   COMPASS's 15,672 genes in token order (a gene the cohort lacks gets TPM 0), and applies
   COMPASS's own ``Datascaler`` (log2(TPM + 1), then scikit-learn's MinMaxScaler fitted on
   the cohort's samples);
2. picks 32 samples (seeded) and rounds their scaled values to multiples of 1/255, stored as
   ``uint8`` (``expression_u8``; the encoder input is ``expression_u8 / 255``): the values
   stay real samples' values to within 0.002, and the reference is run on exactly the
   rounded input, so the comparison is exact in what it feeds;
3. runs COMPASS's ``TransformerEncoder`` (performer, the distilled weights, eval mode) with
   the melanoma (SKCM = 25) cancer token, one sample per call (the reference's key
   stabiliser is a max over the whole batch; one sample per call is what the port's
   default ``key_stabilizer="sample"`` computes), and again as one batch of 32;
4. stores the encodings of 34 tokens (the patient token, the cancer token, 32 genes:
   checkpoint genes and seeded random ones) for every sample (``tokens_single``; the
   first 10 of them from the batch run, ``tokens_batch``), the mean over all 15,672 gene tokens (``gene_mean_single``: every
   gene's output enters it), and, for the input-contract test, 200 genes' TPM and
   COMPASS's scaled values of the same 32 samples with the scaler fitted on them
   (``scaler_tpm``, ``scaler_out``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compass_reference import build_reference_encoder, import_reference  # noqa: E402

CHECKPOINT_GENES = ["CD8A", "CXCL9", "CXCL10", "GZMB", "PRF1", "IFNG", "PDCD1", "CD274",
                    "CTLA4", "LAG3", "STAT1", "HLA-DRA", "MS4A1", "FOXP3", "TGFB1", "MKI67",
                    "GAPDH", "ACTB", "PMEL", "MLANA"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="../shared/data/cohorts/Liu2019/log2_tpm.tsv.gz")
    parser.add_argument("--out", default="tests/fixtures/compass_parity.npz")
    parser.add_argument("--n-samples", type=int, default=32)
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model, genes = build_reference_encoder()
    _, Datascaler, distilled = import_reference()

    table = pd.read_csv(args.cohort, sep="\t", index_col=0)
    table = table[~table.index.duplicated()]
    tpm = np.clip(np.power(2.0, table.T) - 0.001, 0.0, None)       # samples x genes
    present = [g for g in genes if g in tpm.columns]
    tpm = tpm.reindex(columns=genes).fillna(0.0)
    dfcx = pd.concat([pd.Series(25, index=tpm.index, name="cancer_code"), tpm], axis=1)
    scaler = Datascaler("minmax").fit(dfcx)
    scaled = scaler.transform(dfcx).iloc[:, 1:].to_numpy(dtype=np.float32)

    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(len(tpm), size=args.n_samples, replace=False))
    x_u8 = np.clip(np.rint(scaled[rows] * 255.0), 0, 255).astype(np.uint8)
    x = x_u8.astype(np.float32) / np.float32(255.0)
    inp = torch.tensor(np.concatenate([np.full((len(x), 1), 25.0, np.float32), x], axis=1))

    with torch.no_grad():
        single = np.stack([model(inp[i:i + 1])[0].numpy() for i in range(len(x))])
        batch = model(inp).numpy()

    index = {g: i for i, g in enumerate(genes)}
    chosen = [index[g] for g in CHECKPOINT_GENES if g in index]
    others = np.setdiff1d(np.arange(len(genes)), chosen)
    chosen += sorted(rng.choice(others, size=32 - len(chosen), replace=False).tolist())
    token_index = np.array([0, 1] + [2 + g for g in chosen], dtype=np.int32)
    batch_index = token_index[:10]

    # input-contract check: COMPASS's scaler fitted on these 32 samples, 200 genes
    scaler_genes = np.sort(rng.choice(len(genes), size=200, replace=False)).astype(np.int32)
    sub = dfcx.iloc[rows, :]
    sub_scaled = Datascaler("minmax").fit(sub).transform(sub).iloc[:, 1:].to_numpy(np.float32)

    with open(distilled, "rb") as fh:
        distilled_sha = hashlib.sha256(fh.read()).hexdigest()
    np.savez_compressed(
        args.out,
        expression_u8=x_u8,
        cancer_type=np.full(len(x), 25, np.int32),
        token_index=token_index,
        tokens_single=single[:, token_index, :].astype(np.float32),
        tokens_batch=batch[:, batch_index, :].astype(np.float32),
        gene_mean_single=single[:, 2:, :].mean(axis=1).astype(np.float32),
        scaler_gene_index=scaler_genes,
        scaler_tpm=sub.iloc[:, 1:].to_numpy(np.float64)[:, scaler_genes].astype(np.float32),
        scaler_out=sub_scaled[:, scaler_genes],
        batch_vs_single_max_abs=np.float32(np.abs(batch - single).max()),
        distilled_sha256=np.array(distilled_sha),
        torch_version=np.array(torch.__version__),
        genes_present=np.int32(len(present)),
    )
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB): {len(x)} samples, "
          f"{len(present)}/{len(genes)} genes present in the cohort, reference batch-vs-single "
          f"max |diff| {np.abs(batch - single).max():.2e}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
