"""Notebook 04's interpretation, generated from the run's numbers: what is surprising and what to do.

:func:`reading` words four findings of stage 04 (:class:`helpers.stages.rfm.RFMResult`), each chosen by the
thresholds below:

- :func:`recency_reading` - whether the top R score means *recent* in days, or only *the most recent of a
  dormant cohort* (scores are ranks);
- :func:`concentration_reading` - how concentrated revenue is, against the 80/20 rule of thumb;
- :func:`relationship_reading` - the share of transaction (one-off) customers and what a second purchase is worth;
- :func:`purpose_reading` - end consumers vs intermediaries and what that changes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from helpers.rfm.scores import one_off

#: The top R score "means recent" when its customers last bought a median of at most this many days before as_of.
RECENT_DAYS = 30
#: The cohort "has gone quiet" when the median customer last bought more than this many days before as_of.
DORMANT_DAYS = 180
#: The 80/20 rule of thumb: the top 20% of customers bring this share of revenue.
RULE_SHARE = 0.80
#: A top-20% share within this many points of :data:`RULE_SHARE` is "about the 80/20 rule".
RULE_TOLERANCE = 0.05
#: More than this share of one-time buyers: most customers are transaction customers.
MANY_ONE_OFF = 0.5
#: More than this share of the key (class A) customers bought only once: their class rests on a single order.
ONE_OFF_KEY_SHARE = 0.25
#: More than this share of intermediaries: the shop sells mostly to resellers.
MOSTLY_INTERMEDIARIES = 0.5
#: At most this share of intermediaries: almost all customers are end consumers.
FEW_INTERMEDIARIES = 0.05


def _pct(share: float) -> str:
    """A share as a percentage, with a decimal (or a bound) when it would round to 0% or 100% without being either.

    >>> _pct(0.52), _pct(0.0004), _pct(0.0012), _pct(0.9986), _pct(0.99962), _pct(0.0)
    ('52%', '<0.1%', '0.1%', '99.9%', '>99.9%', '0%')
    """
    if 0 < share < 0.0005 or 0.9995 <= share < 1:
        return "<0.1%" if share < 0.5 else ">99.9%"
    return f"{share:.1%}" if 0 < share < 0.005 or 0.995 < share < 1 else f"{share:.0%}"


def _ratio(a: float, b: float) -> str:
    """``a / b`` as 'N times' (one decimal below 10), or 'many times' when ``b`` is 0.

    >>> _ratio(30.0, 4.0), _ratio(900.0, 4.0), _ratio(1.0, 0.0)
    ('7.5 times', '225 times', 'many times')
    """
    if b <= 0:
        return "many times"
    r = a / b
    return f"{r:.1f} times" if r < 10 else f"{r:,.0f} times"


def recency_reading(customers: pd.DataFrame, top_segment: str) -> str:
    """Whether the customers with the top R score bought recently in days, or are only the most recent of the data.

    ``top_segment`` is the segment of the map's top R x F cell (e.g. *champions*).
    """
    top = int(customers["r_score"].max())
    best = customers.loc[customers["r_score"].eq(top), "recency_days"]
    median, longest = float(best.median()), int(best.max())
    champs = customers.loc[customers["rfm_segment"].eq(top_segment), "recency_days"]
    everyone = float(customers["recency_days"].median())
    if median <= RECENT_DAYS:
        return (f"**The top recency score means recent here.** Customers with R {top} last bought a median of "
                f"{median:.0f} days before `as_of` (at most {longest} days; the median customer {everyone:.0f} days), "
                f"so *{top_segment}* are buying now: thank and reward them rather than win them back.")
    champ = (f"The *{top_segment}* ({len(champs):,} customers) last bought a median of {champs.median():.0f} days ago"
             if len(champs) else f"No customer is in *{top_segment}*")
    quiet = (("the cohort as a whole has gone quiet", "the best of a dormant cohort") if everyone > DORMANT_DAYS
             else ("even the best recency score is not recent in days", "the most recent customers, not current ones"))
    return (f"**Scores are ranks, not dates.** R {top} marks the most recent customers of *this* data set, and here they "
            f"last bought a median of {median:.0f} days before `as_of` (up to {longest} days; the median customer "
            f"{everyone:.0f} days): {quiet[0]}. {champ}: they are {quiet[1]}, not buyers of this month. Read recency "
            f"in days before acting: they need a reason to come back (a reminder, an offer), not a loyalty thank-you.")


def concentration_reading(top20: float, abc: pd.DataFrame) -> str:
    """The 80/20 concentration actually found: the top 20%'s and the key customers' revenue shares (``abc``:
    :func:`helpers.rfm.abc_summary`)."""
    a, c = abc.loc["A"], abc.loc["C"]
    found = (f"the top 20% of customers bring {top20:.0%} of revenue; the {a['name']} (class A, {a['rule']}) alone "
             f"{a['revenue_share']:.0%}, and each spends {_ratio(a['avg_spend'], c['avg_spend'])} as much as "
             f"a class-C customer on average")
    if top20 >= RULE_SHARE + RULE_TOLERANCE:
        return (f"**Revenue is more concentrated than the 80/20 rule:** {found}. Losing one key customer costs what "
                f"many ordinary ones bring: give class A the named contact and first-in-line service the table lists.")
    if top20 > RULE_SHARE - RULE_TOLERANCE:
        return f"**Revenue follows the 80/20 rule closely:** {found}."
    return (f"**Revenue is flatter than the 80/20 rule:** {found}; the {c['name']} (class C) still bring "
            f"{c['revenue_share']:.0%} of revenue. Serving the many cheaply and well matters as much as the few "
            f"key accounts, and the stars of tomorrow are among them.")


def key_one_off(customers: pd.DataFrame) -> str:
    """How many key (class A) customers bought only once, and whether that undermines the class's tactics.

    >>> c = pd.DataFrame({"abc_class": ["A", "A", "C"], "frequency": [1, 3, 1]})
    >>> key_one_off(c).startswith("**1 of the 2 key (class A) customers bought only once**")
    True
    """
    key = customers["abc_class"].eq("A")
    k, n = int((key & one_off(customers["frequency"])).sum()), int(key.sum())
    if n and k / n > ONE_OFF_KEY_SHARE:
        return (f"**{k:,} of the {n:,} key (class A) customers bought only once**: their class rests on a single "
                f"large order, so before giving them a named contact, check whether they are likely to come back "
                f"(notebook 05).")
    return (f"The key customers are mostly relationship customers: "
            f"{f'only {k:,}' if k else 'none'} of the {n:,} bought only once.")


def relationship_reading(relationship: pd.DataFrame, customers: pd.DataFrame | None = None) -> str:
    """The share of transaction (one-off) customers, their revenue share, what relationship customers spend, and
    (given the scored ``customers``) how many key customers bought only once (:func:`key_one_off`)."""
    t, r = relationship.loc["transaction"], relationship.loc["relationship"]
    if t["customers"] == 0:
        return "**Every customer came back:** there are no transaction (one-off) customers in this data."
    key = " " + key_one_off(customers) if customers is not None else ""
    found = (f"{int(t['customers']):,} customers ({_pct(t['customer_share'])}) bought on a single day and brought "
             f"{_pct(t['revenue_share'])} of revenue; the relationship customers who came back spend "
             f"{_ratio(r['avg_spend'], t['avg_spend'])} as much each")
    if t["customer_share"] > MANY_ONE_OFF:
        return (f"**Most customers are transaction customers:** {found}. The first lever is the second purchase: "
                f"a welcome-back offer soon after the first order, before they forget the shop.{key}")
    lead = "Most customers come back" if t["customer_share"] < 0.5 else "Half of the customers come back"
    return (f"**{lead}:** {found}. Keep the relationship customers (they carry "
            f"{r['revenue_share']:.0%} of revenue) and ask the one-off buyers why they did not return.{key}")


def purpose_reading(purpose: pd.DataFrame, rule: str, note: str) -> str:
    """End consumers vs intermediaries: how many, their revenue, their orders, and what that changes.

    ``purpose`` is :func:`helpers.rfm.customer_types.type_summary` by purpose, ``rule`` what makes an
    intermediary (:func:`helpers.rfm.customer_types.purpose_rule`), ``note`` why there is none when ``purpose`` is empty.
    """
    if purpose.empty:
        return f"**Customers by purpose:** {note}."
    i, e = purpose.loc["intermediary"], purpose.loc["end consumer"]
    n = int(i["customers"])

    def order(row: pd.Series) -> str:
        units = row["median_items_per_order"]
        return (f"{units:g} units " if pd.notna(units) else "") + f"worth {row['median_spend_per_order']:,.2f}"

    found = (f"{n:,} of {int(purpose['customers'].sum()):,} customers ({_pct(i['customer_share'])}) order like "
             f"intermediaries ({rule}) and bring {_pct(i['revenue_share'])} of revenue")
    if n and e["customers"]:
        found += f"; their typical order: {order(i)} (end consumers: {order(e)})"
    if purpose["median_items_per_order"].isna().all():
        found += "; by spend alone (no quantities), so a single expensive item looks like a reseller's order"
    if i["customer_share"] > MOSTLY_INTERMEDIARIES:
        return (f"**This shop sells mostly to intermediaries:** {found}. Its customers are trade accounts "
                f"(resellers, shops, wholesalers), whose own customers are invisible here: manage them as "
                f"business relationships (account contact, volume terms, reliable delivery), not with consumer "
                f"promotions.")
    if i["customer_share"] <= FEW_INTERMEDIARIES:
        extra = (f"; look at the {n} exception{'s' if n != 1 else ''} (a reseller, or a household stocking up?)"
                 if n else "")
        return (f"**Almost all customers are end consumers** ({_pct(e['customer_share'])} buy for their own use): "
                f"{found}{extra}. Consumer marketing (reminders, recommendations, offers) is the right toolbox.")
    return (f"**A mix of consumers and intermediaries:** {found}. Treat the two groups apart: trade terms for "
            f"the intermediaries, consumer marketing for the {int(e['customers']):,} end consumers.")


def reading(result: Any) -> str:
    """Notebook 04's generated interpretation: the four readings above as a markdown list."""
    top = result.segment_map.grid[result.bins][result.bins - 1]
    parts = [recency_reading(result.customers, top), concentration_reading(result.top20_share, result.abc),
             relationship_reading(result.relationship, result.customers),
             purpose_reading(result.purpose, result.purpose_rule, result.purpose_note)]
    return "### What this run's numbers say\n\n" + "\n".join(f"- {p}" for p in parts)
