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

Both are compared with a one-rule RFM baseline on the same split.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import confusion_matrix, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

from threadpoolctl import threadpool_limits

from helpers.errors import DataError
from helpers.rfm import customer_table, first_country, purchase_days, rfm_scores

# Gradient boosting's OpenMP threads spin while they wait; on a 2-core machine shared with another
# busy process that made stage 07 fifty times slower. One thread is plenty for these table sizes.
threadpool_limits(limits=1, user_api="openmp")

EARLY_FEATURES = ["first_order_value", "early_purchases", "early_spend", "early_mean_spend"]
RFM_FEATURES = ["recency_days", "frequency", "monetary_total", "monetary_avg", "tenure_days",
                "purchases_last_90d", "spend_last_90d"]


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


def tier_split(transactions: pd.DataFrame, customers: pd.DataFrame, as_of: dt.date, early_days: int,
               test_share: float) -> Split:
    """Question 1: early behaviour -> value tier, learning from earlier acquisitions, testing on later ones.

    Only customers whose early window ended by ``as_of`` take part.
    """
    countries = None
    if "country" in customers.columns and customers["country"].notna().any():
        countries = customers["country"].value_counts().head(5).index.tolist()
    feats = early_features(transactions, early_days, countries)
    labels = customers.set_index("customer_id")["value_tier"]
    eligible = feats[feats["first_purchase"] + pd.Timedelta(days=early_days) <= pd.Timestamp(as_of)].join(labels)
    if len(eligible) < 20:
        raise DataError(f"only {len(eligible)} customers have {early_days} days of history; need at least 20")
    eligible = eligible.sort_values(["first_purchase"], kind="stable")
    cut = eligible["first_purchase"].iloc[int(len(eligible) * (1 - test_share))]
    train, test = eligible[eligible["first_purchase"] < cut], eligible[eligible["first_purchase"] >= cut]
    if train.empty or test.empty:
        raise DataError(f"all eligible customers were acquired on one side of {cut.date()}; no time split possible")
    cols = [c for c in eligible.columns if c not in ("first_purchase", "value_tier")]
    x_train, y_train = _sample_rows(train[cols], train["value_tier"], TRAIN_SAMPLE, 0)
    desc = (f"train: {len(train):,} customers acquired before {cut.date()}{_sampled(len(train))}; test: {len(test):,} "
            f"acquired from {cut.date()} on. Features: the first {early_days} days after each customer's first "
            f"purchase; label: value tier at {as_of}.")
    return Split(x_train, y_train, test[cols], test["value_tier"], desc, feats)


def high_value_split(transactions: pd.DataFrame, as_of: dt.date, label_days: int, share: float) -> tuple[Split, pd.DataFrame]:
    """Question 2: RFM at a cut-off -> top ``share`` of spend in the next ``label_days``.

    Test cut-off = ``as_of - label_days`` (labels: the last period); training
    cut-off one period earlier (its labels end at the test cut-off). Returns the
    split and the features at ``as_of`` (to score every customer today).
    """
    test_cut = as_of - dt.timedelta(days=label_days)
    train_cut = test_cut - dt.timedelta(days=label_days)
    x_train = rfm_features(transactions, train_cut)
    x_test = rfm_features(transactions, test_cut)
    y_train = future_high_value(transactions, x_train.index, train_cut, label_days, share)
    y_test = future_high_value(transactions, x_test.index, test_cut, label_days, share)
    now = rfm_features(transactions, as_of)
    n_train = len(x_train)
    x_train, y_train = _sample_rows(x_train, y_train, TRAIN_SAMPLE, 0)
    desc = (f"train{_sampled(n_train)}: features at {train_cut}, labels = top {share:.0%} spend from {train_cut} to {test_cut}; "
            f"test: features at {test_cut}, labels from {test_cut} to {as_of}. Every feature is computed from "
            "purchases on or before its cut-off, and the training labels end where the test features begin.")
    return Split(x_train[RFM_FEATURES], y_train, x_test[RFM_FEATURES], y_test, desc), now


def make_model(seed: int = 42) -> HistGradientBoostingClassifier:
    """The classifier used for both questions: gradient-boosted trees (no scaling needed, robust to skew)."""
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                          l2_regularization=1.0, random_state=seed)


#: Models are trained, cross-validated and explained on at most this many customers (seeded samples);
#: beyond a few hundred thousand, more rows change gradient-boosted trees very little and cost minutes.
TRAIN_SAMPLE, CV_SAMPLE, IMPORTANCE_SAMPLE = 100_000, 50_000, 20_000


def _sample_rows(x: pd.DataFrame, y: pd.Series, size: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """At most ``size`` rows of ``x`` and ``y``, drawn at random (seeded), in their original order."""
    if len(x) <= size:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False))
    return x.iloc[keep], y.iloc[keep]


def _sampled(n: int) -> str:
    return f" (trained on a seeded sample of {TRAIN_SAMPLE:,})" if n > TRAIN_SAMPLE else ""


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
    return cross_val_score(model, split.x_train, split.y_train, cv=cv, scoring=scoring, error_score=np.nan), note


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
    """Share of true positives among the ``top`` share of customers by score.

    >>> precision_at(pd.Series([1, 0, 0, 0, 1, 0, 0, 0, 0, 0]), np.arange(10.0)[::-1], 0.2)
    0.5
    """
    n = max(1, int(round(top * len(scores))))
    order = np.argsort(-scores, kind="stable")[:n]
    return float(np.asarray(y_true)[order].mean())


