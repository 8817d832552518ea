"""How many clusters: k-means scanned over a range of k, scored by silhouette AND bootstrap stability.

Part of stage 06 (re-exported by :mod:`helpers.clustering`). The silhouette alone favours k = 2 on
skewed customer data (the strongest split is almost always "bought once" against "came back"), which
teaches little. The rule of :func:`pick_k`, documented once here:

1. only k in ``clusters.k_min`` .. ``clusters.k_max`` (default 3 .. 8) can be chosen; k = 2 is scanned
   as a reference row when ``k_min`` is above 2, so the table shows what the range gave up;
2. among those k whose bootstrap stability (mean adjusted Rand index of refits, :func:`bootstrap_stability`)
   reaches :data:`STABLE_ARI`, the one with the highest silhouette (the smaller k on a tie);
3. when no k in the range is stable, the most stable one (its note says so); without refits
   (``clusters.bootstrap: 0``), the highest silhouette.

Every sample and fit is seeded (``clusters.seed``): the same data give the same scan and the same k.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, pairwise_distances, silhouette_score

from helpers.errors import DataError

#: A bootstrap mean ARI at least this high makes clusters "stable" (eligible in :func:`pick_k`; below it,
#: the ``unstable`` caveat of :func:`helpers.clustering.caveats`).
STABLE_ARI = 0.8
#: The k scanned below ``k_min`` as a reference (not eligible): what the silhouette alone would have picked.
REFERENCE_K = 2
#: The columns of a scan.
SCAN_COLUMNS = ["k", "inertia", "silhouette", "calinski_harabasz", "stability", "eligible"]


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def _refit_aris(data: np.ndarray, k: int, reference: np.ndarray, n: int, seed: int, sample_size: int) -> np.ndarray:
    """ARIs of ``n`` k-means refits on bootstrap samples of ``data`` against ``reference`` (labels of ``data``)."""
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n):
        idx = rng.choice(len(data), size=min(len(data), sample_size), replace=True)
        km = KMeans(n_clusters=k, n_init=3, random_state=int(rng.integers(1 << 31))).fit(data[idx])
        scores.append(adjusted_rand_score(reference, km.predict(data)))
    return np.array(scores)


def check_k(k: int, n: int) -> None:
    """A clear error when more clusters are asked for than there are customers."""
    if k > n:
        raise DataError(f"asked for {k} clusters but there are only {n} customers; lower clusters.k")
    if k < 1:
        raise DataError("the number of clusters must be at least 1")


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
    return _refit_aris(x.to_numpy(), k, reference, n, seed, sample_size)


def is_stable(stability: np.ndarray) -> bool | None:
    """Whether the bootstrap refits reproduce the clusters (mean ARI at least :data:`STABLE_ARI`); None: no refits.

    >>> is_stable(np.array([0.9, 0.85])), is_stable(np.array([0.9, 0.5])), is_stable(np.array([]))
    (True, False, None)
    """
    return None if len(stability) == 0 else bool(stability.mean() >= STABLE_ARI)


def scan_k(x: pd.DataFrame, k_min: int, k_max: int, seed: int = 42, sample_size: int = 5000,
           refits: int = 0) -> pd.DataFrame:
    """Inertia, silhouette, Calinski-Harabasz and bootstrap stability of k-means for k = ``k_min`` .. ``k_max``.

    The scan runs on a seeded sample of ``sample_size`` customers (all of them
    when there are fewer), which keeps it fast on large customer bases; the
    chosen k is then fitted on everyone. ``stability`` is the mean ARI of
    ``refits`` bootstrap refits against the sample's fit (NaN without refits).
    When ``k_min`` is above :data:`REFERENCE_K`, that k is scanned too with
    ``eligible`` false. k is capped at the number of distinct customers minus
    one (a silhouette needs at least two clusters and one more point than clusters).
    """
    sample = x.to_numpy()[_sample(len(x), sample_size, seed)]
    distinct = len(np.unique(sample, axis=0))
    top = min(k_max, distinct - 1)
    if top < max(k_min, 2):
        raise DataError(f"cannot compare cluster counts {k_min}..{k_max}: only {distinct} distinct customers")
    distances = pairwise_distances(sample)  # once for every k's silhouette (at most sample_size squared)
    rows = []
    first = max(k_min, 2)
    for k in ([REFERENCE_K] if first > REFERENCE_K else []) + list(range(first, top + 1)):  # the reference, the range
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(sample)
        labels = km.labels_
        two = len(np.unique(labels)) > 1
        stability = _refit_aris(sample, k, labels, refits, seed, sample_size).mean() if refits else np.nan
        rows.append({"k": k, "inertia": float(km.inertia_),
                     "silhouette": float(silhouette_score(distances, labels, metric="precomputed")) if two else np.nan,
                     "calinski_harabasz": float(calinski_harabasz_score(sample, labels)) if two else np.nan,
                     "stability": float(stability), "eligible": k >= k_min})
    return pd.DataFrame(rows, columns=SCAN_COLUMNS)


def best_k(scan: pd.DataFrame) -> int:
    """The k with the highest silhouette (the smaller k on a tie).

    >>> best_k(pd.DataFrame({"k": [2, 3, 4], "silhouette": [0.3, 0.5, 0.5]}))
    3
    """
    return int(scan.sort_values(["silhouette", "k"], ascending=[False, True]).iloc[0]["k"])


def pick_k(scan: pd.DataFrame) -> tuple[int, str]:
    """The k the rule of this module picks from a scan, and the rule's reason in words.

    >>> scan = pd.DataFrame({"k": [2, 3, 4, 5], "silhouette": [0.6, 0.5, 0.45, 0.4],
    ...                      "stability": [0.99, 0.7, 0.9, 0.95], "eligible": [False, True, True, True]})
    >>> pick_k(scan)
    (4, 'the highest silhouette among the k in range whose stability is at least 0.8')
    """
    eligible = scan[scan["eligible"].astype(bool) & scan["silhouette"].notna()]
    if eligible.empty:
        eligible = scan[scan["silhouette"].notna()]
    if eligible["stability"].isna().all():
        return best_k(eligible), "the highest silhouette (no bootstrap refits: clusters.bootstrap is 0)"
    stable = eligible[eligible["stability"] >= STABLE_ARI]
    if len(stable):
        return best_k(stable), f"the highest silhouette among the k in range whose stability is at least {STABLE_ARI}"
    top = eligible.sort_values(["stability", "k"], ascending=[False, True]).iloc[0]
    return int(top["k"]), f"the most stable k: no k in range reaches a stability of {STABLE_ARI}"


@dataclass(frozen=True)
class KChoice:
    """The number of clusters, the scan behind it and a sentence saying how it was chosen."""

    k: int
    scan: pd.DataFrame
    k_silhouette: int | None
    k_calinski_harabasz: int | None
    note: str
    rule: str = ""
    k_stable: int | None = None  # the most stable k in range
    k_reference: int | None = field(default=None)  # the silhouette's choice over every scanned k, range or not

    def _row(self, k: int | None) -> pd.Series | None:
        rows = self.scan.loc[self.scan["k"] == k] if k is not None and len(self.scan) else self.scan.iloc[:0]
        return rows.iloc[0] if len(rows) else None

    def score(self, k: int | None, column: str) -> float | None:
        """The scanned ``column`` (e.g. silhouette, stability) at ``k`` (None when k was not scanned or it is NaN)."""
        row = self._row(k)
        value = None if row is None or column not in row else row[column]
        return float(value) if value is not None and np.isfinite(value) else None

    @property
    def silhouette(self) -> float | None:
        """The scanned silhouette at the chosen k (None when k was not scanned)."""
        return self.score(self.k, "silhouette")

    def given_up(self) -> str:
        """What the choice gave up, in numbers: the silhouette's own pick and the most stable k against the chosen one."""
        sil, stab = self.score(self.k, "silhouette"), self.score(self.k, "stability")
        if sil is None:
            return f"k = {self.k} was not compared with other k"
        parts = [f"k = {self.k} has silhouette {sil:.3f}" + (f" and stability {stab:.3f}" if stab is not None else "")]
        ref = self.k_reference
        if ref is not None and ref != self.k:
            rs, rst = self.score(ref, "silhouette"), self.score(ref, "stability")
            where = "" if self._row(ref)["eligible"] else ", outside the range"
            parts.append(f"the silhouette alone would take k = {ref}{where} (silhouette {rs:.3f}"
                         + (f", stability {rst:.3f}" if rst is not None else "") + f"): the choice gives up "
                         f"{rs - sil:.3f} of silhouette for {abs(self.k - ref)} {'more' if self.k > ref else 'fewer'} "
                         f"cluster{'s' if abs(self.k - ref) > 1 else ''}")
        if self.k_stable is not None and self.k_stable != self.k and stab is not None:
            parts.append(f"the most stable k in range is {self.k_stable} (stability "
                         f"{self.score(self.k_stable, 'stability'):.3f}, silhouette {self.score(self.k_stable, 'silhouette'):.3f})")
        return "; ".join(parts)


