"""User-facing errors.

Anything a researcher can cause with bad input raises an :class:`AmuError` subclass with a
one-line message. The CLI prints ``Error: <message>`` and exits with status 2; library code
never lets a deep TensorFlow stack trace be the explanation of a user mistake.
"""


class AmuError(Exception):
    """Base class of every error whose message is meant for the user."""

    exit_code = 2


class InputDataError(AmuError, ValueError):
    """The data given (a file, a table, an array) cannot be used as it is."""


class SpecError(AmuError, ValueError):
    """A cohort spec or other configuration is invalid."""


class LeakageError(AmuError):
    """The leakage audit found a leak and the caller did not allow it."""

    exit_code = 1


class ArtifactError(AmuError):
    """An artifact is missing, corrupt, or of the wrong type."""


class KernelUnavailableError(AmuError):
    """A compiled kernel (``amu_tf.kernels``) is needed but cannot be built or loaded here."""