def gains_table(y_true: pd.Series, scores: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Cumulative gains and lift by decile of score (decile 1 = highest scores)."""
    order = np.argsort(-scores, kind="stable")
    y = np.asarray(y_true)[order]
    decile = np.ceil((np.arange(len(y)) + 1) * bins / len(y)).astype(int)
    table = pd.DataFrame({"decile": decile, "y": y}).groupby("decile")["y"].agg(["size", "sum"])
    table["cumulative_share_of_customers"] = table["size"].cumsum() / len(y)
    table["cumulative_gain"] = table["sum"].cumsum() / max(y.sum(), 1)
    table["lift"] = table["cumulative_gain"] / table["cumulative_share_of_customers"]
    return table.rename(columns={"size": "customers", "sum": "positives"})


def one_rule_tier(split: Split, feature: str = "early_spend", bins: int = 5) -> np.ndarray:
    """Question 1 baseline: bin one feature into quantiles on the training set; predict each bin's majority tier."""
    edges = np.unique(np.quantile(split.x_train[feature], np.linspace(0, 1, bins + 1)))
    train_bin = np.clip(np.searchsorted(edges, split.x_train[feature], side="right") - 1, 0, len(edges) - 2)
    test_bin = np.clip(np.searchsorted(edges, split.x_test[feature], side="right") - 1, 0, len(edges) - 2)
    majority = pd.Series(split.y_train.to_numpy()).groupby(train_bin).agg(lambda s: s.value_counts().index[0])
    fallback = split.y_train.value_counts().index[0]
    return np.array([majority.get(b, fallback) for b in test_bin], dtype=object)


def rfm_baseline_score(x: pd.DataFrame) -> np.ndarray:
    """Question 2 baseline: the sum of the R, F and M quintile scores at the cut-off (no learning)."""
    table = rfm_scores(x.reset_index().rename(columns={"index": "customer_id"}))
    return (table["r_score"] + table["f_score"] + table["m_score"]).to_numpy(dtype=float)


def importance(model: HistGradientBoostingClassifier, split: Split, seed: int = 42, scoring: str = "roc_auc") -> pd.DataFrame:
    """Permutation importance on the test period: how much the score drops when a feature is shuffled.

    Computed on at most :data:`IMPORTANCE_SAMPLE` test customers (a seeded sample).
    """
    x_test, y_test = _sample_rows(split.x_test, split.y_test, IMPORTANCE_SAMPLE, seed)
    result = permutation_importance(model, x_test, y_test, n_repeats=5, random_state=seed, scoring=scoring)
    return (pd.DataFrame({"feature": split.x_test.columns, "importance": result.importances_mean,
                          "std": result.importances_std})
            .sort_values("importance", ascending=False).reset_index(drop=True))


def confusion(y_true: pd.Series, y_pred: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Confusion matrix with named rows (actual) and columns (predicted)."""
    return pd.DataFrame(confusion_matrix(y_true, y_pred, labels=labels),
                        index=pd.Index(labels, name="actual"), columns=pd.Index(labels, name="predicted"))


def score_customers(transactions: pd.DataFrame, customers: pd.DataFrame, as_of: dt.date, tier_split_: Split,
                    value_split: Split, now: pd.DataFrame, early_days: int, seed: int = 42) -> pd.DataFrame:
    """The stage's artifact: for every customer, a predicted tier and a probability of high value next period.

    Both models are refitted on everything labelled (for question 2, the most
    recent period) before scoring today's customers. ``early_window_complete``
    is False for customers acquired less than ``early_days`` before ``as_of``
    (their early behaviour is still incomplete).
    """
    tier_model = make_model(seed).fit(*_sample_rows(pd.concat([tier_split_.x_train, tier_split_.x_test]),
                                                    pd.concat([tier_split_.y_train, tier_split_.y_test]), TRAIN_SAMPLE, seed))
    countries = [c[len("country_"):] for c in tier_split_.x_train.columns if c.startswith("country_")] or None
    early = tier_split_.features if tier_split_.features is not None else early_features(transactions, early_days, countries)
    out = pd.DataFrame(index=customers["customer_id"].rename("customer_id"))
    out["predicted_tier"] = pd.Series(tier_model.predict(early[tier_split_.x_train.columns]), index=early.index)
    out["early_window_complete"] = (early["first_purchase"] + pd.Timedelta(days=early_days) <= pd.Timestamp(as_of)
                                    ).reindex(out.index)
    value_model = make_model(seed).fit(*_sample_rows(value_split.x_test, value_split.y_test, TRAIN_SAMPLE, seed))
    out["p_high_value"] = pd.Series(value_model.predict_proba(now[RFM_FEATURES])[:, 1], index=now.index).reindex(out.index)
    rank = out["p_high_value"].rank(method="first", ascending=False)
    out["prospect"] = rank <= np.ceil(0.1 * len(out))
    return out.reset_index()
