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

Stages 02 and 03 use it when ``engine`` says so (``auto``: Parquet sources
of 64 MB and more): :func:`collect` writes ``collected.parquet`` straight
from the raw snapshot and :func:`clean` writes ``transactions.parquet`` and
the quality log, all through DuckDB.

Not supported here (a :class:`~helpers.errors.ConfigError` says so):
``cleaning.cancellations: net`` (netting matches returns to earlier purchases
line by line, done in pandas) and sources other than Parquet. Bad values are
reported by DuckDB's message; the pandas engine names the rows at fault.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from helpers.cleaning import check_as_of
from helpers.config import CleaningParams, Params
from helpers.errors import ConfigError, DataError
from helpers.sources import CANONICAL_ORDER, check_signs, source_label



#: Above this size a Parquet source goes through DuckDB when ``engine`` is ``auto``.
DUCKDB_MIN_BYTES = 64 * 2**20


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


def engine(params: Params, file: Path) -> str:
    """``pandas`` or ``duckdb``: the engine stages 02 and 03 use for ``file`` (the raw snapshot)."""
    if params.engine == "pandas":
        return "pandas"
    possible = params.source.kind == "parquet" and params.cleaning.cancellations != "net"
    if params.engine == "duckdb":
        if not possible:
            raise ConfigError("engine: duckdb needs a Parquet source and cleaning.cancellations drop or keep "
                              f"(source.kind is {params.source.kind!r}, cancellations {params.cleaning.cancellations!r})")
        return "duckdb"
    return "duckdb" if possible and Path(file).stat().st_size >= DUCKDB_MIN_BYTES else "pandas"


def canonical_select(params: Params, source: Path) -> str:
    """SQL selecting the canonical columns (as :func:`helpers.sources.map_columns`) from a raw Parquet ``source``.

    ``customer_raw`` keeps the id as read (text) to count the ids the
    ``normalise_ids`` rule rewrites; ``source_row`` is the line number in the file.
    """
    if params.source.kind != "parquet":
        raise ConfigError(f"the DuckDB path reads Parquet sources, not {params.source.kind!r}")
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
        "source_row": "file_row_number + 1",
    }
    body = ",\n  ".join(f"{expr} AS {name}" for name, expr in select.items())
    return f"SELECT\n  {body}\nFROM read_parquet({_literal(str(source))}, file_row_number = true)"


def collected_select(collected: Path) -> str:
    """SQL reading a ``collected.parquet`` (canonical columns) as :func:`clean_lines` expects it."""
    return (f"SELECT * EXCLUDE (customer_id, source_row), customer_id AS customer_raw, "
            f"CAST(source_row AS BIGINT) AS source_row FROM read_parquet({_literal(str(collected))})")


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


def clean_lines(con: duckdb.DuckDBPyConnection, params: Params, source: Path, *, collected: bool = False) -> pd.DataFrame:
    """Create the table ``clean`` in ``con`` from ``source``; see :func:`_clean_lines`.

    Any DuckDB failure (a value that does not convert, a file that cannot be
    read) becomes a :class:`~helpers.errors.DataError` naming the file.
    """
    try:
        return _clean_lines(con, params, source, collected=collected)
    except duckdb.Error as exc:
        raise DataError(f"{source}: DuckDB could not read, map or clean the lines: {str(exc).splitlines()[0]}") from None


