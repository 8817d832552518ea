"""Stage 05, lifetime value: what the stage decides, computed in one call that tests and notebooks share.

Stage 05 (lifetime value) lives here first: :func:`value_customers` takes
the run's parameters, the run's purchase days (:mod:`helpers.summary`, written
by stage 04; or the clean lines) and stage 04's customer table,
and returns everything notebook 05 shows and writes. It never ends in a
library traceback on a valid log: a model that cannot be fitted soundly is
skipped with its reason, the next-best sound model is used, and when no
forecast is honest (too few repeat buyers, a log too short for a holdout,
no sound model) the stage reports RFM and spend only and says why.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import clv, lifecycle, privacy, sampling, store
from helpers import summary_sql as whole_log
from helpers.clv import periods
from helpers.caveats import caveat
from helpers.clv.retention import naive_examples, naive_vs_model, retention_what_if
from helpers.clv.intervals import coverage_summary, holdout_coverage
from helpers.clv.tracking import tracking, tracking_totals
from helpers.clv.models.gamma_gamma import SPEND_CORRELATION_LIMIT
from helpers.errors import DataError
from helpers.stages.value_covariates import covariate_analysis
from helpers.stages.value_views import ValueViews
from helpers.summary import read_purchase_days

#: Below these the holdout cannot tell models apart: the choice is reported as weakly validated.
WEAK_HOLDOUT_PURCHASES = 100
WEAK_HOLDOUT_RANK_CORRELATION = 0.1
#: BG/NBD's P(alive) = 1 for one-time buyers is worth a caveat when they are more than this share.
ONE_TIME_CAVEAT_SHARE = 0.2


@dataclass
class ValueResult(ValueViews):
    """Stage 05's result: the validation, the chosen model and the customer table with value columns."""

    holdout_days: int | None
    holdout_rule: str
    acquisition_days: int
    acquisition_rule: str
    summary: pd.DataFrame
    value: pd.DataFrame
    calibration_end: dt.date | None = None
    calhold: pd.DataFrame | None = None
    comparison: pd.DataFrame | None = None
    fits: dict[tuple[str, float], clv.Fit] = field(default_factory=dict)
    cal_fit: clv.Fit | None = None
    choice: tuple[str, float] | None = None  # the grid's (model, penalizer) of the chosen fit (a remedy may raise it)
    why: str = ""
    fit: clv.Fit | None = None
    spend: clv.SpendFit | None = None
    forecast_reason: str | None = None
    caveats: list[dict[str, str]] = field(default_factory=list)
    params: Any = None
    example: str | None = None  # the customer whose P(alive) history is shown, and that history
    example_path: pd.DataFrame | None = None
    tiers: pd.DataFrame | None = None  # helpers.tiers.tier_table (None without a forecast)
    retention: pd.DataFrame | None = None  # helpers.clv.retention.retention_what_if (None without a forecast)
    naive: pd.DataFrame | None = None  # helpers.clv.retention.naive_vs_model (None without a forecast)
    naive_examples: pd.DataFrame | None = None  # helpers.clv.retention.naive_examples (None without a forecast)
    tracking: pd.DataFrame | None = None  # helpers.clv.tracking.tracking of the calibration fit (None without a forecast)
    coverage: pd.DataFrame | None = None  # helpers.clv.intervals.holdout_coverage of the calibration fit
    months: periods.PeriodValue | None = None  # expected purchases and discounted value per customer and month
    per_period: pd.DataFrame | None = None  # helpers.clv.periods.PeriodValue.total: the cohort's months
    new_customer: pd.DataFrame | None = None  # helpers.clv.periods.new_customer_value: one new customer's months
    covariates: Any = None  # helpers.stages.value_covariates.CovariateAnalysis: BG/NBD with static covariates
    fit_summary: pd.DataFrame | None = None  # the customers the models are fitted on (helpers.sampling; None: all)
    pending_covariates: Any = field(default=None, repr=False)  # the analysis left to the caller (value_customers)
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def forecast(self) -> bool:
        """True when a sound BTYD model priced the customers."""
        return self.fit is not None

    @property
    def period_value(self) -> pd.DataFrame | None:
        """The discounted value per customer (rows) and month (columns 1..horizon); None without a forecast."""
        return None if self.months is None else self.months.value

    @property
    def period_name(self) -> str:
        """What a column of the value per period counts: a month (a discrete-time run: its period)."""
        return "month"

    @property
    def model_primer(self) -> str:
        """Notebook 05's note on a discrete-time run's model (empty in continuous time)."""
        return ""

    @property
    def chosen_row(self) -> pd.Series | None:
        """The comparison row of the model used (None without a forecast)."""
        if self.comparison is None or self.choice is None:
            return None
        rows = self.comparison[(self.comparison["key"] == self.choice[0])
                               & (self.comparison["penalizer"] == self.choice[1])]
        return rows.iloc[0] if not rows.empty else None

    def validation(self, params: Any) -> dict[str, Any]:
        """The stage's JSON artifact (``clv_validation.json``)."""
        row = self.chosen_row
        holdout = None
        if row is not None:
            holdout = {k: (None if pd.isna(row[k]) else float(row[k]))
                       for k in ("mae", "rmse", "spearman", "predicted_total", "actual_total", "total_error_pct")}
        return {
            "as_of": params.as_of, "calibration_end": self.calibration_end, "time_unit": params.clv.time_unit,
            "holdout_days": self.holdout_days, "holdout_rule": self.holdout_rule,
            "acquisition_days": self.acquisition_days, "acquisition_rule": self.acquisition_rule,
            "cohort": None if self.calhold is None else len(self.calhold),
            "repeat_buyers_calibration": None if self.calhold is None else int((self.calhold["frequency"] > 0).sum()),
            "min_repeat_buyers": params.clv.min_repeat_buyers,
            "decline_p_alive": params.lifecycle.decline_p_alive,
            "selection_metric": params.clv.selection_metric,  # below it: decline, probably lapsed (stage 08 too)
            "forecast": self.forecast, "forecast_reason": self.forecast_reason,
            "chosen_model": self.cal_fit.label if self.forecast and self.cal_fit else None, "why": self.why,
            "holdout": holdout,
            "params_full_history": self.fit.model.params_.round(6).to_dict() if self.fit else None,
            "gamma_gamma": self.spend.model.params_.round(6).to_dict() if self.spend else None,
            "spend_frequency_correlation": round(self.spend.correlation, 4) if self.spend else None,
            "total_clv": round(float(self.value["clv"].sum()), 2) if self.forecast else None,
            "retention_clv_change": (None if self.retention is None
                                     else self.retention["clv_change"].iloc[1:].round(4).to_dict()),
            "tracking": (None if self.tracking is None else
                         {phase: {k: round(float(v), 2) for k, v in row.items()}
                          for phase, row in tracking_totals(self.tracking).iterrows()}),
            "interval_coverage": coverage_summary(self.coverage),
            "clv_by_month": None if self.per_period is None else self.per_period["value"].round(2).tolist(),
            "new_customer_value": (None if self.new_customer is None else
                                   round(float(self.new_customer["cumulative_value"].iloc[-1]), 4)),
            "new_customer_purchases": (None if self.new_customer is None else
                                       round(float(self.new_customer["cumulative_purchases"].iloc[-1]), 4)),
            "naive_total": None if self.naive is None else round(float(self.naive["total"].iloc[0]), 2),
            "naive_vs_model": (round(float(self.naive["vs_model"].iloc[0]), 3)
                               if self.naive is not None and "vs_model" in self.naive else None),
            "caveats": self.caveats,
            "covariates": None if self.covariates is None else self.covariates.as_json(),
            "spend_fit": self.spend_fit_summary(),  # helpers.stages.value_diagnostics
            "acquisition_value": self.acquisition_summary(),
            "sample": {"customers": len(self.fitted_on), "of": len(self.summary), "rule": sampling.SAMPLE_RULE,
                       "text": self.sample_text} if self.sample_text else None,
        }


