"""A run folder as `amu run` leaves it, read back: its configuration and each step's
artifact, so `amu report RUN_DIR` and `amu export RUN_DIR` work on the folder alone.

    run = RunFolder("runs/default")
    run.config.models                    # the resolved RunConfig
    run.step("evaluate")                 # runs/default/evaluate (None when the step did not run)
    run.export(force=False)              # what `amu run` exports, from the folder alone
"""

from __future__ import annotations

from pathlib import Path

from amu_tf.artifacts import METADATA_FILE, safe_name
from amu_tf.errors import SpecError
from pipelines.run_config import RUN_CONFIG_FILE, RunConfig

RUN_RECORD = "run.json"
#: the recipe recommended for a new cohort (docs/generalisation.md): exported beside the zoo
#: model when a run on real cohorts trained it
RECOMMENDED = "recipe:consensus"
#: the served name of the zoo model a run on the synthetic default exports
SYNTHETIC_EXPORT_NAME = "amu_default"


def zoo_models(models) -> list[str]:
    """The Keras zoo models among ``models``, in order."""
    from amu_tf.training import estimator_kind

    return [m for m in models if estimator_kind(m) == "keras"]


def export_choices(config: RunConfig) -> list[tuple[str, str]]:
    """``[(model, served name)]`` a run exports: its first zoo model (named ``--export-name``,
    ``amu_default`` on the synthetic default, else after the model), and on real cohorts
    also the recommended cross-cohort recipe when it was trained."""
    chosen = []
    zoo = zoo_models(config.models)
    if zoo:
        chosen.append((zoo[0], config.export_name or (
            SYNTHETIC_EXPORT_NAME if config.synthetic else safe_name(zoo[0]))))
    if not config.synthetic and RECOMMENDED in config.models:
        chosen.append((RECOMMENDED, safe_name(RECOMMENDED)))
    return chosen


def export_run(run_dir, config: RunConfig, evaluation_uri, say=None, force=False,
               export_dir=None) -> dict:
    """Export what a run exports (:func:`~pipelines.run_folder.export_choices`) with the
    run's evaluation: a blessed model, or any with ``force``; an unblessed one is skipped
    with the reason. Returns ``{model: PushedModel artifact}``."""
    import click

    from components.export import NotBlessedError, run_export

    say = say or click.echo
    exported = {}
    chosen = export_choices(config)
    if not chosen:
        say("  nothing to export: no zoo (Keras) model among the run's models")
    for model, name in chosen:
        try:
            art = run_export(Path(run_dir) / "train" / safe_name(model),
                             base_dir=export_dir or config.export_dir, name=name,
                             evaluation_uri=evaluation_uri, force=force)
        except NotBlessedError as exc:
            say(f"  {model} not exported: {exc}")
            continue
        exported[model] = art
        why = " (recommended for a new cohort)" if model == RECOMMENDED else ""
        say(f"  {model} exported as {art.properties['name']!r} version "
            f"{art.properties['version']}{why}: {art.properties['path']}")
    return exported


class RunFolder:
    """The folder of one `amu run`: ``run.json``, ``run_config.toml`` and a folder per step."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise SpecError(f"{self.path} is not a folder; give an `amu run` folder")
        if not (self.path / RUN_CONFIG_FILE).is_file():
            raise SpecError(f"{self.path} is not an amu run folder (no {RUN_CONFIG_FILE}; "
                            "folders of an older amu-tf: run `amu run` again)")
        self.config = RunConfig.from_toml(self.path / RUN_CONFIG_FILE)

    def step(self, name: str) -> Path | None:
        """The artifact folder of step ``name``, None when that step left none."""
        p = self.path / name
        return p if (p / METADATA_FILE).is_file() else None

    def require(self, name: str) -> Path:
        p = self.step(name)
        if p is None:
            raise SpecError(f"{self.path} has no {name} artifact (the run did not get that "
                            "far, or the step was not run)")
        return p

    def export(self, say=None, force=False, export_dir=None) -> dict:
        """Export what the run exported (its evaluation's metrics and blessing included)."""
        return export_run(self.path, self.config, self.require("evaluate"), say=say,
                          force=force, export_dir=export_dir)
