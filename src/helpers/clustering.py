"""Discovering segments: k-means and a Gaussian mixture on customer features.

Stage 06. Business rules (RFM segments, value tiers) say which groups we *expect*; clustering asks which
groups the data *has*, with no labels. The steps, each a function here:

1. :func:`usable_features` leaves out features empty for every customer (``clv`` and ``p_alive`` when
   stage 05 made no forecast); :func:`feature_matrix` - chosen features, ``log(1 + x)`` for skewed ones,
   robust scaling (median and interquartile range, so a few huge spenders do not set the scale);
2. :func:`scan_k` - k-means for each k in a range on a sample of customers, scored by inertia (elbow),
   silhouette and Calinski-Harabasz; :func:`best_k` takes the highest silhouette; :func:`choose_k` wraps
   both (and falls back to one cluster when customers are all alike);
3. :func:`fit_kmeans` / :func:`fit_gmm` - the two methods, with labels renumbered by cluster value so
   reruns give identical labels;
4. :func:`bootstrap_stability` - refit on bootstrap samples, adjusted Rand index against the full-data labels;
5. :func:`profile` and :func:`name_clusters` - sizes, revenue shares, feature means, and a readable name
   derived from each profile;
6. :func:`agreement` and :func:`strength` - how the clusters meet the business segments;
7. :func:`caveats` - sentences from this run's numbers when the result is weaker than its scores suggest
   (a tiny cluster behind a high silhouette, methods that disagree, clusters that do not survive resampling).

The stage (:mod:`helpers.stages.cluster`) runs the fits on one OpenMP thread (:func:`one_thread`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import RobustScaler, StandardScaler
from threadpoolctl import threadpool_limits

from helpers.caveats import caveat
from helpers.errors import DataError


#: Columns stage 05 leaves empty (all NaN) when it makes no CLV forecast.
FORECAST_COLUMNS = ("p_alive", "expected_purchases", "expected_spend", "clv")

#: Caveat thresholds (``clusters.json["caveats"]``): a smallest cluster below SMALL_CLUSTER_SHARE of the
#: customers (a high silhouette may only say that a few customers sit far from the rest); k-means and the
#: Gaussian mixture agreeing below METHODS_AGREE_ARI (the groups depend on the method); a bootstrap mean
#: ARI below STABLE_ARI (the clusters are partly an accident of the sample).
SMALL_CLUSTER_SHARE, METHODS_AGREE_ARI, STABLE_ARI = 0.02, 0.2, 0.8
#: A silhouette at least this high next to a tiny cluster is called inflated by it.
INFLATED_SILHOUETTE = 0.5
#: A cluster with at least MOSTLY_SHARE of its customers in one business segment is "mostly" that segment,
#: with at least PARTLY_SHARE "partly"; below, it is spread over several segments.
MOSTLY_SHARE, PARTLY_SHARE = 0.6, 0.35


def one_thread() -> threadpool_limits:
    """A context manager running scikit-learn's OpenMP code (k-means, gradient boosting) on one thread.

    Their threads spin while they wait: on a 2-core machine shared with another busy process that
    made stage 07 fifty times slower. The stage functions wrap their fits in it (``with one_thread():``).
    """
    return threadpool_limits(limits=1, user_api="openmp")


def _check_columns(customers: pd.DataFrame, features: list[str]) -> None:
    missing = [f for f in features if f not in customers.columns]
    if missing:
        raise DataError(f"clustering features {missing} are not columns of the customer table; "
                        f"columns: {sorted(customers.columns)}")


def usable_features(customers: pd.DataFrame, features: list[str]) -> tuple[list[str], dict[str, str]]:
    """The features that can be clustered on, and those left out with the reason (empty for every customer).

    Stage 05 leaves ``clv``, ``p_alive`` and the other forecast columns empty
    when there are too few repeat buyers for a forecast; clustering then uses
    the remaining features. Raises :class:`DataError` naming ``clusters.features``
    when nothing is left.

    >>> c = pd.DataFrame({"frequency": [1, 2], "clv": [np.nan, np.nan]})
    >>> usable_features(c, ["frequency", "clv"])
    (['frequency'], {'clv': 'empty for every customer: stage 05 made no CLV forecast'})
    """
    _check_columns(customers, features)
    dropped = {}
    for f in features:
        if customers[f].isna().all():
            dropped[f] = ("empty for every customer: stage 05 made no CLV forecast" if f in FORECAST_COLUMNS
                          else "empty for every customer")
    kept = [f for f in features if f not in dropped]
    if not kept:
        raise DataError(f"none of the clustering features {features} has values ({'; '.join(f'{f}: {r}' for f, r in dropped.items())}); "
                        "set clusters.features to columns of the customer table that have values")
    return kept, dropped


def feature_matrix(customers: pd.DataFrame, features: list[str], log_features: list[str],
                   scaler: str = "robust") -> pd.DataFrame:
    """The scaled feature matrix (one row per customer, same index).

    >>> c = pd.DataFrame({"f": [1, 2, 3, 100], "p": [0.1, 0.5, 0.9, 0.5]})
    >>> feature_matrix(c, ["f", "p"], ["f"]).round(2)["p"].tolist()
    [-2.0, 0.0, 2.0, 0.0]
    """
    _check_columns(customers, features)
    raw = customers[features].astype(float)
    if raw.isna().any().any():
        bad = raw.columns[raw.isna().any()].tolist()
        raise DataError(f"clustering features {bad} have missing values for {int(raw.isna().any(axis=1).sum())} customers "
                        "(a feature missing for every customer is left out by usable_features; one missing for some "
                        "is an error of the stage that made it)")
    logged = raw.apply(lambda col: np.log1p(col.clip(lower=0)) if col.name in log_features else col)
    model = RobustScaler() if scaler == "robust" else StandardScaler()
    scaled = model.fit_transform(logged.to_numpy())
    return pd.DataFrame(np.nan_to_num(scaled), index=customers.index, columns=features)


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def scan_k(x: pd.DataFrame, k_min: int, k_max: int, seed: int = 42, sample_size: int = 5000) -> pd.DataFrame:
    """Inertia, silhouette and Calinski-Harabasz of k-means for k = ``k_min`` .. ``k_max``.

    The choice of k is made on a seeded sample of ``sample_size`` customers
    (all of them when there are fewer), which keeps the scan fast on large
    customer bases; the chosen k is then fitted on everyone. k is capped at the
    number of distinct customers minus one (a silhouette needs at least two
    clusters and one more point than clusters).
    """
    sample = x.to_numpy()[_sample(len(x), sample_size, seed)]
    distinct = len(np.unique(sample, axis=0))
    top = min(k_max, distinct - 1)
    if top < max(k_min, 2):
        raise DataError(f"cannot compare cluster counts {k_min}..{k_max}: only {distinct} distinct customers")
    rows = []
    for k in range(max(k_min, 2), top + 1):
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(sample)
        labels = km.labels_
        two = len(np.unique(labels)) > 1
        rows.append({"k": k, "inertia": float(km.inertia_),
                     "silhouette": float(silhouette_score(sample, labels)) if two else np.nan,
                     "calinski_harabasz": float(calinski_harabasz_score(sample, labels)) if two else np.nan})
    return pd.DataFrame(rows)


def best_k(scan: pd.DataFrame) -> int:
    """The k with the highest silhouette (the smaller k on a tie).

    >>> best_k(pd.DataFrame({"k": [2, 3, 4], "silhouette": [0.3, 0.5, 0.5]}))
    3
    """
    return int(scan.sort_values(["silhouette", "k"], ascending=[False, True]).iloc[0]["k"])


@dataclass(frozen=True)
class KChoice:
    """The number of clusters, the scan behind it and a sentence saying how it was chosen."""

    k: int
    scan: pd.DataFrame
    k_silhouette: int | None
    k_calinski_harabasz: int | None
    note: str

    @property
    def silhouette(self) -> float | None:
        """The scanned silhouette at the chosen k (None when k was not scanned)."""
        row = self.scan.loc[self.scan["k"] == self.k, "silhouette"] if len(self.scan) else pd.Series(dtype=float)
        return float(row.iloc[0]) if len(row) and np.isfinite(row.iloc[0]) else None


def choose_k(x: pd.DataFrame, k_min: int, k_max: int, k: int | None = None, seed: int = 42,
             sample_size: int = 5000) -> KChoice:
    """Scan k (:func:`scan_k`) and take the silhouette's choice, or ``k`` when given (``clusters.k``).

    With fewer distinct customers than the range needs, the scan starts at 2
    (the note says so); with fewer than three distinct customers there is
    nothing to compare and everyone is one cluster.
    """
    if k is not None:
        check_k(k, len(x))
    distinct = len(np.unique(x.to_numpy()[_sample(len(x), sample_size, seed)], axis=0))
    empty = pd.DataFrame(columns=["k", "inertia", "silhouette", "calinski_harabasz"], dtype=float)
    if distinct < 3:
        note = f"only {distinct} distinct customer(s) on the clustering features: no k can be compared"
        chosen = k if k is not None else 1
        return KChoice(chosen, empty, None, None, note + ("; using k = 1" if k is None else f"; using k = {k} (set by clusters.k)"))
    lowered = ""
    if min(k_max, distinct - 1) < max(k_min, 2):
        lowered = f" (clusters.k_min lowered to 2: only {distinct} distinct customers)"
        k_min = 2
    scan = scan_k(x, k_min, k_max, seed, sample_size)
    k_sil = best_k(scan) if scan["silhouette"].notna().any() else None
    ch = scan.dropna(subset=["calinski_harabasz"])
    k_ch = int(ch.loc[ch["calinski_harabasz"].idxmax(), "k"]) if len(ch) else None
    chosen = k if k is not None else (k_sil or int(scan["k"].iloc[0]))
    note = (f"silhouette prefers k = {k_sil}, Calinski-Harabasz prefers k = {k_ch}; using k = {chosen}"
            + (" (set by clusters.k)" if k is not None else " (the silhouette's choice)") + lowered)
    return KChoice(chosen, scan, k_sil, k_ch, note)


#: Above this many customers, k-means runs mini-batch and the Gaussian mixture is fitted on a sample.
LARGE = 200_000


def _renumber(labels: np.ndarray, value: pd.Series) -> np.ndarray:
    """Renumber clusters 0, 1, ... by decreasing mean ``value`` (then size), so labels do not depend on the solver."""
    frame = pd.DataFrame({"label": labels, "value": value.to_numpy()})
    stats = frame.groupby("label")["value"].agg(["mean", "size"]).sort_values(["mean", "size"], ascending=False)
    mapping = np.zeros(int(np.max(labels)) + 1, dtype=int)
    mapping[stats.index.to_numpy()] = np.arange(len(stats))
    return mapping[labels]


def check_k(k: int, n: int) -> None:
    """A clear error when more clusters are asked for than there are customers."""
    if k > n:
        raise DataError(f"asked for {k} clusters but there are only {n} customers; lower clusters.k")
    if k < 1:
        raise DataError("the number of clusters must be at least 1")


def fit_kmeans(x: pd.DataFrame, k: int, value: pd.Series, seed: int = 42) -> np.ndarray:
    """k-means labels, numbered by decreasing mean ``value`` (e.g. spend). k = 1 puts everyone in cluster 0."""
    check_k(k, len(x))
    if k == 1:
        return np.zeros(len(x), dtype=int)
    data = x.to_numpy()
    if len(x) > LARGE:  # mini-batch k-means: memory and time grow with the batch, not the customer base
        km = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=8192, random_state=seed).fit(data)
    else:
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(data)
    return _renumber(km.labels_, value)  # MiniBatchKMeans too: labels of every customer, computed at the end of fit


def fit_gmm(x: pd.DataFrame, k: int, value: pd.Series, seed: int = 42) -> np.ndarray:
    """Gaussian mixture labels (full covariances), numbered like :func:`fit_kmeans`.

    Above :data:`LARGE` customers the mixture is fitted on a seeded sample of
    that size and then labels everyone.
    """
    check_k(k, len(x))
    if k == 1:
        return np.zeros(len(x), dtype=int)
    data = x.to_numpy()
    gmm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, reg_covar=1e-4, n_init=2)
    gmm.fit(data[_sample(len(data), LARGE, seed)])
    return _renumber(gmm.predict(data), value)


def bootstrap_stability(x: pd.DataFrame, k: int, reference: np.ndarray, n: int = 20, seed: int = 42,
                        sample_size: int = 5000) -> np.ndarray:
    """Adjusted Rand index between the reference labels and k-means refitted on bootstrap samples.

    Each refit sees a bootstrap sample (drawn with replacement, at most
    ``sample_size`` customers) and then labels every customer; ARI near 1 means
    the clusters are a property of the data, near 0 that they are an accident
    of the sample.
    """
    if k == 1 or n == 0:
        return np.ones(n)
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n):
        idx = rng.choice(len(x), size=min(len(x), sample_size), replace=True)
        km = KMeans(n_clusters=k, n_init=3, random_state=int(rng.integers(1 << 31))).fit(x.to_numpy()[idx])
        scores.append(adjusted_rand_score(reference, km.predict(x.to_numpy())))
    return np.array(scores)


def is_stable(stability: np.ndarray) -> bool | None:
    """Whether the bootstrap refits reproduce the clusters (mean ARI at least :data:`STABLE_ARI`); None: no refits.

    >>> is_stable(np.array([0.9, 0.85])), is_stable(np.array([0.9, 0.5])), is_stable(np.array([]))
    (True, False, None)
    """
    return None if len(stability) == 0 else bool(stability.mean() >= STABLE_ARI)


def profile(customers: pd.DataFrame, labels: np.ndarray, features: list[str]) -> pd.DataFrame:
    """Per cluster: customers, shares of customers and revenue, and the mean of each feature."""
    frame = customers.assign(cluster=labels)
    g = frame.groupby("cluster", sort=True)
    out = pd.DataFrame({"customers": g.size()})
    out["customer_share"] = out["customers"] / len(frame)
    revenue = frame["monetary_total"].sum()
    out["revenue_share"] = g["monetary_total"].sum() / revenue if revenue > 0 else np.nan
    return out.join(g[features].mean())


#: Words for a cluster whose median is high or low on a feature (relative to all customers).
NAME_WORDS = {
    "monetary_total": ("high-spend", "low-spend"),
    "clv": ("high-potential", "low-potential"),
    "frequency": ("frequent", "one-off"),
    "recency_days": ("lapsed", "recent"),     # high recency_days = long ago
    "p_alive": ("active", "fading"),
    "tenure_days": ("long-standing", "new"),
}


def name_clusters(customers: pd.DataFrame, labels: np.ndarray, features: list[str], high: float = 0.7,
                  low: float = 0.3, words: int = 3) -> dict[int, str]:
    """A readable name for each cluster, derived from its profile.

    For each feature, the cluster's median is placed among all customers (its
    percentile). Features where the cluster sits above ``high`` or below
    ``low`` give a word (from :data:`NAME_WORDS`); the ``words`` most extreme
    words, in a fixed order of importance, make the name. A cluster that is
    ordinary on every feature is "typical". Duplicate names get a number.

    >>> c = pd.DataFrame({"monetary_total": [1, 2, 3, 100, 200, 300.0], "frequency": [1, 1, 1, 9, 8, 7]})
    >>> name_clusters(c, [1, 1, 1, 0, 0, 0], ["monetary_total", "frequency"])
    {0: 'high-spend, frequent', 1: 'low-spend, one-off'}
    """
    frame = customers.assign(cluster=labels)
    names: dict[int, str] = {}
    for label, group in frame.groupby("cluster", sort=True):
        scored = []
        for order, feature in enumerate(f for f in NAME_WORDS if f in features):
            pct = float((customers[feature] < group[feature].median()).mean()
                        + 0.5 * (customers[feature] == group[feature].median()).mean())
            if pct >= high or pct <= low:
                word = NAME_WORDS[feature][0 if pct >= high else 1]
                scored.append((abs(pct - 0.5), -order, word))
        top = sorted(scored, reverse=True)[:words]
        chosen = [w for _, _, w in sorted(top, key=lambda t: -t[1])]
        names[int(label)] = ", ".join(chosen) or "typical"
    seen: dict[str, int] = {}
    for label in sorted(names):
        base = names[label]
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:
            names[label] = f"{base} ({seen[base]})"
    return names


def agreement(clusters: pd.Series, business: pd.Series) -> pd.DataFrame:
    """For each cluster, the business segment most of its customers are in, and how many.

    >>> agreement(pd.Series(["x", "x", "y"]), pd.Series(["a", "a", "b"])).values.tolist()
    [['a', 1.0], ['b', 1.0]]
    """
    table = pd.crosstab(clusters, business)
    share = table.div(table.sum(axis=1), axis=0)
    return pd.DataFrame({"main_segment": share.idxmax(axis=1), "share": share.max(axis=1).round(3)})


def strength(share: float) -> str:
    """How a cluster relates to its main business segment, from the share of its customers in it.

    >>> strength(0.6), strength(0.35), strength(0.2)
    ('mostly', 'partly', 'spread over several segments; biggest:')
    """
    return "mostly" if share >= MOSTLY_SHARE else "partly" if share >= PARTLY_SHARE else "spread over several segments; biggest:"


def caveats(labels: np.ndarray, choice: KChoice, ari_methods: float | None, stability: np.ndarray,
            dropped: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Sentences, from this run's numbers, for when the clusters are weaker than their scores suggest.

    Codes: ``features_dropped``, ``single_cluster``, ``small_cluster`` (the
    smallest cluster below :data:`SMALL_CLUSTER_SHARE` of customers, with the
    silhouette it inflates), ``methods_disagree`` (k-means vs Gaussian mixture
    ARI below :data:`METHODS_AGREE_ARI`), ``unstable`` (bootstrap mean ARI below
    :data:`STABLE_ARI`).
    """
    out = []
    if dropped:
        out.append(caveat("features_dropped", "Clustered without " + "; ".join(
            f"{f} ({why})" for f, why in dropped.items()) + "."))
    k = int(len(np.unique(labels)))
    if k <= 1:
        out.append(caveat("single_cluster", f"All {len(labels):,} customers form one cluster ({choice.note}): "
                                               "nothing was discovered."))
        return out
    sizes = np.bincount(labels)
    sizes = sizes[sizes > 0]
    smallest = sizes.min() / len(labels)
    if smallest < SMALL_CLUSTER_SHARE:
        sil = choice.silhouette
        out.append(caveat("small_cluster", (
            f"The smallest of the {k} clusters holds only {smallest:.1%} of customers ({int(sizes.min()):,} of "
            f"{len(labels):,})" + (f": a silhouette of {sil:.3f} then mostly says that these few customers sit far "
                                   f"from everyone else, not that the customer base falls into {k} clear groups"
                                   if sil is not None and sil >= INFLATED_SILHOUETTE else "") + ".")))
    if ari_methods is not None and np.isfinite(ari_methods) and ari_methods < METHODS_AGREE_ARI:
        out.append(caveat("methods_disagree", (
            f"k-means and the Gaussian mixture agree only at ARI {ari_methods:.3f} (below {METHODS_AGREE_ARI}): the "
            "groups depend on the method; read them as one possible cut, not as structure in the data.")))
    if is_stable(stability) is False:
        out.append(caveat("unstable", (
            f"k-means refitted on {len(stability)} bootstrap samples reproduces its clusters only at mean ARI "
            f"{stability.mean():.3f} (below {STABLE_ARI}): the clusters are partly an accident of the sample.")))
    return out
