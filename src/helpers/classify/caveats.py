"""Stage 07's caveats: this run's numbers as the sentences that travel with the headline numbers.

``classification.json["caveats"]``: a model that does not beat its baseline, a
question 1 ROC-AUC that is near-tautological because the early window already
holds what sets the tier (:func:`label_overlap`), too little to learn from, a
tier the model never saw, skipped questions.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from helpers.caveats import caveat
from helpers.classify.models import TIER_AUC, Answer, _fmt, _pct
from helpers.classify.splits import Split

#: Caveat thresholds: fewer training customers (question 1) or high-value training customers
#: (question 2) than these make a model that rests on very little.
FEW_TRAINING, FEW_POSITIVES = 200, 20
#: Question 1's label (the tier at ``as_of``) is set largely by spend; when the early window already
#: holds this share of the test customers' spend, or is this share of their median tenure, a high
#: ROC-AUC is near-tautological: the features contain the label.
SEEN_SPEND_LIMIT, EARLY_TENURE_LIMIT = 0.8, 0.5


def label_overlap(split: Split, customers: pd.DataFrame, early_days: int, as_of: dt.date) -> dict[str, float]:
    """How much of what sets question 1's label the early features already see, for the test customers.

    ``spend_seen``: share of their spend up to ``as_of`` made inside their early
    windows; ``no_later_purchase``: share of them who bought nothing after it;
    ``median_tenure_days`` and ``early_share_of_tenure`` (``early_days`` over that median).
    """
    ids = split.x_test.index
    table = customers.set_index("customer_id").reindex(ids)
    feats = split.features.reindex(ids) if split.features is not None else split.x_test
    total = float(table["monetary_total"].sum())
    seen = float(feats["early_spend"].sum())
    later = table["frequency"].to_numpy() > feats["early_purchases"].to_numpy()
    tenure = float(np.median((pd.Timestamp(as_of) - pd.to_datetime(table["first_purchase"])).dt.days)) if len(ids) else float("nan")
    return {"spend_seen": seen / total if total > 0 else float("nan"),
            "no_later_purchase": float(1 - later.mean()) if len(ids) else float("nan"),
            "median_tenure_days": tenure,
            "early_share_of_tenure": early_days / tenure if tenure > 0 else float("nan")}


def tier_caveats(answer: Answer | None, skipped: str | None, overlap: dict[str, float] | None = None,
                 tiers_present: list[str] | None = None, early_days: int | None = None) -> list[dict[str, str]]:
    """Question 1's caveats: skipped, not beating its baseline, a near-tautological AUC, too little to learn from."""
    if answer is None:
        return [caveat("q1_skipped", f"Question 1 (the value tier of new customers) was skipped: {skipped}.")]
    out = []
    if answer.beats_baseline is not True:
        losses, wins = answer.losses(), answer.wins()
        how = "; ".join(losses) or "no metric is defined on the test period"
        out.append(caveat("q1_not_beating_baseline",
                           f"The tier model does not beat its one-rule baseline on the test period ({how}): on "
                           f"{'that measure' if len(losses) == 1 else 'these measures'} its predictions are no better "
                           "than binning customers by early spend"
                           + (f", though it does better on {'; '.join(wins)}." if wins else ".")))
    if overlap:
        model_auc = answer.table.loc[TIER_AUC, "model"]
        reasons = []
        if overlap["spend_seen"] >= SEEN_SPEND_LIMIT:
            reasons.append(f"the first {early_days} days after acquisition already hold {_pct(overlap['spend_seen'])} of "
                           f"the test customers' spend up to as_of ({_pct(overlap['no_later_purchase'])} of them bought "
                           "nothing later), and the tier is set largely by that spend")
        if overlap["early_share_of_tenure"] >= EARLY_TENURE_LIMIT:
            reasons.append(f"the early window of {early_days} days is {_pct(overlap['early_share_of_tenure'])} of the test "
                           f"customers' median time as customers ({overlap['median_tenure_days']:.0f} days)")
        if reasons:
            out.append(caveat("q1_auc_near_tautological",
                               f"Question 1's ROC-AUC of {_fmt(model_auc)} is near-tautological: " + "; and ".join(reasons)
                               + ". It says how well the first days describe what is already known, not how well they "
                                 "predict later value."))
    n_train = len(answer.split.y_train)
    if n_train < FEW_TRAINING:
        out.append(caveat("q1_few_training", f"The tier model learned from only {n_train:,} customers (below "
                                              f"{FEW_TRAINING}); its scores can change a lot with a few more."))
    missing = [t for t in (tiers_present or []) if t not in set(answer.split.y_train)]
    if missing:
        out.append(caveat("q1_tier_missing_from_training",
                           f"Tier{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                           f"{'are' if len(missing) > 1 else 'is'} absent from the training customers (acquired before "
                           f"{answer.split.cut}), so the model never predicts {'them' if len(missing) > 1 else 'it'}."))
    return out


def value_caveats(answer: Answer | None, skipped: str | None, prospect_share: float) -> list[dict[str, str]]:
    """Question 2's caveats: skipped, not beating the RFM score (then no prospects), too few high-value customers."""
    if answer is None:
        return [caveat("q2_skipped", f"Question 2 (next period's high-value customers) was skipped, so no customer "
                                      f"is flagged as a prospect: {skipped}.")]
    out = []
    if answer.beats_baseline is None:
        out.append(caveat("q2_not_judged", f"The high-value model cannot be judged on the test period "
                                            f"({answer.shown()}), so no customer is flagged as a prospect."))
    elif not answer.beats_baseline:
        out.append(caveat("q2_not_beating_baseline",
                           f"The high-value model does not beat the RFM-score baseline on the test period "
                           f"({'; '.join(answer.losses())}), so no customer is flagged as a prospect (the top "
                           f"{prospect_share:.0%} would have been): rank customers by their RFM score instead."))
    positives = int(answer.split.y_train.sum())
    if positives < FEW_POSITIVES:
        out.append(caveat("q2_few_positives", f"The high-value model learned from only {positives} high-value customers "
                                               f"(below {FEW_POSITIVES}); its ranking rests on very few examples."))
    return out
