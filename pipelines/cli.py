"""The `amu` command: a click group whose sub-commands live one per file in this package."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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
def amu():
    """amu-tf: predict melanoma response to immune checkpoint inhibitors from RNA-seq."""


def _import_tensorflow_quietly():
    """Import TensorFlow with file descriptor 2 pointed at /dev/null.

    TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) are written before absl's logging is
    initialised, so TF_CPP_MIN_LOG_LEVEL cannot silence them; they would stand before the one
    line of an `Error:` message. Python-level import errors still propagate after stderr is
    restored.
    """
    if "tensorflow" in sys.modules:
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
_register()


def main():  # console-script entry point
    amu(prog_name="amu")


if __name__ == "__main__":
    main()
