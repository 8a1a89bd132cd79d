"""Exceptions raised by the lake writer.

Each names the table and what to do; callers catch LakeError to handle every lake failure at once.
"""

from __future__ import annotations


class LakeError(Exception):
    """Base class of every error raised by osipi_dagster.lib.lake."""


class WindowError(LakeError, ValueError):
    """A window is malformed, or data to write lies outside the window it is meant to replace."""


class SchemaEvolutionError(LakeError):
    """New data changes the type of an existing column in a way Delta cannot evolve additively."""


class LakeConflictError(LakeError):
    """A concurrent writer kept winning the commit race, or the input could not be replayed for a retry."""


class TableNotFoundError(LakeError):
    """The Delta table does not exist (yet) at the given URI."""
