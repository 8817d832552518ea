"""Stage 05 for a discrete-time log (``clv.discrete_period``): BG/BB validated on whole periods, then priced.

When the log is one purchase opportunity per calendar period (a yearly
donation or renewal, an event that runs once a month), :func:`value_discrete`
replaces the continuous-time comparison of :func:`helpers.stages.value.value_customers`:

1. the BG/BB summary per customer in whole periods (:mod:`helpers.clv.discrete`);
2. a holdout of whole periods (``clv.holdout_days`` converted, or a third of the
   log's opportunities), BG/BB fitted on the calibration periods with every
   ``clv.penalizers`` and scored on the holdout with the continuous comparison's
   columns (MAE, RMSE, rank correlation, predicted and actual totals);
3. the best sound fit refitted on the full history, Gamma-Gamma on the
   repeat periods' amounts, and every customer priced: P(alive) in the next
   period (FHS 2010 eq. 11, BTYD's ``bgbb.PAlive``), expected transactions and
   discounted value over ``clv.horizon_months`` in whole periods, the tiers and
   the lifecycle, in the same customer table as the continuous path.

The interval columns are NaN: the delta-method intervals of
:mod:`helpers.clv.intervals` do not cover BG/BB; neither does the retention
what-if (it scales BG/NBD's and Pareto/NBD's drop-out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from helpers import clv, privacy
from helpers.caveats import caveat
from helpers.clv import discrete
from helpers.clv.intervals import INTERVAL_COLUMNS
from helpers.clv.retention import naive_examples, naive_vs_model
from helpers.errors import DataError
from helpers.stages.value import ValueResult, _acquisition, _choose_and_refit, _forecast_caveats, _spend

#: Above this share of customer-periods with several purchase days the log is not one opportunity per period.
MULTIPLE_PURCHASE_CAVEAT_SHARE = 0.01
#: The customer table's value columns, in the continuous path's order.
PRICED_COLUMNS = ["p_alive", "expected_spend", "expected_purchases", "clv", *INTERVAL_COLUMNS]


def periods_text(n: int, period: str) -> str:
    """``n`` periods in words.

    >>> periods_text(1, "year"), periods_text(2, "year")
    ('1 year', '2 years')
    """
    return f"{n} {period}{'' if n == 1 else 's'}"


@dataclass
class DiscreteValueResult(ValueResult):
    """Stage 05's result for a discrete-time log: the fields of :class:`ValueResult`, in periods."""

    period: str = "year"
    horizon_periods: int = 1
    holdout_periods: int | None = None
    multiple_share: float = 0.0

    @property
    def unit_name(self) -> str:
        """The periods in words (``years``)."""
        return f"{self.period}s"

    @property
    def period_name(self) -> str:
        """What a column of the value per period counts (``year``)."""
        return self.period

    @property
    def model_primer(self) -> str:
        """Notebook 05's note that this run is discrete: BG/BB in whole periods, and what the comparison holds."""
        held = f"the last {periods_text(self.holdout_periods, self.period)}" if self.holdout_periods else "no holdout"
        return (f"**This log is discrete-time** (`clv.discrete_period: {self.period}`): one purchase opportunity "
                f"per {self.period}. Stage 05 fits **BG/BB** (Fader, Hardie and Shang 2010) instead of the "
                f"continuous-time models: each customer is the number of {self.unit_name} after the first with a "
                f"purchase, the last of them, and the {self.unit_name} observed. The comparison below holds BG/BB "
                f"with each penalizer, validated on {held}; CLV counts the next "
                f"{periods_text(self.horizon_periods, self.period)} (`clv.horizon_months` = "
                f"{self.params.clv.horizon_months}, rounded to whole "
                f"{self.unit_name}). Of the customer-periods with a purchase, {self.multiple_share:.1%} have more "
                "than one purchase day (each counts once).")

    def interval_text(self) -> str:
        """No intervals for BG/BB, and why."""
        if not self.forecast:
            return super().interval_text()
        return ("No intervals: the delta-method intervals (helpers.clv.intervals) do not cover BG/BB; the interval "
                "columns are empty.")

    def retention_text(self) -> str:
        """No retention what-if for BG/BB, and why."""
        return ("no retention what-if: it scales the drop-out of BG/NBD and Pareto/NBD, and this run's model is "
                "BG/BB (discrete time)" if self.forecast else super().retention_text())

    def period_text(self) -> str:
        """The CLV period by period, and what one new customer would bring."""
        if self.per_period is None:
            return super().period_text()
        t, new, p = self.per_period, self.new_customer, self.period
        return (f"{p.capitalize()} 1 brings {t['value'].iloc[0]:,.0f} of the {t['cumulative_value'].iloc[-1]:,.0f} "
                f"predicted over {periods_text(len(t), p)}. One newly acquired customer like these is expected to make "
                f"{new['cumulative_purchases'].iloc[-1]:.2f} repeat transactions worth "
                f"{new['cumulative_value'].iloc[-1]:,.2f} over the same horizon: the most it is worth spending to "
                "acquire one, before the first transaction's margin.")

    def validation(self, params: Any) -> dict[str, Any]:
        """:meth:`ValueResult.validation` with the periods: ``clv_by_month`` holds the value per period."""
        out = super().validation(params)
        return out | {"discrete_period": self.period, "holdout_periods": self.holdout_periods,
                      "horizon_periods": self.horizon_periods,
                      "multiple_purchase_share": round(self.multiple_share, 4)}


