"""Stage 04, customer value now: the customer table, RFM scores and segments, ABC classes and the Pareto curve.

:func:`rfm` computes the run's purchase days from stage 03's clean lines, in
DuckDB (:mod:`helpers.summary`: the lines never enter pandas), writes them as
the artifact ``purchase_days`` (also a view in the run's database) for stages
05 and 07, builds the customer table from them in DuckDB (:mod:`helpers.rfm.customers_sql`: one row per
customer comes into pandas), scores it (:func:`helpers.rfm.score_customers`) and everything notebook 04 shows about
it, and writes ``customers_rfm`` (Parquet and a DuckDB view of it) and ``rfm.json``. It also sorts the customers
into transaction vs relationship customers and end consumers vs intermediaries by the size of their median
order (:mod:`helpers.rfm.customer_types`; order sizes in DuckDB over the clean lines) and writes
``customer_types`` (Parquet and a view). It prints and draws nothing; :mod:`helpers.plots.rfm` draws
the notebook's figures from its result.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from helpers import names, paths, summary
from helpers.rfm import (MEASURES, SegmentMap, abc_summary, class_summary, grid_counts, load_segment_map,
                         one_time_summary, pareto_curve, revenue_share_at, rfm_summary, save_customers, score_customers,
                         spend_outliers)
from helpers.rfm import customers_sql
from helpers.rfm.customer_types import customer_types, orders_and_lines, purpose_rule, type_summary
#: The numeric columns of the customer table the notebook profiles (before scoring).
PROFILED = ["recency_days", "frequency", "monetary_total", "monetary_avg", "tenure_days"]
#: The columns of the spend outliers the notebook lists (at most :data:`OUTLIERS_SHOWN` of them).
OUTLIER_COLUMNS = ["customer_id", "frequency", "monetary_total", "times_median", "abc_class"]
OUTLIERS_SHOWN = 10


@dataclass
class RFMResult:
    """Stage 04's result: the scored customer table and the tables and sentences notebook 04 shows."""

    customers: pd.DataFrame
    segment_map: SegmentMap
    bins: int
    abc_cuts: tuple[float, float]
    outlier_factor: float
    lines: int
    orders: int
    score_levels: pd.DataFrame
    spread: list[str]
    one_time: str
    grid: pd.DataFrame
    segments: pd.DataFrame
    abc: pd.DataFrame
    pareto: pd.DataFrame
    outliers: pd.DataFrame
    crosstab: pd.DataFrame
    types: pd.DataFrame = field(default_factory=pd.DataFrame)  # customer_types: relationship type, order size, purpose
    purpose_rule: str = ""  # the purpose rule in words ('' when none applies)
    summary: dict[str, Any] = field(default_factory=dict)  # rfm.json
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def caveats(self) -> list[dict[str, str]]:
        """The stage's caveats (those of ``rfm.json``)."""
        return self.summary.get("caveats", [])

    @property
    def intro(self) -> str:
        """Customers, clean lines, orders and purchase days in one line."""
        return (f"{len(self.customers):,} customers: {self.lines:,} clean lines in {self.orders:,} orders "
                f"on {self.customers['frequency'].sum():,} purchase days (customer x day)")

    @property
    def profile(self) -> pd.DataFrame:
        """Count, mean, spread, median and 90th percentile of each behaviour measure."""
        return self.customers[PROFILED].describe(percentiles=[0.5, 0.9]).T

    @property
    def score_notes(self) -> str:
        """The spread warnings and the one-time buyers' sentence, wrapped for the notebook."""
        lines = [textwrap.fill(line, 110, subsequent_indent="  ") for line in self.spread + [self.one_time]]
        return "\n".join(lines + ([] if self.spread else ["every measure spreads over all score levels"]))

    @property
    def who_in_grid(self) -> str:
        """Whom the R x F grid places: repeat buyers when the map has one-time segments, else all customers."""
        return "repeat buyers" if self.segment_map.one_time is not None else "customers"

    @property
    def outside_grid(self) -> str:
        """The one-time buyers the grid leaves to the map's one-time segments, per segment ('' when none)."""
        outside = self.customers.loc[~self.segment_map.by_grid(self.customers["frequency"]), "rfm_segment"].value_counts()
        if not len(outside):
            return ""
        return f"not in the grid: {outside.sum():,} one-time buyers - " + ", ".join(f"{n} {k:,}" for n, k in outside.items())

    @property
    def top20_share(self) -> float:
        """The share of revenue the top 20% of customers bring."""
        return revenue_share_at(self.pareto, 0.2)

    @cached_property
    def relationship(self) -> pd.DataFrame:
        """Transaction (one purchase day) vs relationship customers: customers, revenue, shares, mean spend (computed once)."""
        return type_summary(self.customers, self.types, "customer_type")

    @cached_property
    def purpose(self) -> pd.DataFrame:
        """End consumers vs intermediaries: customers, revenue, shares, mean spend, median order (empty: no rule; computed once)."""
        return type_summary(self.customers, self.types, "purpose")

    @property
    def purpose_note(self) -> str:
        """The purpose rule and the order sizes it reads, or why customers are not sorted by purpose."""
        if not self.purpose_rule:
            return ("customers are not sorted by purpose: the lines have no quantity and rfm.intermediary_spend "
                    "is null (set it to sort them by the spend of their median order)")
        units = self.types["items_per_order"]
        sizes = (f"median customer's median order: {units.median():g} units, " if units.notna().any()
                 else "the lines have no quantity, so only spend sorts them; median customer's median order: ")
        return f"intermediary: {self.purpose_rule}; {sizes}{self.types['spend_per_order'].median():,.2f} spent"

    @property
    def outlier_note(self) -> str:
        """How many customers spent more than ``rfm.outlier_factor`` times the median, and their revenue share."""
        text = (f"{len(self.outliers):,} customer(s) spent more than {self.outlier_factor:g} times the median customer")
        if len(self.outliers):
            share = self.outliers["monetary_total"].sum() / self.customers["monetary_total"].sum()
            text += f" (kept, flagged): together {share:.0%} of revenue"
        return text

    @property
    def outliers_shown(self) -> pd.DataFrame:
        """The largest spend outliers, the columns the notebook lists."""
        return self.outliers[OUTLIER_COLUMNS].head(OUTLIERS_SHOWN)

    @property
    def written_note(self) -> str:
        """What the stage wrote, in one line."""
        return (f"written: {paths.shown(self.written['customers_rfm'])} and view 'customers_rfm' in the DuckDB "
                f"database ({len(self.customers):,} customers); {paths.shown(self.written['rfm'])} "
                f"({len(self.caveats)} caveat(s)); {paths.shown(self.written['purchase_days'])} and view "
                f"'purchase_days' ({self.customers['frequency'].sum():,} purchase days, for stages 05 and 07); "
                f"{paths.shown(self.written['customer_types'])} and view 'customer_types' (type and purpose)")


