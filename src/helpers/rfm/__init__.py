"""Customer value now: the customer table, RFM scores and segments, and the ABC (80/20) split.

Stage 04. Conventions (also stated in notebook 04):

- **A purchase is a purchase day.** Several orders of one customer on one day
  count once (the convention of the lifetime-value literature, so RFM and the
  BTYD models of stage 05 count purchases the same way); their amounts add up.
- **RFM recency** is ``recency_days``: days from the last purchase to ``as_of``.
  It is not the BTYD models' recency (first to last purchase).
- **Scores** are quantile scores 1..``bins`` (5 = best) that follow the data:
  customers with equal values get equal scores (no tie broken by another
  measure or by the key). A value's score is one plus ``bins`` times the share
  of customers with a worse value, rounded down; without ties every score holds
  a fifth of the customers, and a value shared by many customers takes a single
  score, so fewer than ``bins`` levels may be used (:func:`spread_warnings`
  says so). Scores depend on the values only, so reruns are identical.
- **One-time buyers** (one purchase day) get the segment map's one-time
  segments, before the R x F grid: whoever bought once is never "champions".
- **ABC classes** rank customers by revenue (``rfm.abc_cuts``): A = key
  customers, B = major customers, C = ordinary customers; the names, meanings
  and tactics are data in the segment map (its ``abc`` section).

The package, by concern (every name is importable from ``helpers.rfm``):

- :mod:`helpers.rfm.customers` - the customer table from clean lines in pandas; reading and writing customer tables;
- :mod:`helpers.rfm.scores` - RFM scores, their spread caveats and ``rfm.json``'s content;
- :mod:`helpers.rfm.segment_map` - the segment map (:class:`SegmentMap`, :func:`load_segment_map`) and the grid counts;
- :mod:`helpers.rfm.abc_analysis` - ABC classes, the Pareto curve, class summaries and spend outliers;
- here: :func:`score_customers`, :func:`rfm_table` (scores, segments and classes of a customer table) and :func:`save_rfm_summary`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from helpers.catalog import Catalog
from helpers.rfm.abc_analysis import (ABC, abc_classes, abc_rules, abc_summary, class_summary, pareto_curve,
                                      revenue_share_at, spend_outliers)
from helpers.rfm.customers import (customer_table, first_country, load_customers, purchase_days,
                                   save_customers)
from helpers.rfm.scores import (MEASURES, NO_SPREAD_SHARE, one_time_summary, rfm_scores, rfm_summary, spread_caveats,
                                spread_warnings, value_scores)
from helpers.rfm.segment_map import SEGMENT_STATES, SegmentMap, grid_counts, load_segment_map
from helpers.schemas import customer_schema_for, validate

__all__ = ["ABC", "MEASURES", "NO_SPREAD_SHARE", "SEGMENT_STATES", "SegmentMap", "abc_classes", "abc_rules",
           "abc_summary", "class_summary", "customer_table", "first_country", "grid_counts", "load_customers",
           "load_segment_map", "one_time_summary", "pareto_curve", "purchase_days", "revenue_share_at",
           "rfm_scores", "rfm_summary", "rfm_table", "save_customers", "save_rfm_summary", "score_customers",
           "spend_outliers", "spread_caveats", "spread_warnings", "value_scores"]


def score_customers(table: pd.DataFrame, bins: int, segment_map: SegmentMap,
                    abc_cuts: tuple[float, float]) -> pd.DataFrame:
    """A customer table (:func:`helpers.summary.customer_table`) with RFM scores, segments and ABC classes, validated."""
    customers = rfm_scores(table, bins)
    customers["rfm_segment"] = segment_map.segment(customers["r_score"], customers["f_score"], customers["frequency"])
    customers["abc_class"] = abc_classes(customers["monetary_total"], customers["customer_id"], abc_cuts)
    return validate(customers, customer_schema_for(bins), "customer table")


def rfm_table(transactions: pd.DataFrame, as_of: dt.date, bins: int, segment_map: SegmentMap,
              abc_cuts: tuple[float, float]) -> pd.DataFrame:
    """Stage 04's customer table from clean lines in a frame: :func:`score_customers` of :func:`customer_table`."""
    return score_customers(customer_table(transactions, as_of), bins, segment_map, abc_cuts)


def save_rfm_summary(catalog: Catalog, customers: pd.DataFrame, bins: int) -> Path:
    """Write ``rfm.json`` (:func:`rfm_summary`) beside ``customers_rfm.parquet``."""
    return catalog.write_json("rfm", rfm_summary(customers, bins))
