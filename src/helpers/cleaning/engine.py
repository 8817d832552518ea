"""Running the rules: one DuckDB engine over the collected lines, whatever their size.

The lines are a DuckDB relation with a ``_row`` column (their order as
collected): the collected Parquet file (:func:`parquet_lines`) or a frame
pandas parsed, registered with the connection (:func:`frame_lines`). Each
enabled rule of :data:`~helpers.cleaning.rules.RULES_IN_ORDER` makes the next
table from the last one; the quality log counts rows and money before and
after each rule and takes the rule's own note. The rule that leaves no rows is
named (:class:`~helpers.errors.CleaningError`). The clean lines end in the
temporary view ``clean`` (with ``_row``; :data:`CLEAN_ORDER` sorts them, :data:`COLLECTED_ORDER` keeps
the order they were collected in). A rule that rewrites values (``normalise_ids``, ``cancellations: net``) makes
a table, once, so that the mapping and the rewrite are not evaluated again by every later rule (``normalise_ids``
marks in its table, ``_stepN_ids``, the lines whose id it changed, counted from there, and its step is the view
of that table without the mark: the rewrite is evaluated once, not once more to count); a rule that
filters makes a view; ``exact_duplicates`` makes a small table of the later repeats (found among the lines
that share a hash of their values, then compared value by value) and a view without them. A table replaces
everything before it: the earlier tables and views are dropped as soon as it is counted. A log of a hundred
million lines is so copied once inside DuckDB, not once per rule that rewrites or groups plus once more for the
clean lines.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from helpers.cleaning import netting
from helpers.cleaning.quality import bad_lines_row, check_as_of, check_quality_log
from helpers.cleaning.rules import RULES_IN_ORDER, Rule, literal, quote, select_list
from helpers.config import CleaningParams
from helpers.errors import CleaningError

#: How the clean lines are sorted (ties: the order they were collected in).
CLEAN_ORDER = "ORDER BY customer_id, order_ts, order_id, _row"
#: The kinds of rule whose step is a view (the others make a table).
VIEW_KINDS = ("filter", "dedup")
#: The order the lines were collected in: how the DuckDB and Spark engines write them (one integer key to sort
#: on, not three texts; readers that need the clean order sort by its keys, the file's row number breaking ties).
COLLECTED_ORDER = "ORDER BY _row"


def parquet_lines(file: Path) -> str:
    """SQL reading a ``collected.parquet`` as the engine's lines (``_row``: the line's position in the file)."""
    return f"SELECT * RENAME (file_row_number AS _row) FROM read_parquet({literal(str(file))}, file_row_number = true)"


def frame_lines(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, name: str = "_collected") -> str:
    """Register ``frame`` with ``con`` and return SQL reading it as the engine's lines."""
    con.register(name, frame.assign(_row=np.arange(len(frame), dtype="int64")))
    return f"SELECT * FROM {name}"


#: The name of the DuckDB database on disk that holds the steps' tables of a large log (:func:`step_table`).
SCRATCH = "steps"


def step_table(con: object) -> str:
    """What a step's table is created as (``CREATE OR REPLACE <this> name AS ...``).

    ``TEMP TABLE`` (in memory, spilling beyond the memory limit), or ``TABLE`` when the connection's current
    database is :data:`SCRATCH` (:func:`helpers.sqlclean.scratch_database`): DuckDB's compressed storage on disk,
    which at 110 million lines held 2.5 GB where the table in memory took 5.7 GB and spilled 3.8 GB more.
    """
    if isinstance(con, duckdb.DuckDBPyConnection) and con.execute("SELECT current_database()").fetchone()[0] == SCRATCH:
        return "TABLE"
    return "TEMP TABLE"