def score_levels(customers: pd.DataFrame, bins: int) -> pd.DataFrame:
    """Customers per score level (rows: the R, F and M scores; columns: levels 1..``bins``, zeros included).

    >>> score_levels(pd.DataFrame({"r_score": [1, 2], "f_score": [1, 1], "m_score": [2, 2]}), 2).values.tolist()
    [[1, 1], [2, 0], [0, 2]]
    """
    levels = range(1, bins + 1)
    table = pd.DataFrame({s: customers[s].value_counts().reindex(levels, fill_value=0) for _, s, *_ in MEASURES})
    return table.rename_axis("score").T


def describe_customers(customers: pd.DataFrame, segment_map: SegmentMap, params: Any, lines: int,
                       orders: int, types: pd.DataFrame | None = None, rule: str = "") -> RFMResult:
    """Everything notebook 04 shows about a scored customer table (:func:`helpers.rfm.score_customers`),
    with its customer types (:func:`helpers.rfm.customer_types.customer_types`) and purpose rule when given."""
    r = params.rfm
    summary = rfm_summary(customers, r.bins)
    return RFMResult(
        customers=customers, segment_map=segment_map, bins=r.bins, abc_cuts=r.abc_cuts, outlier_factor=r.outlier_factor,
        lines=lines, orders=orders, score_levels=score_levels(customers, r.bins),
        spread=[c["text"] for c in summary["caveats"]], one_time=one_time_summary(customers, segment_map),
        grid=grid_counts(customers, segment_map, r.bins),
        segments=class_summary(customers, "rfm_segment").join(segment_map.actions()),
        abc=abc_summary(customers, segment_map, r.abc_cuts), pareto=pareto_curve(customers["monetary_total"]),
        outliers=spend_outliers(customers, r.outlier_factor),
        crosstab=names.crosstab(customers["rfm_segment"], customers["abc_class"], margins=True).sort_values(
            "All", ascending=False),
        types=types if types is not None else pd.DataFrame(), purpose_rule=rule, summary=summary,
    )


def rfm(params: Any, catalog: Any) -> RFMResult:
    """Stage 04 in one call: the run's purchase days (in DuckDB), the scored customers, the artifacts."""
    lines_file = catalog.require("transactions", "03-clean-integrate")
    days = summary.write_purchase_days(lines_file, params.as_of, catalog.path("purchase_days"),
                                       params.spark if params.engine == "spark" else None)
    sizes, has_quantity, counts = orders_and_lines(lines_file, params.as_of)  # DuckDB's peak before pandas' is
    segment_map = load_segment_map(params.rfm.segment_map, params.rfm.bins)
    customers = score_customers(customers_sql.customer_table(days, params.as_of), params.rfm.bins, segment_map,
                                params.rfm.abc_cuts)
    r = params.rfm
    types = customer_types(customers, sizes, r.intermediary_items, r.intermediary_spend)
    del sizes  # a customer's key and order sizes, now in ``types``: a gigabyte at ten million customers
    result = describe_customers(customers, segment_map, params, *counts, types,
                                purpose_rule(r.intermediary_items, r.intermediary_spend, has_quantity))
    result.written = {"customer_types": catalog.write_parquet("customer_types", types),
                      "customers_rfm": save_customers(catalog, customers, "customers_rfm", views={
                          "purchase_days": "purchase_days", "customer_types": "customer_types"}),
                      "rfm": catalog.write_json("rfm", result.summary),
                      "purchase_days": catalog.path("purchase_days")}
    return result
