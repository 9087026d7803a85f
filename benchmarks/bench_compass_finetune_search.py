"""A fine-tuning search for ``amu:compass`` on a GPU (issue #23): does COMPASS's pre-trained
encoder, fine-tuned under a small head on the other melanoma cohorts (and optionally the
labeled non-melanoma cohorts, each with its own cancer-type token), transfer to a melanoma
cohort it never saw?

Three steps, the middle one on the GPU machine (JAX; no TensorFlow needed there):

    # 1. here: the encoder inputs of every labeled patient and the converted weights
    .venv/bin/python benchmarks/bench_compass_finetune_search.py prepare \\
        --table runs/shared/cohort --auxiliary runs/shared/pancancer \\
        --out .gpu_data/compass_search.npz
    # 2. on the GPU machine (keras, namex and optree carried as wheels):
    KERAS_BACKEND=jax python3 benchmarks/bench_compass_finetune_search.py search \\
        --data .gpu_data/compass_search.npz --out $OUT --deadline 420
    # 3. here: per configuration, the seed-averaged LOCO predictions, compared paired
    .venv/bin/python benchmarks/bench_compass_finetune_search.py report \\
        --predictions <search's predictions.csv> --others runs/loco_predictions.csv \\
        [--control <the --encoder-lr-scale 0 run's predictions.csv>]

**The design, fixed before the run** (nothing below is chosen by looking at a held-out
cohort):

- outer leave-one-cohort-out over the four shared melanoma cohorts; the held-out cohort's
  rows enter only the final prediction;
- 8 configurations (the first grid): readout (the encoded patient token, or the mean gene token) x encoder
  (frozen, or fine-tuned at 0.1 x the head's learning rate, the zoo's ``encoder_lr_scale``)
  x training rows (the three other melanoma cohorts, or those plus every labeled patient of
  the non-melanoma cohorts of ``cohorts_pancancer`` with its TCGA cancer-type token);
- the readout's channels standardised within each cohort (expression only; the held-out
  cohort on its own rows, as the probe's cohort z-score): unscaled, the readouts barely vary
  between patients, which kept the zoo model's head at the prior (sd of its probabilities
  below 0.001). Frozen, by the encoder's mean and sd over each cohort's rows; fine-tuned,
  under the current weights: in training within each batch, every batch holding one
  cohort's rows; for early stopping over each training cohort's rows; for the prediction
  over the held-out cohort's rows. (The first run fixed the frozen encoder's statistics
  during fine-tuning too; within a cohort the readouts' sd is a few thousandths (about 1% of
  their value), so a few steps of weight drift moved whole cohorts by 5-13 sd and that run's fine-tuned figures measured the
  drift, not fine-tuning: withdrawn, see ``results_compass_finetune_search.md``.)
- the head of ``amu:compass``: Dense(16, ReLU) -> Dropout(0.1) -> Dense(1); Adam, learning
  rate 1e-3, batch 16, class-balanced loss weights on the inner training rows;
- early stopping on the loss of an inner validation part (20% of the training rows,
  stratified by cohort and label, drawn per seed), patience 6, at most 30 epochs, best
  weights restored (the first trained epoch always counts, as Keras's
  ``restore_best_weights``);
- a follow-up, fixed after the grid above had run (its summary tokens carried no signal)
  and before it ran: the ``geneset`` readout, each of COMPASS's 132 gene sets' mean gene
  token averaged over its channels (the probe's gene-set ``mean`` features, the level at
  which the frozen encoder does carry signal), with the same head, encoder modes and rows
  (4 more configurations, ``geneset-*``);
- a control for the fine-tuned path: ``--encoder-lr-scale 0`` keeps the encoder fixed
  but trains as the fine-tuned configurations do (batch-wise z-scores over 9-16 rows of one
  cohort, noisier than the frozen path's whole-cohort ones), so fine-tuned minus this
  control is the effect of the encoder's updates. With the encoder's learning rate 0 its
  weights never move (Adam's step is 0 x a finite number), so the control takes each
  patient's readout from one frozen pass instead of running the encoder at every step: the
  same batches, z-scores, head and seeds, the same figures up to float rounding, in minutes on
  a CPU (``--control-by-encoder`` runs the encoder at every step, the reference this
  shortcut was checked against, see ``results_compass_finetune_search.md``);
- 5 seeds per configuration, trained side by side (``jax.vmap``): the seed draws the head's
  initial weights, the inner split, the batch order and the dropout masks;
- per configuration, the figures reported are the mean over the 5 seeds of the held-out AUC
  and the AUC of the seed-averaged probability; none of the 12 is picked afterwards as "the"
  result (picking the best of 12 on the held-out cohorts would be selection on the test set).

Encoder inputs are the project's :class:`CompassInputTransform` (min-max per cohort, no
labels), computed here; the weights are the converted pre-trained encoder's. The search
writes ``predictions.csv`` (configuration, held-out cohort, sample, label, seed,
probability) and ``search_log.txt`` (timings, epochs run) under ``--out``, one
configuration at a time, so a run stopped by its deadline keeps what it finished.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MELANOMA = ["GSE78220", "GSE91061_pre", "Liu2019", "Markovits2023_PD1"]
READOUTS = ["patient", "mean", "geneset"]
ENCODERS = ["frozen", "finetune"]
TRAINSETS = ["melanoma", "pancancer"]


# ---------------------------------------------------------------------------------------
# 1. prepare (here, with the project's environment)
def prepare(a):
    import pandas as pd

    from amu_tf.data.cohort_table import read_table
    from amu_tf.data.compass_concepts import _default_tables
    from amu_tf.data.transforms.compass_input_transform import CompassInputTransform
    from amu_tf.models.compass_encoder import CompassEncoder
    from amu_tf.utils.transformers.convert_compass import load_compass_assets
    from bench_compass_generalisation import PANCANCER_TYPES

    codes = load_compass_assets()["cancer_codes"]
    parts = []
    mel = read_table(a.table)
    mel = mel[mel["response"].notna() & mel["cohort"].isin(MELANOMA)]
    parts.append((mel, {c: "SKCM" for c in MELANOMA}, True))
    if a.auxiliary:
        aux = read_table(a.auxiliary)
        aux = aux[aux["response"].notna() & aux["cohort"].isin(PANCANCER_TYPES)]
        parts.append((aux, PANCANCER_TYPES, False))
    xs, rows = [], []
    for table, types, is_mel in parts:
        # per-cohort min-max, fitted on each cohort's own labeled rows (expression only)
        x = CompassInputTransform().fit(table).transform(table)
        xs.append(x)
        rows.append(pd.DataFrame({
            "sample": table["sample"].astype(str).to_numpy(),
            "cohort": table["cohort"].astype(str).to_numpy(),
            "y": table["response"].to_numpy(int),
            "code": [int(codes[types[c]]) for c in table["cohort"]],
            "melanoma": is_mel}))
    info = pd.concat(rows, ignore_index=True)
    x = np.concatenate(xs).astype(np.float32)
    weights = CompassEncoder.from_preset("compass").get_weights()
    members = _default_tables()["geneset_members"]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, x=x, code=info["code"].to_numpy(np.int32), y=info["y"].to_numpy(np.int32),
             melanoma=info["melanoma"].to_numpy(bool),
             sample=info["sample"].to_numpy(str), cohort=info["cohort"].to_numpy(str),
             gs_idx=np.concatenate([np.asarray(m, np.int32) for m in members]),
             gs_ptr=np.cumsum([0] + [len(m) for m in members]).astype(np.int32),
             n_weights=len(weights), **{f"w{i}": w for i, w in enumerate(weights)})
    by = info.groupby("cohort")["y"].agg(["size", "sum"])
    print(f"wrote {a.out}: {len(info)} labeled patients, {x.shape[1]} genes, "
          f"{len(weights)} weight arrays\n{by.to_string()}")


# ---------------------------------------------------------------------------------------
# 2. search (JAX, any device)
def _stratified_val(cohort, y, rows, frac, rng):
    """Inner validation positions (into ``rows``): ``frac`` of each (cohort, label) cell."""
    val = []
    keys = np.array([f"{c}|{v}" for c, v in zip(cohort[rows], y[rows])])
    for k in np.unique(keys):
        pos = np.flatnonzero(keys == k)
        n = int(round(frac * len(pos)))
        if len(pos) >= 2 and n == 0:
            n = 1
        val.extend(rng.choice(pos, size=min(n, len(pos) - 1), replace=False))
    val = np.sort(np.asarray(val, int))
    return rows[np.setdiff1d(np.arange(len(rows)), val)], rows[val]


def search(a):
    # the configurations to run, checked before anything is loaded
    order = [f"{r}-{e}-{t}" for e in ENCODERS for t in TRAINSETS for r in READOUTS]
    if a.configs:   # the configurations asked for, in the order asked (most wanted first)
        asked = list(dict.fromkeys(c.strip() for c in a.configs.split(",") if c.strip()))
        unknown = [c for c in asked if c not in order]
        if unknown or not asked:
            raise SystemExit(f"unknown configurations: {', '.join(unknown) or a.configs!r}")
        order = asked
    if a.control_by_encoder and a.encoder_lr_scale != 0:
        raise SystemExit("--control-by-encoder applies to the control, --encoder-lr-scale 0")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import jax.numpy as jnp
    import keras
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from amu_tf.data.compass_concepts import pooling_matrix
    from amu_tf.models.compass_encoder import CompassEncoder

    # float32 matrix products in full precision on GPUs too (JAX's default there is TF32),
    # so a GPU run computes what the CPU run computes
    jax.config.update("jax_default_matmul_precision", "highest")
    t_start = time.perf_counter()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "search_log.txt", "a")

    def log(msg):
        line = f"[{time.perf_counter() - t_start:7.1f}s] {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    D = np.load(a.data, allow_pickle=False)
    X_np, C_np, Y_np = D["x"], D["code"], D["y"]
    cohort, sample, is_mel = D["cohort"].astype(str), D["sample"].astype(str), D["melanoma"]
    if a.smoke:   # a few patients of each melanoma cohort and one auxiliary cohort
        keep = []
        for c in MELANOMA + sorted(set(cohort[~is_mel]))[:1]:
            for v in (0, 1):
                keep.extend(np.flatnonzero((cohort == c) & (Y_np == v))[:4])
        keep = np.sort(keep)
        X_np, C_np, Y_np = X_np[keep], C_np[keep], Y_np[keep]
        cohort, sample, is_mel = cohort[keep], sample[keep], is_mel[keep]
    log(f"devices {jax.devices()}; keras {keras.__version__}, jax {jax.__version__}; "
        f"{len(Y_np)} patients x {X_np.shape[1]} genes")

    enc = CompassEncoder.from_preset("compass", load_weights=False)
    enc.set_weights([D[f"w{i}"] for i in range(int(D["n_weights"]))])
    enc_tv0 = [jnp.asarray(v.value) for v in enc.trainable_variables]
    enc_ntv = [jnp.asarray(v.value) for v in enc.non_trainable_variables]
    X = jnp.asarray(X_np)
    C = jnp.asarray(C_np)
    Y = jnp.asarray(Y_np, jnp.float32)
    B, S = a.batch_size, a.seeds

    def encode(tv, x, c):
        tokens, _ = enc.stateless_call(tv, enc_ntv, {"expression": x, "cancer_type": c},
                                       training=False)
        return tokens

    # COMPASS's gene sets as a pooling matrix (rows average their member genes)
    gs_idx, gs_ptr = D["gs_idx"], D["gs_ptr"]
    POOL = jnp.asarray(pooling_matrix(
        [gs_idx[gs_ptr[i]:gs_ptr[i + 1]].tolist() for i in range(len(gs_ptr) - 1)],
        X_np.shape[1]))

    def readout(tokens, kind):
        if kind == "patient":
            return tokens[:, 0, :]
        if kind == "mean":
            return jnp.mean(tokens[:, 2:, :], axis=1)
        # each gene set's mean gene token, averaged over its channels (the probe's
        # gene-set `mean` readout): (batch, n_genesets)
        return jnp.einsum("sg,bgd->bs", POOL, tokens[:, 2:, :]) / tokens.shape[-1]

    # frozen readouts of every patient, once
    t0 = time.perf_counter()
    enc_fn = jax.jit(lambda x, c: (lambda t: tuple(readout(t, k) for k in READOUTS))(
        encode(enc_tv0, x, c)))
    H = {k: [] for k in READOUTS}
    for i in range(0, len(Y_np), B):
        idx = np.arange(i, i + B) % len(Y_np)
        n = min(B, len(Y_np) - i)
        for k, h in zip(READOUTS, enc_fn(X[idx], C[idx])):
            H[k].append(np.asarray(h)[:n])
    H = {k: np.concatenate(v) for k, v in H.items()}
    # the unstandardised readouts, for the control whose encoder never moves (see make_fns)
    H_raw = {k: jnp.asarray(v.copy()) for k, v in H.items()}
    # each readout channel standardised within its cohort by the frozen encoder's statistics
    # (expression only, the held-out cohort on its own rows, as the probe's cohort z-score):
    # unscaled, the readouts barely vary between patients (a head on them stays at the prior)
    for v in H.values():
        for c in np.unique(cohort):
            r = cohort == c
            sd = v[r].std(0)
            v[r] = (v[r] - v[r].mean(0)) / np.where(sd > 0, sd, 1.0)
    H = {k: jnp.asarray(v) for k, v in H.items()}
    log(f"frozen readouts of {len(Y_np)} patients: {time.perf_counter() - t0:.1f}s")

    def head_init(key, dim):
        k1, k2 = jax.random.split(key)
        g1 = np.sqrt(6.0 / (dim + 16))
        g2 = np.sqrt(6.0 / (16 + 1))
        return {"w1": jax.random.uniform(k1, (dim, 16), minval=-g1, maxval=g1),
                "b1": jnp.zeros(16),
                "w2": jax.random.uniform(k2, (16, 1), minval=-g2, maxval=g2),
                "b2": jnp.zeros(1)}

    def head_apply(p, h, key, train):
        z = jax.nn.relu(h @ p["w1"] + p["b1"])
        if train:
            keep = jax.random.bernoulli(key, 1.0 - a.dropout, z.shape)
            z = jnp.where(keep, z / (1.0 - a.dropout), 0.0)
        return (z @ p["w2"] + p["b2"])[:, 0]

    def bce(logit, y, w):
        ll = jnp.maximum(logit, 0) - logit * y + jnp.log1p(jnp.exp(-jnp.abs(logit)))
        return jnp.sum(w * ll) / jnp.maximum(jnp.sum(w), 1e-6)

    def batch_z(h, w):
        """Standardise each channel over the batch's real rows (``w > 0``): a fine-tuned
        batch holds one cohort's rows, so this is the within-cohort z-score under the
        encoder's current weights."""
        m = (w > 0).astype(h.dtype)[:, None]
        n = jnp.maximum(m.sum(), 1.0)
        mu = (m * h).sum(0) / n
        var = (m * (h - mu) ** 2).sum(0) / n
        return (h - mu) / jnp.sqrt(var + 1e-12)

    # the control (--encoder-lr-scale 0) never moves the encoder: its readouts are the
    # frozen pass's, looked up instead of recomputed at every step
    fixed_encoder = a.encoder_lr_scale == 0 and not a.control_by_encoder
    if fixed_encoder:
        log("encoder learning rate 0: the fine-tuned path reads the frozen pass's readouts")

    def make_fns(kind, finetune):
        def raw(params, idx):
            if fixed_encoder:
                return H_raw[kind][idx]
            return readout(encode(params["enc"], X[idx], C[idx]), kind)

        def features(params, idx, w):
            if finetune:
                return batch_z(raw(params, idx), w)
            return H[kind][idx]

        def loss(params, idx, w, key, train):
            logit = head_apply(params["head"], features(params, idx, w), key, train)
            return bce(logit, Y[idx], w)

        def step(params, opt, idx, w, key, lr_tree):
            g = jax.grad(loss)(params, idx, w, key, True)
            t = opt["t"] + 1
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, opt["m"], g)
            v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, opt["v"], g)
            c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
            new = jax.tree_util.tree_map(
                lambda p, m, v, lr: p - lr * (m / c1) / (jnp.sqrt(v / c2) + 1e-7),
                params, m, v, lr_tree)
            # a seed whose rows ran out this epoch (padding step: no real row) stands still
            active = jnp.sum(w) > 0
            keep = lambda n, o: jnp.where(active, n, o)     # noqa: E731
            return (jax.tree_util.tree_map(keep, new, params),
                    jax.tree_util.tree_map(keep, {"m": m, "v": v, "t": t}, opt))

        def head_loss(head, z, y, w):
            return bce(head_apply(head, z, None, False), y, w)

        def head_pred(head, z):
            return jax.nn.sigmoid(head_apply(head, z, None, False))

        v_step = jax.jit(jax.vmap(step, in_axes=(0, 0, 0, 0, 0, None)))
        v_raw = jax.jit(jax.vmap(raw, in_axes=(0, None))) if finetune else None
        v_head_loss = jax.jit(jax.vmap(head_loss))
        v_head_pred = jax.jit(jax.vmap(head_pred))
        return v_step, v_raw, v_head_loss, v_head_pred

    fns = {(k, f): make_fns(k, f == "finetune") for k in READOUTS for f in ENCODERS}

    def batches(pos_list, rng):
        """(S, steps, B) indices and 0/1 weights: each seed's rows shuffled, padded to one
        length."""
        n = max(len(p) for p in pos_list)
        steps = -(-n // B)
        idx = np.zeros((S, steps * B), np.int32)
        msk = np.zeros((S, steps * B), np.float32)
        for s, p in enumerate(pos_list):
            p = rng[s].permutation(p)
            idx[s, :len(p)] = p
            msk[s, :len(p)] = 1.0
        return idx.reshape(S, steps, B), msk.reshape(S, steps, B)

    def cohort_batches(pos_list, rng):
        """Like :func:`batches`, but each batch holds rows of one cohort only (each cohort's
        shuffled rows cut into near-equal parts of at most B, in shuffled order), so the
        fine-tuned readout can be standardised within its cohort batch by batch."""
        per_seed = []
        for s, p in enumerate(pos_list):
            parts = []
            for c in np.unique(cohort[p]):
                q = rng[s].permutation(p[cohort[p] == c])
                parts.extend(np.array_split(q, -(-len(q) // B)))
            per_seed.append([parts[i] for i in rng[s].permutation(len(parts))])
        steps = max(len(x) for x in per_seed)
        idx = np.zeros((S, steps, B), np.int32)
        msk = np.zeros((S, steps, B), np.float32)
        for s, parts in enumerate(per_seed):
            for k, q in enumerate(parts):
                idx[s, k, :len(q)] = q
                msk[s, k, :len(q)] = 1.0
        return idx, msk

    def features_by_cohort(kind, v_raw, params, positions):
        """(S, len(positions), dim): each seed's readout of these rows under its current
        weights, standardised within each cohort over the rows given (expression only)."""
        if v_raw is None:
            return np.broadcast_to(np.asarray(H[kind])[positions],
                                   (S, len(positions), H[kind].shape[1]))
        h = np.concatenate([np.asarray(v_raw(params, jnp.asarray(np.resize(
            positions[i:i + B], B))))[:, :min(B, len(positions) - i)]
            for i in range(0, len(positions), B)], axis=1)
        z = np.empty_like(h)
        for c in np.unique(cohort[positions]):
            r = cohort[positions] == c
            mu = h[:, r].mean(1, keepdims=True)
            z[:, r] = (h[:, r] - mu) / np.sqrt(h[:, r].var(1, keepdims=True) + 1e-12)
        return z

    pred_path = out / "predictions.csv"
    done = set()
    if pred_path.exists():
        old = pd.read_csv(pred_path, dtype={"cohort": str, "sample": str})
        done = set(zip(old["config"], old["cohort"]))
    for config in order:
        kind, enc_mode, trainset = config.split("-")
        v_step, v_raw, v_head_loss, v_head_pred = fns[(kind, enc_mode)]
        for held in MELANOMA:
            if (config, held) in done:
                continue
            if a.deadline and time.perf_counter() - t_start > a.deadline:
                log(f"deadline {a.deadline}s reached: {config} {held} not run")
                return
            t0 = time.perf_counter()
            rows = np.flatnonzero((cohort != held) & (is_mel | (trainset == "pancancer")))
            test = np.flatnonzero(cohort == held)
            rng = [np.random.default_rng([a.seed, s, MELANOMA.index(held)]) for s in range(S)]
            splits = [_stratified_val(cohort, Y_np, rows, 0.2, r) for r in rng]
            tr_list = [tr for tr, _ in splits]
            # each seed's validation rows as positions into `rows`, padded to one length
            where = {r: i for i, r in enumerate(rows)}
            n_val = max(len(va) for _, va in splits)
            val_pos = np.zeros((S, n_val), int)
            val_msk = np.zeros((S, n_val), np.float32)
            for s_, (_, va) in enumerate(splits):
                val_pos[s_, :len(va)] = [where[r] for r in va]
                val_msk[s_, :len(va)] = 1.0
            val_y = Y_np[rows][val_pos].astype(np.float32)
            cw = []   # class-balanced weights of each seed's inner training rows
            for tr in tr_list:
                n1 = Y_np[tr].sum()
                n0 = len(tr) - n1
                cw.append(np.where(Y_np == 1, len(tr) / (2 * max(n1, 1)),
                                   len(tr) / (2 * max(n0, 1))).astype(np.float32))
            cw = np.stack(cw)
            keys = jax.random.split(jax.random.PRNGKey(a.seed), S)
            head = jax.vmap(lambda k: head_init(k, H[kind].shape[1]))(keys)
            params = {"head": head}
            lr_tree = {"head": jax.tree_util.tree_map(lambda _: a.learning_rate, head)}
            if enc_mode == "finetune" and not fixed_encoder:
                params["enc"] = [jnp.broadcast_to(v, (S,) + v.shape) for v in enc_tv0]
                lr_tree["enc"] = [a.learning_rate * a.encoder_lr_scale for _ in enc_tv0]
            zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
            opt = {"m": zeros, "v": zeros, "t": jnp.zeros((S,), jnp.float32)}

            def val_loss(p):
                # the training cohorts' readouts under the current weights, standardised
                # within each cohort over all its training rows (no labels), then the
                # validation rows' loss
                z = features_by_cohort(kind, v_raw, p, rows)
                zv = np.take_along_axis(z, val_pos[:, :, None], 1)
                return np.asarray(v_head_loss(p["head"], jnp.asarray(zv),
                                              jnp.asarray(val_y), jnp.asarray(val_msk)))

            # as Keras's restore_best_weights: the first trained epoch always counts as best
            best = np.full(S, np.inf)
            best_params = params
            wait = np.zeros(S, int)
            stopped = np.zeros(S, bool)
            best_epoch = np.zeros(S, int)
            epochs = 0
            for epoch in range(1, a.epochs + 1):
                if enc_mode == "finetune":
                    idx, msk = cohort_batches(tr_list, rng)
                else:
                    idx, msk = batches(tr_list, rng)
                w = msk * np.take_along_axis(cw, idx.reshape(S, -1), 1).reshape(idx.shape)
                for k in range(idx.shape[1]):
                    keys = jax.vmap(lambda kk: jax.random.fold_in(kk, epoch * 10007 + k))(keys)
                    params, opt = v_step(params, opt, jnp.asarray(idx[:, k]),
                                         jnp.asarray(w[:, k]), keys, lr_tree)
                epochs = epoch
                vl = val_loss(params)
                better = (vl < best) & ~stopped
                best = np.where(better, vl, best)
                best_epoch = np.where(better, epoch, best_epoch)
                mask = jnp.asarray(better)
                best_params = jax.tree_util.tree_map(
                    lambda new, old: jnp.where(mask.reshape((-1,) + (1,) * (new.ndim - 1)),
                                               new, old), params, best_params)
                wait = np.where(better, 0, wait + 1)
                stopped |= wait >= a.patience
                if stopped.all():
                    break
            # the held-out cohort standardised on its own rows, under each seed's best weights
            zt = features_by_cohort(kind, v_raw, best_params, test)
            p = np.asarray(v_head_pred(best_params["head"], jnp.asarray(zt)))  # (S, n_test)
            y = Y_np[test]
            aucs = [roc_auc_score(y, p[s]) for s in range(S)]
            frame = pd.DataFrame({
                "config": config, "cohort": held,
                "sample": np.tile(sample[test], S), "y": np.tile(y, S),
                "seed": np.repeat(np.arange(S), len(test)), "p": p.reshape(-1)})
            frame.to_csv(pred_path, mode="a", index=False, header=not pred_path.exists())
            done.add((config, held))
            log(f"{config:28s} held out {held:18s} train {len(rows)} rows, {epochs} epochs "
                f"(best {best_epoch.tolist()}), AUC per seed "
                f"{' '.join(f'{v:.3f}' for v in aucs)}, mean {np.mean(aucs):.3f}, "
                f"seed-averaged {roc_auc_score(y, p.mean(0)):.3f}, sd of p "
                f"{float(np.mean(p.std(1))):.4f}; {time.perf_counter() - t0:.1f}s")
    log("search done")


# ---------------------------------------------------------------------------------------
# 3. report (here)
def report(a):
    import pandas as pd

    from amu_tf.evaluation.metrics import metrics_with_ci
    from bench_compass_generalisation import _auc, _paired
    from compass_finetune_pool import BIOMARKERS

    P = pd.read_csv(a.predictions, dtype={"cohort": str, "sample": str})
    key = ["config", "cohort", "sample", "seed"]
    if P.duplicated(key).any():
        raise SystemExit(f"{a.predictions}: a (configuration, cohort, sample, seed) appears "
                         "twice (two runs appended to one file?)")
    O = pd.read_csv(a.others, dtype={"cohort": str, "sample": str})
    lines = ["| configuration | " + " | ".join(MELANOMA) + " | pooled | pooled, ranks "
             "within cohort |", "|---" * (len(MELANOMA) + 3) + "|"]
    diffs = ["| configuration | against | " + " | ".join(MELANOMA) + " | pooled |",
             "|---" * (len(MELANOMA) + 3) + "|"]

    def other(model, rows):
        d = O[O["model"] == model].set_index(["cohort", "sample"])
        r = d.loc[list(zip(rows["cohort"], rows["sample"]))]
        if not (r["y"].to_numpy(int) == rows["y"].to_numpy(int)).all():
            raise SystemExit(f"{model}: labels differ")
        return r["p"].to_numpy(float)

    for config, g in P.groupby("config", sort=False):
        avg = g.groupby(["cohort", "sample"], sort=False).agg(y=("y", "first"),
                                                              p=("p", "mean")).reset_index()
        cells, dcells = [], {"best biomarker": [], "recipe:consensus": [],
                             "recipe:compass-published": []}
        for held in MELANOMA + ["pooled"]:
            r = avg if held == "pooled" else avg[avg["cohort"] == held]
            if r.empty:
                cells.append("")
                for k in dcells:
                    dcells[k].append("")
                continue
            y, p = r["y"].to_numpy(int), r["p"].to_numpy(float)
            m = metrics_with_ci(y, p, (p >= np.median(p)).astype(int), n_boot=a.n_boot,
                                seed=a.seed)["roc_auc"]
            seed_aucs = [] if held == "pooled" else [
                _auc(y, gg.set_index("sample").loc[r["sample"], "p"].to_numpy(float))
                for _, gg in g[g["cohort"] == held].groupby("seed")]
            mean_seed = f"; seeds {np.mean(seed_aucs):.3f}" if seed_aucs else ""
            cells.append(f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"
                         f"{mean_seed}")
            # the best of the eight biomarkers on these rows, picked with hindsight
            best = max(BIOMARKERS, key=lambda b: _auc(y, other(b, r)))
            for k, model in (("best biomarker", best), ("recipe:consensus", "recipe:consensus"),
                             ("recipe:compass-published", "recipe:compass-published")):
                d, lo, hi = _paired(y, p, other(model, r), a.n_boot, a.seed)
                tag = f" {best}" if k == "best biomarker" else ""
                dcells[k].append(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]{tag}")
        # pooled as the protocols pool (each fold's probabilities as they are: offsets between
        # the four separately trained folds count against it), and on each cohort's
        # percentile ranks (what the per-cohort AUCs alone would give, pooled)
        ranks = avg.groupby("cohort")["p"].rank(pct=True).to_numpy(float)
        yr = avg["y"].to_numpy(int)
        m = metrics_with_ci(yr, ranks, (ranks >= 0.5).astype(int), n_boot=a.n_boot,
                            seed=a.seed)["roc_auc"]
        cells.append(f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
        for k, v in dcells.items():
            diffs.append(f"| {config} | {k} | " + " | ".join(v) + " |")
    text = ("ROC AUC of the seed-averaged probability [95% CI]; seeds: the mean of the "
            "5 seeds' AUCs\n\n" + "\n".join(lines) + "\n\nPaired differences of the "
            "seed-averaged probability [95% CI]\n\n" + "\n".join(diffs) + "\n")
    if a.control:
        Q = pd.read_csv(a.control, dtype={"cohort": str, "sample": str})
        if Q.duplicated(key).any():
            raise SystemExit(f"{a.control}: a (configuration, cohort, sample, seed) appears "
                             "twice")
        text += "\n" + _against_control(P, Q, a)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


def _seed_averaged(frame):
    return frame.groupby(["config", "cohort", "sample"], sort=False).agg(
        y=("y", "first"), p=("p", "mean")).reset_index()


def _against_control(P, Q, a):
    """Fine-tuned minus its control (the same configuration run with
    ``--encoder-lr-scale 0``: the same path, seeds and batches, the encoder held fixed),
    paired on the same patients: the effect of the encoder's updates. A fold that either
    run lacks, or that the two ran on different patients or seeds, is marked "not run" or
    "incomplete" (never compared on an intersection), and the pooled cell is then
    "incomplete" too; a configuration without any control gets a row that says so."""
    from bench_compass_generalisation import _auc, _paired

    seeds = {k: set(g["seed"]) for k, g in P.groupby(["config", "cohort"])}
    seeds_c = {k: set(g["seed"]) for k, g in Q.groupby(["config", "cohort"])}
    P, Q = _seed_averaged(P), _seed_averaged(Q)
    out = ["Fine-tuned minus control (encoder held fixed), seed-averaged probabilities, "
           "paired [95% CI]; in brackets after each cohort's difference: fine-tuned / "
           "control AUC", "",
           "| configuration | " + " | ".join(MELANOMA) + " | pooled |",
           "|---" * (len(MELANOMA) + 2) + "|"]
    for config in P["config"].unique():
        p_, q_ = P[P["config"] == config], Q[Q["config"] == config]
        m = p_.merge(q_, on=["cohort", "sample"], suffixes=("", "_c"))
        if not (m["y"] == m["y_c"]).all():
            raise SystemExit(f"{config}: labels differ between the runs")
        cells, complete = [], True
        for held in MELANOMA + ["pooled"]:
            if held == "pooled":
                r = m
                if not complete:
                    cells.append("incomplete")
                    continue
            else:
                r = m[m["cohort"] == held]
                n_p, n_q = (p_["cohort"] == held).sum(), (q_["cohort"] == held).sum()
                if n_q == 0 or n_p == 0:
                    cells.append("not run")
                    complete = False
                    continue
                if not (len(r) == n_p == n_q
                        and seeds[(config, held)] == seeds_c[(config, held)]):
                    cells.append("incomplete (different patients or seeds)")
                    complete = False
                    continue
            y = r["y"].to_numpy(int)
            d, lo, hi = _paired(y, r["p"].to_numpy(float), r["p_c"].to_numpy(float),
                                a.n_boot, a.seed)
            cells.append(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}] ({_auc(y, r['p']):.3f} / "
                         f"{_auc(y, r['p_c']):.3f})")
        out.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--table", required=True)
    p.add_argument("--auxiliary", default=None)
    p.add_argument("--out", required=True)
    s = sub.add_parser("search")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seeds", type=int, default=5)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--epochs", type=int, default=30)
    s.add_argument("--patience", type=int, default=6)
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--learning-rate", type=float, default=1e-3)
    s.add_argument("--encoder-lr-scale", type=float, default=0.1)
    s.add_argument("--dropout", type=float, default=0.1)
    s.add_argument("--deadline", type=float, default=0,
                   help="seconds after which no new fold starts (0: none)")
    s.add_argument("--configs", default=None,
                   help="comma-separated, run in the order given, e.g. "
                        "geneset-finetune-melanoma,mean-frozen-melanoma (default: all 12)")
    s.add_argument("--smoke", action="store_true", help="8 patients a cohort: a quick check")
    s.add_argument("--control-by-encoder", action="store_true",
                   help="with --encoder-lr-scale 0, run the encoder at every step anyway "
                        "(the slow reference of the frozen-pass shortcut)")
    r = sub.add_parser("report")
    r.add_argument("--predictions", required=True)
    r.add_argument("--others", required=True)
    r.add_argument("--out", default=None)
    r.add_argument("--control", default=None,
                   help="the --encoder-lr-scale 0 run's predictions.csv: adds fine-tuned "
                        "minus control, paired")
    r.add_argument("--n-boot", type=int, default=1000)
    r.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    {"prepare": prepare, "search": search, "report": report}[a.cmd](a)


if __name__ == "__main__":
    main()
