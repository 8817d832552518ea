"""The per-customer summaries of stages 05 and 07 in DuckDB SQL over the run's purchase days (issue 15).

:mod:`helpers.summary` defines every summary on a purchase-days frame in
pandas. At ten million customers that frame (27 million days, text keys) does
not fit in memory, so the stages read the ``purchase_days`` artifact here
instead: :func:`customer_aggregates` makes **one pass in DuckDB** and returns
one row per customer (first and last day, purchase days, their Kahan sum in
day order, the first day's amount, repeat days per half of the tenure,
optionally the early window's and the last 90 days' counts and sums, and the
first country named); :func:`btyd_summary`, :func:`purchase_halves`,
:func:`early_features` and :func:`rfm_features` turn it into exactly what the
pandas functions of the same names give, to the last bit: the integers are
counted, the sums are Kahan sums in day order (DuckDB's ``fsum`` with
``ORDER BY day`` is the compensated sum pandas' groupby computes; the tests
compare both) and every ratio is the same IEEE division done in pandas.
:func:`sample_days` reads only the purchase days of given customers (a DuckDB
semi-join on their ids): what the stages fit on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from helpers import sampling
from helpers.errors import DataError
from helpers.summary import UNIT_DAYS, _as_frame, _connect, _literal

#: The window of stage 07's recent activity (``purchases_last_90d``, ``spend_last_90d``), in days.
RECENT_DAYS = 90


def _aggregates_sql(file: Path, as_of: dt.date, early_days: int | None, country: bool) -> str:
    """The SQL of :func:`customer_aggregates` (``early_days`` None: no early and recent columns)."""
    end = f"DATE {_literal(as_of.isoformat())}"
    kahan = "fsum(amount ORDER BY day)"
    parts = ["first", "max(day) AS last", "count(*) AS n", f"{kahan} AS total", "arg_min(amount, day) AS first_amount",
             f"count(*) FILTER (WHERE day > first AND 2 * (day - first) < {end} - first) AS repeat_first_half",
             f"count(*) FILTER (WHERE day > first AND 2 * (day - first) >= {end} - first) AS repeat_second_half"]
    if early_days is not None:
        early, recent = f"day - first < {int(early_days)}", f"{end} - day < {RECENT_DAYS}"
        parts += [f"count(*) FILTER (WHERE {early}) AS early_n", f"{kahan} FILTER (WHERE {early}) AS early_total",
                  f"count(*) FILTER (WHERE {recent}) AS recent_n", f"{kahan} FILTER (WHERE {recent}) AS recent_total"]
    if country:
        parts.append("arg_min(country, day) FILTER (WHERE country IS NOT NULL) AS country")
    source = f"read_parquet({_literal(str(file))})"
    return (f"WITH d AS (SELECT customer_id, day, amount{', country' if country else ''}, "
            f"min(day) OVER (PARTITION BY customer_id) AS first FROM {source} WHERE day <= {end}) "
            f"SELECT customer_id, {', '.join(parts)} FROM d GROUP BY customer_id, first ORDER BY customer_id")


def _columns(con: duckdb.DuckDBPyConnection, file: Path) -> list[str]:
    """The column names of the Parquet ``file``."""
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_literal(str(file))})").fetchall()]


def customer_aggregates(file: Path, as_of: dt.date, early_days: int | None = None) -> pd.DataFrame:
    """One row per customer with a purchase day on or before ``as_of`` in the purchase-days Parquet ``file``, by id.

    Columns: ``first``, ``last`` (datetime64[ns]), ``n`` (purchase days),
    ``total`` (Kahan sum of the day amounts in day order), ``first_amount``,
    ``repeat_first_half`` and ``repeat_second_half`` (:func:`purchase_halves`);
    with ``early_days`` also ``early_n``/``early_total`` (days less than
    ``early_days`` after the first) and ``recent_n``/``recent_total`` (the last
    :data:`RECENT_DAYS` days to ``as_of``); ``country`` (the first day's that
    names one) when the file has the column. Computed in DuckDB (it spills
    beside ``file``); only the per-customer rows come into pandas.
    """
    con = _connect(Path(file).parent)
    try:
        country = "country" in _columns(con, file)
        frame = con.sql(_aggregates_sql(file, as_of, early_days, country)).to_arrow_table().to_pandas(
            date_as_object=False)
    finally:
        con.close()
    for column in ("first", "last"):
        frame[column] = frame[column].astype("datetime64[ns]")
    return frame.set_index("customer_id")


def first_day(file: Path, as_of: dt.date) -> dt.date:
    """The first purchase day on or before ``as_of`` in the purchase-days Parquet ``file`` (:func:`log_start`)."""
    con = _connect(Path(file).parent)
    try:
        (day,) = con.execute(f"SELECT min(day) FROM read_parquet({_literal(str(file))}) "
                             f"WHERE day <= DATE {_literal(as_of.isoformat())}").fetchone()
    finally:
        con.close()
    if day is None:
        raise DataError(f"no transactions on or before as_of {as_of.isoformat()}")
    return day


def log_start(aggregates: pd.DataFrame) -> dt.date:
    """The first purchase day of the log (:func:`helpers.summary.log_start` of the same days)."""
    return aggregates["first"].min().date()


def btyd_summary(aggregates: pd.DataFrame, as_of: dt.date, unit: str = "W") -> pd.DataFrame:
    """:func:`helpers.summary.btyd_summary` at ``as_of`` (the aggregates' date) from :func:`customer_aggregates`.

    >>> a = pd.DataFrame({"first": pd.to_datetime(["2020-01-01", "2020-01-29"]), "last": pd.to_datetime(["2020-01-15",
    ...     "2020-01-29"]), "n": [2, 1], "total": [9.0, 2.0], "first_amount": [6.0, 2.0]}, index=["a", "b"])
    >>> btyd_summary(a, dt.date(2020, 1, 29), "W").values.tolist()
    [[1.0, 2.0, 4.0, 3.0], [0.0, 0.0, 0.0, 0.0]]
    """
    unit_days = UNIT_DAYS[unit]
    frequency = (aggregates["n"] - 1).astype(float)
    repeat = frequency > 0
    monetary = ((aggregates["total"] - aggregates["first_amount"]) / frequency.where(repeat, 1)).where(repeat, 0.0)
    return pd.DataFrame({
        "frequency": frequency,
        "recency": (aggregates["last"] - aggregates["first"]).dt.days / unit_days,
        "T": (pd.Timestamp(as_of) - aggregates["first"]).dt.days / unit_days,
        "monetary_value": monetary.astype(float),
    }).rename_axis("customer_id")


def purchase_halves(aggregates: pd.DataFrame) -> pd.DataFrame:
    """:func:`helpers.summary.purchase_halves` from :func:`customer_aggregates` (repeat days per half of the tenure)."""
    return aggregates[["repeat_first_half", "repeat_second_half"]].astype("int64").rename_axis("customer_id")


def early_features(aggregates: pd.DataFrame, countries: list[str] | None = None) -> pd.DataFrame:
    """:func:`helpers.classify.splits.early_features` from :func:`customer_aggregates` with ``early_days``.

    ``early_n`` >= 1 always (the first day is in the early window), so the mean is defined.
    """
    out = pd.DataFrame({"first_purchase": aggregates["first"], "first_order_value": aggregates["first_amount"],
                        "early_purchases": aggregates["early_n"].astype(float),
                        "early_spend": aggregates["early_total"].astype(float)})
    out["early_mean_spend"] = out["early_spend"] / out["early_purchases"]
    if countries is not None and "country" in aggregates.columns:
        for c in countries:
            out[f"country_{c}"] = (aggregates["country"] == c).astype(float)
    return out.rename_axis("customer_id")


def rfm_features(aggregates: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """:func:`helpers.classify.splits.rfm_features` at ``as_of`` (the aggregates' date) from the aggregates."""
    ts = pd.Timestamp(as_of)
    table = pd.DataFrame({"first_purchase": aggregates["first"], "last_purchase": aggregates["last"],
                          "recency_days": (ts - aggregates["last"]).dt.days.astype("int64"),
                          "frequency": aggregates["n"].astype("int64"),
                          "monetary_total": aggregates["total"].astype(float)})
    table["monetary_avg"] = table["monetary_total"] / table["frequency"]
    table["tenure_days"] = (ts - aggregates["first"]).dt.days.astype("int64")
    table["purchases_last_90d"] = aggregates["recent_n"].astype(float)
    table["spend_last_90d"] = aggregates["recent_total"].fillna(0.0).astype(float)
    return table.rename_axis("customer_id")


def sample_days(file: Path, customers: pd.Index | None, columns: list[str] | None = None) -> pd.DataFrame:
    """The purchase days of ``customers`` (ids; None: everyone) in the purchase-days Parquet ``file``, in its order.

    What :func:`helpers.summary.read_purchase_days` gives, with only these
    customers' rows (a DuckDB semi-join: the other days never reach pandas);
    only ``columns`` when given (``customer_id`` and ``day`` always).
    """
    con = _connect(Path(file).parent)
    try:
        present = _columns(con, file)
        wanted = present if columns is None else [c for c in dict.fromkeys(["customer_id", "day", *columns])
                                                  if c in present]
        join = ""
        if customers is not None:
            con.register("sample_ids", pd.DataFrame({"customer_id": pd.Index(customers).astype(str)}))
            join = "SEMI JOIN sample_ids s ON d.customer_id = s.customer_id "
        select = ", ".join(f"d.{c}" for c in wanted)
        table = con.sql(f"SELECT {select} FROM read_parquet({_literal(str(file))}, file_row_number = true) d "
                        f"{join}ORDER BY d.file_row_number").to_arrow_table()
    finally:
        con.close()
    return _as_frame(table)


@dataclass
class Whole:
    """Every customer's :func:`customer_aggregates` and the purchase-days file they come from (stages 05 and 07)."""

    file: Path
    aggregates: pd.DataFrame
    _samples: dict[int | None, pd.Index | None] = field(default_factory=dict, repr=False)  # hashing 10M ids: 20 s
    _summaries: dict[tuple[dt.date, str], tuple[int, pd.DataFrame, pd.DataFrame]] = field(default_factory=dict,
                                                                                          repr=False)

    @classmethod
    def of(cls, file: Path, as_of: dt.date, early_days: int | None = None) -> Whole:
        """The aggregates of the purchase-days Parquet ``file`` at ``as_of``."""
        return cls(Path(file), customer_aggregates(file, as_of, early_days))

    def sample(self, size: int | None, index: pd.Index | None = None) -> pd.Index | None:
        """The ids of the sample (:mod:`helpers.sampling`) of these customers, or None when everyone is used.

        ``index`` gives the ids to draw from (these customers', in the order the ids are returned in; the
        aggregates' by default); the first draw of a size is kept and returned again.
        """
        if size not in self._samples:
            index = self.aggregates.index if index is None else index
            self._samples[size] = sampling.sample_index(index, size) if sampling.is_sampled(len(index), size) else None
        return self._samples[size]

    def rows(self, table: pd.DataFrame, size: int | None) -> pd.DataFrame:
        """The rows of ``table`` (indexed by these customers' ids) of the sample's customers (all: ``table``)."""
        keep = self.sample(size, table.index)
        return table if keep is None else table.loc[keep]

    def fit_days(self, size: int | None, columns: list[str] | None = None) -> pd.DataFrame:
        """The purchase days the models fit on: the sample's customers' (every day when nobody is sampled out)."""
        return sample_days(self.file, self.sample(size), columns)

    def summaries(self, as_of: dt.date, unit: str) -> tuple[int, pd.DataFrame, pd.DataFrame]:
        """Stage 05's: the log's span to ``as_of`` (days), every customer's :func:`btyd_summary` and halves.

        The aggregates are then released (stage 05 needs nothing else of them; at ten million customers
        they hold a gigabyte): the first call must come after the last use of the aggregates (the sample
        drawn); later calls with the same arguments return the same tables.
        """
        if (as_of, unit) not in self._summaries:
            if self._summaries:
                raise ValueError("Whole.summaries: the aggregates were released by the first call "
                                 f"{next(iter(self._summaries))}; make a new Whole for {(as_of, unit)}")
            span = (as_of - log_start(self.aggregates)).days
            self._summaries[as_of, unit] = (span, btyd_summary(self.aggregates, as_of, unit),
                                            purchase_halves(self.aggregates))
            self.aggregates = self.aggregates.iloc[:0]
        return self._summaries[as_of, unit]

    def days_of(self, customer: str) -> pd.DataFrame:
        """One customer's purchase days (``day``, ``amount``)."""
        return sample_days(self.file, pd.Index([customer]), ["amount"])

