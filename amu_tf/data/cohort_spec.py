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
the spec file's own folder. With a data root, a relative path must stay under it: one whose
``..`` parts lead outside (``file = "../../../../etc/passwd"``) is refused; the test is on the
written path (symbolic links inside the data root may point anywhere), and an absolute path
(or ``~/...``) is taken as it is, as an explicit choice.

Every value has a type: names, files, column names, ``sep`` and the constants are strings
(``sample = ["sample"]`` or ``sep = 9`` is refused naming the key), ``min_panel_fraction`` is a
number (not ``true``), response map values are the integers 0 or 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from amu_tf.data.schema import check_keys
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
#: the keys of each part of a spec (amu_tf.data.schema refuses any other, naming the nearest)
TOP_KEYS = ("name", "species", "expression", "clinical", "survival", "min_panel_fraction")
EXPRESSION_KEYS = ("file", "layout", "units", "gene_id", "gene_column", "ensembl_map", "sep")
CLINICAL_KEYS = ("file", "sep", "sample", "patient", "response", "timepoint",
                 "timepoint_value", "treatment", "treatment_value", "response_map")
SURVIVAL_KEYS = ("time_unit", "os_time", "os_event", "os_event_means", "pfs_time",
                 "pfs_event", "pfs_event_means")
#: ``species``: gene symbols are human HGNC symbols unless the spec says "mouse" (title-case
#: MGI symbols, upper-cased to their human orthologue's spelling at ingest)
SPECIES = ("human", "mouse")
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
    species: str = "human"

    @classmethod
    def from_toml(cls, path: str | os.PathLike, data_root: str | os.PathLike | None = None):
        from amu_tf.data.text_files import read_toml

        path = Path(path)
        raw = read_toml(path, "cohort spec", error=SpecError)
        return cls.from_dict(raw, base=Path(data_root) if data_root else path.parent,
                             spec_file=path, confine=bool(data_root))

    @classmethod
    def from_dict(cls, raw: dict, base: str | os.PathLike = ".", spec_file: Path | None = None,
                  confine: bool = False):
        """``confine``: ``base`` is a data root, and relative paths may not leave it."""
        where = spec_file or "cohort spec"
        base = Path(base)

        def text(section: dict, key: str, sect: str | None, required: bool = False):
            """A string value (stripped), None when absent; SpecError naming the key when it
            has another type (or is missing and ``required``)."""
            at = f" in [{sect}]" if sect else ""
            v = section.get(key)
            if v is None or (isinstance(v, str) and v.strip() == ""):
                if required:
                    raise SpecError(f"{where}: missing '{key}'{at}")
                return None
            if not isinstance(v, str):
                raise SpecError(
                    f"{where}: '{key}'{at} must be a string, got {type(v).__name__} {v!r}"
                )
            return v

        def need(section: dict, key: str, sect: str):
            return text(section, key, sect, required=True)

        def resolve(p, key: str, sect: str):
            full = Path(os.path.expanduser(str(p)))
            if full.is_absolute():
                return full
            full = base / full
            if confine:
                root = os.path.abspath(base)
                norm = os.path.abspath(full)
                if os.path.commonpath([root, norm]) != root:
                    raise SpecError(
                        f"{where}: [{sect}] {key} = {str(p)!r} leads outside the data root "
                        f"{base} (a relative path must stay under --data-root; give an "
                        "absolute path to read a file elsewhere)"
                    )
            return full

        check_keys(raw, TOP_KEYS, where)
        name = text(raw, "name", None, required=True).strip()
        expr = raw.get("expression")
        clin = raw.get("clinical")
        if expr is not None and not isinstance(expr, dict):
            raise SpecError(f"{where}: 'expression' must be a [expression] table, got "
                            f"{type(expr).__name__} {expr!r}")
        if clin is not None and not isinstance(clin, dict):
            raise SpecError(f"{where}: 'clinical' must be a [clinical] table, got "
                            f"{type(clin).__name__} {clin!r}")
        if not isinstance(expr, dict):
            raise SpecError(f"{where}: missing [expression] section")
        if not isinstance(clin, dict):
            raise SpecError(f"{where}: missing [clinical] section")
        check_keys(expr, EXPRESSION_KEYS, where, "expression")
        check_keys(clin, CLINICAL_KEYS, where, "clinical")
        species = text(raw, "species", None) or "human"
        if species.lower() not in SPECIES:
            raise SpecError(f"{where}: species {species!r} is not one of {list(SPECIES)}")

        layout = need(expr, "layout", "expression").lower()
        if layout not in _LAYOUT_ALIASES:
            raise SpecError(f"{where}: layout {layout!r} is not one of {list(LAYOUTS)}")
        units = need(expr, "units", "expression").lower().replace(" ", "")
        if units not in _UNIT_ALIASES:
            raise SpecError(f"{where}: units {units!r} is not one of {list(UNITS)}")
        gene_id = need(expr, "gene_id", "expression").lower()
        if gene_id not in GENE_ID_TYPES:
            raise SpecError(f"{where}: gene_id {gene_id!r} is not one of {list(GENE_ID_TYPES)}")
        expression_file = need(expr, "file", "expression")
        gene_column = text(expr, "gene_column", "expression")
        expression_sep = text(expr, "sep", "expression")
        ensembl_map = text(expr, "ensembl_map", "expression")
        clinical_file = need(clin, "file", "clinical")
        clinical_sep = text(clin, "sep", "clinical")
        columns = {k: text(clin, k, "clinical") for k in
                   ("patient", "timepoint", "timepoint_value", "treatment", "treatment_value")}
        sample_column = need(clin, "sample", "clinical")
        response_column = need(clin, "response", "clinical")
        if gene_id == "ensembl" and not ensembl_map:
            raise SpecError(
                f"{where}: gene_id = 'ensembl' needs ensembl_map (a TSV with columns ensembl_id, "
                "symbol): the panel ships only symbols and Entrez ids"
            )

        response_map = clin.get("response_map", DEFAULT_RESPONSE_MAP)
        if not isinstance(response_map, dict) or not response_map:
            raise SpecError(f"{where}: [clinical.response_map] must map values to 0 or 1")
        for k, v in response_map.items():
            if isinstance(v, bool) or v not in (0, 1):
                raise SpecError(f"{where}: response_map[{k!r}] = {v!r}, expected 0 or 1")
        response_map = {str(k).strip().upper(): int(v) for k, v in response_map.items()}

        survival = raw.get("survival", {})
        if not isinstance(survival, dict):
            raise SpecError(f"{where}: 'survival' must be a [survival] table, got "
                            f"{type(survival).__name__} {survival!r}")
        survival = dict(survival)
        check_keys(survival, SURVIVAL_KEYS, where, "survival")
        for k in survival:
            text(survival, k, "survival")  # every survival value is a string
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
        if isinstance(frac, bool) or not isinstance(frac, (int, float)):
            raise SpecError(f"{where}: min_panel_fraction must be a number in (0, 1], got "
                            f"{type(frac).__name__} {frac!r}")
        if not 0 < frac <= 1:
            raise SpecError(f"{where}: min_panel_fraction must be in (0, 1], got {frac!r}")

        return cls(
            name=name,
            spec_file=spec_file,
            expression_file=resolve(expression_file, "file", "expression"),
            layout=_LAYOUT_ALIASES[layout],
            units=_UNIT_ALIASES[units],
            gene_id=gene_id,
            gene_column=gene_column,
            ensembl_map=resolve(ensembl_map, "ensembl_map", "expression") if ensembl_map else None,
            expression_sep=expression_sep,
            clinical_file=resolve(clinical_file, "file", "clinical"),
            clinical_sep=clinical_sep,
            sample_column=sample_column,
            response_column=response_column,
            patient_column=columns["patient"],
            timepoint_column=columns["timepoint"],
            timepoint_value=columns["timepoint_value"],
            treatment_column=columns["treatment"],
            treatment_value=columns["treatment_value"],
            response_map=response_map,
            survival=survival,
            min_panel_fraction=float(frac),
            species=species.lower(),
        )

    def data_files(self) -> list[Path]:
        files = [self.expression_file, self.clinical_file]
        if self.ensembl_map:
            files.append(self.ensembl_map)
        return files

    def check_files(self) -> None:
        """Raise :class:`SpecError` naming the first file the spec points to that is missing."""
        for f in self.data_files():
            if f.is_dir():
                raise SpecError(f"cohort {self.name}: file {f} is a directory, not a file")
            if f.exists() and not f.is_file():
                raise SpecError(f"cohort {self.name}: file {f} is not a regular file "
                                "(a device or pipe?)")
            if not f.is_file():
                raise SpecError(f"cohort {self.name}: file {f} does not exist")
