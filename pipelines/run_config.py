"""One typed configuration for `amu run` (and the defaults `amu evaluate` shares): what to read,
what to fit and score, what to explain and where to export.

    cfg = RunConfig.build(config_file="run.toml", models=["amu:small", "logreg"])
    cfg.write(run_dir / RUN_CONFIG_FILE)               # `amu run` does this
    again = RunConfig.from_toml(run_dir / RUN_CONFIG_FILE)   # the same run, from its folder

Precedence: the defaults below, then ``--quick``'s smaller values (:data:`QUICK`), then the
TOML file, then options given on the command line. The file written into the run folder is
the resolved configuration (every field explicit), so ``amu run --config
RUN_DIR/run_config.toml --out NEW`` repeats the run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from amu_tf.errors import SpecError
from pipelines.defaults import (DEFAULT_MODELS, EPOCHS, PATIENCE, RUN_BIOMARKERS, RUN_RECIPES,
                                SYNTHETIC_BIOMARKERS, expand_models, library_signatures,
                                split_list)

RUN_CONFIG_FILE = "run_config.toml"

#: `--quick`: a smoke run (small synthetic cohorts, few epochs, 3 folds)
QUICK = {"models": ["amu:tiny", "logreg", "cd8a", "cxcl9"], "epochs": 8, "patience": 3,
         "folds": 3, "n_boot": 200, "n_per_cohort": 40, "n_explain": 40, "n_perm": 200}

#: fields that hold a list of names (a TOML list, or one comma-separated string)
LIST_FIELDS = ("cohorts", "models", "protocols", "train_cohorts", "test_cohorts",
               "interpret_models")
#: fields that are a number or None
OPTIONAL_INT_FIELDS = ("n_per_cohort",)
#: fields that are a path or name, or None
OPTIONAL_STR_FIELDS = ("data_root", "string", "gmt", "export_name", "calibrate")


@dataclass(frozen=True)
class RunConfig:
    """Every option of `amu run`. ``models=None`` means the default set for the data (with
    TIDE only on real cohorts); :meth:`resolved` fills it in."""

    cohorts: list = field(default_factory=list)
    data_root: str | None = None
    models: list | None = None
    protocols: list = field(default_factory=lambda: ["cv", "loco"])
    transform: str = "cohort_z"
    train_cohorts: list | None = None
    test_cohorts: list | None = None
    folds: int = 5
    repeats: int = 1
    n_boot: int = 1000
    epochs: int = EPOCHS
    patience: int = PATIENCE
    n_jobs: int = 2
    allow_leaks: bool = False
    signal: bool = True
    seed: int = 0
    n_per_cohort: int | None = None
    interpret_models: list | None = None
    string: str | None = None
    gmt: str | None = None
    n_explain: int = 100
    n_background: int = 30
    n_perm: int = 1000
    export_dir: str = "saved_models"
    export_name: str | None = None
    strategy: str = "auto"  # tf.distribute for the zoo models (see strategy_option)
    calibrate: str | None = None  # recalibrate every model's probabilities in the protocols
    quick: bool = False

    # ------------------------------------------------------------------ reading
    @classmethod
    def build(cls, config_file=None, **explicit) -> "RunConfig":
        """Defaults <- QUICK (when the file asks for it) <- ``config_file`` <- QUICK (when the
        command line asks for it) <- ``explicit`` (the options given on the command line),
        checked and resolved."""
        from_file = read_toml(config_file) if config_file else {}
        merged = asdict(cls())
        if from_file.get("quick") is True and "quick" not in explicit:
            merged.update(QUICK)
        merged.update(from_file)
        if explicit.get("quick") is True:
            merged.update(QUICK)
        merged.update(explicit)
        return cls(**{k: _coerce(k, v, config_file) for k, v in merged.items()}).resolved()

    @classmethod
    def from_toml(cls, path) -> "RunConfig":
        return cls.build(config_file=path)

    def resolved(self) -> "RunConfig":
        """Default model list for the data; the quick preset's cohort size only for the
        synthetic default."""
        changes = {}
        if self.models is None:
            changes["models"] = split_list(",".join(
                [DEFAULT_MODELS, RUN_RECIPES,
                 RUN_BIOMARKERS if self.cohorts else SYNTHETIC_BIOMARKERS]))
            if self.cohorts:  # real cohorts: every published signature of the library too
                changes["models"] += library_signatures()
        elif any(str(m).startswith("sig:") for m in self.models):
            changes["models"] = expand_models(self.models)
        if self.cohorts and self.n_per_cohort is not None:
            changes["n_per_cohort"] = None
        return replace(self, **changes) if changes else self

    # ------------------------------------------------------------------ writing
    def to_toml(self) -> str:
        """The configuration as TOML (None fields left out: they mean the default)."""
        lines = ["# amu run configuration: `amu run --config THIS_FILE --out NEW_FOLDER` "
                 "repeats the run"]
        for k, v in asdict(self).items():
            if v is None:
                continue
            lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"

    def write(self, path) -> Path:
        from amu_tf.artifacts import write_text_atomic

        return write_text_atomic(path, self.to_toml())

    @property
    def synthetic(self) -> bool:
        """Whether the run uses the embedded synthetic default cohorts."""
        return not self.cohorts

    @property
    def data_note(self) -> str | None:
        """What the report says of the synthetic default cohorts (None for real ones)."""
        if not self.synthetic:
            return None
        return ("Synthetic default cohorts (amu_tf.data.synthetic, seed "
                f"{self.seed}, response signal {'planted' if self.signal else 'absent'}); "
                "the planted module is listed in data/synthetic_truth.json.")


def read_toml(path) -> dict:
    """The fields of a run configuration file, with one-line errors for a missing or
    unparsable file and unknown keys."""
    from amu_tf.data.schema import check_keys
    from amu_tf.data.text_files import read_toml as read

    path = Path(path)
    data = read(path, "--config", error=SpecError)
    check_keys(data, [f.name for f in fields(RunConfig)], f"--config {path}")
    return data


def _coerce(key: str, value, source):
    """``value`` as field ``key`` holds it; a wrong type is a one-line error."""
    where = f"--config {source}: " if source else ""
    if value is None:
        return None
    default = getattr(RunConfig(), key, None) if key not in LIST_FIELDS else []
    if key in LIST_FIELDS:
        if isinstance(value, str):
            return split_list(value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
        raise SpecError(f"{where}{key} must be a list of names, got {value!r}")
    if key in OPTIONAL_STR_FIELDS or isinstance(default, str):
        if isinstance(value, (str, os.PathLike)):
            return str(value)
        raise SpecError(f"{where}{key} must be a string, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise SpecError(f"{where}{key} must be true or false, got {value!r}")
    if key in OPTIONAL_INT_FIELDS or isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise SpecError(f"{where}{key} must be an integer, got {value!r}")
    return value


def _toml_value(v) -> str:
    """A TOML literal for a string, bool, int, float or list of strings (JSON's string
    escapes are valid TOML basic-string escapes)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))
