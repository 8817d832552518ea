"""Predicting segments: which new customers look like the valuable ones.

Stage 07. Clustering (stage 06) finds groups without labels; classification
learns known labels and predicts them for customers whose label we do not know
yet. Two questions, both with splits in time so that nothing from the future
leaks into what the model sees:

**Question 1 - assign new customers to a value tier.** A customer is described
only by what is known ``early_days`` after their first purchase (first order
value, purchases and spend in those days, country). The label is the value
tier at ``as_of``. Customers are split by acquisition date: the model learns
from the earlier-acquired and is tested on the later-acquired.

**Question 2 - who will be high value next period?** At a cut-off date, every
customer is described by RFM features computed from purchases up to the
cut-off; the label is whether their spend in the following ``label_days`` is
in the top ``target_share``. The model is trained with the cut-off one period
earlier (labels ending at the test cut-off) and tested on the latest period,
whose labels are the last ``label_days`` before ``as_of``.

Both are compared with a simple baseline on the same split (question 1: a
one-rule classifier on early spend; question 2: the RFM score).

**Windows that fit the log.** ``classify.early_days`` and ``classify.label_days``
are derived from the log's span when they are null (:func:`derive_windows`,
rule in :data:`WINDOW_RULE`). A question the log has too little history for
raises a :class:`DataError` naming the parameter to change; the notebook turns
it into a skip (:func:`attempt`), so the other question still runs.

**Honest answers.** A model that does not beat its baseline on the held-out
period flags no prospects (:func:`prospects`); :func:`tier_caveats` and
:func:`value_caveats` turn this run's numbers into the sentences that travel
with the headline numbers (``classification.json["caveats"]``).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

from threadpoolctl import threadpool_limits

from helpers import names
from helpers.errors import DataError
from helpers.rfm import customer_table, first_country, log_start, purchase_days, rfm_scores

# Gradient boosting's OpenMP threads spin while they wait; on a 2-core machine shared with another
# busy process that made stage 07 fifty times slower. One thread is plenty for these table sizes.
threadpool_limits(limits=1, user_api="openmp")

EARLY_FEATURES = ["first_order_value", "early_purchases", "early_spend", "early_mean_spend"]
RFM_FEATURES = ["recency_days", "frequency", "monetary_total", "monetary_avg", "tenure_days",
                "purchases_last_90d", "spend_last_90d"]
TIERS = list(names.TIERS)

#: Models are trained on at most TRAIN_SAMPLE customers (the default of ``classify.train_sample``),
#: cross-validated on at most CV_SAMPLE and explained on at most IMPORTANCE_SAMPLE (seeded samples):
#: beyond a few hundred thousand, more rows change gradient-boosted trees very little and cost minutes.
TRAIN_SAMPLE, CV_SAMPLE, IMPORTANCE_SAMPLE = 100_000, 50_000, 20_000

#: A question needs at least this many customers to train on (below it the question is skipped).
MIN_CUSTOMERS = 20
#: Caveat thresholds: fewer training customers (question 1) or high-value training customers
#: (question 2) than these make a model that rests on very little.
FEW_TRAINING, FEW_POSITIVES = 200, 20
#: Question 1's label (the tier at ``as_of``) is set largely by spend; when the early window already
#: holds this share of the test customers' spend, or is this share of their median tenure, a high
#: ROC-AUC is near-tautological: the features contain the label.
SEEN_SPEND_LIMIT, EARLY_TENURE_LIMIT = 0.8, 0.5


# ---------------------------------------------------------------------------
# windows: classify.early_days and classify.label_days

#: Caps and shares of the span for the derived windows.
LABEL_DAYS_CAP, EARLY_DAYS_CAP = 180, 90
LABEL_SPAN_SHARE, EARLY_SPAN_SHARE = 1 / 3, 1 / 4
WINDOW_RULE = (
    "classify.label_days, when null, is a third of the log's span (days from its first purchase to as_of), "
    "so that history, training labels and test labels get equal periods, rounded to whole weeks and at most "
    f"{LABEL_DAYS_CAP} days; classify.early_days, when null, is a quarter of the span, rounded to whole weeks "
    f"and at most {EARLY_DAYS_CAP} days; both are at least 7 days."
)


def whole_weeks(days: float) -> int:
    """``days`` rounded to the nearest whole week (halves up), at least one week.

    >>> whole_weeks(30), whole_weeks(181.7), whole_weeks(2), whole_weeks(10.5)
    (28, 182, 7, 14)
    """
    return max(7, int(math.floor(days / 7 + 0.5)) * 7)


@dataclass(frozen=True)
class Windows:
    """The two windows of stage 07 and where they came from."""

    early_days: int
    label_days: int
    first_day: dt.date
    as_of: dt.date
    derived: tuple[str, ...] = ()

    @property
    def span_days(self) -> int:
        return (self.as_of - self.first_day).days

    def describe(self) -> str:
        """One line per window: its value and whether it was set or derived (and how)."""
        lines = [f"the log spans {self.span_days:,} days, from its first purchase on {self.first_day} to as_of {self.as_of}"]
        for name, value, share, cap, what in [
                ("label_days", self.label_days, LABEL_SPAN_SHARE, LABEL_DAYS_CAP, "a third"),
                ("early_days", self.early_days, EARLY_SPAN_SHARE, EARLY_DAYS_CAP, "a quarter")]:
            if name in self.derived:
                raw = whole_weeks(self.span_days * share)
                how = f"derived: {what} of the span in whole weeks = {raw}" + (f", capped at {cap}" if raw > cap else "")
            else:
                how = "set in the parameters"
            lines.append(f"classify.{name} = {value} ({how})")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"early_days": self.early_days, "label_days": self.label_days, "span_days": self.span_days,
                "first_purchase": self.first_day.isoformat(), "derived": list(self.derived),
                "rule": WINDOW_RULE if self.derived else None}


def derive_windows(first_day: dt.date, as_of: dt.date, early_days: int | None = None,
                   label_days: int | None = None) -> Windows:
    """``classify.early_days`` and ``classify.label_days``: as given, or derived from the log's span when None.

    The rule (:data:`WINDOW_RULE`): label_days = a third of the span from the
    first purchase to ``as_of`` (three equal periods: history before the
    training cut-off, training labels, test labels), at most 180 days;
    early_days = a quarter of the span, at most 90 days; both rounded to whole
    weeks, at least 7 days. On CDNOW's 18 months this gives the classic 180 and
    90; on a 120-day log 42 and 28.

    >>> w = derive_windows(dt.date(1997, 1, 1), dt.date(1998, 6, 30))
    >>> w.label_days, w.early_days, w.derived
    (180, 90, ('label_days', 'early_days'))
    >>> w = derive_windows(dt.date(2021, 1, 1), dt.date(2021, 4, 30), early_days=14)
    >>> w.label_days, w.early_days, w.derived
    (42, 14, ('label_days',))
    """
    span = (as_of - first_day).days
    derived = []
    if label_days is None:
        label_days = min(LABEL_DAYS_CAP, whole_weeks(span * LABEL_SPAN_SHARE))
        derived.append("label_days")
    if early_days is None:
        early_days = min(EARLY_DAYS_CAP, whole_weeks(span * EARLY_SPAN_SHARE))
        derived.append("early_days")
    return Windows(int(early_days), int(label_days), first_day, as_of, tuple(derived))


# ---------------------------------------------------------------------------
# features and labels


def early_features(transactions: pd.DataFrame, early_days: int, countries: list[str] | None = None) -> pd.DataFrame:
    """What is known about each customer ``early_days`` after their first purchase.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a"], "amount": [10.0, 5.0, 99.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-20", "2020-06-01"])})
    >>> early_features(tx, 30).loc["a", EARLY_FEATURES].astype(float).tolist()
    [10.0, 2.0, 15.0, 7.5]
    """
    days = purchase_days(transactions, transactions["order_ts"].max().date())
    first = days.groupby("customer_id")["day"].transform("min")
    early = days[days["day"] < first + pd.Timedelta(days=early_days)]
    g = early.groupby("customer_id", sort=True)
    out = pd.DataFrame({
        "first_purchase": g["day"].min(),
        "first_order_value": g["amount"].first(),
        "early_purchases": g.size().astype(float),
        "early_spend": g["amount"].sum(),
    })
    out["early_mean_spend"] = out["early_spend"] / out["early_purchases"]
    if countries is not None and "country" in transactions.columns:
        country = first_country(transactions).reindex(out.index)
        for c in countries:
            out[f"country_{c}"] = (country == c).astype(float)
    return out


def rfm_features(transactions: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """RFM features of every customer from purchases up to ``cutoff`` (nothing later)."""
    end = pd.Timestamp(cutoff) + pd.Timedelta(days=1)
    known = transactions[transactions["order_ts"] < end]
    if known.empty:
        raise DataError(f"no purchases before the cut-off {cutoff}")
    days = purchase_days(known, cutoff)
    table = customer_table(known, cutoff, days, country=False).set_index("customer_id")
    recent = days[days["day"] >= pd.Timestamp(cutoff) - pd.Timedelta(days=89)]
    g = recent.groupby("customer_id")
    table["purchases_last_90d"] = g.size().reindex(table.index, fill_value=0).astype(float)
    table["spend_last_90d"] = g["amount"].sum().reindex(table.index, fill_value=0.0)
    return table


def future_high_value(transactions: pd.DataFrame, customers: pd.Index, start: dt.date, days: int,
                      share: float) -> pd.Series:
    """1 if a customer's spend in (``start``, ``start`` + ``days``] is in the top ``share`` of ``customers``.

    Only customers who spend something can be high value; ties at the cut all count.
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


