"""Tracking the cohort: repeat purchases per period, actual against the model, over calibration and holdout.

The classic check of the BTYD papers (Fader, Hardie and Lee 2005, figures 2
and 3 of the BG/NBD paper; the Pareto/NBD papers) and of the R BTYD
walkthrough (``bgnbd.PlotTrackingInc`` / ``bgnbd.PlotTrackingCum``): the
repeat purchases the whole cohort made in each week (or day), and their
running total, against what the fitted model expects, through the
calibration period and on across the holdout.

The model's cumulative expectation at time ``tau`` is the sum over the
cohort's customers of the unconditional ``E[X(tau - birth)]`` (repeat
purchases a customer is expected to make in the time since their first
purchase), as in BTYD's ``bgnbd.ExpectedCumulativeTransactions`` and
lifetimes' ``utils.expected_cumulative_transactions``. It is computed per
*birth day* (customers who first bought on the same day share it) and per
distinct age, so it costs (birth days x periods) additions and one model call
per distinct age in days, whatever the number of customers.

Conventions (those of BTYD and lifetimes): periods of ``unit`` length end on
the day after the calibration end, so calibration and holdout are whole
periods counted back and forward from it; a period ``[start, end)`` counts the
purchase days in it, and its expectation is evaluated at its ``end`` (the
cohort's ages then are ``end - birth``; at the end of the calibration that is
the calibration ``T`` plus the last calibration day). The cohort is the
customers whose first purchase is in the calibration (the customers the model
was fitted on); first purchases are not repeat purchases and are not counted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from helpers.clv.summary import as_purchase_days
from helpers.errors import DataError
from helpers.summary import UNIT_DAYS

#: The columns of :func:`tracking`'s table, in order.
TRACKING_COLUMNS = ["period", "start", "end", "phase", "actual", "expected", "actual_cumulative",
                    "expected_cumulative"]


def unconditional_expectation(model: Any) -> Any:
    """The fitted lifetimes model's ``E[X(t)]`` for a newly acquired customer (a function of ``t``).

    ``model`` is a :class:`~helpers.clv.models.base.BTYDModel` or a fitted
    lifetimes fitter with ``expected_number_of_purchases_up_to_time``.
    """
    fitted = getattr(model, "model", model)
    if fitted is None:
        raise DataError("tracking needs a fitted model (this fit failed or was refused)")
    return fitted.expected_number_of_purchases_up_to_time


def cohort_births(days: pd.DataFrame, boundary: pd.Timestamp) -> pd.Series:
    """Customers by first-purchase day: how many of the cohort (first purchase before ``boundary``) were born each day.

    >>> d = pd.DataFrame({"customer_id": ["a", "a", "b", "c"],
    ...     "day": pd.to_datetime(["2020-01-01", "2020-01-05", "2020-01-01", "2020-02-01"])})
    >>> cohort_births(d, pd.Timestamp("2020-01-10")).tolist()
    [2]
    """
    first = days.groupby("customer_id", sort=False)["day"].min()
    first = first[first < boundary]
    return first.value_counts().sort_index()


def period_edges(first_day: pd.Timestamp, calibration_end: dt.date, as_of: dt.date,
                 unit_days: float) -> tuple[pd.DatetimeIndex, int]:
    """Period boundaries (``start`` of each period and the ``end`` of the last) and how many are calibration.

    Counted back from the day after ``calibration_end`` to the first purchase
    and forward to the day after ``as_of``; a last holdout period shorter than
    a unit ends on the day after ``as_of`` (its expectation is evaluated there).

    >>> edges, n_cal = period_edges(pd.Timestamp("2020-01-01"), dt.date(2020, 1, 14), dt.date(2020, 1, 24), 7.0)
    >>> [e.strftime("%m-%d") for e in edges], n_cal
    (['01-01', '01-08', '01-15', '01-22', '01-25'], 2)
    """
    step = pd.Timedelta(days=unit_days)
    boundary = pd.Timestamp(calibration_end) + pd.Timedelta(days=1)
    stop = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    n_cal = max(1, int(np.ceil((boundary - first_day) / step)))
    n_hold = int(np.ceil((stop - boundary) / step))
    edges = [boundary + k * step for k in range(-n_cal, n_hold + 1)]
    edges[-1] = min(edges[-1], stop)
    return pd.DatetimeIndex(edges), n_cal


def expected_cumulative(model: Any, births: pd.Series, ends: pd.DatetimeIndex, unit_days: float) -> np.ndarray:
    """The cohort's expected cumulative repeat purchases at each of ``ends``: sum of ``E[X(end - birth)]``.

    ``births`` counts customers by first-purchase day (:func:`cohort_births`).
    The model is called once on the distinct ages (in days, then in units):
    a (birth days x ends) table of ages, nothing per customer.
    """
    expect = unconditional_expectation(model)
    birth = births.index.to_numpy(dtype="datetime64[D]").astype(np.int64)
    end = ends.to_numpy(dtype="datetime64[D]").astype(np.int64)
    ages = np.clip(end[None, :] - birth[:, None], 0, None)  # days; born after the end: age 0, nothing expected
    distinct, inverse = np.unique(ages, return_inverse=True)
    values = np.zeros(len(distinct))
    positive = distinct > 0
    with np.errstate(all="ignore"):
        values[positive] = np.asarray(expect(distinct[positive] / unit_days), dtype=float)
    per_birth = values[inverse.reshape(ages.shape)]
    return births.to_numpy(dtype=float) @ per_birth


def tracking(model: Any, frame: pd.DataFrame, calibration_end: dt.date, as_of: dt.date,
             unit: str = "W") -> pd.DataFrame:
    """Repeat purchases of the calibration cohort per period, actual and expected, with their running totals.

    ``frame`` holds purchase days (``customer_id``, ``day``) or clean
    transactions (``order_ts``), up to at least ``as_of``; ``model`` is the
    fit on the calibration summary (:func:`~helpers.clv.summary.calibration_holdout`
    up to ``calibration_end``, in the same ``unit``). One row per period
    (:data:`TRACKING_COLUMNS`): its number (1 = the first), ``start`` and
    ``end`` (exclusive), ``phase`` (``"calibration"`` or ``"holdout"``),
    the cohort's ``actual`` repeat purchase days in it, the model's
    ``expected`` ones, and both cumulated from the first period.

    At the end of the calibration ``actual_cumulative`` is the cohort's
    total ``frequency``; at the end of the holdout it adds their
    ``frequency_holdout`` (the calibration/holdout summary's columns).

    >>> from lifetimes import BetaGeoFitter
    >>> m = BetaGeoFitter(); m.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    >>> d = pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "amount": 1.0,
    ...     "day": pd.to_datetime(["2020-01-01", "2020-01-09", "2020-01-02", "2020-01-20"])})
    >>> t = tracking(m, d, dt.date(2020, 1, 14), dt.date(2020, 1, 28))
    >>> t[["period", "phase", "actual", "actual_cumulative"]].values.tolist()
    [[1, 'calibration', 0, 0], [2, 'calibration', 1, 1], [3, 'holdout', 1, 2], [4, 'holdout', 0, 2]]
    >>> bool((t["expected_cumulative"].diff().dropna() > 0).all())
    True
    """
    if unit not in UNIT_DAYS:
        raise DataError(f"unit must be one of {sorted(UNIT_DAYS)}, not {unit!r}")
    if calibration_end >= as_of:
        raise DataError(f"calibration end {calibration_end} must be before as_of {as_of}")
    unit_days = UNIT_DAYS[unit]
    days = as_purchase_days(frame, as_of)
    boundary = pd.Timestamp(calibration_end) + pd.Timedelta(days=1)
    first_day = days.groupby("customer_id", sort=False)["day"].transform("min")
    cohort = first_day < boundary  # per purchase day: its customer first bought in the calibration
    births = cohort_births(days, boundary)
    if births.empty:
        raise DataError(f"tracking: no customer made a first purchase by {calibration_end}")
    edges, n_cal = period_edges(births.index.min(), calibration_end, as_of, unit_days)
    starts, ends = edges[:-1], edges[1:]
    repeat = days.loc[cohort & (days["day"] > first_day), "day"]
    actual = np.bincount(edges.searchsorted(repeat.to_numpy(), side="right") - 1, minlength=len(starts))

    cumulative = expected_cumulative(model, births, ends, unit_days)
    table = pd.DataFrame({
        "period": np.arange(1, len(starts) + 1),
        "start": starts,
        "end": ends,
        "phase": np.where(np.arange(len(starts)) < n_cal, "calibration", "holdout"),
        "actual": actual[:len(starts)].astype(np.int64),
        "expected": np.diff(cumulative, prepend=0.0),
    })
    table["actual_cumulative"] = table["actual"].cumsum()
    table["expected_cumulative"] = cumulative
    return table[TRACKING_COLUMNS]


def tracking_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Actual and expected repeat purchases of the cohort by phase, with the model's error in percent.

    The numbers a tracking figure is quoted by (e.g. "over the 39-week
    holdout the model expects 1,xxx repeat purchases; 1,yyy were made").

    >>> t = pd.DataFrame({"phase": ["calibration", "holdout", "holdout"], "actual": [10, 5, 5],
    ...                   "expected": [11.0, 4.0, 5.0]})
    >>> tracking_totals(t).round(1).values.tolist()
    [[10.0, 11.0, 10.0], [10.0, 9.0, -10.0]]
    """
    totals = table.groupby("phase", sort=False)[["actual", "expected"]].sum().astype(float)
    totals["error_pct"] = 100 * (totals["expected"] - totals["actual"]) / totals["actual"]
    return totals


__all__ = ["TRACKING_COLUMNS", "cohort_births", "expected_cumulative", "period_edges", "tracking",
           "tracking_totals", "unconditional_expectation"]
