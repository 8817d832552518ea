"""ABC analysis (the 80/20 rule): classes by revenue rank, the Pareto curve, class summaries and spend outliers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import names
from helpers.rfm.segment_map import SegmentMap

ABC = names.ABC


def abc_classes(monetary: pd.Series, ids: pd.Series, cuts: tuple[float, float] = (0.05, 0.20)) -> pd.Series:
    """ABC class by revenue rank: A = top ``cuts[0]`` of customers, B = up to ``cuts[1]``, C = the rest.

    Ties in revenue are ranked by id. Only the customers at or above the
    spend at rank ``cuts[1]`` are sorted (a fifth of a million ids, not all).

    >>> m = pd.Series([50.0, 10.0, 30.0, 5.0, 5.0]); ids = pd.Series(list("abcde"))
    >>> abc_classes(m, ids, (0.2, 0.6)).tolist()
    ['A', 'B', 'B', 'C', 'C']
    """
    n = len(monetary)
    share = (np.arange(n) + 1) / max(n, 1)  # the share of customers at each rank, best first
    ranked = int(np.count_nonzero(share <= cuts[1]))  # ranks in A or B; the others are C whatever their order
    values = monetary.to_numpy(dtype=float)
    out = np.full(n, "C", dtype=object)
    if ranked == 0:
        return pd.Series(out, index=monetary.index)
    if np.isnan(values).any():  # NaN ranks last, as sort_values puts it: sort everyone
        top = np.arange(n)
    else:  # only the customers at or above the ranked-th largest spend need their exact rank (ties included)
        top = np.flatnonzero(values >= np.partition(values, n - ranked)[n - ranked])
    order = (pd.DataFrame({"m": values[top], "id": ids.to_numpy()[top]})
             .sort_values(["m", "id"], ascending=[False, True], kind="stable").index.to_numpy()[:ranked])
    out[top[order]] = np.where(share[:ranked] <= cuts[0], "A", "B")
    return pd.Series(out, index=monetary.index)


def spend_outliers(customers: pd.DataFrame, factor: float = 100.0) -> pd.DataFrame:
    """Customers whose spend is more than ``factor`` times the median customer's, largest first.

    They are kept (a wholesaler is a real customer) but flagged: one of them can
    hold most of the revenue, and the notebooks and the report say so. Returns
    the customers' rows with ``times_median``.

    >>> c = pd.DataFrame({"customer_id": list("abcd"), "monetary_total": [10.0, 12.0, 9.0, 11000.0]})
    >>> spend_outliers(c)[["customer_id", "times_median"]].values.tolist()
    [['d', 1000.0]]
    """
    spend = customers["monetary_total"].astype(float)
    median = float(spend[spend > 0].median()) if (spend > 0).any() else 0.0
    if median <= 0:
        return customers.iloc[:0].assign(times_median=pd.Series(dtype=float))
    big = spend > factor * median  # the few rows first: assign on every customer copies them all (9 s at 10M)
    out = customers[big].assign(times_median=(spend[big] / median).round(1))
    return out.sort_values(["times_median", "customer_id"], ascending=[False, True])


def pareto_curve(monetary: pd.Series) -> pd.DataFrame:
    """Cumulative share of revenue against cumulative share of customers, best customers first.

    >>> pareto_curve(pd.Series([1.0, 3.0])).round(2).values.tolist()
    [[0.0, 0.0], [0.5, 0.75], [1.0, 1.0]]
    """
    values = np.sort(monetary.to_numpy(dtype=float))[::-1]
    total = values.sum()
    cum = np.concatenate([[0.0], np.cumsum(values) / total if total > 0 else np.zeros(len(values))])
    return pd.DataFrame({"customer_share": np.arange(len(values) + 1) / len(values), "revenue_share": cum})


def revenue_share_at(curve: pd.DataFrame, customer_share: float) -> float:
    """The share of revenue the top ``customer_share`` of customers bring, read off :func:`pareto_curve` (nearest point).

    >>> revenue_share_at(pareto_curve(pd.Series([1.0, 3.0])), 0.5)
    0.75
    """
    return float(curve.loc[(curve["customer_share"] - customer_share).abs().idxmin(), "revenue_share"])


def class_summary(customers: pd.DataFrame, by: str) -> pd.DataFrame:
    """Customers, revenue and their shares per class or segment, largest revenue first."""
    g = customers.groupby(by, sort=True)
    out = pd.DataFrame({"customers": g.size(), "revenue": g["monetary_total"].sum()})
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["revenue_share"] = out["revenue"] / out["revenue"].sum()
    out["avg_spend"] = out["revenue"] / out["customers"]
    return out.sort_values("revenue", ascending=False)


def abc_rules(cuts: tuple[float, float]) -> dict[str, str]:
    """Which customers each ABC class holds, in words, from the cuts ``rfm.abc_cuts``.

    >>> abc_rules((0.05, 0.20))
    {'A': 'top 5% by revenue', 'B': 'next 15%', 'C': 'other 80%'}
    """
    def pct(x: float) -> str:
        return f"{100 * x:.1f}".rstrip("0").rstrip(".") + "%"

    return {"A": f"top {pct(cuts[0])} by revenue", "B": f"next {pct(cuts[1] - cuts[0])}", "C": f"other {pct(1 - cuts[1])}"}


def abc_summary(customers: pd.DataFrame, segment_map: SegmentMap, cuts: tuple[float, float]) -> pd.DataFrame:
    """The ABC table: per class its name, which customers it holds, customers and revenue with their shares,
    and the class's meaning and recommended action (from the segment map; bare letters when it has none).

    >>> c = pd.DataFrame({"abc_class": ["A", "B", "C", "C"], "monetary_total": [60.0, 25.0, 10.0, 5.0]})
    >>> t = abc_summary(c, SegmentMap({}, {}, {}), (0.25, 0.5))
    >>> t[["name", "rule", "customers", "revenue_share"]].values.tolist()
    [['A', 'top 25% by revenue', 1, 0.6], ['B', 'next 25%', 1, 0.25], ['C', 'other 50%', 2, 0.15]]
    """
    summary = class_summary(customers, "abc_class").reindex(list(ABC))
    summary["customers"] = summary["customers"].fillna(0).astype(int)
    shares = ["revenue", "customer_share", "revenue_share"]
    summary[shares] = summary[shares].fillna(0.0)
    names = segment_map.abc_classes()
    out = summary.join(names[["name"]]).assign(rule=pd.Series(abc_rules(cuts)))
    out = out.join(names[["meaning", "action"]])
    columns = ["name", "rule", "customers", "customer_share", "revenue", "revenue_share", "avg_spend", "meaning", "action"]
    return out[columns].rename_axis("abc_class")