def tier_split(transactions: pd.DataFrame, customers: pd.DataFrame, as_of: dt.date, early_days: int,
               test_share: float, train_sample: int | None = None, seed: int = 0) -> Split:
    """Question 1: early behaviour -> value tier, learning from earlier acquisitions, testing on later ones.

    Only customers with a value tier whose early window ended by ``as_of`` take
    part. Raises :class:`DataError` naming ``classify.early_days`` when fewer than
    :data:`MIN_CUSTOMERS` qualify, and when no split in time or nothing to learn is left.
    """
    size = TRAIN_SAMPLE if train_sample is None else train_sample
    countries = None
    if "country" in customers.columns and customers["country"].notna().any():
        countries = customers["country"].value_counts().head(5).index.tolist()
    feats = early_features(transactions, early_days, countries)
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
    days = eligible["first_purchase"].drop_duplicates()
    if len(days) < 2:
        raise DataError(f"all {len(eligible):,} eligible customers were acquired on the same day ({days.iloc[0].date()}): "
                        "question 1 learns from earlier acquisitions and is tested on later ones")
    cut = eligible["first_purchase"].iloc[int(len(eligible) * (1 - test_share))]
    if cut == days.iloc[0]:  # most customers arrived on the first day (a cohort): test on everyone who came later
        cut = days.iloc[1]
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


