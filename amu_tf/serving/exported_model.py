"""An exported amu-tf SavedModel, loaded with plain ``tf.saved_model.load`` (no Keras model,
no custom classes), plus what ``amu predict`` does around it in Python.

    model = ExportedModel.load("saved_models/amu")              # highest version
    model = ExportedModel.load("saved_models/amu", version=2)
    out = model.predict_array(x)            # dict of probability, logits, predicted_class
    preds = model.predict_table(df)         # DataFrame: sample, probability, predicted_class

``predict_table`` takes any table whose gene columns are panel symbols or NCBI Entrez ids
(in any order, extra columns ignored). Missing-gene policy: a panel gene absent from the
table (or all-NaN for one cohort) is NaN and imputed by the transform; more than
``max_missing_fraction`` (10%) of the panel missing, or no overlap at all, is refused. A
transform that needs a whole cohort (``cohort_z``) is not in the graph; it is applied here, in
Python, per ``cohort`` column value (one cohort if the table has no such column), from the
fitted transform stored in ``assets/transform/``.

Nothing is invented (:func:`check_input_table`, :func:`numeric_genes`): the table needs data
rows and a ``sample`` column of unique, non-empty ids; a gene cell must be a number or empty
(NA: a missing value, imputed as above and reported); any other string is an error naming the
sample and the gene; infinite values are refused; and the values must be on the log2 scale of
a cohort table (within [-20, 25], :func:`amu_tf.data.expression_reader.check_log2_range`):
linear-scale input (counts, TPM: values in the thousands) is refused with a hint.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from amu_tf.errors import ArtifactError, InputDataError, KernelUnavailableError
from amu_tf.serving.saved_model_export import (INPUT_NAME, METADATA_FILE, SIGNATURE_KEY,
                                               read_metadata)
from amu_tf.serving.serving_versions import resolve_version_dir

MAX_MISSING_FRACTION = 0.10
TRANSFORM_ASSET = "transform"
SCALE_HINT = ("; amu predict takes log2 expression as in a cohort table (counts -> log2 CPM, "
              "TPM/FPKM -> log2(x+1)): give it a cohort spec (.toml) to convert the file")


def check_input_table(df: pd.DataFrame, where: str = "the input") -> pd.Series:
    """The table's sample ids (stripped strings), or one-line :class:`InputDataError`: no data
    rows, no ``sample`` column, an empty/NA id, or a duplicate id. Ids are never invented."""
    if len(df) == 0:
        raise InputDataError(f"{where} has no data rows (a header only?): nothing to predict")
    if "sample" not in df.columns:
        example = ", ".join(map(str, list(df.columns)[:3]))
        raise InputDataError(
            f"{where} has no 'sample' column (columns: {example}, ...): sample ids are not "
            "invented; add a 'sample' column of unique ids"
        )
    raw = df["sample"]
    ids = raw.astype(str).str.strip()
    empty = raw.isna().to_numpy() | (ids == "").to_numpy()
    if empty.any():
        r = int(np.argmax(empty))
        raise InputDataError(
            f"{where}: {int(empty.sum())} row(s) have no sample id (row {r + 1} of the data "
            "is empty or NA)"
        )
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        first = ids[dup].iloc[0]
        rows = [i + 1 for i in np.flatnonzero((ids == first).to_numpy())]
        raise InputDataError(
            f"{where}: duplicate sample id {first!r} (data rows {', '.join(map(str, rows[:5]))}"
            f"; {int(ids.duplicated().sum())} duplicate(s) in all): sample ids must be unique"
        )
    return ids


def numeric_genes(df: pd.DataFrame, columns: dict, samples: pd.Series,
                  where: str = "the input") -> pd.DataFrame:
    """``{name: df[col]}`` for ``columns`` (name -> table column) as float64: NaN/empty stays
    NaN (missing), a string that is not a number is an :class:`InputDataError` naming the
    sample and the gene (never imputed silently)."""
    out = {}
    for name, col in columns.items():
        v = df[col]
        num = pd.to_numeric(v, errors="coerce") if not pd.api.types.is_numeric_dtype(v) else v
        bad = (num.isna() & v.notna()).to_numpy()
        if bad.any():
            r = int(np.argmax(bad))
            raise InputDataError(
                f"{where}: non-numeric value {v.iloc[r]!r} for gene {name} of sample "
                f"{samples.iloc[r]} ({int(bad.sum())} such cell(s) for this gene); a gene "
                "value must be a number, or empty for a missing value"
            )
        out[name] = num.astype(np.float64).to_numpy()
    return pd.DataFrame(out, index=df.index)


def check_scale(genes: pd.DataFrame, samples: pd.Series, where: str = "the input") -> None:
    """Infinite values and values off the log2 scale (e.g. linear counts) are refused."""
    from amu_tf.data.expression_reader import check_log2_range

    if genes.shape[1] == 0 or len(genes) == 0:
        return
    check_log2_range(genes.to_numpy(dtype=np.float64).T, list(genes.columns),
                     [str(s) for s in samples], "log2 expression", where, hint=SCALE_HINT)


class ExportedModel:
    """A loaded SavedModel version, its ``serving_default`` signature and its metadata."""

    def __init__(self, path: Path, loaded, metadata: dict):
        self.path = Path(path)
        self.loaded = loaded
        self.metadata = metadata
        self.signature = loaded.signatures[SIGNATURE_KEY]
        from amu_tf.training.threshold import is_probability

        where = f"{self.path / 'assets' / 'amu_metadata.json'}"
        try:
            genes = metadata.get("genes") or []
            self.symbols = [str(g["symbol"]) for g in genes]
            self.entrez_ids = [str(g.get("entrez_id", "")) for g in genes]
            self.n_genes = int(metadata.get("n_genes", len(self.symbols)))
            #: the signature's input width: the genes, or the features a Python-side
            #: transform makes of them (e.g. seven signature scores)
            self.n_inputs = int(metadata.get("n_inputs", self.n_genes))
            t = metadata["threshold"]
            if not is_probability(t):
                raise ValueError(f"threshold {t!r} is not a probability")
            # the graph's predicted_class uses its own frozen copy; this one is reported
            self.threshold = float(t)
            self.transform_info = metadata.get("transform") or {}
            if not isinstance(self.transform_info, dict):
                raise ValueError("transform is not an object")
        except KeyError as exc:
            raise ArtifactError(f"{where} is damaged: no {exc.args[0]!r}; export the model "
                                "again") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"{where} is damaged ({exc}); export the model again") from None

    @property
    def version(self) -> int | None:
        return int(self.path.name) if self.path.name.isdigit() else None

    @classmethod
    def load(cls, model: str | os.PathLike, version: int | None = None) -> "ExportedModel":
        import tensorflow as tf

        path = resolve_version_dir(model, version)
        metadata = read_metadata(path)
        if metadata.get("custom_ops"):  # exported with --compiled-attention
            from amu_tf.kernels import tiny_attention as kernels

            if not kernels.available():
                raise KernelUnavailableError(
                    f"{path} was exported with --compiled-attention and needs amu-tf's "
                    f"compiled op {', '.join(metadata['custom_ops'])}, unavailable here "
                    f"({kernels.status()}); export it again without --compiled-attention"
                )
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # TF raises many kinds for a damaged SavedModel
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(f"cannot load the SavedModel at {path} (corrupt?): {first}") from None
        if SIGNATURE_KEY not in loaded.signatures:
            raise ArtifactError(f"{path} has no {SIGNATURE_KEY!r} signature")
        if not metadata.get("genes"):
            raise ArtifactError(f"{path}/assets/{METADATA_FILE} lists no genes")
        return cls(path, loaded, metadata)

    # Arrays -------------------------------------------------------------------------------
    def predict_array(self, x) -> dict:
        """Run the signature on an ``(n, n_genes)`` float matrix already on the signature's
        input scale (``metadata["expected_input_scale"]``). NaN is allowed only when the
        graph imputes it."""
        import tensorflow as tf

        x = self.check_input(x)
        try:
            out = self.signature(**{INPUT_NAME: tf.constant(x)})
        except tf.errors.InvalidArgumentError as exc:
            raise InputDataError(f"the model refused the input: {exc.message.splitlines()[0]}") from None
        return {k: v.numpy() for k, v in out.items()}

    def check_input(self, x) -> np.ndarray:
        """``x`` as float32 ``(n, n_genes)``, or one-line :class:`InputDataError`."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise InputDataError(
                f"input must have shape (samples, {self.n_inputs}), got {tuple(x.shape)}"
            )
        if np.isinf(x).any():
            r, c = np.argwhere(np.isinf(x))[0]
            raise InputDataError(
                f"input has {int(np.isinf(x).sum())} infinite value(s) (first: sample {r}, "
                f"gene {self.symbols[c] if self.n_inputs == self.n_genes else c})"
            )
        if np.isnan(x).any() and not self.transform_info.get("imputes_in_graph", False):
            r, c = np.argwhere(np.isnan(x))[0]
            raise InputDataError(
                f"input has {int(np.isnan(x).sum())} NaN value(s) (first: sample {r}, gene "
                f"{self.symbols[c] if self.n_inputs == self.n_genes else c}) and this model "
                "does not impute in its graph"
            )
        return x

    # Tables -------------------------------------------------------------------------------
    def match_genes(self, df: pd.DataFrame) -> dict[int, str]:
        """Panel index -> table column, matching by symbol (exact, then case-insensitive) or
        Entrez id."""
        by_symbol = {s: i for i, s in enumerate(self.symbols)}
        by_upper = {s.upper(): i for i, s in enumerate(self.symbols)}
        by_entrez = {e: i for i, e in enumerate(self.entrez_ids) if e}
        found: dict[int, str] = {}
        for col in df.columns:
            key = str(col).strip()
            i = by_symbol.get(key)
            if i is None:
                i = by_upper.get(key.upper())
            if i is None:
                e = key[:-2] if key.endswith(".0") else key
                i = by_entrez.get(e)
            if i is None:
                continue
            if i in found:
                raise InputDataError(
                    f"gene {self.symbols[i]} is given twice (columns {found[i]!r} and {col!r})"
                )
            found[i] = col
        return found

    def panel_table(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
        """Reorder ``df``'s genes into the panel order under their symbols, apply the
        missing-gene policy, and report ``{"n_found", "missing"}``: the number of the model's
        genes with a value in the input's cohort that has the fewest, and every gene missing
        (all NaN or absent) in some cohort."""
        found = self.match_genes(df)
        if not found:
            example = ", ".join(map(str, list(df.columns)[:5]))
            raise InputDataError(
                f"unknown gene set: none of the {self.n_genes} panel genes is among the input's "
                f"{df.shape[1]} columns (e.g. {example}); columns must be gene symbols or "
                "Entrez ids"
            )
        samples = check_input_table(df)
        present = numeric_genes(df, {self.symbols[i]: col for i, col in sorted(found.items())},
                                samples)
        check_scale(present, samples)
        genes = pd.DataFrame(
            {s: (present[s].to_numpy() if s in present.columns else np.nan)
             for s in self.symbols},
            index=df.index,
        ).astype(np.float64)
        cohorts = df["cohort"].astype(str) if "cohort" in df.columns else pd.Series(
            "input", index=df.index)
        # the model's own transform's limit when it has one (COMPASS's input allows 20% of its
        # 15,672 genes), so the export refuses what `amu predict` from the Model artifact does
        frac = (self.transform_info.get("params") or {}).get("max_missing_fraction")
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
            frac = MAX_MISSING_FRACTION
        allowed = int(np.floor(frac * self.n_genes))
        what = "panel genes" if self.n_genes == 160 else "genes of the model"
        missing_all: set[str] = set()
        most_missing = 0
        for name, rows in genes.groupby(cohorts.to_numpy()):
            missing = [s for s in self.symbols if rows[s].isna().all()]
            missing_all.update(missing)
            most_missing = max(most_missing, len(missing))
            if len(missing) > allowed:
                where = "" if name == "input" else f" in cohort {name}"
                raise InputDataError(
                    f"{len(missing)}/{self.n_genes} {what} are missing{where} (at most "
                    f"{allowed} = {frac:.0%} can be imputed), e.g. "
                    f"{', '.join(missing[:5])}"
                )
        per_row = genes.isna().sum(axis=1).to_numpy()
        if (per_row > allowed).any():
            r = int(np.argmax(per_row > allowed))
            raise InputDataError(
                f"{int((per_row > allowed).sum())} sample(s) miss more than {allowed} = "
                f"{frac:.0%} of the {self.n_genes} {what} (row {r} misses "
                f"{int(per_row[r])}); refusing to impute that much"
            )
        meta = pd.DataFrame({"sample": samples.to_numpy(), "cohort": cohorts.to_numpy()},
                            index=df.index)
        # found: the model's genes with a value, in the cohort that has the fewest (a column
        # that is all NaN is missing), as `amu predict` counts for a Model artifact
        report = {"n_found": self.n_genes - most_missing,
                  "missing": [s for s in self.symbols if s in missing_all]}
        out = pd.concat([meta, genes], axis=1).reset_index(drop=True)
        out.attrs = dict(df.attrs)  # the cohorts' units (COMPASS's input reads them)
        return out, report

    def model_input(self, table: pd.DataFrame) -> np.ndarray:
        """The signature's input for a panel table: raw genes when the transform is in the
        graph (or there is none), else the Python-side (cohort) transform's output."""
        info = self.transform_info
        if not info.get("name") or info.get("in_graph"):
            return table[self.symbols].to_numpy(dtype=np.float32)
        tdir = self.path / "assets" / TRANSFORM_ASSET
        if not tdir.is_dir():
            raise ArtifactError(
                f"{self.path} needs its {info['name']!r} transform applied in Python but has "
                f"no assets/{TRANSFORM_ASSET}/"
            )
        from amu_tf.data.cohort_table import META_COLUMNS
        from amu_tf.data.transforms import load_transform

        full = table.copy()
        for col in META_COLUMNS:
            if col not in full.columns:
                full[col] = np.nan
        full = full[META_COLUMNS + self.symbols]
        return np.asarray(load_transform(tdir).transform(full), dtype=np.float32)

    def predict_table(self, df: pd.DataFrame) -> pd.DataFrame:
        """``sample, probability, predicted_class`` for each row of ``df``."""
        table, _ = self.panel_table(df)
        out = self.predict_array(self.model_input(table))
        return pd.DataFrame({
            "sample": table["sample"].to_numpy(),
            "probability": out["probability"].astype(np.float64),
            "predicted_class": out["predicted_class"].astype(int),
        })

    def benchmark(self, batch_size: int = 256, n_batches: int = 20, warmup: int = 3,
                  seed: int = 0) -> dict:
        """Batched inference throughput of the signature (samples/s), warm-up batches
        excluded; inputs are random finite log2-scale values."""
        import time

        import tensorflow as tf

        x = tf.constant(np.random.default_rng(seed).normal(5.0, 2.0, (batch_size, self.n_inputs))
                        .astype(np.float32))
        for _ in range(warmup):
            self.signature(**{INPUT_NAME: x})["probability"].numpy()
        times = []
        for _ in range(n_batches):
            t0 = time.perf_counter()
            self.signature(**{INPUT_NAME: x})["probability"].numpy()
            times.append(time.perf_counter() - t0)
        times = np.asarray(times)
        return {"batch_size": batch_size, "n_batches": n_batches,
                "samples_per_s": float(batch_size * n_batches / times.sum()),
                "median_batch_ms": float(np.median(times) * 1e3)}
