"""Lifetime value: discounted expected margin per customer, and the customer table of stage 05.

CLV = sum over the coming months of expected purchases x expected spend x
margin, discounted (:func:`lifetime_value`); :func:`customer_value` adds it,
P(alive), the value tier and the lifecycle stage to stage 04's customers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from helpers import names
from helpers.clv.models import BTYDModel, SpendFit, expected_spend
from helpers.clv.summary import DAYS_PER_MONTH, UNIT_DAYS, as_purchase_days, distinct_rows, log_span_days
from helpers.lifecycle import default_acquisition_days, lifecycle_stage
from helpers.summary import purchase_halves


def lifetime_value(fit: BTYDModel, spend_per_purchase: pd.Series, summary: pd.DataFrame, *, months: int, unit: str,
                   discount_rate_annual: float = 0.10, margin: float = 1.0,
                   days_per_month: float = DAYS_PER_MONTH) -> pd.DataFrame:
    """Discounted margin over the next ``months``: expected purchases per month x spend x margin.

    A month is ``days_per_month`` days (365.25/12) converted into the model's
    time unit, so the horizon is right whether the model counts days or weeks.
    The annual discount rate is applied monthly (:func:`helpers.clv.periods.discount_factors`,
    on :func:`~helpers.clv.periods.cumulative_purchases`: the months of
    :func:`~helpers.clv.periods.value_per_period` add up to it). Returns ``expected_purchases``
    (over the whole horizon) and ``clv``.
    """
    from helpers.clv.periods import cumulative_purchases, discount_factors

    month = days_per_month / UNIT_DAYS[unit]
    rows, inverse = distinct_rows(summary)
    f, r, T = (rows[c].to_numpy() for c in ("frequency", "recency", "T"))
    # per distinct row, as helpers.clv.periods.value_per_period month by month: the CLV is the sum of its months
    cumulative = cumulative_purchases(fit.model, f, r, T, month * np.arange(1, months + 1))
    discounted = np.diff(cumulative, axis=1) @ discount_factors(months, discount_rate_annual)  # a 12th of a year each
    both = np.stack([discounted, cumulative[:, -1]], axis=1)[inverse]
    value = pd.Series(both[:, 0], index=summary.index) * spend_per_purchase * margin
    return pd.DataFrame({"expected_purchases": both[:, 1], "clv": value.clip(lower=0)}, index=summary.index)


def value_intervals(fit: BTYDModel, summary: pd.DataFrame, spend: SpendFit | pd.Series, c: Any) -> pd.DataFrame:
    """The 80% and 95% intervals of expected purchases, P(alive) and CLV over the horizon (``params.clv`` = ``c``).

    From the fit's parameter uncertainty (:mod:`helpers.clv.intervals`, the delta method); the columns of
    :data:`~helpers.clv.intervals.INTERVAL_COLUMNS`, missing when the fit has no covariance.
    """
    from helpers.clv.intervals import INTERVAL_COLUMNS, customer_intervals

    horizon = c.horizon_months * DAYS_PER_MONTH / UNIT_DAYS[c.time_unit]  # lifetime_value's expected purchases
    ci = customer_intervals(fit, summary, t=horizon, months=c.horizon_months, unit=c.time_unit, spend=spend,
                            discount_rate_annual=c.discount_rate_annual, margin=c.margin)
    return ci[INTERVAL_COLUMNS]


def alive_path(fit: BTYDModel, days: pd.Series, as_of: dt.date, unit: str) -> pd.DataFrame:
    """P(alive) of one customer on every day from the first purchase to ``as_of``.

    ``days`` are the customer's purchase days (or purchase times). On each day
    the customer's frequency, recency and age are those known on that day.
    """
    days = pd.Series(sorted(pd.to_datetime(days).dt.normalize().unique()))
    grid = pd.date_range(days.iloc[0], pd.Timestamp(as_of), freq="D")
    bought = np.searchsorted(days.to_numpy(), grid.to_numpy(), side="right")
    last = days.to_numpy()[bought - 1]
    summary = pd.DataFrame({
        "frequency": (bought - 1).astype(float),
        "recency": (last - days.iloc[0].to_datetime64()) / np.timedelta64(1, "D") / UNIT_DAYS[unit],
        "T": (grid - days.iloc[0]).days / UNIT_DAYS[unit],
    }, index=grid)
    return pd.DataFrame({"p_alive": fit.p_alive(summary), "purchase": grid.isin(days)}, index=grid)


def example_customer(summary: pd.DataFrame, alive: pd.Series) -> str | None:
    """A customer worth showing the P(alive) history of: a frequent buyer who is probably gone.

    The most frequent repeat buyer with P(alive) below 0.5 (ties: the lowest
    P(alive), then the key); when nobody is below 0.5, the repeat buyer with
    the lowest P(alive); None when nobody bought twice.

    >>> s = pd.DataFrame({"frequency": [0.0, 3.0, 5.0]}, index=["a", "b", "c"])
    >>> example_customer(s, pd.Series([1.0, 0.3, 0.9], index=s.index)), example_customer(s, pd.Series(1.0, s.index))
    ('b', 'c')
    """
    table = summary.assign(p=alive.reindex(summary.index))
    table = table[(table["frequency"] > 0) & table["p"].notna()].rename_axis("key").reset_index()
    if table.empty:
        return None
    gone = table[table["p"] < 0.5]
    pick = (gone.sort_values(["frequency", "p", "key"], ascending=[False, True, True]) if not gone.empty
            else table.sort_values(["p", "frequency", "key"], ascending=[True, False, True]))
    return str(pick["key"].iloc[0])


def own_spend(summary: pd.DataFrame) -> pd.Series:
    """Spend per purchase without a spend model: a repeat buyer's own mean, otherwise the repeat buyers' mean.

    The fallback when Gamma-Gamma cannot be fitted (no shrinkage towards the population).

    >>> own_spend(pd.DataFrame({"frequency": [2.0, 0.0], "monetary_value": [8.0, 0.0]})).tolist()
    [8.0, 8.0]
    """
    repeat = summary.loc[summary["frequency"] > 0, "monetary_value"]
    overall = float(repeat[repeat > 0].mean()) if (repeat > 0).any() else 0.0
    own = summary["monetary_value"].where(summary["frequency"] > 0, overall).clip(lower=0)
    return own.astype(float)


def _aligned(part: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """``part`` in the order of ``ids``: itself when it is in that order already (the SQL summaries are; a
    reindex would copy ten million rows of every part to change nothing).

    >>> _aligned(pd.DataFrame({"x": [1, 2]}, index=["b", "a"]), pd.Index(["a", "b"]))["x"].tolist()
    [2, 1]
    """
    return part if part.index.equals(ids) else part.reindex(ids)


def _add_columns(out: pd.DataFrame, part: pd.DataFrame) -> None:
    """Append ``part``'s columns to ``out`` (same length and order) as its own arrays: no copy of ``out``."""
    for column in part.columns:
        out[column] = part[column].to_numpy()


