"""Notebook 01's interpretation: what this source records of each kind of customer information, and what it lacks.

The rules go by which canonical columns the parameter file maps (``DefineResult.mapping`` with its ``kind``
column, :func:`helpers.information.column_kinds`): a key alone or more identity; order numbers or not; product
codes or not (without them no preference can be derived).
"""

from __future__ import annotations

from typing import Any

#: The columns whose presence changes what can be derived, with the sentence for "present" and for "absent".
BUSINESS_RULES = {
    "order_id": ("orders are the source's own order numbers",
                 "the source has no order numbers, so an order is one customer's purchases on one day"),
    "product_code": ("product codes let later work derive what each customer prefers (the course's derived "
                     "information), and tell postage and fees from purchases",
                     "with no product codes nothing can be said about what a customer prefers: only when, how "
                     "often and how much they buy"),
}


def _present(mapping: Any, kind: str) -> list[str]:
    """The mapped columns of one kind, as markdown: ``canonical`` (``source``)."""
    rows = mapping[(mapping["kind"] == kind) & mapping["in this data set"]]
    return [f"`{c}` (`{s}`)" if s != c else f"`{c}`" for c, s in rows["source column"].items()]


def information(result: Any) -> str:
    """Notebook 01's reading of the mapping: the kinds of information this source has, lacks, and what follows.

    ``result`` is a :class:`helpers.stages.define.DefineResult` (its ``mapping`` with ``kind``; its ``channel``).
    """
    mapping = result.mapping
    has = mapping["in this data set"]
    identity, business = _present(mapping, "identity"), _present(mapping, "business")
    lines = [f"**What this data set records.** {int(has.sum())} of the contract's {len(mapping)} columns are "
             f"mapped: {len(identity)} of identity, {len(business)} of business information; derived "
             f"information is never in the source: notebooks 04-07 compute it."]
    if len(identity) <= 1:
        lines.append("- **Identity: a key and nothing else.** Nobody in this log has a country, a channel, a name "
                     "or an age: customers can be told apart and followed, but not described. Every segment later "
                     "is made from behaviour and value alone; a geographic segmentation is impossible here. To "
                     "know who the valuable customers are, join a direct source that records identity (a sign-up "
                     "form, a loyalty card) on the key.")
    else:
        lines.append(f"- **Identity beyond the key:** {', '.join(identity[1:])}. That is one attribute to segment "
                     "customers by before looking at their purchases (geography), and the only thing known about "
                     "a new customer before they buy much. Still nothing personal: no name, age or job.")
    for column, (present, absent) in BUSINESS_RULES.items():
        lines.append(f"- **{column}:** " + (present if has.get(column, False) else absent) + ".")
    if not has.get("amount", False):
        lines.append("- **amount** is not in the source: it is `quantity x unit_price` per line.")
    lines.append(f"- **Source:** {result.channel}.")
    return "\n".join(lines)
