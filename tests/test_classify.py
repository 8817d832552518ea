"""Stage 07: time splits without leakage, baselines, metrics, and small-class edge cases."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from helpers import classify as cf
from helpers.tiers import value_tiers

AS_OF = dt.date(2021, 12, 31)


def log(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two years of purchases: a fifth of the customers are heavy buyers with big baskets."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        heavy = i % 5 == 0
        first = pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(rng.integers(0, 600)))
        rate = 1 / 20 if heavy else 1 / 120
        day = first
        while day <= pd.Timestamp(AS_OF):
            rows.append((f"c{i:04d}", day + pd.Timedelta(hours=10), float(rng.gamma(5, 40 if heavy else 8)), "DE" if heavy else "FR"))
            day += pd.Timedelta(days=int(rng.exponential(1 / rate)) + 1)
    return pd.DataFrame(rows, columns=["customer_id", "order_ts", "amount", "country"])


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    return log()


@pytest.fixture(scope="module")
def customers(tx: pd.DataFrame) -> pd.DataFrame:
    from helpers.rfm import customer_table

    table = customer_table(tx, AS_OF)
    table["value_tier"] = value_tiers(table["monetary_total"], table["frequency"].astype(float))
    return table


def test_question_2_features_never_see_the_future(tx: pd.DataFrame) -> None:
    split, _ = cf.high_value_split(tx, AS_OF, 180, 0.2)
    test_cut = pd.Timestamp(AS_OF) - pd.Timedelta(days=180)
    changed = tx.copy()
    later = changed["order_ts"] > test_cut + pd.Timedelta(days=1)
    changed.loc[later, "amount"] *= 100  # rewrite the future
    again, _ = cf.high_value_split(changed, AS_OF, 180, 0.2)
    pd.testing.assert_frame_equal(split.x_test, again.x_test)
    pd.testing.assert_frame_equal(split.x_train, again.x_train)
    pd.testing.assert_series_equal(split.y_train, again.y_train)  # training labels end at the test cut-off


def test_question_1_learns_from_earlier_acquisitions_and_sees_only_the_first_days(tx: pd.DataFrame,
                                                                                   customers: pd.DataFrame) -> None:
    split = cf.tier_split(tx, customers, AS_OF, 60, 0.3)
    feats = cf.early_features(tx, 60)
    assert feats.loc[split.x_train.index, "first_purchase"].max() < feats.loc[split.x_test.index, "first_purchase"].min()
    late = tx.copy()
    first = late.groupby("customer_id")["order_ts"].transform("min")
    late.loc[late["order_ts"] >= first.dt.normalize() + pd.Timedelta(days=60), "amount"] = 1e6
    pd.testing.assert_frame_equal(split.x_test, cf.tier_split(late, customers, AS_OF, 60, 0.3).x_test)
    eligible = feats["first_purchase"] + pd.Timedelta(days=60) <= pd.Timestamp(AS_OF)
    assert len(split.x_train) + len(split.x_test) == int(eligible.sum())


def test_future_high_value_is_the_top_share_of_spenders(tx: pd.DataFrame) -> None:
    ids = pd.Index(sorted(tx["customer_id"].unique()))
    y = cf.future_high_value(tx, ids, dt.date(2021, 6, 30), 180, 0.2)
    assert y.sum() == int(np.ceil(0.2 * len(ids)))
    none = cf.future_high_value(tx, ids, dt.date(2030, 1, 1), 30, 0.2)
    assert none.sum() == 0  # nobody who spends nothing is high value


def test_the_model_beats_the_baselines_on_a_learnable_problem(tx: pd.DataFrame, customers: pd.DataFrame) -> None:
    split, _ = cf.high_value_split(tx, AS_OF, 180, 0.2)
    model = cf.make_model().fit(split.x_train, split.y_train)
    scores = model.predict_proba(split.x_test)[:, 1]
    assert cf.auc(split.y_test, scores) > 0.8
    assert cf.auc(split.y_test, cf.rfm_baseline_score(split.x_test)) > 0.6
    tiers = cf.tier_split(tx, customers, AS_OF, 90, 0.3)
    baseline = cf.one_rule_tier(tiers)
    assert set(baseline) <= set(tiers.y_train)


def test_cross_validation_copes_with_a_class_of_one(tx: pd.DataFrame) -> None:
    split, _ = cf.high_value_split(tx, AS_OF, 180, 0.2)
    y = split.y_train.copy()
    y.iloc[:] = 0
    y.iloc[0] = 1  # a class with one member
    lonely = cf.Split(split.x_train, y, split.x_test, split.y_test, "")
    scores, note = cf.cross_validate(cf.make_model(), lonely, 5, 0)
    assert "single member" in note and len(scores) == 5
    y.iloc[:3] = 1
    scores, note = cf.cross_validate(cf.make_model(), cf.Split(split.x_train, y, split.x_test, split.y_test, ""), 5, 0)
    assert "reduced from 5" in note and len(scores) == 3


def test_multiclass_auc_skips_classes_absent_from_the_test_period() -> None:
    y = pd.Series(["a", "a", "b", "b"])
    proba = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    assert cf.auc(y, proba, ["a", "b", "c"]) == 1.0
    assert np.isnan(cf.auc(pd.Series(["a", "a"]), proba[:2], ["a", "b", "c"]))


def test_gains_end_at_everyone_found_and_lift_one() -> None:
    y = pd.Series([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    table = cf.gains_table(y, np.linspace(1, 0, 10))
    assert table["cumulative_gain"].iloc[-1] == 1.0 and table["lift"].iloc[-1] == 1.0
    assert table["positives"].sum() == 3


def test_scores_for_today_cover_every_customer(tx: pd.DataFrame, customers: pd.DataFrame) -> None:
    tiers = cf.tier_split(tx, customers, AS_OF, 90, 0.3)
    value, now = cf.high_value_split(tx, AS_OF, 180, 0.2)
    scored = cf.score_customers(tx, customers, AS_OF, tiers, value, now, 90)
    assert len(scored) == len(customers) and scored["p_high_value"].between(0, 1).all()
    assert scored["prospect"].sum() == int(np.ceil(0.1 * len(customers)))
    assert set(scored["predicted_tier"]) <= {"platinum", "gold", "iron", "lead"}
    recent = customers.set_index("customer_id")["first_purchase"] > pd.Timestamp(AS_OF) - pd.Timedelta(days=90)
    assert (~scored.set_index("customer_id").loc[recent[recent].index, "early_window_complete"]).all()
    again = cf.score_customers(tx, customers, AS_OF, tiers, value, now, 90)
    pd.testing.assert_frame_equal(scored, again)  # seeded: identical on rerun
