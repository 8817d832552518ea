"""The customer value pyramid: current value x growth potential.

CRM teaching splits customers on two axes - what they are worth now
(**current value**: historical spend up to ``as_of``) and what they could be
worth (**growth potential**: predicted lifetime value from stage 05) - into
four tiers:

=========  ===============  ================
tier       current value    growth potential
=========  ===============  ================
platinum   high             high
gold       high             low
iron       low              high
lead       low              low
=========  ===============  ================

"High" means in the top share of customers on that axis (a parameter; by
default the top 20%, the 80/20 logic). The recommended action per tier lives
with the segment actions in the segment map file (``params/segment_maps/``).

**Tomorrow's stars** (:func:`tomorrows_stars`) cross the two views: ordinary
(class C) customers by today's spend whose predicted value is among the
highest of all customers - the ones worth developing into major or key
customers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from helpers import names
from helpers.errors import DataError

TIERS = list(names.TIERS)
#: The pyramid's two axes: each tier's (high current value, high growth potential). A grid, not a ladder:
#: gold -> iron is a loss of current value and a gain of potential, neither "up" nor "down".
AXES = ("current value", "growth potential")
TIER_AXES: dict[str, tuple[bool, bool]] = dict(zip(TIERS, [(True, True), (True, False), (False, True), (False, False)],
                                                   strict=True))


def is_high(values: pd.Series, share: float) -> pd.Series:
    """True for the top ``share`` of customers by value (ties at the cut all count as high; zero is never high).

    >>> is_high(pd.Series([5.0, 4.0, 4.0, 1.0, 0.0]), 0.2).tolist()
    [True, False, False, False, False]
    >>> is_high(pd.Series([5.0, 4.0, 4.0, 1.0, 0.0]), 0.4).tolist()
    [True, True, True, False, False]
    """
    return (values >= high_cut(values, share)) & (values > 0)


def high_cut(values: pd.Series, share: float) -> float:
    """The smallest value :func:`is_high` can call high: the ``ceil(share * n)``-th largest (n counts the missing).

    A value's rank from the top with ties at their best (``rank(method="min", ascending=False)``) is at most
    k exactly when it is at least the k-th largest known value; one partition finds that value, where the
    rank sorted every customer (3 s at ten million). Missing values are never high.

    >>> high_cut(pd.Series([5.0, 4.0, 4.0, 1.0, None]), 0.4), high_cut(pd.Series([1.0, None]), 1.0)
    (4.0, -inf)
    """
    k = math.ceil(share * len(values))
    known = values.to_numpy(dtype=float)
    known = known[~np.isnan(known)]
    if k <= 0:
        return math.inf
    if k >= len(known):
        return -math.inf
    return float(np.partition(known, len(known) - k)[len(known) - k])


def value_tiers(current: pd.Series, potential: pd.Series, current_high_share: float = 0.2,
                potential_high_share: float = 0.2) -> pd.Series:
    """Platinum, gold, iron or lead for each customer.

    >>> value_tiers(pd.Series([9.0, 8.0, 1.0, 1.0]), pd.Series([9.0, 1.0, 8.0, 1.0]), 0.5, 0.5).tolist()
    ['platinum', 'gold', 'iron', 'lead']
    """
    cur = is_high(current, current_high_share).to_numpy()
    pot = is_high(potential, potential_high_share).to_numpy()
    tiers = names.pick([cur & pot, cur & ~pot, ~cur & pot], TIERS[:3], default=TIERS[3])  # as TIER_AXES says
    return pd.Series(tiers, index=current.index, dtype=object)


def tier_table(customers: pd.DataFrame, actions: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Per tier: customers, share of current revenue, share of predicted value, mean CLV and the action."""
    g = customers.groupby("value_tier")
    out = pd.DataFrame({
        "customers": g.size(),
        "revenue_share": g["monetary_total"].sum() / customers["monetary_total"].sum(),
        "clv_share": g["clv"].sum() / customers["clv"].sum() if customers["clv"].sum() > 0 else np.nan,
        "mean_clv": g["clv"].mean(),
        "mean_p_alive": g["p_alive"].mean(),
    }).reindex(TIERS)
    out["customers"] = out["customers"].fillna(0).astype(int)
    out["meaning"] = [actions[t]["meaning"] for t in TIERS]
    out["action"] = [actions[t]["action"] for t in TIERS]
    return out.rename_axis("tier")


def is_star(customers: pd.DataFrame, potential_high_share: float = 0.2) -> pd.Series:
    """True for tomorrow's stars (:func:`tomorrows_stars`), for counting them without sorting them.

    >>> is_star(pd.DataFrame({"abc_class": ["A", "C", "C"], "clv": [9.0, 8.0, 1.0]}), 0.5).tolist()
    [False, True, False]
    """
    missing = [c for c in ("abc_class", "clv") if c not in customers.columns]
    if missing:
        raise DataError(f"the customer table has no column(s) {missing}: tomorrow's stars need the ABC class "
                        f"(stage 04) and the predicted CLV (stage 05)")
    clv = pd.to_numeric(customers["clv"], errors="coerce")
    if clv.isna().all():
        return pd.Series(False, index=customers.index)
    return customers["abc_class"].eq("C") & is_high(clv, potential_high_share)


def tomorrows_stars(customers: pd.DataFrame, potential_high_share: float = 0.2, top: int | None = None) -> pd.DataFrame:
    """Class-C customers whose predicted CLV is in the top ``potential_high_share`` of all customers.

    Low spend so far, high predicted value: the ordinary customers most worth
    developing. The cut is the pyramid's (``tiers.potential_high_share``,
    :func:`is_high` over all customers, so ties at the cut count and a CLV of 0
    never does). Without a forecast (``clv`` all missing) there are none. Rows
    of ``customers``, highest CLV first (ties by id); only the first ``top`` when
    given, found without sorting every star (as :func:`helpers.names.top_rows` does).

    >>> c = pd.DataFrame({"customer_id": list("abcde"), "abc_class": ["A", "B", "C", "C", "C"],
    ...                   "clv": [90.0, 10.0, 80.0, 5.0, 1.0]})
    >>> tomorrows_stars(c, 0.4)["customer_id"].tolist()
    ['c']
    >>> len(tomorrows_stars(c.assign(clv=float("nan")), 0.4))
    0
    >>> tomorrows_stars(c, 0.8, top=1)["customer_id"].tolist()
    ['c']
    """
    star = is_star(customers, potential_high_share)
    if top is not None and star.sum() > top:  # only the stars at or above the top-th CLV are copied and sorted
        clv = pd.to_numeric(customers["clv"], errors="coerce").where(star)
        star &= clv >= clv.nlargest(top).iloc[-1]
    stars = customers[star]
    sort = ["clv", "customer_id"] if "customer_id" in stars.columns else ["clv"]
    stars = stars.sort_values(sort, ascending=[False, True][:len(sort)], kind="stable")
    return stars if top is None else stars.head(top)
