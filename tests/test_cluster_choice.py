"""Stage 06, issue 13: k chosen by silhouette and stability in a range, names with absolute cut-offs,
geographic segmentation and the generated interpretation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from helpers import clusternames as cn
from helpers import geography as geo
from helpers import kchoice
from helpers.interpret import clusters as text

pytestmark = pytest.mark.usefixtures("one_openmp_thread")


def planted(n: int = 50, seed: int = 0) -> pd.DataFrame:
    """Four groups (loyal big spenders, regular mid spenders, new buyers, lapsed one-off buyers) in three countries."""
    rng = np.random.default_rng(seed)
    groups = [(10, 12, 2000, 900, 0.97, 500), (60, 4, 400, 200, 0.8, 480), (15, 1, 60, 20, 0.6, 30),
              (420, 1, 30, 1, 0.1, 450)]  # recency, frequency, spend, clv, p_alive, tenure
    rows = [{"recency_days": r * rng.uniform(0.8, 1.2), "frequency": f if f == 1 else round(f * rng.uniform(0.8, 1.2)),
             "monetary_total": m * rng.uniform(0.7, 1.3), "clv": v * rng.uniform(0.7, 1.3),
             "p_alive": min(1.0, p * rng.uniform(0.95, 1.05)), "tenure_days": t * rng.uniform(0.9, 1.1), "group": g}
            for g, (r, f, m, v, p, t) in enumerate(groups) for _ in range(n)]
    c = pd.DataFrame(rows)
    c.insert(0, "customer_id", [f"c{i:04d}" for i in range(len(c))])
    c["country"] = np.where(c["group"] == 0, "France", np.where(c["group"] == 3, "Spain", "Italy"))
    c["rfm_segment"] = c["group"].map({0: "champions", 1: "loyal", 2: "new customers", 3: "lost"})
    c["value_tier"] = c["group"].map({0: "platinum", 1: "gold", 2: "iron", 3: "lead"})
    return c


@pytest.fixture(scope="module")
def result():  # noqa: ANN201
    """Stage 06's core on the planted customers (default range 3..8, few refits)."""
    from helpers.config import load_params
    from helpers.stages.cluster import cluster_customers

    params = load_params("online_retail_sample.yaml", {"clusters.bootstrap": 4, "clusters.k_max": 5})
    return cluster_customers(params, planted().drop(columns="group"))


# --- the choice of k ---------------------------------------------------------------------------------


def test_the_rule_takes_the_best_silhouette_among_stable_k_and_falls_back_to_the_most_stable() -> None:
    scan = pd.DataFrame({"k": [2, 3, 4, 5], "silhouette": [0.7, 0.45, 0.5, 0.4],
                         "stability": [0.99, 0.95, 0.6, 0.9], "eligible": [False, True, True, True]})
    assert kchoice.pick_k(scan)[0] == 3  # k = 4 has the better silhouette but is not stable; k = 2 is out of range
    unstable = scan.assign(stability=[0.99, 0.5, 0.7, 0.6])
    k, rule = kchoice.pick_k(unstable)
    assert k == 4 and "most stable" in rule
    assert kchoice.pick_k(scan.assign(stability=np.nan))[0] == 4  # no refits: the silhouette alone


def test_the_scan_keeps_k2_as_reference_and_the_choice_says_what_it_gave_up(result) -> None:  # noqa: ANN001
    scan = result.choice.scan
    assert scan["k"].tolist() == [2, 3, 4, 5] and scan["eligible"].tolist() == [False, True, True, True]
    assert result.k >= 3 and scan["stability"].notna().all()
    assert kchoice.scan_k(result.x, 4, 5, sample_size=500)["k"].tolist() == [2, 4, 5]  # k = 2 only, not 3
    assert result.choice.score(result.k, "stability") >= kchoice.STABLE_ARI
    summary = result.summary()
    assert summary["k_rule"] == result.choice.rule and summary["k_given_up"] == result.choice.given_up()
    given = kchoice.KChoice(3, scan.assign(silhouette=[0.6, 0.5, 0.4, 0.3]), 3, 3, "", "r", 3, 2).given_up()
    assert "would take k = 2, outside the range (silhouette 0.600" in given and "gives up 0.100 of silhouette for 1 more cluster" in given


