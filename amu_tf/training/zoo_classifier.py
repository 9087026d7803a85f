"""A scikit-learn style classifier around any zoo model (``amu:*``, ``amu-ft:*``, ``cnn:*``).

``ZooClassifier(model="amu:small").fit(X, y)`` learns only from the rows it is given:

1. a stratified inner split of those rows (``validation_fraction``, seeded) into an inner
   train part and an inner validation part (grouped by patient when ``fit`` gets
   ``groups``);
2. class balance on the inner train part only (``balance="upsample"`` draws minority rows
   again, from the inner train rows; ``"class_weight"`` weights the loss instead);
3. training inside a ``tf.distribute`` strategy scope with early stopping on the inner
   validation loss (best weights restored);
4. the decision threshold: Youden's J on the inner validation predictions (the rows
   early stopping used, never the rows the model is later scored on), frozen in
   ``threshold_``.

With a fixed ``seed`` a CPU run is repeatable (same weights, same predictions): the seed
sets Python's, NumPy's and TensorFlow's generators before the model is built, and
``deterministic=True`` (the default) turns on TensorFlow's op determinism.

Saved without pickle: ``save(dir)`` writes ``model.keras`` and ``zoo_classifier.json``;
``ZooClassifier.load(dir)`` reads them back.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit
from sklearn.utils.metaestimators import available_if

from amu_tf.errors import InputDataError
from amu_tf.training._checks import check_per_class, check_X
from amu_tf.training._sklearn_input import fit_input, predict_input
from amu_tf.training.distribution_strategy import data_parallel, num_replicas
from amu_tf.training.threshold import threshold_margin, youden_threshold
from amu_tf.training.upsampling import upsample_indices

STATE_FILE = "zoo_classifier.json"
MODEL_FILE = "model.keras"


def resolve_strategy(strategy):
    """A ``tf.distribute.Strategy`` from a name or an instance.

    ``"default"``/None: the current (default) strategy; the other names (``auto``,
    ``mirrored``, ``multiworker``) go to
    :func:`amu_tf.training.distribution_strategy.get_strategy` (an unknown name is a
    ``SpecError``, a ``ValueError``).
    """
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy in (None, "default"):
        return tf.distribute.get_strategy()
    from amu_tf.training.distribution_strategy import get_strategy

    return get_strategy(strategy)


def _pad_rows(X, y, multiple: int, class_weight=None):
    """``(X, y, sample_weight)`` with rows of weight 0 appended (copies of the first rows) so
    that the row count is a multiple of ``multiple``; the other rows weigh 1, or their class's
    ``class_weight``."""
    pad = (-len(X)) % multiple
    w = np.ones(len(X), dtype=np.float32)
    if class_weight is not None:
        w = np.asarray([class_weight[int(c)] for c in y], dtype=np.float32)
    take = np.arange(pad) % max(len(X), 1)
    return (np.concatenate([X, X[take]]), np.concatenate([y, y[take]]),
            np.concatenate([w, np.zeros(pad, dtype=np.float32)]))


PRETRAIN_OPTIONS = frozenset({"epochs", "mask_rate", "learning_rate"})


class ZooClassifier(ClassifierMixin, BaseEstimator):
    """Binary classifier training a zoo model (logits, ``from_logits=True`` loss).

    Args:
        model: zoo name, ``family:preset`` (``amu:small``, ``amu-ft:base``, ``cnn:paper``).
        epochs: maximum epochs (early stopping usually ends sooner).
        batch_size: minibatch size (global batch under a distribution strategy).
        learning_rate: base learning rate.
        optimizer: ``"adam"`` or ``"adamw"``.
        weight_decay: decoupled weight decay (None: 0 for adam, 1e-4 for adamw, the
            paper code's L2 strength).
        schedule: None (constant rate) or ``"two_step"`` (the paper's two-step decay:
            x0.1 at 50% and again at 75% of the planned steps; see ``schedules.py``).
        patience: early-stopping patience in epochs (on the inner validation loss).
        validation_fraction: share of the training rows held out (stratified) for early
            stopping and the threshold; 0 trains on all rows for ``epochs`` epochs and
            takes the threshold from in-sample predictions.
        balance: ``"upsample"`` (inner train rows only), ``"class_weight"`` or None.
        threshold: ``"youden"`` or a fixed probability in (0, 1).
        strategy: ``"default"``, ``"mirrored"``, another name known to
            ``amu_tf.training.distribution_strategy.get_strategy``, or a ``tf.distribute.Strategy``.
        seed: seeds the split, the upsampling, weight init, dropout and shuffling.
        deterministic: turn on TensorFlow op determinism for repeatable runs.
        verbose: 0 silent, 1 a tqdm bar over epochs, 2 Keras's one line per epoch.
        model_overrides: dict of config overrides for the zoo model (e.g. ``dropout``).
        recipe: None, a name in ``amu_tf.training.recipes.RECIPES`` (``"paper"``,
            ``"fast"``) or a dict of params: its values replace every training parameter
            left at its default; parameters given explicitly win. The values used are in
            ``params_used_`` after ``fit``.
        backup_dir: None, or a folder for ``keras.callbacks.BackupAndRestore`` (one
            sub-folder per worker in a cluster): a killed or preempted ``fit`` started
            again with the same arguments resumes from its last finished epoch.
        pretrain: None, or a dict of :func:`~amu_tf.training.masked_gene_pretraining.
            pretrain_masked_genes` options (``epochs``, ``mask_rate``, ``learning_rate``):
            before the supervised fit, the gene embedding and encoders are pre-trained by
            masked-gene reconstruction on the expression of the training rows and of the
            ``unlabeled`` rows given to ``fit`` (never a label). AMU families only.
        encoder_lr_scale: COMPASS models (``amu:compass``) only: the pre-trained encoder's
            learning rate as a fraction of the head's (:class:`~amu_tf.training.
            layerwise_adam.LayerwiseAdam`). Their input is COMPASS's genes
            (:meth:`make_input_transform`), not the run's panel transform.
    """

    def __init__(
        self,
        model="amu:small",
        epochs=100,
        batch_size=32,
        learning_rate=1e-3,
        optimizer="adam",
        weight_decay=None,
        schedule=None,
        patience=10,
        validation_fraction=0.2,
        balance="upsample",
        threshold="youden",
        strategy="default",
        seed=0,
        deterministic=True,
        verbose=0,
        model_overrides=None,
        recipe=None,
        backup_dir=None,
        pretrain=None,
        encoder_lr_scale=0.1,
    ):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.balance = balance
        self.threshold = threshold
        self.strategy = strategy
        self.seed = seed
        self.deterministic = deterministic
        self.verbose = verbose
        self.model_overrides = model_overrides
        self.recipe = recipe
        self.backup_dir = backup_dir
        self.pretrain = pretrain
        self.encoder_lr_scale = encoder_lr_scale

    def _is_compass(self) -> bool:
        from amu_tf.models.zoo import parse_model_name

        try:
            return parse_model_name(str(self.model))[0] == "compass"
        except ValueError:
            return False

    @available_if(lambda self: self._is_compass())
    def make_input_transform(self):
        """COMPASS models read COMPASS's genes (log2 TPM + 1, min-max per cohort), not the
        run's 160-gene panel transform."""
        from amu_tf.data.transforms.compass_input_transform import CompassInputTransform
        from amu_tf.models.zoo import ZOO, parse_model_name

        family, preset = parse_model_name(self.model)
        return CompassInputTransform(genes=ZOO[family][0].presets[preset]["config"].get(
            "input_genes"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # two logits: non-responder, responder
        return tags

    # ------------------------------------------------------------------ helpers
    def _p(self, name):
        """The value of training parameter ``name`` after applying ``recipe``."""
        if self.recipe is None:
            return getattr(self, name)
        import inspect

        from amu_tf.training.recipes import resolve_params

        defaults = {k: v.default for k, v in
                    inspect.signature(type(self).__init__).parameters.items() if k != "self"}
        return resolve_params(self.recipe, self.get_params(deep=False), defaults)[name]

    def _check_overrides(self):
        """``model_overrides``: a mapping whose keys the model's preset config or constructor
        knows (and, for COMPASS, a readout it has), so a typo fails before any work."""
        import inspect

        from amu_tf.models.zoo import ZOO, parse_model_name

        ov = self.model_overrides
        if ov is None:
            return
        if not isinstance(ov, dict):
            raise ValueError("model_overrides must map config keys to values, e.g. --param "
                             f"'model_overrides={{\"dropout\": 0.2}}', got {ov!r}")
        family, preset = parse_model_name(self.model)
        cls = ZOO[family][0]
        known = set(cls.presets[preset]["config"]) | {
            k for k, p in inspect.signature(cls.__init__).parameters.items()
            if k != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        unknown = sorted(set(ov) - known)
        if unknown:
            raise ValueError(f"model_overrides: {self.model} has no config key "
                             f"{', '.join(map(repr, unknown))}; it has "
                             f"{', '.join(sorted(known))}")
        if family == "compass" and "readout" in ov and ov["readout"] not in ("patient", "mean"):
            raise ValueError(f"model_overrides: readout must be 'patient' or 'mean', got "
                             f"{ov['readout']!r}")

    def _model_config(self) -> dict:
        from amu_tf.models.zoo import ZOO, parse_model_name

        family, preset = parse_model_name(self.model)
        config = dict(ZOO[family][0].presets[preset]["config"])
        config.update(self.model_overrides or {})
        if "encoder_config" in config:  # a COMPASS model: its width is the encoder's
            config.setdefault("n_genes", config["encoder_config"]["n_genes"])
        return config

    def check_params(self):
        """Raise ValueError naming the first training parameter of the wrong type or range
        (the CLI calls it before any work; ``fit`` calls it first)."""
        self._check_params()

    def _check_params(self):
        def number(name, low, low_ok, integer):
            v = self._p(name)
            ok_type = (isinstance(v, int) if integer else isinstance(v, (int, float)))
            if isinstance(v, bool) or not ok_type or not (v >= low if low_ok else v > low):
                kind = "an integer" if integer else "a number"
                bound = f">= {low}" if low_ok else f"> {low}"
                raise ValueError(f"{name} must be {kind} {bound}, got {v!r}")

        number("epochs", 1, True, True)
        number("batch_size", 1, True, True)
        number("encoder_lr_scale", 0, True, False)  # < 0: gradient ascent on the encoder
        self._check_overrides()
        number("patience", 0, True, True)
        number("learning_rate", 0, False, False)
        if self._p("weight_decay") is not None:
            number("weight_decay", 0, True, False)
        optimizer, schedule, balance = (self._p(k) for k in ("optimizer", "schedule", "balance"))
        if optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {optimizer!r}")
        if schedule not in (None, "two_step"):
            raise ValueError(f"schedule must be None or 'two_step', got {schedule!r}")
        if balance not in (None, "upsample", "class_weight"):
            raise ValueError(
                f"balance must be 'upsample', 'class_weight' or None, got {balance!r}"
            )
        frac = self._p("validation_fraction")
        if not (frac is None or (isinstance(frac, (int, float)) and not isinstance(frac, bool)
                                 and 0 <= frac < 1)):
            raise ValueError("validation_fraction must be in [0, 1)")
        if self.pretrain is not None:
            unknown = set(dict(self.pretrain)) - PRETRAIN_OPTIONS
            if unknown:
                raise ValueError(f"unknown pretrain option(s) {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(sorted(PRETRAIN_OPTIONS))}")
            if not str(self.model).startswith("amu"):
                raise ValueError("pretrain (masked-gene reconstruction) needs a gene "
                                 f"embedding: amu or amu-ft models, not {self.model!r}")
        if self.threshold != "youden" and not (
            isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1
        ):
            raise ValueError("threshold must be 'youden' or a probability in (0, 1)")

    def _make_optimizer(self, total_steps: int, model=None):
        import keras

        from amu_tf.training.schedules import two_step_decay

        lr = float(self._p("learning_rate"))
        if self._p("schedule") == "two_step":
            lr = two_step_decay(float(self._p("learning_rate")), total_steps)
        if model is not None and hasattr(model, "encoder") and self._is_compass():
            from amu_tf.training.layerwise_adam import LayerwiseAdam

            wd = self._p("weight_decay")
            if self._p("optimizer") == "adamw" and wd is None:
                wd = 1e-4
            scale = float(self.encoder_lr_scale)
            return LayerwiseAdam(
                multipliers={v.path: scale for v in model.encoder.trainable_variables},
                learning_rate=lr, weight_decay=wd or 0.0)
        if self._p("optimizer") == "adamw":
            wd = 1e-4 if self._p("weight_decay") is None else self._p("weight_decay")
            return keras.optimizers.AdamW(learning_rate=lr, weight_decay=wd)
        wd = self._p("weight_decay")
        return keras.optimizers.Adam(learning_rate=lr, weight_decay=wd or None)

    def _inner_split(self, y01, groups=None):
        """Positions of the inner train and inner validation rows (stratified, seeded; with
        ``groups``, one patient's samples all fall on the same side)."""
        n = len(y01)
        frac = self._p("validation_fraction") or 0
        if frac == 0:
            return np.arange(n), np.array([], dtype=int)
        needed = max(2, math.ceil(1 / frac))
        what = f"the inner validation split (validation_fraction={frac})"
        check_per_class(y01, self.classes_, needed, what)
        if groups is None:
            sss = StratifiedShuffleSplit(n_splits=1, test_size=frac, random_state=self.seed)
            tr, va = next(sss.split(np.zeros(n), y01))
        else:
            groups = np.asarray(groups)
            if len(groups) != n:
                raise InputDataError(f"groups has {len(groups)} entries for {n} rows")
            k = max(2, int(round(1 / frac)))
            if len(np.unique(groups)) < k:
                raise InputDataError(
                    f"too few patients for {what}: need at least {k}, got "
                    f"{len(np.unique(groups))}"
                )
            sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=self.seed)
            tr, va = next(sgkf.split(np.zeros(n), y01, groups))
            if len(np.unique(y01[va])) < 2:
                raise InputDataError(
                    f"too few patients per class for {what}: the grouped validation part "
                    "has a single class"
                )
        return np.sort(tr), np.sort(va)

    @property
    def wants_unlabeled(self) -> bool:
        """Whether ``fit`` reads ``unlabeled`` expression (for pre-training)."""
        return self.pretrain is not None

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X, y, groups=None, unlabeled=None):
        """Train on ``X`` (n, n_genes) and ``y``; ``groups`` (e.g. patient ids) keeps each
        group on one side of the inner validation split; ``unlabeled`` (m, n_genes), used
        only with ``pretrain``, adds rows without labels to the pre-training."""
        import keras

        from amu_tf.models.zoo import build_model

        self._check_params()
        config = self._model_config()
        X, self.classes_, y01 = fit_input(self, X, y, n_features=config.get("n_genes", 160))
        check_per_class(y01, self.classes_, 2, "training")

        tr, va = self._inner_split(y01, groups)
        if self._p("balance") == "upsample":
            tr_fit = upsample_indices(y01, rows=tr, random_state=self.seed)
        else:
            tr_fit = np.random.default_rng(self.seed).permutation(tr)
        self.inner_train_indices_ = tr_fit
        self.inner_val_indices_ = va

        class_weight = None
        if self._p("balance") == "class_weight":
            counts = np.bincount(y01[tr], minlength=2)
            class_weight = {c: len(tr) / (2.0 * counts[c]) for c in range(2)}

        tensorflow = keras.backend.backend() == "tensorflow"
        if tensorflow:
            import tensorflow as tf

            if self.verbose < 2:  # Keras's per-model retracing notes are noise here
                tf.get_logger().setLevel("ERROR")
            if self.deterministic:
                tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(int(self.seed))
        if str(self.model).startswith("amu") and tensorflow:
            # build the attention kernel now (once per machine), not under the progress bar
            # (a TensorFlow op: never attempted under another Keras backend)
            from amu_tf.kernels import tiny_attention as attention_kernel

            attention_kernel.available()
        steps_per_epoch = math.ceil(len(tr_fit) / self._p("batch_size"))
        # tf.distribute under TensorFlow; keras.distribution.DataParallel over the devices
        # JAX sees under JAX (None: one device)
        strategy = resolve_strategy(self.strategy) if tensorflow else None
        distribution = None if tensorflow else data_parallel(self.strategy)
        self.devices_ = (num_replicas(strategy) if tensorflow
                         else len(distribution.device_mesh.devices.ravel()) if distribution
                         else 1)
        if distribution is not None and self._p("batch_size") % self.devices_:
            raise ValueError(f"batch_size {self._p('batch_size')} does not split evenly over "
                             f"{self.devices_} devices; use a multiple of {self.devices_}")
        with contextlib.ExitStack() as scope:
            scope.enter_context(strategy.scope() if tensorflow else
                                distribution.scope() if distribution else
                                contextlib.nullcontext())
            model = build_model(self.model, **(self.model_overrides or {}))
            model.compile(
                optimizer=self._make_optimizer(steps_per_epoch * self._p("epochs"), model),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            self.pretraining_ = None
            if self.pretrain is not None:
                from amu_tf.training.masked_gene_pretraining import pretrain_masked_genes

                rows = X if unlabeled is None else np.concatenate(
                    [X, check_X(unlabeled, X.shape[1], name="unlabeled")])
                self.pretraining_ = pretrain_masked_genes(
                    model, rows, batch_size=self._p("batch_size"), seed=self.seed,
                    multiple=self.devices_ if distribution else 1, **dict(self.pretrain))
            if not tensorflow:  # the trainer of another backend runs under the distribution
                hist, self.fit_seconds_ = self._fit_model(model, X, y01, tr_fit, va,
                                                          class_weight, None)
        if tensorflow:
            hist, self.fit_seconds_ = self._fit_model(model, X, y01, tr_fit, va, class_weight,
                                                      strategy)
        self.model_ = model
        self.params_used_ = {k: self._p(k) for k in (
            "epochs", "batch_size", "learning_rate", "optimizer", "weight_decay", "schedule",
            "patience", "validation_fraction", "balance")}
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.epochs_run_ = len(self.history_.get("loss", []))
        if len(va):
            self.best_epoch_ = int(np.argmin(self.history_["val_loss"])) + 1
        else:
            self.best_epoch_ = self.epochs_run_

        if self.threshold != "youden":
            self.threshold_, self.threshold_method_ = float(self.threshold), "fixed"
        elif len(va):
            rows, self.threshold_method_ = va, "youden_inner_val"
        else:
            rows, self.threshold_method_ = tr, "youden_train"
        if self.threshold == "youden":
            p = self.predict_proba(X[rows])[:, 1]
            self.threshold_ = youden_threshold(y01[rows], p)
            self.threshold_margin_ = threshold_margin(p, self.threshold_)
        else:
            self.threshold_margin_ = None
        return self

    def _fit_model(self, model, X, y01, tr_fit, va, class_weight, strategy):
        """``model.fit`` on the inner train rows with early stopping on the inner validation
        rows; ``strategy`` is the tf.distribute strategy (None under other backends)."""
        import keras

        callbacks = []
        validation_data = None
        if len(va):
            validation_data = (X[va], y01[va])
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=self._p("patience"),
                    restore_best_weights=True,
                )
            )
        if self.verbose == 1:
            from tqdm.keras import TqdmCallback  # one bar over the epochs, with the losses

            callbacks.append(TqdmCallback(epochs=self._p("epochs"), verbose=0,
                                          desc=f"train {self.model}", leave=False))
        replicas = 1
        sync_bn = contextlib.nullcontext()
        if strategy is not None:
            from amu_tf.training.chief_output import backup_callback
            from amu_tf.training.distributed_dataset import make_dataset
            from amu_tf.training.distribution_strategy import synchronized_batch_norm

            replicas = num_replicas(strategy)
            sync_bn = synchronized_batch_norm(model, strategy)
            if self.backup_dir is not None:  # resume a killed or preempted fit
                callbacks.append(backup_callback(self.backup_dir, strategy))
        elif self.backup_dir is not None:
            callbacks.append(keras.callbacks.BackupAndRestore(backup_dir=str(self.backup_dir)))
        if replicas > 1:
            # Several replicas (GPUs or workers): a tf.data pipeline sharded by the strategy.
            # ``batch_size`` stays the global batch; every worker draws the same seeded order
            # and keeps its share of each batch. (One replica keeps Keras's array adapter,
            # whose order every strategy reproduces; under op determinism TensorFlow 2.21
            # logs an ERROR-level ``use_unbounded_threadpool`` line for its parallel map,
            # harmless, which the CLI hides unless --verbose.)
            per_replica = max(1, self._p("batch_size") // replicas)
            fit_data = dict(x=make_dataset(X[tr_fit], y01[tr_fit], per_replica, strategy,
                                           shuffle=True, seed=self.seed), shuffle=False)
            if validation_data is not None:
                validation_data = make_dataset(*validation_data, per_replica, strategy)
        elif self.devices_ > 1:
            # keras.distribution.DataParallel splits every batch evenly across the devices:
            # the batch must divide, and the rows are padded to a multiple of the devices
            # with rows of weight 0 (no gradient of their own; the batch holding them has its
            # loss divided by its padded size, so its step is a little smaller)
            m, batch = self.devices_, self._p("batch_size")
            x_fit, y_fit, w_fit = _pad_rows(X[tr_fit], y01[tr_fit], m, class_weight)
            class_weight = None
            fit_data = dict(x=x_fit, y=y_fit, sample_weight=w_fit, batch_size=batch,
                            shuffle=True)
            if validation_data is not None:
                validation_data = _pad_rows(*validation_data, m)
        else:
            fit_data = dict(x=X[tr_fit], y=y01[tr_fit], batch_size=self._p("batch_size"),
                            shuffle=True)
        t0 = time.perf_counter()
        # BatchNorm statistics over the global batch, so every replica ends identical
        with sync_bn:
            hist = model.fit(
                **fit_data,
                validation_data=validation_data,
                epochs=self._p("epochs"),
                class_weight=class_weight,
                callbacks=callbacks,
                verbose=2 if self.verbose == 2 else 0,
            )
        return hist, time.perf_counter() - t0

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this ZooClassifier is not fitted yet; call fit first")

    def decision_logits(self, X) -> np.ndarray:
        """The model's raw (n, 2) logits."""
        self._check_fitted()
        X = predict_input(self, X)
        if len(X) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        # direct calls in chunks: no predict-function retracing per array size
        chunks = [np.asarray(self.model_(X[i:i + 1024], training=False))
                  for i in range(0, len(X), 1024)]
        return np.concatenate(chunks).astype(np.float32)

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the logits, (n, 2), columns in ``classes_`` order."""
        from scipy.special import softmax

        return softmax(self.decision_logits(X).astype(np.float64), axis=1)

    def predict(self, X) -> np.ndarray:
        """Class labels at the frozen ``threshold_`` on the positive-class probability."""
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p >= self.threshold_).astype(int)]

    # ------------------------------------------------------------------ persistence
    def _params_json(self) -> dict:
        params = self.get_params()
        if not isinstance(params["strategy"], (str, type(None))):
            params["strategy"] = type(params["strategy"]).__name__
        if params.get("backup_dir") is not None:
            params["backup_dir"] = str(params["backup_dir"])
        return params

    def save(self, directory) -> Path:
        """Write ``model.keras`` and ``zoo_classifier.json`` (params + learned attributes)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model_.save(directory / MODEL_FILE)
        state = {
            "params": self._params_json(),
            "classes_": self.classes_.tolist(),
            "n_features_in_": int(self.n_features_in_),
            "threshold_": float(self.threshold_),
            "threshold_method_": self.threshold_method_,
            "history_": self.history_,
            "best_epoch_": int(self.best_epoch_),
            "epochs_run_": int(self.epochs_run_),
            "fit_seconds_": float(self.fit_seconds_),
            "n_inner_train_": int(len(self.inner_train_indices_)),
            "n_inner_val_": int(len(self.inner_val_indices_)),
            "pretraining_": getattr(self, "pretraining_", None),
        }
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory) -> "ZooClassifier":
        """Read a classifier written by :meth:`save` (the Keras model is not compiled)."""
        import keras

        import amu_tf.models  # noqa: F401  (registers the zoo classes)

        from amu_tf.errors import ArtifactError

        directory = Path(directory)
        if not (directory / STATE_FILE).is_file() or not (directory / MODEL_FILE).is_file():
            raise ArtifactError(f"{directory} has no {MODEL_FILE} + {STATE_FILE}")
        state = json.loads((directory / STATE_FILE).read_text())
        est = cls(**state["params"])
        est.model_ = keras.saving.load_model(directory / MODEL_FILE, compile=False)
        est.classes_ = np.asarray(state["classes_"])
        for key in ("n_features_in_", "threshold_", "threshold_method_", "history_",
                    "best_epoch_", "epochs_run_", "fit_seconds_"):
            setattr(est, key, state[key])
        est.pretraining_ = state.get("pretraining_")
        return est