def holdout_periods(c: Any, opportunities: int) -> tuple[int | None, str]:
    """The holdout in whole periods and its rule (``c``: ``params.clv``; ``opportunities``: the log's first customer's).

    ``clv.holdout_days`` / the period's mean length (a year 365.25 days),
    rounded; shorter than the shortest period (365 days for a year) is refused.
    Not set: a third of the opportunities (None below 1).
    """
    period, (_, mean_days) = c.discrete_period, discrete.PERIODS[c.discrete_period]
    if c.holdout_days is None:
        n = opportunities // 3 or None
        return n, (f"clv.holdout_days not set: a third of the log's {periods_text(opportunities, period)} after its "
                   f"first, so {periods_text(n, period) if n else 'no period'} of holdout")
    n = int(np.floor(c.holdout_days / mean_days + 0.5))
    if c.holdout_days < discrete.SHORTEST_DAYS[period] or n < 1:
        raise DataError(f"clv.holdout_days = {c.holdout_days} is shorter than one {period} (clv.discrete_period = "
                        f"{period}): a discrete-time holdout is whole periods, at least "
                        f"{discrete.SHORTEST_DAYS[period]} days")
    return n, (f"clv.holdout_days = {c.holdout_days} (set in the parameters) = {periods_text(n, period)} "
               f"({c.holdout_days} / {mean_days:g} days, rounded)")


def _calibration(params: Any, days: pd.DataFrame, result: DiscreteValueResult, first: int, last: int,
                 freq: str) -> str | None:
    """Set the calibration/holdout split on ``result`` in whole periods; return why there is no forecast (None: on)."""
    c, n = params.clv, result.holdout_periods
    if n is None or last - n <= first:
        if c.holdout_days is not None:
            raise DataError(f"clv.holdout_days = {c.holdout_days} leaves no calibration {c.discrete_period}: the log "
                            f"has {last - first} whole {c.discrete_period}s after its first (clv.discrete_period)")
        return (f"the log has only {periods_text(last - first, c.discrete_period)} after its first: too few for a "
                "calibration and a holdout of whole periods, so BG/BB cannot be validated. Set clv.holdout_days, or "
                "use a longer log.")
    calibration = last - n
    result.calibration_end = discrete.period_end(calibration, freq)
    result.holdout_days = (params.as_of - result.calibration_end).days
    result.calhold = discrete.discrete_summary(days, calibration, freq, holdout_last=last)
    repeaters = int((result.calhold["frequency"] > 0).sum())
    if repeaters < c.min_repeat_buyers:
        return (f"only {repeaters:,} of the {len(result.calhold):,} customers of the calibration {c.discrete_period}s "
                f"transacted again; BG/BB needs at least {c.min_repeat_buyers} (clv.min_repeat_buyers). This run "
                "reports RFM and spend only.")
    return None


def _discrete_caveats(params: Any, result: DiscreteValueResult, freq: str) -> None:
    """What a discrete-time forecast's reader must know: several purchases in a period, a period still running."""
    p = result.period
    if result.multiple_share > MULTIPLE_PURCHASE_CAVEAT_SHARE:
        result.caveats.append(caveat(
            "discrete_multiple_purchases",
            f"{result.multiple_share:.1%} of the customer-{p}s with a purchase have more than one purchase day: "
            f"BG/BB counts a {p} with any purchase as one transaction, so expected transactions are {p}s with a "
            f"purchase, not purchases; CLV prices each at the {p}'s total spend. A continuous-time model "
            "(clv.discrete_period: null) may suit this log better."))
    end = discrete.period_end(pd.Period(params.as_of, freq).ordinal, freq)
    if end != params.as_of:
        result.caveats.append(caveat(
            "discrete_running_period",
            f"as_of {params.as_of} falls inside a {p} that runs to {end}: it counts as an opportunity observed, "
            f"so customers who have not bought in it yet look less likely alive than they will at its end."))