def test_the_choice_is_deterministic(result) -> None:  # noqa: ANN001
    from helpers import clustering as cl

    again = cl.choose_k(result.x, 3, 5, seed=42, sample_size=5000, refits=4)
    pd.testing.assert_frame_equal(again.scan, result.choice.scan)
    assert again.k == result.k


# --- names ---------------------------------------------------------------------------------------------


def test_a_cluster_very_likely_alive_is_never_fading_however_it_ranks() -> None:
    c = pd.DataFrame({"p_alive": np.r_[np.full(30, 0.99), np.full(30, 0.999)], "frequency": np.full(60, 4)})
    names = cn.name_clusters(c, np.repeat([0, 1], 30), ["p_alive", "frequency"])
    assert not any("fading" in n for n in names.values())
    low = c.assign(p_alive=c["p_alive"] * 0.4)  # the same ranks, now below the absolute cut-off
    assert "fading" in cn.name_clusters(low, np.repeat([0, 1], 30), ["p_alive", "frequency"])[0]


def test_transaction_and_relationship_clusters_read_so(result) -> None:  # noqa: ANN001
    p = result.profiles
    assert set(p["relationship"]) >= {cn.TYPES["one-off"], cn.TYPES["repeat"]}
    for i, row in p.iterrows():
        if row["relationship"] == cn.TYPES["one-off"]:
            assert "one-off" in result.names[i] and row["one_off_share"] >= cn.TYPE_SHARE
        if row["relationship"] == cn.TYPES["repeat"]:
            assert "repeat" in result.names[i] or "frequent" in result.names[i]
    assert cn.relationship(pd.Series([1] * 6 + [2] * 4)) is None
    assert cn.name_clusters(pd.DataFrame({"frequency": [1] * 6 + [2] * 4, "recency_days": range(10)}),
                            np.zeros(10, dtype=int), ["frequency"]) == {0: "mostly one-off"}  # mixed, 60% one-off


# --- geography -----------------------------------------------------------------------------------------


def test_places_pass_the_tests_when_spend_differs_and_fail_when_it_does_not() -> None:
    c = planted()
    differ = geo.segment_by_place(c, "Country")
    assert differ.label == "country" and differ.known_share == 1.0 and differ.useful
    assert differ.kw_p < geo.ALPHA and differ.named.index.tolist() == ["Italy", "France", "Spain"]
    assert differ.clv_spread[0] < 5 < 500 < differ.clv_spread[1]
    rng = np.random.default_rng(1)
    same = c.assign(country=rng.choice(["France", "Spain", "Italy"], len(c)))
    assert geo.segment_by_place(same).tests()["responds differently"] is False
    hidden = c.assign(country=np.where(np.arange(len(c)) % 4 == 0, c["country"], "Unspecified"))
    assert geo.segment_by_place(hidden).tests()["measurable"] is False


def test_without_a_place_column_geography_says_why(result) -> None:  # noqa: ANN001
    none = geo.segment_by_place(planted().drop(columns="country"))
    assert not none.available and "CDNOW" in none.reason and none.summary() == {"available": False, "reason": none.reason}
    assert result.geography.available and result.summary()["geography"]["useful"] is True


# --- the generated interpretation ----------------------------------------------------------------------


def test_the_geography_sentence_follows_the_tests() -> None:
    c = planted()
    useful = text.geography_reading(geo.segment_by_place(c))
    assert "useful segmentation" in useful and "fails" not in useful
    rng = np.random.default_rng(1)
    mixed = text.geography_reading(geo.segment_by_place(c.assign(country=rng.choice(["FR", "ES", "IT"], len(c)))))
    assert "fails the test(s) responds differently" in mixed and "p = " in mixed
    big = c.assign(country=rng.choice(["FR", "ES", "IT"], len(c)))
    big.loc[big.index[:20], "country"] = "NL"
    big.loc[big.index[:2], "monetary_total"] = 1e6  # two huge accounts in a small place
    assert "NL: " in text.geography_reading(geo.segment_by_place(big)) and "NL: " not in mixed
    assert text.geography_reading(geo.segment_by_place(c.drop(columns="country"))).startswith("**Geography.** Not tested")


