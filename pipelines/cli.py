"""The `amu` command: a click group whose sub-commands live one per file in this package."""

from __future__ import annotations

import os
import sys

#: set to 1 to let TensorFlow's, absl's, XLA's and CUDA's own log lines through (as --verbose)
VERBOSE_ENV = "AMU_TF_VERBOSE"


def _verbose_requested(argv) -> bool:
    """Whether ``amu --verbose ...`` (before the sub-command) or ``AMU_TF_VERBOSE=1`` asks
    for the libraries' own log lines. Read from ``sys.argv`` before anything imports
    TensorFlow, since TensorFlow reads its log level once, when its C++ library loads."""
    if os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    for arg in argv:
        if arg == "--verbose":
            return True
        if not arg.startswith("-"):  # the sub-command: its own options are not ours
            return False
    return False


VERBOSE = _verbose_requested(sys.argv[1:])
if not VERBOSE:
    # amu-tf prints its own lines only: TensorFlow's C++ logs (the CUDA probe's cuInit
    # error on a machine without a GPU, tf.data rewrites) are ERROR-level, which only level 3
    # hides, so a user's TF_CPP_MIN_LOG_LEVEL=0..2 is overridden here; --verbose keeps it
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["GRPC_VERBOSITY"] = "ERROR"  # multi-worker gRPC start-up lines

import click  # noqa: E402

from amu_tf.errors import AmuError  # noqa: E402


class AmuGroup(click.Group):
    """Turns user-facing errors, and I/O errors (a read-only file system, a full disk, a
    folder where a file is expected), into one line on stderr and a non-zero exit status;
    the writers have already removed what they had half-written."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AmuError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:  # read-only file system, full disk, a folder for a file...
            where = exc.filename or ""
            why = exc.strerror or type(exc).__name__
            click.echo(f"Error: {where + ': ' if where else ''}{why}", err=True)
            sys.exit(2)


@click.group(cls=AmuGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="amu-tf")
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's, absl's, XLA's and CUDA's own log lines (hidden by "
                   f"default; {VERBOSE_ENV}=1 does the same). Give it before the command: "
                   "amu --verbose run ...")
def amu(verbose):
    """amu-tf: predict melanoma response to immune checkpoint inhibitors from RNA-seq."""
    # read from sys.argv at import, before TensorFlow loaded (see _verbose_requested)


def _import_tensorflow_quietly():
    """Import TensorFlow with file descriptor 2 pointed at /dev/null.

    TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) are written before absl's logging is
    initialised, so TF_CPP_MIN_LOG_LEVEL cannot silence them; they would stand before the one
    line of an `Error:` message. Python-level import errors still propagate after stderr is
    restored.
    """
    if "tensorflow" in sys.modules or VERBOSE:
        if VERBOSE:
            import tensorflow  # noqa: F401
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. under a test runner)
        import tensorflow  # noqa: F401
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _register():
    from pipelines import (audit_cmd, doctor_cmd, evaluate_cmd, export_cmd, ingest_cmd,
                           interpret_cmd, predict_cmd, report_cmd, run_cmd, synth_cmd,
                           train_cmd, transform_cmd, zoo_cmd)

    for module in (zoo_cmd, doctor_cmd, run_cmd, ingest_cmd, synth_cmd, export_cmd, predict_cmd,
                   train_cmd, interpret_cmd, transform_cmd, audit_cmd, evaluate_cmd, report_cmd):
        amu.add_command(module.command)


_import_tensorflow_quietly()
if not VERBOSE:
    import absl.logging  # noqa: E402  (TensorFlow's Python-side absl lines)

    absl.logging.set_verbosity(absl.logging.ERROR)
_register()


def main():  # console-script entry point
    amu(prog_name="amu")


if __name__ == "__main__":
    main()
