"""Stage 04: the customer table, RFM scores with ties, the segment map, ABC and the value pyramid."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.config import load_params
from helpers.errors import ConfigError
from helpers.rfm import (abc_classes, class_summary, customer_table, load_segment_map, pareto_curve,
                         quantile_scores, rfm_scores, rfm_table)
from helpers.tiers import TIERS, is_high, value_tiers
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


def test_every_score_is_used_even_when_everyone_ties() -> None:
    customers = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(100)], "frequency": 1,
                              "monetary_total": 10.0, "recency_days": 30})
    scored = rfm_scores(customers)
    for col in ("r_score", "f_score", "m_score"):
        assert scored[col].value_counts().sort_index().tolist() == [20] * 5


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
    customers = pd.DataFrame({"customer_id": ["a", "b"], "frequency": [1, 3], "monetary_total": [1.0, 2.0]})
    assert quantile_scores(customers, [("frequency", True)], bins=5).tolist() == [1, 3]


def test_the_default_segment_map_covers_the_grid_with_eleven_named_segments() -> None:
    sm = load_segment_map("segment_maps/default.yaml")
    names = {n for row in sm.grid.values() for n in row}
    assert names == {"champions", "loyal", "potential loyalists", "new customers", "promising", "need attention",
                     "about to sleep", "at risk", "cannot lose", "hibernating", "lost"}
    r = pd.Series([5, 5, 1, 1, 2]); f = pd.Series([5, 1, 1, 5, 3])
    assert sm.segment(r, f).tolist() == ["champions", "new customers", "lost", "cannot lose", "at risk"]
    assert set(sm.actions().columns) == {"meaning", "action"}


def test_segment_map_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "map.yaml"
    bad.write_text("grid: {1: [a, b]}\nsegments: {a: {}}\ntiers: {}\n")
    with pytest.raises(ConfigError, match=r"map.yaml: 'grid' must have rows 1..5"):
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


def test_abc_classes_follow_the_cuts_on_100_customers() -> None:
    m = pd.Series(np.arange(100, 0, -1, dtype=float))
    classes = abc_classes(m, pd.Series([f"c{i:03d}" for i in range(100)]), (0.05, 0.20))
    assert classes.value_counts().to_dict() == {"C": 80, "B": 15, "A": 5}
    assert classes.iloc[:5].eq("A").all() and classes.iloc[5:20].eq("B").all()


def test_pareto_curve_rises_from_zero_to_one() -> None:
    curve = pareto_curve(pd.Series([5.0, 1.0, 0.0, 4.0]))
    assert curve["revenue_share"].is_monotonic_increasing
    assert curve.iloc[[0, -1]].values.tolist() == [[0.0, 0.0], [1.0, 1.0]]


def test_value_tiers_on_ties_and_zeros() -> None:
    assert is_high(pd.Series([0.0, 0.0, 0.0]), 0.5).tolist() == [False, False, False]
    tiers = value_tiers(pd.Series([10.0, 10.0, 1.0, 1.0, 0.0]), pd.Series([5.0, 0.0, 5.0, 0.0, 0.0]), 0.4, 0.4)
    assert tiers.tolist() == ["platinum", "gold", "iron", "lead", "lead"]


@pytest.fixture(scope="module")
def cdnow_customers(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    params = load_params("cdnow.yaml")
    clean = collected("cdnow.yaml", tmp_path_factory.mktemp("rfm") / "data", clean=True)
    return rfm_table(clean, params.as_of, 5, load_segment_map(params.rfm.segment_map), params.rfm.abc_cuts)


def test_cdnow_master_rfm(cdnow_customers: pd.DataFrame) -> None:
    assert len(cdnow_customers) == 23_570
    for col in ("r_score", "f_score", "m_score"):
        assert cdnow_customers[col].value_counts().tolist() == [4_714] * 5
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
    assert table.loc["iron", "action"].startswith("develop")
