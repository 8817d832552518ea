"""Stage 06: features, choosing k, both methods, stability, names, and the edge cases."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from helpers import clustering as cl
from helpers.errors import DataError

pytestmark = pytest.mark.usefixtures("one_openmp_thread")

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


# --- issue 11: no forecast, caveats, degenerate data, determinism ------------------------------------


def test_without_a_forecast_the_empty_features_are_left_out_and_said() -> None:
    c = customers().assign(p_alive=np.nan, clv=np.nan, expected_purchases=np.nan, value_tier=None)
    features, dropped = cl.usable_features(c, FEATURES)
    assert features == ["recency_days", "frequency", "monetary_total", "tenure_days"]
    assert set(dropped) == {"clv", "p_alive"} and "no CLV forecast" in dropped["clv"]
    x = cl.feature_matrix(c, features, LOGGED)
    choice = cl.choose_k(x, 2, 6, seed=1)
    labels = cl.fit_kmeans(x, choice.k, c["monetary_total"], seed=1)
    from sklearn.metrics import adjusted_rand_score

    assert choice.k == 3 and adjusted_rand_score(c["true_group"], labels) == 1.0  # the groups differ without CLV too
    names = cl.name_clusters(c, labels, features)
    assert all("potential" not in n and "active" not in n for n in names.values())
    assert cl.profile(c, labels, features).columns.tolist()[-1] == "tenure_days"
    codes = [k["code"] for k in cl.caveats(labels, choice, 1.0, np.ones(5), dropped)]
    assert codes == ["features_dropped"]
    with pytest.raises(DataError, match=r"set clusters\.features"):
        cl.usable_features(c, ["clv", "p_alive"])


def test_a_tiny_far_away_cluster_behind_a_high_silhouette_is_a_caveat() -> None:
    rng = np.random.default_rng(0)
    n, far = 994, 6  # 0.6% of customers far from the rest, as seen on Olist
    c = pd.DataFrame({"recency_days": rng.uniform(100, 300, n + far), "frequency": np.r_[np.ones(n), np.full(far, 40.0)],
                      "monetary_total": np.r_[rng.gamma(2, 50, n), np.full(far, 1e6)]})
    c.insert(0, "customer_id", [f"o{i}" for i in range(len(c))])
    feats = ["recency_days", "frequency", "monetary_total"]
    x = cl.feature_matrix(c, feats, ["frequency", "monetary_total"])
    choice = cl.choose_k(x, 2, 4, seed=0, refits=0)  # silhouette only: the tiny cluster is not stable under resampling
    labels = cl.fit_kmeans(x, choice.k, c["monetary_total"], seed=0)
    assert choice.k == 2 and choice.silhouette > 0.5
    found = {k["code"]: k["text"] for k in cl.caveats(labels, choice, 0.9, np.ones(3))}
    assert "0.6% of customers (6 of 1,000)" in found["small_cluster"] and f"{choice.silhouette:.3f}" in found["small_cluster"]
    balanced = cl.caveats(cl.fit_kmeans(cl.feature_matrix(customers(), FEATURES, LOGGED), 3, customers()["monetary_total"]),
                          choice, 0.9, np.ones(3))
    assert balanced == []


def test_methods_that_disagree_and_unstable_clusters_are_caveats() -> None:
    labels = np.repeat([0, 1], 50)
    choice = cl.KChoice(2, pd.DataFrame({"k": [2], "silhouette": [0.4]}), 2, 2, "")
    found = {k["code"]: k["text"] for k in cl.caveats(labels, choice, 0.003, np.array([0.5, 0.7, 0.9]))}
    assert "ARI 0.003 (below 0.2)" in found["methods_disagree"]
    assert "mean ARI 0.700 (below 0.8)" in found["unstable"] and "3 bootstrap samples" in found["unstable"]
    assert cl.is_stable(np.array([0.8, 0.8])) and not cl.is_stable(np.array([0.79]))
    assert cl.caveats(labels, choice, 0.2, np.array([0.8])) == []  # at the thresholds: no caveat


def test_identical_customers_make_one_cluster_with_a_caveat() -> None:
    c = pd.DataFrame({f: [1.0] * 5 for f in FEATURES}).assign(customer_id=list("abcde"))
    x = cl.feature_matrix(c, FEATURES, LOGGED)
    choice = cl.choose_k(x, 2, 8)
    assert choice.k == 1 and choice.silhouette is None and "only 1 distinct" in choice.note
    labels = cl.fit_kmeans(x, choice.k, c["monetary_total"])
    assert [k["code"] for k in cl.caveats(labels, choice, 1.0, cl.bootstrap_stability(x, 1, labels, 3))] == ["single_cluster"]
    four = pd.DataFrame({"frequency": [1.0, 2, 3, 4]})  # too few distinct customers for k_min = 5: scanned from 2
    small = cl.choose_k(cl.feature_matrix(four, ["frequency"], []), 5, 8)
    assert "k_min lowered to 2" in small.note and small.scan["k"].tolist() == [2, 3]
    with pytest.raises(DataError, match="lower clusters.k"):
        cl.choose_k(x, 2, 8, k=9)


def test_the_stage_gives_identical_clusters_twice() -> None:
    c = customers(seed=11).sample(frac=1, random_state=2).reset_index(drop=True)

    def run() -> tuple[np.ndarray, ...]:
        x = cl.feature_matrix(c, FEATURES, LOGGED)
        choice = cl.choose_k(x, 2, 5, seed=9, sample_size=120)
        km = cl.fit_kmeans(x, choice.k, c["monetary_total"], seed=9)
        gm = cl.fit_gmm(x, choice.k, c["monetary_total"], seed=9)
        boot = cl.bootstrap_stability(x, choice.k, km, n=4, seed=9, sample_size=100)
        return km, gm, boot, choice.scan.to_numpy()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 12])
def test_tiny_customer_tables_go_through_every_step(n: int) -> None:
    c = customers(n_per_group=4).iloc[:n].reset_index(drop=True)
    x = cl.feature_matrix(c, FEATURES, LOGGED)
    choice = cl.choose_k(x, 2, 8, seed=0)
    assert 1 <= choice.k <= max(1, n - 1)
    labels = cl.fit_kmeans(x, choice.k, c["monetary_total"])
    gmm = cl.fit_gmm(x, choice.k, c["monetary_total"])
    stability = cl.bootstrap_stability(x, choice.k, labels, n=3)
    assert len(labels) == len(gmm) == n and len(stability) == 3
    names = cl.name_clusters(c, labels, FEATURES)
    assert set(names) == set(labels) and cl.profile(c, labels, FEATURES)["customers"].sum() == n
    for caveat in cl.caveats(labels, choice, 1.0, stability):
        assert caveat["code"] in {"single_cluster", "small_cluster", "methods_disagree", "unstable"} and caveat["text"]


# ---------------------------------------------------------------------------
# the stage function (helpers.stages.cluster), in-process on a synthetic run catalog


def staged_customers(tiers: bool = True) -> pd.DataFrame:
    """The three groups as stage 05 leaves them: with RFM segments and (unless ``tiers`` is false) value tiers."""
    c = customers(seed=3)
    c["rfm_segment"] = c["true_group"].map({0: "champions", 1: "new customers", 2: "lost"})
    c["value_tier"] = c["true_group"].map({0: "platinum", 1: "iron", 2: "lead"}) if tiers else None
    return c.drop(columns="true_group")


@pytest.fixture
def stage_run(tmp_path) -> tuple:  # noqa: ANN001
    """(params, catalog) of a run whose stage 05 left the three groups as its customer table."""
    from helpers.catalog import Catalog
    from helpers.config import load_params
    from helpers.rfm import save_customers

    params = load_params("cdnow_sample.yaml", {"clusters.bootstrap": 4, "clusters.k_max": 5})
    catalog = Catalog("synthetic", "run", tmp_path)
    save_customers(catalog, staged_customers(), "customers")
    return params, catalog


def test_the_stage_writes_what_it_returns(stage_run: tuple) -> None:
    from helpers.stages.cluster import cluster

    params, catalog = stage_run
    result = cluster(params, catalog)
    assert result.k == 3 and result.ari_methods == 1.0 and cl.is_stable(result.stability)
    written = catalog.read_parquet("clusters")
    pd.testing.assert_frame_equal(written, result.artifact())
    assert written["cluster"].nunique() == 3 and set(written["cluster_id"]) == {0, 1, 2}
    summary = catalog.read_json("clusters_summary")
    assert summary["k"] == 3 and summary["names"] == {str(i): n for i, n in result.names.items()}
    assert summary["smallest_cluster_share"] == pytest.approx(1 / 3) and summary["caveats"] == result.caveats == []
    tables = catalog.query("select (select count(*) from clusters) as c, (select count(*) from cluster_profiles) as p")
    assert tables.iloc[0].tolist() == [len(written), 3]


def test_the_stage_compares_clusters_with_segments_and_tiers(stage_run: tuple) -> None:
    from helpers import names
    from helpers.stages.cluster import cluster

    params, catalog = stage_run
    result = cluster(params, catalog)
    assert result.ari_segment == 1.0 and result.ari_tier == 1.0
    assert (result.reading["share in it"] == 1.0).all() and (result.reading["share in tier"] == 1.0).all()
    assert list(result.by_tier.columns) == [t for t in names.TIERS if t in {"platinum", "iron", "lead"}]
    lines = result.describe_agreement().splitlines()
    assert len(lines) == 1 + result.k and all(" mostly " in line for line in lines[1:])
    assert "stable means a mean ARI of at least 0.8" in result.describe_stability()
    assert result.methods_table().to_numpy().trace() == len(result.labels)  # both methods put everyone alike
    assert "no caveats" in result.describe_caveats()


def test_the_stage_without_value_tiers_compares_with_rfm_segments_only(tmp_path) -> None:  # noqa: ANN001
    from helpers.catalog import Catalog
    from helpers.config import load_params
    from helpers.plots import clusters as plot
    from helpers.rfm import save_customers
    from helpers.stages.cluster import cluster

    catalog = Catalog("synthetic", "run", tmp_path)
    no_forecast = staged_customers(tiers=False).assign(clv=np.nan, p_alive=np.nan)
    save_customers(catalog, no_forecast, "customers")
    result = cluster(load_params("cdnow_sample.yaml", {"clusters.bootstrap": 2}), catalog)
    assert result.by_tier is None and result.ari_tier is None and "main tier" not in result.reading
    assert "no value tiers" in result.describe_agreement()
    assert set(result.dropped) == {"clv", "p_alive"} and "left out: clv" in result.describe_features()
    assert [c["code"] for c in result.caveats][:1] == ["features_dropped"]
    assert len(plot.business(result).axes) == 1 and len(plot.centres(result).axes) == 3  # heatmap, colorbar, snake


def test_figures_have_one_panel_per_score_and_mark_k(stage_run: tuple) -> None:
    from helpers.plots import clusters as plot
    from helpers.stages.cluster import cluster

    result = cluster(*stage_run)
    fig = plot.k_scan(result)
    assert [ax.get_title() for ax in fig.axes] == [title for _, title in plot.SCAN_PANELS]
    assert all(ax.lines[1].get_xdata()[0] == result.k for ax in fig.axes)  # the chosen k, marked
    assert len(plot.business(result).axes) == 2


def test_strength_words_follow_the_thresholds() -> None:
    assert cl.strength(cl.MOSTLY_SHARE) == "mostly" and cl.strength(cl.MOSTLY_SHARE - 0.001) == "partly"
    assert cl.strength(cl.PARTLY_SHARE) == "partly" and cl.strength(cl.PARTLY_SHARE - 0.001).startswith("spread")


def test_importing_the_modules_leaves_the_thread_pools_alone() -> None:
    """The single-thread limit is held where the fits run (one_thread), not set by importing a module."""
    import subprocess
    import sys

    from threadpoolctl import threadpool_info

    openmp = "[p['num_threads'] for p in __import__('threadpoolctl').threadpool_info() if p['user_api'] == 'openmp']"
    code = (f"import sklearn.ensemble, sklearn.cluster; before = {openmp}; import helpers.clustering, helpers.classify, "
            f"helpers.stages.cluster, helpers.stages.classify, helpers.plots.classify; print(before == {openmp}, before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("True"), out
    with cl.one_thread():
        assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"} <= {1}


def test_a_figure_is_left_to_the_caller_to_show() -> None:
    import matplotlib.pyplot as plt

    from helpers.plots.clusters import figure

    fig = figure(4, 3)
    assert tuple(fig.get_size_inches()) == (4, 3) and fig.number not in plt.get_fignums()  # pyplot will not show it again
