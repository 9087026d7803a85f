"""tf.distribute helpers (cluster_config, distribution_strategy, distributed_dataset,
chief_output, keras_multiworker_patch) and multi-worker training on one machine.

The slow tests start two real worker processes on 127.0.0.1 (``TF_CONFIG`` each, free
ports, CPU only, RING collectives) running ``python -m amu_tf.training.multiworker_entry``;
every process is waited on with a timeout and killed in ``finally``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from amu_tf.errors import SpecError
from amu_tf.training.chief_output import (backup_callback, backup_dir_for, chief_artifact_dir,
                                          remove_if_not_chief, written_by_chief)
from amu_tf.training.cluster_config import (cluster_resolver, is_chief, read_tf_config,
                                            task_info, task_name, worker_count, worker_index)
from amu_tf.training.distributed_dataset import make_dataset
from amu_tf.training.distribution_strategy import (get_strategy, global_batch_size,
                                                   synchronized_batch_norm)
from amu_tf.training.keras_multiworker_patch import apply_keras_multiworker_patch
from amu_tf.training.multiworker_entry import DIE_EXIT_CODE

WORKER_TIMEOUT_S = 150  # per launch of both workers (a run takes ~15-40 s on 2 busy cores)


# ---------------------------------------------------------------------------- helpers
class _FakeStrategy:
    """Only what the batch/dataset helpers read: the replica count."""

    def __init__(self, replicas):
        self.num_replicas_in_sync = replicas


def _tf_config(ports, index, task_type="worker"):
    return json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": task_type, "index": index},
    })


def _free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _launch(tmp_path, tag, args, n, timeout, module="amu_tf.training.multiworker_entry"):
    ports = _free_ports(n)
    tmpdir = tmp_path / "worker_tmp"
    tmpdir.mkdir(exist_ok=True)
    procs, logs = [], []
    try:
        for i in range(n):
            env = dict(os.environ, TF_CONFIG=_tf_config(ports, i), CUDA_VISIBLE_DEVICES="",
                       TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(tmpdir),
                       PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
            log = tmp_path / f"{tag}-worker{i}.log"
            logs.append(log)
            with open(log, "w") as fh:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", module, *args],
                    env=env, stdout=fh, stderr=subprocess.STDOUT,
                    cwd=Path(__file__).resolve().parents[1],
                ))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs]
            if all(c is not None for c in codes):
                break
            # a worker that crashed leaves the others waiting in a collective: stop early
            if any(c not in (None, 0, DIE_EXIT_CODE) for c in codes):
                break
            time.sleep(0.5)
        return [p.poll() for p in procs], logs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


def _run_workers(tmp_path, tag, args, n=2, timeout=WORKER_TIMEOUT_S,
                 module="amu_tf.training.multiworker_entry"):
    """Start ``n`` workers of the entry point on fresh free ports, wait for all (killing
    every straggler at the end), and return their exit codes (None: killed at the timeout)
    and log files. A launch that lost its port to another process is retried once."""
    codes, logs = _launch(tmp_path, tag, args, n, timeout, module)
    if any(c not in (0, DIE_EXIT_CODE) for c in codes) and "ddress already in use" in _tails(logs):
        codes, logs = _launch(tmp_path, f"{tag}-retry", args, n, timeout, module)
    return codes, logs


def _tails(logs, n=25):
    out = []
    for log in logs:
        lines = [ln for ln in Path(log).read_text(errors="replace").splitlines()
                 if not ln.startswith(("I0000", "W0000", "E0000", "WARNING: All"))]
        out.append(f"--- {log.name}\n" + "\n".join(lines[-n:]))
    return "\n".join(out)


def _events(debug_dir, task):
    path = Path(debug_dir) / f"{task}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _weights(npz):
    with np.load(npz) as f:
        return [f[k] for k in sorted(f.files)]


# ---------------------------------------------------------------------------- unit tests
def test_auto_on_cpu_is_the_default_strategy():
    import tensorflow as tf

    assert not tf.config.list_physical_devices("GPU")
    s = get_strategy("auto")
    assert s is tf.distribute.get_strategy()
    assert not tf.distribute.has_strategy() and s.num_replicas_in_sync == 1
    assert get_strategy("default") is s
    assert get_strategy(None) is s
    mirrored = get_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert get_strategy(mirrored) is mirrored  # instances pass through


def test_unknown_strategy_name_is_a_user_error():
    with pytest.raises(SpecError, match="unknown strategy 'tpu'.*auto, default, mirrored"):
        get_strategy("tpu")


def test_multiworker_without_tf_config_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SpecError, match="needs the TF_CONFIG environment variable"):
        get_strategy("multiworker")


@pytest.mark.parametrize("raw, message", [
    ("{not json", "not valid JSON"),
    ('["a"]', "JSON object"),
    ('{"task": {"type": "worker", "index": 0}}', "no 'cluster'"),
    ('{"cluster": {"worker": ["h1:1"]}}', "no 'task'"),
    ('{"cluster": {"worker": ["h1"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
    ('{"cluster": {"worker": ["h1:1", "h2:2"]}, "task": {"type": "worker", "index": 2}}',
     "out of range"),
    ('{"cluster": {"worker": ["h1:1"]}, "task": {"type": "ps", "index": 0}}',
     "not a job of the cluster"),
])
def test_invalid_tf_config_is_a_clear_error(monkeypatch, raw, message):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(SpecError, match=message):
        read_tf_config()
    with pytest.raises(SpecError, match=message):  # not the resolver's silent empty cluster
        cluster_resolver()
    with pytest.raises(SpecError, match=message):  # before any strategy is created
        get_strategy("multiworker")


@pytest.mark.parametrize("cluster, task, chief, name, rank, workers", [
    (None, None, True, "local", 0, 1),
    ({"worker": ["a:1", "b:2"]}, ("worker", 0), True, "worker-0", 0, 2),
    ({"worker": ["a:1", "b:2"]}, ("worker", 1), False, "worker-1", 1, 2),
    ({"chief": ["c:0"], "worker": ["a:1"]}, ("chief", 0), True, "chief-0", 0, 2),
    ({"chief": ["c:0"], "worker": ["a:1"]}, ("worker", 0), False, "worker-0", 1, 2),
    ({"worker": ["a:1", "b:2"]}, ("evaluator", 0), False, "evaluator-0", None, 2),
])
def test_is_chief_follows_tf_config(monkeypatch, tmp_path, cluster, task, chief, name, rank,
                                    workers):
    if cluster is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(
            {"cluster": cluster, "task": {"type": task[0], "index": task[1]}}))
    assert is_chief() is chief
    assert task_name() == name
    assert worker_index() == rank and worker_count() == workers
    backup = backup_dir_for(tmp_path / "bk")
    assert backup == (tmp_path / "bk" if cluster is None else tmp_path / "bk" / name)

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    target = chief_artifact_dir(tmp_path / "out" / "model", None)
    if chief:
        assert target == tmp_path / "out" / "model"
    else:
        assert target.name == "model" and (tmp_path / "scratch") in target.parents
        target.mkdir()
        (target / "model.keras").write_text("x")
    remove_if_not_chief(target)
    assert list((tmp_path / "scratch").iterdir()) == []  # a non-chief's copy is deleted
    if chief:
        assert not target.exists()  # the chief's path is left alone (never created here)

    from amu_tf.artifacts import ArtifactWriter

    with written_by_chief(tmp_path / "art") as uri, ArtifactWriter(uri, "Model") as w:
        (w.path / "model_info.json").write_text("{}")
    assert (tmp_path / "art" / "artifact.json").is_file() is chief
    assert list((tmp_path / "scratch").iterdir()) == []


def test_entry_point_without_tf_config_fails_in_one_line(monkeypatch, tmp_path, capsys):
    from amu_tf.training.multiworker_entry import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["--out", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: strategy 'multiworker' needs the TF_CONFIG") and err.count("\n") == 1
    assert not (tmp_path / "model").exists()


def test_entry_point_runs_locally_with_the_default_strategy(monkeypatch, tmp_path):
    """Outside a cluster the job is its own chief: artifact at --out, backups cleaned up."""
    from amu_tf.artifacts import Artifact
    from amu_tf.training.multiworker_entry import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    out, debug = tmp_path / "model", tmp_path / "debug"
    assert main(["--out", str(out), "--strategy", "default", "--epochs", "2", "--steps", "2",
                 "--batch-size", "4", "--debug-dir", str(debug)]) == 0
    ev = _events(debug, "local")
    assert ev[0]["chief"] is True and ev[0]["replicas"] == 1 and ev[0]["global_batch"] == 4
    assert [e["steps"] for e in ev if e["event"] == "epoch_end"] == [2, 2]
    art = Artifact.load(out, expected_type="Model")
    assert art.properties["written_by"] == "local"
    assert not (tmp_path / "model.backup").exists()


def test_global_batch_size_scales_with_replicas():
    assert global_batch_size(8) == 8  # default strategy: one replica
    assert global_batch_size(8, _FakeStrategy(4)) == 32
    with pytest.raises(ValueError, match=">= 1"):
        global_batch_size(0)


def test_make_dataset_batches_globally_and_shards_by_data():
    import tensorflow as tf

    x = np.arange(10 * 160, dtype=np.float32).reshape(10, 160)
    y = np.arange(10) % 2
    ds = make_dataset(x, y, batch_size=4, strategy=None)
    batches = list(ds)
    assert [tuple(b[0].shape) for b in batches] == [(4, 160), (4, 160), (2, 160)]
    assert [tuple(b[1].shape) for b in batches] == [(4,), (4,), (2,)]
    assert batches[0][0].dtype == tf.float32
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)  # no shuffle
    assert (ds.options().experimental_distribute.auto_shard_policy
            == tf.data.experimental.AutoShardPolicy.DATA)

    two = make_dataset(x, y, batch_size=4, strategy=_FakeStrategy(2))
    assert [tuple(b[0].shape) for b in two] == [(8, 160), (2, 160)]  # global batch 4 x 2

    w = np.linspace(0.5, 1.5, 10)
    (xb, yb, wb), = list(make_dataset(x, y, 16, None, sample_weight=w))
    np.testing.assert_allclose(wb.numpy(), w.astype(np.float32))
    assert xb.shape == (10, 160) and yb.shape == (10,)
    (only_x,) = list(make_dataset(x, batch_size=16))
    assert only_x.shape == (10, 160)

    with pytest.raises(ValueError, match="y has 9"):
        make_dataset(x, y[:9], 4)


def test_make_dataset_shuffle_is_seeded_and_reshuffles_each_epoch():
    x = np.arange(64, dtype=np.float32)[:, None].repeat(160, axis=1)
    y = np.zeros(64, dtype=np.int32)

    def order(ds):
        return np.concatenate([b[0][:, 0].numpy() for b in ds]).astype(int)

    a = make_dataset(x, y, 8, None, shuffle=True, seed=3)
    b = make_dataset(x, y, 8, None, shuffle=True, seed=3)
    ea1, ea2 = order(a), order(a)
    eb1, eb2 = order(b), order(b)
    # every worker builds the same dataset: the same order epoch after epoch (DATA sharding
    # then gives each worker a disjoint part of every global batch)
    np.testing.assert_array_equal(ea1, eb1)
    np.testing.assert_array_equal(ea2, eb2)
    assert sorted(ea1) == list(range(64))
    assert not np.array_equal(ea1, np.arange(64))
    assert not np.array_equal(ea1, ea2)  # a new order every epoch
    c = order(make_dataset(x, y, 8, None, shuffle=True, seed=4))
    assert not np.array_equal(ea1, c)


def test_make_dataset_refuses_unseeded_shuffle_on_several_workers(monkeypatch):
    x, y = np.zeros((4, 160), np.float32), np.zeros(4, np.int32)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    make_dataset(x, y, 2, None, shuffle=True, seed=None)  # one process: fine
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 1))
    with pytest.raises(ValueError, match="needs a seed"):
        make_dataset(x, y, 2, None, shuffle=True, seed=None)


def test_synchronized_batch_norm_only_with_several_replicas():
    import keras

    from amu_tf.models.zoo import build_model

    model = build_model("amu:tiny")
    bns = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
           if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns, "amu:tiny has a BatchNormalization in its head"
    with synchronized_batch_norm(model, None):
        assert not any(b.synchronized for b in bns)
    with synchronized_batch_norm(model, _FakeStrategy(2)):
        assert all(b.synchronized for b in bns)
    assert not any(b.synchronized for b in bns)
    assert not any(b.get_config()["synchronized"] for b in bns)


def test_backup_callback_is_backup_and_restore(tmp_path, monkeypatch):
    import keras

    monkeypatch.delenv("TF_CONFIG", raising=False)
    cb = backup_callback(tmp_path / "bk")
    assert isinstance(cb, keras.callbacks.BackupAndRestore)
    assert Path(cb.backup_dir) == tmp_path / "bk"
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 1))
    assert Path(backup_callback(tmp_path / "bk").backup_dir) == tmp_path / "bk" / "worker-1"


def test_strategy_option_and_zoo_classifier_accept_the_names():
    import click
    import tensorflow as tf
    from click.testing import CliRunner

    from amu_tf.training.zoo_classifier import resolve_strategy
    from pipelines.strategy_option import strategy_option

    @click.command()
    @strategy_option
    def cmd(strategy):
        click.echo(f"strategy={strategy}")

    runner = CliRunner()
    assert runner.invoke(cmd, []).output.strip() == "strategy=auto"
    for name in ("default", "mirrored", "multiworker"):
        assert runner.invoke(cmd, ["--strategy", name]).output.strip() == f"strategy={name}"
    bad = runner.invoke(cmd, ["--strategy", "tpu"])
    assert bad.exit_code == 2 and "tpu" in bad.output
    help_text = runner.invoke(cmd, ["--help"]).output
    assert "--strategy" in help_text and "multiworker" in help_text

    # helper-3's ZooClassifier resolves the same names through get_strategy
    assert resolve_strategy("auto") is tf.distribute.get_strategy()
    assert isinstance(resolve_strategy("mirrored"), tf.distribute.MirroredStrategy)


def test_zoo_classifier_trains_under_the_auto_strategy():
    """``ZooClassifier(strategy="auto")`` goes through ``get_strategy`` and fits on CPU."""
    from amu_tf.training.multiworker_entry import make_data
    from amu_tf.training.zoo_classifier import ZooClassifier

    x, y = make_data(40, seed=0)
    est = ZooClassifier(model="amu:tiny", strategy="auto", epochs=2, batch_size=8,
                        validation_fraction=0, seed=0).fit(x, y)
    assert est.epochs_run_ == 2
    p = est.predict_proba(x)[:, 1]
    assert p.shape == (40,) and np.all((p >= 0) & (p <= 1))


def test_keras_multiworker_patch_targets_exist():
    """The Keras 3 workaround must find what it patches (it hands single-worker strategies
    to the original code); fails loudly if a Keras upgrade moves them."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    assert apply_keras_multiworker_patch() is True
    assert apply_keras_multiworker_patch() is True  # idempotent
    assert getattr(tf_trainer.reduce_per_replica, "_amu_patched", False)
    assert getattr(tf_trainer.TensorFlowTrainer._maybe_symbolic_build, "_amu_patched", False)


