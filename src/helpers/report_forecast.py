"""The report's forecast sections: how sure the CLV is, the tracking plot, value month by month, a new customer.

Read from stage 05's artifacts (the customer table's interval columns, ``tracking``,
``value_per_period`` and ``clv_validation.json``), never recomputed: stage 08
(:mod:`helpers.stages.report`) puts :func:`sections` into its result and writes
:func:`month_export` beside the customer export. Every sentence is a template
translated first and filled afterwards (``t``); without a forecast each section
says why it is absent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from helpers.catalog import Catalog
from helpers.clv.intervals import tier_uncertainty
from helpers.privacy import in_key_order, pseudonymize, taken
from helpers.report import top_rows

Translate = Callable[[str], str]

#: Stage 05's column of month ``m``'s discounted value per customer (``value_per_period``, the month export).
MONTH_COLUMN = "clv_month_{:02d}"
#: How many of the most valuable customers the report lists with their 80% interval.
TOP_CUSTOMERS = 10
#: Why a section is absent (this run made no forecast).
NO_INTERVALS = ("No intervals: how sure the predicted value is needs a forecast, and this run made none (see the note "
                "above).")
NO_TRACKING = ("No tracking plot: it compares the model's expected repeat purchases with the actual ones, and this run "
               "made no forecast (see the note above).")
NO_MONTHS = ("No value month by month and no value of a new customer: both come from the forecast, and this run "
             "made none (see the note above).")
FLAT = ("No intervals: the fitted model's likelihood is flat at its optimum, so the uncertainty of its parameters "
        "cannot be estimated (notebook 05 says more).")


def _same(text: str) -> str:
    return text


def month_columns(months: int) -> list[str]:
    """The month columns of a horizon of ``months`` months.

    >>> month_columns(2)
    ['clv_month_01', 'clv_month_02']
    """
    return [MONTH_COLUMN.format(m) for m in range(1, months + 1)]


def month_export(catalog: Catalog, forecast: bool, months: int, raw_ids: bool = False,
                 keys: pd.Series | None = None, order: np.ndarray | None = None) -> pd.DataFrame:
    """The discounted value per customer and month (stage 05's ``value_per_period``), keyed pseudonymously.

    Columns ``customer_key`` (and ``customer_id`` after it only when ``raw_ids``), then one column per
    month of the horizon; sorted by key like the customer export. Without a forecast (or an older run
    without the artifact) the table is empty but keeps its columns, so the report folder always holds it.
    ``keys`` (``customer_key`` by ``customer_id``: the customer export's) saves hashing the ids again;
    with ``order`` too (:func:`helpers.report.export_in_key_order`: the export's rows in stage 05's
    customers; ``keys`` must then be in the export's row order, as stage 08 makes them) and the months
    listing the same customers in the same order (as stage 05 writes them),
    the months are put in the export's order without reading their ids into pandas or looking them up.
    """
    key_columns = ["customer_key"] + (["customer_id"] if raw_ids else [])
    if not forecast or not catalog.exists("value_per_period"):
        return pd.DataFrame({c: pd.Series(dtype=object if c in key_columns else float)
                             for c in key_columns + month_columns(months)})
    meta = pq.read_metadata(catalog.path("value_per_period"))
    if keys is not None and order is not None and len(keys) == len(order) == meta.num_rows and \
            _same_customers(catalog, "value_per_period", "customers"):
        names = [c for c in meta.schema.to_arrow_schema().names if c.startswith("clv_month_")]
        wide = catalog.read_parquet("value_per_period", names)
        out = pd.DataFrame({"customer_key": keys.to_numpy()})
        if raw_ids:
            out["customer_id"] = keys.index.to_numpy()
        return taken(out, wide, names, order)
    wide = catalog.read_parquet("value_per_period")
    known = None if keys is None else keys.reindex(wide["customer_id"].astype(str))
    key = pseudonymize(wide["customer_id"]) if known is None or known.isna().any() else known  # by position
    del known
    return in_key_order(key, wide, key_columns[1:] + [c for c in wide.columns if c.startswith("clv_month_")])


def _same_customers(catalog: Catalog, name: str, other: str) -> bool:
    """Whether the artifacts ``name`` and ``other`` list the same ``customer_id`` in the same order (Arrow: no
    Python strings)."""
    ids = [pq.read_table(catalog.path(n), columns=["customer_id"])["customer_id"] for n in (name, other)]
    return ids[0].type == ids[1].type and ids[0].equals(ids[1])


def month_totals(months: pd.DataFrame) -> pd.DataFrame | None:
    """The cohort's discounted value per month (1 .. horizon) and accumulated (``None`` when the table is empty)."""
    values = months[[c for c in months.columns if c.startswith("clv_month_")]]
    if values.empty:
        return None
    out = pd.DataFrame({"value": values.sum().to_numpy()}, index=pd.RangeIndex(1, values.shape[1] + 1, name="month"))
    out["cumulative_value"] = out["value"].cumsum()
    return out


def uncertainty_text(export: pd.DataFrame, potential_high_share: float, forecast: bool, t: Translate = _same,
                     coverage: dict[str, Any] | None = None) -> str:
    """How wide the CLV intervals typically are (80%, 95%), how many customers could change tier within them,
    and (``coverage``: ``interval_coverage`` of ``clv_validation.json``) how they did on the holdout."""
    if not forecast:
        return t(NO_INTERVALS)
    u = tier_uncertainty(export, potential_high_share)
    if u is None:
        return t(FLAT)
    return t("Predicted values are estimates. Counting the uncertainty of the model's fitted parameters (the chance "
             "in each customer's future purchases comes on top), a customer's 80% interval is typically {w80:.0%} "
             "of their CLV wide, the 95% interval {w95:.0%}. Within their 80% interval, {n80:,} of {n:,} customers "
             "({share:.1%}) could cross the line between high and low predicted value (CLV {cut:,.2f}) and so "
             "change value tier; within the 95% interval, {n95:,} could. The table lists the {top} customers with "
             "the highest CLV and their 80% interval.").format(
        w80=u["width"][80], w95=u["width"][95], n80=u["changes"][80], n95=u["changes"][95], n=u["customers"],
        share=u["changes"][80] / max(u["customers"], 1), cut=u["cut"], top=TOP_CUSTOMERS) + (
        "" if not coverage else " " + t(
            "Checked on the holdout: of the {groups} groups of customers by repeat purchases in calibration, the "
            "actual holdout purchases of {in80} lie inside the calibration fit's 80% interval and of {in95} inside "
            "its 95% interval (with the purchases' own noise).").format(
            groups=coverage["groups"], in80=coverage["inside"]["80"], in95=coverage["inside"]["95"]))


def top_customers(export: pd.DataFrame, forecast: bool, top: int = TOP_CUSTOMERS) -> pd.DataFrame | None:
    """The ``top`` customers by CLV with its 80% interval, tier and P(alive) (``None`` without intervals)."""
    columns = ["customer_key", "value_tier", "clv", "clv_low_80", "clv_high_80", "p_alive"]
    if not forecast or any(c not in export for c in columns) or export["clv_low_80"].isna().all():
        return None
    return top_rows(export, "clv", top)[columns]


def tracking_text(clv_check: dict[str, Any], as_of: dt.date, forecast: bool, t: Translate = _same) -> str:
    """One paragraph on the tracking plot: whom it follows, and the holdout's repeat purchases made vs expected."""
    holdout = (clv_check.get("tracking") or {}).get("holdout")
    if not forecast or not holdout:
        return t(NO_TRACKING)
    days = (as_of - pd.Timestamp(clv_check["calibration_end"]).date()).days
    phases = clv_check["tracking"].values()
    made, due = (sum(float(p[k]) for p in phases) for k in ("actual", "expected"))
    by_unit = t("week by week") if clv_check.get("time_unit", "W") == "W" else t("day by day")
    return t("The figure follows the {cohort:,} customers who first bought by {end}, {by_unit}, against what "
             "{model} expects of such a group from their first purchase on (without each customer's history, "
             "which the paragraph above uses). In the {days} days after the calibration they made {actual:,.0f} "
             "repeat purchases; the model expected {expected:,.0f} ({error:+.1f}%). Over both periods, {made:,.0f} "
             "were made and {due:,.0f} expected ({total_error:+.1f}%, the right panel).").format(
        cohort=int(clv_check.get("cohort") or 0), end=clv_check["calibration_end"], by_unit=by_unit,
        model=model_family(clv_check), days=days, actual=holdout["actual"], expected=holdout["expected"],
        error=holdout["error_pct"], made=made, due=due, total_error=100 * (due - made) / max(made, 1))


def model_family(clv_check: dict[str, Any]) -> str:
    """The chosen model's family, without its penalizer ("Pareto/NBD (penalizer 0)" -> "Pareto/NBD").

    >>> model_family({"chosen_model": "Pareto/NBD (penalizer 0)"}), model_family({})
    ('Pareto/NBD', 'model')
    """
    return str(clv_check.get("chosen_model") or "model").split(" (")[0]


def months_text(totals: pd.DataFrame | None, t: Translate = _same) -> str:
    """The cohort's value month by month: the total over the horizon, the first and the last month."""
    if totals is None:
        return t(NO_MONTHS)
    return t("Month by month, the {total:,.0f} of value predicted over the next {months} months (discounted): month 1 "
             "brings {first:,.0f}, month {last_month} {last:,.0f}. The value fades as customers drop out, and with the "
             "discount.").format(total=totals["cumulative_value"].iloc[-1], months=len(totals), last_month=len(totals),
                                 first=totals["value"].iloc[0], last=totals["value"].iloc[-1])


def new_customer_text(clv_check: dict[str, Any], months: int, margin: float, forecast: bool,
                      t: Translate = _same) -> str:
    """What one newly acquired customer is expected to bring over the horizon: the ceiling on acquiring one."""
    value = clv_check.get("new_customer_value")
    if not forecast or value is None:
        return ""  # said with the months (NO_MONTHS)
    purchases = clv_check.get("new_customer_purchases")
    worth = (t("A newly acquired customer like these is expected to make {purchases:.2f} repeat purchases worth "
               "{value:,.2f} over the same {months} months") if purchases is not None
             else t("A newly acquired customer like these is expected to bring {value:,.2f} over the same {months} "
                    "months")).format(purchases=purchases, value=value, months=months)
    ceiling = (t("the most it is worth spending to acquire one, before margins") if margin >= 1
               else t("the most it is worth spending to acquire one, at a margin of {margin:.0%}").format(margin=margin))
    return t("{worth} (the model's forecast for a customer with no history yet, at the average spend per "
             "purchase): {ceiling}; the first order comes on top.").format(worth=worth, ceiling=ceiling)


def sections(params: Any, export: pd.DataFrame, months: pd.DataFrame, clv_check: dict[str, Any],
             tracking: pd.DataFrame | None, forecast: bool, t: Translate = _same) -> dict[str, Any]:
    """The fields of stage 08's result for the forecast sections (:class:`helpers.stages.report.ReportResult`)."""
    totals = month_totals(months) if forecast else None
    return {
        "uncertainty": uncertainty_text(export, params.tiers.potential_high_share, forecast, t,
                                        clv_check.get("interval_coverage")),
        "top_clv": top_customers(export, forecast),
        "tracking": tracking if forecast else None, "tracking_text": tracking_text(clv_check, params.as_of, forecast, t),
        "model_label": model_family(clv_check), "unit_name": "week" if params.clv.time_unit == "W" else "day",
        "by_month": totals, "months_text": months_text(totals, t),
        "new_customer_text": new_customer_text(clv_check, params.clv.horizon_months, params.clv.margin, forecast, t),
    }