def _holdout(params: Any, span: int) -> tuple[int | None, str]:
    days = params.clv.holdout_days
    if days is not None:
        return days, f"clv.holdout_days = {days} (set in the parameters)"
    days = clv.default_holdout_days(span)
    chosen = f"{days} days" if days else "none"
    return days, f"clv.holdout_days not set: {clv.HOLDOUT_RULE}. The log spans {span} days, so the holdout is {chosen}."


def _acquisition(params: Any, span: int) -> tuple[int, str]:
    days = params.lifecycle.acquisition_days
    if days is not None:
        return days, f"lifecycle.acquisition_days = {days} (set in the parameters)"
    days = lifecycle.default_acquisition_days(span)
    return days, (f"lifecycle.acquisition_days not set: {lifecycle.ACQUISITION_RULE}; the log spans {span} days, "
                  f"so {days} days.")


def _calibration(params: Any, days: pd.DataFrame, result: ValueResult, span: int) -> str | None:
    """Set the calibration/holdout split on ``result``; return why there can be no forecast (None: go on)."""
    c = params.clv
    if result.holdout_days is None:
        return (f"the log spans only {span} days (first purchase to as_of {params.as_of}): too short for a "
                f"calibration period and a holdout of at least {clv.HOLDOUT_MIN_DAYS} days, so no model can be "
                "validated. Set clv.holdout_days to force a holdout, or use a longer log.")
    result.calibration_end = params.as_of - dt.timedelta(days=result.holdout_days)
    try:
        result.calhold = clv.calibration_holdout(days, result.calibration_end, params.as_of, c.time_unit)
    except DataError as exc:
        if c.holdout_days is not None:
            raise  # the analyst's own parameter is at fault: the message names it
        return str(exc)
    repeaters = int((result.calhold["frequency"] > 0).sum())
    if repeaters < c.min_repeat_buyers:
        return (f"only {repeaters:,} of the {len(result.calhold):,} customers of the calibration period "
                f"({repeaters / len(result.calhold):.1%}) made a repeat purchase; a BTYD forecast needs at least "
                f"{c.min_repeat_buyers} (clv.min_repeat_buyers) to learn how purchase rates and drop-out vary. "
                "This run reports RFM and spend only: no P(alive), expected purchases or CLV.")
    return None


