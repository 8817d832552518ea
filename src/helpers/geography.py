"""Geographic segmentation: customers grouped by place (country or state), and whether the grouping is useful.

Part of stage 06. The customer table carries ``country`` when the source maps one
(``columns.country``: the country of the first order in Online Retail, the Brazilian state in Olist;
CDNOW records no place at all). Customers are grouped into the :data:`TOP_PLACES` biggest places
with at least :data:`MIN_PLACE_CUSTOMERS` customers each, the rest as "other" and an unrecorded
place (empty, or a word in :data:`UNKNOWN_PLACES`) as "unknown".

The course's tests of a useful segmentation, read from the data (:func:`segment_by_place`):

- **measurable**: the place is known for at least :data:`MEASURABLE_SHARE` of customers;
- **substantial**: the named places each hold enough customers to act on (at least
  :data:`MIN_PLACE_CUSTOMERS`, by construction) and together at least :data:`SUBSTANTIAL_SHARE` of them;
- **responding differently**: spend differs between the named places (a Kruskal-Wallis test on
  ``monetary_total``, p below :data:`ALPHA`: a rank test, as spend is far from normal) and by enough to
  matter (highest median spend at least :data:`MIN_SPREAD` times the lowest); the spread of
  mean CLV and P(alive) between places is shown beside it when stage 05 made a forecast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kruskal

#: At most this many places are named; each needs at least MIN_PLACE_CUSTOMERS customers.
TOP_PLACES, MIN_PLACE_CUSTOMERS = 8, 15
#: Place values meaning "not recorded" (compared in lower case), beside empty ones.
UNKNOWN_PLACES = frozenset({"unspecified", "unknown", "n/a", "none", ""})
#: The tests' thresholds: known place for MEASURABLE_SHARE of customers; named places holding together at least
#: SUBSTANTIAL_SHARE of customers; a Kruskal-Wallis p-value below ALPHA AND the highest median spend of a named
#: place at least MIN_SPREAD times the lowest (with many customers, a tiny difference is "significant" too).
MEASURABLE_SHARE, SUBSTANTIAL_SHARE, ALPHA, MIN_SPREAD = 0.9, 0.5, 0.05, 1.25
OTHER, UNKNOWN = "other", "unknown"


def place_groups(place: pd.Series) -> pd.Series:
    """Each customer's place group: one of the named places, "other" or "unknown".

    >>> p = pd.Series(["FR"] * 20 + ["DE"] * 16 + ["IT"] * 3 + ["Unspecified", None])
    >>> place_groups(p).value_counts().to_dict()
    {'FR': 20, 'DE': 16, 'other': 3, 'unknown': 2}
    """
    unknown = place.isna() | place.astype(str).str.strip().str.lower().isin(UNKNOWN_PLACES)
    counts = place[~unknown].value_counts()
    named = counts[counts >= MIN_PLACE_CUSTOMERS].index[:TOP_PLACES]
    return pd.Series(np.where(unknown, UNKNOWN, np.where(place.isin(named), place, OTHER)),
                     index=place.index, name="place")


@dataclass
class Geography:
    """Customers by place and the three tests, or why there is no geography (``reason``)."""

    label: str  # what the place is (the source column, e.g. "Country", "state")
    reason: str | None = None  # set when there is no place column or no place is known
    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # per place group
    known_share: float = float("nan")
    named_share: float = float("nan")  # customers in the named places
    kw_statistic: float | None = None
    kw_p: float | None = None
    clv_spread: tuple[float, float] | None = None  # lowest and highest mean CLV of the named places
    groups: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))  # each customer's place group

    @property
    def available(self) -> bool:
        """Whether customers could be grouped by place."""
        return self.reason is None

    @property
    def named(self) -> pd.DataFrame:
        """The rows of the named places (not "other" nor "unknown")."""
        return self.table.drop(index=[OTHER, UNKNOWN], errors="ignore")

    def shown(self) -> pd.DataFrame | None:
        """The table as the notebook shows it (rounded), or None (nothing shown) without geography."""
        return self.table.round(2) if self.available else None

    @property
    def spread(self) -> float | None:
        """The highest median spend of the named places over the lowest (None: fewer than two, or a zero median)."""
        medians = self.named["median_spend"] if len(self.named) >= 2 else pd.Series(dtype=float)
        return float(medians.max() / medians.min()) if len(medians) and medians.min() > 0 else None

    @property
    def significant(self) -> bool | None:
        """Whether the Kruskal-Wallis test rejects "the same spend everywhere" (None: not tested)."""
        return None if self.kw_p is None else self.kw_p < ALPHA

    def tests(self) -> dict[str, bool | None]:
        """The three tests of a useful segmentation (None: could not be tested)."""
        if not self.available:
            return {"measurable": False, "substantial": None, "responds differently": None}
        return {"measurable": self.known_share >= MEASURABLE_SHARE,
                "substantial": len(self.named) >= 2 and self.named_share >= SUBSTANTIAL_SHARE,
                "responds differently": None if self.kw_p is None else
                bool(self.significant and (self.spread or 0) >= MIN_SPREAD)}

    @property
    def useful(self) -> bool:
        """Whether all three tests pass."""
        return all(self.tests().values())

    def describe(self) -> str:
        """The tests in numbers, one line each."""
        if not self.available:
            return f"no geographic segmentation: {self.reason}"
        t, n = self.tests(), self.named
        lines = [f"measurable: {self.label} known for {self.known_share:.1%} of customers (test: at least "
                 f"{MEASURABLE_SHARE:.0%}) -> {'yes' if t['measurable'] else 'no'}",
                 f"substantial: {len(n)} places with at least {MIN_PLACE_CUSTOMERS} customers hold {self.named_share:.1%} "
                 f"of customers and {n['revenue_share'].sum():.1%} of revenue (test: at least {SUBSTANTIAL_SHARE:.0%} "
                 f"of customers) -> {'yes' if t['substantial'] else 'no'}"]
        if self.kw_p is None:
            lines.append("responding differently: not tested (fewer than two named places)")
        else:
            lines.append(f"responding differently: spend by place, Kruskal-Wallis H = {self.kw_statistic:.1f}, "
                         f"p = {self.kw_p:.3g}; median spend from {n['median_spend'].min():,.2f} to "
                         f"{n['median_spend'].max():,.2f} ({self.spread or float('nan'):.2f} times; test: p below {ALPHA} "
                         f"and at least {MIN_SPREAD} times) -> {'yes' if t['responds differently'] else 'no'}")
        if self.clv_spread is not None:
            lines.append(f"mean CLV of the named places: from {self.clv_spread[0]:,.2f} to {self.clv_spread[1]:,.2f}")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """The part of ``clusters.json`` about geography."""
        if not self.available:
            return {"available": False, "reason": self.reason}
        return {"available": True, "label": self.label, "known_share": self.known_share,
                "named_share": self.named_share, "places": self.named.index.tolist(),
                "kruskal_wallis_p": self.kw_p, "median_spend_spread": self.spread, "clv_spread": list(self.clv_spread) if self.clv_spread else None,
                "tests": self.tests(), "useful": self.useful}


def place_table(customers: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Per place group: customers and revenue (counts and shares), spend (mean, median), mean CLV and P(alive)."""
    frame = customers.assign(place=groups.to_numpy())
    g = frame.groupby("place")
    table = pd.DataFrame({"customers": g.size(), "revenue": g["monetary_total"].sum()})
    table["customer_share"] = table["customers"] / len(frame)
    table["revenue_share"] = table["revenue"] / table["revenue"].sum() if table["revenue"].sum() > 0 else np.nan
    table["mean_spend"], table["median_spend"] = g["monetary_total"].mean(), g["monetary_total"].median()
    for col in ("clv", "p_alive"):
        if col in frame and frame[col].notna().any():
            table[f"mean_{col}"] = g[col].mean()
    order = [p for p in table.sort_values("customers", ascending=False).index if p not in (OTHER, UNKNOWN)]
    return table.loc[order + [p for p in (OTHER, UNKNOWN) if p in table.index]]


