"""Notebook 03's interpretation: how much cleaning removed, which rule removed most and what that means.

Read from :class:`helpers.stages.clean.CleanResult` (its quality log, overview and ``keys_in``).
"""

from __future__ import annotations

from typing import Any

#: Cleaning that removes more than this share of the lines changes who looks valuable: compare the rule choices.
HEAVY_CLEANING_SHARE = 0.05

#: What the lines each rule removes are, and why keeping them would mislead (the biggest rule's sentence).
RULE_MEANING = {
    "bad_lines": "text lines with more fields than the header: broken lines of the file, not purchases",
    "missing_customer_id": "purchases nobody can be named for: they would belong to no customer's history",
    "future_timestamps": "lines dated after `as_of`: data errors, or purchases the observation window must not see",
    "exact_duplicates": "the same line twice: kept, it would count a purchase twice and inflate frequency and spend",
    "non_product_lines": "postage, fees and adjustments: not purchases, yet kept they would add to every "
                         "customer's spend and frequency",
    "cancellations": "cancellations and returns: kept as purchases they would count revenue the firm gave back",
    "non_positive_price": "lines with no price: free items or corrections, not revenue",
}


def _customers(result: Any) -> str:
    """The customer keys that came in against the customers the clean table keeps."""
    keys_in, customers = result.keys_in, int(result.overview["customers"])
    if keys_in == customers:
        return f"- **Customers:** all {customers:,} customer keys that came in are still there."
    return (f"- **Customers:** {keys_in:,} customer keys came in, {customers:,} customers remain: "
            f"{keys_in - customers:,} are gone (every line of theirs removed, or their key merged with another).")


def cleaning(result: Any) -> str:
    """Notebook 03's reading of the quality log: the share removed, the biggest rule, the customers kept."""
    log = result.quality
    removed = int(log["rows_removed"].sum())
    off = log.loc[~log["enabled"].astype(bool), "rule"].tolist()
    rewritten = int(log.loc[log["rule"] == "normalise_ids", "rows_modified"].sum())
    lines = []
    if not removed:
        lines.append(f"**Nothing removed.** All {result.rows_in:,} lines passed every rule that is on; "
                     f"{len(off)} of {len(log)} rules are off for this data set ({', '.join(off) or 'none'}: the "
                     "parameter file says why). The log was clean as collected; what no rule can tell is whether a "
                     "purchase was later returned outside the log.")
    else:
        share = removed / result.rows_in
        biggest = log.loc[log["rows_removed"].idxmax()]
        lines.append(f"**Cleaning removed {removed:,} of {result.rows_in:,} lines ({share:.1%}).** The biggest rule "
                     f"is `{biggest['rule']}`: {int(biggest['rows_removed']):,} line(s) ({biggest['rows_removed'] / removed:.0%} "
                     f"of those removed, worth {biggest['amount_removed']:,.0f}), "
                     f"{RULE_MEANING.get(str(biggest['rule']), 'see its note')}.")
        others = log[(log["rows_removed"] > 0) & (log["rule"] != biggest["rule"])]
        if len(others):
            lines.append("- **The other rules:** " + "; ".join(
                f"`{r.rule}` {int(r.rows_removed):,}" for r in others.itertuples()) + ".")
        if share > HEAVY_CLEANING_SHARE:
            lines.append(f"- **More than {HEAVY_CLEANING_SHARE:.0%} of the lines went**, so the rules shape who "
                         "looks valuable: rerun with another choice for the biggest rules (e.g. "
                         "`cleaning.cancellations: net`) and compare the customers.")
    if rewritten:
        lines.append(f"- **Integration:** {rewritten:,} lines had their customer key rewritten, so one customer is "
                     "one key wherever they appear.")
    lines.append(_customers(result))
    return "\n".join(lines)
