"""Integrate and clean: rule-based, each rule configurable and logged.

Stage 03 of the customer identification process. The collected transactions
(:data:`helpers.schemas.collected_schema`) go through an ordered list of
rules; each rule either removes lines or rewrites values, and reports what it
did. The **quality log** has one row per rule with rows before, removed and
after, the money removed and the rows rewritten, so that

    rows in - sum(rows removed by each rule) == rows out

holds exactly (:func:`check_quality_log` asserts it). The result is validated
against :data:`helpers.schemas.transaction_schema` before anything is written.

Each rule is defined once, in SQL (:mod:`helpers.cleaning.rules`), and run by
one engine, DuckDB (:mod:`helpers.cleaning.engine`), over the collected Parquet
file or over a frame pandas parsed: the quality log, its notes, the rule that
empties the table, the schema checks and ``cancellations: net`` are the same
whatever the size of the source. The functions here that take a frame
(:func:`clean_transactions`, each rule in :data:`RULES`, :func:`is_cancellation`,
:func:`net_cancellations`) run the same SQL over that frame.

When stage 02 skipped text lines with too many fields
(``source.on_bad_lines: skip``), the log starts with a row ``bad_lines``
(step 0): rows in are then the lines of the file, and its note lists the
skipped line numbers. Before any rule runs, an ``as_of`` before the first
transaction is refused with the log's first and last dates
(:func:`check_as_of`).

Rules, in order (names as in ``cleaning:`` of the parameter file):

=====================  ==========================================================
normalise_ids          customer keys: trim spaces, Excel's ``12417.0`` -> ``12417``
missing_customer_id    drop lines with no customer (they identify nobody)
future_timestamps      drop lines after the end of the ``as_of`` day
exact_duplicates       drop repeated identical lines (keep the first)
non_product_lines      drop postage, manual, adjustment, discount, carriage, fees
cancellations          cancellation / return lines: ``drop`` them, ``net`` them
                       against the purchases they cancel, or ``keep`` them
non_positive_price     drop lines with zero or negative unit price (or amount)
=====================  ==========================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import duckdb
import pandas as pd

from helpers.cleaning import netting
from helpers.cleaning.engine import (CLEAN_ORDER, apply_step, clean_frame, frame_lines, like_types, parquet_lines,
                                     run_rules)
from helpers.cleaning.io import clean_and_save, load_collected, load_transactions, overview, save_clean
from helpers.cleaning.quality import bad_lines_row, check_as_of, check_quality_log
from helpers.cleaning.rules import RULES_IN_ORDER, Rule, cancellation
from helpers.config import CleaningParams
from helpers.schemas import transaction_schema, validate


@dataclass
class RuleOutcome:
    """What one rule did: the frame it left and how many rows it rewrote."""

    frame: pd.DataFrame
    rows_modified: int = 0
    note: str = ""


def _frame(con: duckdb.DuckDBPyConnection, table: str, like: pd.DataFrame) -> pd.DataFrame:
    """A table of the engine as a frame in the order of its lines, with ``like``'s columns and index labels."""
    out = con.execute(f"SELECT * FROM {table} ORDER BY _row").df()
    index = like.index[out.pop("_row").to_numpy()]
    return like_types(out[[c for c in like.columns if c in out.columns]], like).set_axis(index)


def apply_rule(rule: Rule, df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date) -> RuleOutcome:
    """Run one rule (its SQL, in DuckDB) over a frame of collected lines.

    >>> f = pd.DataFrame({"customer_id": ["12417.0", " 123", "123", "  ", None]})
    >>> out = normalise_ids(f, CleaningParams(), dt.date(2020, 1, 1))
    >>> out.frame["customer_id"].tolist(), out.rows_modified
    (['12417', '123', '123', None, None], 3)
    """
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TEMP VIEW _in AS {frame_lines(con, df)}")
        columns = list(df.columns)
        if rule.needs and rule.needs not in columns:
            return RuleOutcome(df, note=f"skipped: no {rule.needs} column mapped")
        modified = apply_step(con, rule, "_in", "_out", cfg, columns, as_of)
        return RuleOutcome(_frame(con, "_out", df), modified, rule.note(con, "_in", "_out", cfg, columns, as_of))
    finally:
        con.close()


