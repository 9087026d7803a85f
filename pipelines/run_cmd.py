"""`amu run`: the whole pipeline, one step after another, each writing its artifact under
the run folder (``runs/default/<step>/``).

    amu run                                   # synthetic default cohorts, seeded
    amu run --cohorts examples/cohorts/*.toml --data-root ../shared/data
    amu run --quick                           # a small, fast smoke run
    amu run --config runs/default/run_config.toml --out runs/again   # repeat a run

The steps are the list ``STEPS``: ``(name, function(ctx))``, in the order ingest -> audit ->
transform -> train -> evaluate -> interpret -> report -> export. A step reads only the
artifacts earlier steps wrote (``ctx.artifacts[name]``, each a folder plus
``artifact.json``) and the run's :class:`~pipelines.run_config.RunConfig`, and records its
own artifact in ``ctx.artifacts``; nothing else passes between steps, so `amu report RUN_DIR`
and `amu export RUN_DIR` redo the last two steps from the folder alone.
"""

from __future__ import annotations

import contextlib

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from amu_tf.artifacts import safe_name
from amu_tf.errors import AmuError
from pipelines.strategy_option import strategy_option
from pipelines.defaults import calibrated, keras_params, use_signatures_dir
from pipelines.run_config import RUN_CONFIG_FILE, RunConfig
from pipelines.run_folder import (RUN_RECORD, export_run, measured_recommendation,
                                  recommended_model, zoo_models)

#: Baselines explained beside the zoo model by default (the paper's three: SVM, XGBoost, AMU).
INTERPRET_BASELINES = ("xgboost", "svm")


@dataclass
class RunContext:
    """What the steps share: the configuration, the run folder, and the artifacts written so
    far (by step name; ``train`` maps model names to Model artifacts)."""

    out: Path
    config: RunConfig
    artifacts: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    dropped_models: dict = field(default_factory=dict)  # model -> why it left the run

    def step_dir(self, name: str) -> Path:
        return self.out / name

    @property
    def table_uri(self) -> Path:
        return Path(self.artifacts["ingest"].uri)

    def say(self, msg: str):
        click.echo(msg)


class Interrupted(AmuError):
    """Ctrl-C during `amu run`: the run is recorded ``failed`` and the usual exit status of
    an interrupted command is returned."""

    exit_code = 130


class Terminated(AmuError):
    """SIGTERM during `amu run` (``timeout``, a batch system's kill): recorded ``failed``
    like Ctrl-C, with the usual exit status 143."""

    exit_code = 143


class _SigTerm(BaseException):
    """Raised in the main thread by the SIGTERM handler, so the run unwinds as on Ctrl-C."""


