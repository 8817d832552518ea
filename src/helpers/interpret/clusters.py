"""Notebook 06's interpretation, generated from the run's numbers: what the clusters are and what to do.

:func:`reading` joins four findings of stage 06 (:class:`helpers.stages.cluster.ClusterResult`), each chosen by
the thresholds below:

- :func:`types_reading` - the clusters as transaction (one-off) and relationship (repeat) customers;
- :func:`worth_reading` - which cluster is worth most against its size, and one that is valuable but fading;
- :func:`k_reading` - what the choice of k traded (silhouette given up for finer, stable groups);
- :func:`geography_reading` - whether place is a useful segmentation here (the three tests), and why not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from helpers import clusternames, geography, kchoice
from helpers.sampling import sample_reading

if TYPE_CHECKING:
    from helpers.stages.cluster import ClusterResult

#: A cluster whose revenue share is at least WORTH_RATIO times its customer share is "worth more than its size".
WORTH_RATIO = 1.5
#: A place whose revenue share is at least CONCENTRATED times its customer share rests on a few big accounts
#: when its mean spend is also at least CONCENTRATED times its median spend.
CONCENTRATED = 3.0
#: A silhouette given up by at most this much is "a small price" for the finer groups.
SMALL_PRICE = 0.1


def _label(result: ClusterResult, i: int, start: bool = False) -> str:
    """How the text names cluster ``i``: its number and name (capitalised at the start of a sentence)."""
    return f"{'C' if start else 'c'}luster {i} (*{result.names[i]}*)"


def types_reading(result: ClusterResult) -> str:
    """Transaction vs relationship clusters: how many customers and how much revenue each kind holds."""
    p = result.profiles
    if "relationship" not in p or result.k < 2:
        return ""
    kinds = p.groupby("relationship")[["customer_share", "revenue_share"]].sum()
    one_off, repeat = clusternames.TYPES["one-off"], clusternames.TYPES["repeat"]
    parts = [f"{kind} clusters hold {row.customer_share:.0%} of customers and {row.revenue_share:.0%} of revenue"
             for kind, row in kinds.iterrows()]
    text = ("**Transaction or relationship customers.** Typed by the share of one-off buyers (a type needs "
            f"{clusternames.TYPE_SHARE:.0%} of its customers): " + "; ".join(parts) + ".")
    if list(kinds.index) == [one_off]:
        text += (" Every cluster is one-off buyers: repeat customers are too few to form a group of their own, so "
                 "the clusters split the one-time buyers by spend and timing. The task here is a second order, "
                 "before segmenting relationships.")
    if repeat in kinds.index and kinds.loc[repeat, "revenue_share"] > kinds.loc[repeat, "customer_share"]:
        text += (f" Repeat buyers bring {kinds.loc[repeat, 'revenue_share'] / kinds.loc[repeat, 'customer_share']:.1f} "
                 "times their share of customers in revenue: for everyone else the first step up is a second order.")
    if one_off not in kinds.index:
        most = int(p["one_off_share"].idxmax())
        text += (f" The one-off buyers are not a cluster of their own: the most one-off one, {_label(result, most)}, "
                 f"is {p.loc[most, 'one_off_share']:.0%} one-off buyers, below the {clusternames.TYPE_SHARE:.0%} a type needs; "
                 "the clusters split more by spend and recency than by a second purchase.")
    return text


def worth_reading(result: ClusterResult) -> str:
    """The cluster worth most against its size, and a valuable cluster whose customers are fading."""
    p = result.profiles.assign(ratio=lambda t: t["revenue_share"] / t["customer_share"])
    if not p["ratio"].notna().any():  # no revenue to share out (e.g. everything netted away)
        return "**Worth most.** No cluster can be ranked by revenue: the clusters' revenue is zero or negative."
    best = int(p["ratio"].idxmax())
    row = p.loc[best]
    text = (f"**Worth most.** {_label(result, best, True)} is {row.customer_share:.0%} of customers and "
            f"{row.revenue_share:.0%} of revenue ({row.ratio:.1f} times its share)")
    if "clv" in p and p["clv"].notna().any():
        top_clv = int(p["clv"].idxmax())
        text += (f"; its mean predicted CLV is {row.clv:,.2f}" if top_clv == best else
                 f"; the highest mean predicted CLV, {p.loc[top_clv, 'clv']:,.2f}, is in {_label(result, top_clv)}")
    text += (": give it the most care (dedicated contact, first in line)." if row.ratio >= WORTH_RATIO else
             ": no cluster is worth much more than its size; the groups differ in behaviour more than in value.")
    if "p_alive" in p and p["p_alive"].notna().any():
        fading = p[(p["p_alive"] < result.fading_below) & (p["ratio"] >= 1)]
        if len(fading):
            f = int(fading["revenue_share"].idxmax())
            text += (f" {_label(result, f)} brought {p.loc[f, 'revenue_share']:.0%} of revenue but its mean P(alive) is "
                     f"{p.loc[f, 'p_alive']:.2f} (below {result.fading_below:g}): a win-back target before it is lost.")
    return text


def k_reading(result: ClusterResult) -> str:
    """What the choice of k traded: the silhouette given up against the silhouette's own pick, and the stability."""
    c = result.choice
    sil, stab = c.silhouette, c.score(c.k, "stability")
    if sil is None:
        return f"**How many clusters.** {c.note}."
    text = f"**How many clusters.** k = {c.k} ({c.rule})"
    ref = c.k_reference
    if ref is not None and ref != c.k:
        lost = c.score(ref, "silhouette") - sil
        text += (f". The silhouette alone would take k = {ref} ({c.score(ref, 'silhouette'):.3f} against {sil:.3f}); "
                 + (f"giving up {lost:.3f} is a small price for " if lost <= SMALL_PRICE else
                    f"giving up {lost:.3f} is a real loss of separation, paid for ")
                 + f"{abs(c.k - ref)} {'more' if c.k > ref else 'fewer'} group{'s' if abs(c.k - ref) > 1 else ''}"
                 + (" to act on" if c.k > ref else " (and stable ones)"))
    elif ref is not None:
        text += ". The silhouette agrees over every scanned k (k = 2 included): nothing was traded for stability"
    if stab is not None and stab < kchoice.STABLE_ARI:
        text += (f". At k = {c.k} bootstrap refits do not reproduce the clusters (ARI {stab:.3f}, below "
                 f"{kchoice.STABLE_ARI})" + (", and no k in range did" if c.rule.startswith("the most stable") else "")
                 + ": treat the clusters as one possible cut, not as structure in the data")
    elif stab is not None:
        unstable = c.scan[c.scan["eligible"].astype(bool) & (c.scan["stability"] < kchoice.STABLE_ARI)]["k"].tolist()
        text += (f"; at k = {c.k} bootstrap refits reproduce the clusters (ARI {stab:.3f})"
                 + (f", while k = {', '.join(map(str, unstable))} did not" if unstable else ""))
    return text + "."