def test_cluster_resolver_is_tensorflows_for_a_checked_tf_config(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster_resolver(required=False) is None
    with pytest.raises(SpecError, match="needs the TF_CONFIG"):
        cluster_resolver()
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"chief": ["c:0"], "worker": ["a:1", "b:2"]},
         "task": {"type": "worker", "index": 1}}))
    resolver = cluster_resolver()
    assert isinstance(resolver, tf.distribute.cluster_resolver.TFConfigClusterResolver)
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert resolver.cluster_spec().as_dict() == {"chief": ["c:0"], "worker": ["a:1", "b:2"]}


def test_the_role_comes_from_a_strategys_resolver_before_tf_config(monkeypatch):
    """A multi-worker strategy carries its cluster resolver: the role is read from it."""
    import tensorflow as tf

    class _ClusteredStrategy(_FakeStrategy):
        def __init__(self, resolver):
            super().__init__(2)
            self.cluster_resolver = resolver

    monkeypatch.delenv("TF_CONFIG", raising=False)
    spec = tf.train.ClusterSpec({"chief": ["c:0"], "worker": ["a:1", "b:2"]})
    strategy = _ClusteredStrategy(tf.distribute.cluster_resolver.SimpleClusterResolver(
        spec, task_type="worker", task_id=1))
    assert task_info(strategy) == ("worker", 1, {"chief": 1, "worker": 2})
    assert not is_chief(strategy) and task_name(strategy) == "worker-1"
    assert worker_index(strategy) == 2 and worker_count(strategy) == 3
    # a resolver without a task (a one-machine strategy): TF_CONFIG decides, here unset
    local = _ClusteredStrategy(tf.distribute.cluster_resolver.SimpleClusterResolver(spec))
    assert is_chief(local) and task_name(local) == "local"


