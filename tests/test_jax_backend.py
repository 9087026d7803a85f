"""The zoo under Keras's JAX backend (#18): presets build, predict, fit; `.keras` files move
between TensorFlow and JAX with the same predictions; the TensorFlow-only paths (the compiled
kernel) are never attempted under JAX. JAX runs in a subprocess (one backend per process)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("jax", reason="jax is not installed (pip install -e '.[jax]')")

PRESETS = ("amu:tiny", "amu-ft:small", "cnn:paper")

JAX_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np, keras
    assert keras.backend.backend() == "jax"
    import amu_tf.models  # registers the zoo classes
    from amu_tf.kernels import tiny_attention
    from amu_tf.models.zoo import build_model
    from amu_tf.training import make_estimator
    folder = sys.argv[1]
    x = np.load(os.path.join(folder, "x.npy"))
    out = {}
    for name in json.loads(sys.argv[2]):
        safe = name.replace(":", "_")
        m = keras.saving.load_model(os.path.join(folder, safe + "_tf.keras"), compile=False)
        out[name] = np.asarray(m(x, training=False)).tolist()
        keras.utils.set_random_seed(3)
        j = build_model(name)
        j.save(os.path.join(folder, safe + "_jax.keras"))
        np.save(os.path.join(folder, safe + "_jax_pred.npy"), np.asarray(j(x, training=False)))
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 48); y[:2] = [0, 1]
    X = rng.normal(size=(48, 160)).astype("float32"); X[:, :8] += 1.2 * (2 * y[:, None] - 1)
    fits = [make_estimator("amu:tiny", seed=5, epochs=2, patience=2, batch_size=16,
                           model_overrides={"dropout": 0.1}).fit(X, y).predict_proba(X)
            for _ in range(2)]
    out["fit_same_seed_max_diff"] = float(np.abs(fits[0] - fits[1]).max())
    out["fit_proba_rows_sum_to_one"] = bool(np.allclose(fits[0].sum(1), 1, atol=1e-5))
    out["kernel_tried"] = bool(tiny_attention._STATE["tried"])
    print("RESULT " + json.dumps(out))
""")


@pytest.mark.slow
def test_zoo_under_jax_matches_tensorflow_both_ways(tmp_path):
    import keras

    from amu_tf.models.zoo import build_model

    x = np.random.default_rng(0).normal(size=(5, 160)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    want = {}
    for name in PRESETS:
        keras.utils.set_random_seed(2)
        m = build_model(name)
        m.save(tmp_path / f"{name.replace(':', '_')}_tf.keras")
        want[name] = np.asarray(m(x, training=False))
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path), json.dumps(PRESETS)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    got = json.loads(line[len("RESULT "):])
    for name in PRESETS:  # a TensorFlow-saved .keras predicts the same under JAX
        np.testing.assert_allclose(np.asarray(got[name]), want[name], atol=1e-5)
        # and a JAX-saved .keras the same under TensorFlow
        back = keras.saving.load_model(tmp_path / f"{name.replace(':', '_')}_jax.keras",
                                       compile=False)
        np.testing.assert_allclose(np.asarray(back(x, training=False)),
                                   np.load(tmp_path / f"{name.replace(':', '_')}_jax_pred.npy"),
                                   atol=1e-5)
    assert got["fit_proba_rows_sum_to_one"]
    assert got["fit_same_seed_max_diff"] < 1e-5  # one seed, one model on one device
    assert got["kernel_tried"] is False  # the TensorFlow kernel is never attempted under JAX


DATA_PARALLEL_SCRIPT = textwrap.dedent("""
    import json, os
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import sys

    class NoTensorFlow:  # as on a GPU machine without TensorFlow installed
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")

    sys.meta_path.insert(0, NoTensorFlow())
    import numpy as np
    from amu_tf.training import make_estimator
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 64)
    X = rng.normal(size=(64, 160)).astype("float32"); X[:, :8] += 1.2 * (2 * y[:, None] - 1)
    out = {}
    for strategy in ("default", "auto"):
        est = make_estimator("amu:tiny", seed=5, epochs=3, patience=3, batch_size=16,
                             strategy=strategy, model_overrides={"dropout": 0.1},
                             pretrain={"epochs": 1}).fit(X, y)
        out[strategy] = {"devices": est.devices_, "p": est.predict_proba(X)[:, 1].tolist()}
    out["tensorflow_imported"] = "tensorflow" in sys.modules  # could not be: blocked
    print("RESULT " + json.dumps(out))
""")


@pytest.mark.slow
def test_data_parallel_over_two_jax_devices_gives_the_one_device_model():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", DATA_PARALLEL_SCRIPT], capture_output=True,
                          text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads([ln for ln in done.stdout.splitlines()
                      if ln.startswith("RESULT ")][-1][len("RESULT "):])
    assert got["default"]["devices"] == 1 and got["auto"]["devices"] == 2
    np.testing.assert_allclose(got["auto"]["p"], got["default"]["p"], atol=1e-5)
    assert got["tensorflow_imported"] is False  # trained with TensorFlow not importable


@pytest.mark.slow
def test_a_jax_trained_model_exports_and_serves_like_a_tensorflow_one(tmp_path):
    import pandas as pd

    from amu_tf.data.synthetic import generate_default_cohorts

    specs = generate_default_cohorts(tmp_path / "syn", n_per_cohort=24)
    amu = [sys.executable, "-m", "pipelines.cli"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tf_env = dict(os.environ, KERAS_BACKEND="tensorflow")
    jax_env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")

    def run(args, env):
        done = subprocess.run(amu + args, capture_output=True, text=True, env=env, cwd=root,
                              timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    run(["ingest", *map(str, specs), "--out", str(tmp_path / "cohort")], tf_env)
    run(["train", "--table", str(tmp_path / "cohort"), "--model", "amu:tiny", "--epochs", "2",
         "--out", str(tmp_path / "model")], jax_env)
    info = json.loads((tmp_path / "model" / "model_info.json").read_text())
    assert info["keras_backend"] == "jax"
    run(["predict", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "cohort"),
         "--out", str(tmp_path / "p_jax.csv")], jax_env)
    run(["export", "--model", str(tmp_path / "model"), "--base-dir", str(tmp_path / "sm"),
         "--name", "jax_amu"], tf_env)
    run(["predict", "--model", str(tmp_path / "sm" / "jax_amu"), "--input",
         str(tmp_path / "cohort"), "--out", str(tmp_path / "p_sm.csv")], tf_env)
    a, b = pd.read_csv(tmp_path / "p_jax.csv"), pd.read_csv(tmp_path / "p_sm.csv")
    assert list(a["sample"]) == list(b["sample"])
    np.testing.assert_allclose(a["probability"], b["probability"], atol=1e-5)
    assert (a["predicted_class"] == b["predicted_class"]).all()