@contextlib.contextmanager
def _sigterm_unwinds():
    """While the pipeline runs, SIGTERM raises :class:`_SigTerm` (the default handler would
    kill the process with its run record still saying ``running``)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _SigTerm()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------------ steps
def step_ingest(ctx: RunContext):
    from components.ingest import format_summary, run_ingest

    c = ctx.config
    specs = list(c.cohorts)
    if not specs:  # the embedded default: generate the synthetic cohorts, seeded
        from amu_tf.data.synthetic import generate_default_cohorts

        data_dir = ctx.out / "data"
        specs = generate_default_cohorts(data_dir, seed=c.seed, signal=c.signal,
                                         n_per_cohort=c.n_per_cohort)
        ctx.say(f"synthetic default cohorts (seed {c.seed}, signal "
                f"{'on' if c.signal else 'off'}) written to {data_dir}")
    art = run_ingest([str(s) for s in specs], ctx.step_dir("ingest"), data_root=c.data_root)
    for s in art.properties.get("cohorts", {}).values():
        ctx.say("  " + format_summary(s))
    ctx.artifacts["ingest"] = art
    check_protocols_fit(art.uri, c)
    drop_unscorable_signatures(ctx, art.uri)


def drop_unscorable_signatures(ctx: RunContext, table_uri) -> None:
    """The published signatures (``sig:``) a cohort of the table cannot score (below the
    coverage floor) leave the run with a line each, before anything is fitted: a library of
    59 signatures always has some whose genes a cohort lacks (``amu evaluate`` with one named
    signature refuses it instead)."""
    from dataclasses import replace

    from amu_tf.biomarkers.signature_library import unscorable_signatures
    from amu_tf.data.cohort_table import load_cohort_table

    c = ctx.config
    if not any(str(m).startswith("sig:") for m in c.models):
        return
    table, _ = load_cohort_table(table_uri)
    dropped = unscorable_signatures(table, c.models)
    if dropped:
        ctx.config = replace(c, models=[m for m in c.models if m not in dropped])
        ctx.dropped_models = dropped
        ctx.say(f"  {len(dropped)} published signature(s) left out (each cannot be scored "
                "here; why):")
        for name, why in dropped.items():
            ctx.say(f"    {name}: {why}")


def check_protocols_fit(table_uri, c: RunConfig) -> None:
    """Every protocol of the run can be split on the table (folds vs patients per class,
    the external cohorts exist and are labeled), checked before anything is fitted. Reads
    only the table's sample metadata (the splits need no expression)."""
    import pandas as pd

    from amu_tf.data.cohort_table import TABLE_FILE
    from amu_tf.evaluation.protocols import protocol_folds

    table = pd.read_csv(Path(table_uri) / TABLE_FILE,
                        usecols=["sample", "patient", "cohort", "response"],
                        dtype={"sample": str, "patient": str, "cohort": str})
    for protocol in c.protocols:
        protocol_folds(table, protocol, seed=c.seed, n_splits=c.folds, n_repeats=c.repeats,
                       train_cohorts=c.train_cohorts, test_cohorts=c.test_cohorts)


def step_audit(ctx: RunContext):
    from amu_tf.errors import LeakageError
    from components.audit import run_audit

    art, result = run_audit(ctx.table_uri, ctx.step_dir("audit"))
    ctx.artifacts["audit"] = art
    for line in result.lines():
        ctx.say("  " + line)
    if result.has_leak and not ctx.config.allow_leaks:
        raise LeakageError(f"the leakage audit found {len(result.leaks)} leak(s) in the "
                           f"table (see {art.uri}/report.md); rerun with --allow-leaks to "
                           "continue anyway")


def step_transform(ctx: RunContext):
    """The chosen transform fitted on the labeled rows: the TransformGraph the train step's
    final models use (evaluate refits it inside every split)."""
    from components.transform import run_transform

    ctx.artifacts["transform"] = run_transform(ctx.table_uri, ctx.step_dir("transform"),
                                               ctx.config.transform, labeled_only=True)


#: Searched baselines slow enough to gain from a parallel hyper-parameter search (the search's
#: results do not depend on n_jobs: the inner folds and candidates are seeded).
PARALLEL_SEARCH = ("rf", "xgboost", "adaboost")


def estimator_params(c: RunConfig) -> dict:
    """Per-model params of the run: epochs/patience for the zoo models, the search's
    ``n_jobs`` for the slow searched baselines."""
    params = keras_params(c.models, c.epochs, c.patience)
    if c.strategy != "default":  # tf.distribute for the zoo models
        for p in params.values():
            p["strategy"] = c.strategy
    if c.n_jobs != 1:
        params.update({m: {"n_jobs": c.n_jobs} for m in c.models if m in PARALLEL_SEARCH})
    return params


