"""The classifier the course names: a shallow decision tree whose rules a person can read, beside the boosted model.

A decision tree asks one yes/no question about one feature at each step
("was the spend in the first 90 days above 127?") and ends in a leaf that
names a class. With :data:`TREE_DEPTH` questions at most it is a handful of
rules a marketer can check against intuition; the gradient-boosted model
(:func:`helpers.classify.models.make_model`) adds up hundreds of such trees and
ranks better, but no one can read it. :func:`answer_tree` fits the tree on the
same time split as the boosted model and scores it with the same metrics
(:func:`helpers.classify.models.tier_metrics`, :func:`~helpers.classify.models.high_value_metrics`),
so the table shows model, tree and baseline side by side. :func:`leaves` turns
the tree into one readable rule per leaf, thresholds in the features' own
units; :func:`tier_recall` shows which tier a model never predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier, export_text

from helpers import names
from helpers.classify.models import HIGH_VALUE_LABELS, high_value_metrics, tier_metrics
from helpers.classify.splits import Split

#: The tree's depth: three questions at most from the root to a leaf (at most eight rules).
TREE_DEPTH = 3
#: A rule is read out (:func:`top_rule`) from a leaf holding at least this many training customers, or this
#: share of them when that is fewer (small data sets), when such a leaf exists.
RULE_MIN_CUSTOMERS, RULE_MIN_SHARE = 20, 0.05
#: Features in whole numbers (counts, days): their thresholds are read as such ("at most 1 purchase").
WHOLE_FEATURES = {"early_purchases", "frequency", "purchases_last_90d", "recency_days", "tenure_days"}
#: How a feature is named in a rule read aloud (the others keep their column name).
FEATURE_WORDS = {
    "first_order_value": "first order value", "early_purchases": "purchase days in the first {early} days",
    "early_spend": "spend in the first {early} days", "early_mean_spend": "spend per purchase day in the first {early} days",
    "recency_days": "days since the last purchase", "frequency": "purchase days", "monetary_total": "total spend",
    "monetary_avg": "spend per purchase day", "tenure_days": "days since the first purchase",
    "purchases_last_90d": "purchase days in the last 90 days", "spend_last_90d": "spend in the last 90 days",
}


@dataclass
class TreeAnswer:
    """A depth-:data:`TREE_DEPTH` tree fitted on a question's training period and scored on its test period."""

    model: DecisionTreeClassifier
    split: Split
    metrics: pd.Series  # the same rows as the boosted model's table, rounded to 3 digits
    predicted: np.ndarray  # the tree's class for each test customer
    target: str | int  # the class a rule is read for: "platinum" (question 1) or 1 (high value, question 2)

    @property
    def class_names(self) -> list[str]:
        """The classes in the tree's order, in words (question 2: "other", "high value")."""
        return [str(c) if isinstance(c, str) else HIGH_VALUE_LABELS[0] if c == 1 else HIGH_VALUE_LABELS[1]
                for c in self.model.classes_]

    @property
    def features(self) -> list[str]:
        """The feature names, in the tree's column order."""
        return list(self.split.x_train.columns)

    def rules(self) -> str:
        """The whole tree as indented text (:func:`sklearn.tree.export_text`), thresholds in the features' units."""
        return export_text(self.model, feature_names=self.features, class_names=self.class_names, decimals=2)


def answer_tree(split: Split, seed: int, question: int, top: float = 0.1, depth: int = TREE_DEPTH) -> TreeAnswer:
    """Fit the tree on ``split``'s training period; score it on the test period like the boosted model of ``question``.

    Question 1 gets accuracy, balanced accuracy and the macro ROC-AUC; question 2
    ROC-AUC and precision in the ``top`` share (the tree's leaf probabilities are its scores).
    """
    tree = DecisionTreeClassifier(max_depth=depth, random_state=seed).fit(split.x_train, split.y_train)
    predicted = tree.predict(split.x_test)
    proba = tree.predict_proba(split.x_test)
    if question == 1:
        metrics = tier_metrics(split.y_test, predicted, proba, list(tree.classes_))
        target: str | int = names.TIERS[0]
    else:
        metrics = high_value_metrics(split.y_test, proba[:, list(tree.classes_).index(1)], top)
        target = 1
    return TreeAnswer(tree, split, metrics.round(3), predicted, target)


def _bound(feature: str, op: str, threshold: float) -> str:
    """One condition in the feature's units: counts as whole numbers, country indicators by name.

    >>> _bound("early_purchases", "<=", 1.5), _bound("early_purchases", ">", 1.5), _bound("country_DE", ">", 0.5)
    ('at most 1', 'at least 2', 'yes')
    >>> _bound("early_spend", ">", 126.984)
    'above 126.98'
    """
    if feature.startswith("country_"):
        return "yes" if op == ">" else "no"
    if feature in WHOLE_FEATURES:
        return f"at most {int(np.floor(threshold))}" if op == "<=" else f"at least {int(np.floor(threshold)) + 1}"
    return f"at most {threshold:,.2f}" if op == "<=" else f"above {threshold:,.2f}"


def feature_words(feature: str, early_days: int) -> str:
    """How ``feature`` is named in a sentence ("spend in the first 90 days"; "first bought from DE").

    >>> feature_words("early_spend", 90), feature_words("country_DE", 90)
    ('spend in the first 90 days', 'first bought from DE')
    """
    if feature.startswith("country_"):
        return f"first bought from {feature[len('country_'):]}"
    return FEATURE_WORDS.get(feature, feature).format(early=early_days)


