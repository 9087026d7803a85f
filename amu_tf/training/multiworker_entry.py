"""A small multi-worker training run: one process per worker, the same command on each.

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]},
                "task": {"type": "worker", "index": 0}}' \\
    python -m amu_tf.training.multiworker_entry --out runs/mw/model --epochs 3 --steps 4 \\
        --backup-dir runs/mw/backup --debug-dir runs/mw/debug

(and the same with ``"index": 1`` in a second shell). It trains a zoo model (``amu:tiny`` by
default) on seeded generated data (the same rows on every worker; the strategy gives each
worker its share of every global batch) under ``MultiWorkerMirroredStrategy`` with
``BackupAndRestore``; only the chief writes the Model artifact at ``--out`` (others write
to a temporary folder that is deleted). It exists to exercise and demonstrate the
distributed path end to end (``tests/test_distributed.py``) and to smoke-test a cluster
before a long job; real training goes through ``amu train --strategy ...``.

Debugging aids, used by the tests:

- ``--debug-dir D``: each worker writes ``D/<task>.jsonl`` (one JSON line per event:
  ``start``, ``epoch_begin``, ``epoch_end``, ``saved``, ``done``) and ``D/<task>.npz`` (its
  final weights), where ``<task>`` is e.g. ``worker-1``;
- ``--die-after-epoch K``: exit hard (``os._exit(17)``, no clean-up, like a killed job)
  right after epoch ``K`` (1-based) has ended and been backed up. Running the same command
  again without it resumes from the backup at epoch ``K``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DIE_EXIT_CODE = 17


def _parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m amu_tf.training.multiworker_entry",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="Model artifact folder (written by the chief)")
    p.add_argument("--strategy", default="multiworker",
                   choices=("auto", "default", "mirrored", "multiworker"))
    p.add_argument("--model", default="amu:tiny", help="zoo model (family:preset)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=4, help="steps (global batches) per epoch")
    p.add_argument("--batch-size", type=int, default=8, help="per-replica batch size")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backup-dir", default=None,
                   help="BackupAndRestore folder (default: <out>.backup)")
    p.add_argument("--debug-dir", default=None, help="per-worker event log and final weights")
    p.add_argument("--die-after-epoch", type=int, default=None,
                   help="exit hard after this (1-based) epoch, to test resuming")
    return p.parse_args(argv)


def make_data(n_rows: int, n_genes: int = 160, seed: int = 0):
    """Seeded toy rows with signal in the first 8 genes (identical on every worker)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n_genes)).astype("float32")
    score = x[:, :8].sum(axis=1) + rng.normal(scale=1.0, size=n_rows)
    y = (score > 0).astype("int32")
    return x, y


class _EventLog:
    """Appends JSON lines to this worker's log (flushed at once: the process may die)."""

    def __init__(self, debug_dir, task):
        self.path = None
        self.task = task
        if debug_dir:
            Path(debug_dir).mkdir(parents=True, exist_ok=True)
            self.path = Path(debug_dir) / f"{task}.jsonl"

    def __call__(self, event, **fields):
        if self.path is None:
            return
        rec = {"event": event, "task": self.task, "pid": os.getpid(), "time": time.time(),
               **fields}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def main(argv=None) -> int:
    """Run the job; a user mistake (e.g. no ``TF_CONFIG``) prints ``Error: ...`` and gives 2."""
    from amu_tf.errors import AmuError

    args = _parse_args(argv)
    try:
        return _train(args)
    except AmuError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code


def _train(args) -> int:
    # The strategy first: MultiWorkerMirroredStrategy must exist before other TF work.
    from amu_tf.training.chief_output import backup_callback, backup_dir_for, written_by_chief
    from amu_tf.training.cluster_config import is_chief, task_name
    from amu_tf.training.distributed_dataset import make_dataset
    from amu_tf.training.distribution_strategy import (get_strategy, global_batch_size,
                                                       synchronized_batch_norm)

    strategy = get_strategy(args.strategy)

    import keras
    import numpy as np

    from amu_tf.artifacts import ArtifactWriter
    from amu_tf.models.zoo import build_model

    task = task_name(strategy)
    log = _EventLog(args.debug_dir, task)
    chief = is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    gbs = global_batch_size(args.batch_size, strategy)
    log("start", chief=chief, replicas=replicas, global_batch=gbs)

    keras.utils.set_random_seed(args.seed)
    x, y = make_data(args.steps * gbs, seed=args.seed)
    train_ds = make_dataset(x, y, args.batch_size, strategy, shuffle=True, seed=args.seed)

    with strategy.scope():
        model = build_model(args.model)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=args.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )

    backup_root = args.backup_dir or f"{args.out.rstrip('/')}.backup"

    class _Events(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.steps = 0
            log("epoch_begin", epoch=int(epoch))

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1

        def on_epoch_end(self, epoch, logs=None):
            log("epoch_end", epoch=int(epoch), steps=self.steps,
                **{k: float(v) for k, v in (logs or {}).items()})
            if args.die_after_epoch is not None and epoch + 1 == args.die_after_epoch:
                log("die", epoch=int(epoch))
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(DIE_EXIT_CODE)

    # BackupAndRestore before the event callback: the epoch is backed up before a "death".
    callbacks = [backup_callback(backup_root, strategy), _Events()]
    log("backup_dir", path=str(backup_dir_for(backup_root, strategy)))
    t0 = time.perf_counter()
    with synchronized_batch_norm(model, strategy):
        hist = model.fit(train_ds, epochs=args.epochs, callbacks=callbacks, verbose=0,
                         shuffle=False)  # make_dataset shuffles (seeded, every epoch)
    seconds = time.perf_counter() - t0
    try:  # each worker's backup folder is gone after a finished fit; drop the empty root
        Path(backup_root).rmdir()
    except OSError:
        pass

    if args.debug_dir:
        weights = model.get_weights()
        np.savez(Path(args.debug_dir) / f"{task}.npz",
                 **{f"w{i:03d}": w for i, w in enumerate(weights)})

    # Every worker runs the same save code; only the chief's copy lands at --out.
    params = {"model": args.model, "strategy": args.strategy, "epochs": args.epochs,
              "steps": args.steps, "batch_size_per_replica": args.batch_size,
              "global_batch_size": gbs, "learning_rate": args.learning_rate, "seed": args.seed}
    with written_by_chief(args.out, strategy) as target:
        with ArtifactWriter(target, "Model", parameters=params) as w:
            model.save(w.path / "model.keras")
            from amu_tf.training.model_info import ModelInfo

            ModelInfo(model=args.model, kind="keras", threshold=0.5,
                      threshold_method="fixed (multi-worker smoke run; no threshold chosen)",
                      seed=args.seed, n_train=int(len(x)),
                      extra={"strategy": args.strategy, "replicas": int(replicas),
                             "workers_note": "written by the chief only"}).write(w.path)
            (w.path / "training_summary.json").write_text(json.dumps(
                {"history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
                 "fit_seconds": seconds}, indent=2) + "\n")
            w.properties.update({"written_by": task, "replicas": int(replicas)})
        log("saved", path=str(target), chief=chief)
    log("done", epochs_run=len(hist.history.get("loss", [])), fit_seconds=seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
