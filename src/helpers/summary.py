"""One summary of the clean lines: the purchase days, computed once per run in SQL, and what derives from them.

Every model of stages 04, 05 and 07 sees a customer at the grain of the
**purchase day** (customer x day): several orders of one customer on one day
count as one purchase, their amounts add up. :func:`write_purchase_days`
computes that table once per run, in DuckDB over the run's
``transactions.parquet`` (the lines never enter pandas, so it scales with
the number of purchase days, not of lines), and stage 04 writes it as the
catalog artifact ``purchase_days``::

    customer_id  day         amount   orders  lines  [country]
    00004        1997-01-01  29.33    1       1

``amount`` is the day's spend (a cancellation netted in stage 03 can make it
negative), ``orders`` its distinct orders, ``lines`` its clean lines and
``country`` (when the lines have one) the country of the day's earliest line
that names one. The functions below are pure and take that table (as read by
:func:`read_purchase_days`):

- :func:`customer_table` - the RFM customer table of stage 04;
- :func:`btyd_summary` - frequency, recency, T and mean repeat spend (stage 05);
- :func:`calibration_holdout` - the calibration summary plus holdout purchases (stage 05);
- :func:`purchase_halves` - repeat purchase days per half of the tenure (the lifecycle rule);
- :func:`log_start` - the first purchase day (data-derived windows).

Each summary is defined here once. Stage 04 scores :func:`customer_table`;
stage 05 reads the artifact (:func:`read_purchase_days`) for its BTYD summary,
calibration/holdout split, lifecycle halves and the example customer's
P(alive) path; stage 07 builds every feature from it; the benchmark times this
path. ``helpers.clv.btyd_summary`` and friends are these functions behind an
adapter that also takes clean lines in a frame (grouped by day in pandas,
:func:`helpers.rfm.purchase_days`). They give exactly what the line-level
path gives: the day's amount is DuckDB's Kahan sum (``fsum``) of its lines in
file order, the compensated sum pandas computes. (A sum of day amounts over a
window is not always the sum of its lines to the last bit, so stage 07's labels,
spend in a future window, are summed over the lines.)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from helpers.catalog import Catalog
from helpers.config import SparkParams
from helpers.errors import DataError

#: Time units of the BTYD summary, in days.
UNIT_DAYS = {"D": 1.0, "W": 7.0}
#: The columns of the customer table, in order (``country`` only when known).
CUSTOMER_COLUMNS = ["customer_id", "country", "first_purchase", "last_purchase", "recency_days", "frequency",
                    "monetary_total", "monetary_avg", "tenure_days"]


# ---------------------------------------------------------------------------
# the purchase days, in SQL


def _literal(value: str) -> str:
    """A SQL string literal.

    >>> _literal("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def exact_sum(column: str) -> str:
    """SQL for a sum of ``column`` that is the same whatever order DuckDB's threads add it up in.

    The values are taken to six decimals and added as decimals (exact integer arithmetic), then the total
    is a double again. A plain ``sum`` (or ``fsum``) of doubles over a parallel scan adds the partial sums
    of its threads in the order they finish: on a million customers' lines three runs of the same query
    gave three different last bits for some orders. Six decimals keep every cent, and unit prices to a
    millionth; values must stay below 10^32.

    >>> exact_sum("amount")
    'CAST(sum(CAST(amount AS DECIMAL(38, 6))) AS DOUBLE)'
    """
    return f"CAST(sum(CAST({column} AS DECIMAL(38, 6))) AS DOUBLE)"


def purchase_days_sql(transactions_file: Path, as_of: dt.date, country: bool) -> str:
    """The SQL of the purchase-days table: the lines of ``transactions_file`` up to the end of ``as_of``, by customer and day.

    The day's amount is summed with Kahan compensation (``fsum``) in the clean order of its lines (order
    time, order id, then their order in the file: :data:`helpers.cleaning.CLEAN_ORDER`, whichever order the
    engine wrote them in), so it is the same number pandas gets and the same on every rerun, whatever the
    number of threads. The country is that of the first line in the same order that names one.

    >>> "fsum(amount ORDER BY order_ts, order_id, file_row_number)" in purchase_days_sql(Path("t.parquet"),
    ...                                                                            dt.date(2020, 1, 31), False)
    True
    """
    end = _literal((as_of + dt.timedelta(days=1)).isoformat())
    first_country = (", arg_min(country, struct_pack(ts := order_ts, id := order_id, line := file_row_number)) "
                     "FILTER (WHERE country IS NOT NULL) AS country") if country else ""
    return (f"SELECT customer_id, CAST(order_ts AS DATE) AS day, "
            f"fsum(amount ORDER BY order_ts, order_id, file_row_number) AS amount, "
            f"count(DISTINCT order_id) AS orders, count(*) AS lines{first_country} "
            f"FROM read_parquet({_literal(str(transactions_file))}, file_row_number = true) "
            f"WHERE order_ts < TIMESTAMP {end} GROUP BY customer_id, day ORDER BY customer_id, day")


def _connect(spill: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that spills to ``spill`` (a folder) beyond its memory limit.

    DuckDB's default limit (80% of the machine) is kept here; a query that needs less sets its own
    (:data:`PURCHASE_DAYS_MEMORY`). A 4 GB limit made the order sizes' ``median`` aggregate spill until the
    disk was full at 10M customers; their medians now come from window ranks, which spill well.
    """
    con = duckdb.connect()
    con.execute(f"SET temp_directory = {_literal(str(spill))}")
    return con


def _has_country(con: duckdb.DuckDBPyConnection, transactions_file: Path) -> bool:
    """Whether the lines of ``transactions_file`` have a ``country`` column."""
    names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_literal(str(transactions_file))})").fetchall()]
    return "country" in names


#: DuckDB's memory for the purchase days (their ordered sums spill beyond it): 10M customers' 110M lines took
#: 10.7 GB in 67 s under the default limit (80% of the machine), 4.3 GB in 91 s under this one, the same bytes.
PURCHASE_DAYS_MEMORY = "4GB"


def write_purchase_days(transactions_file: Path, as_of: dt.date, target: Path, spark: SparkParams | None = None) -> Path:
    """Compute the purchase days of ``transactions_file`` at ``as_of`` in DuckDB and write them to ``target`` (Parquet).

    One pass over the lines, all in DuckDB (it spills beside ``target``
    rather than holding the lines in memory); the file appears only when complete.
    With ``spark`` (``params.spark`` of ``engine: spark``) the same SQL runs on
    Spark (:mod:`helpers.sparkengine`; sums to 1e-9, not Kahan's last bit).
    """
    from helpers import sqlclean

    if spark is not None:
        from helpers import sparkengine

        con: Any = sparkengine.connect(spark)
    else:
        con = _connect(Path(target).parent)
        con.execute(f"SET memory_limit = {_literal(PURCHASE_DAYS_MEMORY)}")
    try:
        return sqlclean.copy_to(con, purchase_days_sql(transactions_file, as_of, _has_country(con, transactions_file)),
                                Path(target))
    finally:
        con.close()


def line_counts(transactions_file: Path, as_of: dt.date) -> tuple[int, int]:
    """Clean lines and distinct orders of ``transactions_file`` up to the end of ``as_of`` (counted in DuckDB)."""
    end = _literal((as_of + dt.timedelta(days=1)).isoformat())
    con = _connect(Path(transactions_file).parent)
    try:
        lines, orders = con.execute(f"SELECT count(*), count(DISTINCT order_id) FROM read_parquet("
                                    f"{_literal(str(transactions_file))}) WHERE order_ts < TIMESTAMP {end}").fetchone()
    finally:
        con.close()
    return int(lines), int(orders)


def _as_frame(table: object) -> pd.DataFrame:
    """A purchase-days Arrow table as pandas, ``day`` as ``datetime64[ns]`` (what the pandas path gives)."""
    frame = table.to_pandas(date_as_object=False)  # type: ignore[attr-defined]
    frame["day"] = frame["day"].astype("datetime64[ns]")
    return frame


def read_purchase_days(catalog: Catalog, columns: list[str] | None = None) -> pd.DataFrame:
    """The run's purchase days (written by stage 04), only ``columns`` when given (``customer_id`` and ``day`` always)."""
    import pyarrow.parquet as pq

    file = catalog.require("purchase_days", "04-rfm-value-tiers")
    if columns is not None:
        present = set(pq.ParquetFile(file).schema_arrow.names)
        columns = [c for c in dict.fromkeys(["customer_id", "day", *columns]) if c in present]
    return _as_frame(pq.read_table(file, columns=columns))


def purchase_days(transactions_file: Path, as_of: dt.date) -> pd.DataFrame:
    """The purchase days of ``transactions_file`` at ``as_of`` as a frame, without writing them (benchmarks, tests).

    The same SQL as :func:`write_purchase_days`.
    """
    con = _connect(Path(transactions_file).parent)
    try:
        select = purchase_days_sql(transactions_file, as_of, _has_country(con, transactions_file))
        return _as_frame(con.sql(select).to_arrow_table())
    finally:
        con.close()


# ---------------------------------------------------------------------------
# what derives from the purchase days (pure functions)


def until(days: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The purchase days on or before ``as_of``; a clear error when there are none.

    >>> d = pd.DataFrame({"customer_id": ["a", "a"], "day": pd.to_datetime(["2020-01-01", "2020-02-01"]), "amount": [1.0, 2.0]})
    >>> until(d, dt.date(2020, 1, 31))["amount"].tolist()
    [1.0]
    """
    kept = days[days["day"] <= pd.Timestamp(as_of)]
    if kept.empty:
        raise DataError(f"no transactions on or before as_of {as_of.isoformat()}")
    return kept


def log_start(days: pd.DataFrame, as_of: dt.date) -> dt.date:
    """The first purchase day on or before ``as_of`` (data-derived windows are measured from it).

    >>> d = pd.DataFrame({"customer_id": ["a", "b"], "day": pd.to_datetime(["2020-01-05", "2020-01-02"]), "amount": [1.0, 1.0]})
    >>> log_start(d, dt.date(2020, 1, 31))
    datetime.date(2020, 1, 2)
    """
    return until(days, as_of)["day"].min().date()


def customer_table(days: pd.DataFrame, as_of: dt.date, country: bool = True) -> pd.DataFrame:
    """The customer table at ``as_of``: identity and behaviour columns of the information model.

    ``country`` (when the purchase days have it) is the country of the
    customer's first purchase day that names one; ``country=False`` leaves it out.

    >>> d = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [10.0, 20.0, 5.0],
    ...     "day": pd.to_datetime(["2020-01-01", "2020-01-21", "2020-01-31"])})
    >>> customer_table(d, dt.date(2020, 1, 31))[["customer_id", "recency_days", "frequency", "tenure_days"]].values.tolist()
    [['a', 10, 2, 30], ['b', 0, 1, 0]]
    """
    days = until(days, as_of)
    g = days.groupby("customer_id", sort=True)
    table = pd.DataFrame({
        "first_purchase": g["day"].min(),
        "last_purchase": g["day"].max(),
        "frequency": g["day"].size().astype("int64"),
        "monetary_total": g["amount"].sum().astype(float),
    })
    ts = pd.Timestamp(as_of)
    table["recency_days"] = (ts - table["last_purchase"]).dt.days.astype("int64")
    table["tenure_days"] = (ts - table["first_purchase"]).dt.days.astype("int64")
    table["monetary_avg"] = table["monetary_total"] / table["frequency"]
    if country and "country" in days.columns:
        table["country"] = g["country"].first()  # the first non-missing one, days in order
    table = table.reset_index()
    return table[[c for c in CUSTOMER_COLUMNS if c in table.columns]]


def btyd_summary(days: pd.DataFrame, as_of: dt.date, unit: str = "W") -> pd.DataFrame:
    """Frequency, recency, T and mean repeat spend per customer at ``as_of``, indexed by ``customer_id``.

    ``frequency`` counts repeat purchase days, ``recency`` the time from the
    first to the last purchase, ``T`` from the first purchase to ``as_of``
    (in ``unit``: ``"D"`` or ``"W"``); ``monetary_value`` is the mean amount
    of the repeat purchase days (0 for one-time buyers), the input Gamma-Gamma expects.

    >>> d = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [6.0, 3.0, 2.0],
    ...     "day": pd.to_datetime(["2020-01-01", "2020-01-15", "2020-01-29"])})
    >>> btyd_summary(d, dt.date(2020, 1, 29), "W").values.tolist()
    [[1.0, 2.0, 4.0, 3.0], [0.0, 0.0, 0.0, 0.0]]
    """
    g = until(days, as_of).groupby("customer_id", sort=True)
    first, last, n = g["day"].min(), g["day"].max(), g.size()
    unit_days = UNIT_DAYS[unit]
    repeat_total = g["amount"].sum() - g["amount"].first()
    frequency = (n - 1).astype(float)
    return pd.DataFrame({
        "frequency": frequency,
        "recency": (last - first).dt.days / unit_days,
        "T": (pd.Timestamp(as_of) - first).dt.days / unit_days,
        "monetary_value": np.where(frequency > 0, repeat_total / frequency.where(frequency > 0, 1), 0.0),
    })


def calibration_holdout(days: pd.DataFrame, calibration_end: dt.date, as_of: dt.date,
                        unit: str = "W") -> pd.DataFrame:
    """The calibration summary (:func:`btyd_summary` at ``calibration_end``) plus purchase days in (``calibration_end``, ``as_of``].

    ``frequency_holdout`` counts each customer's purchase days in the holdout,
    ``duration_holdout`` is its length in ``unit``. Customers first seen in
    the holdout are not part of the calibration cohort and are left out.

    >>> d = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "amount": [1.0, 1.0, 1.0, 1.0],
    ...     "day": pd.to_datetime(["2020-01-01", "2020-01-08", "2020-02-05", "2020-02-01"])})
    >>> calibration_holdout(d, dt.date(2020, 1, 29), dt.date(2020, 2, 26))[["frequency", "frequency_holdout"]].values.tolist()
    [[1.0, 1.0]]
    """
    if calibration_end >= as_of:
        raise DataError(f"calibration end {calibration_end} must be before as_of {as_of}")
    days = until(days, as_of)
    first_day = days["day"].min().date()
    if first_day > calibration_end:
        raise DataError(
            f"no purchases in the calibration period: the first purchase is on {first_day}, after the calibration "
            f"end {calibration_end} ({(as_of - calibration_end).days} holdout days before as_of {as_of}). "
            "Shorten clv.holdout_days so the calibration period holds purchases."
        )
    cal = btyd_summary(days, calibration_end, unit)
    later = days[days["day"] > pd.Timestamp(calibration_end)]
    if not later["customer_id"].isin(cal.index).any():
        raise DataError(
            f"no purchases in the holdout period {calibration_end} to {as_of} by the {len(cal)} customers of the "
            "calibration period, so the models cannot be compared on it. Check as_of (is the data complete up to "
            "it?) or change clv.holdout_days."
        )
    cal["frequency_holdout"] = later.groupby("customer_id").size().reindex(cal.index, fill_value=0).astype(float)
    cal["duration_holdout"] = (as_of - calibration_end).days / UNIT_DAYS[unit]
    return cal


def purchase_halves(days: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Repeat purchase days in the first and the second half of each customer's tenure (the lifecycle rule's trend).

    The first purchase (acquisition) is not counted; the halves split the time
    from the first purchase to ``as_of``.

    >>> d = pd.DataFrame({"customer_id": ["a"] * 4, "amount": [1.0] * 4,
    ...     "day": pd.to_datetime(["2020-01-01", "2020-01-20", "2020-03-01", "2020-03-20"])})
    >>> purchase_halves(d, dt.date(2020, 3, 31)).values.tolist()
    [[1, 2]]
    """
    days = until(days, as_of)
    first = days.groupby("customer_id")["day"].transform("min")
    midpoint = first + (pd.Timestamp(as_of) - first) / 2
    repeat = days["day"] > first
    halves = pd.DataFrame({"customer_id": days["customer_id"],
                           "repeat_first_half": repeat & (days["day"] < midpoint),
                           "repeat_second_half": repeat & (days["day"] >= midpoint)})
    return halves.groupby("customer_id", sort=True).sum().astype("int64")
