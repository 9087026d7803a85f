"""Samples per second of COMPASS feature extraction: the Keras port against the torch
reference, on the same machine in the same run.

    .venv/bin/python benchmarks/bench_compass.py --torch-python /work/compass_venv/bin/python

Both encode the same inputs (real-valued, [0, 1], the 15,672 genes; ``--samples`` of them)
in batches of ``--batch-size`` with the same number of CPU threads (``--threads``), and both
then pool the gene tokens into the 132 gene-set vectors (the port runs the project's own
``amu_tf.data.compass_concepts.encode_genesets``, compiled with XLA, and, for the record, its
eager path ``compiled=False``; the reference pools with the same matrix in torch), so what
is timed is the extraction ``recipe:compass-probe`` runs. The torch side runs in the benchmark-only venv
(torch + immuno-compass, see docs/compass.md) as a child process, timed there; the port
runs here. Each side is warmed up with one batch, then timed over ``--repeats`` passes;
the best pass is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

TORCH_SIDE = r"""
import json, sys, time
import numpy as np, torch
sys.path.insert(0, {bench_dir!r})
from compass_reference import build_reference_encoder
torch.set_num_threads({threads})
model, genes = build_reference_encoder()
x = np.load({inputs!r})
pool = torch.tensor(np.load({pool!r}))
inp = torch.tensor(np.concatenate([np.full((len(x), 1), 25.0, np.float32), x], 1))
def run():
    out = []
    with torch.no_grad():
        for s in range(0, len(inp), {batch}):
            enc = model(inp[s:s + {batch}])
            out.append(torch.einsum("sg,ngd->nsd", pool, enc[:, 2:, :]))
    return torch.cat(out)
run(); best = float("inf")
with torch.no_grad():
    model(inp[:{batch}])
for _ in range({repeats}):
    t = time.perf_counter(); run(); best = min(best, time.perf_counter() - t)
print(json.dumps({{"seconds": best, "torch": torch.__version__, "threads": torch.get_num_threads()}}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default="/work/compass_venv/bin/python")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tempfile

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from amu_tf.data.compass_concepts import _default_tables, encode_genesets, pooling_matrix
    from amu_tf.models.compass_encoder import CompassEncoder

    tables = _default_tables()
    pool = pooling_matrix(tables["geneset_members"], tables["n_genes"])
    x = np.random.default_rng(0).random((args.samples, tables["n_genes"]), dtype=np.float32)

    model = CompassEncoder.from_preset("compass")
    inputs = {"expression": x, "cancer_type": np.full(len(x), 25, np.int32)}

    def best_of(compiled):
        encode_genesets(model, inputs, batch_size=args.batch_size, tables=tables,
                        compiled=compiled)                                  # warm up, compile
        best = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            encode_genesets(model, inputs, batch_size=args.batch_size, tables=tables,
                            compiled=compiled)
            best = min(best, time.perf_counter() - t)
        return best

    keras_best = best_of(True)
    eager_best = best_of(False)

    torch_result = None
    if os.path.exists(args.torch_python):
        with tempfile.TemporaryDirectory() as tmp:
            np.save(os.path.join(tmp, "x.npy"), x)
            np.save(os.path.join(tmp, "pool.npy"), pool)
            code = TORCH_SIDE.format(bench_dir=os.path.dirname(os.path.abspath(__file__)),
                                     threads=args.threads, inputs=os.path.join(tmp, "x.npy"),
                                     pool=os.path.join(tmp, "pool.npy"),
                                     batch=args.batch_size, repeats=args.repeats)
            done = subprocess.run([args.torch_python, "-c", code], capture_output=True,
                                  text=True)
            if done.returncode == 0:
                torch_result = json.loads(done.stdout.strip().splitlines()[-1])
            else:
                print("torch side failed:", done.stderr.strip().splitlines()[-1:])
    keras_sps = args.samples / keras_best
    print(f"Keras port, encode_genesets (TF {tf.__version__}, XLA, {args.threads} threads): "
          f"{keras_sps:.1f} samples/s ({args.samples} samples, batch {args.batch_size})")
    print(f"Keras port, encode_genesets(compiled=False) (eager): "
          f"{args.samples / eager_best:.1f} samples/s")
    if torch_result:
        torch_sps = args.samples / torch_result["seconds"]
        print(f"torch reference (torch {torch_result['torch']}, {torch_result['threads']} "
              f"threads): {torch_sps:.1f} samples/s")
        print(f"port / reference: {keras_sps / torch_sps:.2f}x")


if __name__ == "__main__":
    main()