def step_train(ctx: RunContext):
    """The final models: each fitted on every labeled row (Model artifacts), on the
    TransformGraph's fitted transform."""
    from components.train import run_train

    c = ctx.config
    params = estimator_params(c)
    zoo = zoo_models(c.models)
    models = {}
    for m in c.models:
        p = dict(params.get(m, {}))
        if m in zoo:  # show its progress bar over epochs
            p["verbose"] = 1
        models[m] = run_train(ctx.table_uri, ctx.step_dir("train") / safe_name(m), model=m,
                              transform=c.transform, seed=c.seed,
                              transform_uri=ctx.artifacts["transform"].uri,
                              calibrate=c.calibrate, **p)
        ctx.say(f"  {m}: threshold {models[m].properties.get('threshold', float('nan')):.3f} "
                f"-> {models[m].uri}")
    ctx.artifacts["train"] = models


def step_evaluate(ctx: RunContext):
    from components.evaluate import format_results, run_evaluate

    c = ctx.config
    art, results, blessing = run_evaluate(
        ctx.table_uri, ctx.step_dir("evaluate"), c.models, c.protocols,
        transform=c.transform, seed=c.seed, n_splits=c.folds, n_repeats=c.repeats,
        n_boot=c.n_boot, estimator_params=calibrated(estimator_params(c), c.models,
                                                     c.calibrate),
        train_cohorts=c.train_cohorts, test_cohorts=c.test_cohorts,
        audit_uri=ctx.artifacts["audit"].uri if "audit" in ctx.artifacts else None,
        input_artifacts=list(ctx.artifacts.get("train", {}).values()),
        data_note=c.data_note, dropped_models=ctx.dropped_models)
    ctx.artifacts["evaluate"] = art
    ctx.say(format_results(results, blessing))
    rec = measured_recommendation(art.uri)
    if rec is not None:
        ctx.say(f"  recommended for a new cohort: {rec['recommended']} ({rec['why']})")


def interpret_models(models, chosen=None) -> list[str]:
    """The models ``amu run`` explains: ``chosen`` (all must be among ``models``), else the
    first zoo model plus xgboost and svm when they were trained."""
    from amu_tf.errors import InputDataError

    if chosen:
        bad = [m for m in chosen if m not in models]
        if bad:
            raise InputDataError(f"--interpret-models: {bad[0]!r} is not among the run's models "
                                 f"({', '.join(models)})")
        return list(chosen)
    return zoo_models(models)[:1] + [m for m in INTERPRET_BASELINES if m in models]


def step_interpret(ctx: RunContext):
    """SHAP (and, for the zoo model, the gene-embedding analysis, survival, enrichment) of the
    final models: an Interpretation artifact."""
    from components.interpret import run_interpret

    c = ctx.config
    names = interpret_models(c.models, c.interpret_models)
    if not names:
        ctx.say("  no model to interpret (none of the zoo models, xgboost, svm were trained)")
        return
    trained = ctx.artifacts["train"]
    ctx.artifacts["interpret"] = art = run_interpret(
        [trained[m].uri for m in names], ctx.table_uri, ctx.step_dir("interpret"),
        string=c.string, gmt=c.gmt, seed=c.seed,
        n_explain=c.n_explain, n_background=c.n_background, n_perm=c.n_perm)
    for name, expl in art.properties.get("explainers", {}).items():
        ctx.say(f"  {name}: {expl}")
    for part, why in art.properties.get("skipped", {}).items():
        ctx.say(f"  skipped {part}: {why}")
    ctx.say(f"  -> {art.uri}")


def step_report(ctx: RunContext):
    """The run's report.md, rendered from the evaluation, audit and interpretation
    artifacts (a Report artifact)."""
    from components.report import run_report

    interp = ctx.artifacts.get("interpret")
    ctx.artifacts["report"] = run_report(
        ctx.artifacts["evaluate"].uri, ctx.step_dir("report"),
        audit_uri=ctx.artifacts["audit"].uri if "audit" in ctx.artifacts else None,
        interpretation_uri=interp.uri if interp is not None else None)


