"""Discrete-time logs (``clv.discrete_period``): whole calendar periods, the BG/BB summary, value and tracking.

A log of one purchase opportunity per period (a yearly donation or renewal, an
event that runs once a month) is described per customer in whole calendar
periods counted from the one of the first purchase (the "birth" period, which
is not a repeat transaction): ``frequency`` x = later periods with at least one
purchase, ``recency`` t_x = the last of them (0: none), ``n_periods`` n = the
opportunities observed (:func:`helpers.clv.models.bgbb.period_summary`). The
last opportunity is the period holding ``as_of`` (stage 05 says so in a caveat
when ``as_of`` is not its last day: that period is still running). Several
purchases in one period are one transaction.

Lifetime value is priced as in continuous time (:mod:`helpers.clv.periods`):
the expected transactions of each future period x Gamma-Gamma's expected spend
per transaction x margin, discounted at the annual rate over the period's
length; the horizon ``clv.horizon_months`` becomes whole periods by rounding
(:func:`horizon_periods`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from helpers.clv.models.bgbb import BetaGeoBetaBinom, period_summary
from helpers.clv.periods import PeriodValue, discount_factors, value_per_period
from helpers.clv.summary import DAYS_PER_MONTH, as_purchase_days
from helpers.errors import ConfigError

#: ``clv.discrete_period``: the pandas period code and the mean length in days of each period.
PERIODS: dict[str, tuple[str, float]] = {"year": ("Y", 365.25), "quarter": ("Q", 365.25 / 4),
                                         "month": ("M", DAYS_PER_MONTH), "week": ("W", 7.0)}
#: The shortest calendar period of each kind, in days: a holdout shorter than this is not one whole period.
SHORTEST_DAYS = {"year": 365, "quarter": 90, "month": 28, "week": 7}


def period_code(period: str) -> str:
    """The pandas period code of ``clv.discrete_period`` (ConfigError naming it when unknown).

    >>> period_code("year"), period_code("week")
    ('Y', 'W')
    """
    if period not in PERIODS:
        raise ConfigError(f"clv.discrete_period = {period!r} is not a period: use one of {', '.join(PERIODS)} "
                          "(or null for continuous time)")
    return PERIODS[period][0]


def period_end(ordinal: int, freq: str) -> dt.date:
    """The last day of the period ``ordinal``.

    >>> period_end(pd.Period("1999", "Y").ordinal, "Y")
    datetime.date(1999, 12, 31)
    """
    return pd.Period(ordinal=ordinal, freq=freq).end_time.date()


def horizon_periods(months: int, period: str) -> int:
    """``clv.horizon_months`` in whole periods: months x 365.25/12 days / the period's mean length, rounded, >= 1.

    >>> [horizon_periods(12, p) for p in ("year", "quarter", "week")], horizon_periods(3, "year")
    ([1, 4, 52], 1)
    """
    return max(1, int(np.floor(months * DAYS_PER_MONTH / PERIODS[period][1] + 0.5)))


def _active_periods(days: pd.DataFrame, freq: str) -> pd.DataFrame:
    """One row per customer and period with a purchase: ``customer_id``, ``period``, ``amount``, ``days`` (a count)."""
    frame = pd.DataFrame({"customer_id": days["customer_id"].to_numpy(), "amount": days["amount"].to_numpy(),
                          "period": pd.PeriodIndex(days["day"], freq=freq).asi8})
    return frame.groupby(["customer_id", "period"], sort=True).agg(amount=("amount", "sum"),
                                                                   days=("amount", "size")).reset_index()


def discrete_summary(frame: pd.DataFrame, last: int, freq: str, holdout_last: int | None = None) -> pd.DataFrame:
    """The BG/BB summary per customer up to the period ``last``, with ``T`` (= ``n_periods``) and ``monetary_value``.

    ``frame`` is purchase days or transactions. ``monetary_value`` is the mean
    amount of a customer's repeat periods up to ``last`` (a period's amount:
    its purchases summed; 0 without a repeat period), what Gamma-Gamma reads.
    With ``holdout_last``, ``frequency_holdout`` counts the active periods after
    ``last`` up to it, ``n_periods_holdout`` = ``duration_holdout`` their number.

    >>> d = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "amount": [5.0, 2.0, 3.0, 1.0],
    ...     "day": pd.to_datetime(["2001-03-01", "2002-05-01", "2002-06-01", "2002-07-01"])})
    >>> s = discrete_summary(d, pd.Period("2003", "Y").ordinal, "Y")
    >>> s[["frequency", "n_periods", "monetary_value"]].values.tolist()
    [[1.0, 2.0, 5.0], [0.0, 1.0, 0.0]]
    """
    end = period_end(holdout_last if holdout_last is not None else last, freq)
    days = as_purchase_days(frame, end)
    out = period_summary(days, period_end(last, freq), freq,
                         as_of=period_end(holdout_last, freq) if holdout_last is not None else None)
    active = _active_periods(days, freq)
    birth = active.groupby("customer_id")["period"].transform("min")
    repeat = active[(active["period"] > birth) & (active["period"] <= last)]
    out["T"] = out["n_periods"]
    out["monetary_value"] = repeat.groupby("customer_id")["amount"].mean().reindex(out.index).fillna(0.0)
    if holdout_last is not None:
        out["duration_holdout"] = out.pop("n_periods_holdout")
    return out.astype(float)


def multiple_purchase_share(frame: pd.DataFrame, last: int, freq: str) -> float:
    """The share of customer-periods (up to ``last``) with more than one purchase day: 0 for a truly discrete log.

    >>> d = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": 1.0,
    ...     "day": pd.to_datetime(["2001-03-01", "2001-05-01", "2001-07-01"])})
    >>> multiple_purchase_share(d, pd.Period("2001", "Y").ordinal, "Y")
    0.5
    """
    active = _active_periods(as_purchase_days(frame, period_end(last, freq)), freq)
    return float((active["days"] > 1).mean()) if len(active) else 0.0


def discrete_value(fit: BetaGeoBetaBinom, spend_per_purchase: pd.Series, summary: pd.DataFrame, *, periods: int,
                   period: str, discount_rate_annual: float, margin: float) -> PeriodValue:
    """Expected transactions and discounted value per customer in each of the next ``periods`` opportunities.

    :func:`helpers.clv.periods.value_per_period` with the model's own time:
    the cumulative expectation is taken after 1, 2, ... ``periods``
    opportunities, each period discounted over its mean length in days.
    """
    return value_per_period(fit, spend_per_purchase, summary, months=0, unit="D", period_days=PERIODS[period][1],
                            discount_rate_annual=discount_rate_annual, margin=margin,
                            ends=np.arange(1, periods + 1, dtype=float))


def new_customer_value(fit: BetaGeoBetaBinom, mean_spend: float, *, periods: int, period: str,
                       discount_rate_annual: float, margin: float) -> pd.DataFrame:
    """One newly acquired customer's expected transactions and discounted value per future period (FHS 2010 eq. 9).

    The columns of :func:`helpers.clv.periods.new_customer_value`.
    """
    cumulative = fit.expected_new(np.arange(1, periods + 1))
    increments = np.diff(cumulative, prepend=0.0)
    factors = discount_factors(periods, discount_rate_annual, PERIODS[period][1])
    out = pd.DataFrame({"expected_purchases": increments, "value": increments * mean_spend * margin * factors},
                       index=pd.RangeIndex(1, periods + 1, name="period"))
    return out.assign(cumulative_purchases=cumulative, cumulative_value=out["value"].cumsum())


def discrete_tracking(fit: BetaGeoBetaBinom, frame: pd.DataFrame, calibration: int, last: int,
                      freq: str) -> pd.DataFrame:
    """The calibration cohort's repeat transactions per calendar period, actual and expected (FHS 2010, figure 4).

    The columns of :func:`helpers.clv.tracking.tracking`: a period's expectation
    is the sum over the cohort of a new customer's expected transactions in
    their opportunity number (period - birth period), :meth:`BetaGeoBetaBinom.expected_new`.
    """
    active = _active_periods(as_purchase_days(frame, period_end(last, freq)), freq)
    birth = active.groupby("customer_id")["period"].transform("min")
    active = active.assign(birth=birth)[birth <= calibration]
    births = active.groupby("customer_id")["birth"].first().value_counts()
    ordinals = np.arange(int(births.index.min()) + 1, last + 1)
    ages = np.clip(ordinals[None, :] - births.index.to_numpy()[:, None], 0, None)
    cumulative = births.to_numpy(dtype=float) @ fit.expected_new(ages)
    repeat = active.loc[active["period"] > active["birth"], "period"]
    actual = repeat.value_counts().reindex(ordinals, fill_value=0).to_numpy()
    starts = [pd.Period(ordinal=int(k), freq=freq) for k in ordinals]
    table = pd.DataFrame({"period": np.arange(1, len(ordinals) + 1),
                          "start": pd.DatetimeIndex([p.start_time for p in starts]),
                          "end": pd.DatetimeIndex([(p + 1).start_time for p in starts]),
                          "phase": np.where(ordinals <= calibration, "calibration", "holdout"),
                          "actual": actual.astype(np.int64), "expected": np.diff(cumulative, prepend=0.0)})
    return table.assign(actual_cumulative=table["actual"].cumsum(), expected_cumulative=cumulative)


def alive_path(fit: BetaGeoBetaBinom, frame: pd.DataFrame, customer: Any, last: int, freq: str) -> pd.DataFrame:
    """One customer's P(alive) at the end of every period from the first to ``last``, periods with a purchase marked.

    The frame of :func:`helpers.clv.value.alive_path` (``p_alive``, ``purchase``), indexed by the periods' last days.
    """
    days = as_purchase_days(frame, period_end(last, freq))
    own = _active_periods(days[days["customer_id"] == customer], freq)["period"].to_numpy()
    ordinals = np.arange(own.min(), last + 1)
    bought = np.isin(ordinals, own)
    since = ordinals - own.min()
    known = pd.DataFrame({"frequency": np.cumsum(bought) - 1,
                          "recency": np.maximum.accumulate(np.where(bought, since, 0)), "n_periods": since})
    index = pd.DatetimeIndex([pd.Timestamp(period_end(int(k), freq)) for k in ordinals])
    return pd.DataFrame({"p_alive": fit.p_alive(known).to_numpy(), "purchase": bought}, index=index)


__all__ = ["PERIODS", "SHORTEST_DAYS", "alive_path", "discrete_summary", "discrete_tracking", "discrete_value",
           "horizon_periods", "multiple_purchase_share", "new_customer_value", "period_code", "period_end"]