def high_value_split(transactions: pd.DataFrame, as_of: dt.date, label_days: int, share: float,
                     train_sample: int | None = None, seed: int = 0) -> tuple[Split, pd.DataFrame]:
    """Question 2: RFM at a cut-off -> top ``share`` of spend in the next ``label_days``.

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
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    firsts = np.sort(transactions.loc[transactions["order_ts"] < end].groupby("customer_id")["order_ts"].min()
                     .dt.normalize().to_numpy())
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
    x_train = rfm_features(transactions, train_cut)
    x_test = rfm_features(transactions, test_cut)
    y_train = future_high_value(transactions, x_train.index, train_cut, label_days, share)
    y_test = future_high_value(transactions, x_test.index, test_cut, label_days, share)
    for y, name, lo, hi in [(y_train, "training", train_cut, test_cut), (y_test, "test", test_cut, as_of)]:
        if y.nunique() < 2:
            raise DataError(f"in question 2's {name} label period ({lo} to {hi}) {'no' if y.sum() == 0 else 'every'} "
                            f"customer of {len(y):,} is high value: nothing to {'learn' if name == 'training' else 'test'}; "
                            "change classify.label_days or classify.target_share")
    now = rfm_features(transactions, as_of)
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


def make_model(seed: int = 42) -> HistGradientBoostingClassifier:
    """The classifier used for both questions: gradient-boosted trees (no scaling needed, robust to skew)."""
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                          l2_regularization=1.0, random_state=seed)


def _sample_rows(x: pd.DataFrame, y: pd.Series, size: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """At most ``size`` rows of ``x`` and ``y``, drawn at random (seeded), in their original order."""
    if len(x) <= size:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False))
    return x.iloc[keep], y.iloc[keep]


def _sampled(n: int, size: int | None = None) -> str:
    size = TRAIN_SAMPLE if size is None else size
    return f" (trained on a seeded sample of {size:,})" if n > size else ""


def cross_validate(model: HistGradientBoostingClassifier, split: Split, folds: int, seed: int) -> tuple[np.ndarray, str]:
    """Cross-validated scores on the training period (ROC-AUC; macro one-vs-rest when there are several classes).

    Folds are stratified; when a class has fewer members than folds, the
    number of folds is reduced, and with a class of one member plain k-fold is
    used (the note says which). Above :data:`CV_SAMPLE` training customers the
    folds are cut from a seeded sample of that size.
    """
    sampled = len(split.x_train) > CV_SAMPLE
    x_train, y_train = _sample_rows(split.x_train, split.y_train, CV_SAMPLE, seed)
    split = Split(x_train, y_train, split.x_test, split.y_test, split.description)
    counts = split.y_train.value_counts()
    n = int(min(folds, counts.min()))
    multi = split.y_train.nunique() > 2
    scoring = "roc_auc_ovr" if multi else "roc_auc"
    if n >= 2:
        cv = StratifiedKFold(n_splits=n, shuffle=True, random_state=seed)
        note = f"{n}-fold stratified cross-validation" + (f" (reduced from {folds}: smallest class has {counts.min()})" if n < folds else "")
    else:
        cv = KFold(n_splits=min(folds, len(split.y_train)), shuffle=True, random_state=seed)
        note = f"plain {cv.n_splits}-fold cross-validation: class {counts.idxmin()!r} has a single member"
        scoring = "accuracy"
    if sampled:
        note += f" on a seeded sample of {CV_SAMPLE:,} training customers"
    with warnings.catch_warnings():  # a fold without some class scores NaN (error_score), said by the mean
        warnings.simplefilter("ignore")
        scores = cross_val_score(model, split.x_train, split.y_train, cv=cv, scoring=scoring, error_score=np.nan)
    return scores, note


def auc(y_true: pd.Series, scores: np.ndarray, classes: list | None = None) -> float:
    """ROC-AUC; for several classes the mean one-vs-rest AUC over the classes present in ``y_true``.

    NaN when it is not defined (only one class in ``y_true``).

    >>> auc(pd.Series([0, 1, 1, 0]), np.array([0.1, 0.9, 0.8, 0.3]))
    1.0
    """
    if y_true.nunique() < 2:
        return float("nan")
    if scores.ndim == 1:
        return float(roc_auc_score(y_true, scores))
    per_class = [roc_auc_score(y_true == c, scores[:, i]) for i, c in enumerate(classes or [])
                 if 0 < (y_true == c).sum() < len(y_true)]
    return float(np.mean(per_class)) if per_class else float("nan")


def precision_at(y_true: pd.Series, scores: np.ndarray, top: float = 0.1) -> float:
    """Share of true positives among the ``top`` share of customers by score (NaN when there are none).

    >>> precision_at(pd.Series([1, 0, 0, 0, 1, 0, 0, 0, 0, 0]), np.arange(10.0)[::-1], 0.2)
    0.5
    """
    if len(scores) == 0:
        return float("nan")
    n = max(1, int(round(top * len(scores))))
    order = np.argsort(-scores, kind="stable")[:n]
    return float(np.asarray(y_true)[order].mean())


def gains_table(y_true: pd.Series, scores: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Cumulative gains and lift by decile of score (decile 1 = highest scores)."""
    order = np.argsort(-scores, kind="stable")
    y = np.asarray(y_true)[order]
    decile = np.ceil((np.arange(len(y)) + 1) * bins / max(len(y), 1)).astype(int)
    table = pd.DataFrame({"decile": decile, "y": y}).groupby("decile")["y"].agg(["size", "sum"])
    table["cumulative_share_of_customers"] = table["size"].cumsum() / max(len(y), 1)
    table["cumulative_gain"] = table["sum"].cumsum() / max(y.sum(), 1)
    table["lift"] = table["cumulative_gain"] / table["cumulative_share_of_customers"]
    return table.rename(columns={"size": "customers", "sum": "positives"})


