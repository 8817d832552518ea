"""Notebook 02's interpretation: the span of the collected log, whether it is one cohort, who is not identified.

Read from :class:`helpers.stages.collect.CollectResult` (``counts``, ``span``, ``acquisition``, ``monthly``).
The thresholds below choose the sentences; a test moves the data across them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from helpers.stages.collect import COHORT_WEEKS

#: At least this share of customers first bought in the log's first COHORT_WEEKS weeks: the log is one cohort.
ONE_COHORT_SHARE = 0.95
#: The log's first month holds this many times the average month's new customers: many are older than the log.
FIRST_MONTH_EXCESS = 2.0
#: Lines without a customer key above this share: the customer view misses a real part of the business.
MISSING_ID_HIGH = 0.05
#: One country holds at least this share of the customers: geography splits off too little to segment by.
ONE_COUNTRY_SHARE = 0.8
#: The last months of the log in which new customers are counted ("are customers still arriving?").
RECENT_MONTHS = 3


def _cohort(span: pd.Series, acquisition: pd.DataFrame) -> str:
    """The cohort sentence: one cohort (ONE_COHORT_SHARE), or customers arriving, older than the log or not."""
    customers, early = int(span["customers"]), int(span["first_weeks_customers"])
    share = early / customers if customers else 0.0
    cutoff = pd.Timestamp(span["last_line"]).to_period("M") - (RECENT_MONTHS - 1)
    recent = int(acquisition.loc[pd.to_datetime(acquisition["month"]).dt.to_period("M") >= cutoff,
                                 "new_customers"].sum())
    first_month = int(acquisition["new_customers"].iloc[0]) if len(acquisition) else 0
    average = customers / max(len(acquisition), 1)
    if share >= ONE_COHORT_SHARE:
        last_new = pd.Timestamp(acquisition["month"].max()).to_period("M")
        gap = (pd.Timestamp(span["last_line"]).to_period("M") - last_new).n
        return (f"- **One cohort.** {early:,} of {customers:,} customers ({share:.0%}) made their first purchase in "
                f"the log's first {COHORT_WEEKS} weeks, and {recent:,} in its last {RECENT_MONTHS} months; the last "
                f"new customer arrives in {last_new}, {gap} months before the log ends. The log follows one group "
                "of customers as it ages: unless `as_of` falls in its first weeks, the lifecycle's acquisition "
                "stage will be empty, and a falling line count is the cohort thinning out, not the business "
                "shrinking. To study acquisition, collect a log that keeps taking in customers.")
    text = (f"- **Customers keep arriving.** Only {share:.0%} of the {customers:,} customers first bought in the "
            f"log's first {COHORT_WEEKS} weeks; {recent:,} are new in its last {RECENT_MONTHS} months.")
    if first_month >= FIRST_MONTH_EXCESS * average:
        text += (f" But the first month has {first_month:,} new customers, {first_month / average:.1f} times an "
                 "average month's: many of them probably bought before the log starts. The log shows a customer's "
                 "first purchase *in the log*, so their age (tenure) is understated.")
    return text


def _identified(counts: pd.Series, span: pd.Series) -> str:
    """The sentence on lines without a customer key: none, some, or too many (MISSING_ID_HIGH)."""
    lines, missing = int(counts["lines"]), int(counts["no_customer"])
    if not missing:
        return ("- **Every line carries a customer key:** each purchase can be attributed to a customer, the first "
                "condition for identifying customers at all.")
    share = missing / lines
    text = (f"- **{missing:,} lines ({share:.1%}) carry no customer key**, worth {span['no_customer_amount']:,.0f}: at "
            "those contacts the customer was not identified (a guest checkout, a cash sale). They cannot count "
            "for anyone; notebook 03 drops them.")
    if share > MISSING_ID_HIGH:
        text += (f" Above {MISSING_ID_HIGH:.0%}, the customer view misses a real part of the business: ask for a "
                 "key (an account, a loyalty card) at every sale.")
    return text


def _geography(geography: pd.Series | None, customers: int) -> str | None:
    """The sentence on the source's one piece of identity beyond the key, its country (None: not mapped)."""
    if geography is None:
        return None
    top, n = geography["top_country"], int(geography["top_customers"])
    share = n / customers if customers else 0.0
    text = (f"- **Identity beyond the key:** {int(geography['countries']):,} distinct `country` values on the lines "
            f"({int(geography['no_country']):,} lines without one); the most common, {top}, has {n:,} of the "
            f"{customers:,} customers ({share:.0%}).")
    if share >= ONE_COUNTRY_SHARE:
        return text + " One country holds nearly everyone: a geographic segmentation splits off too little."
    return text + (" The customers are spread out: a geographic segmentation has groups big enough to compare "
                   "(do they differ in value?).")


def collection(result: Any) -> str:
    """Notebook 02's reading of the collected log: its span, its cohort, the lines nobody can be named for."""
    span, monthly = result.span, result.monthly
    first, last = pd.Timestamp(span["first_line"]), pd.Timestamp(span["last_line"])
    lines = [f"**What was collected.** {int(result.counts['lines']):,} lines from {first:%Y-%m-%d} to "
             f"{last:%Y-%m-%d} ({(last - first).days / 7:.0f} weeks, {len(monthly)} months with lines).",
             _cohort(span, result.acquisition), _identified(result.counts, span)]
    geography = _geography(result.geography, int(span["customers"]))
    lines += [geography] if geography else []
    returns, sales = -monthly["returns"].fillna(0).sum(), monthly["sales"].fillna(0).sum()
    if returns > 0:
        lines.append(f"- **Returns:** {returns:,.0f} of negative amounts against {sales:,.0f} of sales "
                     f"({returns / sales:.1%}) before cleaning; notebook 03 decides what they do to each customer.")
    if result.unmapped:
        lines.append(f"- **Not collected:** {', '.join(result.unmapped)}: only in the raw snapshot.")
    return "\n".join(lines)