def keeps_order(con: object) -> bool:
    """Whether ``con`` is DuckDB preserving insertion order, so that every step keeps the lines in ``_row`` order.

    DuckDB guarantees the order through scans of one table, ``WHERE`` and ``SELECT`` (and ``COPY``) when
    ``preserve_insertion_order`` is on; not through joins. The steps are built so on such a connection: a
    rewrite's table is a projection, the filters are views, the duplicates are a bit mask read in a ``WHERE``
    (:func:`repeat_mark`), and netting's table is sorted. Spark makes no such promise.
    """
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return False
    (value,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    return bool(value)


def clean_select(con: duckdb.DuckDBPyConnection, order: str = CLEAN_ORDER) -> str:
    """SQL of the clean lines without ``_row``, sorted by ``order`` (:data:`CLEAN_ORDER` or :data:`COLLECTED_ORDER`).

    :data:`COLLECTED_ORDER` costs no sort where the lines already are in it (:func:`keeps_order`): at 11
    million lines stage 03's write took 6.7 s rather than 11.7 s.
    """
    if order == COLLECTED_ORDER and keeps_order(con):
        order = ""
    columns = [r[0] for r in con.execute("DESCRIBE clean").fetchall() if r[0] != "_row"]
    return f"SELECT {select_list(columns, row=False)} FROM clean {order}"


def _totals(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, float]:
    rows, money = con.execute(f"SELECT count(*), coalesce(fsum(amount), 0) FROM {table}").fetchall()[0]
    return int(rows), float(money)


def apply_step(con: duckdb.DuckDBPyConnection, rule: Rule, before: str, after: str, cfg: CleaningParams,
           columns: list[str], as_of: dt.date) -> int:
    """Make ``after`` (a view or a table, :data:`VIEW_KINDS`) from ``before`` with ``rule``; return the rows it rewrote."""
    kind = rule.kind_for(cfg)
    condition = rule.condition(cfg, columns, as_of) if rule.condition else None
    if kind == "net":
        return netting.net(con, before, after, condition, columns)
    if kind == "rewrite":  # the new ids and whether each changed, from one evaluation of the rewrite
        con.execute(f"CREATE OR REPLACE {step_table(con)} {after}_ids AS "
                    f"SELECT {select_list(columns, {'customer_id': condition})}, "
                    f"customer_id IS DISTINCT FROM {condition} AS _rewritten FROM {before}")
        modified = con.execute(f"SELECT count(*) FILTER (WHERE _rewritten) FROM {after}_ids").fetchall()[0][0]
        con.execute(f"CREATE OR REPLACE TEMP VIEW {after} AS SELECT {select_list(columns)} FROM {after}_ids")
        return int(modified)
    if kind == "dedup":
        _repeats(con, before, f"{after}_repeats", [c for c in columns if c != "source_row"])
        mark = repeat_mark(con, after)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {after} AS SELECT * FROM {before} " + (
            f"WHERE NOT {mark}" if mark else f"WHERE _row NOT IN (SELECT _row FROM {after}_repeats)"))
        return 0
    con.execute(f"CREATE OR REPLACE TEMP VIEW {after} AS SELECT * FROM {before} WHERE NOT ({condition})")
    return 0


def _repeats(con: duckdb.DuckDBPyConnection, before: str, target: str, same: list[str]) -> None:
    """Table ``target``: the ``_row`` of every line of ``before`` equal in the columns ``same`` to an earlier line.

    Only lines whose hash of those columns is shared are compared value by value (equal lines have equal
    hashes; a few unequal ones may share one), so the full-width grouping is over a few lines, not all.
    """
    keys = ", ".join(quote(c) for c in same)
    shared = f"{target}_shared"
    con.execute(f"CREATE OR REPLACE {step_table(con)} {shared} AS SELECT * FROM {before} WHERE hash({keys}) IN "
                f"(SELECT hash({keys}) AS _hash FROM {before} GROUP BY _hash HAVING count(*) > 1)")
    con.execute(f"CREATE OR REPLACE {step_table(con)} {target} AS SELECT _row FROM {shared} WHERE _row NOT IN "
                f"(SELECT min(_row) FROM {shared} GROUP BY {keys})")
    con.execute(f"DROP TABLE {shared}")


