"""The customer lifecycle: acquisition, growth, maturity, decline, termination.

CRM describes a customer's relationship in stages. Stage 05 gives every
customer one, from tenure, the purchase trend (repeat purchase days in the
second half of the customer's tenure against the first half:
:func:`helpers.summary.purchase_halves`) and P(alive),
by :data:`LIFECYCLE_RULE` (first match wins; thresholds are the
``lifecycle:`` parameters). The stage names are :data:`helpers.names.LIFECYCLE`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import names


LIFECYCLE_RULE = """\
1. acquisition  first purchase less than {acquisition_days} days before as_of;
2. termination  otherwise, P(alive) below {termination_p_alive};
3. decline      otherwise, P(alive) below {decline_p_alive}; or no repeat purchase since acquisition; or
                repeat purchases in the second half of the customer's tenure at least {trend_change:.0%}
                fewer than in the first half;
4. growth       otherwise, at least 2 repeat purchases in the second half and {trend_change:.0%} more than
                in the first half;
5. maturity     the rest: alive and buying at a steady rate."""


def lifecycle_stage(tenure_days: pd.Series, alive: pd.Series, halves: pd.DataFrame, *, acquisition_days: int,
                    decline_p_alive: float, termination_p_alive: float, trend_change: float = 0.5) -> pd.Series:
    """The lifecycle stage of each customer, by the rule in :data:`LIFECYCLE_RULE` (first match wins).

    >>> halves = pd.DataFrame({"repeat_first_half": [0, 3, 3, 0, 4, 1, 2],
    ...                        "repeat_second_half": [0, 3, 3, 0, 1, 3, 2]})
    >>> lifecycle_stage(pd.Series([10, 400, 400, 400, 400, 400, 400]), pd.Series([.9, .1, .4, .9, .9, .9, .9]),
    ...                 halves, acquisition_days=90, decline_p_alive=0.5, termination_p_alive=0.2).tolist()
    ['acquisition', 'termination', 'decline', 'decline', 'decline', 'growth', 'maturity']
    """
    a, b = halves["repeat_first_half"].to_numpy(), halves["repeat_second_half"].to_numpy()
    conditions = [
        tenure_days.to_numpy() < acquisition_days,
        alive.to_numpy() < termination_p_alive,
        (alive.to_numpy() < decline_p_alive) | (a + b == 0) | (b <= (1 - trend_change) * a),
        (b >= 2) & (b >= (1 + trend_change) * a),
    ]
    acquisition, growth, _, decline, termination = names.LIFECYCLE
    stages = names.pick(conditions, [acquisition, termination, decline, growth], default=names.LIFECYCLE[2])
    return pd.Series(stages, index=tenure_days.index, dtype=object)


def lifecycle_rule(lifecycle: dict[str, float], acquisition_days: int) -> str:
    """:data:`LIFECYCLE_RULE` with this run's thresholds (``lifecycle``: the ``lifecycle:`` parameters).

    >>> lifecycle_rule({"decline_p_alive": 0.5, "termination_p_alive": 0.2, "trend_change": 0.5}, 30).splitlines()[0]
    '1. acquisition  first purchase less than 30 days before as_of;'
    """
    return LIFECYCLE_RULE.format(**(dict(lifecycle) | {"acquisition_days": acquisition_days}))


def lifecycle_table(customers: pd.DataFrame, forecast: bool = True) -> pd.DataFrame:
    """Per lifecycle stage (in lifecycle order): customers, and with a forecast mean P(alive), mean CLV and CLV share.

    >>> c = pd.DataFrame({"customer_id": list("abc"), "lifecycle_stage": ["growth", "growth", "decline"],
    ...                   "p_alive": [0.9, 0.7, 0.2], "clv": [30.0, 10.0, 10.0]})
    >>> lifecycle_table(c).loc[["growth", "termination"], ["customers", "clv_share"]].values.tolist()
    [[2.0, 0.8], [0.0, nan]]
    >>> lifecycle_table(c, forecast=False).columns.tolist()
    ['customers']
    """
    table = customers.groupby("lifecycle_stage").agg(
        customers=("customer_id", "size"), mean_p_alive=("p_alive", "mean"), mean_clv=("clv", "mean"),
        clv=("clv", "sum")).reindex(list(names.LIFECYCLE))
    table["customers"] = table["customers"].fillna(0).astype(int)
    table["clv_share"] = table["clv"] / table["clv"].sum()
    return (table if forecast else table[["customers"]]).round(3)


#: The data-derived acquisition window: a sixth of the span, at most 90 days.
ACQUISITION_MAX_DAYS = 90
ACQUISITION_RULE = f"a sixth of the log's span (first purchase to as_of), at most {ACQUISITION_MAX_DAYS} days, at least 1"


def default_acquisition_days(span_days: int) -> int:
    """The acquisition window when ``lifecycle.acquisition_days`` is not set.

    >>> default_acquisition_days(545), default_acquisition_days(120), default_acquisition_days(0)
    (90, 20, 1)
    """
    return max(1, min(ACQUISITION_MAX_DAYS, span_days // 6))  # a log of one day: everyone was just acquired
