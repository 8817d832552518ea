"""Stage 07: time splits without leakage, baselines, metrics, and small-class edge cases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
import re
import tempfile

import numpy as np
import pandas as pd
import pytest

from helpers import classify as cf
from helpers.errors import DataError
from helpers.tiers import value_tiers

pytestmark = pytest.mark.usefixtures("one_openmp_thread")

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


def days_of(lines: pd.DataFrame) -> pd.DataFrame:
    """The purchase days of ``lines`` as stage 04 computes them: DuckDB over a Parquet file of the lines."""
    from helpers import summary

    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "transactions.parquet"
        lines.assign(order_id=[f"o{i}" for i in range(len(lines))]).to_parquet(file, index=False)
        return summary.purchase_days(file, lines["order_ts"].max().date())


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
    split, _ = cf.high_value_split(days_of(tx), tx, AS_OF, 180, 0.2)
    test_cut = pd.Timestamp(AS_OF) - pd.Timedelta(days=180)
    changed = tx.copy()
    later = changed["order_ts"] > test_cut + pd.Timedelta(days=1)
    changed.loc[later, "amount"] *= 100  # rewrite the future
    again, _ = cf.high_value_split(days_of(changed), changed, AS_OF, 180, 0.2)
    pd.testing.assert_frame_equal(split.x_test, again.x_test)
    pd.testing.assert_frame_equal(split.x_train, again.x_train)
    pd.testing.assert_series_equal(split.y_train, again.y_train)  # training labels end at the test cut-off


def test_question_1_learns_from_earlier_acquisitions_and_sees_only_the_first_days(tx: pd.DataFrame,
                                                                                   customers: pd.DataFrame) -> None:
    split = cf.tier_split(days_of(tx), customers, AS_OF, 60, 0.3)
    feats = cf.early_features(days_of(tx), 60)
    assert feats.loc[split.x_train.index, "first_purchase"].max() < feats.loc[split.x_test.index, "first_purchase"].min()
    late = tx.copy()
    first = late.groupby("customer_id")["order_ts"].transform("min")
    late.loc[late["order_ts"] >= first.dt.normalize() + pd.Timedelta(days=60), "amount"] = 1e6
    pd.testing.assert_frame_equal(split.x_test, cf.tier_split(days_of(late), customers, AS_OF, 60, 0.3).x_test)
    eligible = feats["first_purchase"] + pd.Timedelta(days=60) <= pd.Timestamp(AS_OF)
    assert len(split.x_train) + len(split.x_test) == int(eligible.sum())


def test_future_high_value_is_the_top_share_of_spenders(tx: pd.DataFrame) -> None:
    ids = pd.Index(sorted(tx["customer_id"].unique()))
    y = cf.future_high_value(tx, ids, dt.date(2021, 6, 30), 180, 0.2)
    assert y.sum() == int(np.ceil(0.2 * len(ids)))
    none = cf.future_high_value(tx, ids, dt.date(2030, 1, 1), 30, 0.2)
    assert none.sum() == 0  # nobody who spends nothing is high value


def test_the_model_beats_the_baselines_on_a_learnable_problem(tx: pd.DataFrame, customers: pd.DataFrame) -> None:
    split, _ = cf.high_value_split(days_of(tx), tx, AS_OF, 180, 0.2)
    model = cf.make_model().fit(split.x_train, split.y_train)
    scores = model.predict_proba(split.x_test)[:, 1]
    assert cf.auc(split.y_test, scores) > 0.8
    assert cf.auc(split.y_test, cf.rfm_baseline_score(split.x_test)) > 0.6
    tiers = cf.tier_split(days_of(tx), customers, AS_OF, 90, 0.3)
    baseline = cf.one_rule_tier(tiers)
    assert set(baseline) <= set(tiers.y_train)


def test_cross_validation_copes_with_a_class_of_one(tx: pd.DataFrame) -> None:
    split, _ = cf.high_value_split(days_of(tx), tx, AS_OF, 180, 0.2)
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
    tiers = cf.tier_split(days_of(tx), customers, AS_OF, 90, 0.3)
    value, now = cf.high_value_split(days_of(tx), tx, AS_OF, 180, 0.2)
    scored = cf.score_customers(days_of(tx), customers, AS_OF, tiers, value, now, 90)
    assert len(scored) == len(customers) and scored["p_high_value"].between(0, 1).all()
    assert scored["prospect"].sum() == int(np.ceil(0.1 * len(customers)))
    assert set(scored["predicted_tier"]) <= {"platinum", "gold", "iron", "lead"}
    recent = customers.set_index("customer_id")["first_purchase"] > pd.Timestamp(AS_OF) - pd.Timedelta(days=90)
    assert (~scored.set_index("customer_id").loc[recent[recent].index, "early_window_complete"]).all()
    again = cf.score_customers(days_of(tx), customers, AS_OF, tiers, value, now, 90)
    pd.testing.assert_frame_equal(scored, again)  # seeded: identical on rerun


# --- issue 11: windows that fit the log, honest answers, caveats, no forecast, determinism ----------


def short_log(days: int = 120, n: int = 300, seed: int = 1) -> tuple[pd.DataFrame, dt.date]:
    """A grocery-like log of ``days`` days: customers arrive all through it, heavy ones buy every week or so."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01")
    as_of = (start + pd.Timedelta(days=days - 1)).date()
    rows = []
    for i in range(n):
        heavy = i % 4 == 0
        day = start + pd.Timedelta(days=int(rng.integers(0, days)))
        while day <= pd.Timestamp(as_of):
            rows.append((f"g{i:04d}", day + pd.Timedelta(hours=9), float(rng.gamma(4, 25 if heavy else 6)), "NL"))
            day += pd.Timedelta(days=int(rng.exponential(7 if heavy else 35)) + 1)
    return pd.DataFrame(rows, columns=["customer_id", "order_ts", "amount", "country"]), as_of


