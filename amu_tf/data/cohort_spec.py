"""A cohort spec: a small TOML file saying where a cohort's files are and how to read them.

    name = "GSE91061_pre"

    [expression]
    file = "cohorts/GSE91061_Riaz2017_pre/GSE91061_pre_raw_counts.csv.gz"
    layout = "genes_x_samples"      # or "samples_x_genes"
    units = "counts"                # counts | fpkm | tpm | log2(tpm+0.001) | log2(tpm+1)
    gene_id = "entrez"              # symbol | entrez | ensembl (version suffix allowed)
    # gene_column = "gene_symbol"   # default: the first column
    # ensembl_map = "ensembl.tsv"   # needed for gene_id = "ensembl": columns ensembl_id, symbol
    # sep = ","                     # default: from the extension (.csv -> ",", else tab)

    [clinical]
    file = "cohorts/GSE91061_Riaz2017_pre/samples.tsv"
    sample = "sample"               # column holding the expression file's sample ids
    patient = "patient"             # optional, default: the sample id
    response = "BOR"
    timepoint = "visit"             # or timepoint_value = "pre" (a constant)
    treatment_value = "nivolumab"   # or treatment = "<column>"

    [clinical.response_map]         # optional; default CR/PR -> 1, SD/PD -> 0
    CR = 1

    [survival]                      # optional
    time_unit = "days"              # days | weeks | months | years -> stored in days
    os_time = "OS"
    os_event = "OS_SOR"
    os_event_means = "censored"     # "event" (1 = death, default) or "censored" (1 = alive)

Relative paths are resolved against ``data_root`` (the ``--data-root`` option), else against
the spec file's own folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from amu_tf.errors import SpecError

DEFAULT_RESPONSE_MAP = {"CR": 1, "PR": 1, "SD": 0, "PD": 0}
LAYOUTS = ("genes_x_samples", "samples_x_genes")
_LAYOUT_ALIASES = {
    "genes_x_samples": "genes_x_samples",
    "genes_as_rows": "genes_x_samples",
    "geo_counts_csv": "genes_x_samples",
    "samples_x_genes": "samples_x_genes",
    "samples_as_rows": "samples_x_genes",
}
UNITS = ("counts", "fpkm", "tpm", "log2(tpm+0.001)", "log2(tpm+1)")
_UNIT_ALIASES = {
    "counts": "counts",
    "raw_counts": "counts",
    "count": "counts",
    "fpkm": "fpkm",
    "tpm": "tpm",
    "log2(tpm+0.001)": "log2(tpm+0.001)",
    "log2_tpm_0.001": "log2(tpm+0.001)",
    "log2(tpm+1)": "log2(tpm+1)",
    "log2_tpm_1": "log2(tpm+1)",
}
GENE_ID_TYPES = ("symbol", "entrez", "ensembl")
TIME_UNITS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
# Default share of the 160 panel genes that must be found, else ingest refuses the cohort.
DEFAULT_MIN_PANEL_FRACTION = 0.8


@dataclass
class CohortSpec:
    """One cohort's files and column names (see the module docstring for the TOML form)."""

    name: str
    expression_file: Path
    layout: str
    units: str
    gene_id: str
    clinical_file: Path
    sample_column: str
    response_column: str
    spec_file: Path | None = None
    gene_column: str | None = None
    ensembl_map: Path | None = None
    expression_sep: str | None = None
    clinical_sep: str | None = None
    patient_column: str | None = None
    timepoint_column: str | None = None
    timepoint_value: str | None = None
    treatment_column: str | None = None
    treatment_value: str | None = None
    response_map: dict = field(default_factory=lambda: dict(DEFAULT_RESPONSE_MAP))
    survival: dict = field(default_factory=dict)
    min_panel_fraction: float = DEFAULT_MIN_PANEL_FRACTION

    @classmethod
    def from_toml(cls, path: str | os.PathLike, data_root: str | os.PathLike | None = None):
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"cohort spec {path} does not exist")
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SpecError(f"cohort spec {path} is not valid TOML: {exc}") from None
        return cls.from_dict(raw, base=Path(data_root) if data_root else path.parent, spec_file=path)

    @classmethod
    def from_dict(cls, raw: dict, base: str | os.PathLike = ".", spec_file: Path | None = None):
        where = spec_file or "cohort spec"
        base = Path(base)

        def need(section: dict, key: str, sect: str):
            if key not in section or section[key] in ("", None):
                raise SpecError(f"{where}: missing '{key}' in [{sect}]")
            return section[key]

        def resolve(p):
            p = Path(os.path.expanduser(str(p)))
            return p if p.is_absolute() else base / p

        known = {"name", "expression", "clinical", "survival", "min_panel_fraction"}
        unknown = set(raw) - known
        if unknown:
            raise SpecError(f"{where}: unknown top-level key(s) {sorted(unknown)}")
        name = raw.get("name")
        if not name or not isinstance(name, str):
            raise SpecError(f"{where}: missing 'name'")
        expr = raw.get("expression")
        clin = raw.get("clinical")
        if not isinstance(expr, dict):
            raise SpecError(f"{where}: missing [expression] section")
        if not isinstance(clin, dict):
            raise SpecError(f"{where}: missing [clinical] section")

        layout = str(need(expr, "layout", "expression")).lower()
        if layout not in _LAYOUT_ALIASES:
            raise SpecError(f"{where}: layout {layout!r} is not one of {list(LAYOUTS)}")
        units = str(need(expr, "units", "expression")).lower().replace(" ", "")
        if units not in _UNIT_ALIASES:
            raise SpecError(f"{where}: units {units!r} is not one of {list(UNITS)}")
        gene_id = str(need(expr, "gene_id", "expression")).lower()
        if gene_id not in GENE_ID_TYPES:
            raise SpecError(f"{where}: gene_id {gene_id!r} is not one of {list(GENE_ID_TYPES)}")
        ensembl_map = expr.get("ensembl_map")
        if gene_id == "ensembl" and not ensembl_map:
            raise SpecError(
                f"{where}: gene_id = 'ensembl' needs ensembl_map (a TSV with columns ensembl_id, "
                "symbol): the panel ships only symbols and Entrez ids"
            )

        response_map = clin.get("response_map", DEFAULT_RESPONSE_MAP)
        if not isinstance(response_map, dict) or not response_map:
            raise SpecError(f"{where}: [clinical.response_map] must map values to 0 or 1")
        for k, v in response_map.items():
            if v not in (0, 1):
                raise SpecError(f"{where}: response_map[{k!r}] = {v!r}, expected 0 or 1")
        response_map = {str(k).strip().upper(): int(v) for k, v in response_map.items()}

        survival = dict(raw.get("survival", {}))
        unit = survival.get("time_unit", "days")
        if unit not in TIME_UNITS:
            raise SpecError(f"{where}: survival time_unit {unit!r} is not one of {list(TIME_UNITS)}")
        for end in ("os", "pfs"):
            means = survival.get(f"{end}_event_means", "event")
            if means not in ("event", "censored"):
                raise SpecError(
                    f"{where}: {end}_event_means must be 'event' or 'censored', got {means!r}"
                )
            if bool(survival.get(f"{end}_time")) != bool(survival.get(f"{end}_event")):
                raise SpecError(f"{where}: give both {end}_time and {end}_event, or neither")

        frac = raw.get("min_panel_fraction", DEFAULT_MIN_PANEL_FRACTION)
        if not isinstance(frac, (int, float)) or not 0 < frac <= 1:
            raise SpecError(f"{where}: min_panel_fraction must be in (0, 1], got {frac!r}")

        return cls(
            name=name,
            spec_file=spec_file,
            expression_file=resolve(need(expr, "file", "expression")),
            layout=_LAYOUT_ALIASES[layout],
            units=_UNIT_ALIASES[units],
            gene_id=gene_id,
            gene_column=expr.get("gene_column"),
            ensembl_map=resolve(ensembl_map) if ensembl_map else None,
            expression_sep=expr.get("sep"),
            clinical_file=resolve(need(clin, "file", "clinical")),
            clinical_sep=clin.get("sep"),
            sample_column=need(clin, "sample", "clinical"),
            response_column=need(clin, "response", "clinical"),
            patient_column=clin.get("patient"),
            timepoint_column=clin.get("timepoint"),
            timepoint_value=clin.get("timepoint_value"),
            treatment_column=clin.get("treatment"),
            treatment_value=clin.get("treatment_value"),
            response_map=response_map,
            survival=survival,
            min_panel_fraction=float(frac),
        )

    def data_files(self) -> list[Path]:
        files = [self.expression_file, self.clinical_file]
        if self.ensembl_map:
            files.append(self.ensembl_map)
        return files

    def check_files(self) -> None:
        """Raise :class:`SpecError` naming the first file the spec points to that is missing."""
        for f in self.data_files():
            if not f.is_file():
                raise SpecError(f"cohort {self.name}: file {f} does not exist")
