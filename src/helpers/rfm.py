"""Customer value now: the customer table, RFM scores and segments, and the ABC (80/20) split.

Stage 04. Conventions (also stated in notebook 04):

- **A purchase is a purchase day.** Several orders of one customer on one day
  count once (the convention of the lifetime-value literature, so RFM and the
  BTYD models of stage 05 count purchases the same way); their amounts add up.
- **RFM recency** is ``recency_days``: days from the last purchase to ``as_of``.
  It is not the BTYD models' recency (first to last purchase).
- **Scores** are quantile scores 1..``bins`` (5 = best). Ties are broken by the
  other two measures and then by the customer key, so every score is used by
  an equal share of customers (give or take one) and reruns are identical.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from helpers import paths
from helpers.errors import ConfigError, DataError
from helpers.schemas import customer_schema, validate


def purchase_days(transactions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """One row per customer and purchase day up to ``as_of``, with the day's total amount.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a"], "amount": [1.0, 2.0, 4.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01 09:00", "2020-01-01 17:00", "2020-01-05 08:00"])})
    >>> days = purchase_days(tx, dt.date(2020, 1, 31))
    >>> days["day"].dt.strftime("%m-%d").tolist(), days["amount"].tolist()
    (['01-01', '01-05'], [3.0, 4.0])
    """
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    tx = transactions[transactions["order_ts"] < end]
    if tx.empty:
        raise DataError(f"no transactions on or before as_of {as_of.isoformat()}")
    days = tx.assign(day=tx["order_ts"].dt.normalize())
    return days.groupby(["customer_id", "day"], sort=True, as_index=False)["amount"].sum()


def first_country(transactions: pd.DataFrame) -> pd.Series:
    """Each customer's country on their earliest line that has one (ties: the first such line).

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a"], "country": [None, "FR", "DE"],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-02"])})
    >>> first_country(tx).to_dict()
    {'a': 'FR'}
    """
    known = transactions.loc[transactions["country"].notna(), ["customer_id", "order_ts", "country"]]
    known = known if known.index.is_unique else known.reset_index(drop=True)
    earliest = known.groupby("customer_id", sort=True)["order_ts"].idxmin()  # first occurrence of the minimum
    return pd.Series(known.loc[earliest.to_numpy(), "country"].to_numpy(), index=earliest.index, name="country")


def customer_table(transactions: pd.DataFrame, as_of: dt.date, days: pd.DataFrame | None = None,
                   country: bool = True) -> pd.DataFrame:
    """The customer table at ``as_of``: identity and behaviour columns of the information model.

    ``days`` may pass :func:`purchase_days` of the same transactions and
    ``as_of`` when the caller has them already (they are the costly part);
    ``country=False`` leaves out the country of the first order.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [10.0, 20.0, 5.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-21", "2020-01-31"])})
    >>> customer_table(tx, dt.date(2020, 1, 31))[["customer_id", "recency_days", "frequency", "tenure_days"]].values.tolist()
    [['a', 10, 2, 30], ['b', 0, 1, 0]]
    """
    days = purchase_days(transactions, as_of) if days is None else days
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
    if country and "country" in transactions.columns:
        table["country"] = first_country(transactions).reindex(table.index)
    table = table.reset_index()
    order = ["customer_id", "country", "first_purchase", "last_purchase", "recency_days", "frequency",
             "monetary_total", "monetary_avg", "tenure_days"]
    return table[[c for c in order if c in table.columns]]


def quantile_scores(table: pd.DataFrame, keys: list[tuple[str, bool]], bins: int = 5) -> pd.Series:
    """Scores 1..``bins`` by rank over ``keys`` ((column, higher_is_better) pairs, first is primary).

    Customers are ranked worst to best on the primary key, ties broken by the
    next keys and finally by ``customer_id``; rank position p of n gets score
    ``floor(p * bins / n) + 1``. Every score is used when n >= bins.

    >>> t = pd.DataFrame({"customer_id": list("abcdef"), "f": [1, 1, 1, 1, 2, 5], "m": [1, 2, 3, 4, 5, 6]})
    >>> quantile_scores(t, [("f", True), ("m", True)], bins=3).tolist()
    [1, 1, 2, 2, 3, 3]
    """
    cols = [c for c, _ in keys] + ["customer_id"]
    ascending = [better for _, better in keys] + [True]  # worst first
    order = table.sort_values(cols, ascending=ascending, kind="stable").index
    position = pd.Series(np.arange(len(table)), index=order)
    return (np.floor(position * bins / len(table)).astype("int64") + 1).reindex(table.index)


def rfm_scores(customers: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score`` (5 = most recent, most frequent, highest spend)."""
    out = customers.copy()
    out["r_score"] = quantile_scores(out, [("recency_days", False), ("frequency", True), ("monetary_total", True)], bins)
    out["f_score"] = quantile_scores(out, [("frequency", True), ("monetary_total", True), ("recency_days", False)], bins)
    out["m_score"] = quantile_scores(out, [("monetary_total", True), ("frequency", True), ("recency_days", False)], bins)
    out["rfm_cell"] = out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
    return out


@dataclass(frozen=True)
class SegmentMap:
    """The R x F segment grid and the meaning and action of each segment and value tier."""

    grid: dict[int, list[str]]
    segments: dict[str, dict[str, str]]
    tiers: dict[str, dict[str, str]]

    def segment(self, r: pd.Series, f: pd.Series) -> pd.Series:
        """The segment name of each (R, F) pair."""
        lookup = {(ri, fi + 1): name for ri, row in self.grid.items() for fi, name in enumerate(row)}
        return pd.Series([lookup[(a, b)] for a, b in zip(r, f, strict=True)], index=r.index, dtype=object)

    def actions(self) -> pd.DataFrame:
        """Segments with their meaning and recommended action, in the order of the file."""
        return pd.DataFrame.from_dict(self.segments, orient="index").rename_axis("segment")


def load_segment_map(name: str, bins: int = 5) -> SegmentMap:
    """Read and check a segment map file (relative to ``params/``).

    Every grid cell must name a segment described in ``segments``; the grid must be ``bins`` x ``bins``.
    """
    file = paths.resolve(name, paths.PARAMS_DIR)
    if not file.exists():
        raise ConfigError(f"segment map not found: {file}")
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    grid = {int(k): list(v) for k, v in data.get("grid", {}).items()}
    if sorted(grid) != list(range(1, bins + 1)) or any(len(row) != bins for row in grid.values()):
        raise ConfigError(f"{file}: 'grid' must have rows 1..{bins}, each with {bins} segment names (F score 1..{bins})")
    described = data.get("segments", {})
    unknown = sorted({n for row in grid.values() for n in row} - set(described))
    if unknown:
        raise ConfigError(f"{file}: grid names segments with no entry under 'segments': {unknown}")
    tiers = data.get("tiers", {})
    if set(tiers) != {"platinum", "gold", "iron", "lead"}:
        raise ConfigError(f"{file}: 'tiers' must describe platinum, gold, iron and lead")
    return SegmentMap(grid, described, tiers)


def abc_classes(monetary: pd.Series, ids: pd.Series, cuts: tuple[float, float] = (0.05, 0.20)) -> pd.Series:
    """ABC class by revenue rank: A = top ``cuts[0]`` of customers, B = up to ``cuts[1]``, C = the rest.

    >>> m = pd.Series([50.0, 10.0, 30.0, 5.0, 5.0]); ids = pd.Series(list("abcde"))
    >>> abc_classes(m, ids, (0.2, 0.6)).tolist()
    ['A', 'B', 'B', 'C', 'C']
    """
    order = pd.DataFrame({"m": monetary, "id": ids}).sort_values(["m", "id"], ascending=[False, True], kind="stable").index
    share = pd.Series((np.arange(len(order)) + 1) / len(order), index=order).reindex(monetary.index)
    return pd.Series(np.where(share <= cuts[0], "A", np.where(share <= cuts[1], "B", "C")), index=monetary.index)


def spend_outliers(customers: pd.DataFrame, factor: float = 100.0) -> pd.DataFrame:
    """Customers whose spend is more than ``factor`` times the median customer's, largest first.

    They are kept (a wholesaler is a real customer) but flagged: one of them can
    hold most of the revenue, and the notebooks and the report say so. Returns
    the customers' rows with ``times_median``.

    >>> c = pd.DataFrame({"customer_id": list("abcd"), "monetary_total": [10.0, 12.0, 9.0, 11000.0]})
    >>> spend_outliers(c)[["customer_id", "times_median"]].values.tolist()
    [['d', 1000.0]]
    """
    spend = customers["monetary_total"].astype(float)
    median = float(spend[spend > 0].median()) if (spend > 0).any() else 0.0
    if median <= 0:
        return customers.iloc[:0].assign(times_median=pd.Series(dtype=float))
    out = customers.assign(times_median=(spend / median).round(1))[spend > factor * median]
    return out.sort_values(["times_median", "customer_id"], ascending=[False, True])


def pareto_curve(monetary: pd.Series) -> pd.DataFrame:
    """Cumulative share of revenue against cumulative share of customers, best customers first.

    >>> pareto_curve(pd.Series([1.0, 3.0])).round(2).values.tolist()
    [[0.0, 0.0], [0.5, 0.75], [1.0, 1.0]]
    """
    values = np.sort(monetary.to_numpy(dtype=float))[::-1]
    total = values.sum()
    cum = np.concatenate([[0.0], np.cumsum(values) / total if total > 0 else np.zeros(len(values))])
    return pd.DataFrame({"customer_share": np.arange(len(values) + 1) / len(values), "revenue_share": cum})


def class_summary(customers: pd.DataFrame, by: str) -> pd.DataFrame:
    """Customers, revenue and their shares per class or segment, largest revenue first."""
    g = customers.groupby(by, sort=True)
    out = pd.DataFrame({"customers": g.size(), "revenue": g["monetary_total"].sum()})
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["revenue_share"] = out["revenue"] / out["revenue"].sum()
    out["avg_spend"] = out["revenue"] / out["customers"]
    return out.sort_values("revenue", ascending=False)


def rfm_table(transactions: pd.DataFrame, as_of: dt.date, bins: int, segment_map: SegmentMap,
              abc_cuts: tuple[float, float]) -> pd.DataFrame:
    """Stage 04 in one call: customer table, RFM scores, segments and ABC classes, validated."""
    customers = rfm_scores(customer_table(transactions, as_of), bins)
    customers["rfm_segment"] = segment_map.segment(customers["r_score"], customers["f_score"])
    customers["abc_class"] = abc_classes(customers["monetary_total"], customers["customer_id"], abc_cuts)
    return validate(customers, customer_schema, "customer table")


def save_customers(dataset: str, customers: pd.DataFrame, name: str = "customers") -> Path:
    """Write the customer table as Parquet and as a DuckDB table (same name)."""
    from helpers import store

    target = store.write_parquet(customers, paths.processed_dir(dataset) / f"{name}.parquet")
    store.write_tables(dataset, {name: customers})
    return target


def load_customers(dataset: str, name: str = "customers") -> pd.DataFrame:
    """Read a customer table written by :func:`save_customers`."""
    file = paths.processed_dir(dataset) / f"{name}.parquet"
    if not file.exists():
        raise FileNotFoundError(f"{file} not found: run the notebook that writes it (04 for customers_rfm) first")
    return pd.read_parquet(file)
