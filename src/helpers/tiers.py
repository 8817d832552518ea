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
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

TIERS = ["platinum", "gold", "iron", "lead"]


def is_high(values: pd.Series, share: float) -> pd.Series:
    """True for the top ``share`` of customers by value (ties at the cut all count as high; zero is never high).

    >>> is_high(pd.Series([5.0, 4.0, 4.0, 1.0, 0.0]), 0.2).tolist()
    [True, False, False, False, False]
    >>> is_high(pd.Series([5.0, 4.0, 4.0, 1.0, 0.0]), 0.4).tolist()
    [True, True, True, False, False]
    """
    rank = values.rank(method="min", ascending=False)
    return (rank <= math.ceil(share * len(values))) & (values > 0)


def value_tiers(current: pd.Series, potential: pd.Series, current_high_share: float = 0.2,
                potential_high_share: float = 0.2) -> pd.Series:
    """Platinum, gold, iron or lead for each customer.

    >>> value_tiers(pd.Series([9.0, 8.0, 1.0, 1.0]), pd.Series([9.0, 1.0, 8.0, 1.0]), 0.5, 0.5).tolist()
    ['platinum', 'gold', 'iron', 'lead']
    """
    cur = is_high(current, current_high_share).to_numpy()
    pot = is_high(potential, potential_high_share).to_numpy()
    tiers = np.select([cur & pot, cur & ~pot, ~cur & pot], TIERS[:3], default="lead")
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
