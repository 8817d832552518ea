"""Profiles and names of clusters: what sets each cluster apart, relative to the others AND in absolute terms.

Part of stage 06 (re-exported by :mod:`helpers.clustering`). A name built from relative differences
alone can mislead: among clusters that are all very likely still buying, the lowest one is still not
"fading". So a word needs both (the rule of :func:`name_clusters`):

- **relative**: the cluster's median on the feature sits above the 70th (below the 30th) percentile of
  all customers (:data:`NAME_WORDS`);
- **absolute**: the median also passes the word's cut-off in :data:`ABSOLUTE` (e.g. "fading" only with a
  median P(alive) below :data:`FADING_P_ALIVE`, "recent" only within :data:`RECENT_DAYS` days). Money
  (spend, CLV) has no scale shared by all data sets, so its words are relative only.

Beside the words, every cluster gets its **relationship type** from the share of one-off customers
(a single purchase day, ``frequency == 1`` in the customer table): *transaction* customers ("one-off")
when at least :data:`TYPE_SHARE` bought once, *relationship* customers ("repeat") when at least that
share came back, otherwise mixed (no word).
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from helpers.config import DECLINE_P_ALIVE
from helpers.rfm.scores import one_off

#: Words for a cluster whose median is high or low on a feature (relative to all customers).
NAME_WORDS = {
    "monetary_total": ("high-spend", "low-spend"),
    "clv": ("high-potential", "low-potential"),
    "frequency": ("frequent", "one-off"),
    "recency_days": ("lapsed", "recent"),     # high recency_days = long ago
    "p_alive": ("active", "fading"),
    "tenure_days": ("long-standing", "new"),
}

#: Absolute cut-offs of the words (on the cluster's median): P(alive) below FADING_P_ALIVE is "fading",
#: at least ACTIVE_P_ALIVE "active" (both the lifecycle's decline threshold: a run passes its own
#: ``lifecycle.decline_p_alive`` as ``fading_below``); no purchase for at least
#: LAPSED_DAYS days is "lapsed", at most RECENT_DAYS "recent"; at least FREQUENT_DAYS purchase days
#: "frequent"; first purchase at most NEW_DAYS ago "new", at least LONG_STANDING_DAYS "long-standing".
FADING_P_ALIVE = ACTIVE_P_ALIVE = DECLINE_P_ALIVE
LAPSED_DAYS, RECENT_DAYS = 365, 90
FREQUENT_DAYS = 3
NEW_DAYS, LONG_STANDING_DAYS = 90, 365
#: (feature, 0 = high word / 1 = low word) -> (comparison, cut-off) the cluster's median must pass.
ABSOLUTE: dict[tuple[str, int], tuple[Callable[[float, float], bool], float]] = {
    ("p_alive", 0): (operator.ge, ACTIVE_P_ALIVE), ("p_alive", 1): (operator.lt, FADING_P_ALIVE),
    ("recency_days", 0): (operator.ge, LAPSED_DAYS), ("recency_days", 1): (operator.le, RECENT_DAYS),
    ("frequency", 0): (operator.ge, FREQUENT_DAYS), ("frequency", 1): (operator.le, 1),
    ("tenure_days", 0): (operator.ge, LONG_STANDING_DAYS), ("tenure_days", 1): (operator.le, NEW_DAYS),
}
#: A cluster with at least this share of one-off customers is "one-off" (transaction customers); with at
#: least this share of repeat customers, "repeat" (relationship customers).
TYPE_SHARE = 0.8
#: The relationship types, as the profiles and the interpretation name them.
TYPES = {"one-off": "transaction (one-off)", "repeat": "relationship (repeat)", None: "mixed"}


def one_off_share(frequency: pd.Series) -> float:
    """The share of customers with a single purchase day (:func:`helpers.rfm.scores.one_off`).

    >>> one_off_share(pd.Series([1, 1, 3, 2]))
    0.5
    """
    return float(one_off(frequency).mean()) if len(frequency) else float("nan")


def relationship(frequency: pd.Series) -> str | None:
    """The type word of a group of customers: "one-off", "repeat", or None (mixed), by :data:`TYPE_SHARE`.

    >>> relationship(pd.Series([1] * 9 + [2])), relationship(pd.Series([2] * 9 + [1])), relationship(pd.Series([1, 2]))
    ('one-off', 'repeat', None)
    """
    share = one_off_share(frequency)
    return "one-off" if share >= TYPE_SHARE else "repeat" if 1 - share >= TYPE_SHARE else None


def profile(customers: pd.DataFrame, labels: np.ndarray, features: list[str]) -> pd.DataFrame:
    """Per cluster: customers, shares of customers and revenue, the one-off share and type, the mean of each feature."""
    frame = customers.assign(cluster=labels)
    g = frame.groupby("cluster", sort=True)
    out = pd.DataFrame({"customers": g.size()})
    out["customer_share"] = out["customers"] / len(frame)
    revenue = frame["monetary_total"].sum()
    out["revenue_share"] = g["monetary_total"].sum() / revenue if revenue > 0 else np.nan
    if "frequency" in frame:
        out["one_off_share"] = g["frequency"].apply(one_off_share)
        out["relationship"] = [TYPES[relationship(f)] for _, f in g["frequency"]]
    return out.join(g[features].mean())


def word(customers: pd.DataFrame, group: pd.DataFrame, feature: str, high: float = 0.7,
         low: float = 0.3, fading_below: float = FADING_P_ALIVE) -> tuple[float, str] | None:
    """The word ``group`` earns on ``feature`` and how extreme it is (distance of its percentile from 0.5), or None.

    Relative: the group's median placed among all customers (its percentile)
    must be at least ``high`` or at most ``low``; absolute: the median must pass
    :data:`ABSOLUTE` (when the word has a cut-off; P(alive)'s is ``fading_below``).

    >>> everyone = pd.DataFrame({"p_alive": [0.97, 0.98, 0.99, 0.995, 0.999, 1.0]})
    >>> word(everyone, everyone.iloc[:2], "p_alive") is None  # lowest of all, but 0.97 is not fading
    True
    >>> word(everyone * 0.3, everyone.iloc[:2] * 0.3, "p_alive")
    (0.33333333333333337, 'fading')
    >>> word(everyone * 0.3, everyone.iloc[:2] * 0.3, "p_alive", fading_below=0.2) is None  # a stricter decline
    True
    """
    median = group[feature].median()
    pct = float((customers[feature] < median).mean() + 0.5 * (customers[feature] == median).mean())
    side = 0 if pct >= high else 1 if pct <= low else None
    if side is None:
        return None
    compare, cut = ABSOLUTE.get((feature, side), (None, None))
    cut = fading_below if feature == "p_alive" else cut
    if compare is not None and not compare(float(median), cut):
        return None
    return abs(pct - 0.5), NAME_WORDS[feature][side]


def _typed(chosen: list[tuple[float, int, str]], kind: str | None, position: int) -> list[tuple[float, int, str]]:
    """The chosen words with the relationship type: "one-off" / "repeat" added in the frequency ``position``
    ("repeat" not when "frequent" says it), a relative "one-off" in a mixed cluster made "mostly one-off"."""
    words = [w for *_, w in chosen]
    if kind is None:
        return [(s, o, "mostly one-off" if w == "one-off" else w) for s, o, w in chosen]
    if kind in words or (kind == "repeat" and "frequent" in words):
        return chosen
    return sorted([t for t in chosen if t[2] != "one-off"] + [(1.0, position, kind)], key=lambda t: -t[1])


def name_clusters(customers: pd.DataFrame, labels: np.ndarray, features: list[str], high: float = 0.7,
                  low: float = 0.3, words: int = 3, fading_below: float = FADING_P_ALIVE) -> dict[int, str]:
    """A readable name for each cluster, derived from what sets its profile apart.

    Each feature may give a word (:func:`word`: relative and absolute). Of a
    cluster's words, the ``words`` that fewest other clusters share (then the
    most extreme) make the name, in a fixed order of importance, with the
    relationship type (:func:`relationship`, see :func:`_typed`) in the
    frequency position. A cluster that earns no word is "typical". ``fading_below``: the run's
    ``lifecycle.decline_p_alive``.
    Duplicate names get a number.

    >>> c = pd.DataFrame({"monetary_total": [1, 2, 3, 100, 200, 300.0], "frequency": [1, 1, 1, 9, 8, 7]})
    >>> name_clusters(c, [1, 1, 1, 0, 0, 0], ["monetary_total", "frequency"])
    {0: 'high-spend, frequent', 1: 'low-spend, one-off'}
    """
    frame = customers.assign(cluster=labels)
    order = [f for f in NAME_WORDS if f in features]
    position = -order.index("frequency") if "frequency" in order else -len(NAME_WORDS)
    groups = dict(tuple(frame.groupby("cluster", sort=True)))
    candidates = {label: [(found[0], -i, found[1]) for i, f in enumerate(order)
                          if (found := word(customers, group, f, high, low, fading_below))] for label, group in groups.items()}
    shared = Counter(w for found in candidates.values() for *_, w in found)
    names: dict[int, str] = {}
    for label, found in candidates.items():
        chosen = sorted(sorted(found, key=lambda t: (shared[t[2]], -t[0]))[:words], key=lambda t: -t[1])
        kind = relationship(groups[label]["frequency"]) if "frequency" in groups[label] else None
        names[int(label)] = ", ".join(w for *_, w in _typed(chosen, kind, position)) or "typical"
    return _distinguish(names, customers, groups, order)


#: Comparative words that tell apart two clusters of the same name: (for the higher median, for the lower).
COMPARE_WORDS = {
    "monetary_total": ("higher-spend", "lower-spend"), "clv": ("more potential", "less potential"),
    "frequency": ("more frequent", "less frequent"), "recency_days": ("less recent", "more recent"),
    "p_alive": ("more active", "less active"), "tenure_days": ("older", "newer"),
}


def _percentile(customers: pd.DataFrame, feature: str, value: float) -> float:
    return float((customers[feature] < value).mean() + 0.5 * (customers[feature] == value).mean())


def _distinguish(names: dict[int, str], customers: pd.DataFrame, groups: dict[Any, pd.DataFrame],
                 order: list[str]) -> dict[int, str]:
    """Two clusters with one name get a comparative word (:data:`COMPARE_WORDS`) on the feature where their
    medians lie furthest apart (in percentiles of all customers); more than two get a number."""
    out = dict(names)
    for base in {n for n in names.values() if list(names.values()).count(n) > 1}:
        same = sorted(label for label, n in names.items() if n == base)
        if len(same) == 2 and order:
            a, b = (groups[label] for label in same)
            gap = {f: _percentile(customers, f, a[f].median()) - _percentile(customers, f, b[f].median()) for f in order}
            f = max(order, key=lambda g: abs(gap[g]))
            if gap[f] != 0:
                hi, lo = COMPARE_WORDS[f]
                out[same[0]], out[same[1]] = (f"{base}, {hi}", f"{base}, {lo}") if gap[f] > 0 else (f"{base}, {lo}", f"{base}, {hi}")
                continue
        for i, label in enumerate(same[1:], start=2):
            out[label] = f"{base} ({i})"
    return out