def step_export(ctx: RunContext):
    """The first zoo model (and, on real cohorts, the model recommended for a new cohort,
    measured by the evaluation) as TF Serving version folders under --export-dir, when the
    evaluation blessed them."""
    evaluation = ctx.artifacts["evaluate"].uri
    exported = export_run(ctx.out, ctx.config, evaluation, say=ctx.say)
    rec = recommended_model(ctx.config, measured_recommendation(evaluation))
    zoo = zoo_models(ctx.config.models)
    if zoo and zoo[0] in exported:
        ctx.artifacts["export"] = exported[zoo[0]]
    if rec in exported:
        ctx.artifacts["export_recommended"] = exported[rec]


#: The pipeline, in order.
STEPS = [
    ("ingest", step_ingest),
    ("audit", step_audit),
    ("transform", step_transform),
    ("train", step_train),
    ("evaluate", step_evaluate),
    ("interpret", step_interpret),
    ("report", step_report),
    ("export", step_export),
]


def run_state(out: Path) -> tuple[str | None, str]:
    """``(status, who)`` of the run recorded in ``out/run.json``: ``complete``, ``failed``,
    ``running`` (its process alive, or on another host: it cannot be judged from here),
    ``abandoned`` (recorded ``running`` by a process of this host that is gone: killed), or
    None when there is no readable record. ``who`` names the process for messages."""
    from amu_tf.artifacts import _HOST, pid_alive
    from amu_tf.data.text_files import read_json
    from amu_tf.errors import AmuError

    try:
        record = read_json(out / RUN_RECORD, "run record")
    except AmuError:
        return None, ""
    if not isinstance(record, dict):
        return None, ""
    status = record.get("status")
    pid, host = record.get("pid"), record.get("host")
    who = f"process {pid}" + (f" on host {host}" if host and host != _HOST else "")
    if status == "running":
        if isinstance(pid, int) and host == _HOST and not pid_alive(pid):
            return "abandoned", who
        if not isinstance(pid, int):  # a record of an older amu-tf: no pid to judge
            return "abandoned", "an unknown process"
        return "running", who
    return status, who


def prepare_run_folder(out: Path, overwrite: bool, chief: bool = True) -> None:
    """Refuse to run into an existing, non-empty run folder (its report would sit beside
    the new run's artifacts) unless ``overwrite``, which removes it first, as a whole. A run
    that failed, or was killed (recorded ``running``, its process gone), is replaced by a
    plain rerun: its folder is a leftover, not a result. A run still in progress is never
    removed, not even with ``overwrite`` (its artifacts would vanish under it)."""
    import shutil

    from amu_tf.errors import SpecError

    if not chief or not out.exists():
        return
    if out.is_file():
        raise SpecError(f"--out {out} is a file; give a run folder")
    if not any(out.iterdir()):
        return
    state, who = run_state(out)
    if state == "running":
        raise SpecError(f"run folder {out} holds a run still in progress ({who}); wait for it "
                        "to end or choose another --out (--overwrite does not remove a "
                        "running run)")
    if state in ("failed", "abandoned"):
        click.echo(f"replacing the {'failed' if state == 'failed' else 'killed'} run in {out}",
                   err=True)
        shutil.rmtree(out)
        return
    if not overwrite:
        raise SpecError(f"run folder {out} exists already; pass --overwrite to replace it, "
                        "or choose another --out")
    if not ((out / RUN_RECORD).is_file() or (out / "ingest" / "artifact.json").is_file()):
        raise SpecError(f"--overwrite: {out} is not an amu run folder (no {RUN_RECORD}, no "
                        "ingest artifact); it is not removed")
    shutil.rmtree(out)