def _choose_and_refit(params: Any, result: ValueResult) -> str | None:
    """Compare the models on the holdout, refit the best sound one on the full history (next-best on failure)."""
    c = params.clv
    try:
        result.comparison, result.fits = clv.compare_models(result.calhold, c.models, c.penalizers,
                                                            c.selection_metric, c.selection_sample, seed=c.seed)
    except DataError as exc:
        return f"no BTYD model could be fitted soundly on the calibration period. {exc}"
    horizon = c.horizon_months * clv.DAYS_PER_MONTH / clv.UNIT_DAYS[c.time_unit]
    candidates = result.comparison.dropna(subset=[c.selection_metric])
    refused = []
    for position, row in candidates.iterrows():
        full = clv.fit_btyd(row["key"], result.fitted_on, row["penalizer"], seed=c.seed)
        if full.ok and (bad := clv.non_finite_predictions(full, result.summary, horizon)):
            full = clv.Fit(full.name, full.penalizer, None, f"{bad:,} customers get a non-finite prediction",
                           full.attempts)
        if not full.ok:
            refused.append(f"{clv.MODEL_LABELS[row['key']]} (penalizer {row['penalizer']:g}) refitted on the full "
                           f"history: {full.message}")
            continue
        result.choice = (row["key"], row["penalizer"])
        result.fit, result.cal_fit = full, result.fits[result.choice]
        key, pen, why = clv.choose_model(result.comparison.loc[position:], c.selection_metric)
        result.why = why
        if refused:
            result.why = (f"The better model(s) on the holdout could not be used: {'; '.join(refused)}. "
                          f"The next-best sound model is used. {why}")
            result.caveats.append(caveat("refit_fallback", "; ".join(refused) + f"; {full.label} is used instead."))
        return None
    return "no model chosen on the holdout fits the full history soundly: " + "; ".join(refused)


#: The skipped fits a caveat names (the model comparison of notebook 05 lists them all).
SKIPPED_SHOWN = 4


