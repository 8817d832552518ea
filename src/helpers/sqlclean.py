"""Stages 02-05's heavy lifting in DuckDB: map, clean and summarise without loading lines into pandas.

The same seven rules as :mod:`helpers.cleaning`, with the same order and the
same meaning, written as SQL over the raw Parquet (or CSV) file, so that a
log of tens of millions of lines is cleaned and summarised out of core: only
the quality log and one row per customer come back to Python.

- :func:`clean_lines` builds the table ``clean`` (canonical columns) in a
  DuckDB connection and returns the quality log, with the same counts as
  :func:`helpers.cleaning.clean_transactions` on the same input;
- :func:`btyd_summary` and :func:`customer_table` aggregate it per purchase
  day and per customer, with the same numbers as :func:`helpers.clv.btyd_summary`
  and :func:`helpers.rfm.customer_table`.

Not supported here (a :class:`~helpers.errors.ConfigError` says so):
``cleaning.cancellations: net`` (netting matches returns to earlier purchases
line by line, done in pandas) and Excel or SQL sources.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from helpers.config import CleaningParams, Params
from helpers.errors import ConfigError, DataError

READERS = {"parquet": "read_parquet({path})", "csv": "read_csv({path}, all_varchar = true, header = true)"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def connect(memory_limit: str = "6GB", temp_directory: Path | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that spills to ``temp_directory`` beyond ``memory_limit``."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = {_literal(memory_limit)}")
    con.execute("SET preserve_insertion_order = false")
    if temp_directory is not None:
        con.execute(f"SET temp_directory = {_literal(str(temp_directory))}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def canonical_select(params: Params, source: Path) -> str:
    """SQL selecting the canonical columns (as in :func:`helpers.sources.map_columns`) from ``source``.

    ``customer_raw`` keeps the id as read (text) to count the ids the
    ``normalise_ids`` rule rewrites.
    """
    kind = "csv" if params.source.kind in ("csv", "text") else params.source.kind
    if kind not in READERS:
        raise ConfigError(f"the DuckDB path reads Parquet or CSV sources, not {params.source.kind!r}")
    cols = {role: col for role, col in params.columns.model_dump().items() if col is not None}
    text = {role: f"CAST({_quote(col)} AS VARCHAR)" for role, col in cols.items()}
    ts = _quote(cols["order_ts"])
    order_ts = (f"strptime({text['order_ts']}, {_literal(params.date_format)})" if params.date_format
                else f"CAST({ts} AS TIMESTAMP)")
    number = {role: f"CAST({_quote(cols[role])} AS DOUBLE)" for role in ("quantity", "unit_price", "amount") if role in cols}
    select = {
        "customer_raw": text["customer_id"],
        "order_id": text.get("order_id", f"coalesce({text['customer_id']}, '?') || '@' || strftime({order_ts}, '%Y%m%d')"),
        "order_ts": order_ts,
        "amount": number.get("amount", f"{number.get('quantity')} * {number.get('unit_price')}"),
        **{role: number[role] for role in ("quantity", "unit_price") if role in number},
        **{role: text[role] for role in ("product_code", "description", "country", "channel") if role in text},
    }
    body = ",\n  ".join(f"{expr} AS {name}" for name, expr in select.items())
    return f"SELECT\n  {body}\nFROM {READERS[kind].format(path=_literal(str(source)))}"


def _normalised_id(column: str = "customer_raw") -> str:
    trimmed = f"trim({column})"
    return f"nullif(regexp_replace({trimmed}, '^(\\d+)\\.0+$', '\\1'), '')"


def _cancellation(cfg: CleaningParams, columns: list[str]) -> str:
    terms = ["amount < 0"]
    if "quantity" in columns:
        terms.append("coalesce(quantity, 0) < 0")
    if cfg.cancellation_prefix:
        terms.append(f"coalesce(starts_with(order_id, {_literal(cfg.cancellation_prefix)}), false)")
    return "(" + " OR ".join(terms) + ")"


def _rule_flags(cfg: CleaningParams, columns: list[str]) -> list[tuple[str, str | None]]:
    """The removal condition of rules 5-7 (after de-duplication), None where the rule is off or skipped."""
    codes = ", ".join(_literal(c.strip().upper()) for c in cfg.non_product_codes) or "NULL"
    non_product = (f"coalesce(upper(trim(product_code)) IN ({codes}), false)"
                   if cfg.non_product_lines and "product_code" in columns else None)
    cancellation = _cancellation(cfg, columns) if cfg.cancellations == "drop" else None
    if "unit_price" in columns:
        price = "(unit_price <= 0 OR (unit_price IS NULL AND amount <= 0))"
    else:
        price = "(amount <= 0)"
    return [("non_product_lines", non_product), ("cancellations", cancellation),
            ("non_positive_price", price if cfg.non_positive_price else None)]


def clean_lines(con: duckdb.DuckDBPyConnection, params: Params, source: Path) -> pd.DataFrame:
    """Create the table ``clean`` in ``con`` from the raw ``source`` and return the quality log.

    One scan counts what the row-wise rules 1-3 do; de-duplication groups the
    surviving lines (``copies`` per distinct line); one more scan over the
    distinct lines assigns each removed line to the first of rules 5-7 that
    removes it. Counts and money match :func:`helpers.cleaning.clean_transactions`.
    """
    cfg, as_of = params.cleaning, params.as_of
    if cfg.cancellations == "net":
        raise ConfigError("cleaning.cancellations: net is done in pandas (helpers.cleaning); "
                          "the DuckDB path supports drop and keep")
    end = _literal((as_of + dt.timedelta(days=1)).isoformat())
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW lines AS SELECT * EXCLUDE (customer_raw), customer_raw, "
                    f"{_normalised_id() if cfg.normalise_ids else 'customer_raw'} AS customer_id "
                    f"FROM ({canonical_select(params, source)})")
        columns = [r[0] for r in con.execute("DESCRIBE lines").fetchall()]
        first = con.execute(f"""
            SELECT count(*), coalesce(sum(amount), 0),
                   count(*) FILTER (customer_raw IS DISTINCT FROM customer_id),
                   count(*) FILTER (customer_id IS NULL), coalesce(sum(amount) FILTER (customer_id IS NULL), 0),
                   count(*) FILTER (customer_id IS NOT NULL AND order_ts >= TIMESTAMP {end}),
                   coalesce(sum(amount) FILTER (customer_id IS NOT NULL AND order_ts >= TIMESTAMP {end}), 0),
                   count(*) FILTER (order_id IS NULL), count(*) FILTER (order_ts IS NULL)
            FROM lines""").fetchone()
    except duckdb.Error as exc:
        raise DataError(f"{source}: DuckDB could not read or map the source: {str(exc).splitlines()[0]}") from None
    rows_in, money_in, rewritten, missing, missing_money, future, future_money, no_order, no_ts = first
    if no_order or no_ts:
        raise DataError(f"{source}: {no_order} lines without an order id and {no_ts} without a timestamp "
                        "(the pandas path, helpers.sources.collect, names the rows)")
    keep_missing = "customer_id IS NOT NULL" if cfg.missing_customer_id else "TRUE"
    keep_future = f"order_ts < TIMESTAMP {end}" if cfg.future_timestamps else "TRUE"
    data_cols = [c for c in columns if c != "customer_raw"]
    col_list = ", ".join(_quote(c) for c in data_cols)
    copies = "count(*)" if cfg.exact_duplicates else "1"
    group = f"GROUP BY {col_list}" if cfg.exact_duplicates else ""
    con.execute(f"CREATE OR REPLACE TEMP TABLE distinct_lines AS SELECT {col_list}, {copies} AS copies "
                f"FROM lines WHERE {keep_missing} AND {keep_future} {group}")
    flags = _rule_flags(cfg, data_cols)
    fate = "CASE " + " ".join(f"WHEN {cond} THEN {i}" for i, (_, cond) in enumerate(flags) if cond) + " ELSE -1 END"
    fate = fate if any(cond for _, cond in flags) else "-1"
    by_fate = dict((f, (n, d, m, dm)) for f, n, d, m, dm in con.execute(f"""
        SELECT {fate} AS fate, count(*), sum(copies), sum(amount), sum(amount * copies)
        FROM distinct_lines GROUP BY fate""").fetchall())
    con.execute(f"CREATE OR REPLACE TEMP TABLE clean AS SELECT {col_list} FROM distinct_lines WHERE {fate} = -1")

    def counted(removed_rows: int, removed_money: float) -> tuple[int, float]:
        return int(removed_rows), float(removed_money or 0.0)

    after_dedup_rows = sum(v[0] for v in by_fate.values())
    after_dedup_money = sum(v[2] or 0.0 for v in by_fate.values())
    before_dedup_rows = sum(v[1] for v in by_fate.values())
    before_dedup_money = sum(v[3] or 0.0 for v in by_fate.values())
    removals = [
        ("normalise_ids", cfg.normalise_ids, (0, 0.0), int(rewritten) if cfg.normalise_ids else 0),
        ("missing_customer_id", cfg.missing_customer_id,
         counted(missing, missing_money) if cfg.missing_customer_id else (0, 0.0), 0),
        ("future_timestamps", cfg.future_timestamps,
         counted(future, future_money) if cfg.future_timestamps else (0, 0.0), 0),
        ("exact_duplicates", cfg.exact_duplicates,
         (before_dedup_rows - after_dedup_rows, before_dedup_money - after_dedup_money), 0),
    ]
    enabled = {"non_product_lines": cfg.non_product_lines, "cancellations": cfg.cancellations != "keep",
               "non_positive_price": cfg.non_positive_price}
    for i, (name, _) in enumerate(flags):
        distinct_rows, _, distinct_money, _ = by_fate.get(i, (0, 0, 0.0, 0.0))
        removals.append((name, enabled[name], counted(distinct_rows, distinct_money), 0))
    log, rows, money = [], int(rows_in), float(money_in)
    for step, (name, enabled, (removed, removed_money), modified) in enumerate(removals, start=1):
        log.append({"step": step, "rule": name, "enabled": bool(enabled), "rows_before": rows,
                    "rows_removed": removed, "rows_after": rows - removed, "rows_modified": modified,
                    "amount_removed": round(removed_money, 2)})
        rows, money = rows - removed, money - removed_money
    if not cfg.missing_customer_id and missing:
        raise DataError(f"{source}: {missing} lines have no customer id and missing_customer_id is off")
    quality = pd.DataFrame(log)
    negative = con.execute("SELECT count(*) FROM clean WHERE amount < 0" +
                           (" OR quantity < 0" if "quantity" in data_cols else "")).fetchone()[0]
    if negative:  # what the clean-transaction schema refuses in the pandas path
        raise DataError(f"{source}: {negative} lines left after cleaning have a negative amount or quantity "
                        "(returns kept with cleaning.cancellations: keep); drop them or switch non_positive_price on")
    if rows == 0:
        raise DataError(f"{source}: cleaning left no lines (quality log:\n{quality.to_string(index=False)})")
    return quality


def _purchase_days(as_of: dt.date) -> str:
    end = _literal((as_of + dt.timedelta(days=1)).isoformat())
    return (f"SELECT customer_id, CAST(date_trunc('day', order_ts) AS DATE) AS day, sum(amount) AS amount "
            f"FROM clean WHERE order_ts < TIMESTAMP {end} GROUP BY ALL")


def btyd_summary(con: duckdb.DuckDBPyConnection, as_of: dt.date, unit_days: float = 1.0) -> pd.DataFrame:
    """Frequency, recency, T and mean repeat spend per customer from table ``clean`` (as :func:`helpers.clv.btyd_summary`)."""
    day = _literal(as_of.isoformat())
    frame = con.execute(f"""
        SELECT customer_id,
               CAST(count(*) - 1 AS DOUBLE) AS frequency,
               datediff('day', min(day), max(day)) / {unit_days} AS recency,
               datediff('day', min(day), DATE {day}) / {unit_days} AS "T",
               CASE WHEN count(*) > 1 THEN (sum(amount) - arg_min(amount, day)) / (count(*) - 1) ELSE 0 END
                 AS monetary_value
        FROM ({_purchase_days(as_of)}) GROUP BY customer_id ORDER BY customer_id""").df()
    return frame.set_index("customer_id")


def customer_table(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> pd.DataFrame:
    """The behaviour columns of :func:`helpers.rfm.customer_table` from table ``clean`` (no country)."""
    day = _literal(as_of.isoformat())
    frame = con.execute(f"""
        SELECT customer_id, CAST(min(day) AS TIMESTAMP) AS first_purchase, CAST(max(day) AS TIMESTAMP) AS last_purchase,
               datediff('day', max(day), DATE {day}) AS recency_days, count(*) AS frequency,
               sum(amount) AS monetary_total, sum(amount) / count(*) AS monetary_avg,
               datediff('day', min(day), DATE {day}) AS tenure_days
        FROM ({_purchase_days(as_of)}) GROUP BY customer_id ORDER BY customer_id""").df()
    return frame.astype({"recency_days": "int64", "frequency": "int64", "tenure_days": "int64"})