#: The rules, in the order they run, as functions of a frame. Each can be switched off in ``cleaning:``.
RULES: list[tuple[str, Callable[[pd.DataFrame, CleaningParams, dt.date], RuleOutcome]]] = [
    (rule.name, partial(apply_rule, rule)) for rule in RULES_IN_ORDER]
normalise_ids, missing_customer_id, future_timestamps, exact_duplicates, non_product_lines, cancellations, \
    non_positive_price = (fn for _, fn in RULES)


def is_cancellation(df: pd.DataFrame, prefix: str | None) -> pd.Series:
    """Cancellation or return lines: order id starting with ``prefix``, or negative quantity or amount.

    >>> f = pd.DataFrame({"order_id": ["C1", "2", "3"], "amount": [-5.0, 3.0, -1.0]})
    >>> is_cancellation(f, "C").tolist()
    [True, False, True]
    """
    con = duckdb.connect()
    try:
        condition = cancellation(CleaningParams(cancellation_prefix=prefix), list(df.columns))
        mask = con.execute(f"SELECT {condition} AS m FROM ({frame_lines(con, df)}) ORDER BY _row").df()["m"]
    finally:
        con.close()
    return pd.Series(mask.to_numpy(dtype=bool), index=df.index)


def net_cancellations(df: pd.DataFrame, mask: pd.Series) -> tuple[pd.DataFrame, int]:
    """Subtract each cancellation (``mask``) from the purchases it cancels, latest first (:mod:`~helpers.cleaning.netting`).

    Returns the frame and the number of purchase lines reduced but kept.

    >>> f = pd.DataFrame({"customer_id": ["1", "1", "1"], "order_id": ["a", "b", "Cb"],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]),
    ...     "amount": [10.0, 4.0, -6.0], "quantity": [5.0, 2.0, -3.0]})
    >>> out, partly = net_cancellations(f, is_cancellation(f, "C"))
    >>> out[["order_id", "amount", "quantity"]].values.tolist(), partly
    ([['a', 8.0, 4.0]], 1)
    """
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TEMP VIEW _in AS {frame_lines(con, df.assign(_mask=mask.to_numpy(dtype=bool)))}")
        partly = netting.net(con, "_in", "_out", "_mask", list(df.columns))
        return _frame(con, "_out", df), partly
    finally:
        con.close()


def clean_transactions(
    df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date, where: str = "collected transactions",
    bad_lines: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every rule over a frame of collected lines; return the clean table and the quality log.

    ``bad_lines`` (stage 02's record of skipped text lines, see
    :func:`helpers.sources.read_info`) adds the first row ``bad_lines``, so
    the log accounts for every line of the file (their money is unknown: 0).
    Raises :class:`~helpers.errors.CleaningError` when ``as_of`` is before
    the first transaction (before any rule runs) and naming the rule that
    left no rows, and :class:`~helpers.errors.DataError` if the result
    breaks the clean-transaction schema.
    """
    con = duckdb.connect()
    try:
        quality = run_rules(con, frame_lines(con, df), cfg, as_of, where, bad_lines)
        clean = clean_frame(con, df)
    finally:
        con.close()
    return validate(clean, transaction_schema, where), quality


__all__ = ["CLEAN_ORDER", "RULES", "RULES_IN_ORDER", "Rule", "RuleOutcome", "apply_rule", "bad_lines_row",
           "cancellations", "check_as_of", "check_quality_log", "clean_and_save", "clean_transactions",
           "exact_duplicates", "future_timestamps", "is_cancellation", "load_collected", "load_transactions",
           "missing_customer_id", "net_cancellations", "non_positive_price", "non_product_lines", "normalise_ids",
           "overview", "parquet_lines", "run_rules", "save_clean"]
