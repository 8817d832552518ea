"""Stage 07's features, labels and time splits: what each question's model may see, and what it must predict.

Question 1 (:func:`tier_split`): what is known ``early_days`` after a customer's
first purchase -> their value tier at ``as_of``; learning from the earlier
acquired, testing on the later acquired. Question 2 (:func:`high_value_split`):
RFM features at a cut-off -> top ``target_share`` of spend over the next
``label_days``; trained one period earlier than tested. Every feature is
computed from purchases on or before its cut-off. Too little history raises a
:class:`DataError` naming the parameter to change; :func:`attempt` turns it
into a skip reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from helpers import names, summary_sql
from helpers.config import ClassifyParams
from helpers.errors import DataError
from helpers.summary import customer_table

EARLY_FEATURES = ["first_order_value", "early_purchases", "early_spend", "early_mean_spend"]
RFM_FEATURES = ["recency_days", "frequency", "monetary_total", "monetary_avg", "tenure_days",
                "purchases_last_90d", "spend_last_90d"]
TIERS = list(names.TIERS)

#: Models are trained on at most ``classify.train_sample`` customers (a seeded sample); this is the
#: parameter's default, defined once in :class:`helpers.config.ClassifyParams` (the stage passes the run's value).
TRAIN_SAMPLE: int = ClassifyParams.model_fields["train_sample"].default

#: A question needs at least this many customers to train on (below it the question is skipped).
MIN_CUSTOMERS = 20


def early_features(days: pd.DataFrame, early_days: int, countries: list[str] | None = None) -> pd.DataFrame:
    """What is known about each customer ``early_days`` after their first purchase, from the purchase ``days``.

    ``days`` are the run's purchase days (:mod:`helpers.summary`: customer and
    day order, ``amount`` and, when known, ``country``); ``countries`` adds one
    indicator per country of the customer's first purchase day that names one.

    >>> d = pd.DataFrame({"customer_id": ["a", "a", "a"], "amount": [10.0, 5.0, 99.0], "country": [None, "FR", "DE"],
    ...     "day": pd.to_datetime(["2020-01-01", "2020-01-20", "2020-06-01"])})
    >>> early_features(d, 30, ["FR", "DE"]).loc["a", [*EARLY_FEATURES, "country_FR", "country_DE"]].astype(float).tolist()
    [10.0, 2.0, 15.0, 7.5, 1.0, 0.0]
    """
    codes, ids = pd.factorize(days["customer_id"], sort=True)  # once: grouping by text keys costs seconds a time
    first = days["day"].groupby(codes).transform("min")
    inside = (days["day"] < first + pd.Timedelta(days=early_days)).to_numpy()
    g = days[inside].groupby(codes[inside], sort=True)
    out = pd.DataFrame({
        "first_purchase": g["day"].min(),
        "first_order_value": g["amount"].first(),
        "early_purchases": g.size().astype(float),
        "early_spend": g["amount"].sum(),
    })
    out.index = pd.Index(ids[out.index], name="customer_id")
    out["early_mean_spend"] = out["early_spend"] / out["early_purchases"]
    if countries is not None and "country" in days.columns:
        country = days["country"].groupby(codes).first()  # the first one named
        country = pd.Series(country.to_numpy(), index=ids[country.index]).reindex(out.index)
        for c in countries:
            out[f"country_{c}"] = (country == c).astype(float)
    return out


def rfm_features(days: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """RFM features of every customer from the purchase ``days`` up to ``cutoff`` (nothing later).

    >>> d = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [10.0, 20.0, 5.0],
    ...     "day": pd.to_datetime(["2020-01-01", "2020-06-01", "2020-06-20"])})
    >>> rfm_features(d, dt.date(2020, 6, 30))[["frequency", "purchases_last_90d", "spend_last_90d"]].values.tolist()
    [[2.0, 1.0, 20.0], [1.0, 1.0, 5.0]]
    """
    known = days[days["day"] <= pd.Timestamp(cutoff)]
    if known.empty:
        raise DataError(f"no purchases before the cut-off {cutoff}")
    table = customer_table(known, cutoff, country=False).set_index("customer_id")
    recent = known[known["day"] >= pd.Timestamp(cutoff) - pd.Timedelta(days=89)]
    g = recent.groupby("customer_id")
    table["purchases_last_90d"] = g.size().reindex(table.index, fill_value=0).astype(float)
    table["spend_last_90d"] = g["amount"].sum().reindex(table.index, fill_value=0.0)
    return table


def future_high_value(transactions: pd.DataFrame, customers: pd.Index, start: dt.date, days: int,
                      share: float) -> pd.Series:
    """1 if a customer's spend in (``start``, ``start`` + ``days``] is in the top ``share`` of ``customers``.

    Only customers who spend something can be high value; ties at the cut all count. The spend is summed
    over the clean lines (``transactions``), not over purchase days: a sum of day sums can differ from it
    in the last bits, enough to break a tie at the cut.

    >>> tx = pd.DataFrame({"customer_id": ["a", "b", "b"], "amount": [5.0, 1.0, 1.0],
    ...     "order_ts": pd.to_datetime(["2020-01-02", "2020-01-03", "2020-03-01"])})
    >>> future_high_value(tx, pd.Index(["a", "b", "c"]), dt.date(2020, 1, 1), 30, 0.3).tolist()
    [1, 0, 0]
    """
    lo, hi = pd.Timestamp(start) + pd.Timedelta(days=1), pd.Timestamp(start) + pd.Timedelta(days=days + 1)
    window = transactions[(transactions["order_ts"] >= lo) & (transactions["order_ts"] < hi)]
    spend = window.groupby("customer_id")["amount"].sum().reindex(customers, fill_value=0.0)
    rank = spend.rank(method="min", ascending=False)
    return ((rank <= np.ceil(share * len(spend))) & (spend > 0)).astype(int)


@dataclass
class Split:
    """A time-based split: features and labels for training and testing, and how it was made."""

    x_train: pd.DataFrame
    y_train: pd.Series
    x_test: pd.DataFrame
    y_test: pd.Series
    description: str
    features: pd.DataFrame | None = None  # every customer's features (question 1), reused when scoring
    cut: dt.date | None = None  # question 1: first acquisition date of the test customers


def tier_skip_reason(customers: pd.DataFrame, clv_validation: dict[str, Any] | None = None) -> str | None:
    """Why question 1 cannot be asked (no value tiers, e.g. stage 05 made no forecast), or None when it can."""
    if clv_validation is not None and clv_validation.get("forecast") is False:
        why = clv_validation.get("forecast_reason") or "no reason given"
        return (f"there are no value tiers to learn: stage 05 made no CLV forecast ({why}), and a tier combines "
                "spend with predicted value")
    if "value_tier" not in customers.columns or customers["value_tier"].isna().all():
        return "there are no value tiers to learn: the customer table has no value_tier (stage 05)"
    return None


def tier_split(days: pd.DataFrame, customers: pd.DataFrame, as_of: dt.date, early_days: int,
               test_share: float, train_sample: int | None = None, seed: int = 0,
               aggregates: pd.DataFrame | None = None) -> Split:
    """Question 1: early behaviour -> value tier, learning from earlier acquisitions, testing on later ones.

    Only customers with a value tier whose early window ended by ``as_of`` take
    part; ``days`` are the run's purchase days, or ``aggregates`` (every customer's
    :func:`helpers.summary_sql.customer_aggregates` with ``early_days``) give the features. Raises :class:`DataError` naming ``classify.early_days`` when fewer than
    :data:`MIN_CUSTOMERS` qualify, and when no split in time or nothing to learn is left.
    """
    size = TRAIN_SAMPLE if train_sample is None else train_sample
    countries = None
    if "country" in customers.columns and customers["country"].notna().any():
        countries = customers["country"].value_counts().head(5).index.tolist()
    feats = (early_features(days, early_days, countries) if aggregates is None
             else summary_sql.early_features(aggregates, countries))
    labels = customers.set_index("customer_id")["value_tier"]
    labelled = feats.join(labels, how="inner")
    labelled = labelled[labelled["value_tier"].notna()]
    eligible = labelled[labelled["first_purchase"] + pd.Timedelta(days=early_days) <= pd.Timestamp(as_of)]
    if len(eligible) < MIN_CUSTOMERS:
        tenure = np.sort((pd.Timestamp(as_of) - labelled["first_purchase"]).dt.days.to_numpy())[::-1]
        if len(tenure) < MIN_CUSTOMERS:
            raise DataError(f"question 1 needs at least {MIN_CUSTOMERS} customers with a value tier; there are {len(tenure)}")
        longest = int(tenure[MIN_CUSTOMERS - 1])
        fix = (f"set classify.early_days to at most {longest} (or null: derived from the log's span)" if longest >= 1
               else "the log is too short for question 1")
        raise DataError(f"only {len(eligible)} customers have classify.early_days = {early_days} days of history "
                        f"after their first purchase by as_of {as_of}; question 1 needs at least {MIN_CUSTOMERS}: {fix}")
    eligible = eligible.sort_values(["first_purchase"], kind="stable")
    acquired = eligible["first_purchase"].drop_duplicates()
    if len(acquired) < 2:
        raise DataError(f"all {len(eligible):,} eligible customers were acquired on the same day ({acquired.iloc[0].date()}): "
                        "question 1 learns from earlier acquisitions and is tested on later ones")
    cut = eligible["first_purchase"].iloc[int(len(eligible) * (1 - test_share))]
    if cut == acquired.iloc[0]:  # most customers arrived on the first day (a cohort): test on everyone who came later
        cut = acquired.iloc[1]
    train, test = eligible[eligible["first_purchase"] < cut], eligible[eligible["first_purchase"] >= cut]
    if train["value_tier"].nunique() < 2:
        raise DataError(f"all {len(train):,} training customers (acquired before {cut.date()}) are in tier "
                        f"{train['value_tier'].iloc[0]!r}: question 1 has nothing to learn")
    cols = [c for c in eligible.columns if c not in ("first_purchase", "value_tier")]
    x_train, y_train = _sample_rows(train[cols], train["value_tier"], size, seed)
    desc = (f"train: {len(train):,} customers acquired before {cut.date()}{_sampled(len(train), size)}; test: "
            f"{len(test):,} acquired from {cut.date()} on. Features: the first {early_days} days after each "
            f"customer's first purchase; label: value tier at {as_of}.")
    return Split(x_train, y_train, test[cols], test["value_tier"], desc, feats, cut.date())


def high_value_split(days: pd.DataFrame, transactions: pd.DataFrame, as_of: dt.date, label_days: int, share: float,
                     train_sample: int | None = None, seed: int = 0) -> tuple[Split, pd.DataFrame]:
    """Question 2: RFM at a cut-off -> top ``share`` of spend in the next ``label_days``.

    The features come from the purchase ``days``, the labels from the clean
    lines ``transactions`` (:func:`future_high_value`).

    Test cut-off = ``as_of - label_days`` (labels: the last period); training
    cut-off one period earlier (its labels end at the test cut-off). Returns the
    split and the features at ``as_of`` (to score every customer today).
    Raises :class:`DataError` naming ``classify.label_days`` when fewer than
    :data:`MIN_CUSTOMERS` customers bought before the training cut-off, and when
    a period has no high-value customers (nothing to learn or to test).
    """
    size = TRAIN_SAMPLE if train_sample is None else train_sample
    test_cut = as_of - dt.timedelta(days=label_days)
    train_cut = test_cut - dt.timedelta(days=label_days)
    firsts = np.sort(days.loc[days["day"] <= pd.Timestamp(as_of)].groupby("customer_id")["day"].min().to_numpy())
    before = int((firsts < np.datetime64(pd.Timestamp(train_cut) + pd.Timedelta(days=1))).sum())
    if before < MIN_CUSTOMERS:
        if len(firsts) < MIN_CUSTOMERS:
            raise DataError(f"question 2 needs at least {MIN_CUSTOMERS} customers; there are {len(firsts)}")
        longest = (as_of - pd.Timestamp(firsts[MIN_CUSTOMERS - 1]).date()).days // 2
        fix = (f"set classify.label_days to at most {longest} (or null: derived from the log's span)" if longest >= 7
               else "the log is too short for question 2 (classify.label_days is at least 7)")
        raise DataError(f"only {before} customers bought on or before question 2's training cut-off {train_cut} "
                        f"(as_of minus 2 x classify.label_days = 2 x {label_days} days; the log starts on "
                        f"{pd.Timestamp(firsts[0]).date()}); it needs at least {MIN_CUSTOMERS}: {fix}")
    x_train = rfm_features(days, train_cut)
    x_test = rfm_features(days, test_cut)
    y_train = future_high_value(transactions, x_train.index, train_cut, label_days, share)
    y_test = future_high_value(transactions, x_test.index, test_cut, label_days, share)
    for y, name, lo, hi in [(y_train, "training", train_cut, test_cut), (y_test, "test", test_cut, as_of)]:
        if y.nunique() < 2:
            raise DataError(f"in question 2's {name} label period ({lo} to {hi}) {'no' if y.sum() == 0 else 'every'} "
                            f"customer of {len(y):,} is high value: nothing to {'learn' if name == 'training' else 'test'}; "
                            "change classify.label_days or classify.target_share")
    now = rfm_features(days, as_of)
    n_train = len(x_train)
    x_train, y_train = _sample_rows(x_train, y_train, size, seed)
    desc = (f"train{_sampled(n_train, size)}: features at {train_cut}, labels = top {share:.0%} spend from {train_cut} "
            f"to {test_cut}; test: features at {test_cut}, labels from {test_cut} to {as_of}. Every feature is "
            "computed from purchases on or before its cut-off, and the training labels end where the test features begin.")
    return Split(x_train[RFM_FEATURES], y_train, x_test[RFM_FEATURES], y_test, desc, cut=test_cut), now


T = TypeVar("T")


def attempt(step: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T | None, str | None]:
    """Run one question's step; a :class:`DataError` (too little history, one class) becomes a skip reason.

    >>> attempt(int, "12"), attempt(lambda: (_ for _ in ()).throw(DataError("too short")))
    ((12, None), (None, 'too short'))
    """
    try:
        return step(*args, **kwargs), None
    except DataError as exc:
        return None, str(exc)


def _sample_rows(x: pd.DataFrame, y: pd.Series, size: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """At most ``size`` rows of ``x`` and ``y``, drawn at random (seeded), in their original order."""
    if len(x) <= size:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False))
    return x.iloc[keep], y.iloc[keep]


def _sampled(n: int, size: int) -> str:
    """The note a split's description gets when ``n`` customers were cut to a sample of ``size``.

    >>> _sampled(1000, 100), _sampled(50, 100)
    (' (trained on a seeded sample of 100)', '')
    """
    return f" (trained on a seeded sample of {size:,})" if n > size else ""