def test_keras_patch_warns_once_when_keras_lacks_what_it_replaces(monkeypatch):
    import warnings

    import keras
    from keras.src.backend.tensorflow import trainer as tf_trainer

    from amu_tf.training import keras_multiworker_patch as patch

    assert patch.patch_problem() is None  # the installed Keras: patchable
    monkeypatch.delattr(tf_trainer, "_collective_all_reduce_multi_worker")
    patch._warn_once.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert apply_keras_multiworker_patch() is False
        assert apply_keras_multiworker_patch() is False
    assert len(caught) == 1 and caught[0].category is RuntimeWarning
    message = str(caught[0].message)
    assert "not applied" in message and "_collective_all_reduce_multi_worker" in message
    monkeypatch.undo()

    # a replaced function whose arguments changed, or another major Keras: not patched
    monkeypatch.setattr(tf_trainer, "reduce_per_replica", lambda values, strategy: values)
    assert "reduce_per_replica takes ('values', 'strategy')" in patch.patch_problem()
    monkeypatch.undo()
    monkeypatch.setattr(keras, "__version__", "4.0.0")
    assert patch.patch_problem() == "Keras 4.0.0 is not Keras 3"
    monkeypatch.undo()
    patch._warn_once.cache_clear()
    assert patch.patch_problem() is None


