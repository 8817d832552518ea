"""Value per period: CLV as a series of expected purchases and discounted value, and the value of a new customer.

:func:`helpers.clv.value.lifetime_value` sums, over the months of the horizon,
the increments of the conditional expected purchases, times spend and
margin, discounted monthly. :func:`value_per_period` keeps the increments:
per customer and period (a month by default, or any length in days, e.g. a
week) the expected purchases and the discounted value, and their totals per
period (asked for in PyMC-Marketing #1097 and #218 and CLVTools #235). With
monthly periods its sum over the periods is ``lifetime_value``'s CLV.

:func:`new_customer_value` is the unconditional forecast: the expected repeat
purchases of a customer acquired today (lifetimes'
``expected_number_of_purchases_up_to_time``, the population's average with no
history) and their discounted value at the population's mean spend - the
ceiling on what acquiring one more customer is worth (the first order's margin
comes on top of it).

Everything is computed once per distinct (frequency, recency, T) row and
spread over the customers (:func:`helpers.clv.summary.distinct_rows`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from helpers.clv.models import BTYDModel
from helpers.clv.summary import DAYS_PER_MONTH, UNIT_DAYS, distinct_rows


def period_length(unit: str, period_days: float = DAYS_PER_MONTH) -> float:
    """A period of ``period_days`` days in the model's time unit (``"D"`` or ``"W"``).

    >>> round(period_length("W"), 4), period_length("D", 7.0)
    (4.3482, 7.0)
    """
    return period_days / UNIT_DAYS[unit]


def discount_factors(periods: int, discount_rate_annual: float, period_days: float = DAYS_PER_MONTH) -> np.ndarray:
    """1 / (1 + rate per period) ** i for the periods i = 1 .. ``periods``; a month's rate is (1 + annual) ** (1/12) - 1.

    The same monthly discounting as :func:`helpers.clv.value.lifetime_value`.

    >>> discount_factors(2, 0.0).tolist()
    [1.0, 1.0]
    >>> round(float(discount_factors(12, 0.10)[-1]), 6)
    0.909091
    """
    per_period = (1 + discount_rate_annual) ** (period_days / (12 * DAYS_PER_MONTH)) - 1
    return 1.0 / (1 + per_period) ** np.arange(1, periods + 1)


def period_ends(months: int, unit: str, period_days: float = DAYS_PER_MONTH) -> np.ndarray:
    """The ends of the periods of a horizon of ``months`` months, in the model's time unit (the last cut at the horizon).

    >>> period_ends(1, "D", 7.0).round(4).tolist()
    [7.0, 14.0, 21.0, 28.0, 30.4375]
    """
    horizon = months * DAYS_PER_MONTH / UNIT_DAYS[unit]
    length = period_length(unit, period_days)
    n = int(np.ceil(horizon / length - 1e-9))
    return np.minimum(np.arange(1, n + 1) * length, horizon)


#: From this many rows :func:`cumulative_purchases` computes its columns on two threads.
THREADED_ROWS = 50_000


def cumulative_purchases(model: Any, f: np.ndarray, r: np.ndarray, T: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Conditional expected purchases up to each of ``ends`` (rows x len(ends) + 1; column 0 is 0).

    ``model`` is a fitted lifetimes model, ``ends`` are times in its unit. Each column is computed on its
    own, from :data:`THREADED_ROWS` rows two at a time: lifetimes' formulas are NumPy and SciPy array
    operations (the hypergeometric function above all), which run outside Python's lock, so two threads
    take 0.48 s where one took 0.81 s for twelve months of 216,081 distinct rows. The numbers are the same.
    """
    import concurrent.futures

    out = np.zeros((len(f), len(ends) + 1))

    def column(i: int) -> None:
        with np.errstate(all="ignore"):
            out[:, i] = model.conditional_expected_number_of_purchases_up_to_time(ends[i - 1], f, r, T)

    columns = range(1, len(ends) + 1)
    if len(f) < THREADED_ROWS or len(ends) < 2:
        for i in columns:
            column(i)
        return out
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="clv-periods") as pool:
        list(pool.map(column, columns))  # list: a column's error is raised here
    return out


@dataclass
class PeriodValue:
    """Expected purchases and discounted value per customer (rows) and period (columns 1 .. n).

    Held per distinct (frequency, recency, T) row (``increments``) with each customer's row (``inverse``)
    and spend x margin (``per_purchase``): the customers x periods tables (:attr:`purchases`,
    :attr:`value`) are spread out only when asked for, or a row group at a time (:meth:`wide_parts`);
    at ten million customers each is a gigabyte.
    """

    increments: np.ndarray  # distinct rows x periods: the increments of the expected purchases
    inverse: np.ndarray  # each customer's distinct row
    per_purchase: np.ndarray  # each customer's spend per purchase x margin
    factors: np.ndarray  # each period's discount factor
    index: pd.Index  # the customers

    @property
    def columns(self) -> pd.RangeIndex:
        """The periods 1 .. n."""
        return pd.RangeIndex(1, self.increments.shape[1] + 1, name="period")

    @property
    def purchases(self) -> pd.DataFrame:
        """Expected purchases per customer and period."""
        return pd.DataFrame(self.increments[self.inverse], index=self.index, columns=self.columns)

    def _value(self, rows: slice) -> np.ndarray:
        discounted = self.increments[self.inverse[rows]] * self.factors[None, :]
        discounted *= self.per_purchase[rows, None]  # in place: one customers x periods copy less
        return discounted

    @property
    def value(self) -> pd.DataFrame:
        """Discounted value per customer and period."""
        return pd.DataFrame(self._value(slice(None)), index=self.index, columns=self.columns, copy=False)

    def total(self) -> pd.DataFrame:
        """Per period: the customers' expected purchases and discounted value, and both accumulated."""
        rows = len(self.increments)
        customers = np.bincount(self.inverse, minlength=rows).astype(float)
        spend = np.bincount(self.inverse, weights=self.per_purchase, minlength=rows)
        out = pd.DataFrame({"expected_purchases": customers @ self.increments,
                            "value": (spend @ self.increments) * self.factors}, index=self.columns)
        out["cumulative_purchases"] = out["expected_purchases"].cumsum()
        out["cumulative_value"] = out["value"].cumsum()
        return out.rename_axis("period")

    def long(self) -> pd.DataFrame:
        """One row per customer and period (``customer_id``, ``period``, ``expected_purchases``, ``value``), for the export."""
        frame = pd.DataFrame({"expected_purchases": self.purchases.stack(), "value": self.value.stack()})
        return frame.rename_axis(["customer_id", "period"]).reset_index()

    def wide_parts(self, period_name: str, rows: int) -> Iterator[pd.DataFrame]:
        """:func:`wide_table` of :attr:`value`, ``rows`` customers at a time (the artifact, written part by part)."""
        for start in range(0, max(len(self.index), 1), rows):
            part = slice(start, start + rows)
            value = pd.DataFrame(self._value(part), index=self.index[part], columns=self.columns, copy=False)
            yield wide_table(value, period_name)


