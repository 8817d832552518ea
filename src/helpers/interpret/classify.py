"""Notebook 07's interpretation, generated from this run's numbers: models vs baselines, blind tiers, a rule, newcomers.

:func:`summary` returns markdown: does each boosted model beat its baseline
and by how much (and does the readable tree do as well), which tier the tier
model cannot see and why, what the tree's top rule says, and how many new
customers look like the valuable ones with what to do about them. The
sentences are chosen by the thresholds below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from helpers import classify as cf
from helpers import names
from helpers.classify.newcomers import VALUABLE
from helpers.sampling import sample_reading

if TYPE_CHECKING:
    from helpers.stages.classify import ClassifyResult

#: A model beats its baseline *clearly* when it is ahead by at least this much on every judged metric
#: (ROC-AUC, balanced accuracy, precision: all on a 0-1 scale); ahead by less is a tie in practice.
CLEAR_MARGIN = 0.02
#: A tier whose recall is below this is one the model barely sees (0: never predicted).
LOW_RECALL = 0.10
#: Two tiers look alike in their first days when their median early spend differs by less than this share.
SIMILAR_SPEND = 0.25
#: A flag on newcomers is worth acting on when its backtest precision is at least this multiple of the base rate.
LIFT_WORTH = 1.5


def verdict(answer: cf.Answer, what: str) -> str:
    """One sentence: does the boosted model of ``what`` beat its baseline clearly, narrowly, partly or not at all."""
    gaps = {m: answer.values(m)[0] - answer.values(m)[1] for m in answer.judged_on}
    if not gaps:
        return f"The {what} model cannot be compared with the {answer.baseline_name} (no metric is defined)."
    shown = "; ".join(f"{m} {answer.values(m)[0]:.3f} vs {answer.values(m)[1]:.3f} ({g:+.3f})" for m, g in gaps.items())
    if all(g >= CLEAR_MARGIN for g in gaps.values()):
        how = "beats its baseline clearly"
    elif all(g > 0 for g in gaps.values()):
        how = f"is ahead of its baseline, but by less than {CLEAR_MARGIN} on some measure: in practice a tie"
    elif all(abs(g) < CLEAR_MARGIN for g in gaps.values()):
        how = f"is level with its baseline (within {CLEAR_MARGIN} on every measure): the simple rule does the same job"
    elif any(g > 0 for g in gaps.values()):
        how = "wins on one measure and loses on another: it is not better than the simple rule"
    else:
        how = "does not beat the simple rule: use the rule"
    return f"The boosted {what} model {how} ({shown}; model vs {answer.baseline_name})."


def tree_versus_model(answer: cf.Answer, tree: cf.TreeAnswer | None) -> str:
    """Whether the readable tree ranks as well as the boosted model (on ROC-AUC), within :data:`CLEAR_MARGIN`."""
    if tree is None or not answer.metrics:
        return ""
    metric = next((m for m in answer.metrics if m.startswith("ROC-AUC")), answer.metrics[0])
    model, mine = answer.values(metric)[0], float(tree.metrics[metric])
    if not (np.isfinite(model) and np.isfinite(mine)):
        return ""
    if mine >= model + CLEAR_MARGIN:
        return (f" The depth-{cf.TREE_DEPTH} decision tree does better ({metric} {mine:.3f} vs {model:.3f}): the boosted "
                "model's extra questions do not pay here; prefer the tree, whose few rules the team can read and check.")
    if mine >= model - CLEAR_MARGIN:
        return (f" The depth-{cf.TREE_DEPTH} decision tree does as well ({metric} {mine:.3f} vs {model:.3f}): its "
                "few rules can be shown to the team and checked, which the boosted model's hundreds of trees cannot.")
    return (f" The depth-{cf.TREE_DEPTH} decision tree ranks worse ({metric} {mine:.3f} vs {model:.3f}): read it to "
            "understand the pattern, score with the boosted model.")


def blind_tiers(recall: pd.DataFrame | None) -> str:
    """The tiers the boosted model barely or never predicts, with support and recall, and why (early spend alike)."""
    if recall is None:
        return ""
    col = "median early_spend (training)"
    sentences = []
    for tier, row in recall.iterrows():
        if row["test customers"] == 0 or row["boosted model: recall"] >= LOW_RECALL:
            continue
        never = row["boosted model: predicted"] == 0
        said = (f"The tier model {'never predicts' if never else 'barely sees'} **{tier}**: "
                f"{int(row['test customers'])} test customers, predicted {int(row['boosted model: predicted'])} times "
                f"(recall {row['boosted model: recall']:.0%}; the tree: {int(row['tree: predicted'])} times).")
        alike = _alike(recall, str(tier), col)
        if alike:
            said += (f" In their first days they spend like **{alike}** customers (median {row[col]:,.2f} vs "
                     f"{recall.loc[alike, col]:,.2f}): what sets them apart comes later, so judge them by their "
                     "next purchases, not their first.")
        else:
            said += " It is a small class between others in what the model sees."
        sentences.append(said)
    return " ".join(sentences)


def _alike(recall: pd.DataFrame, tier: str, col: str) -> str | None:
    """The most common other tier whose median early spend is within :data:`SIMILAR_SPEND` of ``tier``'s, if any."""
    mine = recall.loc[tier, col]
    for other in recall.sort_values("test customers", ascending=False).index:
        theirs = recall.loc[other, col]
        if other != tier and np.isfinite(mine) and theirs > 0 and abs(mine - theirs) / theirs < SIMILAR_SPEND:
            return str(other)
    return None


