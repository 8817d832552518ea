"""Stage 06: features, choosing k, both methods, stability, names, and the edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import clustering as cl
from helpers.errors import DataError

FEATURES = ["recency_days", "frequency", "monetary_total", "clv", "p_alive", "tenure_days"]
LOGGED = ["recency_days", "frequency", "monetary_total", "clv", "tenure_days"]


def customers(n_per_group: int = 60, seed: int = 0) -> pd.DataFrame:
    """Three well-separated groups: loyal big spenders, new customers, lapsed one-timers."""
    rng = np.random.default_rng(seed)
    groups = [  # recency, frequency, spend, clv, p_alive, tenure
        (10, 12, 2000, 900, 0.95, 500), (15, 2, 80, 60, 0.9, 40), (400, 1, 30, 1, 0.1, 450)]
    rows = []
    for g, (r, f, m, v, p, t) in enumerate(groups):
        for _ in range(n_per_group):
            rows.append({"recency_days": r * rng.uniform(0.8, 1.2), "frequency": max(1, round(f * rng.uniform(0.8, 1.2))),
                         "monetary_total": m * rng.uniform(0.7, 1.3), "clv": v * rng.uniform(0.7, 1.3),
                         "p_alive": min(1, p * rng.uniform(0.9, 1.1)), "tenure_days": t * rng.uniform(0.9, 1.1),
                         "true_group": g})
    frame = pd.DataFrame(rows)
    frame.insert(0, "customer_id", [f"c{i:04d}" for i in range(len(frame))])
    return frame


def test_three_planted_groups_are_found_named_and_stable() -> None:
    c = customers()
    x = cl.feature_matrix(c, FEATURES, LOGGED)
    scan = cl.scan_k(x, 2, 6, seed=1)
    assert cl.best_k(scan) == 3
    labels = cl.fit_kmeans(x, 3, c["monetary_total"], seed=1)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(c["true_group"], labels) == 1.0
    assert adjusted_rand_score(labels, cl.fit_gmm(x, 3, c["monetary_total"], seed=1)) == 1.0
    assert cl.bootstrap_stability(x, 3, labels, n=5, seed=1).min() > 0.95
    names = cl.name_clusters(c, labels, FEATURES)
    assert labels[0] == 0 and names[0].startswith("high-spend")  # cluster 0 = highest spend
    assert names[2].startswith("low-spend") and "new" in names[1]
    assert len(set(names.values())) == 3


def test_labels_are_identical_on_rerun_and_independent_of_row_order() -> None:
    c = customers(seed=3)
    x = cl.feature_matrix(c, FEATURES, LOGGED)
    first = cl.fit_kmeans(x, 3, c["monetary_total"], seed=7)
    again = cl.fit_kmeans(x, 3, c["monetary_total"], seed=7)
    np.testing.assert_array_equal(first, again)
    shuffled = c.sample(frac=1, random_state=5)
    xs = cl.feature_matrix(shuffled, FEATURES, LOGGED)
    relabelled = pd.Series(cl.fit_kmeans(xs, 3, shuffled["monetary_total"], seed=7), index=shuffled.index)
    np.testing.assert_array_equal(relabelled.loc[c.index].to_numpy(), first)


def test_more_clusters_than_customers_is_a_clear_error() -> None:
    c = customers(n_per_group=1)
    x = cl.feature_matrix(c, FEATURES, LOGGED)
    with pytest.raises(DataError, match="asked for 5 clusters but there are only 3 customers"):
        cl.fit_kmeans(x, 5, c["monetary_total"])
    scan = cl.scan_k(x, 2, 10)  # the scan stops where k would exceed the customers
    assert scan["k"].tolist() == [2]


def test_a_single_cluster_works_end_to_end() -> None:
    c = customers(n_per_group=10)
    x = cl.feature_matrix(c, FEATURES, LOGGED)
    labels = cl.fit_kmeans(x, 1, c["monetary_total"])
    assert set(labels) == {0}
    assert cl.profile(c, labels, FEATURES)["customer_share"].tolist() == [1.0]
    assert cl.name_clusters(c, labels, FEATURES) == {0: "typical"}
    assert cl.bootstrap_stability(x, 1, labels, n=3).tolist() == [1.0, 1.0, 1.0]


def test_identical_customers_cannot_be_scanned() -> None:
    c = pd.DataFrame({f: [1.0] * 5 for f in FEATURES})
    with pytest.raises(DataError, match="only 1 distinct customers"):
        cl.scan_k(cl.feature_matrix(c, FEATURES, LOGGED), 2, 4)


def test_missing_feature_and_missing_values_are_named() -> None:
    c = customers(n_per_group=5)
    with pytest.raises(DataError, match=r"\['cluster_me'\] are not columns"):
        cl.feature_matrix(c, ["cluster_me"], [])
    c.loc[3, "clv"] = np.nan
    with pytest.raises(DataError, match=r"\['clv'\] have missing values for 1 customers"):
        cl.feature_matrix(c, FEATURES, LOGGED)


def test_profile_shares_add_up() -> None:
    c = customers(n_per_group=20)
    labels = cl.fit_kmeans(cl.feature_matrix(c, FEATURES, LOGGED), 3, c["monetary_total"])
    p = cl.profile(c, labels, FEATURES)
    assert p["customer_share"].sum() == pytest.approx(1) and p["revenue_share"].sum() == pytest.approx(1)
    assert p["monetary_total"].is_monotonic_decreasing
