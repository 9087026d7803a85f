"""The Model artifact's schema: ``model_info.json`` as one typed object, with the one reader
and the one writer every step uses (train, the multi-worker entry point, export, interpret,
predict).

    info = ModelInfo.read("runs/x/train/amu_small")
    info.threshold, info.genes, info.transform, info.training_cohorts
    info.write(folder)

On disk (``format`` 1)::

    {"model": "amu:small", "kind": "keras", "threshold": 0.41, "threshold_method": "...",
     "genes": {"symbols": [...], "entrez_ids": [...]}, "n_genes": 160,
     "transform": "cohort_z", "transform_per_sample": false, "training_cohorts": [...],
     "n_train": 235, "n_responders": 87, "seed": 0, ...}

The reader also takes the shapes hand-made files use (``genes`` as a list of symbols or of
``{"symbol", "entrez_id"}`` records, ``threshold`` as ``{"value": ...}``) and refuses a
missing or non-probability threshold: a default of 0.5 would silently change the predicted
classes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from amu_tf.errors import ArtifactError

MODEL_INFO_FILE = "model_info.json"
FORMAT = 1
#: what a label of 1 means in every amu-tf model
POSITIVE_CLASS = "responder (CR/PR) = 1"


@dataclass
class ModelInfo:
    """What a trained model is: name and kind, frozen decision threshold, the genes it
    reads in order, its input transform, and what it was trained on."""

    model: str
    threshold: float
    kind: str | None = None  # keras / sklearn / biomarker / recipe (None: not recorded)
    threshold_method: str = "unknown"
    genes: list = field(default_factory=list)  # symbols, in input order ([] = the 160 panel)
    entrez_ids: list = field(default_factory=list)
    transform: str | None = None
    transform_per_sample: bool = False
    training_cohorts: list = field(default_factory=list)
    n_train: int | None = None
    n_responders: int | None = None
    seed: int = 0
    threshold_method_description: str = ""
    # how the threshold was placed: {"method", "rule", "margin"} (threshold.threshold_record)
    threshold_placement: dict = field(default_factory=dict)
    input_scale: str = ""
    keras_backend: str | None = None  # the backend a zoo model was trained under
    params: dict = field(default_factory=dict)
    library_versions: dict = field(default_factory=dict)
    amu_tf_version: str = ""
    positive_class: str = POSITIVE_CLASS
    n_pretraining_unlabeled: int = 0  # rows whose expression (no label) pre-training read
    # the probability recalibration applied after the model ({} = none): method and one
    # sentence on what it was fitted on (the map itself: probability_calibration.json)
    calibration: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # anything else a writer records

    def __post_init__(self):
        from amu_tf.training.threshold import is_probability

        if not is_probability(self.threshold):
            raise ArtifactError(f"the Model's threshold {self.threshold!r} is not a probability "
                                f"in [0, 1]; its {MODEL_INFO_FILE} is damaged")
        self.threshold = float(self.threshold)
        if not self.genes:
            from amu_tf.panel import panel_entrez, panel_symbols

            self.genes, self.entrez_ids = panel_symbols(), panel_entrez()
        self.genes = [str(g) for g in self.genes]
        if len(self.entrez_ids) != len(self.genes):
            from amu_tf.data.gene_ids import entrez_ids

            self.entrez_ids = entrez_ids(self.genes)
        self.entrez_ids = ["" if e is None else str(e) for e in self.entrez_ids]

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        d["genes"] = {"symbols": d["genes"], "entrez_ids": d.pop("entrez_ids")}
        d["n_genes"] = self.n_genes
        return {"format": FORMAT, **d, **extra}

    @classmethod
    def from_json(cls, data: dict, where="model_info") -> "ModelInfo":
        if not isinstance(data, dict):
            raise ArtifactError(f"{where} does not hold a JSON object")
        d = dict(data)
        d.pop("format", None)
        d.pop("n_genes", None)
        t = d.pop("threshold", None)
        if isinstance(t, dict):
            d.setdefault("threshold_method", t.get("method"))
            t = t.get("value")
        if t is None:
            raise ArtifactError(f"{where} records no decision threshold: train the model again "
                                "with `amu train`, or add \"threshold\" to it")
        d["threshold"] = t
        d["genes"], d["entrez_ids"] = _genes(d.pop("genes", None), d.pop("entrez_ids", None))
        if "model" not in d:
            d["model"] = d.pop("model_name", "model")
        known = {f.name for f in fields(cls)}
        extra = {k: d.pop(k) for k in list(d) if k not in known}
        d["extra"] = {**d.get("extra", {}), **extra}
        if d.get("threshold_method") is None:
            d["threshold_method"] = "unknown"
        try:
            return cls(**d)
        except TypeError as exc:
            raise ArtifactError(f"{where} is damaged: {exc}") from None

    # ------------------------------------------------------------------ files
    @classmethod
    def read(cls, folder) -> "ModelInfo":
        """``model_info.json`` of the Model artifact folder ``folder``."""
        path = Path(folder) / MODEL_INFO_FILE
        if not path.is_file():
            raise ArtifactError(f"{folder} has no {MODEL_INFO_FILE} (the model's name, genes, "
                                "transform and threshold): it is not a complete Model "
                                "artifact; train it again with `amu train`")
        from amu_tf.data.text_files import read_json

        data = read_json(path, "model info", error=ArtifactError)
        return cls.from_json(data, where=str(path))

    def write(self, folder) -> Path:
        path = Path(folder) / MODEL_INFO_FILE
        path.write_text(json.dumps(self.to_json(), indent=2, default=_jsonable) + "\n")
        return path


def _genes(genes, entrez) -> tuple[list, list]:
    """Symbols and Entrez ids from the shapes ``genes`` takes in a model_info file."""
    if isinstance(genes, dict):
        symbols = genes.get("symbols") or genes.get("symbol") or []
        entrez = genes.get("entrez_ids") or genes.get("entrez") or entrez or []
    elif isinstance(genes, list) and genes and isinstance(genes[0], dict):
        symbols = [g.get("symbol") for g in genes]
        entrez = [g.get("entrez_id", g.get("entrez")) for g in genes]
    else:
        symbols = list(genes or [])
    return list(symbols), list(entrez or [])


def _jsonable(obj):
    from amu_tf.artifacts import to_jsonable

    out = to_jsonable(obj)
    if out is obj:
        return str(obj)
    return out


__all__ = ["MODEL_INFO_FILE", "ModelInfo", "POSITIVE_CLASS"]
