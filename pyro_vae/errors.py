"""Errors a user can act on.

Every error the library raises on purpose derives from :class:`PyroVAEError`; the command line
prints its message (no traceback) and exits with a non-zero status.
"""

from __future__ import annotations


class PyroVAEError(Exception):
    """Base class: a problem with the user's input or environment, with a message saying how to
    fix it."""


class ConfigError(PyroVAEError, ValueError):
    """An invalid option or combination of options."""


class InsufficientMemoryError(ConfigError):
    """The sizes asked for need more memory than the device has free (estimated before
    allocating anything)."""


class DatasetUnavailableError(PyroVAEError):
    """A named data set cannot be found locally and cannot be downloaded."""


class DataFormatError(PyroVAEError, ValueError):
    """Data files or tensors exist but are malformed (truncated IDX files, NaNs, wrong shape)."""


class CheckpointError(PyroVAEError):
    """A checkpoint or run directory is missing, corrupt, or refused as unsafe."""


class RunInUseError(PyroVAEError):
    """Another process is writing the run directory (it holds the run's lock)."""


class TrainingDivergedError(PyroVAEError):
    """The loss became NaN or infinite during training."""


class TrainingInterrupted(PyroVAEError):
    """Ctrl-C during training; the run directory holds the last completed epoch."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none (an
    ``IndexError()`` from a garbage pickle, say), for quoting inside a one-line error."""
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


class DistributedError(PyroVAEError):
    """A process of a distributed job failed, stopped or did not answer in time."""


class PartFailedError(PyroVAEError):
    """A user's part (prior, guide, likelihood or decoder) raised while the model ran."""