def tiered(tx: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    from helpers.rfm import customer_table

    table = customer_table(tx, as_of)
    table["value_tier"] = value_tiers(table["monetary_total"], table["frequency"].astype(float))
    return table


def test_windows_are_derived_from_the_span_and_say_so() -> None:
    cdnow = cf.derive_windows(dt.date(1997, 1, 1), dt.date(1998, 6, 30))
    assert (cdnow.label_days, cdnow.early_days) == (180, 90)  # the caps: CDNOW's classic values
    grocery = cf.derive_windows(dt.date(2023, 1, 1), dt.date(2023, 4, 30))
    assert (grocery.label_days, grocery.early_days) == (42, 28)  # a third and a quarter of 119 days, in weeks
    assert "derived" in grocery.describe() and "classify.label_days = 42" in grocery.describe()
    given = cf.derive_windows(dt.date(2023, 1, 1), dt.date(2023, 4, 30), early_days=10, label_days=30)
    assert (given.early_days, given.label_days, given.derived) == (10, 30, ())
    assert "set in the parameters" in given.describe() and given.as_dict()["rule"] is None
    for span in (14, 20, 21, 45, 100, 400):  # the derived label period always leaves history before the training cut
        w = cf.derive_windows(dt.date(2020, 1, 1), dt.date(2020, 1, 1) + dt.timedelta(days=span))
        assert 2 * w.label_days <= span and w.label_days <= cf.LABEL_DAYS_CAP and w.early_days <= cf.EARLY_DAYS_CAP
        assert all(d % 7 == 0 or d == cap for d, cap in [(w.label_days, 180), (w.early_days, 90)])  # whole weeks


def test_parameters_default_to_derived_windows() -> None:
    from helpers.config import ClassifyParams

    q = ClassifyParams()
    assert q.early_days is None and q.label_days is None
    assert q.train_sample == cf.TRAIN_SAMPLE and 0 < q.prospect_share < 1


def test_a_short_log_runs_with_derived_windows_and_names_the_parameter_otherwise() -> None:
    tx, as_of = short_log(120)
    customers = tiered(tx, as_of)
    w = cf.derive_windows(cf.log_start(days_of(tx), as_of), as_of)
    split, now = cf.high_value_split(days_of(tx), tx, as_of, w.label_days, 0.2)  # runs with the derived windows
    assert split.y_train.nunique() == 2 and len(now) == len(customers)
    cf.tier_split(days_of(tx), customers, as_of, w.early_days, 0.3)
    with pytest.raises(DataError, match=r"set classify\.label_days to at most (\d+)") as info:
        cf.high_value_split(days_of(tx), tx, as_of, 180, 0.2)  # CDNOW's old default on 120 days
    most = int(re.search(r"at most (\d+)", str(info.value)).group(1))
    cf.high_value_split(days_of(tx), tx, as_of, most, 0.2)  # the advice works
    with pytest.raises(DataError, match=r"set classify\.early_days to at most (\d+)") as info:
        cf.tier_split(days_of(tx), customers, as_of, 200, 0.3)
    most = int(re.search(r"at most (\d+)", str(info.value)).group(1))
    assert len(cf.tier_split(days_of(tx), customers, as_of, most, 0.3).x_train) > 0


def test_a_log_of_a_few_days_skips_both_questions_with_reasons() -> None:
    tx, as_of = short_log(10, n=100)
    customers = tiered(tx, as_of)
    w = cf.derive_windows(cf.log_start(days_of(tx), as_of), as_of)
    value, why2 = cf.attempt(cf.high_value_split, days_of(tx), tx, as_of, w.label_days, 0.2)
    assert value is None and "too short for question 2" in why2
    one_day = tx.assign(order_ts=pd.Timestamp(as_of) + pd.Timedelta(hours=10))
    tiers, why1 = cf.attempt(cf.tier_split, days_of(one_day), tiered(one_day, as_of), as_of, 1, 0.3)
    assert tiers is None and why1  # nobody has a day of history after their first purchase by as_of
    caveats = cf.tier_caveats(None, why1) + cf.value_caveats(None, why2, 0.1)
    assert [c["code"] for c in caveats] == ["q1_skipped", "q2_skipped"] and why2 in caveats[1]["text"]
    scored = cf.score_customers(days_of(tx), customers, as_of, None, None, None, w.early_days)
    assert len(scored) == len(customers) and not scored["prospect"].any()
    assert scored["predicted_tier"].isna().all() and scored["p_high_value"].isna().all()


def test_a_period_without_high_value_customers_names_the_parameter(tx: pd.DataFrame) -> None:
    quiet = tx[tx["order_ts"] < pd.Timestamp(AS_OF) - pd.Timedelta(days=100)]  # nobody bought in the last 100 days
    with pytest.raises(DataError, match=r"test label period.*no customer.*classify\.label_days"):
        cf.high_value_split(days_of(quiet), quiet, AS_OF, 90, 0.2)


def _answer(table: pd.DataFrame, split: cf.Split, metrics: tuple[str, ...]) -> cf.Answer:
    return cf.Answer(split, cf.make_model(), np.array([0.7]), "", table, metrics, np.zeros(len(split.y_test)),
                     np.zeros(len(split.y_test)))


def test_a_model_that_does_not_beat_its_baseline_flags_no_prospects(tx: pd.DataFrame, customers: pd.DataFrame) -> None:
    value, now = cf.high_value_split(days_of(tx), tx, AS_OF, 180, 0.2)
    worse = pd.DataFrame({"model": [0.717, 0.5], "RFM-score baseline": [0.750, 0.4]},
                         index=["ROC-AUC", "precision in the top decile"])
    answer = _answer(worse, value, ("ROC-AUC", "precision in the top decile"))
    assert answer.beats_baseline is False and answer.losses() == ["ROC-AUC 0.717 vs 0.750"]
    [caveat] = cf.value_caveats(answer, None, 0.1)
    assert caveat["code"] == "q2_not_beating_baseline" and "0.717 vs 0.750" in caveat["text"]
    assert "no customer is flagged" in caveat["text"]
    tie = _answer(worse.assign(model=[0.750, 0.5]), value, ("ROC-AUC",))
    assert tie.beats_baseline is False  # a tie does not beat
    better = _answer(worse.assign(model=[0.8, 0.5]), value, ("ROC-AUC", "precision in the top decile"))
    assert better.beats_baseline is True and cf.value_caveats(better, None, 0.1) == []
    undefined = _answer(worse.assign(model=[np.nan, np.nan]), value, ("ROC-AUC",))
    assert undefined.beats_baseline is None and cf.value_caveats(undefined, None, 0.1)[0]["code"] == "q2_not_judged"
    tiers = cf.tier_split(days_of(tx), customers, AS_OF, 90, 0.3)
    mixed = pd.DataFrame({"model": [0.404, 0.753], "one-rule baseline": [0.356, 0.775]},
                         index=["balanced accuracy", cf.TIER_AUC])
    half = _answer(mixed, tiers, ("balanced accuracy", cf.TIER_AUC))
    assert half.beats_baseline is False and "(it does on balanced accuracy 0.404 vs 0.356)" in half.comparison()
    [caveat] = cf.tier_caveats(half, None)
    assert "0.753 vs 0.775): on that measure its predictions are no better than binning customers by early spend, " \
           "though it does better on balanced accuracy 0.404 vs 0.356." in caveat["text"]
    scored = cf.score_customers(days_of(tx), customers, AS_OF, tiers, value, now, 90, flag_prospects=False)
    assert scored["p_high_value"].notna().all() and not scored["prospect"].any()  # scores kept, nobody flagged
    flagged = cf.score_customers(days_of(tx), customers, AS_OF, tiers, value, now, 90, prospect_share=0.25)
    assert flagged["prospect"].sum() == int(np.ceil(0.25 * len(customers)))
    top = flagged.nlargest(int(flagged["prospect"].sum()), "p_high_value")
    assert flagged.loc[flagged["prospect"], "p_high_value"].min() >= top["p_high_value"].min()


def test_real_answers_compare_with_their_baselines_on_every_metric(tx: pd.DataFrame, customers: pd.DataFrame) -> None:
    value, _ = cf.high_value_split(days_of(tx), tx, AS_OF, 180, 0.2)
    a2 = cf.answer_high_value(value, 3, 0, top=0.2)
    assert list(a2.table.index) == ["ROC-AUC", "precision in the top 20%"]
    assert a2.beats_baseline == all(a2.table.loc[m, "model"] > a2.table.loc[m, "RFM-score baseline"] for m in a2.metrics)
    a1 = cf.answer_tiers(cf.tier_split(days_of(tx), customers, AS_OF, 90, 0.3), 3, 0)
    assert np.isfinite(a1.table.loc[cf.TIER_AUC, "one-rule baseline"])  # the baseline has a ROC-AUC now
    assert a1.metrics == ("balanced accuracy", cf.TIER_AUC)
    assert ("does NOT beat" in a1.comparison()) == (a1.beats_baseline is False)


def test_an_early_window_that_holds_the_whole_history_gives_a_tautology_caveat() -> None:
    rng = np.random.default_rng(4)
    n = 400  # everybody buys once, as on a marketplace: the first order is all there is
    tx = pd.DataFrame({"customer_id": [f"m{i:04d}" for i in range(n)],
                       "order_ts": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 600, n), unit="D"),
                       "amount": rng.gamma(2, 50, n), "country": "BR"})
    customers = tiered(tx, AS_OF)
    customers["value_tier"] = value_tiers(customers["monetary_total"], pd.Series(rng.random(n)))
    split = cf.tier_split(days_of(tx), customers, AS_OF, 90, 0.3)
    overlap = cf.label_overlap(split, customers, 90, AS_OF)
    assert overlap["spend_seen"] == pytest.approx(1.0) and overlap["no_later_purchase"] == 1.0
    answer = cf.answer_tiers(split, 3, 0)
    codes = {c["code"]: c["text"] for c in cf.tier_caveats(answer, None, overlap, cf.TIERS, 90)}
    assert "q1_auc_near_tautological" in codes and "100% of the test customers' spend" in codes["q1_auc_near_tautological"]
    repeat = log(seed=2)  # repeat buyers over two years: the first 90 days hold well under the limit
    rc = tiered(repeat, AS_OF)
    rs = cf.tier_split(days_of(repeat), rc, AS_OF, 90, 0.3)
    assert cf.label_overlap(rs, rc, 90, AS_OF)["spend_seen"] < cf.SEEN_SPEND_LIMIT