def skipped_caveat(comparison: pd.DataFrame) -> dict[str, str] | None:
    """The caveat ``models_skipped``: how many fits of the model comparison were unsound or unusable, the first
    :data:`SKIPPED_SHOWN` with their reason, and how many more (None when none was skipped).

    >>> rows = pd.DataFrame({"model": ["BG/NBD"] * 6, "penalizer": [0.0, 0.001, 0.01, 0.1, 1.0, 10.0],
    ...                      "status": ["unsound (a boundary)"] * 5 + ["ok"]})
    >>> skipped_caveat(rows)["text"].split("; ")[-2:]
    ['BG/NBD (penalizer 0.1): unsound', "and 1 more (notebook 05's model comparison)."]
    >>> skipped_caveat(rows.head(2))["text"]
    '2 of 2 fits were skipped as unsound or unusable: BG/NBD (penalizer 0): unsound; BG/NBD (penalizer 0.001): unsound.'
    >>> skipped_caveat(rows.tail(1)) is None
    True
    """
    skipped = comparison[comparison["status"].str.startswith(("unsound", "unusable", "did not converge"))]
    if skipped.empty:
        return None
    reasons = "; ".join(f"{r.model} (penalizer {r.penalizer:g}): {r.status.split(' (')[0]}"
                        for r in skipped.head(SKIPPED_SHOWN).itertuples())
    more = len(skipped) - SKIPPED_SHOWN
    return caveat("models_skipped", f"{len(skipped)} of {len(comparison)} fits were skipped as unsound or unusable: "
                                    f"{reasons}" + (f"; and {more} more (notebook 05's model comparison)." if more > 0
                                                    else "."))


def _forecast_caveats(params: Any, result: ValueResult) -> None:
    """Caveats about the forecast that travel with the headline numbers."""
    skipped = skipped_caveat(result.comparison)
    if skipped is not None:
        result.caveats.append(skipped)
    row = result.chosen_row
    rho = row["spearman"]
    if row["actual_total"] < WEAK_HOLDOUT_PURCHASES or not rho >= WEAK_HOLDOUT_RANK_CORRELATION:
        compared = (f"the {int(row['customers']):,} customers compared" if row["customers"] < len(result.calhold)
                    else f"the {len(result.calhold):,} customers of the cohort")
        correlation = f"{rho:.2f}" if np.isfinite(rho) else "undefined (too few holdout purchases to rank)"
        result.caveats.append(caveat(
            "weak_validation",
            f"The model was chosen on a weak holdout: {row['actual_total']:,.0f} purchases by {compared} in "
            f"{result.holdout_days} days, rank correlation {correlation} between predicted and actual purchases. "
            "The choice between models, and the forecast's accuracy, are uncertain."))
    one_time = float((result.summary["frequency"] == 0).mean())
    if result.fit.name == "bgnbd" and one_time > ONE_TIME_CAVEAT_SHARE:
        result.caveats.append(caveat(
            "bgnbd_one_time_p_alive",
            f"{one_time:.0%} of customers bought only once, and BG/NBD gives every one-time buyer P(alive) = 1 "
            "by construction: the share of customers 'probably still active' counts them all."))
    if result.spend is not None and abs(result.spend.correlation) > SPEND_CORRELATION_LIMIT:
        result.caveats.append(caveat(
            "spend_frequency_correlation",
            f"Frequency and spend per purchase correlate ({result.spend.correlation:+.2f}); Gamma-Gamma assumes "
            "they do not, so read CLV as a ranking of customers rather than as money."))


def _spend(result: ValueResult) -> clv.SpendFit | pd.Series:
    """Gamma-Gamma on ``result.summary`` (set as ``result.spend``), or each repeat buyer's own mean with a caveat."""
    try:
        result.spend = clv.fit_spend(result.fitted_on)
        return result.spend
    except DataError as exc:
        result.caveats.append(caveat("no_spend_model", f"Gamma-Gamma could not be fitted ({exc}); spend per "
                                                       "purchase is each repeat buyer's own mean (the repeat "
                                                       "buyers' mean for one-time buyers), without shrinkage."))
        return clv.own_spend(result.summary)


def _example(params: Any, result: ValueResult, days: pd.DataFrame, whole: whole_log.Whole | None) -> None:
    """The customer whose P(alive) history notebook 05 shows (``clv.example_customer`` or a frequent buyer gone).

    Its purchase days come from ``days``, or (a customer outside the sample) from ``whole``'s file.
    """
    c = params.clv
    alive = clv.p_alive(result.fit, result.fitted_on)
    result.example = (privacy.find_customer(result.summary.index, c.example_customer) if c.example_customer
                      else clv.example_customer(result.fitted_on, alive))
    if result.example is not None:
        own = days.loc[days["customer_id"] == result.example, "day"]
        if own.empty and whole is not None:
            own = whole.days_of(result.example)["day"]
        result.example_path = clv.alive_path(result.fit, own, params.as_of, c.time_unit)