def _one_rule_bins(split: Split, feature: str, bins: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(split.x_train[feature], np.linspace(0, 1, bins + 1)))
    top = max(len(edges) - 2, 0)
    train_bin = np.clip(np.searchsorted(edges, split.x_train[feature], side="right") - 1, 0, top)
    test_bin = np.clip(np.searchsorted(edges, split.x_test[feature], side="right") - 1, 0, top)
    return train_bin, test_bin


def one_rule_tier(split: Split, feature: str = "early_spend", bins: int = 5) -> np.ndarray:
    """Question 1 baseline: bin one feature into quantiles on the training set; predict each bin's majority tier."""
    train_bin, test_bin = _one_rule_bins(split, feature, bins)
    majority = pd.Series(split.y_train.to_numpy()).groupby(train_bin).agg(lambda s: s.value_counts().index[0])
    fallback = split.y_train.value_counts().index[0]
    return np.array([majority.get(b, fallback) for b in test_bin], dtype=object)


def one_rule_tier_proba(split: Split, classes: list, feature: str = "early_spend", bins: int = 5) -> np.ndarray:
    """The one-rule baseline's class probabilities: each bin's tier shares among its training customers.

    Columns in the order of ``classes``; a ROC-AUC for the baseline comes from these.
    """
    train_bin, test_bin = _one_rule_bins(split, feature, bins)
    shares = pd.crosstab(train_bin, split.y_train.to_numpy(), normalize="index").reindex(columns=classes, fill_value=0.0)
    overall = split.y_train.value_counts(normalize=True).reindex(classes, fill_value=0.0)
    return shares.reindex(test_bin).fillna(overall).to_numpy(dtype=float)