def _clean_lines(con: duckdb.DuckDBPyConnection, params: Params, source: Path, *, collected: bool = False) -> pd.DataFrame:
    """Create the table ``clean`` in ``con`` from the raw ``source`` and return the quality log.

    With ``collected``, ``source`` is a ``collected.parquet`` of stage 02
    (canonical columns) rather than the raw file.

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
    con.execute(f"CREATE OR REPLACE TEMP VIEW lines AS SELECT * EXCLUDE (customer_raw), customer_raw, "
                f"{_normalised_id() if cfg.normalise_ids else 'customer_raw'} AS customer_id "
                f"FROM ({collected_select(source) if collected else canonical_select(params, source)})")
    columns = [r[0] for r in con.execute("DESCRIBE lines").fetchall()]
    first = con.execute(f"""
        SELECT count(*), coalesce(sum(amount), 0),
               count(*) FILTER (customer_raw IS DISTINCT FROM customer_id),
               count(*) FILTER (customer_id IS NULL), coalesce(sum(amount) FILTER (customer_id IS NULL), 0),
               count(*) FILTER (customer_id IS NOT NULL AND order_ts >= TIMESTAMP {end}),
               coalesce(sum(amount) FILTER (customer_id IS NOT NULL AND order_ts >= TIMESTAMP {end}), 0),
               count(*) FILTER (order_id IS NULL), count(*) FILTER (order_ts IS NULL), min(order_ts), max(order_ts)
        FROM lines""").fetchone()
    rows_in, money_in, rewritten, missing, missing_money, future, future_money, no_order, no_ts, first_ts, last_ts = first
    if first_ts is not None:
        check_as_of(pd.Timestamp(first_ts), pd.Timestamp(last_ts), as_of, str(source))
    if no_order or no_ts:
        raise DataError(f"{source}: {no_order} lines without an order id and {no_ts} without a timestamp "
                        "(the pandas path, helpers.sources.collect, names the rows)")
    keep_missing = "customer_id IS NOT NULL" if cfg.missing_customer_id else "TRUE"
    keep_future = f"order_ts < TIMESTAMP {end}" if cfg.future_timestamps else "TRUE"
    data_cols = [c for c in columns if c not in ("customer_raw", "source_row")]
    col_list = ", ".join(_quote(c) for c in data_cols)
    # a duplicate keeps the first line's source_row, as pandas' drop of later duplicates does
    copies = "count(*) AS copies, min(source_row)" if cfg.exact_duplicates else "1 AS copies, source_row"
    group = f"GROUP BY {col_list}" if cfg.exact_duplicates else ""
    con.execute(f"CREATE OR REPLACE TEMP TABLE distinct_lines AS SELECT {col_list}, {copies} AS source_row "
                f"FROM lines WHERE {keep_missing} AND {keep_future} {group}")
    flags = _rule_flags(cfg, data_cols)
    fate = "CASE " + " ".join(f"WHEN {cond} THEN {i}" for i, (_, cond) in enumerate(flags) if cond) + " ELSE -1 END"
    fate = fate if any(cond for _, cond in flags) else "-1"
    by_fate = dict((f, (n, d, m, dm)) for f, n, d, m, dm in con.execute(f"""
        SELECT {fate} AS fate, count(*), sum(copies), sum(amount), sum(amount * copies)
        FROM distinct_lines GROUP BY fate""").fetchall())
    ordered = ", ".join(_quote(c) for c in CANONICAL_ORDER if c in data_cols)
    con.execute(f"CREATE OR REPLACE TEMP TABLE clean AS SELECT {ordered}, CAST(source_row AS VARCHAR) AS source_row "
                f"FROM distinct_lines WHERE {fate} = -1")

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


# ---------------------------------------------------------------------------
# stages 02 and 03 with the DuckDB engine

def _copy(con: duckdb.DuckDBPyConnection, select: str, target: Path) -> Path:
    """``COPY (select) TO target`` as Parquet, atomically (the target appears only when complete)."""
    from helpers import store

    with store.atomic_path(target) as tmp:
        con.execute(f"COPY ({select}) TO {_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
    return target


def collect(params: Params, snapshot_file: Path, target: Path) -> Path:
    """Stage 02 with DuckDB: ``target`` (the run's ``collected.parquet``) from the raw Parquet snapshot."""
    from helpers import paths

    con = connect(temp_directory=target.parent)
    try:
        view = canonical_select(params, snapshot_file)
        names = [r[0] for r in con.execute(f"DESCRIBE ({view})").fetchall()]
        order = [c for c in CANONICAL_ORDER if c in names or (c == "customer_id" and "customer_raw" in names)]
        select = ", ".join({"customer_id": "customer_raw AS customer_id",
                            "source_row": "CAST(source_row AS VARCHAR) AS source_row"}.get(c, _quote(c)) for c in order)
        signs = [role for role in ("amount", "quantity", "unit_price") if role in names]
        counts = ", ".join(f"count(*) FILTER ({_quote(r)} < 0), count(*) FILTER (coalesce({_quote(r)}, 0) <> 0)"
                           for r in signs)
        bad = con.execute(f"SELECT count(*) FILTER (order_ts IS NULL), count(*) FILTER (amount IS NULL), "
                          f"count(*) FILTER (order_id IS NULL), {counts} FROM ({view})").fetchone()
        where = f"{source_label(params.source)} (snapshot {paths.shown(snapshot_file)})"
        if any(bad[:3]):
            raise DataError(f"{where}: {bad[0]} lines without a timestamp, {bad[1]} without an amount, "
                            f"{bad[2]} without an order id (run with engine: pandas to see the rows)")
        mapping = {role: col for role, col in params.columns.model_dump().items() if col is not None}
        check_signs({r: (mapping.get(r), int(bad[3 + 2 * i]), int(bad[4 + 2 * i])) for i, r in enumerate(signs)}, where)
        return _copy(con, f"SELECT {select} FROM ({view})", target)
    except duckdb.Error as exc:
        raise DataError(f"{source_label(params.source)} (snapshot {snapshot_file}): DuckDB could not read or map "
                        f"the source: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def overview(con: duckdb.DuckDBPyConnection, table: str = "clean") -> pd.Series:
    """Headline numbers of a transaction table, as :func:`helpers.cleaning.summarise`."""
    row = con.execute(f"SELECT count(DISTINCT customer_id), count(DISTINCT order_id), count(*), sum(amount), "
                      f"min(order_ts), max(order_ts) FROM {table}").fetchone()
    return pd.Series({"customers": row[0], "orders": row[1], "lines": row[2], "revenue": round(float(row[3]), 2),
                      "first order": row[4].date().isoformat(), "last order": row[5].date().isoformat()})


def clean(params: Params, catalog: Any) -> tuple[pd.DataFrame, pd.Series, dict[str, Path]]:
    """Stage 03 with DuckDB: clean ``collected.parquet``; write ``transactions.parquet``, the quality log and tables.

    Returns the quality log, the headline numbers and the files written.
    """
    out = catalog.folder
    con = connect(temp_directory=out)
    try:
        quality = clean_lines(con, params, out / "collected.parquet", collected=True)
        files, numbers = _write_clean(con, quality, out)
    except duckdb.Error as exc:
        raise DataError(f"{out / 'collected.parquet'}: DuckDB could not write the clean lines: "
                        f"{str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    catalog.write_tables({"quality_log": quality}, views={"transactions": "transactions"})
    return quality, numbers, files


def _write_clean(con: duckdb.DuckDBPyConnection, quality: pd.DataFrame, out: Path) -> tuple[dict[str, Path], pd.Series]:
    """Write table ``clean`` as ``transactions.parquet`` (sorted, so reruns are identical) and the quality log."""
    from helpers import store

    quality["note"] = "DuckDB engine"
    order = "ORDER BY customer_id, order_ts, order_id, CAST(source_row AS BIGINT)"
    files = {"transactions": _copy(con, f"SELECT * FROM clean {order}", out / "transactions.parquet"),
             "quality_log": store.write_text(quality.to_csv(index=False), out / "quality_log.csv")}
    return files, overview(con)
