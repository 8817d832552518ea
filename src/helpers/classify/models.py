"""Stage 07's models and answers: the classifier, cross-validation, baselines, metrics and the comparison.

Each question is answered on its held-out period (:func:`answer_tiers`,
:func:`answer_high_value`): cross-validated on the training period, fitted,
and compared with a simple baseline on the same split (question 1: a one-rule
classifier on early spend; question 2: the RFM score). :class:`Answer` says
whether the model beats its baseline, which decides whether prospects are flagged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

from helpers.classify.splits import Split, _sample_rows
from helpers.rfm import rfm_scores

#: Models are cross-validated on at most CV_SAMPLE training customers and explained on at most
#: IMPORTANCE_SAMPLE test customers (seeded samples): more rows change little and cost minutes.
CV_SAMPLE, IMPORTANCE_SAMPLE = 50_000, 20_000
#: The labels of question 2's confusion matrix (calling the top ``classify.target_share`` by score).
HIGH_VALUE_LABELS = ["high value", "other"]


#: Boosting rounds (trees per class) when ``classify.boosting_rounds`` is not given.
ROUNDS = 200


def make_model(seed: int = 42, rounds: int = ROUNDS) -> HistGradientBoostingClassifier:
    """The classifier used for both questions: gradient-boosted trees (no scaling needed, robust to skew)."""
    return HistGradientBoostingClassifier(max_iter=rounds, learning_rate=0.05, max_leaf_nodes=15,
                                          l2_regularization=1.0, random_state=seed)


def predict_rows(model: HistGradientBoostingClassifier, x: pd.DataFrame, method: str = "predict_proba") -> np.ndarray:
    """``model.<method>(x)``, walked through the trees once per distinct row of ``x`` as the model bins it.

    The same numbers as predicting every row: a fitted tree splits a feature at one of its bin edges,
    ``x <= edge`` exactly when the value's bin is at most the edge's, so rows with the same bins (the
    model's own ``_bin_mapper``, at most 255 per feature) follow the same paths. A million customers
    often share a few hundred thousand binned rows or fewer.
    """
    if len(x) == 0:
        return getattr(model, method)(x)
    binned = model._bin_mapper.transform(np.ascontiguousarray(x.to_numpy(dtype=np.float64)))
    packed = np.zeros((len(x), -(-binned.shape[1] // 8) * 8), dtype=np.uint8)
    packed[:, :binned.shape[1]] = binned
    keys = pd.DataFrame(packed.view(np.uint64))
    codes = keys.groupby(list(keys.columns), sort=False).ngroup().to_numpy()
    first = np.zeros(codes.max() + 1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # the first row of each distinct binned row
    return getattr(model, method)(x.iloc[first])[codes]


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
        """Standard deviation of the cross-validated scores (NaN when no fold could be scored)."""
        finite = self.cv_scores[np.isfinite(self.cv_scores)]
        return float(finite.std()) if len(finite) else float("nan")

    @property
    def baseline_name(self) -> str:
        """The baseline's column in :attr:`table`."""
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
    """A metric with 3 digits, or "undefined".

    >>> _fmt(0.71234), _fmt(float("nan"))
    ('0.712', 'undefined')
    """
    return f"{value:.3f}" if np.isfinite(value) else "undefined"


def _pct(share: float) -> str:
    """A share as a percentage that is not rounded up to 100% or down to 0% (99.9%, 0.4%).

    >>> _pct(0.5612), _pct(0.9991), _pct(1.0), _pct(0.004)
    ('56%', '99.9%', '100%', '0.4%')
    """
    return f"{share:.1%}" if 0 < share < 0.01 or 0.99 < share < 1 else f"{share:.0%}"


TIER_AUC = "ROC-AUC (one-vs-rest, macro)"


def tier_metrics(y_true: pd.Series, predicted: np.ndarray, proba: np.ndarray, classes: list) -> pd.Series:
    """Question 1's metrics of one classifier on the test period: accuracy, balanced accuracy, macro ROC-AUC."""
    with warnings.catch_warnings():  # a tier absent from the test period
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return pd.Series([float((predicted == y_true).mean()), balanced_accuracy_score(y_true, predicted),
                          auc(y_true, proba, classes)], index=["accuracy", "balanced accuracy", TIER_AUC])


def high_value_metrics(y_true: pd.Series, scores: np.ndarray, top: float = 0.1) -> pd.Series:
    """Question 2's metrics of one score on the test period: ROC-AUC and precision among the ``top`` share."""
    return pd.Series([auc(y_true, scores), precision_at(y_true, scores, top)], index=["ROC-AUC", precision_label(top)])


def answer_tiers(split: Split, folds: int, seed: int, rounds: int = ROUNDS) -> Answer:
    """Question 1: cross-validate, fit on the training period, compare with the one-rule baseline on the test period.

    The model beats the baseline when it is better on balanced accuracy (the
    mean hit rate per tier, so calling everyone "lead" does not look good) and
    on ROC-AUC (the number the report shows).
    """
    model = make_model(seed, rounds)
    cv_scores, cv_note = cross_validate(model, split, folds, seed)
    model.fit(split.x_train, split.y_train)
    predicted = predict_rows(model, split.x_test, "predict")
    classes = list(model.classes_)
    proba = predict_rows(model, split.x_test)
    baseline = one_rule_tier(split)
    baseline_proba = one_rule_tier_proba(split, classes)
    table = pd.DataFrame({"model": tier_metrics(split.y_test, predicted, proba, classes),
                          "one-rule baseline": tier_metrics(split.y_test, baseline, baseline_proba, classes)}).round(3)
    return Answer(split, model, cv_scores, cv_note, table, ("balanced accuracy", TIER_AUC), proba, baseline, predicted)


def precision_label(top: float) -> str:
    """The name of the precision row: "precision in the top decile" for 10%, else "precision in the top 5%".

    >>> precision_label(0.1), precision_label(0.05)
    ('precision in the top decile', 'precision in the top 5%')
    """
    return "precision in the top decile" if abs(top - 0.1) < 1e-12 else f"precision in the top {top:.0%}"


def answer_high_value(split: Split, folds: int, seed: int, top: float = 0.1, rounds: int = ROUNDS) -> Answer:
    """Question 2: cross-validate, fit on the training period, compare with the RFM score on the test period.

    The model beats the RFM score when it ranks customers better (ROC-AUC) and
    its ``top`` share (the prospects, ``classify.prospect_share``) holds more of
    the high-value customers (precision among the top).
    """
    model = make_model(seed, rounds)
    cv_scores, cv_note = cross_validate(model, split, folds, seed)
    model.fit(split.x_train, split.y_train)
    scores = predict_rows(model, split.x_test)[:, 1]
    rfm_score = rfm_baseline_score(split.x_test)
    table = pd.DataFrame({"model": high_value_metrics(split.y_test, scores, top),
                          "RFM-score baseline": high_value_metrics(split.y_test, rfm_score, top)}).round(3)
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


def top_share_confusion(y_true: pd.Series, scores: np.ndarray, share: float) -> pd.DataFrame:
    """Question 2's confusion matrix when the top ``share`` of customers by score are called high value.

    The cut is the score's ``1 - share`` quantile (ties at it are called too).

    >>> top_share_confusion(pd.Series([1, 0, 0, 1]), np.array([0.9, 0.8, 0.1, 0.2]), 0.25).to_numpy().tolist()
    [[1, 1], [0, 2]]
    """
    threshold = np.quantile(scores, 1 - share)
    return confusion(y_true.map({1: HIGH_VALUE_LABELS[0], 0: HIGH_VALUE_LABELS[1]}),
                     np.where(scores >= threshold, *HIGH_VALUE_LABELS), HIGH_VALUE_LABELS)
