"""The quality log: its first row for skipped text lines, and the checks that it adds up."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from helpers.errors import CleaningError


def check_as_of(first: pd.Timestamp, last: pd.Timestamp, as_of: dt.date, where: str) -> None:
    """Refuse an ``as_of`` before the first transaction, naming the log's first and last dates.

    Every line would be "in the future" and removed; the message says which
    dates ``as_of`` can take. An ``as_of`` after the last transaction is fine
    (customers are then older and quieter at the observation end).

    >>> check_as_of(pd.Timestamp("2011-01-03"), pd.Timestamp("2011-12-09"), dt.date(2011, 1, 3), "x")
    >>> check_as_of(pd.Timestamp("2011-01-03"), pd.Timestamp("2011-12-09"), dt.date(2010, 12, 31), "x")
    Traceback (most recent call last):
    ...
    helpers.errors.CleaningError: x: as_of 2010-12-31 is before the first transaction: the log runs from 2011-01-03 to 2011-12-09. Set as_of to a date in that range (e.g. as_of: 2011-12-09 in the parameter file, or -p as_of 2011-12-09)
    """
    if pd.isna(first) or first.date() <= as_of:
        return
    raise CleaningError(
        f"{where}: as_of {as_of.isoformat()} is before the first transaction: the log runs from "
        f"{first.date().isoformat()} to {last.date().isoformat()}. Set as_of to a date in that range "
        f"(e.g. as_of: {last.date().isoformat()} in the parameter file, or -p as_of {last.date().isoformat()})"
    )


def bad_lines_row(bad_lines: dict, rows_out: int, limit: int = 10) -> dict:
    """The quality-log row (step 0, ``bad_lines``) for text lines stage 02 skipped (``source.on_bad_lines: skip``).

    ``bad_lines`` is ``{"count", "lines", "expected_fields"}`` as stage 02
    records it; ``rows_out`` the lines it collected.

    >>> bad_lines_row({"count": 2, "lines": [4, 9], "expected_fields": 8}, 100)["note"]
    'skipped by source.on_bad_lines: skip (more fields than the 8 of the header): lines 4, 9'
    """
    count, lines = int(bad_lines["count"]), list(bad_lines["lines"])
    head = ", ".join(str(n) for n in lines[:limit])
    shown = head if count <= min(len(lines), limit) else f"{head} and {count - min(len(lines), limit)} more"
    note = (f"skipped by source.on_bad_lines: skip (more fields than the {bad_lines['expected_fields']} of the header)"
            + (f": lines {shown}" if count else ": none found"))
    return {"step": 0, "rule": "bad_lines", "enabled": True, "rows_before": rows_out + count,
            "rows_removed": count, "rows_after": rows_out, "rows_modified": 0, "amount_removed": 0.0, "note": note}


def check_quality_log(log: pd.DataFrame, rows_in: int, rows_out: int) -> None:
    """Assert the quality log adds up: rows in minus every rule's removals equals rows out."""
    removed = int(log["rows_removed"].sum())
    if rows_in - removed != rows_out:
        raise AssertionError(f"quality log does not add up: {rows_in} in - {removed} removed != {rows_out} out")
    chained = (log["rows_after"].shift(1).fillna(rows_in) == log["rows_before"]).all()
    if not chained:
        raise AssertionError("quality log steps do not chain: a rule's rows_before differs from the last rows_after")