def repeat_mark(con: duckdb.DuckDBPyConnection, after: str) -> str | None:
    """SQL true for the lines in ``{after}_repeats`` (the dedup step's table), read from a bit mask; None off DuckDB.

    The mask (DuckDB variable ``{after}_mask``, one bit per ``_row`` up to the last repeat's) is tested in a
    ``WHERE``, which keeps the lines' order where an anti-join does not (:func:`keeps_order`).
    """
    if not keeps_order(con):
        return None
    (last,) = con.execute(f"SELECT max(_row) FROM {after}_repeats").fetchone()
    if last is None:
        return "false"
    con.execute(f"SET VARIABLE {after}_mask = (SELECT bitstring_agg(_row, 0, {int(last)}) FROM {after}_repeats)")
    return f"coalesce(CASE WHEN _row <= {int(last)} THEN get_bit(getvariable('{after}_mask'), _row::INTEGER) = 1 END, false)"


def _drop(con: duckdb.DuckDBPyConnection, made: list[tuple[str, str]]) -> None:
    """Drop the steps' tables and views ``made`` (name, ``TABLE`` or ``VIEW``), later ones first: a view reads the
    table before it."""
    for name, kind in reversed(made):
        con.execute(f"DROP {kind} {name}")


def kept(rule: Rule, cfg: CleaningParams, columns: list[str], as_of: dt.date, after: str) -> tuple[str, str]:
    """SQL true for the lines a view step (:data:`VIEW_KINDS`) keeps, and the join it needs (``""``: none).

    A filter keeps a line where ``NOT (condition)`` is true (a missing value removes it, as the view's
    ``WHERE`` does); ``exact_duplicates`` keeps the lines not in its table of repeats (``{after}_repeats``).
    """
    if rule.kind_for(cfg) == "dedup":
        mark = f"_repeat_{after}"  # counted with a join: the order does not matter here, and at 11M lines it beat the mask
        return f"{mark} IS NULL", f"LEFT JOIN (SELECT _row AS {mark} FROM {after}_repeats) ON _row = {mark}"
    return f"coalesce(NOT ({rule.condition(cfg, columns, as_of)}), false)", ""


def survivors(con: duckdb.DuckDBPyConnection, base: str, steps: list[tuple[str, str]]) -> list[tuple[int, float]]:
    """The rows and money left after each of consecutive view steps over ``base``, counted in one pass.

    ``steps`` are the steps' :func:`kept` (in order: each view filters the one before it). Each line is
    given the number of steps it passes (``_kept``: it stops at the first that removes it); step *k* leaves
    the lines that pass *k* or more. The same counts and compensated sums as one query per view, without
    evaluating the chain of views again for every step (at 100 million lines the six counts took 50 s).
    """
    if not steps:
        return []
    level = " ".join(f"WHEN NOT ({keep}) THEN {k}" for k, (keep, _) in enumerate(steps))
    joins = " ".join(join for _, join in steps if join)
    totals = ", ".join(f"count(*) FILTER (WHERE _kept > {k}), coalesce(fsum(amount) FILTER (WHERE _kept > {k}), 0)"
                       for k in range(len(steps)))
    row = con.execute(f"SELECT {totals} FROM (SELECT amount, CASE {level} ELSE {len(steps)} END AS _kept "
                      f"FROM {base} {joins}) AS _levels").fetchall()[0]
    return [(int(row[2 * k]), float(row[2 * k + 1])) for k in range(len(steps))]