def _retention(params: Any, result: ValueResult) -> None:
    """The retention what-if and the naive lifetime value beside the model (:mod:`helpers.clv.retention`).

    Without a forecast only the naive sum (it needs no model): no what-if, nothing to set it beside.
    """
    result.naive = naive_vs_model(result.value, params.clv)
    result.naive_examples = naive_examples(result.value, params.clv, result.example)
    if not result.forecast:
        return
    by_customer = result.spend_by_customer
    new_spend = result.spend.mean_spend if result.spend is not None else float(by_customer.mean())
    result.retention = retention_what_if(result.fit, by_customer, result.fitted_on, params.clv, new_spend)


def _share_ids(customers: pd.DataFrame, *tables: pd.DataFrame | None) -> None:
    """Index ``tables`` (in place) by the customers' own id objects when they hold the same ids in the same order.

    The summaries from SQL carry their own copy of every id; at ten million customers each copy is
    0.6 GB of Python strings, kept for the whole stage.
    """
    ids = pd.Index(customers["customer_id"].to_numpy(), name="customer_id")
    for table in tables:
        if table is not None and table.index is not ids and table.index.equals(ids):
            table.index = ids


def value_customers(params: Any, transactions: pd.DataFrame, customers: pd.DataFrame,
                    whole: whole_log.Whole | None = None, covariates: bool = True) -> ValueResult:
    """Stage 05: validate the BTYD models on a holdout, refit the best sound one, price every customer.

    ``params`` is the run's :class:`helpers.config.Params`; ``transactions``
    the run's purchase days ([customer_id, day, amount], the ``purchase_days``
    artifact) or the clean lines (:func:`helpers.clv.summary.as_purchase_days`
    groups them by day once here; every summary starts from the days); ``customers`` is stage 04's
    table. With ``whole`` (:class:`helpers.summary_sql.Whole`, every customer's aggregates computed in
    SQL) every customer's summaries come from it, and ``transactions`` need only hold the purchase days
    of the sample's customers (:mod:`helpers.sampling`). Data-derived defaults (holdout, acquisition
    window) are resolved here and stated in ``holdout_rule`` / ``acquisition_rule``. With ``covariates`` false
    the covariate analysis is not run but left as a call without arguments in ``pending_covariates``, whose
    result belongs in ``covariates`` (:func:`value` runs it while the tables are written).
    """
    c = params.clv
    days = clv.as_purchase_days(transactions, params.as_of)
    if c.discrete_period is not None:  # one opportunity per period: BG/BB (helpers.stages.value_discrete)
        return importlib.import_module("helpers.stages.value_discrete").value_discrete(params, days, customers)
    span, summary, halves = (whole.summaries(params.as_of, c.time_unit) if whole is not None else
                             (clv.log_span_days(days, params.as_of), clv.btyd_summary(days, params.as_of, c.time_unit),
                              None))
    _share_ids(customers, summary, halves)
    holdout, holdout_rule = _holdout(params, span)
    acquisition, acquisition_rule = _acquisition(params, span)
    result = ValueResult(holdout, holdout_rule, acquisition, acquisition_rule, summary, customers, params=params)
    size = params.scale.sample_customers  # with whole, the days are the sample's already
    fit_summary, fit_days = (whole.rows(summary, size), days) if whole else sampling.sample_customers(summary, days, size)
    result.fit_summary = fit_summary if fit_summary is not summary else None
    reason = _calibration(params, fit_days, result, span)
    if reason is None:
        reason = _choose_and_refit(params, result)
    spend_input: clv.SpendFit | pd.Series | None = None
    if reason is None:
        spend_input = _spend(result)
        _forecast_caveats(params, result)
    else:
        result.forecast_reason = reason
        result.fit = None
        result.caveats.insert(0, caveat("no_forecast", f"No lifetime-value forecast: {reason}"))
    result.value = clv.customer_value(customers, days, summary, result.fit, spend_input, params.as_of, params,
                                      acquisition_days=acquisition, halves=halves)
    if result.forecast:
        bad = int((~np.isfinite(result.value[["p_alive", "expected_purchases", "clv"]].to_numpy())).sum())
        if bad:  # every check above should make this impossible; never publish NaN money
            raise DataError(f"stage 05: {bad} non-finite values in P(alive), expected purchases or CLV "
                            f"from {result.fit.label}; please report this with the parameter file")
        _example(params, result, days, whole)
        from helpers.rfm import load_segment_map
        from helpers.tiers import tier_table

        result.tiers = tier_table(result.value, load_segment_map(params.rfm.segment_map, params.rfm.bins).tiers)
    _retention(params, result)
    if result.forecast and result.cal_fit is not None and result.calibration_end is not None:
        result.tracking = tracking(result.cal_fit, fit_days, result.calibration_end, params.as_of, c.time_unit)
        result.coverage = holdout_coverage(result.cal_fit, result.calhold)
    if result.forecast:
        _per_period(params, result)
    result.pending_covariates = functools.partial(covariate_analysis, params, fit_days, result.value, result)
    if covariates:
        result.covariates, result.pending_covariates = result.pending_covariates(), None
    return result


