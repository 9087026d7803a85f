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
from amu_tf.evaluation.recommendation import BASELINE, RECOMMENDATION_JSON
from pipelines.run_config import RUN_CONFIG_FILE, RunConfig

RUN_RECORD = "run.json"
#: the model recommended for a new cohort when no leave-one-cohort-out evaluation measured
#: one (docs/generalisation.md); with one, the evaluation's ``recommendation.json`` decides
RECOMMENDED = BASELINE
#: the served name of the zoo model a run on the synthetic default exports
SYNTHETIC_EXPORT_NAME = "amu_default"


def zoo_models(models) -> list[str]:
    """The Keras zoo models among ``models``, in order."""
    from amu_tf.training import estimator_kind

    return [m for m in models if estimator_kind(m) == "keras"]


def measured_recommendation(evaluation_uri) -> dict | None:
    """The ``recommendation.json`` of a ModelEvaluation folder (``None`` when the evaluation
    ran no leave-one-cohort-out with ``recipe:consensus``, or there is no evaluation)."""
    if evaluation_uri is None:
        return None
    path = Path(evaluation_uri) / RECOMMENDATION_JSON
    if not path.is_file():
        return None
    from amu_tf.data.text_files import read_json  # one line for a damaged file

    return read_json(path, "the evaluation's recommendation", error=SpecError)


def recommended_model(config: RunConfig, recommendation: dict | None = None) -> str | None:
    """The model a run on real cohorts recommends for a new cohort: the measured one
    (:func:`amu_tf.evaluation.recommendation.recommend`), else ``recipe:consensus`` when the
    run trained it, else none. Always none on the synthetic default."""
    if config.synthetic:
        return None
    if recommendation and recommendation.get("recommended") in config.models:
        return recommendation["recommended"]
    return RECOMMENDED if RECOMMENDED in config.models else None


def export_choices(config: RunConfig, recommendation: dict | None = None) -> list[tuple[str, str]]:
    """``[(model, served name)]`` a run exports: its first zoo model (named ``--export-name``,
    ``amu_default`` on the synthetic default, else after the model), and on real cohorts
    also the model recommended for a new cohort (:func:`recommended_model`) when it was
    trained and is not that zoo model."""
    chosen = []
    zoo = zoo_models(config.models)
    if zoo:
        chosen.append((zoo[0], config.export_name or (
            SYNTHETIC_EXPORT_NAME if config.synthetic else safe_name(zoo[0]))))
    rec = recommended_model(config, recommendation)
    if rec is not None and rec not in dict(chosen):
        chosen.append((rec, safe_name(rec)))
    return chosen


def export_run(run_dir, config: RunConfig, evaluation_uri, say=None, force=False,
               export_dir=None) -> dict:
    """Export what a run exports (:func:`~pipelines.run_folder.export_choices`) with the
    run's evaluation: a blessed model, or any with ``force``; an unblessed one is skipped
    with the reason, and so is a recommended model that cannot be written as a SavedModel
    (it is served from its Model artifact). The recommended model's export carries the
    recommendation (rule, why, the selection caveat) in its metadata. Returns
    ``{model: PushedModel artifact}`` (:func:`recommended_model` names the recommended one)."""
    import click

    from amu_tf.errors import ArtifactError
    from components.export import NotBlessedError, run_export

    say = say or click.echo
    exported = {}
    recommendation = measured_recommendation(evaluation_uri)
    rec = recommended_model(config, recommendation)
    chosen = export_choices(config, recommendation)
    if not chosen:
        say("  nothing to export: no zoo (Keras) model among the run's models")
    for model, name in chosen:
        model_dir = Path(run_dir) / "train" / safe_name(model)
        note = None
        if model == rec:
            note = ({k: recommendation.get(k) for k in ("protocol", "rule", "why", "note")}
                    if recommendation else
                    {"why": "the documented default (docs/generalisation.md): this run's "
                            "evaluation holds no recommendation.json (no leave-one-cohort-out "
                            "with recipe:consensus, or a run of an older amu-tf)"})
        try:
            art = run_export(model_dir, base_dir=export_dir or config.export_dir, name=name,
                             evaluation_uri=evaluation_uri, force=force, recommendation=note)
        except NotBlessedError as exc:
            say(f"  {model} not exported: {exc}")
            continue
        except ArtifactError as exc:
            if model != rec:
                raise
            say(f"  {model} (recommended for a new cohort) not exported as a SavedModel: "
                f"{exc}; predict with it from its Model artifact: amu predict --model "
                f"{model_dir} --input COHORT.toml")
            continue
        exported[model] = art
        why = ""
        if model == rec:
            why = (" (recommended for a new cohort: measured under leave-one-cohort-out)"
                   if recommendation else " (recommended for a new cohort: the documented "
                   "default; the evaluation holds no recommendation)")
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