def test_the_role_and_chief_writing_need_neither_tensorflow_nor_click(tmp_path):
    """Under JAX, TensorFlow may be missing: reading TF_CONFIG and writing only on the chief
    must still work, and the library must not import click (the CLI option is in pipelines).
    Runs under JAX (``amu_tf.training`` imports Keras, which under its TensorFlow backend
    would import TensorFlow)."""
    pytest.importorskip("jax", reason="jax is not installed (pip install -e '.[jax]')")
    script = textwrap.dedent("""
        import json, os, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "click"):
                    raise ModuleNotFoundError(f"No module named {name!r} (blocked)")

        sys.meta_path.insert(0, Block())
        from amu_tf.training import (chief_output, cluster_config, distributed_dataset,
                                     distribution_strategy, keras_multiworker_patch)
        os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                              "task": {"type": "worker", "index": 1}})
        assert not cluster_config.is_chief() and cluster_config.task_name() == "worker-1"
        with chief_output.written_by_chief(sys.argv[1]) as target:
            assert str(target) != sys.argv[1]
        from amu_tf.errors import SpecError
        os.environ["TF_CONFIG"] = "{not json"
        try:
            cluster_config.read_tf_config()
            raise AssertionError("a malformed TF_CONFIG was accepted")
        except SpecError as exc:
            assert "not valid JSON" in str(exc)
        assert "tensorflow" not in sys.modules and "click" not in sys.modules
        print("OK")
    """)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    env.pop("TF_CONFIG", None)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, env=env,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0 and done.stdout.strip() == "OK", done.stderr[-3000:]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- multi-worker
