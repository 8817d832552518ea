"""Customer types read from behaviour: transaction vs relationship customers, end consumers vs intermediaries.

Two classic ways of sorting customers that need no survey, only the purchase history:

- **Transaction vs relationship customers.** A *transaction customer* buys once
  and is gone (a single purchase day); a *relationship customer* comes back (two
  or more purchase days), so there is a relationship to build on. The split is
  the customer table's ``frequency`` (:func:`relationship_type`).
- **Customers by purpose.** An *end consumer* buys for their own use; an
  *intermediary* (reseller, wholesaler, retailer) buys to sell on, so their
  typical order is large. A customer is an intermediary when their **median
  order** holds more than ``rfm.intermediary_items`` units, or is worth more
  than ``rfm.intermediary_spend`` (the data's currency); the median, so that one
  big order (a present, a party) does not make a household a reseller. Without
  a quantity column only the spend rule applies; with neither rule the purpose
  is not determined (:func:`purpose_rule` says so). Order sizes come from the
  clean lines, in DuckDB (:func:`order_sizes`): the purchase days have no quantity.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import summary
from helpers.rfm.abc_analysis import class_summary
from helpers.names import pick
from helpers.rfm.scores import one_off

#: The relationship types: one purchase day, or more.
RELATIONSHIP_TYPES = ("transaction", "relationship")
#: The purposes: buying for one's own use, or to sell on.
PURPOSES = ("end consumer", "intermediary")
#: The columns of the ``customer_types`` artifact, in order.
TYPE_COLUMNS = ["customer_id", "customer_type", "orders", "items_per_order", "spend_per_order", "purpose"]


def relationship_type(frequency: pd.Series) -> pd.Series:
    """``transaction`` for customers with a single purchase day, ``relationship`` for the others.

    >>> relationship_type(pd.Series([1, 2, 5])).tolist()
    ['transaction', 'relationship', 'relationship']
    """
    return pd.Series(pick([one_off(frequency).to_numpy()], RELATIONSHIP_TYPES[:1], RELATIONSHIP_TYPES[1]),
                     index=frequency.index)


def order_sizes_sql(transactions_file: Path, as_of: dt.date, quantity: bool) -> str:
    """The SQL of each customer's orders up to the end of ``as_of`` and the median order's units and spend.

    >>> "row_number() OVER (w ORDER BY items NULLS LAST)" in order_sizes_sql(Path("t.parquet"), dt.date(2020, 1, 31), True)
    True
    """
    return _sizes_sql(f"({_orders_sql(transactions_file, as_of, quantity)})")


def _orders_sql(transactions_file: Path, as_of: dt.date, quantity: bool) -> str:
    """One row per customer and order up to the end of ``as_of``: its units (``items``), ``spend`` and ``lines``.

    Exact sums (:func:`helpers.summary.exact_sum`): a plain sum of doubles gave an order's spend different
    last bits from run to run (the threads' partial sums added in the order they finish), and so a different
    median; an ordered sum, ``sum(amount ORDER BY ...)``, would cost a sort per order (4x the time), the exact
    sum about a fifth more than the plain one.
    """
    end = summary._literal((as_of + dt.timedelta(days=1)).isoformat())
    items = summary.exact_sum("quantity") if quantity else "CAST(NULL AS DOUBLE)"
    return (f"SELECT customer_id, order_id, {items} AS items, {summary.exact_sum('amount')} AS spend, count(*) AS lines "
            f"FROM read_parquet({summary._literal(str(transactions_file))}) WHERE order_ts < TIMESTAMP {end} "
            f"GROUP BY customer_id, order_id")


def _median(column: str) -> str:
    """The median of ``column`` per customer, from its rank ``by_<column>`` among the customer's ``n_<column>``
    orders where it is known (ranked in :func:`_sizes_sql`, missing values last).

    ``(lo + hi) / 2`` of the middle one or two values, as pandas and DuckDB's ``median`` compute it (the same
    bits); a single middle value is itself; no known value gives NULL.
    """
    middle = f"by_{column} IN ((n_{column} + 1) // 2, n_{column} // 2 + 1)"
    return f"(min({column}) FILTER (WHERE {middle}) + max({column}) FILTER (WHERE {middle})) / 2"


def _sizes_sql(orders: str) -> str:
    """Per customer of ``orders`` (:func:`_orders_sql`): orders, the median order's units and spend.

    The medians come from ranks in windows (a sort that spills to disk), not from DuckDB's ``median``
    aggregate, which holds every customer's values at once (10M customers: 5.9 GB for this query, 4.5 GB
    with windows, the same bits).
    """
    ranks = ", ".join(f"count({c}) OVER w AS n_{c}, row_number() OVER (w ORDER BY {c} NULLS LAST) AS by_{c}"
                      for c in ("items", "spend"))
    return (f"SELECT customer_id, count(*) AS orders, {_median('items')} AS items_per_order, "
            f"{_median('spend')} AS spend_per_order "
            f"FROM (SELECT customer_id, items, spend, {ranks} FROM {orders} WINDOW w AS (PARTITION BY customer_id)) "
            f"GROUP BY customer_id ORDER BY customer_id")


def order_sizes(transactions_file: Path, as_of: dt.date) -> tuple[pd.DataFrame, bool]:
    """Per customer: orders, median units per order (NaN without quantities) and median spend per order; and whether
    the lines have quantities. Computed in DuckDB over the run's clean lines (they never enter pandas)."""
    sizes, has_quantity, _ = orders_and_lines(transactions_file, as_of)
    return sizes, has_quantity