def newcomers(result: ClassifyResult) -> str:
    """How many new customers there are, how many look valuable, how many are platinum already, and what to do."""
    n = result.newcomers
    if n is None or n.model is None:
        return "No prospects among new customers: both questions were skipped."
    b = n.backtest
    lift = b["precision"] / b["base_rate"] if b.get("flagged") and b.get("base_rate") else float("nan")
    how = (f"placed in {' or '.join(VALUABLE)} (high growth potential) by the tier model" if n.model == "tier" else
           f"the top {result.prospect_share:.0%} of newcomers by P(high value)")
    backtest = (f"On the backtest ({b['window']}) the flag ({how}) picked {b['flagged']:,} of {b['customers']:,}, of whom "
                f"{b['precision']:.0%} turned out valuable, against {b['base_rate']:.0%} of all ({lift:.1f} times)"
                if np.isfinite(lift) else
                f"The backtest ({b['window']}) flagged no one of {b['customers']:,}, so the flag cannot be judged"
                if not b.get("flagged") else
                f"On the backtest ({b['window']}) the flag picked {b['flagged']:,} of {b['customers']:,}, but nobody "
                "there turned out valuable, so the flag cannot be judged")
    worth = np.isfinite(lift) and lift >= LIFT_WORTH
    if n.new == 0:
        head = (f"**No new customers:** nobody's first purchase falls in the last {n.early_days} days - the log is "
                "one cohort, so today's prospects are all existing customers"
                + (f" ({n.existing_platinum:,} of the {n.existing_prospects:,} flagged are platinum already)"
                   if n.existing_prospects and n.existing_platinum is not None else "") + ". ")
        act = (" The flag would be worth using on the next cohort." if worth else
               " The flag would not be worth using on a new cohort as it stands.")
        return head + backtest + "." + act
    head = (f"**{n.flagged:,} of {n.new:,} new customers** (first purchase in the last {n.early_days} days) look like "
            f"the valuable ones; " + _already(n) + ". ")
    act = (" Contact the flagged newcomers now, while the relationship is forming (a welcome call, an offer for the "
           "second purchase), and check in one period whether they bought again." if worth else
           " The flag is too weak to spend on: treat new customers alike and let their next purchases sort them.")
    return head + backtest + "." + act


def _already(n: cf.NewProspects) -> str:
    """How many flagged newcomers (and existing prospects) are platinum already, or that this run has no tiers."""
    if n.flagged_platinum is None:
        return "this run has no value tiers to say whether they are platinum already"
    return (f"{n.flagged_platinum:,} of them are platinum already"
            + (f", against {n.existing_platinum:,} of the {n.existing_prospects:,} existing prospects"
               if n.existing_prospects and n.existing_platinum is not None else ""))


def summary(result: ClassifyResult) -> str:
    """Notebook 07's interpretation as markdown bullets, from this run's numbers."""
    bullets = []
    for answer, tree, what, skipped in [(result.tier_answer, result.tier_tree, "tier", result.q1_skipped),
                                        (result.value_answer, result.value_tree, "high-value", result.q2_skipped)]:
        if answer is None:
            bullets.append(f"The {what} question was skipped: {str(skipped).split(' (')[0].rstrip(':.')}.")
        else:
            bullets.append(verdict(answer, what) + tree_versus_model(answer, tree))
    bullets.append(blind_tiers(result.tier_recall()))
    tree, outcome = ((result.tier_tree, names.TIERS[0]) if result.tier_tree is not None
                     else (result.value_tree, "high value next period"))
    rule = cf.read_rule(tree, result.windows.early_days, outcome) if tree is not None else ""
    if rule:
        bullets.append("**The tree's top rule:** " + rule)
    bullets.append(newcomers(result))
    bullets.append(sample_reading(getattr(result, "sample_text", "")))
    return "\n".join(f"- {b}" for b in bullets if b.strip())