def check_run_inputs(c: RunConfig) -> None:
    """What ``amu run`` reads or writes outside its run folder, and its option values, are
    checked before any work (and before ``--overwrite`` removes a previous run): every cohort
    spec parses and its files exist, ``--export-dir`` is not a file, ``--export-name`` is a
    plain folder name, models, protocols, transform and counts are valid."""
    from amu_tf.data.cohort_spec import CohortSpec
    from amu_tf.errors import SpecError
    from components.export import NAME_PATTERN
    from pipelines.option_checks import (check_counts, check_models, check_protocols,
                                         check_transform)

    from amu_tf.training.distribution_strategy import STRATEGY_NAMES
    from amu_tf.training.probability_calibration import METHODS as CALIBRATIONS

    check_models(c.models, c.interpret_models)
    if c.calibrate is not None and c.calibrate not in CALIBRATIONS:
        raise SpecError(f"calibrate {c.calibrate!r}: choose {' or '.join(CALIBRATIONS)}")
    check_protocols(c.protocols)
    check_transform(c.transform, c.models, allow_gene_choice=False)
    check_counts(folds=c.folds, repeats=c.repeats, n_boot=c.n_boot, epochs=c.epochs,
                 patience=c.patience, n_explain=c.n_explain, n_background=c.n_background,
                 n_perm=c.n_perm, n_jobs=c.n_jobs, n_per_cohort=c.n_per_cohort, seed=c.seed,
                 config=True)
    if len(set(c.models)) != len(c.models):
        dup = next(m for m in c.models if c.models.count(m) > 1)
        raise SpecError(f"--models: {dup!r} is given twice")
    from amu_tf.data.transforms import get_transform

    try:
        get_transform(c.transform)
    except (KeyError, ValueError) as exc:
        raise SpecError(f"--transform {c.transform!r}: {exc}") from None
    if not str(c.export_dir).strip():
        raise SpecError("--export-dir is empty; give a folder for the exports")
    if c.strategy not in STRATEGY_NAMES:
        raise SpecError(f"--strategy {c.strategy!r}: choose from {', '.join(STRATEGY_NAMES)}")
    from amu_tf.data.text_files import check_text_file, read_text

    if c.string is not None:  # readable text: refused now, not after the SHAP work
        check_text_file(c.string, "STRING file", error=SpecError)
    if c.gmt is not None:  # a GMT is small: decoded whole
        read_text(c.gmt, "GMT file", error=SpecError)
    for spec in c.cohorts:
        CohortSpec.from_toml(spec, data_root=c.data_root).check_files()
    if Path(c.export_dir).is_file():
        raise SpecError(f"--export-dir {c.export_dir} is a file; give a folder for the exports")
    if c.export_name is not None and (not NAME_PATTERN.match(c.export_name)
                                      or ".." in c.export_name):
        raise SpecError(f"--export-name {c.export_name!r}: use letters, digits, '_', '-' and "
                        "'.' only (it is one folder under --export-dir)")


def write_run_record(out: Path, config: RunConfig, status: str, timings=None,
                     error=None) -> None:
    """``run.json``: whether the run completed (``running`` until the last step is done,
    ``failed`` with the error when a step raised: a folder whose record still says
    ``running`` was killed), the step timings, and the configuration (also in
    ``run_config.toml``, the file `amu run --config` reads)."""
    import json
    from dataclasses import asdict

    from amu_tf import __version__
    from amu_tf.artifacts import to_jsonable, write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    from amu_tf.artifacts import _HOST

    record = {"status": status, "pid": os.getpid(), "host": _HOST,
              "amu_tf_version": __version__, "config": RUN_CONFIG_FILE,
              "options": asdict(config), "timings_seconds": timings or {}}
    if error is not None:
        record["error"] = error
    write_text_atomic(out / RUN_RECORD,
                      json.dumps(to_jsonable(record), indent=2, default=str) + "\n")


def run_pipeline(ctx: RunContext, steps=None) -> RunContext:
    """Run ``steps`` (default ``STEPS``) in order, timing each."""
    for name, fn in steps or STEPS:
        ctx.say(f"[{name}]")
        t0 = time.perf_counter()
        fn(ctx)
        ctx.timings[name] = round(time.perf_counter() - t0, 1)
        ctx.say(f"[{name}] done in {ctx.timings[name]:.1f} s")
    return ctx


