"""Prospects in the course's sense: new customers, known only by their first days, who look like the valuable ones.

The prospects of :func:`helpers.classify.scoring.prospects` are the existing
customers most likely to be high value next period - mostly the champions a
firm already knows. A *prospect* in the material is someone the firm knows
little about yet. Here that is a **newcomer**: a customer whose first purchase
falls inside the last ``classify.early_days`` before ``as_of`` (their early
window is still open). A model trained on older customers places them:

* question 1's tier model (early behaviour -> value tier) flags a newcomer it
  places in a :data:`VALUABLE` tier (high growth potential: platinum or iron; the pyramid is a grid of
  current value x potential, and a newcomer's current value is small by definition);
* without tiers (question 1 skipped), question 2's model flags the top
  ``classify.prospect_share`` of the newcomers by P(high value next period)
  (at least one): newcomers' RFM features are short, so few of them reach the
  scores of established customers, and the question is which newcomers look best.

**Backtest.** Whether such flags are worth acting on is measured where the
outcome is known, earlier in the log: for question 1 on its test customers
(acquired later than the training customers, labelled at ``as_of``), for
question 2 on the newcomers at its test cut-off (labelled by their spend in the
last period). Precision is the share of flagged newcomers who did turn out
valuable; the base rate is that share among all of those newcomers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers import names
from helpers.tiers import TIER_AXES
from helpers.classify.models import Answer
from helpers.classify.splits import Split

#: The tiers a newcomer is flagged for by question 1's model: those of high growth potential (platinum, iron).
VALUABLE: tuple[str, ...] = tuple(tier for tier, (_, potential) in TIER_AXES.items() if potential)


@dataclass
class NewProspects:
    """Newcomers today and flagged among them, and the backtest of the same flag where the outcome is known."""

    model: str | None  # "tier" (question 1), "high value" (question 2) or None (both skipped)
    early_days: int
    new: int = 0  # newcomers today (first purchase within the last early_days)
    flagged: int = 0
    flagged_platinum: int | None = 0  # flagged newcomers already in the platinum tier (None: no tiers this run)
    existing_prospects: int = 0  # the existing prospects (top prospect_share by P(high value))
    existing_platinum: int | None = 0  # ... of whom already platinum (None: no tiers this run)
    backtest: dict[str, Any] = field(default_factory=dict)  # customers, flagged, hits, precision, base_rate, recall, window

    def table(self) -> pd.DataFrame:
        """Today's newcomers and the backtest side by side (one column each)."""
        b = self.backtest
        rows = [("newcomers", self.new, b.get("customers")), ("flagged", self.flagged, b.get("flagged")),
                ("flagged and already platinum", self.flagged_platinum, None),
                ("flagged who turned out valuable (precision)", None, _round(b.get("precision"))),
                ("valuable among all newcomers (base rate)", None, _round(b.get("base_rate"))),
                ("valuable newcomers found (recall)", None, _round(b.get("recall")))]
        return pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=["today", "backtest"],
                            dtype=object)

    def as_dict(self) -> dict[str, Any]:
        """For ``classification.json``: the counts and the backtest (NaN as None)."""
        out = {k: getattr(self, k) for k in ("model", "early_days", "new", "flagged", "flagged_platinum",
                                              "existing_prospects", "existing_platinum")}
        out["backtest"] = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in self.backtest.items()}
        return out


def _round(value: float | None) -> float | None:
    """A share rounded to 3 digits for a table; None when undefined.

    >>> _round(0.71875), _round(float("nan")), _round(None)
    (0.719, None, None)
    """
    return None if value is None or not np.isfinite(value) else round(float(value), 3)


def _rates(flag: np.ndarray, hit: np.ndarray) -> dict[str, Any]:
    """Counts, precision, base rate and recall of a flag against an outcome (NaN when undefined).

    >>> r = _rates(np.array([True, True, False, False]), np.array([True, False, False, True]))
    >>> r["precision"], r["base_rate"], r["recall"]
    (0.5, 0.5, 0.5)
    """
    n, flagged, hits, valuable = len(flag), int(flag.sum()), int((flag & hit).sum()), int(hit.sum())
    return {"customers": n, "flagged": flagged, "hits": hits,
            "precision": hits / flagged if flagged else float("nan"),
            "base_rate": valuable / n if n else float("nan"),
            "recall": hits / valuable if valuable else float("nan")}


def top_of(scores: pd.Series, share: float) -> pd.Series:
    """True for the ``share`` of the scored rows with the highest scores (at least one; NaN never; ties to the earlier).

    >>> top_of(pd.Series([0.2, np.nan, 0.9, 0.5]), 0.25).tolist()
    [False, False, True, False]
    """
    rank = scores.rank(method="first", ascending=False)
    return (rank <= max(1, int(np.ceil(share * scores.notna().sum())))).fillna(False).astype(bool)


def backtest_tiers(answer: Answer) -> dict[str, Any]:
    """Question 1's flag on its test customers: predicted in a :data:`VALUABLE` tier vs placed in one at ``as_of``."""
    split: Split = answer.split
    out = _rates(np.isin(answer.predicted, VALUABLE), split.y_test.isin(VALUABLE).to_numpy())
    out["window"] = f"customers acquired from {split.cut} on, question 1's test period, with their tier at as_of"
    return out


def backtest_high_value(answer: Answer, early_days: int, share: float) -> dict[str, Any]:
    """Question 2's flag on the newcomers at its test cut-off (tenure under ``early_days``) vs being high value after it."""
    split: Split = answer.split
    new = (split.x_test["tenure_days"] < early_days).to_numpy()
    out = _rates(top_of(pd.Series(answer.test_scores[new]), share).to_numpy(), split.y_test.to_numpy()[new] == 1)
    out["window"] = (f"customers whose first purchase fell in the {early_days} days before {split.cut}, question 2's "
                     "test cut-off, and whether they were high value in the period after it")
    return out


def new_prospects(scored: pd.DataFrame, early_days: int, share: float, tier_answer: Answer | None,
                  value_answer: Answer | None) -> NewProspects:
    """Newcomers today, those flagged, how many are platinum already, and the backtest of the flag.

    ``scored`` is the stage's table of today's customers (``early_window_complete``,
    ``predicted_tier``, ``p_high_value``, ``prospect``, ``value_tier``).
    """
    new = ~scored["early_window_complete"].to_numpy(dtype=bool)
    tier = scored["value_tier"] if "value_tier" in scored else pd.Series(np.nan, index=scored.index)
    platinum = (tier == names.TIERS[0]).to_numpy()
    tiered = bool(tier.notna().any())
    existing = scored["prospect"].to_numpy(dtype=bool)
    common = {"early_days": early_days, "new": int(new.sum()), "existing_prospects": int(existing.sum()),
              "existing_platinum": int((existing & platinum).sum()) if tiered else None}
    if tier_answer is not None:
        flag, model, backtest = scored["predicted_tier"].isin(VALUABLE).to_numpy(), "tier", backtest_tiers(tier_answer)
    elif value_answer is not None:
        flag = top_of(scored["p_high_value"].where(new), share).to_numpy()
        model, backtest = "high value", backtest_high_value(value_answer, early_days, share)
    else:
        return NewProspects(None, **common)
    flag = flag & new
    return NewProspects(model, flagged=int(flag.sum()), flagged_platinum=int((flag & platinum).sum()) if tiered else None,
                        backtest=backtest, **common)
