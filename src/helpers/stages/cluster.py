"""Stage 06, discovering segments: everything notebook 06 shows, computed and written in one call.

:func:`cluster_customers` is the pure core: from the run's parameters and
stage 05's customer table it chooses the features and k, fits k-means and the
Gaussian mixture (on one OpenMP thread, :func:`helpers.clustering.one_thread`),
checks stability, names and profiles the clusters, compares them with the RFM
segments and value tiers, groups the customers by place (:mod:`helpers.geography`)
and words the caveats. :func:`cluster` reads the customers from the catalog, runs the
core and writes ``clusters.parquet``, ``clusters.json``, the DuckDB view ``clusters`` (of the Parquet file) and
the tables ``cluster_profiles`` and (with a place column) ``customer_places``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from helpers import clustering as cl
from helpers import geography as geo
from helpers import names as vocabulary
from helpers import sampling
from helpers.clusternames import FADING_P_ALIVE


@dataclass
class ClusterResult:
    """Stage 06's result: features, the choice of k, both methods' labels, profiles and the comparisons."""

    customers: pd.DataFrame  # stage 05's customer table
    features: list[str]
    dropped: dict[str, str]  # features left out, with the reason
    scaler: str
    x: pd.DataFrame  # the scaled feature matrix
    choice: cl.KChoice
    labels: np.ndarray  # k-means
    gmm: np.ndarray  # Gaussian mixture
    stability: np.ndarray  # bootstrap ARIs of k-means
    ari_methods: float
    names: dict[int, str]
    profiles: pd.DataFrame  # per cluster: name, customers, shares, feature means
    centres: pd.DataFrame  # per cluster ("0: name"): mean of each scaled feature
    by_segment: pd.DataFrame  # share of each cluster in each RFM segment
    by_tier: pd.DataFrame | None  # ... in each value tier (None without tiers)
    reading: pd.DataFrame  # per cluster: its main RFM segment (and tier) and the share in it
    ari_segment: float
    ari_tier: float | None
    caveats: list[dict[str, str]]
    geography: geo.Geography  # customers by place and the tests of a useful segmentation
    fading_below: float = FADING_P_ALIVE  # P(alive) below this is "fading" (the run's lifecycle.decline_p_alive)
    fitted_on: int | None = None  # customers k was chosen and the methods fitted on (None: all; helpers.sampling)

    @property
    def k(self) -> int:
        """The number of clusters."""
        return self.choice.k

    @property
    def has_tiers(self) -> bool:
        """Whether the customers have value tiers (stage 05 made a forecast)."""
        return self.by_tier is not None

    def describe_features(self) -> str:
        """The features clustered on, and those left out with the reason."""
        lines = [f"left out: {feature} - {why}" for feature, why in self.dropped.items()]
        lines.append(f"{len(self.x):,} customers x {self.x.shape[1]} features ({', '.join(self.features)}); "
                     f"scaler: {self.scaler}")
        if self.sample_text:
            lines.append(f"sample: {self.sample_text}; every customer is labelled by the fitted models")
        return "\n".join(lines)

    @property
    def sample_text(self) -> str:
        """One sentence when k was chosen and the methods fitted on a sample (empty otherwise)."""
        return "" if self.fitted_on is None else sampling.sample_note(self.fitted_on, len(self.x),
                                                                       "k chosen, k-means and the mixture fitted")

    def methods_table(self) -> pd.DataFrame:
        """Customers by k-means cluster (rows) and Gaussian-mixture cluster (columns)."""
        return pd.crosstab(pd.Series(self.labels, name="k-means"), pd.Series(self.gmm, name="Gaussian mixture"))

    def describe_stability(self) -> str:
        """How far the two methods agree and the bootstrap refits reproduce k-means."""
        text = f"k-means vs Gaussian mixture: ARI {self.ari_methods:.3f}"
        s = self.stability
        if len(s):
            verdict = "stable" if cl.is_stable(s) else "NOT stable: read the clusters with care"
            text += (f"\nbootstrap stability of k-means ({len(s)} refits): ARI mean {s.mean():.3f}, min {s.min():.3f} "
                     f"({verdict}; stable means a mean ARI of at least {cl.STABLE_ARI})")
        return text

    def describe_agreement(self) -> str:
        """The clusters against the business segments: the ARIs, then one sentence per cluster."""
        if self.has_tiers:
            lines = [f"agreement of the clusters with the RFM segments: ARI {self.ari_segment:.3f}; "
                     f"with the value tiers: ARI {self.ari_tier:.3f}"]
        else:
            lines = [f"agreement of the clusters with the RFM segments: ARI {self.ari_segment:.3f} "
                     "(no value tiers: stage 05 made no forecast)"]
        for name, row in self.reading.iterrows():
            tier = (f"; tier {row['main tier']} ({row['share in tier']:.0%})"
                    if self.has_tiers and pd.notna(row.get("main tier")) else "")
            lines.append(f"- cluster {name}: {cl.strength(row['share in it'])} {row['main RFM segment']} "
                         f"({row['share in it']:.0%}){tier}")
        return "\n".join(lines)

    def describe_caveats(self) -> str:
        """The thresholds, then one line per caveat (or why there is none)."""
        lines = [f"thresholds: smallest cluster {cl.SMALL_CLUSTER_SHARE:.0%} of customers, methods' ARI "
                 f"{cl.METHODS_AGREE_ARI}, bootstrap ARI {cl.STABLE_ARI}"]
        lines += [f"- [{c['code']}] {c['text']}" for c in self.caveats]
        if not self.caveats:
            lines.append("no caveats: one method's clusters are reproduced by the other and by resampling, "
                         "and none is tiny")
        return "\n".join(lines)

    def artifact(self) -> pd.DataFrame:
        """``clusters.parquet``: each customer's cluster name, k-means id and Gaussian-mixture id."""
        return pd.DataFrame({"customer_id": self.customers["customer_id"],
                             "cluster": _named(self.labels, self.names, "{name}"),
                             "cluster_id": self.labels, "cluster_gmm": self.gmm})

    def summary(self) -> dict[str, Any]:
        """``clusters.json``: the choice of k, the agreement and stability scores, names and caveats."""
        c = self.choice
        return {"k": c.k, "k_silhouette": c.k_silhouette, "k_calinski_harabasz": c.k_calinski_harabasz,
                "k_stable": c.k_stable, "k_reference": c.k_reference, "k_rule": c.rule, "k_given_up": c.given_up(),
                "k_note": c.note, "silhouette": c.silhouette, "stability_at_k": c.score(c.k, "stability"), "ari_kmeans_gmm": float(self.ari_methods),
                "bootstrap_ari_mean": float(self.stability.mean()) if len(self.stability) else None,
                "smallest_cluster_share": float(self.profiles["customer_share"].min()),
                "features": self.features, "features_dropped": self.dropped,
                "names": {int(i): n for i, n in self.names.items()}, "caveats": self.caveats,
                "geography": self.geography.summary(), "sample": self.sample_text or None}


