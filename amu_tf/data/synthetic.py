"""The synthetic default cohort: seeded data in the real cohorts' published formats, with a
known, planted response signal, so the pipeline can be tested end to end against the truth.

Three cohorts (defaults):

* ``SYN_COUNTS`` (80 samples, 30% responders): GEO-style raw-count CSV, Entrez ids as rows,
  unnamed first column, 440 extra non-panel genes (so CPM is computed over a realistic
  library; the first of them are the published biomarkers' genes outside the panel, under
  their real symbols and Entrez ids, without a planted signal); library sizes vary ~lognormally per sample. Clinical ``samples.tsv`` with ``BOR``
  (CR/PR/SD/PD and one ``NE`` patient), OS/PFS in days with GSE91061's inverted
  ``OS_SOR``/``PFS_SOR`` flags (0 = event).
* ``SYN_TPM_A`` (70 samples, 50% responders): log2(TPM + 0.001), genes x samples TSV with a
  ``gene_symbol`` column; one panel gene is absent; clinical ``recist`` and OS in months.
* ``SYN_TPM_B`` (90 samples, 40% responders): log2(TPM + 0.001) with symbols; clinical
  ``BR`` column, OS/PFS in days with ``dead``/``progressed`` flags.

Model of expression (log2 TPM scale): gene g has a baseline mean and sd; its standardised
value is ``loading * sign * factor[module] + noise`` for module genes and pure noise for the
others. Six co-expression modules of 10-14 panel genes; module ``response`` (10 genes, 5
up- and 5 down-regulated in responders in pairs of equal amplitude, so that per-sample sums
carry no signal) has its factor at +effect/2 in responders and -effect/2 in non-responders
(in standard deviations) when ``signal=True``. Each cohort adds a batch effect: per-gene
shifts (sd 0.7 log2 units) and scales (lognormal, sd 0.2), and for counts a gene-length
factor and the library size. Survival depends on the response label (responders live
longer), with random censoring.

``generate_default_cohorts(out_dir)`` writes the files, one TOML spec per cohort (paths
relative to ``out_dir``) and ``synthetic_truth.json``; ``make_synthetic_table()`` returns the
same cohorts as one cohort table in memory (through the same conversion and clinical code).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf.data.clinical_reader import clinical_meta
from amu_tf.data.cohort_reader import assemble_cohort
from amu_tf.data.cohort_spec import CohortSpec
from amu_tf.data.expression_reader import expression_matrix
from amu_tf.data.gene_ids import entrez_ids
from amu_tf.panel import load_panel

TRUTH_FILE = "synthetic_truth.json"

# name, format, n samples, response rate
DEFAULT_COHORTS = (
    ("SYN_COUNTS", "counts", 80, 0.30),
    ("SYN_TPM_A", "log2tpm_recist", 70, 0.50),
    ("SYN_TPM_B", "log2tpm_br", 90, 0.40),
)
N_EXTRA_GENES = 440
MODULE_SIZES = (10, 14, 12, 12, 10, 12)  # the first one carries the response signal


def biomarker_panel_extras() -> list[str]:
    """The genes of the published biomarkers (TIDE aside) that the panel lacks."""
    from amu_tf.biomarkers import BIOMARKERS, biomarker_genes

    panel = set(load_panel()["symbol"])
    genes = dict.fromkeys(g for name in BIOMARKERS for g in biomarker_genes(name))
    return [g for g in genes if g not in panel]


def _simulate(seed=0, signal=True, n_per_cohort=None, effect=2.5, response_rates=None):
    """Everything in memory: per-cohort published-format frames, specs (dicts) and truth."""
    rng = np.random.default_rng(seed)
    panel = load_panel()
    symbols = panel["symbol"].tolist()
    entrez = panel["entrez_id"].astype(str).tolist()
    n_panel = len(symbols)
    extra_sym = [f"SYNX{i:04d}" for i in range(N_EXTRA_GENES)]
    extra_ent = [str(990000 + i) for i in range(N_EXTRA_GENES)]
    # the published biomarkers' genes outside the panel are real genes among the extras (real
    # symbols and Entrez ids, no planted signal), so the biomarker baselines run here too
    marker_genes = biomarker_panel_extras()
    extra_sym[: len(marker_genes)] = marker_genes
    extra_ent[: len(marker_genes)] = entrez_ids(marker_genes)
    all_sym = symbols + extra_sym
    all_ent = entrez + extra_ent
    n_genes = len(all_sym)

    # modules over panel genes
    order = rng.permutation(n_panel)
    modules, start = {}, 0
    module_of = np.full(n_genes, -1)
    for k, size in enumerate(MODULE_SIZES):
        idx = order[start : start + size]
        start += size
        modules["response" if k == 0 else f"module{k}"] = [symbols[i] for i in idx]
        module_of[idx] = k
    # extra genes join modules too (so CPM libraries co-vary realistically), mostly background
    extra_mod = rng.choice(np.arange(1, len(MODULE_SIZES)), size=N_EXTRA_GENES)
    extra_mod[rng.random(N_EXTRA_GENES) < 0.7] = -1
    module_of[n_panel:] = extra_mod
    loading = rng.uniform(0.6, 0.9, n_genes)
    sign = rng.choice([-1.0, 1.0], n_genes)
    resp_idx = order[: MODULE_SIZES[0]]
    sign[resp_idx] = np.array([1.0, -1.0] * (MODULE_SIZES[0] // 2) + [1.0] * (MODULE_SIZES[0] % 2))
    base_mean = rng.normal(4.0, 2.0, n_genes)
    base_sd = rng.uniform(0.5, 1.5, n_genes)
    # up/down pairs of the response module get equal means, amplitudes and batch effects, so
    # the planted signal cancels in per-sample sums and library shares (no row-sum "leak")
    up, down = resp_idx[0::2], resp_idx[1::2]
    loading[down], base_sd[down] = loading[up], base_sd[up]
    base_mean[resp_idx] = rng.uniform(5.0, 8.0, len(resp_idx))
    base_mean[down] = base_mean[up]
    gene_len = rng.lognormal(np.log(2000), 0.5, n_genes)
    # the gene dropped from SYN_TPM_A: a background panel gene
    background = [symbols[i] for i in order[sum(MODULE_SIZES):]]
    dropped = background[int(rng.integers(len(background)))]

    cohorts = []
    if n_per_cohort is None:
        ns = [c[2] for c in DEFAULT_COHORTS]
    elif isinstance(n_per_cohort, (int, np.integer)):
        ns = [int(n_per_cohort)] * len(DEFAULT_COHORTS)
    else:
        ns = [int(n) for n in n_per_cohort]
    rates = list(response_rates) if response_rates is not None else [c[3] for c in DEFAULT_COHORTS]
    truth_cohorts = {}
    for (name, fmt, _, _), n, rate in zip(DEFAULT_COHORTS, ns, rates):
        n_resp = int(round(rate * n))
        y = np.zeros(n)
        y[:n_resp] = 1
        rng.shuffle(y)
        factors = rng.normal(size=(n, len(MODULE_SIZES)))
        if signal:
            factors[:, 0] += effect * (y - 0.5)  # symmetric: |factor| alike in both classes
        z = rng.normal(size=(n, n_genes))
        has_mod = module_of >= 0
        f = factors[:, np.clip(module_of, 0, None)]
        z[:, has_mod] = (
            loading[has_mod] * sign[has_mod] * f[:, has_mod]
            + np.sqrt(1 - loading[has_mod] ** 2) * z[:, has_mod]
        )
        shift = rng.normal(0.0, 0.7, n_genes)
        scale = rng.lognormal(0.0, 0.2, n_genes)
        shift[down], scale[down] = shift[up], scale[up]
        log2tpm = base_mean + shift + base_sd * scale * z  # samples x genes
        tpm_lin = np.exp2(log2tpm)
        tpm = tpm_lin / tpm_lin.sum(axis=1, keepdims=True) * 1e6

        # survival, driven by the label
        os_t = rng.exponential(365.0 * np.exp(1.0 * y))
        pfs_t = np.minimum(rng.exponential(150.0 * np.exp(1.2 * y)), os_t)
        cens = rng.uniform(180.0, 1500.0, n)
        os_e = (os_t <= cens).astype(int)
        pfs_e = (pfs_t <= cens).astype(int)
        os_obs = np.round(np.minimum(os_t, cens))
        pfs_obs = np.round(np.minimum(pfs_t, cens))

        cr = rng.random(n) < 0.3
        sd_ = rng.random(n) < 0.35
        bor = np.where(y == 1, np.where(cr, "CR", "PR"), np.where(sd_, "SD", "PD")).astype(object)
        prefix = {"SYN_COUNTS": "SC", "SYN_TPM_A": "SA", "SYN_TPM_B": "SB"}[name]
        pts = [f"{prefix}Pt{i + 1}" for i in range(n)]
        if fmt == "counts":
            ne = int(rng.integers(n))
            bor[ne] = "NE"  # best response not evaluable: unlabeled
            lib = rng.lognormal(np.log(2e7), 0.4, n)
            p = tpm * gene_len / 1000.0
            p = p / p.sum(axis=1, keepdims=True)
            mu = p * lib[:, None]
            counts = rng.poisson(rng.gamma(10.0, mu / 10.0))  # negative binomial, dispersion 0.1
            sample_ids = [f"{pt}_Pre_{rng.integers(10**5, 10**6)}" for pt in pts]
            expr = pd.DataFrame(counts.T, index=all_ent, columns=sample_ids)
            clin = pd.DataFrame({
                "sample": sample_ids, "patient": pts, "visit": "Pre", "BOR": bor,
                "OS": os_obs, "OS_SOR": 1 - os_e, "PFS": pfs_obs, "PFS_SOR": 1 - pfs_e,
            })
            spec = {
                "name": name,
                "expression": {"file": f"{name}/counts.csv.gz", "layout": "genes_x_samples",
                               "units": "counts", "gene_id": "entrez"},
                "clinical": {"file": f"{name}/samples.tsv", "sample": "sample",
                             "patient": "patient", "response": "BOR", "timepoint": "visit",
                             "treatment_value": "anti-PD-1"},
                "survival": {"time_unit": "days", "os_time": "OS", "os_event": "OS_SOR",
                             "os_event_means": "censored", "pfs_time": "PFS",
                             "pfs_event": "PFS_SOR", "pfs_event_means": "censored"},
            }
            units, gene_id, ids = "counts", "entrez", all_ent
            values = counts.T.astype(float)
        else:
            keep = [i for i, s in enumerate(all_sym) if not (fmt == "log2tpm_recist" and s == dropped)]
            ids = [all_sym[i] for i in keep]
            values = np.log2(tpm[:, keep].T + 0.001)
            expr = pd.DataFrame(values, index=pd.Index(ids, name="gene_symbol"), columns=pts)
            units, gene_id = "log2(tpm+0.001)", "symbol"
            if fmt == "log2tpm_recist":
                months = 365.25 / 12
                clin = pd.DataFrame({
                    "sample": pts, "patientid": pts, "recist": bor,
                    "survival_time_os": np.round(os_obs / months, 3), "event_occurred_os": os_e,
                    "Biopsy.Time": "pre-treatment", "Treatment": "Pembrolizumab",
                })
                clinical = {"file": f"{name}/clinical.tsv", "sample": "sample",
                            "patient": "patientid", "response": "recist",
                            "timepoint": "Biopsy.Time", "treatment": "Treatment"}
                survival = {"time_unit": "months", "os_time": "survival_time_os",
                            "os_event": "event_occurred_os"}
            else:
                tx = np.where(rng.random(n) < 0.5, "Nivolumab", "Pembrolizumab")
                clin = pd.DataFrame({
                    "Sample ID": pts, "BR": bor, "OS": os_obs, "dead": os_e,
                    "PFS": pfs_obs, "progressed": pfs_e, "Tx": tx,
                })
                clinical = {"file": f"{name}/clinical.tsv", "sample": "Sample ID",
                            "response": "BR", "treatment": "Tx", "timepoint_value": "pre"}
                survival = {"time_unit": "days", "os_time": "OS", "os_event": "dead",
                            "pfs_time": "PFS", "pfs_event": "progressed"}
            spec = {"name": name,
                    "expression": {"file": f"{name}/log2_tpm.tsv.gz", "layout": "genes_x_samples",
                                   "units": units, "gene_id": gene_id,
                                   "gene_column": "gene_symbol"},
                    "clinical": clinical, "survival": survival}
        cohorts.append({"name": name, "expr": expr, "clin": clin, "spec": spec,
                        "values": values, "ids": ids, "units": units, "gene_id": gene_id})
        truth_cohorts[name] = {
            "format": fmt, "samples": n,
            "responders": int(np.isin(bor, ["CR", "PR"]).sum()),
            "response_rate": float(np.isin(bor, ["CR", "PR"]).sum() / (bor != "NE").sum()), "units": units, "gene_id": gene_id,
            "missing_panel_genes": [dropped] if fmt == "log2tpm_recist" else [],
            "unlabeled": int((bor == "NE").sum()),
        }

    truth = {
        "seed": seed,
        "signal": bool(signal),
        "effect_size_sd": float(effect) if signal else 0.0,
        "response_module": modules["response"],
        "response_module_up": [symbols[i] for i in resp_idx if sign[i] > 0],
        "response_module_down": [symbols[i] for i in resp_idx if sign[i] < 0],
        "modules": modules,
        "loadings": {symbols[i]: round(float(loading[i] * sign[i]), 4)
                     for i in order[: sum(MODULE_SIZES)]},
        "batch_effect": {"gene_shift_sd": 0.7, "gene_scale_log_sd": 0.2,
                         "library_size": "lognormal(log 2e7, 0.4) (counts cohort)"},
        "survival": "exponential; OS mean 365 d x e^(1.0 y), PFS 150 d x e^(1.2 y), censoring U(180, 1500) d",
        "n_extra_genes": N_EXTRA_GENES,
        "biomarker_genes_among_extras": marker_genes,
        "cohorts": truth_cohorts,
    }
    return cohorts, truth


def make_synthetic_table(seed=0, signal=True, n_per_cohort=None, effect=2.5, response_rates=None):
    """The default synthetic cohorts as one cohort table, in memory.

    Returns ``(table, truth)``; the table follows ``amu_tf.data.cohort_table`` (the same
    values ``amu ingest`` gives on the files ``generate_default_cohorts`` writes).
    """
    cohorts, truth = _simulate(seed, signal, n_per_cohort, effect, response_rates)
    tables = []
    for c in cohorts:
        spec = CohortSpec.from_dict(c["spec"], base=".")
        expr, info = expression_matrix(c["values"], c["ids"], list(c["expr"].columns),
                                       c["units"], c["gene_id"], where=c["name"])
        clin = clinical_meta(c["clin"].astype(str).replace({"nan": np.nan}), spec, c["name"])
        table, _ = assemble_cohort(spec, expr, info, clin)
        tables.append(table)
    return pd.concat(tables, ignore_index=True), truth


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def spec_to_toml(spec: dict) -> str:
    """A cohort spec dict as TOML text (the small subset the specs use)."""
    lines = [f"name = {_toml_value(spec['name'])}"]
    for section in ("expression", "clinical", "survival"):
        if section in spec:
            lines += ["", f"[{section}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in spec[section].items()]
    return "\n".join(lines) + "\n"


def generate_default_cohorts(out_dir, seed=0, signal=True, n_per_cohort=None, effect=2.5,
                             response_rates=None) -> list[Path]:
    """Write the synthetic cohorts' files, a TOML spec each and ``synthetic_truth.json``.

    Returns the spec paths (their file paths are relative to ``out_dir``, so
    ``amu ingest OUT_DIR/*.toml`` works without ``--data-root``).
    """
    out = Path(out_dir)
    cohorts, truth = _simulate(seed, signal, n_per_cohort, effect, response_rates)
    specs = []
    for c in cohorts:
        folder = out / c["name"]
        folder.mkdir(parents=True, exist_ok=True)
        efile = out / c["spec"]["expression"]["file"]
        if c["units"] == "counts":
            c["expr"].to_csv(efile)  # GEO style: unnamed first column of Entrez ids
        else:
            c["expr"].to_csv(efile, sep="\t", float_format="%.6f")
        c["clin"].to_csv(out / c["spec"]["clinical"]["file"], sep="\t", index=False)
        spec_path = out / f"{c['name']}.toml"
        header = f"# synthetic cohort {c['name']} (amu_tf.data.synthetic, seed {seed}, signal {signal})\n"
        spec_path.write_text(header + spec_to_toml(c["spec"]))
        specs.append(spec_path)
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=2) + "\n")
    return specs