def segment_by_place(customers: pd.DataFrame, label: str | None = None) -> Geography:
    """Group customers by place and run the three tests; without a known place, say why (``reason``)."""
    label = (label or "country").lower()
    if "country" not in customers:
        return Geography(label, reason="the customer table has no place column (the source maps no "
                                       "columns.country: CDNOW records nothing about where customers are)")
    groups = place_groups(customers["country"])
    known = float((groups != UNKNOWN).mean())
    if known == 0:
        return Geography(label, reason=f"no customer has a known {label}")
    table = place_table(customers, groups)
    geo = Geography(label, None, table, known, float(table.drop(index=[OTHER, UNKNOWN], errors="ignore")
                                                      ["customer_share"].sum()), groups=groups)
    named = geo.named.index
    if len(named) >= 2:
        spend = [customers.loc[(groups == p).to_numpy(), "monetary_total"] for p in named]
        same = all(s.nunique() == 1 for s in spend) and len({float(s.iloc[0]) for s in spend}) == 1
        geo.kw_statistic, geo.kw_p = (0.0, 1.0) if same else (float(v) for v in kruskal(*spend))
    if "mean_clv" in table:
        geo.clv_spread = (float(geo.named["mean_clv"].min()), float(geo.named["mean_clv"].max())) if len(named) else None
    return geo