def _price(params: Any, result: DiscreteValueResult, spend: clv.SpendFit | pd.Series) -> pd.DataFrame:
    """The value columns per customer (:data:`PRICED_COLUMNS`), the value per period, and a new customer's."""
    c, summary = params.clv, result.summary
    per_purchase = clv.expected_spend(spend, summary) if isinstance(spend, clv.SpendFit) else spend
    terms = {"periods": result.horizon_periods, "period": result.period,
             "discount_rate_annual": c.discount_rate_annual, "margin": c.margin}
    months = discrete.discrete_value(result.fit, per_purchase, summary, **terms)
    result.months, result.per_period = months, months.total()
    mean_spend = result.spend.mean_spend if result.spend is not None else float(per_purchase.mean())
    result.new_customer = discrete.new_customer_value(result.fit, mean_spend, **terms)
    priced = pd.DataFrame({"p_alive": result.fit.p_alive(summary), "expected_spend": per_purchase,
                           "expected_purchases": months.purchases.sum(axis=1),
                           "clv": months.value.sum(axis=1).clip(lower=0)}, index=summary.index)
    return priced.reindex(columns=PRICED_COLUMNS)


def value_discrete(params: Any, days: pd.DataFrame, customers: pd.DataFrame) -> DiscreteValueResult:
    """Stage 05 on a discrete-time log: BG/BB validated on whole periods, refitted, every customer priced.

    ``days`` are the run's purchase days (:func:`helpers.clv.summary.as_purchase_days`), ``customers``
    stage 04's table; the result has the fields and artifacts of the continuous path.
    """
    c = params.clv
    freq = discrete.period_code(c.discrete_period)
    last = pd.Period(params.as_of, freq).ordinal
    first = int(pd.PeriodIndex(days["day"], freq=freq).asi8.min())
    n_hold, rule = holdout_periods(c, last - first)
    acquisition, acquisition_rule = _acquisition(params, clv.log_span_days(days, params.as_of))
    summary = discrete.discrete_summary(days, last, freq)
    result = DiscreteValueResult(None, rule, acquisition, acquisition_rule, summary, customers, params=params,
                                 period=c.discrete_period, holdout_periods=n_hold,
                                 horizon_periods=discrete.horizon_periods(c.horizon_months, c.discrete_period),
                                 multiple_share=discrete.multiple_purchase_share(days, last, freq))
    reason = _calibration(params, days, result, first, last, freq)
    if reason is None:  # the comparison's grid is BG/BB with each penalizer
        reason = _choose_and_refit(params.model_copy(update={"clv": c.model_copy(update={"models": ["bgbb"]})}),
                                   result)
    priced = None
    if reason is None:
        spend = _spend(result)
        _forecast_caveats(params, result)
        _discrete_caveats(params, result, freq)
        priced = _price(params, result, spend)
    else:
        result.forecast_reason, result.fit = reason, None
        result.caveats.insert(0, caveat("no_forecast", f"No lifetime-value forecast: {reason}"))
    view = summary[["frequency", "recency", "T", "monetary_value"]]
    result.value = clv.customer_value(customers, days, view, None, None, params.as_of, params,
                                      acquisition_days=acquisition, priced=priced)
    result.naive = naive_vs_model(result.value, c)
    if result.forecast:
        _finish(params, result, days, last, freq)
    result.naive_examples = naive_examples(result.value, c, result.example)
    return result


def _finish(params: Any, result: DiscreteValueResult, days: pd.DataFrame, last: int, freq: str) -> None:
    """The forecast's views: the example customer's P(alive) by period, the tier table, the tracking."""
    from helpers.rfm import load_segment_map
    from helpers.tiers import tier_table

    if (bad := int((~np.isfinite(result.value[["p_alive", "expected_purchases", "clv"]].to_numpy())).sum())):
        raise DataError(f"stage 05: {bad} non-finite values from {result.fit.label}; please report this with the "
                        "parameter file")
    c = params.clv
    alive = clv.p_alive(result.fit, result.summary)
    result.example = (privacy.find_customer(result.summary.index, c.example_customer) if c.example_customer
                      else clv.example_customer(result.summary, alive))
    if result.example is not None:
        result.example_path = discrete.alive_path(result.fit, days, result.example, last, freq)
    result.tiers = tier_table(result.value, load_segment_map(params.rfm.segment_map, params.rfm.bins).tiers)
    result.tracking = discrete.discrete_tracking(result.cal_fit, days, last - result.holdout_periods, last, freq)
