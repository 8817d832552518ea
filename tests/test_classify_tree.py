"""Stage 07's readable decision tree, prospects among new customers, and notebook 07's generated interpretation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import classify as cf
from helpers.interpret import classify as interpret

pytestmark = pytest.mark.usefixtures("one_openmp_thread")


def crisp_split(n: int = 400, seed: int = 0) -> cf.Split:
    """Early spend decides the tier (platinum above 100, gold 60-100, lead below); purchases are noise."""
    rng = np.random.default_rng(seed)
    spend = rng.uniform(0, 150, n)
    x = pd.DataFrame({"early_spend": spend, "early_purchases": rng.integers(1, 4, n).astype(float)},
                     index=[f"c{i}" for i in range(n)])
    y = pd.Series(np.where(spend > 100, "platinum", np.where(spend > 60, "gold", "lead")), index=x.index)
    half = n // 2
    return cf.Split(x.iloc[:half], y.iloc[:half], x.iloc[half:], y.iloc[half:], "crisp", cut=None)


@pytest.fixture(scope="module")
def tree() -> cf.TreeAnswer:
    return cf.answer_tree(crisp_split(), seed=0, question=1)


def test_the_tree_is_shallow_scored_like_the_model_and_its_rules_name_the_features(tree: cf.TreeAnswer) -> None:
    assert tree.model.get_depth() <= cf.TREE_DEPTH
    assert list(tree.metrics.index) == ["accuracy", "balanced accuracy", cf.TIER_AUC]
    assert tree.metrics["accuracy"] > 0.95  # the crisp rule is learnable by two questions
    rules = tree.rules()
    assert "early_spend <= " in rules and "class: platinum" in rules
    table = cf.leaves(tree, 90)
    assert len(table) == tree.model.get_n_leaves() and table["training customers"].sum() == len(tree.split.y_train)


def test_the_top_rule_is_read_in_the_feature_s_units(tree: cf.TreeAnswer) -> None:
    rule = cf.top_rule(tree, 90)
    assert rule["predicts"] == "platinum" and rule["target share"] == 1.0
    threshold = float(rule["rule"].split("above ")[1].split()[0].replace(",", ""))
    assert 95 < threshold < 105  # the tree found the cut at 100 (in the spend's own units)
    sentence = cf.read_rule(tree, 90, "platinum")
    assert sentence.startswith("Customers with spend in the first 90 days above") and "100% of cases" in sentence


def test_whole_numbers_and_countries_are_read_as_such() -> None:
    from helpers.classify.tree import _words

    phrase = _words([("early_purchases", ">", 1.5), ("country_DE", ">", 0.5), ("early_purchases", "<=", 3.5)], 30)
    assert phrase == "purchase days in the first 30 days at least 2 and at most 3; first bought from DE"
    assert _words([("country_DE", "<=", 0.5)], 30) == "did not first buy from DE"


def recall_table(iron_predicted: int) -> pd.DataFrame:
    """A per-tier table as :func:`cf.tier_recall` makes it, with iron predicted ``iron_predicted`` times (all right)."""
    y = pd.Series(["platinum"] * 10 + ["gold"] * 5 + ["iron"] * 20 + ["lead"] * 65)
    predicted = y.to_numpy().copy()
    iron = np.flatnonzero(predicted == "iron")
    predicted[iron[iron_predicted:]] = "lead"
    x = pd.DataFrame({"early_spend": np.r_[np.full(10, 90.0), np.full(5, 150.0), np.full(20, 26.0), np.full(65, 25.0)]})
    return cf.tier_recall(y, {"boosted model": predicted, "tree": predicted}, x, y)


def test_a_tier_never_predicted_is_named_with_its_support_and_why() -> None:
    blind = recall_table(0)
    assert cf.never_predicted(blind, "boosted model") == ["iron"] and blind.loc["iron", "boosted model: recall"] == 0
    text = interpret.blind_tiers(blind)
    assert "never predicts **iron**: 20 test customers" in text and "spend like **lead**" in text
    assert "barely sees **iron**" in interpret.blind_tiers(recall_table(1))  # recall 5%: seen, barely
    assert interpret.blind_tiers(recall_table(20)) == ""  # every iron customer found: nothing to say


def test_newcomers_are_flagged_counted_and_backtested(tree: cf.TreeAnswer) -> None:
    split = tree.split
    answer = cf.Answer(split, cf.make_model(), np.array([0.7]), "", pd.DataFrame(), (), np.zeros(len(split.y_test)),
                       np.zeros(len(split.y_test)), tree.predicted)  # the tree's tiers stand in for the model's
    scored = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "early_window_complete": [True, False, False, False],
                           "predicted_tier": ["platinum", "platinum", "iron", "lead"], "p_high_value": 0.5,
                           "prospect": [True, False, False, False], "value_tier": ["platinum", "platinum", "lead", "lead"]})
    found = cf.new_prospects(scored, 30, 0.1, answer, None)
    assert (found.new, found.flagged, found.flagged_platinum, found.existing_platinum) == (3, 2, 1, 1)
    b = found.backtest
    assert b["customers"] == len(split.y_test) and b["precision"] > b["base_rate"]  # the flag beats chance
    assert found.table().loc["newcomers", "today"] == 3
    none_new = cf.new_prospects(scored.assign(early_window_complete=True), 30, 0.1, answer, None)
    assert none_new.new == 0 and none_new.flagged == 0 and none_new.backtest == b


def test_without_tiers_question_2_flags_the_best_scored_newcomers() -> None:
    scored = pd.DataFrame({"customer_id": list("abcdef"), "early_window_complete": [True] * 2 + [False] * 4,
                           "predicted_tier": None, "p_high_value": [0.9, 0.8, 0.1, 0.7, 0.2, 0.3],
                           "prospect": False, "value_tier": np.nan})
    x = pd.DataFrame({"tenure_days": [10, 20, 400, 500], "frequency": 1.0})
    split = cf.Split(x, pd.Series([1, 0, 0, 1]), x, pd.Series([1, 0, 0, 1]), "", cut=None)
    value = cf.Answer(split, cf.make_model(), np.array([0.7]), "", pd.DataFrame(), (), np.array([0.9, 0.1, 0.5, 0.6]),
                      np.zeros(4))
    found = cf.new_prospects(scored, 30, 0.25, None, value)
    assert found.model == "high value" and found.new == 4 and found.flagged == 1 and found.flagged_platinum is None
    assert found.backtest["customers"] == 2 and found.backtest["precision"] == 1.0  # the newcomer scored 0.9 was high value


def _answer(model: list[float], baseline: list[float]) -> cf.Answer:
    table = pd.DataFrame({"model": model, "RFM-score baseline": baseline}, index=["ROC-AUC", "precision in the top decile"])
    split = crisp_split(8)
    return cf.Answer(split, cf.make_model(), np.array([0.7]), "", table, ("ROC-AUC", "precision in the top decile"),
                     np.zeros(4), np.zeros(4))


def test_the_verdict_follows_the_margins() -> None:
    assert "beats its baseline clearly" in interpret.verdict(_answer([0.91, 0.8], [0.85, 0.7]), "high-value")
    assert "level with its baseline" in interpret.verdict(_answer([0.812, 0.686], [0.814, 0.690]), "high-value")
    assert "in practice a tie" in interpret.verdict(_answer([0.82, 0.71], [0.81, 0.70]), "high-value")
    assert "wins on one measure" in interpret.verdict(_answer([0.9, 0.5], [0.8, 0.7]), "high-value")
    assert "does not beat" in interpret.verdict(_answer([0.7, 0.5], [0.8, 0.7]), "high-value")
    assert "(+0.060" in interpret.verdict(_answer([0.91, 0.8], [0.85, 0.7]), "high-value")


def test_the_tree_is_judged_against_the_boosted_model() -> None:
    from types import SimpleNamespace

    answer = _answer([0.80, 0.6], [0.75, 0.5])
    said = {auc: interpret.tree_versus_model(answer, SimpleNamespace(metrics=pd.Series({"ROC-AUC": auc})))
            for auc in (0.85, 0.79, 0.70)}
    assert "does better (ROC-AUC 0.850 vs 0.800)" in said[0.85] and "does as well" in said[0.79]
    assert "ranks worse" in said[0.70] and interpret.tree_versus_model(answer, None) == ""


@pytest.fixture(scope="module")
def stage_result():  # noqa: ANN201
    """Stage 07 in-process on test_classify's synthetic log plus twelve newcomers: (result with tiers, without).

    The run without tiers is the same run with question 1 taken away (as when stage 05 made no forecast):
    no tier model, no tree for it, and the newcomers flagged by question 2's model.
    """
    import dataclasses

    from test_classify import AS_OF, days_of, log, stage_params
    from helpers.rfm import customer_table
    from helpers.stages.classify import classify_customers
    from helpers.tiers import value_tiers

    rng = np.random.default_rng(3)
    new = pd.DataFrame({"customer_id": [f"n{i:02d}" for i in range(12)],
                        "order_ts": pd.Timestamp(AS_OF) - pd.to_timedelta(rng.integers(5, 60, 12), unit="D"),
                        "amount": rng.gamma(5, 40, 12), "country": "DE"})
    tx = pd.concat([log(150), new], ignore_index=True)  # twelve newcomers in the last 60 days
    table = customer_table(tx, AS_OF)
    table["value_tier"] = value_tiers(table["monetary_total"], table["frequency"].astype(float))
    table["rfm_segment"] = "others"
    tiers = classify_customers(stage_params(), days_of(tx), tx, table, {"forecast": True})
    scored = tiers.scored.assign(predicted_tier=None, value_tier=np.nan)
    no_tiers = dataclasses.replace(
        tiers, tiers=None, q1_skipped="there are no value tiers to learn: stage 05 made no CLV forecast (x)",
        tier_answer=None, tier_tree=None, scored=scored,
        newcomers=cf.new_prospects(scored, tiers.windows.early_days, tiers.prospect_share, None, tiers.value_answer))
    return tiers, no_tiers


def test_the_stage_shows_the_tree_beside_the_model_and_writes_it(stage_result) -> None:  # noqa: ANN001
    tiers, no_tiers = stage_result
    assert list(tiers.q1_table().columns) == ["model", f"decision tree (depth {cf.TREE_DEPTH})", "one-rule baseline"]
    assert list(tiers.q2_table().columns)[1].startswith("decision tree")
    summary = tiers.summary()
    assert summary["q1_tree"]["tree"]["accuracy"] == tiers.tier_tree.metrics["accuracy"]
    assert summary["new_prospects"]["model"] == "tier" and summary["new_prospects"]["new"] == tiers.newcomers.new
    assert "question 1 (value tier)" in tiers.describe_trees() and "Read one rule: Customers with" in tiers.describe_trees()
    assert "question 1" not in no_tiers.describe_trees() and no_tiers.tier_recall() is None
    assert list(tiers.tier_recall().index) == ["platinum", "gold", "iron", "lead"]
    assert no_tiers.summary()["new_prospects"]["model"] == "high value"


def test_the_interpretation_changes_with_the_data(stage_result) -> None:  # noqa: ANN001
    tiers, no_tiers = stage_result
    with_text, without_text = interpret.summary(tiers), interpret.summary(no_tiers)
    assert with_text != without_text
    assert "The tier question was skipped" in without_text and "The tier question" not in with_text
    assert "The boosted tier model" in with_text and "are platinum in" in with_text
    assert "this run has no value tiers" in without_text
    n = tiers.newcomers
    assert n.new == 12 and f"**{n.flagged:,} of 12 new customers**" in with_text
    assert f"{n.backtest['precision']:.0%} turned out valuable" in with_text