def _concentrated(geo: geography.Geography) -> pd.DataFrame:
    named = geo.named
    return named[(named["revenue_share"] >= CONCENTRATED * named["customer_share"])
                 & (named["mean_spend"] >= CONCENTRATED * named["median_spend"])]


def geography_reading(geo: geography.Geography) -> str:
    """Whether place is a useful segmentation here: the three tests in words, and what a failed one means."""
    if not geo.available:
        return f"**Geography.** Not tested: {geo.reason}."
    t, named = geo.tests(), geo.named
    text = (f"**Geography.** The {geo.label} is known for {geo.known_share:.0%} of customers; {len(named)} places with "
            f"at least {geography.MIN_PLACE_CUSTOMERS} customers hold {geo.named_share:.0%} of them")
    if geo.kw_p is None:
        return text + ", too few places to compare."
    if geo.useful:
        text += (f", and spend differs between them (Kruskal-Wallis p = {geo.kw_p:.3g}): place is a useful segmentation "
                 f"here - measurable, substantial and responding differently. Median spend ranges from "
                 f"{named['median_spend'].min():,.0f} to {named['median_spend'].max():,.0f}.")
    else:
        failed = [name for name, ok in t.items() if ok is False]
        why = ""
        if "responds differently" in failed:
            small = (f"; the medians differ {geo.spread:.2f} times, but with {int(named['customers'].min())} to "
                     f"{int(named['customers'].max())} customers per place that can be chance"
                     if (geo.spread or 0) >= geography.MIN_SPREAD else "")
            why = (f" (spend by place: Kruskal-Wallis p = {geo.kw_p:.3g}, not below {geography.ALPHA}{small})"
                   if not geo.significant else
                   f" (spend differs by place beyond chance, p = {geo.kw_p:.3g}, but little: median spend from "
                   f"{named['median_spend'].min():,.0f} to {named['median_spend'].max():,.0f}"
                   + (f", {geo.spread:.2f} times, below {geography.MIN_SPREAD}" if geo.spread is not None else "")
                   + f"; with {int(named['customers'].sum()):,} customers even a small "
                   "difference is significant)")
        text += (f"; but it fails the test(s) {', '.join(failed)}{why}"
                 ": place alone is not a segmentation to plan different offers by.")
    big = _concentrated(geo)
    for place, row in big.iterrows():
        text += (f" {place}: {row.revenue_share:.0%} of revenue from {row.customer_share:.0%} of customers rests on a "
                 f"few big accounts (mean spend {row.mean_spend:,.0f}, median {row.median_spend:,.0f}): manage those "
                 "accounts one by one, not the country.")
    if geo.clv_spread is not None:
        low, high = geo.clv_spread
        text += f" Mean CLV by place ranges from {low:,.2f} to {high:,.2f}."
    return text


def reading(result: ClusterResult) -> str:
    """Notebook 06's interpretation: the four findings, one paragraph each."""
    parts = [types_reading(result), worth_reading(result), k_reading(result), geography_reading(result.geography),
             sample_reading(getattr(result, "sample_text", ""))]
    return "\n\n".join(p for p in parts if p)