def _given_options(click_ctx, params: dict) -> dict:
    """The options given on the command line (not left at their click default), as
    RunConfig fields (a comma-separated list stays a string: RunConfig splits it)."""
    from click.core import ParameterSource

    return {name: value for name, value in params.items()
            if click_ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                                        ParameterSource.ENVIRONMENT)}


_D = RunConfig()


@click.command("run")
@click.argument("more_specs", nargs=-1, type=click.Path())
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="A run configuration (TOML; every option below by its name with '_', "
                   "e.g. n_boot = 200). Options given here override it. Each run writes its "
                   f"own as RUN_DIR/{RUN_CONFIG_FILE}.")
@click.option("--cohorts", "cohorts", multiple=True, type=click.Path(),
              help="Cohort spec TOML files; a shell glob works (--cohorts dir/*.toml) "
                   "[synthetic default].")
@click.option("--data-root", type=click.Path(), default=None,
              help="Folder the specs' relative paths resolve against.")
@click.option("--out", "out", default="runs/default", show_default=True, type=click.Path(),
              help="Run folder; each step writes <out>/<step>/.")
@click.option("--models", default=None,
              help="Comma-separated estimators [the default set: `amu zoo`; TIDE and every "
                   "published signature of the library (sig:*) on real cohorts only]; "
                   "'sig:*' or sig:ssgsea etc. name signature groups.")
@click.option("--calibrate", type=click.Choice(["sigmoid", "isotonic"]), default=None,
              help="Recalibrate every model's probabilities (Platt or isotonic) on "
                   "out-of-fold predictions of training rows only: under the protocols, each "
                   "split's (the Calibration section measures these); for the trained and "
                   "exported models, all labeled rows (the threshold then lives in the "
                   "recalibrated scale). The report and the export's metadata say so.")
@click.option("--signatures", "signatures_dir", default=None,
              type=click.Path(exists=True, file_okay=False),
              help="The published-signature folder (bhklab SignatureSets format) the sig: "
                   "models read [$AMU_TF_SIGNATURES, else ../shared/data/signatures].")
@click.option("--protocols", default=",".join(_D.protocols), show_default=True,
              help="Comma-separated: cv, loco, external, paper (LEAKY).")
@click.option("--transform", default=_D.transform, show_default=True,
              help="Transform fitted per split: cohort_z, rank, paper, reference_z (all on the "
                   "160-gene panel).")
@click.option("--train-cohorts", default=None, help="external: comma-separated training cohorts.")
@click.option("--test-cohorts", default=None, help="external: cohorts to score [the others].")
@click.option("--folds", default=_D.folds, show_default=True, help="cv folds.")
@click.option("--repeats", default=_D.repeats, show_default=True, help="cv repeats.")
@click.option("--n-boot", default=_D.n_boot, show_default=True,
              help="Bootstrap resamples for CIs.")
@click.option("--epochs", default=_D.epochs, show_default=True, help="Max epochs of zoo models.")
@click.option("--patience", default=_D.patience, show_default=True,
              help="Early-stopping patience.")
@click.option("--n-jobs", default=_D.n_jobs, show_default=True,
              help="Parallel jobs of the rf/xgboost/adaboost hyper-parameter searches.")
@click.option("--allow-leaks/--no-allow-leaks", default=False,
              help="Continue when the leakage audit finds a leak.")
@click.option("--signal/--no-signal", default=True, show_default=True,
              help="Synthetic default: plant the response signal or not.")
@click.option("--quick/--no-quick", default=False,
              help="Smoke run: small synthetic cohorts, amu:tiny + logreg, few epochs, 3 folds "
                   "(given here, its values replace a --config file's; other options given "
                   "here replace both).")
@click.option("--interpret-models", default=None,
              help="Comma-separated models to interpret [the first zoo model, plus xgboost and "
                   "svm when trained].")
