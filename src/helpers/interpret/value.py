"""Notebook 05's interpretation, generated from the run's numbers: lifecycle, gold customers, retention, naive sum.

:func:`interpretation` takes stage 05's result and returns markdown, one
bullet per finding; each bullet is chosen by a rule on this run's numbers
(the thresholds below) and states the numbers it rests on. Without a forecast
only the lifecycle bullets remain (they need no P(alive)), with the reason.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from helpers import names
from helpers.config import DECLINE_P_ALIVE
from helpers.sampling import sample_reading

#: Above this share of customers in decline or termination, the base is called fading.
FADING_SHARE = 0.5
#: A customer below this P(alive) is probably gone (a gold customer below it: a lapsed big spender): by default
#: the lifecycle's decline threshold; :func:`interpretation` passes the run's ``lifecycle.decline_p_alive``.
LAPSED_P_ALIVE = DECLINE_P_ALIVE
#: Above this share of lapsed gold customers, gold is called a tier of lapsed big spenders.
LAPSED_GOLD_SHARE = 0.5
#: Platinum's share of predicted CLV above its share of revenue by more than this: value is concentrating further.
CONCENTRATION_GAIN = 0.05
#: Below this ratio of CLV change to drop-out cut (at the largest cut), CLV is called insensitive to retention.
RETENTION_RESPONSIVE = 0.5
#: Above this ratio of the naive sum to the model's CLV, the naive sum is called a large overstatement.
NAIVE_OVERSTATES = 1.5

ACQUISITION, GROWTH, MATURITY, DECLINE, TERMINATION = names.LIFECYCLE


def _pct(x: float) -> str:
    return f"{x:.0%}"


def acquisition_sentence(value: pd.DataFrame, acquisition_days: int, as_of: Any) -> str:
    """Whether anyone is in the acquisition stage, and what an empty one says about the data.

    >>> v = pd.DataFrame({"lifecycle_stage": ["decline", "growth"],
    ...                   "first_purchase": pd.to_datetime(["2020-01-01", "2020-02-01"])})
    >>> acquisition_sentence(v, 30, pd.Timestamp("2021-01-01").date())[:40]
    '**Nobody is in acquisition.** The newest'
    """
    new = int((value["lifecycle_stage"] == ACQUISITION).sum())
    first = pd.to_datetime(value["first_purchase"])
    if new == 0:
        gap = (pd.Timestamp(as_of) - first.max()).days
        return (f"**Nobody is in acquisition.** The newest customer's first purchase was on {first.max():%Y-%m-%d}, "
                f"{gap:,} days before as_of (the window is {acquisition_days} days): every first purchase falls "
                f"between {first.min():%Y-%m-%d} and {first.max():%Y-%m-%d}, so these customers are one cohort "
                "that is only growing older. This log cannot show how new customers develop; to study "
                "acquisition, use data in which customers keep arriving.")
    return (f"**{new:,} customers ({_pct(new / len(value))}) are in acquisition** (first purchase in the last "
            f"{acquisition_days} days): too new to judge; what matters for them is a second purchase, so the first "
            "weeks are where a welcome offer pays.")


def decline_sentence(value: pd.DataFrame, forecast: bool) -> str:
    """How much of the base is in decline or termination, and how much predicted value it still holds."""
    stages = value["lifecycle_stage"]
    decline, gone = float((stages == DECLINE).mean()), float((stages == TERMINATION).mean())
    fading = decline + gone
    value_held = ""
    if forecast and value["clv"].sum() > 0:
        share = value.loc[stages.isin([DECLINE, TERMINATION]), "clv"].sum() / value["clv"].sum()
        value_held = f"; together they hold {_pct(share)} of predicted CLV"
    if fading > FADING_SHARE:
        return (f"**Most of the base is fading: {_pct(decline)} in decline, {_pct(gone)} in termination**"
                f"{value_held}. Spend on winning back the ones with the most past spend, not on everyone: a "
                "win-back offer to a customer who is gone costs as much as one to a customer who may return.")
    steady = float(stages.isin([GROWTH, MATURITY]).mean())
    numbers = f"{_pct(steady)} in growth or maturity, {_pct(fading)} in decline or termination{value_held}"
    if fading > steady:
        return (f"**More customers are fading than active:** {numbers}. The decline stage is where to act first: "
                "a reminder or an offer to the ones who used to buy most, before they lapse for good.")
    lead = "The base is mostly active" if steady > 0.5 else "As many customers are active as fading, or more"
    return (f"**{lead}:** {numbers}. Keep the active customers' rhythm; watch the decline stage "
            "for early warnings.")


def pyramid_sentence(tiers: pd.DataFrame) -> str:
    """What the pyramid drawn to scale shows: how few platinum customers carry how much value, now and ahead.

    >>> t = pd.DataFrame({"customers": [15, 5, 5, 75], "revenue_share": [0.54, 0.14, 0.05, 0.27],
    ...                   "clv_share": [0.75, 0.02, 0.07, 0.16]}, index=["platinum", "gold", "iron", "lead"])
    >>> pyramid_sentence(t)[:57]
    '**Value is concentrating further at the top:** platinum i'
    """
    top = tiers.loc["platinum"]
    share = top["customers"] / tiers["customers"].sum()
    numbers = (f"platinum is {_pct(share)} of customers and brought {_pct(top['revenue_share'])} of revenue so far, "
               f"but holds {_pct(top['clv_share'])} of predicted CLV")
    if top["clv_share"] > top["revenue_share"] + CONCENTRATION_GAIN:
        return (f"**Value is concentrating further at the top:** {numbers} (the columns beside the pyramid drawn to "
                "scale). Invest the most care where the future value is, and guard it: losing one platinum "
                "customer costs as much as losing many lead ones.")
    return (f"**Future value is no more concentrated than past revenue:** {numbers}. The tiers below platinum "
            "still carry much of what is to come; spread the effort accordingly.")


def gold_sentence(value: pd.DataFrame, lapsed_below: float = LAPSED_P_ALIVE) -> str:
    """Whether gold customers (high spend so far, low predicted value) are lapsed big spenders or slow buyers.

    >>> v = pd.DataFrame({"value_tier": ["gold", "gold", "lead"], "p_alive": [0.1, 0.2, 0.9],
    ...                   "monetary_total": [90.0, 80.0, 5.0], "clv": [1.0, 1.0, 9.0]})
    >>> gold_sentence(v)[:60]
    '**Gold customers are mostly lapsed big spenders:** 2 of the '
    """
    gold = value[value["value_tier"] == "gold"]
    if gold.empty:
        return "**No gold customers**: nobody combines high spend so far with low predicted value."
    lapsed = float((gold["p_alive"] < lapsed_below).mean())
    revenue = gold["monetary_total"].sum() / value["monetary_total"].sum()
    clv = gold["clv"].sum() / value["clv"].sum() if value["clv"].sum() > 0 else 0.0
    numbers = (f"{int((gold['p_alive'] < lapsed_below).sum()):,} of the {len(gold):,} gold customers "
               f"({_pct(lapsed)}) have P(alive) below {lapsed_below:g}; gold brought {_pct(revenue)} of revenue "
               f"so far but holds {_pct(clv)} of predicted CLV")
    if lapsed > LAPSED_GOLD_SHARE:
        return (f"**Gold customers are mostly lapsed big spenders:** {numbers}. They are not loyal customers to "
                "keep warm but the material's lost customers: find out why the best of them left and try to win "
                "them back; routine retention offers reach nobody.")
    lead = "Gold customers are mostly still buying, slowly" if lapsed < 0.5 else "Half of the gold customers are still buying"
    return (f"**{lead}:** {numbers}. Their low potential is a low buying "
            "rate, not leaving: invest to keep the relationship, and look for what would make them buy more often.")


def retention_sentence(retention: pd.DataFrame, model: str, horizon_months: int, long_months: int) -> str:
    """What the retention what-if says: how strongly the cohort's CLV, and a new customer's, respond."""
    last = retention.iloc[-1]
    cut, change = float(last["cut"]), float(last["clv_change"])
    new, long = float(last["new_customer_change"]), float(last["new_customer_long_change"])
    numbers = (f"with {_pct(cut)} fewer drop-outs ({model}), the cohort's CLV over {horizon_months} months "
               f"changes by {change:+.1%}, a new customer's by {new:+.1%} over {horizon_months} months and "
               f"{long:+.1%} over {long_months}")
    if change / cut < RETENTION_RESPONSIVE:
        lever = ("; the lever is larger for a new customer, and grows with the length of the relationship"
                 if new > change else "")
        return (f"**Retention moves this cohort's value less than in proportion:** {numbers}. These customers' "
                "own histories already say who is still buying, so a lower population drop-out changes few "
                f"forecasts{lever}. A what-if on the fitted model, not the effect of a campaign.")
    return (f"**Value responds strongly to retention:** {numbers}. Keeping customers is worth real money here: "
            "price a retention programme against these gains. A what-if on the fitted model, not the effect of a "
            "campaign.")


def naive_sentence(naive: pd.DataFrame, value: pd.DataFrame, lapsed_below: float = LAPSED_P_ALIVE) -> str:
    """How far the naive sum is from the model's CLV, and what the gap is made of (without a model: what is unknown)."""
    from helpers.clv.retention import naive_value

    if "vs_model" not in naive:
        repeat = float((value["frequency"] > 1).mean())
        return (f"**The naive sum is all there is, and it ignores drop-out:** {naive['total'].iloc[0]:,.0f} over the "
                f"horizon ({naive['total'].iloc[1]:,.0f} discounted), counting every customer as still buying at "
                f"their past rate. {_pct(repeat)} of customers bought more than once, but no sound model could say "
                "how many have left since: read it as the value if nobody drops out and all keep their past rate.")
    ratio = float(naive["vs_model"].iloc[0])
    discounting = 1 - float(naive["total"].iloc[1] / naive["total"].iloc[0])
    numbers = (f"the naive sum (spend x purchases per year x years) is {naive['total'].iloc[0]:,.0f}, "
               f"{ratio:.1f} times the model's {naive['total'].iloc[-1]:,.0f}; discounting accounts for "
               f"{_pct(discounting)} of the naive sum")
    if ratio > NAIVE_OVERSTATES:
        per_customer = naive_value(value, 12)  # a share of the sum: the horizon and margin cancel
        gone = float(per_customer[value["p_alive"] < lapsed_below].sum() / per_customer.sum())
        return (f"**The naive lifetime value overstates by far:** {numbers}; most of the rest is drop-out: "
                f"{_pct(gone)} of the naive sum comes from customers with P(alive) below {lapsed_below:g}, "
                "priced as if they were still buying. Budgets set on the naive sum would be too large.")
    return (f"**The naive sum is close to the model here:** {numbers}. Few customers have left, so past rates "
            "are a fair guide; the model still tells who is likely gone.")


