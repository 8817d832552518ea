"""The report's generated words: the manager summary at the top and the migration by tier and class.

:func:`summary` is one paragraph built from this run's numbers (stage 08's
:class:`helpers.stages.report.ReportResult`): who the valuable customers are
(the A and B classes' share of customers and of revenue, the platinum tier's
share of predicted value), how many are slipping away, the forecast's error on
its holdout, what to do first, and how many caveats qualify it. Every sentence
is a template translated first and filled afterwards (``result.t``). The rule
that picks "what to do first" uses the thresholds below.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from helpers.config import DECLINE_P_ALIVE
from helpers.migration import GridMoves, grid_text, ladder_text

#: A share of the valuable customers (classes A and B) with P(alive) below the run's decline threshold this large makes winning them
#: back the first thing to do.
LAPSED_VALUABLE_SHARE = 0.25
#: A share of revenue this large held by customers in slipping segments makes reactivating them the first thing.
SLIPPING_REVENUE_SHARE = 0.10
#: A holdout error (percent, either way) larger than this makes the summary say: read CLV as a ranking.
LARGE_FORECAST_ERROR_PCT = 20.0
#: The states whose segments count as slipping away (:data:`helpers.names.SEGMENT_STATES`).
SLIPPING = ("slipping",)


def _valuable(export: pd.DataFrame) -> pd.Series:
    """Which customers are valuable: classes A and B of the 80/20 split (key and major customers)."""
    return export["abc_class"].isin(["A", "B"]) if "abc_class" in export else pd.Series(False, index=export.index)


def valuable_sentence(result: Any) -> str:
    """Who the valuable customers are: the A and B classes' shares, and the platinum tier's share of CLV."""
    t, x = result.t, result.export
    valuable = _valuable(x)
    revenue = x["monetary_total"].sum()
    text = t("The {customers:.0%} of customers in classes A and B ({names}) hold {revenue:.0%} of revenue.").format(
        customers=valuable.mean(), names=t(" and ").join(result.abc_names[c] for c in "AB"),
        revenue=x.loc[valuable, "monetary_total"].sum() / revenue if revenue else 0.0)
    if result.forecast and x["clv"].notna().any() and x["clv"].sum() > 0:
        platinum = x["value_tier"].eq("platinum")
        text += " " + t("The {tier} customers ({share:.0%} of customers) hold {clv:.0%} of the predicted value (CLV).").format(
            tier=t("platinum"), share=platinum.mean(), clv=x.loc[platinum, "clv"].sum() / x["clv"].sum())
    return text


def slipping_facts(result: Any) -> dict[str, Any]:
    """Customers slipping away: in slipping segments now (and their revenue share), valuable ones probably lost.

    A valuable (A or B) customer has probably lapsed when P(alive) is below the run's ``lifecycle.decline_p_alive``
    (``cut``, from the metrics); without a forecast, when their
    segment's state is slipping or lost.
    """
    x, states = result.export, result.states or {}
    segments = [s for s, state in states.items() if state in SLIPPING]
    slipping = x["rfm_segment"].isin(segments)
    revenue = x["monetary_total"].sum()
    valuable = _valuable(x)
    gone = [s for s, state in states.items() if state in (*SLIPPING, "lost")]  # without a forecast: by segment
    cut = result.metrics.get("decline_p_alive") or DECLINE_P_ALIVE
    lapsed = valuable & ((x["p_alive"] < cut) if result.forecast else x["rfm_segment"].isin(gone))
    return {"segments": segments, "customers": int(slipping.sum()),
            "revenue_share": float(x.loc[slipping, "monetary_total"].sum() / revenue) if revenue else 0.0,
            "valuable": int(valuable.sum()), "valuable_lapsed": int(lapsed.sum()),
            "moved_away": (result.moved or {}).get("slipping_away"), "cut": cut}


def slipping_sentence(result: Any, facts: dict[str, Any]) -> str:
    """How many are slipping away: since the last report (when there is one), in slipping segments, lapsed A/B."""
    t = result.t
    parts = []
    one = facts["moved_away"] == 1
    if facts["moved_away"] is not None:
        parts.append(t("Since the last report, {n:,} customer slipped into a slipping or lost segment." if one else
                       "Since the last report, {n:,} customers slipped into a slipping or lost segment.").format(
            n=facts["moved_away"]))
    if facts["segments"]:
        parts.append(t("{n:,} customer ({share:.0%} of revenue) is in a segment that is slipping away ({names})."
                       if facts["customers"] == 1 else
                       "{n:,} customers ({share:.0%} of revenue) are in segments that are slipping away ({names}).")
                     .format(n=facts["customers"], share=facts["revenue_share"],
                             names=t(", ").join(t(s) for s in facts["segments"])))
    one = facts["valuable_lapsed"] == 1
    parts.append((t("Of the {valuable:,} key and major customers, {lapsed:,} has probably lapsed (P(alive) below {cut})."
                    if one else
                    "Of the {valuable:,} key and major customers, {lapsed:,} have probably lapsed (P(alive) below {cut}).")
                  if result.forecast else
                  t("Of the {valuable:,} key and major customers, {lapsed:,} is in a slipping or lost segment." if one else
                    "Of the {valuable:,} key and major customers, {lapsed:,} are in slipping or lost segments."))
                 .format(valuable=facts["valuable"], lapsed=facts["valuable_lapsed"], cut=f"{facts['cut']:g}"))
    return " ".join(parts)


def forecast_sentence(result: Any) -> str:
    """The forecast's validated error on its holdout (or that there is no forecast)."""
    t = result.t
    holdout = result.metrics.get("holdout") or {}
    if not result.forecast or holdout.get("total_error_pct") is None:
        return t("There is no forecast of future value in this run, so the report ranks customers by past spend.")
    error = float(holdout["total_error_pct"])
    text = t("On purchases it had not seen, the forecast missed the total by {error:+.1f}% and each customer by "
             "{mae:.2f} purchases on average.").format(error=error, mae=float(holdout.get("mae") or 0.0))
    if abs(error) > LARGE_FORECAST_ERROR_PCT:
        text += " " + t("That is a large miss: read predicted value as a ranking, not as money.")
    return text