def choose_k(x: pd.DataFrame, k_min: int, k_max: int, k: int | None = None, seed: int = 42,
             sample_size: int = 5000, refits: int = 10) -> KChoice:
    """Scan k (:func:`scan_k`, with ``refits`` bootstrap refits per k) and take :func:`pick_k`'s choice, or ``k`` (``clusters.k``).

    With fewer distinct customers than the range needs, the scan starts at 2
    (the note says so); with fewer than three distinct customers there is
    nothing to compare and everyone is one cluster.
    """
    if k is not None:
        check_k(k, len(x))
    distinct = len(np.unique(x.to_numpy()[_sample(len(x), sample_size, seed)], axis=0))
    empty = pd.DataFrame(columns=SCAN_COLUMNS, dtype=float)
    if distinct < 3:
        note = f"only {distinct} distinct customer(s) on the clustering features: no k can be compared"
        chosen = k if k is not None else 1
        return KChoice(chosen, empty, None, None, note + ("; using k = 1" if k is None else f"; using k = {k} (set by clusters.k)"))
    lowered = ""
    if min(k_max, distinct - 1) < max(k_min, 2):
        lowered = f" (clusters.k_min lowered to 2: only {distinct} distinct customers)"
        k_min = 2
    scan = scan_k(x, k_min, k_max, seed, sample_size, refits)
    in_range = scan[scan["eligible"]]
    k_sil = best_k(in_range) if in_range["silhouette"].notna().any() else None
    ch = in_range.dropna(subset=["calinski_harabasz"])
    k_ch = int(ch.loc[ch["calinski_harabasz"].idxmax(), "k"]) if len(ch) else None
    stab = in_range.dropna(subset=["stability"])
    k_stable = int(stab.sort_values(["stability", "k"], ascending=[False, True]).iloc[0]["k"]) if len(stab) else None
    k_ref = best_k(scan) if scan["silhouette"].notna().any() else None
    picked, rule = pick_k(scan) if k_sil is not None else (int(scan["k"].iloc[-1]), "the only k scanned")
    chosen = k if k is not None else picked
    note = (f"in k = {k_min}..{int(scan['k'].max())}: silhouette prefers k = {k_sil}, Calinski-Harabasz k = {k_ch}, "
            f"stability k = {k_stable}; using k = {chosen}"
            + (" (set by clusters.k)" if k is not None else f" ({rule})") + lowered)
    return KChoice(chosen, scan, k_sil, k_ch, note, rule if k is None else "set by clusters.k", k_stable, k_ref)