def run_rules(con: duckdb.DuckDBPyConnection, lines: str, cfg: CleaningParams, as_of: dt.date, where: str,
              bad_lines: dict | None = None) -> pd.DataFrame:
    """Run every rule over ``lines`` (SQL with a ``_row`` column) into view ``clean``; return the quality log.

    ``bad_lines`` (stage 02's record of skipped text lines) adds the first
    row ``bad_lines``. Raises :class:`CleaningError` when ``as_of`` is before
    the first line, and naming the rule that left no rows. The rows and money after a run of view steps
    are counted together (:func:`survivors`), before the next table is made.
    """
    con.execute(f"CREATE OR REPLACE TEMP VIEW _step0 AS {lines}")
    columns = [r[0] for r in con.execute("DESCRIBE _step0").fetchall() if r[0] != "_row"]
    rows_in, first, last, money = con.execute("SELECT count(*), min(order_ts), max(order_ts), coalesce(fsum(amount), 0) "
                                              "FROM _step0").fetchall()[0]  # one pass: the lines' span and totals
    if rows_in:
        check_as_of(pd.Timestamp(first), pd.Timestamp(last), as_of, where)
    log = [bad_lines_row(bad_lines, rows_in)] if bad_lines is not None else []
    state = {"rows": int(rows_in), "money": float(money), "base": "_step0"}
    pending: list[tuple[dict, tuple[str, str] | None]] = []  # view steps not counted yet: their log row, what they keep

    def settle(entry: dict, rows_after: int, money_after: float) -> None:
        """Fill a step's counts in its log row (rows and money before: the last step's after); stop on no rows."""
        rows, money = state["rows"], state["money"]
        entry.update({"rows_before": rows, "rows_removed": rows - rows_after, "rows_after": rows_after,
                      "amount_removed": round(money - money_after, 2) + 0.0})  # + 0.0: no -0.0
        if rows and not rows_after:
            raise CleaningError(f"{where}: cleaning rule {entry['rule']!r} removed the last {rows} rows "
                                f"({entry['note']}); nothing is left. Check the data or switch the rule off with "
                                f"cleaning.{entry['rule']} in the parameter file.")
        state["rows"], state["money"] = rows_after, money_after

    def flush() -> None:
        counts = survivors(con, state["base"], [keep for _, keep in pending if keep is not None])
        for entry, keep in pending:
            settle(entry, *(counts.pop(0) if keep is not None else (state["rows"], state["money"])))
        pending.clear()

    current = "_step0"
    made: list[tuple[str, str]] = []
    for step, rule in enumerate(RULES_IN_ORDER, start=1):
        enabled = rule.enabled(cfg)
        entry = {"step": step, "rule": rule.name, "enabled": enabled, "rows_before": 0, "rows_removed": 0,
                 "rows_after": 0, "rows_modified": 0, "amount_removed": 0.0, "note": "off"}
        log.append(entry)
        skipped = enabled and rule.needs is not None and rule.needs not in columns
        if skipped:
            entry["note"] = f"skipped: no {rule.needs} column mapped"
        if not enabled or skipped:
            pending.append((entry, None))  # changes nothing: the counts of the step before
            continue
        after, view = f"_step{step}", rule.kind_for(cfg) in VIEW_KINDS
        if not view:
            flush()  # the table is made from counted lines (a rule that left none has stopped the run)
        entry["rows_modified"] = apply_step(con, rule, current, after, cfg, columns, as_of)
        own = {"dedup": [(f"{after}_repeats", "TABLE"), (after, "VIEW")],  # what the step made, what it reads first
               "rewrite": [(f"{after}_ids", "TABLE"), (after, "VIEW")]}.get(rule.kind_for(cfg),
                                                                             [(after, "VIEW" if view else "TABLE")])
        made += own
        entry["note"] = rule.note(con, current, after, cfg, columns, as_of)
        if view:
            pending.append((entry, kept(rule, cfg, columns, as_of, after)))
        else:
            settle(entry, *_totals(con, after))
            _drop(con, made[:-len(own)])  # the new table needs nothing before it
            made = own
            state["base"] = after
        current = after
    flush()
    con.execute(f"CREATE OR REPLACE TEMP VIEW clean AS SELECT * FROM {current}")  # over what the last rules made
    quality = pd.DataFrame(log)
    check_quality_log(quality, rows_in=rows_in + (int(bad_lines["count"]) if bad_lines else 0), rows_out=state["rows"])
    return quality


def like_types(out: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """``out`` with the column types of ``like`` (DuckDB gives an all-missing text column another type)."""
    for column, dtype in like.dtypes.items():
        if column in out.columns and out[column].dtype != dtype:
            out[column] = (out[column].astype(object).where(out[column].notna(), None) if dtype == object
                           else out[column].astype(dtype))
    return out


def clean_frame(con: duckdb.DuckDBPyConnection, like: pd.DataFrame) -> pd.DataFrame:
    """View ``clean`` as a frame, sorted, with the column types of ``like`` (the collected frame)."""
    return like_types(con.execute(clean_select(con)).df(), like)