def _named(labels: np.ndarray, names: dict[int, str], form: str) -> np.ndarray:
    """Each customer's cluster as text (``form`` with ``{i}`` and ``{name}``), formatted once per cluster.

    >>> _named(np.array([1, 0, 1]), {0: "a", 1: "b"}, "{i}: {name}").tolist()
    ['1: b', '0: a', '1: b']
    """
    texts = np.array([form.format(i=i, name=names.get(i, "")) for i in range(int(labels.max(initial=-1)) + 1)],
                     dtype=object)
    return texts[labels]


def _business(customers: pd.DataFrame, labels: np.ndarray, cluster_names: pd.Series
              ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame, float, float | None]:
    """The clusters against the RFM segments and value tiers: crosstabs, main segment per cluster, ARIs."""
    by_segment = vocabulary.crosstab(cluster_names, customers["rfm_segment"], normalize="index")
    reading = cl.agreement(cluster_names, customers["rfm_segment"]).rename(
        columns={"main_segment": "main RFM segment", "share": "share in it"})
    ari_segment = adjusted_rand_score(pd.factorize(customers["rfm_segment"], sort=True)[0], labels)  # codes: the same ARI, fast
    if not ("value_tier" in customers and customers["value_tier"].notna().any()):
        return by_segment, None, reading, ari_segment, None
    by_tier = vocabulary.crosstab(cluster_names, customers["value_tier"], normalize="index")
    by_tier = by_tier[[t for t in vocabulary.TIERS if t in by_tier.columns]]
    tiered = customers["value_tier"].notna().to_numpy()
    reading = reading.join(cl.agreement(cluster_names[tiered], customers["value_tier"][tiered]).rename(
        columns={"main_segment": "main tier", "share": "share in tier"}))
    ari_tier = adjusted_rand_score(pd.factorize(customers["value_tier"][tiered], sort=True)[0], labels[tiered])
    return by_segment, by_tier, reading, ari_segment, ari_tier