def interpretation(result: Any) -> str:
    """Notebook 05's interpretation: one markdown bullet per finding, from this run's numbers."""
    value, c = result.value, result.params.clv
    bullets = [acquisition_sentence(value, result.acquisition_days, result.params.as_of),
               decline_sentence(value, result.forecast)]
    if not result.forecast:
        from helpers.stages.value_views import headline

        bullets += [f"**No P(alive), CLV, value pyramid or retention what-if:** {headline(result.forecast_reason)} "
                    "(the reasons are above).",
                    naive_sentence(result.naive, value)]
    else:
        from helpers.clv import MODEL_LABELS
        from helpers.clv.retention import LONG_HORIZON_MONTHS

        model = MODEL_LABELS[result.fit.name]
        lapsed_below = result.params.lifecycle.decline_p_alive
        bullets += [pyramid_sentence(result.tiers), gold_sentence(value, lapsed_below),
                    *([] if result.retention is None else  # no what-if for BG/BB (discrete time)
                      [retention_sentence(result.retention, model, c.horizon_months, LONG_HORIZON_MONTHS)]),
                    naive_sentence(result.naive, value, lapsed_below)]
    bullets.append(sample_reading(getattr(result, "sample_text", "")))
    return "**What this run's numbers say**\n\n" + "\n".join(f"- {b}" for b in bullets if b)
