"""The COMPASS models' serving and training contract (issue #23), end to end on tiny
random-weight encoders (``compass:tiny``: 40 genes GENE0..GENE39), so nothing here needs the
real 15,672-gene weights or the network:

- `amu predict --input cohort.toml` from an exported ``amu:compass`` model, on the command
  line, against the Python API and the Model artifact; the model's own missing-gene limit;
- the encoder's lower learning rate as `ZooClassifier` builds it (``encoder_lr_scale``);
- the wheel is converted once and then read from ``$AMU_TF_CACHE_DIR`` (a fake wheel with a
  hand-built torch checkpoint, hash pinned by monkeypatch);
- the export's metadata carries the model's genes in order and its preprocessing.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import subprocess
import sys
import types
import zipfile
from pathlib import Path
from unittest import mock

import keras
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from test_compass_classifier import GENES, _table
from test_compass_probe import TINY

NEW_COHORT = "NEW"
N_NEW = 12


# ----------------------------------------------------------------------------------------
# A trained and exported compass:tiny, shared by the serving tests
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """compass:tiny trained through `amu train`'s component on three cohorts, exported once
    to <root>/sm/compass/1."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a SavedModel is written under the TensorFlow backend")
    from components.export import run_export
    from components.train import run_train

    root = tmp_path_factory.mktemp("compass_contract")
    keras.utils.set_random_seed(0)
    art = run_train(_table(), root / "model", model="compass:tiny", epochs=3, patience=2,
                    batch_size=8, learning_rate=1e-2)
    pushed = run_export(art.uri, base_dir=root / "sm", name="compass")
    keras.backend.clear_session()
    return {"model": Path(art.uri), "base": root / "sm" / "compass",
            "version": Path(pushed.properties["path"])}