def test_too_few_training_customers_and_a_missing_tier_are_caveats(tx: pd.DataFrame, customers: pd.DataFrame) -> None:
    split = cf.tier_split(days_of(tx), customers, AS_OF, 90, 0.3)
    answer = cf.answer_tiers(split, 3, 0)
    present = sorted(set(split.y_train))
    assert not any(c["code"] == "q1_tier_missing_from_training" for c in cf.tier_caveats(answer, None, None, present))
    codes = {c["code"]: c["text"] for c in cf.tier_caveats(answer, None, None, present + ["unheard-of"])}
    assert "unheard-of" in codes["q1_tier_missing_from_training"]
    assert ("q1_few_training" in codes) == (len(split.y_train) < cf.FEW_TRAINING)
    value, _ = cf.high_value_split(days_of(tx), tx, AS_OF, 180, 0.2)
    few = cf.Split(value.x_train.iloc[:60], value.y_train.iloc[:60], value.x_test, value.y_test, "")
    assert few.y_train.sum() < cf.FEW_POSITIVES
    assert "q2_few_positives" in {c["code"] for c in cf.value_caveats(cf.answer_high_value(few, 3, 0), None, 0.1)}


def test_without_a_forecast_question_1_is_skipped_and_question_2_still_runs(tx: pd.DataFrame,
                                                                            customers: pd.DataFrame) -> None:
    no_forecast = customers.assign(p_alive=np.nan, expected_purchases=np.nan, expected_spend=np.nan, clv=np.nan,
                                   value_tier=None)
    reason = cf.tier_skip_reason(no_forecast, {"forecast": False, "forecast_reason": "only 3 repeat buyers"})
    assert "no CLV forecast (only 3 repeat buyers)" in reason
    assert cf.tier_skip_reason(no_forecast, {}) is not None and cf.tier_skip_reason(customers, {"forecast": True}) is None
    value, now = cf.high_value_split(days_of(tx), tx, AS_OF, 180, 0.2)
    answer = cf.answer_high_value(value, 3, 0)
    scored = cf.score_customers(days_of(tx), no_forecast, AS_OF, None, value, now, 90, flag_prospects=bool(answer.beats_baseline))
    assert scored["predicted_tier"].isna().all() and scored["p_high_value"].between(0, 1).all()
    recent = no_forecast.set_index("customer_id")["first_purchase"] > pd.Timestamp(AS_OF) - pd.Timedelta(days=90)
    assert (scored.set_index("customer_id")["early_window_complete"] == ~recent).all()
    with pytest.raises(DataError, match="needs at least 20 customers with a value tier"):
        cf.tier_split(days_of(tx), no_forecast, AS_OF, 90, 0.3)


