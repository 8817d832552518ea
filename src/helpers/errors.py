"""Errors a user is meant to read.

Every failure caused by the input data or the parameters is raised as a
:class:`DataError` (or a subclass) whose message names the file, the column and
the rows at fault. Library tracebacks are chained (``raise ... from``) for
developers but never stand alone as the explanation.
"""

from __future__ import annotations

from collections.abc import Iterable


class DataError(ValueError):
    """Bad input data: the message says which file, column and rows."""


class ConfigError(ValueError):
    """A parameter file or an override that cannot be used as given."""


class CleaningError(DataError):
    """Cleaning could not produce a usable table (for example, a rule emptied it)."""


def show_rows(rows: Iterable[object], limit: int = 5) -> str:
    """Format a few row labels for an error message.

    >>> show_rows([3, 7, 9])
    '3, 7, 9'
    >>> show_rows(range(100), limit=3)
    '0, 1, 2 ... (100 in all)'
    """
    rows = list(rows)
    head = ", ".join(str(r) for r in rows[:limit])
    return head if len(rows) <= limit else f"{head} ... ({len(rows)} in all)"