def _write_spec(folder: Path, units="fpkm", drop=(), name="new.toml") -> tuple[Path, list]:
    """A cohort spec for a cohort the model never saw (``NEW``, 12 samples) and its two data
    files, all in ``folder``: genes x samples TSV with the model's 40 genes (less ``drop``)
    and the 160 panel genes ingest requires, in ``units``; clinical TSV with BOR."""
    from amu_tf.panel import panel_symbols

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    samples = [f"S{i:02d}" for i in range(N_NEW)]
    genes = [g for g in GENES if g not in set(drop)] + list(panel_symbols())
    values = rng.gamma(2.0, 4.0, size=(len(genes), N_NEW))
    values[:8] *= rng.uniform(0.5, 3.0, size=N_NEW)          # per-sample depth differences
    expr = pd.DataFrame(values, columns=samples)
    expr.insert(0, "gene_symbol", genes)
    stem = Path(name).stem
    expr.to_csv(folder / f"{stem}_expr.tsv", sep="\t", index=False)
    pd.DataFrame({"sample": samples, "BOR": ["PR", "PD", "SD", "CR"] * (N_NEW // 4)}).to_csv(
        folder / f"{stem}_clin.tsv", sep="\t", index=False)
    spec = folder / name
    spec.write_text(f'''name = "{NEW_COHORT}"

[expression]
file = "{stem}_expr.tsv"
layout = "genes_x_samples"
units = "{units}"
gene_id = "symbol"
gene_column = "gene_symbol"

[clinical]
file = "{stem}_clin.tsv"
sample = "sample"
response = "BOR"
timepoint_value = "pre"
''')
    return spec, samples


def _predict(args):
    from pipelines.cli import amu

    return CliRunner().invoke(amu, ["predict", *map(str, args)])


# ----------------------------------------------------------------------------------------
# 1. `amu predict --input x.toml` from an exported COMPASS model
# ----------------------------------------------------------------------------------------
@pytest.mark.tensorflow_only
def test_amu_predict_from_a_compass_export_with_a_cohort_spec(exported, tmp_path):
    """The command line scores a new cohort given as a spec (FPKM, so the spec's unit must
    reach COMPASS's input transform: it rescales FPKM to TPM) with the probabilities of the
    Python API on the same export and of the Model artifact."""
    from amu_tf.serving import ExportedModel
    from amu_tf.training.model_bundle import ModelBundle
    from pipelines.predict_cmd import _read_input

    spec, samples = _write_spec(tmp_path / "data", units="fpkm")
    out = tmp_path / "pred.csv"
    r = _predict(["--model", exported["base"], "--input", spec, "--out", out])
    assert r.exit_code == 0, r.output
    assert f"wrote {N_NEW} predictions" in r.stdout and "40/40" in r.stdout
    pred = pd.read_csv(out, dtype={"sample": str})
    assert list(pred.columns) == ["sample", "probability", "predicted_class", "genes_present"]
    assert pred["sample"].tolist() == samples                 # every sample, in file order
    p = pred["probability"].to_numpy()
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all() and p.std() > 0
    assert (pred["genes_present"] == 1.0).all()

    # the same export through the Python API, on the table `amu predict` reads from the spec
    table = _read_input(str(spec), None)
    assert table.attrs["cohort_units"] == {NEW_COHORT: "fpkm"}
    served = ExportedModel.load(exported["base"])
    api = served.predict_table(table)
    assert api["sample"].tolist() == samples
    np.testing.assert_allclose(p, api["probability"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(pred["predicted_class"], api["predicted_class"])
    clear = np.abs(p - served.threshold) > 1e-6               # away from the cut
    np.testing.assert_array_equal(pred["predicted_class"][clear],
                                  (p >= served.threshold)[clear].astype(int))

    # and the Model artifact it was exported from
    bundle = ModelBundle.load(exported["model"])
    want = bundle.predict_proba(table)[:, 1]
    np.testing.assert_allclose(p, want, rtol=0, atol=1e-5)
    # the unit mattered: read as TPM (a table that says nothing), the scores differ, so the
    # agreement above is the FPKM rescaling on both sides, not a unit both ignored
    as_tpm = table.copy()
    as_tpm.attrs = {}
    assert np.abs(bundle.predict_proba(as_tpm)[:, 1] - want).max() > 1e-4


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("n_missing", [8, 9])
def test_amu_predict_applies_the_models_missing_gene_limit(exported, tmp_path, n_missing):
    """COMPASS's limit (20% of the model's genes: 8 of 40), not the serving default (10%):
    missing 8 is scored by the export as by the Model artifact; missing 9 is refused by both
    routes with one line, exit 2 and no output file."""
    drop = GENES[:n_missing]
    spec, samples = _write_spec(tmp_path / "data", units="tpm", drop=drop)
    out_export, out_artifact = tmp_path / "export.csv", tmp_path / "artifact.csv"
    r = _predict(["--model", exported["base"], "--input", spec, "--out", out_export])
    r_art = _predict(["--model", exported["model"], "--input", spec, "--out", out_artifact])
    if n_missing == 8:
        assert r.exit_code == 0, r.output
        assert r_art.exit_code == 0, r_art.output
        a = pd.read_csv(out_export, dtype={"sample": str})
        b = pd.read_csv(out_artifact, dtype={"sample": str})
        assert a["sample"].tolist() == b["sample"].tolist() == samples
        np.testing.assert_allclose(a["probability"], b["probability"], rtol=0, atol=1e-5)
        assert (a["genes_present"] == 0.8).all() and (b["genes_present"] == 0.8).all()
        assert "missing (imputed): " + ", ".join(drop) in r.stdout
        return
    for result, out in ((r, out_export), (r_art, out_artifact)):
        assert result.exit_code == 2, result.output
        err = result.stderr.strip()
        assert err.startswith("Error: ") and len(err.splitlines()) == 1, err
        assert not out.exists()
    assert "9/40 genes of the model are missing in cohort NEW" in r.stderr
    assert "cohort NEW lacks 9 of COMPASS's 40 genes" in r_art.stderr


# ----------------------------------------------------------------------------------------
# 2. the encoder's learning rate, as ZooClassifier builds the optimizer
# ----------------------------------------------------------------------------------------
def _fit_recording(monkeypatch, scale, **params):
    """Fit compass:tiny through make_estimator with ``encoder_lr_scale=scale``; returns the
    estimator and the trainable weights as built (recorded when the estimator makes its
    optimizer, before any step) and after fit, by variable path."""
    from amu_tf.training import make_estimator
    from amu_tf.training.zoo_classifier import ZooClassifier

    before = {}
    real = ZooClassifier._make_optimizer

    def recording(self, total_steps, model=None):
        before["encoder"] = [v.path for v in model.encoder.trainable_variables]
        before["weights"] = {v.path: np.array(v) for v in model.weights}
        return real(self, total_steps, model)

    monkeypatch.setattr(ZooClassifier, "_make_optimizer", recording)
    table = _table()
    est = make_estimator("compass:tiny", encoder_lr_scale=scale, learning_rate=1e-2, **params)
    X = est.make_input_transform().fit(table).transform(table)
    est.fit(X, table["response"].to_numpy(int), groups=table["patient"].to_numpy())
    after = {v.path: np.array(v) for v in est.model_.weights}
    assert len(after) == len(est.model_.weights)              # paths are unique keys
    assert set(after) == set(before["weights"])
    return est, before, after


def _steps(before, after, paths):
    return {k: np.abs(after[k] - before["weights"][k]) for k in paths}


def test_encoder_lr_scale_zero_freezes_the_encoder_through_the_estimator(monkeypatch):
    """encoder_lr_scale=0: over two epochs of minibatches with early stopping, the encoder's
    weights are exactly as built, the head's are trained."""
    from amu_tf.training.layerwise_adam import LayerwiseAdam

    est, before, after = _fit_recording(monkeypatch, 0.0, epochs=2, batch_size=8, patience=2)
    opt = est.model_.optimizer
    assert isinstance(opt, LayerwiseAdam) and int(opt.iterations.numpy()) > 2
    encoder = before["encoder"]
    assert len(encoder) == len(est.model_.encoder.trainable_variables) > 10
    assert opt.multipliers == {p: 0.0 for p in encoder}
    for k in encoder:
        np.testing.assert_array_equal(after[k], before["weights"][k], err_msg=k)
    head = [v.path for v in est.model_.trainable_variables if v.path not in set(encoder)]
    assert head and all(p.startswith("head") for p in head)
    assert max(s.max() for s in _steps(before, after, head).values()) > 1e-3


def test_encoder_lr_scale_scales_the_encoder_step_and_leaves_the_head(monkeypatch):
    """One Adam step (one epoch, one batch of every training row): the gradient is the same
    whatever the scale, so the encoder's step at 0.1 is a tenth of its step at 1, weight by
    weight, and the head's step is the same; at scale 1 the encoder moves as the head does
    (Adam's first step: about the learning rate)."""
    one_step = dict(epochs=1, batch_size=256, validation_fraction=0, balance=None)
    est1, before1, after1 = _fit_recording(monkeypatch, 1.0, **one_step)
    est01, before01, after01 = _fit_recording(monkeypatch, 0.1, **one_step)
    assert int(est1.model_.optimizer.iterations.numpy()) == 1
    assert int(est01.model_.optimizer.iterations.numpy()) == 1
    for k in before1["weights"]:                              # the same model as built
        np.testing.assert_array_equal(before1["weights"][k], before01["weights"][k])
    encoder = before1["encoder"]
    head = [v.path for v in est1.model_.trainable_variables if v.path not in set(encoder)]
    enc1, enc01 = _steps(before1, after1, encoder), _steps(before01, after01, encoder)
    for k in encoder:
        np.testing.assert_allclose(enc01[k], 0.1 * enc1[k], rtol=1e-3, atol=1e-6, err_msg=k)
    h1, h01 = _steps(before1, after1, head), _steps(before01, after01, head)
    for k in head:
        np.testing.assert_allclose(h01[k], h1[k], rtol=1e-3, atol=1e-6, err_msg=k)
    lr = 1e-2
    median = lambda steps: float(np.median(np.concatenate([s.ravel() for s in steps.values()])))  # noqa: E731
    assert 0.5 * lr < median(h1) < 1.5 * lr
    assert 0.5 * lr < median(enc1) < 1.5 * lr
    assert 0.05 * lr < median(enc01) < 0.15 * lr
    # the non-trainable random-feature projection never moves
    frozen = [v.path for v in est1.model_.non_trainable_weights]
    assert any("projection_matrix" in p for p in frozen)
    for k in frozen:
        np.testing.assert_array_equal(after1[k], before1["weights"][k])


# ----------------------------------------------------------------------------------------
# 3. convert once and cache
# ----------------------------------------------------------------------------------------
def _torch_checkpoint(state: dict, genes: list) -> bytes:
    """``torch.save([state, genes])`` in torch's zip format, written without torch: the
    pickle names ``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` (stand-in
    modules exist only while pickling) and each tensor's storage is a raw little-endian
    file ``data/<key>``."""
    fake_torch, fake_utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # pragma: no cover - only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    fake_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    float_storage = type("FloatStorage", (), {"__module__": "torch"})
    fake_torch.FloatStorage, fake_torch._utils = float_storage, fake_utils

    class Storage:
        def __init__(self, key, arr):
            self.key, self.arr = key, arr

    class Tensor:
        def __init__(self, key, arr):
            self.arr = np.ascontiguousarray(arr, dtype="<f4")
            self.storage = Storage(key, self.arr)

        def __reduce__(self):
            stride = tuple(s // self.arr.itemsize for s in self.arr.strides)
            return (_rebuild_tensor_v2, (self.storage, 0, self.arr.shape, stride, False,
                                         collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", float_storage, obj.key, "cpu", obj.arr.size)
            return None

    tensors = collections.OrderedDict(
        (name, Tensor(str(i), arr)) for i, (name, arr) in enumerate(state.items()))
    buf = io.BytesIO()
    with mock.patch.dict(sys.modules, {"torch": fake_torch, "torch._utils": fake_utils}):
        Pickler(buf, protocol=2).dump([tensors, list(genes)])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for t in tensors.values():
            z.writestr(f"archive/data/{t.storage.key}", t.arr.tobytes())
        z.writestr("archive/version", "3\n")
    return out.getvalue()


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    """A tiny encoder with random weights, packed as the pinned wheel would be (its
    ``_distilled.pth`` and tokenizer tables); the pinned hash is set to this file's, the
    cache to tmp_path, and pip is never run."""
    from amu_tf.models.compass_encoder import CompassEncoder
    from amu_tf.utils.transformers import convert_compass as cc

    encoder = CompassEncoder(**TINY)
    rng = np.random.default_rng(11)
    for var in encoder.weights:
        var.assign((rng.standard_normal(tuple(var.shape)) * 0.3).astype(np.float32))
    slots = {k: np.array(v) for k, v in encoder._weight_slots().items()}
    state = {torch_name: (slots[name].T if transpose else slots[name])
             for torch_name, (name, transpose) in cc._NAME_MAP.items()}
    genes = [f"GENE{i}" for i in range(TINY["n_genes"])]
    tokens = {"-1": "CLS", "-2": "CANCER", **{str(i): g for i, g in enumerate(genes)}}
    wheel = tmp_path / cc.COMPASS_WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(cc.DISTILLED_MEMBER, _torch_checkpoint(state, genes))
        z.writestr(cc.TOKENS_MEMBER, json.dumps(tokens))
        z.writestr(cc.CANCER_CODE_MEMBER, json.dumps({"SKCM": 25, "BLCA": 1}))
        z.writestr(cc.CONCEPTS_MEMBER, "geneset\tconcept\ngenes\nset0\tA\tGENE0;GENE1\n")
    monkeypatch.setattr(cc, "COMPASS_WHEEL_SHA256", cc.sha256_of(wheel))
    monkeypatch.setenv(cc.WHEEL_ENV, str(wheel))
    monkeypatch.setenv("AMU_TF_CACHE_DIR", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError(f"ran a subprocess: {args!r}")

    monkeypatch.setattr(cc, "subprocess", types.SimpleNamespace(
        run=no_network, TimeoutExpired=subprocess.TimeoutExpired))
    cc.load_compass_assets.cache_clear()      # never hand these fake assets to other tests
    yield {"wheel": wheel, "encoder": encoder, "slots": slots, "genes": genes}
    cc.load_compass_assets.cache_clear()


def test_the_wheel_is_converted_once_then_read_from_the_cache(fake_wheel, tmp_path,
                                                             monkeypatch):
    from amu_tf.models.compass_encoder import CompassEncoder
    from amu_tf.utils.transformers import convert_compass as cc

    calls = collections.Counter()
    for fn in ("fetch_wheel", "read_distilled", "read_tokenizer_tables"):
        real = getattr(cc, fn)

        def counted(*a, _real=real, _fn=fn, **k):
            calls[_fn] += 1
            return _real(*a, **k)

        monkeypatch.setattr(cc, fn, counted)

    first = cc.load_compass_assets()
    assert calls == {"fetch_wheel": 1, "read_distilled": 1, "read_tokenizer_tables": 1}
    folder = tmp_path / "cache" / "compass" / f"{cc.COMPASS_WHEEL_SHA256[:16]}-v{cc.CACHE_LAYOUT}"
    assert Path(first["folder"]) == folder
    assert {p.name for p in folder.iterdir()} == {
        "weights.npz", "genes.json", "tokens.json", "cancer_codes.json", "concepts.tsv",
        "source.json"}
    assert not list(folder.parent.glob(".converting-*"))      # no half-written folder left
    assert first["genes"] == fake_wheel["genes"] and first["cancer_codes"]["SKCM"] == 25
    assert first["source"]["wheel_sha256"] == cc.COMPASS_WHEEL_SHA256
    assert set(first["weights"]) == set(fake_wheel["slots"])
    for name, value in fake_wheel["slots"].items():           # linear kernels transposed back
        np.testing.assert_array_equal(first["weights"][name], value, err_msg=name)
    stamp = (folder / "weights.npz").stat().st_mtime_ns

    # a second load (a new process: the in-memory cache cleared) reads the folder: nothing
    # is fetched, read from the wheel or written, and the wheel itself is no longer needed
    cc.load_compass_assets.cache_clear()
    fake_wheel["wheel"].unlink()
    second = cc.load_compass_assets()
    assert calls == {"fetch_wheel": 1, "read_distilled": 1, "read_tokenizer_tables": 1}
    assert (folder / "weights.npz").stat().st_mtime_ns == stamp
    assert second["genes"] == first["genes"]
    for name in first["weights"]:
        np.testing.assert_array_equal(second["weights"][name], first["weights"][name])
    # the cached weights load into the port and give the original encoder's outputs
    again = CompassEncoder(**TINY).load_converted_weights(second["weights"])
    x = {"expression": np.random.default_rng(2).random((3, TINY["n_genes"]), dtype=np.float32),
         "cancer_type": np.array([25, 1, 25], np.int32)}
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(fake_wheel["encoder"](x)),
                               rtol=1e-6, atol=1e-6)

    # a fresh interpreter finds the cache too, with fetching and reading made to fail
    script = ("import json, sys\n"
              "from amu_tf.utils.transformers import convert_compass as cc\n"
              "cc.COMPASS_WHEEL_SHA256 = sys.argv[1]\n"
              "def boom(*a, **k):\n"
              "    raise SystemExit('converted again')\n"
              "cc.fetch_wheel = cc.read_distilled = cc.read_tokenizer_tables = boom\n"
              "a = cc.load_compass_assets()\n"
              "print(json.dumps({'folder': a['folder'], 'genes': a['genes']}))\n")
    env = {k: v for k, v in os.environ.items() if k != cc.WHEEL_ENV}
    env["AMU_TF_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run([sys.executable, "-c", script, cc.COMPASS_WHEEL_SHA256],
                          capture_output=True, text=True, env=env, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"folder": str(folder), "genes": fake_wheel["genes"]}


# ----------------------------------------------------------------------------------------
# 4. the export's metadata: the genes in the model's order and the preprocessing
# ----------------------------------------------------------------------------------------
@pytest.mark.tensorflow_only
def test_export_metadata_carries_the_genes_and_the_preprocessing(exported):
    from amu_tf.data.transforms import load_transform
    from amu_tf.serving import ExportedModel, read_metadata
    from amu_tf.training.model_bundle import ModelBundle

    meta = read_metadata(exported["version"])
    fitted = ModelBundle.load(exported["model"]).transform
    assert fitted.name == "compass_input" and fitted.genes_ == GENES
    # the genes, in the model's input order (not only how many)
    assert [g["symbol"] for g in meta["genes"]] == fitted.genes_
    assert [g["index"] for g in meta["genes"]] == list(range(len(GENES)))
    assert meta["n_genes"] == meta["n_inputs"] == len(GENES)
    assert meta["signature"]["inputs"]["expression"]["shape"] == [None, len(GENES)]
    assert meta["model_info"]["genes"]["symbols"] == fitted.genes_
    assert ExportedModel.load(exported["base"]).symbols == fitted.genes_
    # the preprocessing: COMPASS's input transform, run in Python before the graph, with its
    # scaler choice, missing-gene limit, fill and cancer type
    t = meta["transform"]
    assert t["name"] == "compass_input"
    assert not t["in_graph"] and not t["per_sample"] and not t["imputes_in_graph"]
    assert t["python_side"] == "assets/transform/"
    params = t["params"]
    assert params["scaler_fit"] == fitted.scaler_fit_ == "per_cohort"
    assert params["max_missing_fraction"] == fitted.max_missing_fraction == 0.2
    assert params["missing_fill"] == 0.0 and params["cancer_type"] == "SKCM"
    assert params["genes"] == fitted.genes_
    assert "compass_input" in meta["expected_input_scale"]
    # says what a COMPASS model reads, not the panel transforms' cohort_z description
    assert "min-max" in meta["expected_input_scale"]
    assert "cohort_z z-scores each gene" not in meta["expected_input_scale"]
    assert meta["model_info"]["input_scale"].startswith("COMPASS's")
    # the fitted units per cohort and the scaler's measured effect, in the metadata itself
    assert t["record"]["units_"] == fitted.units_
    assert t["record"]["scaler_effect_"] == fitted.scaler_effect_
    assert meta["training_cohorts"] == ["C0", "C1", "C2"]
    # the fitted preprocessing itself (units per cohort, the per-cohort scalers) travels in
    # assets/transform/: its readable record and the transform it loads to
    record = json.loads((exported["version"] / "assets" / "transform" / "transform.json")
                        .read_text())["record"]
    assert record["units_"] == fitted.units_
    assert all(u.startswith("tpm: ") for u in record["units_"].values())
    assert record["scaler_fit_"] == "per_cohort"
    assert record["scaler_cohorts_"] == ["C0", "C1", "C2"] == fitted.scaler_cohorts_
    assert record["n_genes"] == len(GENES) and record["max_missing_fraction"] == 0.2
    shipped = load_transform(exported["version"] / "assets" / "transform")
    assert shipped.genes_ == fitted.genes_ and shipped.units_ == fitted.units_
    for cohort, (lo, hi) in fitted.scaler_.items():
        np.testing.assert_array_equal(shipped.scaler_[cohort][0], lo)
        np.testing.assert_array_equal(shipped.scaler_[cohort][1], hi)


def test_a_token_every_sample_shares_learns_at_adams_rate():
    """LayerwiseAdam steps an embedding row on its summed gradient: the row every sample of a
    batch looks up (COMPASS's patient token) moves by about the learning rate on the first
    step, not sqrt(batch) x it, as Keras's sparse path would let it (second moment summed
    slice by slice)."""
    import keras

    from amu_tf.training.layerwise_adam import LayerwiseAdam

    for opt_cls, bound in ((LayerwiseAdam, 1.01), (keras.optimizers.Adam, None)):
        keras.utils.set_random_seed(0)
        emb = keras.layers.Embedding(3, 4)
        inp = keras.Input((1,), dtype="int32")
        model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(emb(inp))))
        before = keras.ops.convert_to_numpy(emb.embeddings).copy()
        model.compile(optimizer=opt_cls(learning_rate=0.01), loss="mse")
        x = np.zeros((64, 1), "int32")  # every sample reads row 0
        model.train_on_batch(x, np.full((64, 1), 5.0))
        step = np.abs(keras.ops.convert_to_numpy(emb.embeddings) - before)
        assert step[1:].max() == 0  # rows nobody read stay
        if bound is not None:
            assert step[0].max() <= 0.01 * bound
            ours = step[0].max()
        elif keras.backend.backend() == "tensorflow":
            assert step[0].max() > 3 * ours  # the behaviour the dense step avoids


def test_weight_decay_follows_each_variables_scale():
    """LayerwiseAdam's decoupled weight decay runs at each variable's scaled rate: with a
    multiplier of 0 and no gradient signal the variable stays exactly as it was, while an
    unscaled one shrinks by lr x decay; the decay survives get_config."""
    import keras

    from amu_tf.training.layerwise_adam import LayerwiseAdam

    keras.utils.set_random_seed(0)
    frozen, free = keras.layers.Dense(3), keras.layers.Dense(1)
    inp = keras.Input((4,))
    model = keras.Model(inp, free(frozen(inp)))
    opt = LayerwiseAdam(multipliers={v.path: 0.0 for v in frozen.trainable_variables},
                        learning_rate=0.1, weight_decay=0.5)
    model.compile(optimizer=opt, loss="mse")
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables}
    x = np.zeros((8, 4), "float32")  # zero input: the kernels get no gradient, only decay
    model.train_on_batch(x, np.zeros((8, 1), "float32"))
    after = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    np.testing.assert_array_equal(after[frozen.kernel.path], before[frozen.kernel.path])
    np.testing.assert_allclose(after[free.kernel.path], before[free.kernel.path] * (1 - 0.05),
                               rtol=1e-5)
    again = LayerwiseAdam.from_config(opt.get_config())
    assert again.decoupled_weight_decay == 0.5 and again.multipliers == opt.multipliers
