"""`amu run`: the whole pipeline, one step after another, each writing its artifact under
the run folder (``runs/default/<step>/``).

    amu run                                   # synthetic default cohorts, seeded
    amu run --cohorts examples/cohorts/*.toml --data-root ../shared/data
    amu run --quick                           # a small, fast smoke run

The steps are the list ``STEPS``: ``(name, function(ctx))``. A step reads what earlier steps
left in ``ctx`` (``ctx.artifacts[name]``, ``ctx.table_uri``...), writes its artifact at
``ctx.step_dir(name)`` and records it in ``ctx.artifacts``. Adding a step is a function and
one entry in ``STEPS`` (or ``STEPS.insert``).

Order: ingest, audit, transform, train, interpret, evaluate, export. Interpret runs before
evaluate so that evaluate writes the one final ``report.md`` with the interpretation section
inside (artifacts are immutable: no step edits a finished artifact's files, whose content
hash would then lie); export runs last so the exported model's metadata carries the honest
metrics of the evaluation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from amu_tf.artifacts import safe_name
from amu_tf.training.distribute import strategy_option
from pipelines.defaults import (DEFAULT_MODELS, EPOCHS, PATIENCE, RUN_BIOMARKERS,
                               RUN_RECIPES, SYNTHETIC_BIOMARKERS, keras_params, split_list)

QUICK = {"models": "amu:tiny,logreg,cd8a,cxcl9", "epochs": 8, "patience": 3, "folds": 3, "n_boot": 200,
         "n_per_cohort": 40, "n_explain": 40, "n_perm": 200}

#: Baselines explained beside the zoo model by default (the paper's three: SVM, XGBoost, AMU).
INTERPRET_BASELINES = ("xgboost", "svm")


@dataclass
class RunContext:
    """What the steps share: options, the run folder, and the artifacts written so far."""

    out: Path
    options: dict
    specs: list = field(default_factory=list)
    data_root: str | None = None
    artifacts: dict = field(default_factory=dict)
    table_uri: Path | None = None
    audit: dict | None = None
    timings: dict = field(default_factory=dict)
    specs_given: bool = False
    results: list | None = None
    blessing: dict | None = None

    def step_dir(self, name: str) -> Path:
        return self.out / name

    def say(self, msg: str):
        click.echo(msg)


# ------------------------------------------------------------------------------ steps
def step_ingest(ctx: RunContext):
    from components.ingest import format_summary, run_ingest

    if not ctx.specs:  # the embedded default: generate the synthetic cohorts, seeded
        from amu_tf.data.synthetic import generate_default_cohorts

        data_dir = ctx.out / "data"
        ctx.specs = generate_default_cohorts(
            data_dir, seed=ctx.options["seed"], signal=ctx.options["signal"],
            n_per_cohort=ctx.options.get("n_per_cohort"))
        ctx.say(f"synthetic default cohorts (seed {ctx.options['seed']}, signal "
                f"{'on' if ctx.options['signal'] else 'off'}) written to {data_dir}")
    art = run_ingest([str(s) for s in ctx.specs], ctx.step_dir("ingest"),
                     data_root=ctx.data_root)
    for s in art.properties.get("cohorts", {}).values():
        ctx.say("  " + format_summary(s))
    ctx.artifacts["ingest"] = art
    ctx.table_uri = Path(art.uri)


def step_audit(ctx: RunContext):
    from amu_tf.errors import LeakageError
    from components.audit import run_audit

    art, result = run_audit(ctx.table_uri, ctx.step_dir("audit"))
    ctx.artifacts["audit"] = art
    for line in result.lines():
        ctx.say("  " + line)
    ctx.audit = {"has_leak": result.has_leak, "allowed": ctx.options["allow_leaks"],
                 "summary": "\n".join(result.lines()), "uri": str(art.uri)}
    if result.has_leak and not ctx.options["allow_leaks"]:
        raise LeakageError(f"the leakage audit found {len(result.leaks)} leak(s) in the "
                           f"table (see {art.uri}/report.md); rerun with --allow-leaks to "
                           "continue anyway")


def step_transform(ctx: RunContext):
    """A TransformGraph of the chosen transform on all labeled rows, for inspection and
    export; train and evaluate refit it on their own training rows."""
    from components.transform import run_transform

    ctx.artifacts["transform"] = run_transform(ctx.table_uri, ctx.step_dir("transform"),
                                               ctx.options["transform"])


#: Searched baselines slow enough to gain from a parallel hyper-parameter search (the search's
#: results do not depend on n_jobs: the inner folds and candidates are seeded).
PARALLEL_SEARCH = ("rf", "xgboost", "adaboost")


def estimator_params(o: dict) -> dict:
    """Per-model params of the run: epochs/patience for the zoo models, the search's
    ``n_jobs`` for the slow searched baselines."""
    params = keras_params(o["models"], o["epochs"], o["patience"])
    if o.get("strategy", "default") != "default":  # tf.distribute for the zoo models
        for p in params.values():
            p["strategy"] = o["strategy"]
    if o.get("n_jobs", 1) != 1:
        params.update({m: {"n_jobs": o["n_jobs"]} for m in o["models"] if m in PARALLEL_SEARCH})
    return params


def step_train(ctx: RunContext):
    """The final models: each fitted on every labeled row (Model artifacts)."""
    from components.train import run_train

    o = ctx.options
    params = estimator_params(o)
    zoo = _zoo_models(o["models"])
    models = {}
    for m in o["models"]:
        safe = safe_name(m)
        p = dict(params.get(m, {}))
        if m in zoo:  # show its progress bar over epochs
            p["verbose"] = 1
        models[m] = run_train(ctx.table_uri, ctx.step_dir("train") / safe, model=m,
                              transform=o["transform"], seed=o["seed"], **p)
        ctx.say(f"  {m}: threshold {models[m].properties.get('threshold', float('nan')):.3f} "
                f"-> {models[m].uri}")
    ctx.artifacts["train"] = models


def _zoo_models(models) -> list[str]:
    from amu_tf.training import estimator_kind

    return [m for m in models if estimator_kind(m) == "keras"]


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
    return _zoo_models(models)[:1] + [m for m in INTERPRET_BASELINES if m in models]


def step_interpret(ctx: RunContext):
    """SHAP (and, for the zoo model, the gene-embedding analysis, survival, enrichment) of the
    final models; the Interpretation artifact's section goes into evaluate's report."""
    from components.interpret import run_interpret

    o = ctx.options
    names = interpret_models(o["models"], o.get("interpret_models"))
    if not names:
        ctx.say("  no model to interpret (none of the zoo models, xgboost, svm were trained)")
        return
    trained = ctx.artifacts["train"]
    ctx.artifacts["interpret"] = art = run_interpret(
        [trained[m].uri for m in names], ctx.table_uri, ctx.step_dir("interpret"),
        string=o.get("string"), gmt=o.get("gmt"), seed=o["seed"],
        n_explain=o["n_explain"], n_background=o["n_background"], n_perm=o["n_perm"])
    for name, expl in art.properties.get("explainers", {}).items():
        ctx.say(f"  {name}: {expl}")
    for part, why in art.properties.get("skipped", {}).items():
        ctx.say(f"  skipped {part}: {why}")
    ctx.say(f"  -> {art.uri}")


def step_evaluate(ctx: RunContext):
    from components.evaluate import format_results, run_evaluate

    o = ctx.options
    inputs = [a for a in [ctx.artifacts.get("audit")] if a is not None]
    inputs += list(ctx.artifacts.get("train", {}).values())
    extra = []
    interp = ctx.artifacts.get("interpret")
    if interp is not None:
        from components.interpret import report_section

        inputs.append(interp)
        # links relative to the report's final folder (the artifact is renamed into place)
        extra.append(report_section(interp.uri, relative_to=ctx.step_dir("evaluate")))
    art, results, blessing = run_evaluate(
        ctx.table_uri, ctx.step_dir("evaluate"), o["models"], o["protocols"],
        transform=o["transform"], seed=o["seed"], n_splits=o["folds"], n_repeats=o["repeats"],
        n_boot=o["n_boot"], estimator_params=estimator_params(o),
        train_cohorts=o.get("train_cohorts"), test_cohorts=o.get("test_cohorts"),
        audit=ctx.audit, input_artifacts=inputs, data_note=o.get("data_note"),
        extra_sections=extra)
    ctx.artifacts["evaluate"] = art
    ctx.results, ctx.blessing = results, blessing
    ctx.say(format_results(results, blessing))


def honest_metrics(results, blessing, model: str, evaluation_uri=None) -> dict:
    """The honest protocols' metrics of ``model`` (AUC with 95% CI, AP, F1, n) for the export
    metadata; LEAKY protocols are left out."""
    per = {}
    for r in results:
        if r.leaky:
            continue
        row = r.metrics.set_index("model").loc[model]
        per[r.label] = {"description": r.description, "n": int(row["n"]),
                        "n_responders": int(row["n_responders"])}
        for k in ("roc_auc", "ap_responder", "f1_weighted"):
            per[r.label][k] = {"value": round(float(row[k]), 4),
                               "ci95": [round(float(row[f"{k}_ci_low"]), 4),
                                        round(float(row[f"{k}_ci_high"]), 4)]}
    b = (blessing or {}).get(model, {})
    return {
        "source": "amu run: evaluate step (ModelEvaluation artifact"
                  + (f" {evaluation_uri}" if evaluation_uri else "") + ")",
        "note": "Estimated by refitting the transform and the model inside every split of each "
                "honest protocol; the exported model is the same recipe fitted on all labeled "
                "rows. 95% CIs: stratified bootstrap, percentile.",
        "protocols": per,
        "blessed": b.get("blessed"),
        "blessing_reason": b.get("reason"),
    }


def default_export_name(model: str, synthetic_default: bool) -> str:
    if synthetic_default:
        return "amu_default"
    return safe_name(model)


#: the recipe recommended for a new cohort (docs/generalisation.md): exported beside the zoo
#: model when a run on real cohorts trained it
RECOMMENDED = "recipe:consensus"


def step_export(ctx: RunContext):
    """The first zoo model of the run as a TF Serving version folder under --export-dir; on
    real cohorts also the recommended cross-cohort recipe (``recipe_consensus``)."""
    from components.export import run_export

    o = ctx.options
    zoo = _zoo_models(o["models"])
    ev = ctx.artifacts.get("evaluate")
    chosen = zoo[:1]
    if ctx.specs_given and RECOMMENDED in o["models"]:
        chosen.append(RECOMMENDED)
    if not chosen:
        ctx.say("  nothing to export: no zoo (Keras) model among the run's models")
        return
    for model in chosen:
        metrics = (honest_metrics(ctx.results, ctx.blessing, model, ev.uri if ev else None)
                   if ctx.results else None)
        name = (default_export_name(model, False) if model == RECOMMENDED
                else o.get("export_name") or default_export_name(model, not ctx.specs_given))
        art = run_export(ctx.artifacts["train"][model].uri, base_dir=o["export_dir"],
                         name=name, metrics=metrics)
        ctx.artifacts["export" if model == chosen[0] else "export_recommended"] = art
        why = " (recommended for a new cohort)" if model == RECOMMENDED else ""
        ctx.say(f"  {model} exported as {art.properties['name']!r} version "
                f"{art.properties['version']}{why}: {art.properties['path']}")


#: The pipeline, in order (interpret before evaluate: see the module docstring).
STEPS = [
    ("ingest", step_ingest),
    ("audit", step_audit),
    ("transform", step_transform),
    ("train", step_train),
    ("interpret", step_interpret),
    ("evaluate", step_evaluate),
    ("export", step_export),
]


RUN_RECORD = "run.json"


def prepare_run_folder(out: Path, overwrite: bool, chief: bool = True) -> None:
    """Refuse to run into an existing, non-empty run folder (its report would sit beside
    the new run's artifacts) unless ``overwrite``, which removes it first, as a whole."""
    import shutil

    from amu_tf.errors import SpecError

    if not chief or not out.exists():
        return
    if out.is_file():
        raise SpecError(f"--out {out} is a file; give a run folder")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise SpecError(f"run folder {out} exists already; pass --overwrite to replace it, "
                        "or choose another --out")
    if not ((out / RUN_RECORD).is_file() or (out / "ingest" / "artifact.json").is_file()):
        raise SpecError(f"--overwrite: {out} is not an amu run folder (no {RUN_RECORD}, no "
                        "ingest artifact); it is not removed")
    shutil.rmtree(out)


def check_run_inputs(specs, data_root, export_dir, export_name) -> None:
    """Everything ``amu run`` reads or writes outside its run folder is checked before any
    work (and before ``--overwrite`` removes a previous run): every cohort spec parses and its
    files exist, ``--export-dir`` is not a file, ``--export-name`` is a plain folder name."""
    from amu_tf.data.cohort_spec import CohortSpec
    from amu_tf.errors import SpecError

    for spec in specs:
        CohortSpec.from_toml(spec, data_root=data_root).check_files()
    if export_dir is not None and Path(export_dir).is_file():
        raise SpecError(f"--export-dir {export_dir} is a file; give a folder for the exports")
    from components.export import NAME_PATTERN

    if export_name is not None and (not NAME_PATTERN.match(export_name) or ".." in export_name):
        raise SpecError(f"--export-name {export_name!r}: use letters, digits, '_', '-' and "
                        "'.' only (it is one folder under --export-dir)")


def write_run_record(out: Path, options: dict, specs, data_root, status: str,
                     timings=None, error=None) -> None:
    """``run.json``: the run's configuration and whether it completed (``running`` until the
    last step is done, ``failed`` with the error when a step raised: a folder whose record
    still says ``running`` was killed)."""
    import json
    import os

    from amu_tf import __version__
    from amu_tf.artifacts import to_jsonable

    out.mkdir(parents=True, exist_ok=True)
    record = {"status": status, "amu_tf_version": __version__, "specs": [str(s) for s in specs],
              "data_root": str(data_root) if data_root else None, "options": options,
              "timings_seconds": timings or {}}
    if error is not None:
        record["error"] = error
    tmp = out / f".{RUN_RECORD}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(to_jsonable(record), indent=2, default=str) + "\n")
    os.replace(tmp, out / RUN_RECORD)


def run_pipeline(ctx: RunContext, steps=None) -> RunContext:
    """Run ``steps`` (default ``STEPS``) in order, timing each."""
    for name, fn in steps or STEPS:
        ctx.say(f"[{name}]")
        t0 = time.perf_counter()
        fn(ctx)
        ctx.timings[name] = round(time.perf_counter() - t0, 1)
        ctx.say(f"[{name}] done in {ctx.timings[name]:.1f} s")
    return ctx


@click.command("run")
@click.argument("more_specs", nargs=-1, type=click.Path())
@click.option("--cohorts", "cohorts", multiple=True, type=click.Path(),
              help="Cohort spec TOML files; a shell glob works (--cohorts dir/*.toml) "
                   "[synthetic default].")
@click.option("--data-root", type=click.Path(), default=None,
              help="Folder the specs' relative paths resolve against.")
@click.option("--out", "out", default="runs/default", show_default=True, type=click.Path(),
              help="Run folder; each step writes <out>/<step>/.")
@click.option("--models", default=None,
              help=f"Comma-separated estimators [{DEFAULT_MODELS}, and the biomarkers "
                   f"{RUN_BIOMARKERS} (synthetic default cohorts: without tide), and the "
                   f"recipes {RUN_RECIPES}].")
@click.option("--protocols", default="cv,loco", show_default=True,
              help="Comma-separated: cv, loco, external, paper (LEAKY).")
@click.option("--transform", default="cohort_z", show_default=True,
              help="Transform fitted per split: cohort_z, rank, paper, reference_z (all on the "
                   "160-gene panel).")
@click.option("--train-cohorts", default=None, help="external: comma-separated training cohorts.")
@click.option("--test-cohorts", default=None, help="external: cohorts to score [the others].")
@click.option("--folds", default=None, type=int, help="cv folds [5].")
@click.option("--repeats", default=1, show_default=True, help="cv repeats.")
@click.option("--n-boot", default=None, type=int, help="Bootstrap resamples for CIs [1000].")
@click.option("--epochs", default=None, type=int, help="Max epochs of zoo models [40].")
@click.option("--patience", default=None, type=int, help="Early-stopping patience [5].")
@click.option("--n-jobs", default=2, show_default=True,
              help="Parallel jobs of the rf/xgboost/adaboost hyper-parameter searches.")
@click.option("--allow-leaks", is_flag=True, help="Continue when the leakage audit finds a leak.")
@click.option("--signal/--no-signal", default=True, show_default=True,
              help="Synthetic default: plant the response signal or not.")
@click.option("--quick", is_flag=True,
              help="Smoke run: small synthetic cohorts, amu:tiny + logreg, few epochs, 3 folds.")
@click.option("--interpret-models", default=None,
              help="Comma-separated models to interpret [the first zoo model, plus xgboost and "
                   "svm when trained].")
@click.option("--string", "string", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Interaction file in STRING format for the network-agreement test.")
@click.option("--gmt", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Gene sets (GMT) for enrichment of the top genes.")
@click.option("--n-explain", default=None, type=int,
              help="Rows explained by SHAP (a seeded sample) [100].")
@click.option("--export-dir", default="saved_models", show_default=True, type=click.Path(),
              help="TF Serving base folder: the export is <export-dir>/<name>/<version>/.")
@click.option("--export-name", default=None,
              help="Served model name [amu_default on the synthetic default, else the model "
                   "name, e.g. amu_small].")
@click.option("--seed", default=0, show_default=True)
@click.option("--overwrite", is_flag=True,
              help="Replace an existing run folder --out (removed first, as a whole).")
@strategy_option
def command(more_specs, cohorts, data_root, out, models, protocols, transform, train_cohorts,
            test_cohorts, folds, repeats, n_boot, epochs, patience, allow_leaks, signal, quick,
            n_jobs, interpret_models, string, gmt, n_explain, export_dir, export_name, seed,
            overwrite, strategy):
    """Run ingest -> audit -> transform -> train -> interpret -> evaluate -> export, print
    where the report is and the exported version folder.

    Without cohort specs it runs on the synthetic default cohorts it generates (seeded).
    Interpret runs before evaluate so the one report.md includes the interpretation."""
    cohorts = list(cohorts) + list(more_specs)  # `--cohorts a.toml b.toml` after a shell glob
    if strategy == "multiworker":
        from amu_tf.training.distribute import get_strategy

        get_strategy(strategy)  # must exist before any other TensorFlow work
    q = QUICK if quick else {}
    opts = {
        "models": split_list(models or q.get("models") or ",".join(
            [DEFAULT_MODELS, RUN_RECIPES, RUN_BIOMARKERS if cohorts else SYNTHETIC_BIOMARKERS])),
        "protocols": split_list(protocols),
        "transform": transform,
        "train_cohorts": split_list(train_cohorts) if train_cohorts else None,
        "test_cohorts": split_list(test_cohorts) if test_cohorts else None,
        "folds": folds if folds is not None else q.get("folds", 5),
        "repeats": repeats,
        "n_boot": n_boot if n_boot is not None else q.get("n_boot", 1000),
        "epochs": epochs if epochs is not None else q.get("epochs", EPOCHS),
        "patience": patience if patience is not None else q.get("patience", PATIENCE),
        "n_jobs": n_jobs,
        "allow_leaks": allow_leaks,
        "signal": signal,
        "seed": seed,
        "n_per_cohort": q.get("n_per_cohort") if not cohorts else None,
        "interpret_models": split_list(interpret_models) if interpret_models else None,
        "string": string,
        "gmt": gmt,
        "n_explain": n_explain or q.get("n_explain", 100),
        "n_background": 30,
        "n_perm": q.get("n_perm", 1000),
        "export_dir": export_dir,
        "export_name": export_name,
        "strategy": strategy,
    }
    from pipelines.option_checks import (check_counts, check_models, check_protocols,
                                         check_transform)

    check_models(opts["models"], opts["interpret_models"])
    check_protocols(opts["protocols"])
    check_transform(opts["transform"], opts["models"], allow_gene_choice=False)
    check_counts(folds=opts["folds"], repeats=opts["repeats"], n_boot=opts["n_boot"],
                 epochs=opts["epochs"], patience=opts["patience"])
    if not cohorts:
        opts["data_note"] = ("Synthetic default cohorts (amu_tf.data.synthetic, seed "
                             f"{seed}, response signal {'planted' if signal else 'absent'}); "
                             "the planted module is listed in data/synthetic_truth.json.")
    check_run_inputs(list(cohorts), data_root, export_dir, export_name)
    from amu_tf.training.distribute import is_chief, written_by_chief

    prepare_run_folder(Path(out), overwrite, is_chief())
    # Under multiworker every worker runs the pipeline (training is collective); only the
    # chief's run folder and export stay, the others write to a temporary folder.
    with written_by_chief(out) as run_dir:
        if not is_chief():
            opts["export_dir"] = str(Path(run_dir) / "saved_models")
        ctx = RunContext(out=Path(run_dir), options=opts, specs=list(cohorts),
                         data_root=data_root, specs_given=bool(cohorts))
        write_run_record(ctx.out, opts, list(cohorts), data_root, "running")
        t0 = time.perf_counter()
        try:
            run_pipeline(ctx)
        except BaseException as exc:  # the record says the run did not complete, and why
            write_run_record(ctx.out, opts, list(cohorts), data_root, "failed",
                             timings=ctx.timings, error=f"{type(exc).__name__}: {exc}")
            raise
        total = time.perf_counter() - t0
        write_run_record(ctx.out, opts, list(cohorts), data_root, "complete",
                         timings=ctx.timings)
    if not is_chief():
        click.echo(f"done in {total:.0f} s; the chief wrote the run folder {out}")
        return
    report = Path(ctx.artifacts["evaluate"].uri) / "report.md"
    click.echo(f"done in {total:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in ctx.timings.items())})")
    click.echo(f"report: {report}")
    if "export" in ctx.artifacts:
        click.echo(f"exported: {ctx.artifacts['export'].properties['path']}")
    if "export_recommended" in ctx.artifacts:
        click.echo(f"exported ({RECOMMENDED}, recommended for a new cohort): "
                   f"{ctx.artifacts['export_recommended'].properties['path']}")
