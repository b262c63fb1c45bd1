"""Exceptions that mean "the user asked for something we cannot do".

The CLI prints these as one line and exits nonzero; anything else is a bug and keeps its
traceback.
"""


class ZspaceError(Exception):
    """A user-facing error: bad input, a missing file, a folder that is not a run."""


class DataError(ZspaceError):
    """A dataset file is missing, corrupt, or cannot be fetched."""


class RunError(ZspaceError):
    """A run folder is missing, incomplete, or does not match its config."""
