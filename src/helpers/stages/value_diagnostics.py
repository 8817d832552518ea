"""What notebook 05 shows of the diagnostics and of the value per acquisition cohort: one method each.

:class:`DiagnosticViews` is a mixin of :class:`helpers.stages.value_views.ValueViews`
(so of :class:`helpers.stages.value.ValueResult`): the holdout purchases by
calibration frequency and recency, the Gamma-Gamma spend check
(:mod:`helpers.clv.diagnostics`) and the value of the customers acquired per
month and country (:mod:`helpers.clv.cohorts`), built from the result's fields.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from helpers.clv import cohorts, diagnostics

#: A country's customers are compared in the acquisition reading when it has at least this many.
MIN_COUNTRY_CUSTOMERS = 10
#: The recency reading looks for the largest gap among groups of at least this many customers (all, if none).
MIN_GROUP_CUSTOMERS = 30


class DiagnosticViews:
    """Diagnostics and acquisition-cohort value of a stage 05 result (fields: see ``ValueResult``)."""

    params: Any
    forecast: bool

    def holdout_predicted(self) -> pd.Series | None:
        """The chosen calibration fit's expected holdout purchases per cohort customer (None without a forecast)."""
        from helpers import clv

        if not self.forecast:
            return None
        return clv.expected_purchases(self.cal_fit, self.calhold, self.calhold["duration_holdout"].iloc[0])

    def holdout_by(self) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """Mean holdout purchases, actual vs the model, by calibration frequency and by recency (None: no forecast).

        Computed once (the notebook's text and figure both read them), each call given its own copies.
        """
        tables = self._holdout_tables
        return None if tables is None else (tables[0].copy(), tables[1].copy())

    @cached_property
    def _holdout_tables(self) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """:meth:`holdout_by`'s tables, computed on first use."""
        predicted = self.holdout_predicted()
        if predicted is None:
            return None
        return (diagnostics.holdout_by_frequency(self.calhold, predicted),
                diagnostics.holdout_by_recency(self.calhold, predicted))

    def spend_check(self) -> diagnostics.SpendCheck | None:
        """The fitted Gamma-Gamma against the repeat buyers' mean spend (None: no spend model)."""
        if self.spend is None:
            return None
        return diagnostics.spend_check(self.summary, self.spend.model.params_.to_dict())

    def diagnostics_text(self) -> str:
        """Where the holdout by recency departs most from the model, and how well Gamma-Gamma fits the spend."""
        tables = self.holdout_by()
        if tables is None:
            return "No diagnostics: there is no sound forecast in this run."
        recency = tables[1]
        enough = recency[recency["customers"] >= MIN_GROUP_CUSTOMERS]
        enough = enough if not enough.empty else recency
        worst = (enough["model"] - enough["actual"]).abs().idxmax()
        row = enough.loc[worst]
        side = "overstates" if row["model"] > row["actual"] else "understates"
        text = (f"By calibration recency ({self.unit_name}; one-time buyers apart), the largest gap between the model "
                f"and the holdout is in group {worst}: {row['actual']:.2f} purchases per customer made, "
                f"{row['model']:.2f} expected ({int(row['customers']):,} customers): the model {side} what these "
                "customers buy next.")
        check = self.spend_check()
        return text + "\n" + (check.text() if check is not None else "No Gamma-Gamma fit: no spend check.")

    def spend_fit_summary(self) -> dict[str, Any] | None:
        """The spend check in ``clv_validation.json``: KS distance, critical value, fit, median and 90% quantiles."""
        check = self.spend_check()
        if check is None:
            return None
        q = check.quantiles.round(2)
        return {"ks": round(check.ks, 4), "critical_5pct": round(check.critical, 4), "fits": check.fits,
                "quantiles_actual": {str(k): float(v) for k, v in q["actual"].items()},
                "quantiles_model": {str(k): float(v) for k, v in q["model"].items()}}

    # --- the value of the customers acquired, per month and country (helpers.clv.cohorts) ------------------

    def acquisition_tables(self) -> dict[str, pd.DataFrame] | None:
        """Customers, mean spend so far, mean CLV and their sum per acquisition month (and country).

        Without a forecast the CLV columns are missing (NaN) and the spend so far stands.
        """
        if "first_purchase" not in self.value or self.value.empty:
            return None
        return {name: table.copy() for name, table in self._acquisition.items()}  # computed once: 4 s at 10M

    @cached_property
    def _acquisition(self) -> dict[str, pd.DataFrame]:
        """:meth:`acquisition_tables`' tables, computed on first use."""
        ceiling = np.nan if self.new_customer is None else float(self.new_customer["cumulative_value"].iloc[-1])
        return cohorts.acquisition_tables(self.value, ceiling)

    def acquisition_table(self) -> pd.DataFrame | None:
        """:meth:`acquisition_tables` as one table, indexed by (month or country, group), rounded to cents."""
        tables = self.acquisition_tables()
        return None if tables is None else pd.concat(tables, names=["by", "group"]).round(2)

    def acquisition_text(self) -> str:
        """How many acquisition months (and countries) the customers fall in, and the oldest cohort beside the newest."""
        tables = self.acquisition_tables()
        if tables is None:
            return "No customers: no acquisition cohorts."
        months = tables["month"]
        where = (f"{len(months)} acquisition month(s) from {months.index[0]} to {months.index[-1]}"
                 + (f", {len(tables['country'])} countries" if "country" in tables else " (no country in the log)"))
        if not self.forecast:
            return (f"{where}: customers and their mean spend so far only; CLV and the value of a new customer "
                    "need a sound forecast, and this run has none (see above).")
        ceiling = float(months["new_customer_value"].iloc[0])
        first, last = months.iloc[0], months.iloc[-1]
        text = (f"{where}. Customers acquired in {months.index[0]} have spent {first['spend_so_far']:,.2f} each so far and "
                f"are expected to bring {first['clv']:,.2f} more over {self.params.clv.horizon_months} months")
        if len(months) > 1:
            text += (f"; those of {months.index[-1]}, {last['spend_so_far']:,.2f} so far and {last['clv']:,.2f} "
                     "to come")
        text += (f". A customer acquired today: at most {ceiling:,.2f} from repeat purchases over the same horizon "
                 "(the model has no covariates: the same for every month and country).")
        if len(months) <= 3:
            first_days = pd.to_datetime(self.value["first_purchase"])
            weeks = (first_days.max() - first_days.min()).days / 7
            text += (f" This log's customers were all acquired within {weeks:.0f} weeks ({len(months)} calendar "
                     "month(s)): one cohort, so the months compare customers acquired weeks apart, not seasons or "
                     "campaigns.")
        if "country" in tables:
            top = tables["country"]
            best = top[top["customers"] >= MIN_COUNTRY_CUSTOMERS]
            if len(best) > 1:
                leader = best["value_so_far_plus_clv"].idxmax()
                text += (f" Among the {len(best)} countries with at least {MIN_COUNTRY_CUSTOMERS} customers, {leader}'s "
                         f"are worth most: {best.loc[leader, 'value_so_far_plus_clv']:,.2f} each so far plus CLV.")
        return text

    def acquisition_summary(self) -> dict[str, Any] | None:
        """The tables of :meth:`acquisition_tables`, compact, for ``clv_validation.json``."""
        tables = self.acquisition_tables()
        return None if tables is None else {by: cohorts.compact(table) for by, table in tables.items()}