@pytest.mark.slow
def test_two_workers_end_identical_and_only_the_chief_writes(tmp_path):
    out, debug = tmp_path / "runs" / "model", tmp_path / "debug"
    args = ["--out", str(out), "--epochs", "2", "--steps", "3", "--batch-size", "4",
            "--debug-dir", str(debug), "--seed", "7"]
    codes, logs = _run_workers(tmp_path, "run", args)
    assert codes == [0, 0], _tails(logs)

    # both trained all epochs, on 2 replicas, and agree on the cross-worker aggregated logs
    ev0, ev1 = _events(debug, "worker-0"), _events(debug, "worker-1")
    for ev in (ev0, ev1):
        assert ev[0]["replicas"] == 2 and ev[0]["global_batch"] == 8
        assert ev[-1]["event"] == "done" and ev[-1]["epochs_run"] == 2
        # 24 rows at a global batch of 4 x 2 replicas: 3 steps per epoch on each worker
        assert [e["steps"] for e in ev if e["event"] == "epoch_end"] == [3, 3]
    loss0 = [e["loss"] for e in ev0 if e["event"] == "epoch_end"]
    loss1 = [e["loss"] for e in ev1 if e["event"] == "epoch_end"]
    assert len(loss0) == 2 and loss0 == loss1
    assert ev0[0]["chief"] is True and ev1[0]["chief"] is False

    # identical final weights on both workers, BatchNorm moving statistics included
    w0, w1 = _weights(debug / "worker-0.npz"), _weights(debug / "worker-1.npz")
    assert len(w0) == len(w1) > 10
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)

    # exactly one artifact, the chief's, at --out; the worker's temporary copy is gone
    artifacts = sorted(p.parent for p in tmp_path.rglob("artifact.json"))
    assert artifacts == [out]
    meta = json.loads((out / "artifact.json").read_text())
    assert meta["type"] == "Model" and meta["properties"]["written_by"] == "worker-0"
    saved1 = [e for e in ev1 if e["event"] == "saved"][0]["path"]
    assert Path(saved1) != out and not Path(saved1).exists()
    assert not any((tmp_path / "worker_tmp").iterdir())
    assert not (tmp_path / "runs" / "model.backup").exists()  # finished: backups removed

    # the artifact holds the trained weights and loads as a Model bundle
    from amu_tf.training.model_bundle import ModelBundle

    bundle = ModelBundle.load(out)
    saved = bundle.keras_model.get_weights()
    assert len(saved) == len(w0)
    for a, b in zip(saved, w0):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_killed_training_resumes_from_backup(tmp_path):
    out, debug, backup = tmp_path / "model", tmp_path / "debug", tmp_path / "backup"
    base = ["--out", str(out), "--epochs", "3", "--steps", "2", "--batch-size", "4",
            "--debug-dir", str(debug), "--backup-dir", str(backup), "--seed", "1"]

    # first run: both workers die hard right after epoch 1 of 3 (index 0) is backed up
    codes, logs = _run_workers(tmp_path, "killed", base + ["--die-after-epoch", "1"])
    assert codes == [DIE_EXIT_CODE, DIE_EXIT_CODE], _tails(logs)
    assert not out.exists()  # nothing written by a killed run
    for task in ("worker-0", "worker-1"):
        meta = json.loads((backup / task / "training_metadata.json").read_text())
        assert meta["epoch"] == 1
        assert (backup / task / "latest.weights.h5").is_file()

    # restart, same command without the kill: resumes at epoch index 1, runs 1 and 2 only
    codes, logs = _run_workers(tmp_path, "resumed", base)
    assert codes == [0, 0], _tails(logs)
    for task in ("worker-0", "worker-1"):
        ev = _events(debug, task)
        pids = list(dict.fromkeys(e["pid"] for e in ev))
        assert len(pids) == 2  # the killed process and the restarted one
        first = [e["epoch"] for e in ev if e["pid"] == pids[0] and e["event"] == "epoch_begin"]
        second = [e["epoch"] for e in ev if e["pid"] == pids[1] and e["event"] == "epoch_begin"]
        assert first == [0]
        assert second == [1, 2]  # restarted run's first epoch index > 0
        assert ev[-1]["event"] == "done" and ev[-1]["epochs_run"] == 2
    summary = json.loads((out / "training_summary.json").read_text())
    assert len(summary["history"]["loss"]) == 2
    w0, w1 = _weights(debug / "worker-0.npz"), _weights(debug / "worker-1.npz")
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    assert not backup.exists()  # finished: the backups are cleaned up


