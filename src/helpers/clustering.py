"""Discovering segments: k-means and a Gaussian mixture on customer features.

Stage 06. Business rules (RFM segments, value tiers) say which groups we
*expect*; clustering asks which groups the data *has*, with no labels. The
steps, each a function here:

1. :func:`feature_matrix` - chosen features, ``log(1 + x)`` for skewed ones,
   robust scaling (median and interquartile range, so a few huge spenders do
   not set the scale);
2. :func:`scan_k` - k-means for each k in a range on a sample of customers,
   scored by inertia (elbow), silhouette and Calinski-Harabasz; :func:`best_k`
   takes the highest silhouette;
3. :func:`fit_kmeans` / :func:`fit_gmm` - the two methods, with labels
   renumbered by cluster value so reruns give identical labels;
4. :func:`bootstrap_stability` - refit on bootstrap samples, adjusted Rand index
   against the full-data labels;
5. :func:`profile` and :func:`name_clusters` - sizes, revenue shares, feature
   means, and a readable name derived from each profile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import RobustScaler, StandardScaler

from threadpoolctl import threadpool_limits

from helpers.errors import DataError

# k-means' OpenMP threads slow down many times over when another process holds a core (as in helpers.classify)
threadpool_limits(limits=1, user_api="openmp")


def feature_matrix(customers: pd.DataFrame, features: list[str], log_features: list[str],
                   scaler: str = "robust") -> pd.DataFrame:
    """The scaled feature matrix (one row per customer, same index).

    >>> c = pd.DataFrame({"f": [1, 2, 3, 100], "p": [0.1, 0.5, 0.9, 0.5]})
    >>> feature_matrix(c, ["f", "p"], ["f"]).round(2)["p"].tolist()
    [-2.0, 0.0, 2.0, 0.0]
    """
    missing = [f for f in features if f not in customers.columns]
    if missing:
        raise DataError(f"clustering features {missing} are not columns of the customer table; "
                        f"columns: {sorted(customers.columns)}")
    raw = customers[features].astype(float)
    if raw.isna().any().any():
        bad = raw.columns[raw.isna().any()].tolist()
        raise DataError(f"clustering features {bad} have missing values for {int(raw.isna().any(axis=1).sum())} customers")
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
        return _renumber(km.labels_, value)  # labels of every customer, computed at the end of fit
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(data)
    return _renumber(km.labels_, value)


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