def test_the_reading_changes_with_the_numbers(result) -> None:  # noqa: ANN001
    first = text.reading(result)
    assert f"k = {result.k}" in first and "Worth most" in first and "Geography" in first
    flat = result.profiles.assign(revenue_share=result.profiles["customer_share"])  # value spread like customers
    assert "no cluster is worth much more" in text.worth_reading(dataclasses.replace(result, profiles=flat))
    assert "give it the most care" in text.worth_reading(result)
    fading = result.profiles.assign(p_alive=0.3)
    assert "win-back target" in text.worth_reading(dataclasses.replace(result, profiles=fading))
    c = result.choice
    costly = dataclasses.replace(c, scan=c.scan.assign(silhouette=np.where(c.scan["k"] == 2, 0.9, 0.3)), k_reference=2)
    assert "real loss of separation" in text.k_reading(dataclasses.replace(result, choice=costly))
    cheap = dataclasses.replace(c, scan=c.scan.assign(silhouette=np.where(c.scan["k"] == 2, 0.35, 0.3)), k_reference=2)
    assert "small price" in text.k_reading(dataclasses.replace(result, choice=cheap))
    shaky = dataclasses.replace(c, scan=c.scan.assign(stability=0.5))
    assert "bootstrap refits do not reproduce the clusters" in text.k_reading(dataclasses.replace(result, choice=shaky))


def test_a_significant_but_small_difference_between_places_is_not_a_useful_segmentation() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    c = pd.DataFrame({"customer_id": range(n), "country": np.repeat(["A", "B"], n // 2),
                      "monetary_total": rng.lognormal(4, 0.5, n) * np.repeat([1.0, 1.1], n // 2)})
    small = geo.segment_by_place(c)
    assert small.significant and small.spread < geo.MIN_SPREAD and small.tests()["responds differently"] is False
    assert 1.05 < small.spread < 1.15 and "but little" in text.geography_reading(small)
    assert f"{small.spread:.2f} times" in text.geography_reading(small)
    large = geo.segment_by_place(c.assign(monetary_total=c["monetary_total"] * np.repeat([1.0, 1.6], n // 2)))
    assert large.tests()["responds differently"] and "useful segmentation" in text.geography_reading(large)


def test_two_clusters_of_one_name_are_told_apart_by_where_they_differ_most() -> None:
    c = pd.DataFrame({"frequency": np.ones(40), "recency_days": np.r_[np.full(20, 100.0), np.full(20, 300.0)],
                      "monetary_total": np.full(40, 50.0)})
    names = cn.name_clusters(c, np.repeat([0, 1], 20), ["frequency", "recency_days", "monetary_total"])
    assert names == {0: "one-off, more recent", 1: "one-off, less recent"}
    three = cn.name_clusters(c, np.repeat([0, 1, 2, 3], 10), ["frequency", "monetary_total"])
    assert sorted(three.values()) == ["one-off", "one-off (2)", "one-off (3)", "one-off (4)"]


def test_a_large_gap_between_few_customers_is_read_as_possibly_chance() -> None:
    rng = np.random.default_rng(4)
    c = pd.DataFrame({"customer_id": range(32), "country": np.repeat(["A", "B"], 16),
                      "monetary_total": np.r_[rng.lognormal(4, 2, 16), rng.lognormal(4, 2, 16) * 1.5]})
    few = geo.segment_by_place(c)
    assert not few.significant and few.spread >= geo.MIN_SPREAD  # a wide gap that is not significant
    assert "16 to 16 customers per place that can be chance" in text.geography_reading(few)