def first_action(result: Any, facts: dict[str, Any]) -> str:
    """What to do first, by the rule of the module's thresholds (lapsed valuable, slipping revenue, else care)."""
    t = result.t
    if facts["valuable"] and facts["valuable_lapsed"] / facts["valuable"] >= LAPSED_VALUABLE_SHARE:
        return t("First: contact the {n:,} key and major customers who have probably lapsed, personally, and ask "
                 "what went wrong; they are {share:.0%} of the valuable customers.").format(
            n=facts["valuable_lapsed"], share=facts["valuable_lapsed"] / facts["valuable"])
    if facts["revenue_share"] >= SLIPPING_REVENUE_SHARE:
        return t("First: a personal reactivation offer to the {n:,} customers of the slipping segments, who hold "
                 "{share:.0%} of revenue, before they are lost.").format(n=facts["customers"],
                                                                         share=facts["revenue_share"])
    return t("First: keep the key customers close (a named contact, complaints handled first); few valuable "
             "customers are slipping away now.")


def caveats_sentence(result: Any) -> str:
    """How many caveats qualify these numbers, and from which notebooks."""
    caveats = result.metrics.get("caveats") or []
    if not caveats:
        return ""
    stages = sorted({c["stage"][:2] for c in caveats})
    if len(caveats) == 1:
        return result.t("1 caveat qualifies these numbers (notebook {stages}; the box below).").format(stages=stages[0])
    return result.t("{n} caveats qualify these numbers (notebooks {stages}; the box below).").format(
        n=len(caveats), stages=", ".join(stages))


def summary(result: Any) -> str:
    """The manager summary: one paragraph from this run's numbers, with its caveats (markdown)."""
    facts = slipping_facts(result)
    parts = [valuable_sentence(result), slipping_sentence(result, facts), forecast_sentence(result),
             f"**{first_action(result, facts)}**", caveats_sentence(result)]
    return " ".join(p for p in parts if p)


def migration_texts(result: Any) -> list[str]:
    """One sentence per ordered scale the customers moved on since the earlier report (tiers, A/B/C classes)."""
    t = result.t
    labels = {"value_tier": (t("Value tiers"), t), "abc_class": (t("A/B/C classes"), lambda c: result.abc_names[c])}
    return [(grid_text if isinstance(moves, GridMoves) else ladder_text)(moves, labels[column][0], labels[column][1], t)
            for column, moves in (result.ladders or {}).items()]
