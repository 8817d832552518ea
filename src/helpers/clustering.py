"""Discovering segments: k-means and a Gaussian mixture on customer features.

Stage 06. Business rules (RFM segments, value tiers) say which groups we *expect*; clustering asks which
groups the data *has*, with no labels. The steps, each a function here:

1. :func:`usable_features` leaves out features empty for every customer (``clv`` and ``p_alive`` when
   stage 05 made no forecast); :func:`feature_matrix` - chosen features, ``log(1 + x)`` for skewed ones,
   robust scaling (median and interquartile range, so a few huge spenders do not set the scale);
2. :func:`scan_k` / :func:`choose_k` (in :mod:`helpers.kchoice`) - k-means for each k in a range on a
   sample of customers, scored by inertia (elbow), silhouette, Calinski-Harabasz and bootstrap
   stability; the rule: the highest silhouette among the stable k in ``clusters.k_min .. k_max``;
3. :func:`fit_kmeans` / :func:`fit_gmm` - the two methods, with labels renumbered by cluster value so
   reruns give identical labels;
4. :func:`bootstrap_stability` (:mod:`helpers.kchoice`) - refit on bootstrap samples, adjusted Rand index
   against the full-data labels;
5. :func:`profile` and :func:`name_clusters` (in :mod:`helpers.clusternames`) - sizes, revenue shares,
   relationship type, feature means, and a name from what sets each cluster apart, relative and absolute;
6. :func:`agreement` and :func:`strength` - how the clusters meet the business segments;
7. :func:`caveats` - sentences from this run's numbers when the result is weaker than its scores suggest
   (a tiny cluster behind a high silhouette, methods that disagree, clusters that do not survive resampling).

The stage (:mod:`helpers.stages.cluster`) runs the fits on one thread (OpenMP and BLAS, :func:`one_thread`).
The names of :mod:`helpers.kchoice` and :mod:`helpers.clusternames` are re-exported here (``from helpers import clustering``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import RobustScaler, StandardScaler
from threadpoolctl import threadpool_limits

from helpers.caveats import caveat
from helpers.clusternames import (ABSOLUTE, NAME_WORDS, TYPE_SHARE, TYPES, name_clusters, one_off_share,  # noqa: F401
                                  profile, relationship)
from helpers.errors import DataError
from helpers.names import crosstab
from helpers.kchoice import (STABLE_ARI, KChoice, _sample, best_k, bootstrap_stability, check_k,  # noqa: F401
                             choose_k, is_stable, pick_k, scan_k)


#: Columns stage 05 leaves empty (all NaN) when it makes no CLV forecast.
FORECAST_COLUMNS = ("p_alive", "expected_purchases", "expected_spend", "clv")

#: Caveat thresholds (``clusters.json["caveats"]``): a smallest cluster below SMALL_CLUSTER_SHARE of the
#: customers (a high silhouette may only say that a few customers sit far from the rest); k-means and the
#: Gaussian mixture agreeing below METHODS_AGREE_ARI (the groups depend on the method); a bootstrap mean
#: ARI below STABLE_ARI (the clusters are partly an accident of the sample; defined in helpers.kchoice).
SMALL_CLUSTER_SHARE, METHODS_AGREE_ARI = 0.02, 0.2
#: A silhouette at least this high next to a tiny cluster is called inflated by it.
INFLATED_SILHOUETTE = 0.5
#: A cluster with at least MOSTLY_SHARE of its customers in one business segment is "mostly" that segment,
#: with at least PARTLY_SHARE "partly"; below, it is spread over several segments.
MOSTLY_SHARE, PARTLY_SHARE = 0.6, 0.35


def one_thread() -> threadpool_limits:
    """A context manager running scikit-learn's OpenMP code (k-means, gradient boosting) and BLAS on one thread.

    Their threads spin while they wait: on a 2-core machine shared with another busy process that
    made stage 07 fifty times slower, and BLAS's made the Gaussian mixture of 200,000 customers
    2.6 times slower. The stage functions wrap their fits in it (``with one_thread():``).
    """
    return threadpool_limits(limits=1)


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


#: Above this many customers to fit on, k-means runs mini-batch (memory and time grow with the batch).
LARGE = 200_000


def _renumber(labels: np.ndarray, value: pd.Series) -> np.ndarray:
    """Renumber clusters 0, 1, ... by decreasing mean ``value`` (then size), so labels do not depend on the solver."""
    frame = pd.DataFrame({"label": labels, "value": value.to_numpy()})
    stats = frame.groupby("label")["value"].agg(["mean", "size"]).sort_values(["mean", "size"], ascending=False)
    mapping = np.zeros(int(np.max(labels)) + 1, dtype=int)
    mapping[stats.index.to_numpy()] = np.arange(len(stats))
    return mapping[labels]


def fit_kmeans(x: pd.DataFrame, k: int, value: pd.Series, seed: int = 42, fit_on: np.ndarray | None = None) -> np.ndarray:
    """k-means labels, numbered by decreasing mean ``value`` (e.g. spend). k = 1 puts everyone in cluster 0.

    ``fit_on`` (a boolean mask of the rows, :mod:`helpers.sampling`) fits on those customers only and then
    labels everyone (``predict``); above :data:`LARGE` customers to fit on, k-means runs mini-batch.
    """
    check_k(k, len(x))
    if k == 1:
        return np.zeros(len(x), dtype=int)
    data = x.to_numpy()
    train = data if fit_on is None else data[fit_on]
    if len(train) > LARGE:  # mini-batch k-means: memory and time grow with the batch, not the customer base
        km = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=8192, random_state=seed).fit(train)
    else:
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(train)
    # labels_: of every customer fitted on (MiniBatchKMeans computes them at the end of fit too)
    return _renumber(km.labels_ if fit_on is None else km.predict(data), value)


def fit_gmm(x: pd.DataFrame, k: int, value: pd.Series, seed: int = 42, fit_on: np.ndarray | None = None) -> np.ndarray:
    """Gaussian mixture labels (full covariances), numbered like :func:`fit_kmeans`.

    With ``fit_on`` the mixture is fitted on those customers and then labels everyone.
    """
    check_k(k, len(x))
    if k == 1:
        return np.zeros(len(x), dtype=int)
    data = x.to_numpy()
    gmm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, reg_covar=1e-4, n_init=2)
    gmm.fit(data if fit_on is None else data[fit_on])
    return _renumber(gmm.predict(data), value)


def agreement(clusters: pd.Series, business: pd.Series) -> pd.DataFrame:
    """For each cluster, the business segment most of its customers are in, and how many.

    >>> agreement(pd.Series(["x", "x", "y"]), pd.Series(["a", "a", "b"])).values.tolist()
    [['a', 1.0], ['b', 1.0]]
    """
    table = crosstab(clusters, business)  # pd.crosstab's table, counted by bincount (stage 06 at 10M)
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