@click.option("--string", "string", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Interaction file in STRING format for the network-agreement test.")
@click.option("--gmt", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Gene sets (GMT) for enrichment of the top genes.")
@click.option("--n-explain", default=_D.n_explain, show_default=True,
              help="Rows explained by SHAP (a seeded sample).")
@click.option("--export-dir", default=_D.export_dir, show_default=True, type=click.Path(),
              help="TF Serving base folder: the export is <export-dir>/<name>/<version>/.")
@click.option("--export-name", default=None,
              help="Served model name [amu_default on the synthetic default, else the model "
                   "name, e.g. amu_small].")
@click.option("--seed", default=_D.seed, show_default=True)
@click.option("--overwrite", is_flag=True,
              help="Replace an existing run folder --out (removed first, as a whole).")
@strategy_option
@click.pass_context
def command(click_ctx, more_specs, config_file, out, overwrite, signatures_dir, **options):
    """Run ingest -> audit -> transform -> train -> evaluate -> interpret -> report ->
    export, print where the report is and the exported version folder.

    Without cohort specs it runs on the synthetic default cohorts it generates (seeded).
    Only a model the evaluation blessed is exported (`amu export RUN_DIR --force` exports
    it anyway)."""
    use_signatures_dir(signatures_dir)
    given = _given_options(click_ctx, options)
    cohorts = list(options["cohorts"]) + list(more_specs)  # `--cohorts a.toml b.toml` (glob)
    if cohorts:
        given["cohorts"] = cohorts
    config = RunConfig.build(config_file, **given)
    if config.strategy == "multiworker":
        from amu_tf.training.distribution_strategy import get_strategy

        get_strategy(config.strategy)  # must exist before any other TensorFlow work
    check_run_inputs(config)
    from amu_tf.training.chief_output import written_by_chief
    from amu_tf.training.cluster_config import is_chief

    prepare_run_folder(Path(out), overwrite, is_chief())
    # Under multiworker every worker runs the pipeline (training is collective); only the
    # chief's run folder and export stay, the others write to a temporary folder.
    with written_by_chief(out) as run_dir:
        if not is_chief():
            from dataclasses import replace

            config = replace(config, export_dir=str(Path(run_dir) / "saved_models"))
        ctx = RunContext(out=Path(run_dir), config=config)
        write_run_record(ctx.out, config, "running")
        config.write(ctx.out / RUN_CONFIG_FILE)
        t0 = time.perf_counter()
        try:
            with _sigterm_unwinds():
                run_pipeline(ctx)
        except BaseException as exc:  # the record says the run did not complete, and why
            write_run_record(ctx.out, config, "failed", timings=ctx.timings,
                             error=f"{type(exc).__name__}: {exc}")
            if isinstance(exc, KeyboardInterrupt):  # Ctrl-C: one line, like any failure
                raise Interrupted(f"interrupted; the run in {out} is recorded as failed (a "
                                  "plain rerun replaces it)") from None
            if isinstance(exc, _SigTerm):
                raise Terminated(f"terminated (SIGTERM); the run in {out} is recorded as "
                                 "failed (a plain rerun replaces it)") from None
            raise
        total = time.perf_counter() - t0
        write_run_record(ctx.out, config, "complete", timings=ctx.timings)
    if not is_chief():
        click.echo(f"done in {total:.0f} s; the chief wrote the run folder {out}")
        return
    click.echo(f"done in {total:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in ctx.timings.items())})")
    if "report" in ctx.artifacts:
        click.echo(f"report: {Path(ctx.artifacts['report'].uri) / 'report.md'}")
        click.echo(f"html report: {Path(ctx.artifacts['report'].uri) / 'report.html'}")
    if "export" in ctx.artifacts:
        click.echo(f"exported: {ctx.artifacts['export'].properties['path']}")
    if "export_recommended" in ctx.artifacts:
        rec = ctx.artifacts["export_recommended"]
        click.echo(f"exported ({rec.properties.get('model', rec.properties['name'])}, "
                   f"recommended for a new cohort): {rec.properties['path']}")
