"""What notebook 05 shows of stage 05's result: its sentences and tables, one method each.

:class:`ValueViews` is a mixin of :class:`helpers.stages.value.ValueResult`:
every sentence and table the notebook prints comes from a method here, built
from the result's fields (and the run's parameters it keeps), so the
notebook holds no wrangling and the tests can check what it shows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from helpers import clv, lifecycle, privacy, sampling
from helpers.stages.value_diagnostics import DiagnosticViews


def headline(reason: str | None) -> str:
    """The first sentence of a long reason (why there is no forecast), for the places that refer back to it.

    >>> headline("no model could be fitted. no model:\\n - BG/NBD: unsound")
    'no model could be fitted'
    """
    return str(reason).split(". ")[0].split(":\n")[0].rstrip(".:")


class ValueViews(DiagnosticViews):
    """Sentences and tables of a stage 05 result (see :class:`helpers.stages.value.ValueResult` for the fields)."""

    params: Any
    forecast: bool

    @property
    def fitted_on(self) -> pd.DataFrame:
        """The summary of the customers the models are compared, fitted and checked on (all, or the sample)."""
        return self.summary if self.fit_summary is None else self.fit_summary

    @property
    def spend_by_customer(self) -> pd.Series:
        """Each customer's expected spend per purchase, by customer id (without copying the customer table)."""
        return pd.Series(self.value["expected_spend"].to_numpy(), index=pd.Index(self.value["customer_id"],
                         name="customer_id"), name="expected_spend")

    @property
    def sample_text(self) -> str:
        """One sentence when the models were fitted on a sample (:mod:`helpers.sampling`; empty otherwise)."""
        return sampling.sample_note(len(self.fitted_on), len(self.summary),
                                    "models compared, fitted and checked (holdout, tracking, covariates, "
                                    "retention what-if)")

    # --- what notebook 05 shows: sentences and tables from this result ----------------------------

    @property
    def unit_name(self) -> str:
        """The model's time unit in words."""
        return {"D": "days", "W": "weeks"}[self.params.clv.time_unit]

    def interval_text(self) -> str:
        """How sure the CLV is: the typical width of its 80% interval, and the customers whose tier could change."""
        from helpers.clv.intervals import tier_uncertainty

        u = tier_uncertainty(self.value, self.params.tiers.potential_high_share) if self.forecast else None
        if u is None:
            return "No intervals: " + ("no sound forecast in this run." if not self.forecast else
                                       "the fit's likelihood is flat at its optimum (no covariance of the parameters).")
        return (f"Intervals from the uncertainty of the fitted parameters (the delta method; the randomness of future "
                f"purchases comes on top): a customer's 80% CLV interval is typically {u['width'][80]:.0%} of the "
                f"estimate wide. Within their 80% (95%) intervals, {u['changes'][80]:,} ({u['changes'][95]:,}) of "
                f"{u['customers']:,} customers could cross the high-potential cut (CLV {u['cut']:,.2f}) and change "
                "value tier." + self.coverage_text())

    def coverage_text(self) -> str:
        """The holdout check of the intervals: how many groups' actual holdout purchases lie inside them."""
        from helpers.clv.intervals import coverage_summary

        check = coverage_summary(getattr(self, "coverage", None))
        if check is None:
            return ""
        inside = check["inside"]
        return (f" Checked on the holdout: of the {check['groups']} groups of customers by repeat purchases in "
                f"calibration (0 ... 7+), the actual holdout purchases of {inside['80']} lie inside the calibration "
                f"fit's 80% interval and of {inside['95']} inside its 95% interval (parameter uncertainty plus the "
                "purchases' own Poisson noise, a lower bound on it).")

    def period_text(self) -> str:
        """The CLV month by month: the first and last month's value, and what one new customer would bring."""
        if self.per_period is None:
            return "No value per month: there is no sound forecast in this run."
        t, new = self.per_period, self.new_customer
        return (f"Month 1 brings {t['value'].iloc[0]:,.0f} of the {t['cumulative_value'].iloc[-1]:,.0f} predicted over "
                f"{len(t)} months, month {len(t)} {t['value'].iloc[-1]:,.0f}: the value fades as customers drop out "
                f"(and with the discount). One newly acquired customer like these is expected to make "
                f"{new['cumulative_purchases'].iloc[-1]:.2f} repeat purchases worth {new['cumulative_value'].iloc[-1]:,.2f} "
                "over the same horizon: the most it is worth spending to acquire one, before the first order's margin.")

    def period_table(self) -> pd.DataFrame | None:
        """The cohort's and one new customer's expected purchases and discounted value per month."""
        if self.per_period is None:
            return None
        new = self.new_customer[["expected_purchases", "value"]].add_prefix("new customer: ")
        return self.per_period.join(new).round(2)

    def tracking_text(self) -> str:
        """The tracking figure's totals: the cohort's repeat purchases, actual vs the calibration fit, per phase."""
        if self.tracking is None:
            return "No tracking: there is no sound forecast in this run."
        from helpers.clv.tracking import tracking_totals

        t = tracking_totals(self.tracking)
        return "\n".join(f"{phase}: {row['actual']:,.0f} repeat purchases made, {row['expected']:,.0f} expected by "
                          f"{self.cal_fit.label} ({row['error_pct']:+.1f}%)" for phase, row in t.iterrows())

    def overview(self) -> str:
        """Time unit, holdout rule, calibration period and whether there is a forecast."""
        lines = [f"time unit: {self.unit_name}", f"holdout: {self.holdout_rule}"]
        if self.sample_text:
            lines.append(f"sample: {self.sample_text}; every customer is priced by the fitted model")
        if self.calibration_end:
            lines.append(f"calibration: up to {self.calibration_end}; holdout: {self.calibration_end} to "
                         f"{self.params.as_of}")
        return "\n".join(lines) + "\n\nforecast: " + ("yes" if self.forecast else f"NO. {self.forecast_reason}")

    def cohort_text(self) -> str:
        """The calibration cohort: customers, repeat buyers against the minimum, holdout purchases."""
        if self.calhold is None:
            return "no calibration period (see above)"
        cal, repeaters = self.calhold, int((self.calhold["frequency"] > 0).sum())
        return (f"cohort: {len(cal):,} customers; {repeaters:,} ({repeaters / len(cal):.1%}) made a repeat purchase "
                f"in calibration (a forecast needs {self.params.clv.min_repeat_buyers}, clv.min_repeat_buyers); "
                f"{int(cal['frequency_holdout'].sum()):,} purchases in the holdout")

    def cohort_description(self) -> pd.DataFrame | None:
        """``describe()`` of the calibration/holdout summary, one row per column (None: no calibration)."""
        return None if self.calhold is None else self.calhold.describe().T.round(2)

    def comparison_table(self) -> pd.DataFrame | None:
        """The model comparison as shown (without the internal model key)."""
        return None if self.comparison is None else self.comparison.drop(columns=["key"])

    def choice_text(self) -> str:
        """Why the model was chosen, or why none is used."""
        return f"Chosen: {self.why}" if self.forecast else f"No model is used: {self.forecast_reason}"

    def deciles(self) -> pd.DataFrame | None:
        """The chosen calibration fit's decile table on the holdout (None without a forecast)."""
        predicted = self.holdout_predicted()
        return None if predicted is None else clv.decile_table(predicted, self.calhold["frequency_holdout"])

    def refit_text(self) -> str:
        """The full-history fit: its status, parameters and log-likelihood."""
        if not self.forecast:
            return "no refit: no forecast"
        fit = self.fit
        return (f"{fit.label}: {fit.message}; parameters {fit.model.params_.round(4).to_dict()}; "
                f"log-likelihood {clv.log_likelihood(fit, self.fitted_on):,.1f}")

    def spend_text(self) -> str:
        """The Gamma-Gamma fit in sentences (what it used, the independence check, its parameters)."""
        if self.spend is None:
            return "Gamma-Gamma: not fitted" + ("" if self.forecast else " (no forecast)")
        return "\n".join(self.spend.describe())

    def value_text(self) -> str:
        """The horizon, margin and discount, with the total predicted value and purchases."""
        c = self.params.clv
        if not self.forecast:
            return "no CLV without a forecast; the largest customers by spend so far:"
        return (f"horizon {c.horizon_months} months, margin {c.margin:.0%}, discount {c.discount_rate_annual:.0%} a "
                f"year: total predicted value {self.value['clv'].sum():,.0f}; expected purchases "
                f"{self.value['expected_purchases'].sum():,.0f}")

    def shown(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` as a notebook may show it: pseudonymous keys unless ``privacy.raw_ids``."""
        return privacy.shown_ids(table, self.params.privacy.raw_ids)

    def top_customers(self) -> pd.DataFrame:
        """The ten customers with the highest CLV (without a forecast: the highest spend so far)."""
        return self.shown(clv.top_customers(self.value, self.forecast))

    def tier_table(self) -> Any:
        """The pyramid's tier table, formatted (None without a forecast)."""
        if self.tiers is None:
            return None
        return self.tiers.style.format({"revenue_share": "{:.1%}", "clv_share": "{:.1%}", "mean_clv": "{:,.1f}",
                                        "mean_p_alive": "{:.2f}"})

    @property
    def stars(self) -> pd.DataFrame:
        """Tomorrow's stars: class-C customers among the top ``tiers.potential_high_share`` by CLV."""
        from helpers.tiers import tomorrows_stars

        return tomorrows_stars(self.value, self.params.tiers.potential_high_share)

    def stars_text(self) -> str:
        """How many ordinary customers are tomorrow's stars."""
        if not self.forecast:
            return "no forecast: tomorrow's stars need predicted value"
        from helpers.tiers import is_star

        share = self.params.tiers.potential_high_share
        stars = int(is_star(self.value, share).sum())
        return (f"{stars:,} ordinary (C) customers are among the top {share:.0%} by predicted CLV "
                f"({stars / max(1, (self.value['abc_class'] == 'C').sum()):.1%} of class C); the ten with the "
                "most potential:")

    def stars_table(self) -> pd.DataFrame | None:
        """The ten stars with the most potential (None without a forecast)."""
        if not self.forecast:
            return None
        from helpers.tiers import tomorrows_stars

        columns = ["customer_id", "abc_class", "monetary_total", "clv", "value_tier"]
        return self.shown(tomorrows_stars(self.value, self.params.tiers.potential_high_share, top=10)[columns].round(2))

    # --- retention economics and the naive sum (helpers.clv.retention) ---------------------------------

    def retention_text(self) -> str:
        """Which model's drop-out the what-if scales, and what the what-if is (or why there is none)."""
        from helpers.clv.retention import LONG_HORIZON_MONTHS, drop_out_text

        if not self.forecast:
            return f"no retention what-if: there is no sound forecast ({headline(self.forecast_reason)}; see above)"
        c = self.params.clv
        return (f"model: {drop_out_text(self.fit)}.\nEach row lowers that mean by the cut (fewer drop-outs) and "
                f"prices every customer again over {c.horizon_months} months with the same purchase rates, spend, "
                f"margin and discount; new_customer_clv is a customer acquired today (over {c.horizon_months} "
                f"months and over {LONG_HORIZON_MONTHS} months). A what-if on the fitted population, not a causal "
                "estimate: it says what the value would be if customers like these dropped out less, not what a "
                "retention campaign would achieve.")

    def retention_table(self) -> Any:
        """The what-if table, formatted (None without a forecast)."""
        if self.retention is None:
            return None
        table = self.retention.drop(columns=["cut"])
        changes = [c for c in table.columns if c.endswith("_change")]
        return table.style.format({"mean_drop_out": "{:.4f}", "expected_purchases": "{:,.0f}",
                                   "total_clv": "{:,.0f}", "new_customer_clv": "{:,.2f}",
                                   "new_customer_clv_long": "{:,.2f}"} | {c: "{:+.1%}" for c in changes})

    def naive_text(self) -> str:
        """The naive lifetime value's formula, and what it leaves out."""
        from helpers.clv.retention import NAIVE_FORMULA

        text = (f"{NAIVE_FORMULA}; horizon {self.params.clv.horizon_months} months.\nIt assumes nobody drops out "
                "and counts future money at face value")
        if not self.forecast:
            return (text + ". There is no sound model to set it beside (no forecast, see above), so nothing here "
                    "says how much of it is drop-out: the naive sum, discounted, and a few customers:")
        return text + ("; the model's CLV does neither. From the naive sum to the model, step by step (vs_model: "
                       "times the model's CLV), then a few customers:")

    def naive_table(self) -> Any:
        """The four totals from the naive sum to the model's CLV, formatted (None without a forecast)."""
        if self.naive is None:
            return None
        return self.naive.style.format({"total": "{:,.0f}"} | ({"vs_model": "{:.2f}x"} if self.forecast else {}))

    def naive_examples_table(self) -> pd.DataFrame | None:
        """A few customers, naive value beside the model's CLV, keys as the notebook may show them."""
        return None if self.naive_examples is None else self.shown(self.naive_examples)

    def lifecycle_text(self) -> str:
        """The lifecycle rule with this run's thresholds and where the acquisition window comes from."""
        text = (lifecycle.lifecycle_rule(self.params.lifecycle.model_dump(), self.acquisition_days)
                + f"\n\n({self.acquisition_rule})")
        if not self.forecast:
            text += ("\nWithout a forecast P(alive) is unknown: the rules that use it do not apply, so nobody is in "
                     "termination.")
        return text

    def lifecycle_table(self) -> pd.DataFrame:
        """Customers per lifecycle stage (with a forecast: mean P(alive), mean CLV, CLV share)."""
        return lifecycle.lifecycle_table(self.value, self.forecast)

    def caveat_text(self) -> str:
        """The caveats as a list, or that there are none."""
        if not self.caveats:
            return "- nothing: the holdout is informative and the chosen model's assumptions hold"
        return "\n".join(f"- {item['text']}" for item in self.caveats)

    def written_text(self) -> str:
        """The artifacts the stage wrote."""
        from helpers.paths import shown

        return "written: " + ", ".join(shown(p) for p in self.written.values()) + " (view 'customers' in the DuckDB database)"