def leaves(answer: TreeAnswer, early_days: int) -> pd.DataFrame:
    """One row per leaf: its rule in words, the class it predicts, its training customers and its share of the target.

    Conditions on the same feature are merged (the tightest bound each way). Sorted by the target's share, highest first.
    """
    t = answer.model.tree_
    classes, said = list(answer.model.classes_), answer.class_names
    k = classes.index(answer.target) if answer.target in classes else None
    rows = []

    def walk(node: int, path: list[tuple[str, str, float]]) -> None:
        if t.children_left[node] == -1:
            share = t.value[node][0] / t.value[node][0].sum()
            rows.append({"rule": _words(path, early_days), "predicts": said[int(np.argmax(share))],
                         "training customers": int(t.n_node_samples[node]),
                         "target share": float(share[k]) if k is not None else float("nan")})
            return
        feature, threshold = answer.features[t.feature[node]], float(t.threshold[node])
        walk(int(t.children_left[node]), [*path, (feature, "<=", threshold)])
        walk(int(t.children_right[node]), [*path, (feature, ">", threshold)])

    walk(0, [])
    return (pd.DataFrame(rows).sort_values(["target share", "training customers"], ascending=[False, False])
            .reset_index(drop=True))


def _words(path: list[tuple[str, str, float]], early_days: int) -> str:
    """The conditions of a leaf as one phrase, each feature once with its tightest bounds."""
    bounds: dict[str, dict[str, float]] = {}
    for feature, op, threshold in path:
        kept = bounds.setdefault(feature, {})
        kept[op] = min(threshold, kept.get(op, np.inf)) if op == "<=" else max(threshold, kept.get(op, -np.inf))
    parts = []
    for feature, kept in bounds.items():
        said = [_bound(feature, op, kept[op]) for op in (">", "<=") if op in kept]
        if feature.startswith("country_"):
            parts.append(feature_words(feature, early_days) if said == ["yes"] else
                         f"did not {feature_words(feature, early_days).replace('first bought', 'first buy')}")
        else:
            parts.append(f"{feature_words(feature, early_days)} {' and '.join(said)}")
    return "; ".join(parts) or "everyone"


def top_rule(answer: TreeAnswer, early_days: int) -> dict[str, object] | None:
    """The rule worth reading: the leaf with the highest share of the target class among large enough leaves.

    Candidates are the leaves that predict the target (all leaves when none
    does); "large enough" is at least :data:`RULE_MIN_CUSTOMERS` training
    customers, or :data:`RULE_MIN_SHARE` of them when that is fewer; without
    such a leaf the largest candidate is read. Returns its row of
    :func:`leaves` plus ``base share`` (the target's share of all training
    customers); None when the target is absent from the training customers.
    """
    table = leaves(answer, early_days).dropna(subset=["target share"])
    if table.empty:
        return None
    target = answer.class_names[list(answer.model.classes_).index(answer.target)]
    candidates = table[table["predicts"] == target] if (table["predicts"] == target).any() else table
    least = min(RULE_MIN_CUSTOMERS, max(1, int(RULE_MIN_SHARE * len(answer.split.y_train))))
    big = candidates[candidates["training customers"] >= least]
    row = big.iloc[0] if not big.empty else candidates.sort_values("training customers", ascending=False).iloc[0]
    return {**row.to_dict(), "base share": float((answer.split.y_train == answer.target).mean())}


def tier_recall(y_test: pd.Series, predictions: dict[str, np.ndarray], x_train: pd.DataFrame,
                y_train: pd.Series, feature: str = "early_spend") -> pd.DataFrame:
    """Per tier on the test period: customers (support), and for each model how many it predicted and its recall.

    ``recall`` is the share of the tier's customers the model put in it; a
    model that never predicts a tier has recall 0 there. The median of
    ``feature`` among the tier's training customers shows whether tiers differ in what the model sees.
    """
    tiers = list(names.TIERS)
    out = pd.DataFrame({"test customers": y_test.value_counts().reindex(tiers, fill_value=0)}, index=tiers)
    truth = y_test.to_numpy()
    for name, predicted in predictions.items():
        out[f"{name}: predicted"] = [int((predicted == t).sum()) for t in tiers]
        out[f"{name}: recall"] = [float(((predicted == t) & (truth == t)).sum() / n) if n else float("nan")
                                  for t, n in zip(tiers, out["test customers"], strict=True)]
    out[f"median {feature} (training)"] = x_train[feature].groupby(y_train.to_numpy()).median().reindex(tiers)
    out.index.name = "tier"
    return out.round(3)


def never_predicted(table: pd.DataFrame, model: str) -> list[str]:
    """The tiers present in the test period that ``model`` (a column prefix of :func:`tier_recall`) never predicts.

    >>> t = pd.DataFrame({"test customers": [5, 3, 0], "m: predicted": [4, 0, 0]}, index=["a", "b", "c"])
    >>> never_predicted(t, "m")
    ['b']
    """
    return [str(t) for t, row in table.iterrows() if row["test customers"] > 0 and row[f"{model}: predicted"] == 0]


def read_rule(answer: TreeAnswer, early_days: int, outcome: str) -> str:
    """One sentence reading the tree's :func:`top_rule`: who the leaf holds and how often they reach ``outcome``.

    ``outcome`` names the target in words ("platinum", "high value next period"); an
    empty string when no leaf is large enough to read.
    """
    rule = top_rule(answer, early_days)
    if rule is None:
        return ""
    share, base = float(rule["target share"]), float(rule["base share"])
    ratio = f" ({share / base:.1f} times as often)" if base > 0 else ""
    return (f"Customers with {rule['rule']} ({rule['training customers']:,} training customers) are {outcome} in "
            f"{share:.0%} of cases, against {base:.0%} of all training customers{ratio}; the tree calls them "
            f"{rule['predicts']}.")