def test_the_stage_gives_identical_answers_twice(tx: pd.DataFrame, customers: pd.DataFrame) -> None:
    def run() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        tiers = cf.tier_split(days_of(tx), customers, AS_OF, 90, 0.3, train_sample=150, seed=3)
        value, now = cf.high_value_split(days_of(tx), tx, AS_OF, 180, 0.2, train_sample=150, seed=3)
        a1, a2 = cf.answer_tiers(tiers, 3, 3), cf.answer_high_value(value, 3, 3)
        scored = cf.score_customers(days_of(tx), customers, AS_OF, tiers, value, now, 90, 3, train_sample=150)
        return scored, a1.table, a2.table, cf.importance(a2.model, value, 3)

    first, again = run(), run()
    for a, b in zip(first, again):
        pd.testing.assert_frame_equal(a, b)
    assert "seeded sample of 150" in cf.tier_split(days_of(tx), customers, AS_OF, 90, 0.3, train_sample=150, seed=3).description


def test_question_1_splits_a_cohort_that_arrived_on_one_day_and_names_a_single_day(tx: pd.DataFrame) -> None:
    first = tx.groupby("customer_id")["order_ts"].transform("min")
    cohort = tx.copy()  # 80% of the customers arrive on the first day, the rest later
    shift = cohort["customer_id"].str[1:].astype(int) % 5 != 0
    cohort.loc[shift, "order_ts"] = cohort.loc[shift, "order_ts"] - (first[shift] - pd.Timestamp("2020-01-01 08:00"))
    customers = tiered(cohort, AS_OF)
    split = cf.tier_split(days_of(cohort), customers, AS_OF, 90, 0.3)
    on_first_day = int((customers["first_purchase"] == pd.Timestamp("2020-01-01")).sum())
    assert on_first_day >= 240 and split.cut > dt.date(2020, 1, 1)
    assert len(split.x_train) == on_first_day and len(split.x_test) == 300 - on_first_day  # trained on the cohort
    one_day = tx.assign(order_ts=pd.Timestamp("2021-06-01 10:00"))
    with pytest.raises(DataError, match=r"all 300 eligible customers were acquired on the same day \(2021-06-01\)"):
        cf.tier_split(days_of(one_day), tiered(one_day, AS_OF), AS_OF, 90, 0.3)