@pytest.mark.slow
def test_amu_train_multiworker_workers_agree_and_chief_writes(tmp_path):
    """`amu train --strategy multiworker` on two workers: ZooClassifier feeds a sharded
    tf.data pipeline with synchronized BatchNorm, so both workers end with the same model
    (same frozen threshold), and only the chief's Model artifact exists."""
    from amu_tf.data.cohort_table import write_table
    from amu_tf.data.synthetic import make_synthetic_table

    table, _ = make_synthetic_table(seed=0, n_per_cohort=30)
    write_table(table, tmp_path / "table.csv")
    out = tmp_path / "model"
    codes, logs = _run_workers(
        tmp_path, "amu-train",
        ["train", "--table", str(tmp_path / "table.csv"), "--model", "amu:tiny",
         "--epochs", "2", "--strategy", "multiworker", "--out", str(out), "--quiet"],
        module="pipelines.cli")
    assert codes == [0, 0], _tails(logs)
    chief_threshold = json.loads((out / "model_info.json").read_text())["threshold"]
    worker_line = [ln for ln in logs[1].read_text().splitlines() if ln.startswith("worker-1:")]
    assert worker_line, _tails(logs)
    worker_threshold = float(worker_line[0].split("threshold ")[1].split(")")[0])
    assert worker_threshold == pytest.approx(chief_threshold, abs=1e-4)
    artifacts = sorted(p.parent for p in tmp_path.rglob("artifact.json"))
    assert artifacts == [out]


def test_multiworker_heartbeat_timeout_outlasts_a_busy_cpu():
    """The coordination service is configured with HEARTBEAT_TIMEOUT_S (TensorFlow's 10 s
    default aborted a healthy two-worker run in CI on two busy cores: 'heartbeat timeout'),
    the leader and jobs as MultiWorkerMirroredStrategy sets them. In a fresh process: the
    configuration is the process's global context."""
    code = textwrap.dedent("""
        from tensorflow.python.eager import context
        from amu_tf.training.cluster_config import cluster_resolver
        from amu_tf.training.distribution_strategy import (HEARTBEAT_TIMEOUT_S,
                                                           _configure_coordination)
        _configure_coordination(cluster_resolver(required=True))
        c = context.context().coordination_service
        print(c.heartbeat_timeout_in_ms == HEARTBEAT_TIMEOUT_S * 1000 >= 60000,
              c.service_type, c.service_leader,
              [(j.name, j.num_tasks) for j in c.coordinated_job_list])
    """)
    env = dict(os.environ, TF_CONFIG=_tf_config([12345, 12346], 1), CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == (
        "True standalone /job:worker/replica:0/task:0 [('worker', 2)]")
