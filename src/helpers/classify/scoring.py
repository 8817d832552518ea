"""Stage 07's scores for today's customers (predicted tier, P(high value), prospects) and its JSON helpers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from helpers.classify.models import ROUNDS, make_model, predict_rows
from helpers.classify.splits import RFM_FEATURES, TRAIN_SAMPLE, Split, _sample_rows, early_features


def prospects(p_high_value: pd.Series, share: float, allowed: bool) -> pd.Series:
    """True for the ``share`` of customers with the highest P(high value) - only when ``allowed``.

    ``allowed`` is whether the model beat its baseline on the held-out period:
    a model that ranks customers no better than their RFM score flags nobody.
    Customers without a score are never prospects; ties go to the earlier row.

    >>> p = pd.Series([0.9, 0.1, 0.5, np.nan])
    >>> prospects(p, 0.5, True).tolist(), prospects(p, 0.5, False).tolist()
    ([True, False, True, False], [False, False, False, False])
    """
    if not allowed:
        return pd.Series(False, index=p_high_value.index)
    rank = p_high_value.rank(method="first", ascending=False)
    return (rank <= np.ceil(share * len(p_high_value))).fillna(False).astype(bool)


def score_customers(days: pd.DataFrame, customers: pd.DataFrame, as_of: dt.date, tier_split_: Split | None,
                    value_split: Split | None, now: pd.DataFrame | None, early_days: int, seed: int = 42, *,
                    prospect_share: float = 0.1, flag_prospects: bool = True,
                    train_sample: int | None = None, rounds: int = ROUNDS) -> pd.DataFrame:
    """The stage's artifact: for every customer, a predicted tier and a probability of high value next period.

    Both models are refitted on everything labelled (for question 2, the most
    recent period) before scoring today's customers. A skipped question (its
    split None) leaves its column empty (``predicted_tier`` None,
    ``p_high_value`` NaN). ``early_window_complete`` is False for customers
    acquired less than ``early_days`` before ``as_of`` (their early behaviour is
    still incomplete). ``prospect`` marks the ``prospect_share`` with the highest
    P(high value), and nobody unless ``flag_prospects`` (see :func:`prospects`).
    ``days`` are the run's purchase days (for the early features when ``tier_split_`` has none).
    """
    size = TRAIN_SAMPLE if train_sample is None else train_sample
    out = pd.DataFrame(index=customers["customer_id"].rename("customer_id"))
    out["predicted_tier"] = pd.Series(None, index=out.index, dtype=object)
    first = pd.to_datetime(customers.set_index("customer_id")["first_purchase"]).dt.normalize()
    if tier_split_ is not None:
        tier_model = make_model(seed, rounds).fit(*_sample_rows(pd.concat([tier_split_.x_train, tier_split_.x_test]),
                                                        pd.concat([tier_split_.y_train, tier_split_.y_test]), size, seed))
        countries = [c[len("country_"):] for c in tier_split_.x_train.columns if c.startswith("country_")] or None
        early = (tier_split_.features if tier_split_.features is not None
                 else early_features(days, early_days, countries))
        predicted = pd.Series(predict_rows(tier_model, early[tier_split_.x_train.columns], "predict"), index=early.index,
                              dtype=object)
        out["predicted_tier"] = predicted.reindex(out.index)
        first = early["first_purchase"]
    out["early_window_complete"] = (first + pd.Timedelta(days=early_days) <= pd.Timestamp(as_of)).reindex(out.index)
    out["early_window_complete"] = out["early_window_complete"].fillna(False).astype(bool)
    out["p_high_value"] = np.nan
    if value_split is not None and now is not None:
        value_model = make_model(seed, rounds).fit(*_sample_rows(value_split.x_test, value_split.y_test, size, seed))
        p_high = predict_rows(value_model, now[RFM_FEATURES])[:, 1]
        out["p_high_value"] = pd.Series(p_high, index=now.index).reindex(out.index)
    out["prospect"] = prospects(out["p_high_value"], prospect_share, flag_prospects and value_split is not None)
    return out.reset_index()


def number(value: float | None) -> float | None:
    """A number for JSON: None when undefined (NaN, infinite or None), else a float.

    >>> number(0.5), number(float("nan")), number(None)
    (0.5, None, None)
    """
    return float(value) if value is not None and np.isfinite(value) else None


def finite_or_none(values: dict[str, float] | None) -> dict[str, float | None] | None:
    """A dict of numbers with undefined (NaN) values as None, for JSON.

    >>> finite_or_none({"a": 0.5, "b": float("nan")})
    {'a': 0.5, 'b': None}
    """
    return None if values is None else {k: number(v) for k, v in values.items()}


def jsonable(table: pd.DataFrame | None) -> dict[str, Any] | None:
    """A metrics table as a JSON-ready dict (column -> row -> value), undefined values as None (not NaN)."""
    if table is None:
        return None
    return {col: {row: (None if pd.isna(v) else float(v)) for row, v in table[col].items()} for col in table.columns}