# ---------------------------------------------------------------------------
# the stage function (helpers.stages.classify), in-process on a synthetic run catalog


def stage_catalog(tmp_path, tx: pd.DataFrame, customers: pd.DataFrame, forecast: bool = True):  # noqa: ANN001, ANN201
    """A run catalog holding what stage 07 reads: clean lines, their purchase days, stage 05's customers and its validation."""
    from helpers import summary
    from helpers.catalog import Catalog
    from helpers.rfm import save_customers

    catalog = Catalog("synthetic", "run", tmp_path)
    catalog.write_parquet("transactions", tx.assign(order_id=[f"o{i}" for i in range(len(tx))]))
    summary.write_purchase_days(catalog.path("transactions"), AS_OF, catalog.path("purchase_days"))
    table = customers.assign(rfm_segment=np.where(customers["frequency"] > 3, "champions", "others"))
    save_customers(catalog, table, "customers")
    catalog.write_json("clv_validation", {"forecast": forecast, "forecast_reason": None if forecast else "too few"})
    return catalog


def stage_params(**overrides: object):  # noqa: ANN201
    """The parameters of a stage 07 run on the synthetic log (``overrides`` by dotted name)."""
    from helpers.config import load_params

    return load_params("cdnow_sample.yaml", {"as_of": AS_OF.isoformat(), "classify.cv_folds": 3, "classify.boosting_rounds": 40,
                                             **overrides})


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory: pytest.TempPathFactory, tx: pd.DataFrame, customers: pd.DataFrame):  # noqa: ANN201
    """Stage 07 run once on the synthetic catalog: (catalog, result)."""
    from helpers.stages.classify import classify

    catalog = stage_catalog(tmp_path_factory.mktemp("stage07"), tx, customers)
    return catalog, classify(stage_params(), catalog)