def orders_and_lines(transactions_file: Path, as_of: dt.date) -> tuple[pd.DataFrame, bool, tuple[int, int]]:
    """:func:`order_sizes` and the clean lines and distinct orders up to ``as_of`` (what
    :func:`helpers.summary.line_counts` counts), from one grouping of the lines by customer and order."""
    con = summary._connect(Path(transactions_file).parent)
    try:
        lines = f"read_parquet({summary._literal(str(transactions_file))})"
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {lines}").fetchall()]
        has_quantity = "quantity" in cols and con.execute(f"SELECT count(quantity) > 0 FROM {lines}").fetchall()[0][0]
        con.execute(f"CREATE TEMP TABLE _orders AS {_orders_sql(transactions_file, as_of, bool(has_quantity))}")
        sizes = con.sql(_sizes_sql("_orders")).df()
        n_lines, n_orders = con.execute("SELECT coalesce(sum(lines), 0), count(DISTINCT order_id) FROM _orders").fetchone()
    finally:
        con.close()
    sizes["orders"] = sizes["orders"].astype("int64")
    return sizes, bool(has_quantity), (int(n_lines), int(n_orders))


def purpose_rule(items: float | None, spend: float | None, has_quantity: bool) -> str:
    """What makes an intermediary, in words ('' when no rule applies: no quantity and no spend threshold).

    >>> purpose_rule(24, 1000, True)
    'a median order of more than 24 units or worth more than 1,000'
    >>> purpose_rule(24, None, False)
    ''
    """
    parts = ([f"of more than {items:g} units"] if items is not None and has_quantity else []) + (
        [f"worth more than {spend:,.0f}"] if spend is not None else [])
    return f"a median order {' or '.join(parts)}" if parts else ""


def purposes(sizes: pd.DataFrame, items: float | None, spend: float | None) -> pd.Series:
    """``intermediary`` when the median order exceeds ``items`` units or ``spend``, else ``end consumer``.

    A missing threshold (``None``) or a missing quantity (NaN) does not count.

    >>> s = pd.DataFrame({"items_per_order": [2.0, 30.0, np.nan], "spend_per_order": [20.0, 50.0, 2000.0]})
    >>> purposes(s, 24, 1000).tolist()
    ['end consumer', 'intermediary', 'intermediary']
    """
    big = pd.Series(False, index=sizes.index)
    if items is not None:
        big |= sizes["items_per_order"].gt(items)
    if spend is not None:
        big |= sizes["spend_per_order"].gt(spend)
    return pd.Series(pick([big.to_numpy()], PURPOSES[1:2], PURPOSES[0]), index=sizes.index)


def customer_types(customers: pd.DataFrame, sizes: pd.DataFrame, items: float | None,
                   spend: float | None) -> pd.DataFrame:
    """One row per customer of ``customers``: relationship type, orders, median order size and purpose
    (purpose missing when no rule applies, see :func:`purpose_rule`)."""
    out = customers[["customer_id"]].merge(sizes, on="customer_id", how="left")
    out["customer_type"] = relationship_type(customers["frequency"].reset_index(drop=True))
    decided = (items is not None and out["items_per_order"].notna().any()) or spend is not None
    out["purpose"] = purposes(out, items, spend) if decided else pd.Series(pd.NA, index=out.index, dtype=object)
    return out[TYPE_COLUMNS]


def _with_spend(customers: pd.DataFrame, types: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of ``types`` with each customer's ``monetary_total``, for the customers in both tables.

    By position when both list the same customers in the same order (stage 04 builds ``types`` so), else
    by a merge on ``customer_id`` in the customers' order: the same rows either way. At ten million
    customers the merge and its copies took 14 s; the positional frame holds only the columns asked for.

    >>> c = pd.DataFrame({"customer_id": ["a", "b"], "monetary_total": [5.0, 7.0]})
    >>> _with_spend(c, pd.DataFrame({"customer_id": ["b", "c"], "orders": [3, 1]}), ["orders"]).values.tolist()
    [[3.0, 7.0]]
    """
    if types["customer_id"].equals(customers["customer_id"]):
        return pd.DataFrame({**{c: types[c].to_numpy() for c in columns},
                             "monetary_total": customers["monetary_total"].to_numpy()})
    return customers[["customer_id", "monetary_total"]].merge(types, on="customer_id")[columns + ["monetary_total"]]


def type_summary(customers: pd.DataFrame, types: pd.DataFrame, by: str) -> pd.DataFrame:
    """Customers, revenue, their shares and mean spend per ``customer_type`` or ``purpose`` (in the types' order),
    with the median order's units and spend; empty when the column is missing."""
    order = RELATIONSHIP_TYPES if by == "customer_type" else PURPOSES
    joined = _with_spend(customers, types, [by, "orders", "items_per_order", "spend_per_order"])
    if joined[by].hasnans:
        joined = joined[joined[by].notna()]
    if joined.empty:
        return pd.DataFrame(columns=["customers", "revenue", "customer_share", "revenue_share", "avg_spend"])
    table = class_summary(joined, by).reindex(list(order))
    table["customers"] = table["customers"].fillna(0).astype(int)
    table = table.fillna({"revenue": 0.0, "customer_share": 0.0, "revenue_share": 0.0})
    medians = joined.groupby(by)[["orders", "items_per_order", "spend_per_order"]].median()
    return table.join(medians.rename(columns=lambda c: f"median_{c}")).rename_axis(by)