def rfm_baseline_score(x: pd.DataFrame) -> np.ndarray:
    """Question 2 baseline: the sum of the R, F and M quintile scores at the cut-off (no learning)."""
    table = rfm_scores(x.reset_index().rename(columns={"index": "customer_id"}))
    return (table["r_score"] + table["f_score"] + table["m_score"]).to_numpy(dtype=float)


# ---------------------------------------------------------------------------
# answering a question: model, baseline, metrics on the held-out period


@dataclass
class Answer:
    """One question answered on its held-out period: the model, its baseline and how they compare."""

    split: Split
    model: HistGradientBoostingClassifier
    cv_scores: np.ndarray
    cv_note: str
    table: pd.DataFrame  # metrics (rows) x "model" and the baseline (columns), rounded to 3 digits
    metrics: tuple[str, ...]  # the rows the model must win on to beat its baseline
    test_scores: np.ndarray  # the model's scores on the test period (question 2: P(high value))
    baseline: np.ndarray  # question 1: the baseline's tiers; question 2: the RFM scores
    predicted: np.ndarray | None = None  # question 1: the model's tiers on the test period

    @property
    def cv_mean(self) -> float:
        """Mean cross-validated score (NaN when no fold could be scored)."""
        finite = self.cv_scores[np.isfinite(self.cv_scores)]
        return float(finite.mean()) if len(finite) else float("nan")

    @property
    def cv_std(self) -> float:
        finite = self.cv_scores[np.isfinite(self.cv_scores)]
        return float(finite.std()) if len(finite) else float("nan")

    @property
    def baseline_name(self) -> str:
        return str(self.table.columns[1])

    def values(self, metric: str) -> tuple[float, float]:
        """The model's and the baseline's value of ``metric`` on the test period."""
        return float(self.table.loc[metric, "model"]), float(self.table.loc[metric, self.baseline_name])

    @property
    def judged_on(self) -> list[str]:
        """The metrics of :attr:`metrics` defined for both the model and its baseline."""
        return [m for m in self.metrics if all(np.isfinite(v) for v in self.values(m))]

    @property
    def beats_baseline(self) -> bool | None:
        """True when the model is better than its baseline on every defined metric of :attr:`metrics`
        (at the 3 digits shown; a tie does not beat); None when none is defined."""
        judged = self.judged_on
        if not judged:
            return None
        return all(self.values(m)[0] > self.values(m)[1] for m in judged)

    def losses(self) -> list[str]:
        """The metrics on which the model does not beat its baseline, with both values ("ROC-AUC 0.717 vs 0.750")."""
        return [f"{m} {_fmt(self.values(m)[0])} vs {_fmt(self.values(m)[1])}" for m in self.judged_on
                if not self.values(m)[0] > self.values(m)[1]]

    def wins(self) -> list[str]:
        """The metrics on which the model beats its baseline, with both values."""
        return [f"{m} {_fmt(self.values(m)[0])} vs {_fmt(self.values(m)[1])}" for m in self.judged_on
                if self.values(m)[0] > self.values(m)[1]]

    def shown(self) -> str:
        """The compared metrics, model vs baseline ("ROC-AUC 0.783 vs 0.799; precision in the top decile ...")."""
        return "; ".join(f"{m} {_fmt(a)} vs {_fmt(b)}" for m in self.metrics for a, b in [self.values(m)])

    def comparison(self) -> str:
        """A sentence: does the model beat its baseline on the test period?"""
        if self.beats_baseline is False:
            wins = self.wins()
            return (f"test period: the model does NOT beat the {self.baseline_name} on {'; '.join(self.losses())}"
                    + (f" (it does on {'; '.join(wins)})" if wins else ""))
        verdict = "beats" if self.beats_baseline else "cannot be compared with"
        return f"test period: the model {verdict} the {self.baseline_name} ({self.shown()})"