def cluster_customers(params: Any, customers: pd.DataFrame) -> ClusterResult:
    """Stage 06 on stage 05's customer table: features, k, both methods, stability, profiles, comparisons, caveats."""
    cp = params.clusters
    features, dropped = cl.usable_features(customers, cp.features)
    x = cl.feature_matrix(customers, features, cp.log_features, cp.scaler)
    spend = customers["monetary_total"]
    size = params.scale.sample_customers
    fit_on = sampling.sample_mask(customers["customer_id"], size) if sampling.is_sampled(len(x), size) else None
    fit_x = x if fit_on is None else x[fit_on]  # k is chosen and the methods fitted on the sample, everyone labelled
    with cl.one_thread():
        choice = cl.choose_k(fit_x, cp.k_min, cp.k_max, cp.k, cp.seed, cp.sample_size, cp.bootstrap)
        labels = cl.fit_kmeans(x, choice.k, spend, cp.seed, fit_on)
        gmm = cl.fit_gmm(x, choice.k, spend, cp.seed, fit_on)
        stability = cl.bootstrap_stability(fit_x, choice.k, labels if fit_on is None else labels[fit_on],
                                           cp.bootstrap, cp.seed, cp.sample_size)
    ari_methods = adjusted_rand_score(labels, gmm)
    fading_below = params.lifecycle.decline_p_alive
    names = cl.name_clusters(customers, labels, features, fading_below=fading_below)
    profiles = cl.profile(customers, labels, features)
    profiles.insert(0, "name", [names[i] for i in profiles.index])
    centres = x.groupby(labels).mean()
    centres.index = [f"{i}: {names[i]}" for i in centres.index]
    cluster_names = pd.Series(_named(labels, names, "{i}: {name}"), name="cluster")
    by_segment, by_tier, reading, ari_segment, ari_tier = _business(customers, labels, cluster_names)
    return ClusterResult(customers, features, dropped, cp.scaler, x, choice, labels, gmm, stability, ari_methods,
                         names, profiles, centres, by_segment, by_tier, reading, ari_segment, ari_tier,
                         cl.caveats(labels, choice, ari_methods, stability, dropped),
                         geo.segment_by_place(customers, params.columns.country), fading_below,
                         None if fit_on is None else int(fit_on.sum()))


def save_clusters(catalog: Any, result: ClusterResult) -> dict[str, Path]:
    """Write stage 06's artifacts: ``clusters.parquet``, ``clusters.json``, tables 'cluster_profiles' (and
    'customer_places') and the view 'clusters' of ``clusters.parquet``."""
    artifact = result.artifact()
    written = {"clusters": catalog.write_parquet("clusters", artifact)}
    tables = {"cluster_profiles": result.profiles.reset_index()}
    if result.geography.available:
        tables["customer_places"] = result.geography.table.reset_index()
    catalog.write_tables(tables, views={"clusters": "clusters"})
    written["clusters_summary"] = catalog.write_json("clusters_summary", result.summary())
    return written


#: The columns of stage 05's customer table stage 06 reads besides its features (names, profiles, places, segments).
CUSTOMER_COLUMNS = ["customer_id", "country", "monetary_total", "frequency", "rfm_segment", "value_tier", "p_alive",
                    "clv"]


def cluster(params: Any, catalog: Any) -> ClusterResult:
    """Stage 06 in one call: read the columns it uses of stage 05's customers, cluster them, write the artifacts.

    (Not the table's 39 columns: at ten million customers every copy of them - a profile, a group - costs gigabytes.)
    """
    import pyarrow.parquet as pq

    present = pq.ParquetFile(catalog.require("customers", "05-clv-lifetimes")).schema_arrow.names
    cp = params.clusters
    wanted = dict.fromkeys([*CUSTOMER_COLUMNS, *cp.features, *cp.log_features])
    result = cluster_customers(params, catalog.read_parquet("customers", [c for c in present if c in wanted]))
    save_clusters(catalog, result)
    return result