def customer_value(customers: pd.DataFrame, frame: pd.DataFrame, summary: pd.DataFrame, fit: BTYDModel | None,
                   spend: SpendFit | pd.Series | None, as_of: dt.date, params: Any,
                   acquisition_days: int | None = None, priced: pd.DataFrame | None = None,
                   halves: pd.DataFrame | None = None) -> pd.DataFrame:
    """Add the BTYD summary, P(alive), expected purchases, CLV, value tier and lifecycle stage.

    ``frame`` is the clean transactions or their purchase days
    (:func:`helpers.clv.summary.as_purchase_days`). ``params`` is the run's
    :class:`helpers.config.Params` (``clv``, ``tiers`` and ``lifecycle`` sections).
    ``spend`` is a fitted Gamma-Gamma model or spend per purchase per customer (:func:`own_spend`).
    Without a forecast (``fit`` None) P(alive), expected purchases, spend, CLV and the value tier are
    missing, and the lifecycle rule runs without P(alive). ``acquisition_days`` overrides
    ``params.lifecycle.acquisition_days`` (the caller resolves a data-derived default). ``priced`` gives
    the value columns already computed (``p_alive``, ``expected_spend``, ``expected_purchases``, ``clv``
    and the intervals' columns), as a discrete-time model does (:mod:`helpers.stages.value_discrete`).
    ``halves`` gives every customer's :func:`helpers.summary.purchase_halves` when ``frame`` holds only
    some customers' days (computed in SQL, :mod:`helpers.summary_sql`).
    """
    from helpers.tiers import value_tiers

    c = params.clv
    days = as_purchase_days(frame, as_of)
    ids = pd.Index(customers["customer_id"])
    parts = [summary.rename(columns={"frequency": "btyd_frequency", "recency": "btyd_recency", "T": "btyd_T",
                                     "monetary_value": "btyd_monetary"})]
    if priced is not None:
        parts.append(priced)
    elif fit is not None and spend is not None:
        per_purchase = expected_spend(spend, summary) if isinstance(spend, SpendFit) else spend
        parts.append(pd.DataFrame({"p_alive": fit.p_alive(summary), "expected_spend": per_purchase}))
        parts += [lifetime_value(fit, parts[-1]["expected_spend"].reindex(ids), summary, months=c.horizon_months,
                                 unit=c.time_unit, discount_rate_annual=c.discount_rate_annual, margin=c.margin),
                  value_intervals(fit, summary, spend, c)]
    # left joins on the customers: their columns are shared with a shallow copy, the parts' columns appended
    # (a concat would copy ten million customers' every column; the caller's table is left as it was)
    out = customers.copy(deep=False)
    if not isinstance(out.index, pd.RangeIndex) or out.index.start != 0 or out.index.step != 1:
        out = out.set_axis(pd.RangeIndex(len(ids)), copy=False)
    while parts:
        _add_columns(out, _aligned(parts.pop(0), ids))  # each part freed once its columns are in
    if priced is not None or (fit is not None and spend is not None):
        out["value_tier"] = value_tiers(out["monetary_total"], out["clv"], params.tiers.current_high_share,
                                        params.tiers.potential_high_share)
    else:
        from helpers.clv.intervals import INTERVAL_COLUMNS

        for column in ("p_alive", "expected_spend", "expected_purchases", "clv", *INTERVAL_COLUMNS):
            out[column] = np.nan  # the same columns with or without a forecast
        out["value_tier"] = pd.Series(None, index=out.index, dtype=object)
    for column, values in (purchase_halves(days, as_of) if halves is None else halves).reindex(ids).items():
        out[column] = values.to_numpy()  # a left join
    lc = params.lifecycle
    window = lc.acquisition_days if acquisition_days is None else acquisition_days
    if window is None:
        window = default_acquisition_days(log_span_days(days, as_of))
    out["lifecycle_stage"] = lifecycle_stage(out["tenure_days"], out["p_alive"], out, acquisition_days=window,
                                             decline_p_alive=lc.decline_p_alive,
                                             termination_p_alive=lc.termination_p_alive, trend_change=lc.trend_change)
    return out


#: The columns of the top-customers table (:func:`top_customers`); without a forecast only the first three.
TOP_COLUMNS = ["customer_id", "rfm_segment", "monetary_total", "btyd_frequency", "btyd_recency", "btyd_T", "p_alive",
               "expected_purchases", "expected_spend", "clv"]


def top_customers(value: pd.DataFrame, forecast: bool, n: int = 10) -> pd.DataFrame:
    """The ``n`` customers with the highest CLV (without a forecast: the highest spend so far), rounded.

    >>> v = pd.DataFrame({"customer_id": ["a", "b"], "rfm_segment": ["x", "y"], "monetary_total": [5.0, 9.0]})
    >>> top_customers(v, forecast=False, n=1)["customer_id"].tolist()
    ['b']
    """
    by = "clv" if forecast else "monetary_total"
    columns = (TOP_COLUMNS + [c for c in ("clv_low_80", "clv_high_80") if c in value]) if forecast else TOP_COLUMNS[:3]
    return names.top_rows(value, by, n, key="customer_id")[columns].round(2)  # sorting a million ids took 0.9 s