def value_per_period(fit: BTYDModel, spend_per_purchase: pd.Series, summary: pd.DataFrame, *, months: int,
                     unit: str, discount_rate_annual: float = 0.10, margin: float = 1.0,
                     period_days: float = DAYS_PER_MONTH, ends: np.ndarray | None = None) -> PeriodValue:
    """Expected purchases and discounted value per customer in each period of the horizon.

    The horizon is ``months`` months (of 365.25/12 days); the periods are
    ``period_days`` long (a month by default; 7.0 for weeks: the horizon then
    has ``ceil(months x month / period_days)`` periods, the last one cut at the
    horizon). Value = increment of the conditional expected purchases x spend
    per purchase x margin x the period's discount factor; the sum over the
    periods of a customer is :func:`helpers.clv.value.lifetime_value`'s CLV.
    Period i is discounted at the annual rate over i periods (a cut last period
    as a whole one). ``ends`` overrides the periods' ends in the model's time (a
    discrete-time model's opportunities 1, 2, ...: :mod:`helpers.clv.discrete`).
    """
    ends = period_ends(months, unit, period_days) if ends is None else ends
    rows, inverse = distinct_rows(summary)
    f, r, T = (rows[c].to_numpy() for c in ("frequency", "recency", "T"))
    increments = np.diff(cumulative_purchases(fit.model, f, r, T, ends), axis=1)
    per_purchase = spend_per_purchase.reindex(summary.index).to_numpy(dtype=float) * margin
    return PeriodValue(increments, np.asarray(inverse), per_purchase,
                       discount_factors(len(ends), discount_rate_annual, period_days), summary.index)


def wide_table(value: pd.DataFrame, period_name: str) -> pd.DataFrame:
    """The value per customer (rows) and period (columns 1..n) as the ``value_per_period`` artifact: ``customer_id``,
    then ``clv_<period_name>_01`` ...; the values are not copied (ten million customers x a horizon is gigabytes).

    >>> wide_table(pd.DataFrame([[1.0, 2.0]], index=pd.Index(["a"], name="customer_id"), columns=[1, 2]), "month")
      customer_id  clv_month_01  clv_month_02
    0           a           1.0           2.0
    """
    wide = value.copy(deep=False)
    wide.columns = pd.Index([f"clv_{period_name}_{m:02d}" for m in wide.columns], name=value.columns.name)
    wide.insert(0, "customer_id", wide.index.to_numpy())
    return wide.set_axis(pd.RangeIndex(len(wide)), copy=False)


def new_customer_value(fit: BTYDModel, mean_spend: float, *, months: int, unit: str,
                       discount_rate_annual: float = 0.10, margin: float = 1.0,
                       period_days: float = DAYS_PER_MONTH) -> pd.DataFrame:
    """Expected repeat purchases and discounted value of one newly acquired customer, per period of the horizon.

    The unconditional forecast E[X(t)] of the fitted model (a customer with no
    history yet, lifetimes' ``expected_number_of_purchases_up_to_time``) at the
    end of each period, its increments times ``mean_spend`` (the population's
    mean spend per purchase, :attr:`helpers.clv.models.SpendFit.mean_spend`) times
    ``margin``, discounted as :func:`value_per_period` does. Columns
    ``expected_purchases``, ``value`` and both accumulated; the last row's
    ``cumulative_value`` is the most that acquiring one more customer like these
    is worth over the horizon, before the first order's own margin.
    """
    ends = period_ends(months, unit, period_days)
    n = len(ends)
    with np.errstate(all="ignore"):
        cumulative = np.array([float(fit.model.expected_number_of_purchases_up_to_time(t)) for t in ends])
    increments = np.diff(np.concatenate([[0.0], cumulative]))
    value = increments * mean_spend * margin * discount_factors(n, discount_rate_annual, period_days)
    out = pd.DataFrame({"expected_purchases": increments, "value": value}, index=pd.RangeIndex(1, n + 1, name="period"))
    out["cumulative_purchases"] = cumulative
    out["cumulative_value"] = out["value"].cumsum()
    return out


def new_customer_ceiling(fit: BTYDModel, mean_spend: float, **kwargs: Any) -> dict[str, float]:
    """The totals of :func:`new_customer_value` over the horizon: ``expected_purchases`` and ``value``."""
    table = new_customer_value(fit, mean_spend, **kwargs)
    return {"expected_purchases": float(table["expected_purchases"].sum()), "value": float(table["value"].sum())}