def _per_period(params: Any, result: ValueResult) -> None:
    """The CLV month by month, per customer and in total, and what one newly acquired customer is expected to bring."""
    c = params.clv
    terms = {"months": c.horizon_months, "unit": c.time_unit, "discount_rate_annual": c.discount_rate_annual,
             "margin": c.margin}
    spend = result.spend_by_customer
    months = periods.value_per_period(result.fit, spend, result.summary, **terms)
    result.months, result.per_period = months, months.total()
    mean_spend = result.spend.mean_spend if result.spend is not None else float(spend.mean())
    result.new_customer = periods.new_customer_value(result.fit, mean_spend, **terms)


def save_tables(catalog: Any, result: ValueResult) -> dict[str, Path]:
    """Write stage 05's tables: the customer table, the tracking and the value per period."""
    from helpers.rfm import save_customers

    written = {"customers": save_customers(catalog, result.value, "customers")}
    if result.tracking is not None:
        written["tracking"] = catalog.write_parquet("tracking", result.tracking)
    if result.months is not None:  # a row group at a time: the customers x months table is never whole in memory
        written["value_per_period"] = store.write_parquet_parts(
            result.months.wide_parts(result.period_name, store.PARQUET_ROW_GROUP), catalog.path("value_per_period"))
    return written


def save_value(params: Any, catalog: Any, result: ValueResult, tables: bool = True) -> dict[str, Path]:
    """Write stage 05's artifacts: the customer table, ``clv_validation.json`` and ``model_comparison.csv``."""
    written = save_tables(catalog, result) if tables else {}
    written["validation"] = catalog.write_json("clv_validation", result.validation(params))
    comparison = result.comparison if result.comparison is not None else pd.DataFrame(columns=["model", "status"])
    written["comparison"] = catalog.write_text("model_comparison", comparison.to_csv(index=False))
    return written


def value(params: Any, catalog: Any) -> ValueResult:
    """Stage 05 in one call: summarise stage 04's purchase days, read its customers, price them, write the artifacts.

    Every customer's summary comes from SQL (:mod:`helpers.summary_sql`), only the sample's days into pandas.
    """
    from helpers.rfm import load_customers

    whole = (None if params.clv.discrete_period is not None  # first: DuckDB's memory is free before the customers
             else whole_log.Whole.of(catalog.require("purchase_days", "04-rfm-value-tiers"), params.as_of))
    days = (read_purchase_days(catalog, ["amount"]) if whole is None
            else whole.fit_days(params.scale.sample_customers, ["amount"]))
    if whole is not None:  # the summaries before the customers are read: the aggregates are freed first
        whole.summaries(params.as_of, params.clv.time_unit)
    result = value_customers(params, days, load_customers(catalog, "customers_rfm"), whole, covariates=False)
    if result.pending_covariates is None:  # BG/BB (clv.discrete_period): no covariate analysis
        result.written = save_value(params, catalog, result)
        return result
    # the covariates' fits run on a thread while the tables are written (Arrow writes outside Python's lock): at a
    # million customers both took 3.2 s together, 4.9-5.4 s one after the other (writes 2.3-2.7 s, fits 2.6-2.7 s)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="clv-covariates") as pool:
        analysis = pool.submit(result.pending_covariates)
        written = save_tables(catalog, result)
        result.covariates, result.pending_covariates = analysis.result(), None
    result.written = written | save_value(params, catalog, result, tables=False)
    return result
