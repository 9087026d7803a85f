"""`amu run`: the whole pipeline, one step after another, each writing its artifact under
the run folder (``runs/default/<step>/``).

    amu run                                   # synthetic default cohorts, seeded
    amu run --cohorts examples/cohorts/*.toml --data-root ../shared/data
    amu run --quick                           # a small, fast smoke run

The steps are the list ``STEPS``: ``(name, function(ctx))``. A step reads what earlier steps
left in ``ctx`` (``ctx.artifacts[name]``, ``ctx.table_uri``...), writes its artifact at
``ctx.step_dir(name)`` and records it in ``ctx.artifacts``. Adding a step (interpret, export)
is a function and one entry in ``STEPS`` (or ``STEPS.insert``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from pipelines.evaluate_cmd import DEFAULT_MODELS, keras_params, split_list

QUICK = {"models": "amu:tiny,logreg", "epochs": 8, "patience": 3, "folds": 3, "n_boot": 200,
         "n_per_cohort": 40}


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


def step_train(ctx: RunContext):
    """The final models: each fitted on every labeled row (Model artifacts)."""
    from components.train import run_train

    o = ctx.options
    params = keras_params(o["models"], o["epochs"], o["patience"])
    models = {}
    for m in o["models"]:
        safe = m.replace(":", "_")
        p = dict(params.get(m, {}))
        if p:  # a zoo model: show its progress bar over epochs
            p["verbose"] = 1
        models[m] = run_train(ctx.table_uri, ctx.step_dir("train") / safe, model=m,
                              transform=o["transform"], seed=o["seed"], **p)
        ctx.say(f"  {m}: threshold {models[m].properties.get('threshold', float('nan')):.3f} "
                f"-> {models[m].uri}")
    ctx.artifacts["train"] = models


def step_evaluate(ctx: RunContext):
    from components.evaluate import format_results, run_evaluate

    o = ctx.options
    inputs = [a for a in [ctx.artifacts.get("audit")] if a is not None]
    inputs += list(ctx.artifacts.get("train", {}).values())
    art, results, blessing = run_evaluate(
        ctx.table_uri, ctx.step_dir("evaluate"), o["models"], o["protocols"],
        transform=o["transform"], seed=o["seed"], n_splits=o["folds"], n_repeats=o["repeats"],
        n_boot=o["n_boot"], estimator_params=keras_params(o["models"], o["epochs"], o["patience"]),
        train_cohorts=o.get("train_cohorts"), test_cohorts=o.get("test_cohorts"),
        audit=ctx.audit, input_artifacts=inputs, data_note=o.get("data_note"))
    ctx.artifacts["evaluate"] = art
    ctx.say(format_results(results, blessing))


#: The pipeline, in order. Later steps (interpret, export) append themselves here.
STEPS = [
    ("ingest", step_ingest),
    ("audit", step_audit),
    ("transform", step_transform),
    ("train", step_train),
    ("evaluate", step_evaluate),
]


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
@click.option("--models", default=None, help=f"Comma-separated estimators [{DEFAULT_MODELS}].")
@click.option("--protocols", default="cv,loco", show_default=True,
              help="Comma-separated: cv, loco, external, paper (LEAKY).")
@click.option("--transform", default="cohort_z", show_default=True)
@click.option("--train-cohorts", default=None, help="external: comma-separated training cohorts.")
@click.option("--test-cohorts", default=None, help="external: cohorts to score [the others].")
@click.option("--folds", default=None, type=int, help="cv folds [5].")
@click.option("--repeats", default=1, show_default=True, help="cv repeats.")
@click.option("--n-boot", default=None, type=int, help="Bootstrap resamples for CIs [1000].")
@click.option("--epochs", default=None, type=int, help="Max epochs of zoo models [60].")
@click.option("--patience", default=None, type=int, help="Early-stopping patience [8].")
@click.option("--allow-leaks", is_flag=True, help="Continue when the leakage audit finds a leak.")
@click.option("--signal/--no-signal", default=True, show_default=True,
              help="Synthetic default: plant the response signal or not.")
@click.option("--quick", is_flag=True,
              help="Smoke run: small synthetic cohorts, amu:tiny + logreg, few epochs, 3 folds.")
@click.option("--seed", default=0, show_default=True)
def command(more_specs, cohorts, data_root, out, models, protocols, transform, train_cohorts,
            test_cohorts, folds, repeats, n_boot, epochs, patience, allow_leaks, signal, quick,
            seed):
    """Run ingest -> audit -> transform -> train -> evaluate and print where the report is.

    Without cohort specs it runs on the synthetic default cohorts it generates (seeded)."""
    cohorts = list(cohorts) + list(more_specs)  # `--cohorts a.toml b.toml` after a shell glob
    q = QUICK if quick else {}
    opts = {
        "models": split_list(models or q.get("models", DEFAULT_MODELS)),
        "protocols": split_list(protocols),
        "transform": transform,
        "train_cohorts": split_list(train_cohorts) if train_cohorts else None,
        "test_cohorts": split_list(test_cohorts) if test_cohorts else None,
        "folds": folds or q.get("folds", 5),
        "repeats": repeats,
        "n_boot": n_boot if n_boot is not None else q.get("n_boot", 1000),
        "epochs": epochs or q.get("epochs", 60),
        "patience": patience or q.get("patience", 8),
        "allow_leaks": allow_leaks,
        "signal": signal,
        "seed": seed,
        "n_per_cohort": q.get("n_per_cohort") if not cohorts else None,
    }
    if not cohorts:
        opts["data_note"] = ("Synthetic default cohorts (amu_tf.data.synthetic, seed "
                             f"{seed}, response signal {'planted' if signal else 'absent'}); "
                             "the planted module is listed in data/synthetic_truth.json.")
    ctx = RunContext(out=Path(out), options=opts, specs=list(cohorts), data_root=data_root)
    t0 = time.perf_counter()
    run_pipeline(ctx)
    total = time.perf_counter() - t0
    report = Path(ctx.artifacts["evaluate"].uri) / "report.md"
    click.echo(f"done in {total:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in ctx.timings.items())})")
    click.echo(f"report: {report}")
