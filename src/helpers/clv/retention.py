"""Retention economics and the naive lifetime value: what-ifs on the fitted model, beside the sum a spreadsheet makes.

**Retention what-if** (:func:`retention_what_if`). Every BTYD model has a
population drop-out propensity, and lowering it is what "retention" means:

- BG/NBD and MBG/NBD: after each purchase a customer drops out with
  probability p, p ~ Beta(a, b) across customers, mean a / (a + b). "x% fewer
  drop-outs" scales that mean by (1 - x) and keeps a + b (how much customers
  differ): a' = (1 - x) a, b' = a + b - a';
- Pareto/NBD: a customer drops out at rate mu per time unit, mu ~ Gamma(s,
  beta), mean s / beta: beta' = beta / (1 - x) (the shape s, the spread, stays).

The purchase-rate parameters (r, alpha), every customer's history and spend
per purchase, the horizon, margin and discounting stay as fitted, and every
customer's CLV is computed again (:func:`helpers.clv.value.lifetime_value`),
so each customer's own evidence of being alive still counts. It is a what-if
on the fitted population, not a causal estimate: it says what the value would
be if customers of this kind dropped out less, not what a campaign would achieve.

**Naive lifetime value** (:func:`naive_value`): :data:`NAIVE_FORMULA`. It
assumes every customer keeps buying at their past rate for the whole horizon
(nobody drops out) and counts future money at face value (no discounting).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from helpers.clv.models import MODEL_LABELS, BTYDModel
from helpers.clv.periods import new_customer_ceiling
from helpers.clv.value import lifetime_value

#: The what-if cuts of the population drop-out propensity (0.05: 5% fewer drop-outs).
DROP_OUT_CUTS = (0.05, 0.10, 0.20)
#: The naive sum's shortest tenure: a customer seen for a few days would otherwise buy hundreds of times a year.
NAIVE_MIN_TENURE_DAYS = 30
DAYS_PER_YEAR = 365.25
NAIVE_FORMULA = ("naive value = margin x mean spend per purchase x purchases per year x years of the horizon, "
                 "undiscounted; purchases per year = purchase days / tenure in years (first purchase to as_of, "
                 f"at least {NAIVE_MIN_TENURE_DAYS} days)")


def drop_out_text(fit: BTYDModel) -> str:
    """What the fitted model's drop-out propensity is, in words and numbers.

    >>> from lifetimes import BetaGeoFitter
    >>> m = BetaGeoFitter(); m.params_ = pd.Series({"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4})
    >>> drop_out_text(BTYDModel("bgnbd", 0.0, m))
    'BG/NBD: after each purchase a customer drops out with probability p ~ Beta(a=0.79, b=2.4), mean 0.248'
    """
    p, name = fit.model.params_, MODEL_LABELS[fit.name]
    if fit.name == "pareto":
        return (f"{name}: a customer drops out at rate mu per time unit, mu ~ Gamma(s={p['s']:.3g}, "
                f"beta={p['beta']:.3g}), mean {p['s'] / p['beta']:.3g}")
    return (f"{name}: after each purchase a customer drops out with probability p ~ "
            f"Beta(a={p['a']:.3g}, b={p['b']:.3g}), mean {p['a'] / (p['a'] + p['b']):.3g}")


def scaled_drop_out(fit: BTYDModel, cut: float) -> BTYDModel:
    """A copy of ``fit`` whose population drop-out propensity is ``1 - cut`` times the fitted one.

    BG/NBD, MBG/NBD: the Beta's mean a / (a + b) scaled, a + b kept; Pareto/NBD: the Gamma's
    mean s / beta scaled through beta. The fitted model is not changed.

    >>> from lifetimes import ParetoNBDFitter
    >>> m = ParetoNBDFitter(); m.params_ = pd.Series({"r": 0.5, "alpha": 10.0, "s": 0.4, "beta": 10.0})
    >>> float(scaled_drop_out(BTYDModel("pareto", 0.0, m), 0.2).model.params_["beta"]), float(m.params_["beta"])
    (12.5, 10.0)
    """
    if not 0 <= cut < 1:
        raise ValueError(f"a drop-out cut is a share in [0, 1), not {cut}")
    params = fit.model.params_.copy()
    if fit.name == "pareto":
        params["beta"] = params["beta"] / (1 - cut)
    else:
        total = params["a"] + params["b"]
        params["a"] = params["a"] * (1 - cut)
        params["b"] = total - params["a"]
    model = copy.copy(fit.model)  # a shallow copy: only params_ is replaced
    model.params_ = params
    return BTYDModel(fit.name, fit.penalizer, model, fit.message)


def _clv(fit: BTYDModel, spend: pd.Series, summary: pd.DataFrame, c: Any, months: int | None = None) -> pd.DataFrame:
    return lifetime_value(fit, spend, summary, months=months or c.horizon_months, unit=c.time_unit,
                          discount_rate_annual=c.discount_rate_annual, margin=c.margin)


#: A longer horizon for the new customer's what-if (months): retention compounds, so its lever grows with time.
LONG_HORIZON_MONTHS = 60


def _new_customer_clv(fit: BTYDModel, spend: float, c: Any, months: int) -> float:
    """A customer acquired today: the unconditional forecast (:func:`helpers.clv.periods.new_customer_ceiling`)."""
    return new_customer_ceiling(fit, spend, months=months, unit=c.time_unit, discount_rate_annual=c.discount_rate_annual,
                                margin=c.margin)["value"]


def retention_what_if(fit: BTYDModel, spend: pd.Series, summary: pd.DataFrame, clv_params: Any,
                      new_spend: float, cuts: tuple[float, ...] = DROP_OUT_CUTS) -> pd.DataFrame:
    """The cohort's total CLV, and a new customer's, with the fitted drop-out propensity and with each cut of it.

    ``spend`` is each customer's expected spend per purchase (the customer
    table's ``expected_spend``, by customer), ``summary`` the full-history BTYD
    summary, ``clv_params`` the run's ``clv`` parameters (horizon, unit,
    discount, margin), ``new_spend`` a new customer's expected spend per
    purchase (the population's mean). One row per cut (0: as fitted):
    ``drop_outs`` (-5% ...), the population's mean drop-out propensity, the
    cohort's expected purchases and total CLV over the horizon, the CLV of a
    customer acquired today (nothing known but the
    population, so the cut counts in full: :func:`_new_customer_clv`) over the horizon and over :data:`LONG_HORIZON_MONTHS`, and the
    changes against the fitted model.
    """
    spend = spend.reindex(summary.index)
    rows = []
    for cut in (0.0, *cuts):
        scaled = scaled_drop_out(fit, cut)
        p = scaled.model.params_
        mean = p["s"] / p["beta"] if fit.name == "pareto" else p["a"] / (p["a"] + p["b"])
        value = _clv(scaled, spend, summary, clv_params)
        rows.append({"drop_outs": f"-{cut:.0%}" if cut else "as fitted", "cut": cut, "mean_drop_out": mean,
                     "expected_purchases": float(value["expected_purchases"].sum()),
                     "total_clv": float(value["clv"].sum()),
                     "new_customer_clv": _new_customer_clv(scaled, new_spend, clv_params, clv_params.horizon_months),
                     "new_customer_clv_long": _new_customer_clv(scaled, new_spend, clv_params, LONG_HORIZON_MONTHS)})
    table = pd.DataFrame(rows).set_index("drop_outs")
    for column, change in (("expected_purchases", "purchases_change"), ("total_clv", "clv_change"),
                           ("new_customer_clv", "new_customer_change"),
                           ("new_customer_clv_long", "new_customer_long_change")):
        table[change] = table[column] / table[column].iloc[0] - 1
    return table


def naive_value(customers: pd.DataFrame, months: int, margin: float = 1.0) -> pd.Series:
    """:data:`NAIVE_FORMULA` per customer (stage 04's ``frequency``, ``monetary_avg``, ``tenure_days``).

    >>> c = pd.DataFrame({"frequency": [4, 1], "monetary_avg": [25.0, 10.0], "tenure_days": [730, 5]})
    >>> naive_value(c, 12).round(2).tolist()
    [50.03, 121.75]
    """
    years = customers["tenure_days"].clip(lower=NAIVE_MIN_TENURE_DAYS) / DAYS_PER_YEAR
    per_year = customers["frequency"] / years
    return (margin * customers["monetary_avg"] * per_year * months / 12).rename("naive_value")


def monthly_discount(months: int, discount_rate_annual: float) -> float:
    """The mean discount factor of an even monthly flow over ``months`` (the annual rate applied monthly, as in CLV).

    >>> round(monthly_discount(12, 0.10), 3), monthly_discount(12, 0.0)
    (0.95, 1.0)
    """
    monthly = (1 + discount_rate_annual) ** (1 / 12) - 1
    return float(np.mean([(1 + monthly) ** -i for i in range(1, months + 1)]))


def naive_vs_model(customers: pd.DataFrame, clv_params: Any) -> pd.DataFrame:
    """The cohort's total value four ways, from the naive sum to the model's CLV, and each against the model.

    Rows: the naive sum; the naive sum discounted (what discounting alone
    removes); the model undiscounted (expected purchases x expected spend x
    margin: drop-out and shrunk spend, face value); the model's CLV (both).
    Without a forecast (``clv`` all missing) only the two naive rows, and no ``vs_model``.
    """
    c = clv_params
    naive = float(naive_value(customers, c.horizon_months, c.margin).sum())
    steps = {"naive sum (keeps buying, face value)": (naive, "nothing: past rate forever, no discounting"),
             "naive sum, discounted": (naive * monthly_discount(c.horizon_months, c.discount_rate_annual),
                                       "discounting only")}
    forecast = bool(customers["clv"].notna().any())
    if forecast:
        model_flat = float((customers["expected_purchases"] * customers["expected_spend"]).sum() * c.margin)
        steps |= {"model, undiscounted": (model_flat, "drop-out and spend shrinkage (Gamma-Gamma), no discounting"),
                  "model CLV (discounted)": (float(customers["clv"].sum()),
                                             "drop-out, spend shrinkage and discounting")}
    table = pd.DataFrame({"total": [v for v, _ in steps.values()], "accounts_for": [w for _, w in steps.values()]},
                         index=pd.Index(list(steps), name="value"))
    if forecast:
        table["vs_model"] = table["total"] / table["total"].iloc[-1]
    return table


#: The example customers of :func:`naive_examples`, in order: what each row shows
#: (without a forecast: the first and the last).
EXAMPLE_ROLES = ("highest naive value", "highest model CLV", "largest gap (naive minus model)",
                 "frequent buyer, probably gone", "median")


def _first(ids: pd.Series, chosen: pd.Series) -> object:
    """The smallest of the ``ids`` where ``chosen`` is true (ties broken by key, without sorting every customer).

    >>> _first(pd.Series(["b", "a", "c"]), pd.Series([True, True, False]))
    'a'
    """
    return ids[chosen.to_numpy()].min()


def naive_examples(customers: pd.DataFrame, clv_params: Any, example: str | None = None) -> pd.DataFrame:
    """A few customers with their naive value beside the model's CLV (one row per role of :data:`EXAMPLE_ROLES`).

    ``example`` is the customer whose P(alive) history notebook 05 shows (the
    frequent buyer probably gone); a customer who fills two roles is shown
    once. The median is by model CLV (without a forecast: by naive value, and
    the roles that need the model are left out). Only the naive value and the gap are computed for
    every customer (no copy of the table: at ten million customers each is gigabytes).
    """
    c = clv_params
    ids, clv = customers["customer_id"], customers["clv"]
    naive = naive_value(customers, c.horizon_months, c.margin)
    forecast = bool(clv.notna().any())
    middle = clv if forecast else naive
    distance = (middle - middle.median()).abs()
    median = _first(ids, distance.isna() if distance.isna().any() else distance == distance.min())
    del distance
    picks = [_first(ids, naive == naive.max())]
    if forecast:
        gap = naive - clv
        picks += [_first(ids, clv == clv.max()), _first(ids, gap == gap.max()), example]
        del gap
    else:
        picks += [None, None, None]
    rows = []
    for role, key in zip(EXAMPLE_ROLES, [*picks, median]):
        if key is None or key in [r["customer_id"] for r in rows]:
            continue
        at = int(np.flatnonzero((ids == key).to_numpy())[0])
        row = customers.iloc[at]
        rows.append({"customer_id": key, "shown_as": role, "purchases": int(row["frequency"]),
                     "tenure_days": int(row["tenure_days"]), "mean_spend": row["monetary_avg"],
                     "purchases_per_year": row["frequency"] / (max(row["tenure_days"], NAIVE_MIN_TENURE_DAYS)
                                                               / DAYS_PER_YEAR),
                     "p_alive": row["p_alive"], "naive_value": naive.iloc[at],
                     "expected_purchases": row["expected_purchases"], "clv": row["clv"]})
    table = pd.DataFrame(rows).round(2)
    return table if forecast else table.drop(columns=["p_alive", "expected_purchases", "clv"])
