"""User-facing errors: each message names the file or value at fault and the fix.

The CLI prints an :class:`OmnisegError` as one line and exits with code 2; anything else is a bug
and keeps its traceback.
"""


class OmnisegError(Exception):
    """Base class of errors caused by user input (data, config, arguments), not by a bug."""


class DataError(OmnisegError, ValueError):
    """A dataset file or layout that omniseg cannot use as it is."""


class ConfigError(OmnisegError, ValueError):
    """A config key, value or command-line option that is not valid."""


class TrainingError(OmnisegError, RuntimeError):
    """Training cannot go on (for example, the loss became NaN)."""


class NonFiniteLoss(TrainingError):
    """The training loss became NaN or infinite."""


class WriteError(OmnisegError, OSError):
    """A file could not be written (the disk is full, the folder is read-only); the old file is untouched."""