def _fmt(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "undefined"


def _pct(share: float) -> str:
    """A share as a percentage that is not rounded up to 100% or down to 0% (99.9%, 0.4%).

    >>> _pct(0.5612), _pct(0.9991), _pct(1.0), _pct(0.004)
    ('56%', '99.9%', '100%', '0.4%')
    """
    return f"{share:.1%}" if 0 < share < 0.01 or 0.99 < share < 1 else f"{share:.0%}"


TIER_AUC = "ROC-AUC (one-vs-rest, macro)"


def answer_tiers(split: Split, folds: int, seed: int) -> Answer:
    """Question 1: cross-validate, fit on the training period, compare with the one-rule baseline on the test period.

    The model beats the baseline when it is better on balanced accuracy (the
    mean hit rate per tier, so calling everyone "lead" does not look good) and
    on ROC-AUC (the number the report shows).
    """
    model = make_model(seed)
    cv_scores, cv_note = cross_validate(model, split, folds, seed)
    model.fit(split.x_train, split.y_train)
    predicted = model.predict(split.x_test)
    classes = list(model.classes_)
    proba = model.predict_proba(split.x_test)
    baseline = one_rule_tier(split)
    baseline_proba = one_rule_tier_proba(split, classes)
    with warnings.catch_warnings():  # a tier absent from the test period
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        table = pd.DataFrame({
            "model": [float((predicted == split.y_test).mean()), balanced_accuracy_score(split.y_test, predicted),
                      auc(split.y_test, proba, classes)],
            "one-rule baseline": [float((baseline == split.y_test).mean()), balanced_accuracy_score(split.y_test, baseline),
                                  auc(split.y_test, baseline_proba, classes)],
        }, index=["accuracy", "balanced accuracy", TIER_AUC]).round(3)
    return Answer(split, model, cv_scores, cv_note, table, ("balanced accuracy", TIER_AUC), proba, baseline, predicted)


def precision_label(top: float) -> str:
    """The name of the precision row: "precision in the top decile" for 10%, else "precision in the top 5%".

    >>> precision_label(0.1), precision_label(0.05)
    ('precision in the top decile', 'precision in the top 5%')
    """
    return "precision in the top decile" if abs(top - 0.1) < 1e-12 else f"precision in the top {top:.0%}"


def answer_high_value(split: Split, folds: int, seed: int, top: float = 0.1) -> Answer:
    """Question 2: cross-validate, fit on the training period, compare with the RFM score on the test period.

    The model beats the RFM score when it ranks customers better (ROC-AUC) and
    its ``top`` share (the prospects, ``classify.prospect_share``) holds more of
    the high-value customers (precision among the top).
    """
    model = make_model(seed)
    cv_scores, cv_note = cross_validate(model, split, folds, seed)
    model.fit(split.x_train, split.y_train)
    scores = model.predict_proba(split.x_test)[:, 1]
    rfm_score = rfm_baseline_score(split.x_test)
    table = pd.DataFrame({
        "model": [auc(split.y_test, scores), precision_at(split.y_test, scores, top)],
        "RFM-score baseline": [auc(split.y_test, rfm_score), precision_at(split.y_test, rfm_score, top)],
    }, index=["ROC-AUC", precision_label(top)]).round(3)
    return Answer(split, model, cv_scores, cv_note, table, ("ROC-AUC", precision_label(top)), scores, rfm_score)


def importance(model: HistGradientBoostingClassifier, split: Split, seed: int = 42, scoring: str = "roc_auc") -> pd.DataFrame:
    """Permutation importance on the test period: how much the score drops when a feature is shuffled.

    Computed on at most :data:`IMPORTANCE_SAMPLE` test customers (a seeded
    sample); empty when the test period has a single class (no ROC-AUC to drop).
    """
    x_test, y_test = _sample_rows(split.x_test, split.y_test, IMPORTANCE_SAMPLE, seed)
    if y_test.nunique() < 2:
        return pd.DataFrame(columns=["feature", "importance", "std"])
    result = permutation_importance(model, x_test, y_test, n_repeats=5, random_state=seed, scoring=scoring)
    return (pd.DataFrame({"feature": split.x_test.columns, "importance": result.importances_mean,
                          "std": result.importances_std})
            .sort_values(["importance", "feature"], ascending=[False, True]).reset_index(drop=True))


def confusion(y_true: pd.Series, y_pred: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Confusion matrix with named rows (actual) and columns (predicted)."""
    return pd.DataFrame(confusion_matrix(y_true, y_pred, labels=labels),
                        index=pd.Index(labels, name="actual"), columns=pd.Index(labels, name="predicted"))


# ---------------------------------------------------------------------------
# today's customers


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


def score_customers(transactions: pd.DataFrame, customers: pd.DataFrame, as_of: dt.date, tier_split_: Split | None,
                    value_split: Split | None, now: pd.DataFrame | None, early_days: int, seed: int = 42, *,
                    prospect_share: float = 0.1, flag_prospects: bool = True,
                    train_sample: int | None = None) -> pd.DataFrame:
    """The stage's artifact: for every customer, a predicted tier and a probability of high value next period.

    Both models are refitted on everything labelled (for question 2, the most
    recent period) before scoring today's customers. A skipped question (its
    split None) leaves its column empty (``predicted_tier`` None,
    ``p_high_value`` NaN). ``early_window_complete`` is False for customers
    acquired less than ``early_days`` before ``as_of`` (their early behaviour is
    still incomplete). ``prospect`` marks the ``prospect_share`` with the highest
    P(high value), and nobody unless ``flag_prospects`` (see :func:`prospects`).
    """
    size = TRAIN_SAMPLE if train_sample is None else train_sample
    out = pd.DataFrame(index=customers["customer_id"].rename("customer_id"))
    out["predicted_tier"] = pd.Series(None, index=out.index, dtype=object)
    first = pd.to_datetime(customers.set_index("customer_id")["first_purchase"]).dt.normalize()
    if tier_split_ is not None:
        tier_model = make_model(seed).fit(*_sample_rows(pd.concat([tier_split_.x_train, tier_split_.x_test]),
                                                        pd.concat([tier_split_.y_train, tier_split_.y_test]), size, seed))
        countries = [c[len("country_"):] for c in tier_split_.x_train.columns if c.startswith("country_")] or None
        early = tier_split_.features if tier_split_.features is not None else early_features(transactions, early_days, countries)
        predicted = pd.Series(tier_model.predict(early[tier_split_.x_train.columns]), index=early.index, dtype=object)
        out["predicted_tier"] = predicted.reindex(out.index)
        first = early["first_purchase"]
    out["early_window_complete"] = (first + pd.Timedelta(days=early_days) <= pd.Timestamp(as_of)).reindex(out.index)
    out["early_window_complete"] = out["early_window_complete"].fillna(False).astype(bool)
    out["p_high_value"] = np.nan
    if value_split is not None and now is not None:
        value_model = make_model(seed).fit(*_sample_rows(value_split.x_test, value_split.y_test, size, seed))
        out["p_high_value"] = pd.Series(value_model.predict_proba(now[RFM_FEATURES])[:, 1], index=now.index).reindex(out.index)
    out["prospect"] = prospects(out["p_high_value"], prospect_share, flag_prospects and value_split is not None)
    return out.reset_index()


# ---------------------------------------------------------------------------
# caveats: sentences from this run's numbers


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


def _caveat(code: str, text: str) -> dict[str, str]:
    return {"code": code, "text": text}


def tier_caveats(answer: Answer | None, skipped: str | None, overlap: dict[str, float] | None = None,
                 tiers_present: list[str] | None = None, early_days: int | None = None) -> list[dict[str, str]]:
    """Question 1's caveats: skipped, not beating its baseline, a near-tautological AUC, too little to learn from."""
    if answer is None:
        return [_caveat("q1_skipped", f"Question 1 (the value tier of new customers) was skipped: {skipped}.")]
    out = []
    if answer.beats_baseline is not True:
        losses, wins = answer.losses(), answer.wins()
        how = "; ".join(losses) or "no metric is defined on the test period"
        out.append(_caveat("q1_not_beating_baseline",
                           f"The tier model does not beat its one-rule baseline on the test period ({how})"
                           + (f", although it does on {'; '.join(wins)}" if wins else "")
                           + f": on {'that measure' if len(losses) == 1 else 'these measures'} its predictions are no "
                             "better than binning customers by early spend."))
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
            out.append(_caveat("q1_auc_near_tautological",
                               f"Question 1's ROC-AUC of {_fmt(model_auc)} is near-tautological: " + "; and ".join(reasons)
                               + ". It says how well the first days describe what is already known, not how well they "
                                 "predict later value."))
    n_train = len(answer.split.y_train)
    if n_train < FEW_TRAINING:
        out.append(_caveat("q1_few_training", f"The tier model learned from only {n_train:,} customers (below "
                                              f"{FEW_TRAINING}); its scores can change a lot with a few more."))
    missing = [t for t in (tiers_present or []) if t not in set(answer.split.y_train)]
    if missing:
        out.append(_caveat("q1_tier_missing_from_training",
                           f"Tier{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                           f"{'are' if len(missing) > 1 else 'is'} absent from the training customers (acquired before "
                           f"{answer.split.cut}), so the model never predicts {'them' if len(missing) > 1 else 'it'}."))
    return out


def value_caveats(answer: Answer | None, skipped: str | None, prospect_share: float) -> list[dict[str, str]]:
    """Question 2's caveats: skipped, not beating the RFM score (then no prospects), too few high-value customers."""
    if answer is None:
        return [_caveat("q2_skipped", f"Question 2 (next period's high-value customers) was skipped, so no customer "
                                      f"is flagged as a prospect: {skipped}.")]
    out = []
    if answer.beats_baseline is None:
        out.append(_caveat("q2_not_judged", f"The high-value model cannot be judged on the test period "
                                            f"({answer.shown()}), so no customer is flagged as a prospect."))
    elif not answer.beats_baseline:
        out.append(_caveat("q2_not_beating_baseline",
                           f"The high-value model does not beat the RFM-score baseline on the test period "
                           f"({'; '.join(answer.losses())}), so no customer is flagged as a prospect (the top "
                           f"{prospect_share:.0%} would have been): rank customers by their RFM score instead."))
    positives = int(answer.split.y_train.sum())
    if positives < FEW_POSITIVES:
        out.append(_caveat("q2_few_positives", f"The high-value model learned from only {positives} high-value customers "
                                               f"(below {FEW_POSITIVES}); its ranking rests on very few examples."))
    return out


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