def test_the_stage_writes_what_it_returns(stage_run, customers: pd.DataFrame) -> None:  # noqa: ANN001
    catalog, result = stage_run
    written = catalog.read_parquet("predictions")
    pd.testing.assert_frame_equal(written, result.artifact())
    assert "value_tier" not in written and len(written) == len(customers) and written["p_high_value"].between(0, 1).all()
    summary = catalog.read_json("classification")
    assert summary["q1_skipped"] is None and summary["q2_skipped"] is None
    assert summary["q1"]["model"][cf.TIER_AUC] == result.tier_answer.table.loc[cf.TIER_AUC, "model"]
    assert summary["prospects"] == int(written["prospect"].sum()) and summary["caveats"] == result.caveats
    assert set(summary["q2_importance"]) == set(result.importance["feature"]) == set(cf.RFM_FEATURES)
    assert catalog.query("select count(*) as n from predictions")["n"].item() == len(written)


def test_the_stage_uses_the_run_s_prospect_share_and_train_sample(tmp_path, tx: pd.DataFrame, customers: pd.DataFrame,  # noqa: ANN001
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.classify import splits
    from helpers.stages.classify import classify_customers

    monkeypatch.setattr(splits, "TRAIN_SAMPLE", 10)  # a function falling back on the module default would sample
    catalog = stage_catalog(tmp_path, tx, customers)
    lines = catalog.read_parquet("transactions")
    args = (days_of(lines), lines, catalog.read_parquet("customers"), {"forecast": True})
    result = classify_customers(stage_params(**{"classify.prospect_share": 0.25}), *args)
    assert "seeded sample" not in result.tiers.description + result.value.description
    assert result.summary()["prospect_share"] == 0.25
    expected = int(np.ceil(0.25 * len(customers))) if result.flag else 0
    assert int(result.scored["prospect"].sum()) == expected
    assert result.value_answer.model.max_iter == 40  # classify.boosting_rounds (stage_params), not the default 200


def test_the_stage_tables_and_figures(stage_run) -> None:  # noqa: ANN001
    from helpers import names
    from helpers.plots import classify as plot

    _, result = stage_run
    counts = result.q1_counts()
    assert list(counts.index) == list(names.TIERS) and counts.to_numpy().sum() == len(result.tiers.y_train) + len(result.tiers.y_test)
    confusions = result.q1_confusions()
    assert list(confusions) == ["model", "one-rule baseline"]
    assert all(t.to_numpy().sum() == len(result.tiers.y_test) for t in confusions.values())
    q2 = result.q2_confusion()
    assert q2.to_numpy().sum() == len(result.value.y_test)
    called = int(q2.loc[:, "high value"].sum())  # the top target_share by score (ties at the cut called too)
    assert called >= np.ceil(result.target_share * len(result.value.y_test)) - 1
    assert set(result.gains()) == {"model", "RFM score"}
    assert len(plot.high_value(result).axes) == 3 and len(plot.tier_confusions(result).axes) == 2
    assert plot.importance(result).axes[0].get_title().startswith("question 2")
    assert "relies most on" in result.describe_importance()
    top = result.top_scored(5)
    assert len(top) == 5 and "customer_key" in top and top["p_high_value"].is_monotonic_decreasing
    assert result.describe_windows().startswith("the log spans") and "rule:" in result.describe_windows()


def test_the_stage_without_a_forecast_skips_question_1_and_says_so(tmp_path, tx: pd.DataFrame,  # noqa: ANN001
                                                                   customers: pd.DataFrame) -> None:
    from helpers.plots import classify as plot
    from helpers.stages.classify import classify

    no_tiers = customers.assign(value_tier=None)
    result = classify(stage_params(), stage_catalog(tmp_path, tx, no_tiers, forecast=False))
    assert result.tier_answer is None and "no CLV forecast (too few)" in result.describe_q1()
    assert result.q1_counts() is None and result.q1_table() is None and plot.tier_confusions(result) is None
    assert result.caveats[0]["code"] == "q1_skipped" and result.value_answer is not None
    summary = result.summary()
    assert summary["q1"] is None and summary["q1_label_overlap"] is None and summary["q2"] is not None
    assert result.scored["predicted_tier"].isna().all()


def test_calling_the_top_share_cuts_at_its_quantile() -> None:
    y = pd.Series([1, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    table = cf.top_share_confusion(y, np.linspace(1, 0, 10), 0.2)
    assert table.loc["high value", "high value"] == 2 and table.loc["other", "high value"] == 0
    assert table.to_numpy().sum() == 10 and table.loc["high value", "other"] == 1
