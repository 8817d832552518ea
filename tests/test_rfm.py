"""Stage 04: the customer table, RFM scores with ties, the segment map, ABC and the value pyramid."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.catalog import Catalog
from helpers import paths, store
from helpers.config import RFMParams, load_params
from helpers.errors import ConfigError, DataError
from helpers.rfm import (SEGMENT_STATES, abc_classes, abc_summary, class_summary, customer_table, grid_counts,
                         load_segment_map,
                         one_time_summary, pareto_curve, rfm_scores, rfm_table, save_rfm_summary, spread_warnings,
                         value_scores)
from helpers.schemas import MAX_SCORE_BINS, customer_schema_for, validate
from helpers.tiers import TIERS, is_high, tomorrows_stars, value_tiers
from tests_support import collected
from tests_support import purchases as tx

AS_OF = dt.date(2020, 12, 31)


def test_same_day_orders_are_one_purchase_and_their_amounts_add_up() -> None:
    table = customer_table(tx([("a", "2020-01-01 09:00", 5.0), ("a", "2020-01-01 18:00", 7.0),
                               ("a", "2020-06-01 10:00", 3.0)]), AS_OF)
    row = table.iloc[0]
    assert (row["frequency"], row["monetary_total"], row["monetary_avg"]) == (2, 15.0, 7.5)


def test_customer_first_seen_on_as_of_and_later_lines_ignored() -> None:
    table = customer_table(tx([("new", "2020-12-31 23:00", 4.0), ("new", "2021-01-02", 100.0),
                               ("old", "2020-01-01", 1.0)]), AS_OF).set_index("customer_id")
    assert table.loc["new", ["recency_days", "tenure_days", "frequency"]].tolist() == [0, 0, 1]
    assert table.loc["new", "monetary_total"] == 4.0
    assert table.loc["old", ["recency_days", "tenure_days"]].tolist() == [365, 365]


def test_when_everyone_ties_everyone_gets_score_one_and_the_warnings_say_so() -> None:
    customers = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(100)], "frequency": 1,
                              "monetary_total": 10.0, "recency_days": 30})
    scored = rfm_scores(customers)
    assert (scored[["r_score", "f_score", "m_score"]] == 1).all().all()
    warnings = spread_warnings(scored)
    assert len(warnings) == 3  # one sentence per measure, no second one on the levels used
    assert warnings[0].startswith("recency_days has no spread: all 100 customers have 30 days since the last purchase, "
                                  "so every R score is 1 and tells no customers apart (recent or lapsed")
    assert warnings[1] == ("frequency has no spread: all 100 customers have 1 purchase day, so every F score is 1 "
                           "and tells no customers apart.")
    few = spread_warnings(rfm_scores(customers.head(3).assign(monetary_total=[1.0, 2.0, 3.0])))
    assert few[-1].startswith("M scores use only 3 of 5 levels (there are only 3 customers): M 1 = total spend 1.00 (1 customer);")


def test_a_value_shared_by_95_percent_gets_one_score_and_the_rest_the_top() -> None:
    f = pd.Series([1] * 95 + [2, 2, 3, 4, 9])
    scores = value_scores(f, bins=5)
    assert scores[:95].eq(1).all() and scores[95:].eq(5).all()
    with pytest.raises(DataError, match="cannot score frequency: 1 missing value"):
        value_scores(pd.Series([np.nan, 1.0], name="frequency"))


def test_without_ties_every_score_holds_a_fifth() -> None:
    scores = value_scores(pd.Series(np.arange(103.0)[::-1]), bins=5)
    counts = scores.value_counts()
    assert sorted(counts.index) == [1, 2, 3, 4, 5] and set(counts) <= {20, 21}  # 103 / 5, give or take one
    assert scores.iloc[0] == 5 and scores.iloc[-1] == 1


measures = st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(values=measures, bins=st.integers(min_value=2, max_value=10), better=st.booleans())
def test_scores_follow_the_values_property(values: list[int], bins: int, better: bool) -> None:
    v = pd.Series(values)
    scores = value_scores(v, better, bins)
    assert scores.between(1, bins).all()
    assert scores.groupby(v).nunique().eq(1).all()  # equal measure -> equal score
    ordered = pd.DataFrame({"v": v if better else -v, "s": scores}).sort_values("v")
    assert ordered["s"].is_monotonic_increasing  # better measure -> score not lower
    worst = v.min() if better else v.max()
    assert scores[v == worst].eq(1).all()  # the worst value always scores 1: nobody is promoted by a tie
    # a score above 1 is earned: at least (score - 1) / bins of customers have a worse value
    worse = np.array([(v < x).sum() if better else (v > x).sum() for x in v])
    assert (worse * bins >= (scores.to_numpy() - 1) * len(v)).all()


def test_scores_are_identical_whatever_the_row_order() -> None:
    rng = np.random.default_rng(0)
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(57)], "frequency": rng.integers(1, 4, 57),
                              "monetary_total": rng.choice([10.0, 20.0], 57), "recency_days": rng.integers(0, 5, 57)})
    a = rfm_scores(customers).set_index("customer_id")
    b = rfm_scores(customers.sample(frac=1, random_state=1)).set_index("customer_id").loc[a.index]
    pd.testing.assert_frame_equal(a, b)


def test_better_values_never_get_worse_scores() -> None:
    customers = pd.DataFrame({"customer_id": list("abcdefghij"), "frequency": [1, 1, 2, 2, 3, 5, 8, 8, 9, 20],
                              "monetary_total": np.arange(10.0), "recency_days": [90, 80, 70, 60, 50, 40, 30, 20, 10, 0]})
    s = rfm_scores(customers)
    assert s["f_score"].is_monotonic_increasing and s["r_score"].is_monotonic_increasing


def test_fewer_customers_than_score_levels() -> None:
    assert value_scores(pd.Series([1, 3]), bins=5).tolist() == [1, 3]


def test_the_default_segment_map_covers_the_grid_with_eleven_named_segments_and_two_one_time_ones() -> None:
    sm = load_segment_map("segment_maps/default.yaml")
    names = {n for row in sm.grid.values() for n in row}
    assert names == {"champions", "loyal", "potential loyalists", "new customers", "promising", "need attention",
                     "about to sleep", "at risk", "cannot lose", "hibernating", "lost"}
    r = pd.Series([5, 5, 1, 1, 2]); f = pd.Series([5, 1, 1, 5, 3])
    assert sm.segment(r, f).tolist() == ["champions", "new customers", "lost", "cannot lose", "at risk"]
    # the same cells for customers who bought once: the one-time segments, before the grid
    once = sm.segment(r, f, pd.Series([1, 1, 1, 1, 2]))
    assert once.tolist() == ["recent one-time buyers", "recent one-time buyers", "lapsed one-time buyers",
                             "lapsed one-time buyers", "at risk"]
    assert set(sm.actions().columns) == {"meaning", "action"}
    assert sm.actions().loc["recent one-time buyers", "action"].startswith("welcome series")


customer_bases = st.lists(st.tuples(st.sampled_from([1, 1, 1, 1, 2, 3, 7]), st.integers(0, 400),
                                    st.floats(0, 1000, allow_nan=False)), min_size=1, max_size=80)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(rows=customer_bases)
def test_one_time_buyers_are_never_in_a_repeat_segment_property(rows: list[tuple[int, int, float]]) -> None:
    customers = pd.DataFrame(rows, columns=["frequency", "recency_days", "monetary_total"]).assign(
        customer_id=lambda d: [f"c{i}" for i in range(len(d))])
    scored = rfm_scores(customers)
    sm = load_segment_map("segment_maps/default.yaml")
    segment = sm.segment(scored["r_score"], scored["f_score"], scored["frequency"])
    once = scored["frequency"].eq(1)
    assert segment[once].isin(["recent one-time buyers", "lapsed one-time buyers"]).all()
    assert (segment[once].eq("recent one-time buyers") == scored.loc[once, "r_score"].ge(4)).all()
    assert not segment[~once].str.contains("one-time").any()
    assert scored.loc[once, "f_score"].eq(1).all()  # and F never promotes them either


def _map_without_one_time(tmp_path: Path) -> Path:
    default = (paths.PARAMS_DIR / "segment_maps" / "default.yaml").read_text()
    start, end = default.index("\none_time:\n") + 1, default.index("grid:")
    custom = tmp_path / "no_one_time.yaml"
    custom.write_text(default[:start] + default[end:])
    return custom


def test_a_map_without_one_time_segments_lets_the_grid_place_one_time_buyers(tmp_path: Path) -> None:
    sm = load_segment_map(str(_map_without_one_time(tmp_path)))
    assert sm.one_time is None
    r, f, freq = pd.Series([5, 1, 3]), pd.Series([1, 1, 4]), pd.Series([1, 1, 1])
    assert sm.segment(r, f, freq).tolist() == ["new customers", "lost", "loyal"]
    assert sm.by_grid(freq).all()
    customers = rfm_scores(pd.DataFrame({"customer_id": list("abcd"), "frequency": [1, 1, 1, 3],
                                         "recency_days": [0, 50, 200, 10], "monetary_total": [1.0, 2.0, 3.0, 9.0]}))
    customers["rfm_segment"] = sm.segment(customers["r_score"], customers["f_score"], customers["frequency"])
    assert "The segment map has no one-time segments, so the R x F grid places them" in one_time_summary(customers, sm)
    assert int(grid_counts(customers, sm, 5).to_numpy().sum()) == 4


def test_one_time_segments_may_be_one_name_and_are_checked(tmp_path: Path) -> None:
    default = (paths.PARAMS_DIR / "segment_maps" / "default.yaml").read_text()
    block = default[default.index("\none_time:\n") + 1:default.index("grid:")]
    one = tmp_path / "one.yaml"
    one.write_text(default.replace(block, "one_time: recent one-time buyers\n\n"))
    assert set(load_segment_map(str(one)).one_time.values()) == {"recent one-time buyers"}
    one.write_text(default.replace(block, "one_time: {5: once, 4: once, 3: once, 2: once, 1: once}\n\n"))
    with pytest.raises(ConfigError, match=r"one.yaml: grid or one_time names segments with no entry under 'segments': \['once'\]"):
        load_segment_map(str(one))
    one.write_text(default.replace(block, "one_time: {5: lost, 1: lost}\n\n"))
    with pytest.raises(ConfigError, match=r"'one_time' must name a segment for each R score 1..5"):
        load_segment_map(str(one))


def test_segment_map_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "map.yaml"
    bad.write_text("grid: {1: [a, b]}\nsegments: {a: {}}\ntiers: {}\n")
    with pytest.raises(ConfigError, match=r"map.yaml: 'grid' must have rows 1..5.*because rfm.bins is 5"):
        load_segment_map(str(bad))
    grid = "\n".join(f"  {r}: [a, a, a, a, zz]" for r in range(1, 6))
    bad.write_text(f"grid:\n{grid}\nsegments: {{a: {{}}}}\ntiers: {{}}\n")
    with pytest.raises(ConfigError, match=r"no entry under 'segments': \['zz'\]"):
        load_segment_map(str(bad))


def test_a_custom_segment_map_changes_segments_without_code(tmp_path: Path) -> None:
    text = Path(load_params("cdnow.yaml").model_dump()["rfm"]["segment_map"])
    default = (Path(__file__).parents[1] / "params" / text).read_text()
    custom = tmp_path / "custom.yaml"
    custom.write_text(default.replace("5: [new customers,", "5: [fresh faces,").replace(
        "segments:\n", "segments:\n  fresh faces:\n    meaning: new\n    action: welcome\n"))
    sm = load_segment_map(str(custom))
    assert sm.segment(pd.Series([5]), pd.Series([1])).tolist() == ["fresh faces"]


def test_bins_7_runs_with_a_7_by_7_map_and_the_schema_follows_bins(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"because rfm.bins is 7; give a map with a 7 x 7 grid"):
        load_segment_map("segment_maps/default.yaml", bins=7)
    seven = tmp_path / "seven.yaml"
    grid = "\n".join(f"  {r}: [{', '.join(['low'] * 3 + ['high'] * 4)}]" for r in range(1, 8))
    seven.write_text(f"one_time: once\ngrid:\n{grid}\nsegments:\n  low: {{}}\n  high: {{}}\n  once: {{}}\n"
                     "tiers: {platinum: {}, gold: {}, iron: {}, lead: {}}\n")
    rng = np.random.default_rng(3)
    days = pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 360, 400), unit="D")
    purchases = pd.DataFrame({"customer_id": [f"c{i}" for i in rng.integers(0, 120, 400)], "order_ts": days,
                              "amount": rng.uniform(1, 100, 400)})
    customers = rfm_table(purchases, AS_OF, 7, load_segment_map(str(seven), bins=7), (0.05, 0.2))
    assert customers["r_score"].max() == 7 and customers["m_score"].max() == 7
    with pytest.raises(DataError, match="r_score"):
        validate(customers, customer_schema_for(5), "customer table")
    assert RFMParams.model_json_schema()["properties"]["bins"]["maximum"] == MAX_SCORE_BINS


def test_spread_warnings_and_the_one_time_sentence_on_an_olist_like_base(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    n = 1000
    freq = np.where(np.arange(n) < 990, 1, 2 + np.arange(n) % 3)
    customers = pd.DataFrame({"customer_id": [f"c{i:04d}" for i in range(n)], "frequency": freq,
                              "recency_days": np.arange(n) % 500, "monetary_total": np.arange(n) * 1.5 + 1})
    scored = rfm_scores(customers)
    sm = load_segment_map("segment_maps/default.yaml")
    scored["rfm_segment"] = sm.segment(scored["r_score"], scored["f_score"], scored["frequency"])
    warnings = spread_warnings(scored)
    assert warnings[0].startswith("frequency has almost no spread: 99.0% of customers (990 of 1,000) have the same "
                                  "value, 1 purchase day")
    assert warnings[1] == ("F scores use only 2 of 5 levels (customers with equal frequency get equal scores): "
                           "F 1 = 1 purchase day (990 customers); F 5 = 2-4 purchase days (10 customers).")
    assert len(warnings) == 2  # recency (ties of two) and spend (all distinct) spread over all five levels
    sentence = one_time_summary(scored, sm)
    assert sentence.startswith("990 of 1,000 customers (99.0%) bought on a single day")
    once = scored["rfm_segment"][scored["frequency"].eq(1)].value_counts()
    assert f"recent one-time buyers {once['recent one-time buyers']:,}" in sentence
    assert int(grid_counts(scored, sm, 5).to_numpy().sum()) == 10  # the grid places the repeat buyers only
    monkeypatch.setenv("CIN_DATA_DIR", str(tmp_path / "data"))
    summary = store.json_load(save_rfm_summary(Catalog("demo", "2020-01-01", paths.data_dir() / "processed" / "demo" / "2020-01-01"), scored, 5))
    assert summary["one_time_buyers"] == 990 and summary["score_levels"]["f_score"] == [1, 5]
    assert [c["code"] for c in summary["caveats"]] == ["rfm_no_spread_frequency", "rfm_f_levels"]
    assert summary["caveats"][1]["text"] == warnings[1]


def test_no_warnings_when_every_measure_spreads() -> None:
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(50)], "frequency": np.arange(50) + 1,
                              "recency_days": np.arange(50), "monetary_total": np.arange(50.0)})
    assert spread_warnings(rfm_scores(customers)) == []
    assert one_time_summary(customers).startswith("1 of 50 customers (2.0%) bought on a single day")
    assert one_time_summary(customers.assign(frequency=2)) == "No one-time buyers: all 50 customers bought on at least two days."


def test_abc_classes_follow_the_cuts_on_100_customers() -> None:
    m = pd.Series(np.arange(100, 0, -1, dtype=float))
    classes = abc_classes(m, pd.Series([f"c{i:03d}" for i in range(100)]), (0.05, 0.20))
    assert classes.value_counts().to_dict() == {"C": 80, "B": 15, "A": 5}
    assert classes.iloc[:5].eq("A").all() and classes.iloc[5:20].eq("B").all()


def _abc_by_full_sort(monetary: pd.Series, ids: pd.Series, cuts: tuple[float, float]) -> pd.Series:
    """The ABC classes from a sort of every customer (the definition the partial sort must match)."""
    order = pd.DataFrame({"m": monetary, "id": ids}).sort_values(["m", "id"], ascending=[False, True],
                                                                 kind="stable").index
    share = pd.Series((np.arange(len(order)) + 1) / len(order), index=order).reindex(monetary.index)
    return pd.Series(np.where(share <= cuts[0], "A", np.where(share <= cuts[1], "B", "C")), index=monetary.index)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.5, 7.0, 100.0, float("nan")]) | st.floats(0, 50),
                          st.text("abc", max_size=3)), max_size=60),
       st.floats(0, 0.6), st.floats(0, 0.4))
def test_abc_classes_equal_a_full_sort_with_ties_and_missing_spend(rows: list, first: float, more: float) -> None:
    monetary = pd.Series([m for m, _ in rows], dtype=float, index=pd.RangeIndex(len(rows)) * 3)
    ids = pd.Series([i for _, i in rows], dtype=object, index=monetary.index)
    cuts = (first, first + more)
    pd.testing.assert_series_equal(abc_classes(monetary, ids, cuts), _abc_by_full_sort(monetary, ids, cuts),
                                   check_dtype=False)


def test_pareto_curve_rises_from_zero_to_one() -> None:
    curve = pareto_curve(pd.Series([5.0, 1.0, 0.0, 4.0]))
    assert curve["revenue_share"].is_monotonic_increasing
    assert curve.iloc[[0, -1]].values.tolist() == [[0.0, 0.0], [1.0, 1.0]]


def test_value_tiers_on_ties_and_zeros() -> None:
    assert is_high(pd.Series([0.0, 0.0, 0.0]), 0.5).tolist() == [False, False, False]
    tiers = value_tiers(pd.Series([10.0, 10.0, 1.0, 1.0, 0.0]), pd.Series([5.0, 0.0, 5.0, 0.0, 0.0]), 0.4, 0.4)
    assert tiers.tolist() == ["platinum", "gold", "iron", "lead", "lead"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from([0.0, -1.0, 2.5, 7.0]), st.floats(-1e6, 1e6)), max_size=40),
       st.floats(0.0, 1.0))
def test_is_high_is_the_top_share_by_rank(values: list, share: float) -> None:
    series = pd.Series(values, dtype=float)
    rank = series.rank(method="min", ascending=False)  # what is_high counted before its partition
    expected = (rank <= math.ceil(share * len(series))) & (series > 0)
    assert is_high(series, share).tolist() == expected.tolist()


@pytest.fixture(scope="module")
def cdnow_customers(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    params = load_params("cdnow.yaml")
    clean = collected("cdnow.yaml", tmp_path_factory.mktemp("rfm") / "data", clean=True)
    return rfm_table(clean, params.as_of, 5, load_segment_map(params.rfm.segment_map), params.rfm.abc_cuts)


def test_cdnow_master_rfm(cdnow_customers: pd.DataFrame) -> None:
    assert len(cdnow_customers) == 23_570
    once = cdnow_customers["frequency"].eq(1)
    # F = 1 is exactly the one-time buyers (about half of CDNOW), all in the one-time segments
    assert (cdnow_customers["f_score"].eq(1) == once).all() and 0.4 < once.mean() < 0.7
    assert cdnow_customers.loc[once, "rfm_segment"].str.endswith("one-time buyers").all()
    assert not cdnow_customers.loc[~once, "rfm_segment"].str.contains("one-time").any()
    for measure, score, sign in (("recency_days", "r_score", -1), ("frequency", "f_score", 1), ("monetary_total", "m_score", 1)):
        levels = cdnow_customers.assign(o=cdnow_customers[measure] * sign).groupby(score)["o"].agg(["min", "max"])
        assert (levels["min"].shift(-1).dropna() > levels["max"].iloc[:-1]).all()  # levels do not overlap
    assert cdnow_customers["m_score"].nunique() == 5  # spend has few ties: quintiles, as before
    abc = class_summary(cdnow_customers, "abc_class")
    assert abc.loc["A", "customers"] == 1_178  # 5% of 23,570, rounded down
    # revenue is concentrated, but not 80/20: the top 20% bring about two thirds
    assert 0.6 < abc.loc[["A", "B"], "revenue_share"].sum() < 0.75
    assert cdnow_customers["frequency"].sum() == 67_591  # purchase days, not lines (69,659)


def test_every_tier_has_an_action() -> None:
    sm = load_segment_map("segment_maps/default.yaml")
    assert list(sm.tiers) == TIERS and all(sm.tiers[t]["action"] for t in TIERS)


def test_tier_table_shares_add_up_and_carry_the_actions() -> None:
    from helpers.tiers import tier_table

    customers = pd.DataFrame({"value_tier": ["platinum", "gold", "lead", "lead"], "monetary_total": [50.0, 30.0, 10.0, 10.0],
                              "clv": [40.0, 5.0, 5.0, 0.0], "p_alive": [0.9, 0.5, 0.4, 0.1]})
    table = tier_table(customers, load_segment_map("segment_maps/default.yaml").tiers)
    assert table.index.tolist() == TIERS and table["customers"].tolist() == [1, 1, 0, 2]
    assert table["revenue_share"].sum() == pytest.approx(1.0) and table["clv_share"].sum() == pytest.approx(1.0)
    assert table.loc["iron", "action"].startswith("rebuild the relationship")
    assert table.loc["gold", "action"].startswith("invest to keep") and "low cost" not in table.loc["gold", "action"]


def _map_without_abc(tmp_path: Path) -> Path:
    default = (paths.PARAMS_DIR / "segment_maps" / "default.yaml").read_text()
    custom = tmp_path / "no_abc.yaml"
    custom.write_text(default[:default.index("\nabc:\n") + 1])
    return custom


def test_the_default_map_names_the_abc_classes_with_a_tactic_each() -> None:
    names = load_segment_map("segment_maps/default.yaml").abc_classes()
    assert names.index.tolist() == ["A", "B", "C"]
    assert names["name"].tolist() == ["key customers", "major customers", "ordinary customers"]
    assert names["action"].str.len().gt(0).all() and names["meaning"].str.len().gt(0).all()
    assert "complaints first" in names.loc["A", "action"] and "tomorrow's stars" in names.loc["C", "action"]


def test_abc_summary_carries_names_rules_and_tactics_and_falls_back_to_letters(tmp_path: Path) -> None:
    m = pd.Series(np.arange(40, 0, -1, dtype=float))
    customers = pd.DataFrame({"customer_id": [f"c{i:02d}" for i in range(40)], "monetary_total": m})
    customers["abc_class"] = abc_classes(customers["monetary_total"], customers["customer_id"], (0.1, 0.25))
    table = abc_summary(customers, load_segment_map("segment_maps/default.yaml"), (0.1, 0.25))
    assert table.index.tolist() == ["A", "B", "C"] and table["customers"].tolist() == [4, 6, 30]
    assert table["rule"].tolist() == ["top 10% by revenue", "next 15%", "other 75%"]
    assert table.loc["B", "name"] == "major customers" and table.loc["B", "action"].startswith("regular attention")
    assert table["revenue_share"].sum() == pytest.approx(1.0)
    bare = load_segment_map(str(_map_without_abc(tmp_path)))
    assert bare.abc is None
    plain = abc_summary(customers, bare, (0.1, 0.25))
    assert plain["name"].tolist() == ["A", "B", "C"] and plain["action"].eq("").all()
    assert plain["customers"].tolist() == table["customers"].tolist()
    # a class nobody falls into still has its row
    only_c = abc_summary(customers.assign(abc_class="C"), bare, (0.1, 0.25))
    assert only_c["customers"].tolist() == [0, 0, 40] and only_c.loc["A", "revenue"] == 0


def test_a_bad_abc_section_is_refused_with_the_file_named(tmp_path: Path) -> None:
    base = _map_without_abc(tmp_path).read_text()
    bad = tmp_path / "bad_abc.yaml"
    bad.write_text(base + "abc:\n  A: {name: top}\n  B: {name: middle}\n")
    with pytest.raises(ConfigError, match=r"bad_abc.yaml: 'abc' must describe the classes A, B and C"):
        load_segment_map(str(bad))
    bad.write_text(base + "abc:\n  A: {name: top}\n  B: {meaning: x}\n  C: {name: rest}\n")
    with pytest.raises(ConfigError, match=r"'abc' class B needs a 'name'"):
        load_segment_map(str(bad))
    bad.write_text(base + "abc:\n  A: {name: top, tactic: x}\n  B: {name: mid}\n  C: {name: rest}\n")
    with pytest.raises(ConfigError, match=r"class A has unknown entries \['tactic'\]"):
        load_segment_map(str(bad))
    bad.write_text(base + "abc:\n  C: {name: rest}\n  A: {name: top}\n  B: {name: mid}\n")
    assert list(load_segment_map(str(bad)).abc_classes()["name"]) == ["top", "mid", "rest"]


def test_tomorrows_stars_are_class_c_customers_with_a_top_clv() -> None:
    rng = np.random.default_rng(7)
    n = 200
    spend = rng.gamma(1.0, 50.0, n)
    customers = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(n)], "monetary_total": spend,
                              "clv": rng.gamma(1.0, 40.0, n)})
    customers["abc_class"] = abc_classes(customers["monetary_total"], customers["customer_id"], (0.05, 0.2))
    stars = tomorrows_stars(customers, 0.2)
    high = is_high(customers["clv"], 0.2)
    expected = customers.loc[customers["abc_class"].eq("C") & high, "customer_id"]
    assert len(stars) > 0 and set(stars["customer_id"]) == set(expected)
    assert stars["abc_class"].eq("C").all() and stars["clv"].is_monotonic_decreasing
    assert stars["clv"].min() >= customers.loc[~high, "clv"].max()  # nobody left out has a higher CLV
    # a wider cut finds at least as many
    assert set(stars["customer_id"]) <= set(tomorrows_stars(customers, 0.4)["customer_id"])
    # no forecast (stage 05 wrote NaN): none, and no error
    assert tomorrows_stars(customers.assign(clv=np.nan), 0.2).empty
    with pytest.raises(DataError, match=r"no column\(s\) \['clv'\]"):
        tomorrows_stars(customers.drop(columns="clv"))


def test_the_default_map_gives_every_segment_a_state() -> None:
    sm = load_segment_map("segment_maps/default.yaml")
    assert set(sm.states) == set(sm.segments) and set(sm.states.values()) == set(SEGMENT_STATES)
    assert sm.states["recent one-time buyers"] == "new" and sm.states["lapsed one-time buyers"] == "lost"
    assert sm.states["champions"] == "active" and sm.states["at risk"] == "slipping"
    assert "state" not in sm.actions().columns  # the state is read into states, not shown as an action column


def test_a_map_without_states_loads_a_segment_may_lack_one_and_an_unknown_state_is_refused(tmp_path: Path) -> None:
    default = (paths.PARAMS_DIR / "segment_maps" / "default.yaml").read_text()
    stateless = tmp_path / "stateless.yaml"
    stateless.write_text(re.sub(r"\n    state: \w+", "", default))
    sm = load_segment_map(str(stateless))
    assert sm.states is None and sm.segment(pd.Series([5]), pd.Series([5])).tolist() == ["champions"]
    partial = tmp_path / "partial.yaml"
    partial.write_text(default.replace("  loyal:\n    state: active\n", "  loyal:\n"))
    partly = load_segment_map(str(partial)).states
    assert "loyal" not in partly and partly["champions"] == "active"  # the report names loyal as stateless
    partial.write_text(default.replace("  loyal:\n    state: active\n", "  loyal:\n    state: asleep\n"))
    with pytest.raises(ConfigError, match=r"partial.yaml: unknown segment state\(s\) \{'loyal': 'asleep'\}; a state is one of new, active"):
        load_segment_map(str(partial))


# ---------------------------------------------------------------------------
# the stage function (in-process) and its figures

#: Fingerprints of the artifacts notebook 04 wrote on cdnow_sample before stage 04 became a function
#: (``pd.util.hash_pandas_object`` of customers_rfm.parquet, SHA-256 of rfm.json): the stage must keep them.
CDNOW_SAMPLE_CUSTOMERS_RFM = 3697946033733988657
CDNOW_SAMPLE_RFM_JSON = "366b08edb334bd306bf254090f174c4c7a43864a397d1b79bf775f36e87ba36e"


@pytest.fixture(scope="module")
def sample_stage(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - (params, catalog, result)
    from helpers.stages.rfm import rfm

    params = load_params("cdnow_sample.yaml")
    base = tmp_path_factory.mktemp("stage04")
    catalog = Catalog(params.dataset, "test", base / "run")
    catalog.write_parquet("transactions", collected("cdnow_sample.yaml", base / "data", clean=True))
    return params, catalog, rfm(params, catalog)


def test_the_stage_writes_the_artifacts_notebook_04_wrote(sample_stage) -> None:  # noqa: ANN001
    import hashlib

    params, catalog, result = sample_stage
    written = catalog.read_parquet("customers_rfm")
    assert int(pd.util.hash_pandas_object(written, index=False).sum() % 2**63) == CDNOW_SAMPLE_CUSTOMERS_RFM
    assert hashlib.sha256(catalog.path("rfm").read_bytes()).hexdigest() == CDNOW_SAMPLE_RFM_JSON
    pd.testing.assert_frame_equal(written, result.customers.reset_index(drop=True))
    in_db = catalog.query("select * from customers_rfm order by customer_id")
    assert len(in_db) == len(written) == 2_357 and in_db["customer_id"].tolist() == sorted(written["customer_id"])
    assert catalog.read_json("rfm")["caveats"] == result.caveats


def test_the_stage_result_holds_what_notebook_04_shows(sample_stage) -> None:  # noqa: ANN001
    params, catalog, result = sample_stage
    c = result.customers
    assert result.intro == "2,357 customers: 6,919 clean lines in 6,696 orders on 6,696 purchase days (customer x day)"
    assert result.profile.index.tolist() == ["recency_days", "frequency", "monetary_total", "monetary_avg", "tenure_days"]
    assert result.score_levels.index.tolist() == ["r_score", "f_score", "m_score"]
    assert (result.score_levels.sum(axis=1) == len(c)).all() and result.score_levels.columns.tolist() == [1, 2, 3, 4, 5]
    assert result.spread == [x["text"] for x in result.caveats]
    assert " ".join(result.score_notes.split()).endswith(result.one_time) and result.one_time.startswith(f"{c['frequency'].eq(1).sum():,} of 2,357")
    assert int(result.grid.to_numpy().sum()) == int(c["frequency"].gt(1).sum())  # the grid places the repeat buyers
    assert result.outside_grid.startswith(f"not in the grid: {c['frequency'].eq(1).sum():,} one-time buyers")
    assert result.who_in_grid == "repeat buyers"
    assert result.segments["customers"].sum() == len(c) and {"meaning", "action"} <= set(result.segments.columns)
    assert result.abc["customers"].tolist() == c["abc_class"].value_counts().reindex(["A", "B", "C"]).tolist()
    top20 = c["monetary_total"].nlargest(int(0.2 * len(c)) + 1).sum() / c["monetary_total"].sum()
    assert abs(result.top20_share - top20) < 0.01
    assert result.outliers["times_median"].gt(params.rfm.outlier_factor).all()
    assert result.outlier_note.startswith(f"{len(result.outliers):,} customer(s) spent more than 100 times")
    assert len(result.outliers_shown) <= 10 and "abc_class" in result.outliers_shown.columns
    assert result.crosstab.loc["All", "All"] == len(c) and result.crosstab["All"].is_monotonic_decreasing
    assert "customers_rfm.parquet" in result.written_note and "(1 caveat(s))" in result.written_note
    assert "view 'purchase_days' (6,696 purchase days, for stages 05 and 07)" in result.written_note


def test_notebook_04_figures_come_from_the_result(sample_stage) -> None:  # noqa: ANN001
    from helpers.plots import rfm as rfm_plots

    _, _, result = sample_stage
    grid = rfm_plots.segment_grid(result, "demo")
    ax = grid.axes[0]
    assert ax.get_title() == "demo: repeat buyers per R x F cell and their segment"
    assert any(t.get_text().startswith("champions\n") for t in ax.texts)  # each cell names its segment
    curve = rfm_plots.pareto(result, "demo").axes[0]
    assert curve.get_title() == "demo: Pareto curve" and len(curve.lines) == 4  # curve, diagonal, A and B cuts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-5, 5), st.floats(-3, 3, allow_nan=False), st.just(-0.0)), max_size=60))
def test_worse_than_is_the_searchsorted_count_of_smaller_values(values: list[float]) -> None:
    """The score's rank from one sort equals the count the sorted search gives, ties (and -0.0) included."""
    from helpers.rfm.scores import worse_than

    array = np.array(values, dtype=float)
    expected = np.searchsorted(np.sort(array, kind="stable"), array, side="left")
    assert worse_than(array).tolist() == expected.tolist()
    ints = np.array([int(v) for v in values], dtype=np.int64)
    assert worse_than(ints).tolist() == np.searchsorted(np.sort(ints), ints, side="left").tolist()


def test_an_as_of_long_after_the_log_ends_is_a_caveat_of_rfm_json(tmp_path: Path) -> None:
    """The last purchase of the log 569 days before as_of: rfm.json says so first (the report shows its caveats);
    at the log's end, or a quarter after it, nothing is said."""
    from helpers import rfm

    lines = collected("online_retail_sample.yaml", tmp_path / "data", clean=True)
    end, r = lines["order_ts"].max().date(), RFMParams()

    def caveats(days: int) -> list[dict[str, str]]:
        scored = rfm.rfm_table(lines, end + dt.timedelta(days=days), r.bins, rfm.load_segment_map(r.segment_map, r.bins),
                               r.abc_cuts)
        return rfm.rfm_summary(scored, r.bins)["caveats"]

    [said, *_] = caveats(569)
    assert said["code"] == "as_of_after_log"
    assert said["text"].startswith(f"as_of is 569 days after the last purchase in the log ({end.isoformat()})")
    for days in (0, 90):
        assert "as_of_after_log" not in [c["code"] for c in caveats(days)]
