"""The diagnostics users of BTYD tools expect: holdout purchases by calibration frequency and recency, spend fit.

**Holdout purchases by calibration frequency and by recency.** The cohort's
customers grouped by what they did in the calibration period, each group's mean
actual holdout purchases beside the model's mean conditional expectation
(the R BTYD walkthrough's ``PlotFreqVsConditionalExpectedFrequency`` and
``PlotRecVsConditionalExpectedFrequency``; lifetimes'
``plot_calibration_purchases_vs_holdout_purchases`` with ``kind="frequency_cal"``
or ``"recency_cal"``). lifetimes groups by the exact recency value and keeps
the first ``n`` of them, so on weekly data it shows a handful of customers who
bought within days; BTYD bins by whole periods (``floor(t.x)``) and drops
recency 0. Here (:func:`holdout_by_recency`) one-time buyers are a group of their own (their recency
is 0 by definition, not a short history) and the repeat buyers fall in
:data:`RECENCY_BINS` equal-width bins of recency from 0 to the calibration's
longest customer age, so every group holds enough customers to read.

**Gamma-Gamma: expected vs actual spend.** The distribution of the repeat
buyers' observed mean spend per repeat purchase beside the one the fitted
Gamma-Gamma implies for customers with the same numbers of purchases (the
BTYD walkthrough's ``spend.plot.average.transaction.value`` and CLVTools'
``plot(gg)``, which weight the model's density by the actual numbers of
transactions). The implied distribution is exact, no simulation: given ``x``
purchases, a mean spend ``m`` has ``x m / (x m + v) ~ Beta(p x, q)``, so its
cumulative distribution is a regularised incomplete beta function, and the
population's is the average over the customers (:func:`spend_cdf`). The fit is
measured by the Kolmogorov-Smirnov distance between the two distributions and
by their quantiles (:func:`spend_check`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

#: Calibration frequencies from this one on are one group ("7+"), as in BTYD's ``censor = 7``.
FREQUENCY_CENSOR = 7
#: Equal-width recency bins for the repeat buyers (one-time buyers are a group of their own).
RECENCY_BINS = 8
#: The group of the customers who made no repeat purchase in calibration.
ONE_TIME = "one-time"
#: The quantiles of the spend check's table.
SPEND_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
#: Gamma-Gamma fits the spend distribution (approximately) when the KS distance is at most this: the two
#: cumulative distributions are nowhere more than 10 percentage points of customers apart (a practical
#: tolerance: at thousands of customers the test's critical value flags departures too small to matter).
SPEND_KS_TOLERANCE = 0.1
#: Beyond this many repeat buyers the model's distribution is evaluated on a log grid of this many points
#: and interpolated at the observed values (it is smooth; the KS distance changes by less than 1e-4).
SPEND_GRID = 4000
#: The 5% critical value of the KS distance is this over sqrt(customers) (known parameters; conservative when
#: the parameters are estimated from the same customers, as here).
KS_CRITICAL_5PCT = 1.358


def _by(groups: pd.Series, calhold: pd.DataFrame, predicted: pd.Series) -> pd.DataFrame:
    """Customers, mean actual holdout purchases and the model's mean per group, in the groups' order."""
    frame = pd.DataFrame({"group": groups, "actual": calhold["frequency_holdout"],
                          "model": predicted.reindex(calhold.index)})
    table = frame.groupby("group", observed=True, sort=True).agg(
        customers=("actual", "size"), actual=("actual", "mean"), model=("model", "mean"))
    return table


def frequency_groups(calhold: pd.DataFrame, censor: int = FREQUENCY_CENSOR) -> pd.Series:
    """Each customer's group by calibration repeat purchases: "0", "1", ... and "``censor``+" (ordered categories).

    >>> frequency_groups(pd.DataFrame({"frequency": [0.0, 1, 9]}), 2).tolist()
    ['0', '1', '2+']
    """
    f = calhold["frequency"].clip(upper=censor).astype(int)
    labels = [str(k) for k in range(censor)] + [f"{censor}+"]
    return pd.Series(pd.Categorical.from_codes(f.to_numpy(), categories=labels, ordered=True), index=calhold.index,
                     name="calibration_frequency")


def holdout_by_frequency(calhold: pd.DataFrame, predicted: pd.Series, censor: int = FREQUENCY_CENSOR) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases by calibration repeat purchases (``censor`` and more: one group).

    ``calhold`` is :func:`helpers.clv.summary.calibration_holdout`'s table,
    ``predicted`` each customer's expected holdout purchases. Index: "0", "1", ... "7+".

    >>> cal = pd.DataFrame({"frequency": [0.0, 1, 9], "recency": [0.0, 2, 5], "T": [6.0] * 3,
    ...     "frequency_holdout": [0.0, 1, 3]})
    >>> holdout_by_frequency(cal, pd.Series([0.1, 0.5, 2.0]), 2)["actual"].to_dict()
    {'0': 0.0, '1': 1.0, '2+': 3.0}
    """
    return _by(frequency_groups(calhold, censor), calhold, predicted).rename_axis("calibration_frequency")


def recency_edges(calhold: pd.DataFrame, bins: int = RECENCY_BINS) -> np.ndarray:
    """The ``bins + 1`` equal-width recency bin edges, from 0 to the cohort's longest age in calibration.

    >>> recency_edges(pd.DataFrame({"T": [3.0, 8.0]}), 4).tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    return np.linspace(0.0, float(calhold["T"].max()), bins + 1)


def holdout_by_recency(calhold: pd.DataFrame, predicted: pd.Series, bins: int = RECENCY_BINS) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases by calibration recency: one-time buyers, then ``bins`` bins.

    A repeat buyer's bin is the half-open interval ``[a, b)`` of
    :func:`recency_edges` holding their recency (the last bin closed). The
    index labels the bins by their edges in the model's unit ("[0, 4.9)" ...),
    after the :data:`ONE_TIME` group; empty bins are left out.

    >>> cal = pd.DataFrame({"frequency": [0.0, 1, 2, 3], "recency": [0.0, 1, 7, 8], "T": [8.0] * 4,
    ...     "frequency_holdout": [0.0, 1, 2, 4]})
    >>> holdout_by_recency(cal, pd.Series([0.1, 0.5, 2.0, 3.0]), 2)["actual"].to_dict()
    {'one-time': 0.0, '[0, 4)': 1.0, '[4, 8]': 3.0}
    """
    edges = recency_edges(calhold, bins)
    code = np.clip(np.searchsorted(edges, calhold["recency"].to_numpy(), side="right") - 1, 0, bins - 1)
    code = np.where(calhold["frequency"].to_numpy() > 0, code + 1, 0)
    shown = [f"{e:.3g}" for e in edges]
    labels = [ONE_TIME] + [f"[{a}, {b})" for a, b in zip(shown[:-2], shown[1:-1], strict=True)]
    labels.append(f"[{shown[-2]}, {shown[-1]}]")
    groups = pd.Categorical.from_codes(code, categories=labels, ordered=True)
    return _by(pd.Series(groups, index=calhold.index), calhold, predicted).rename_axis("calibration_recency")


# --- Gamma-Gamma: the spend distribution the fit implies, against the observed one ------------------------


def _shares(n: int, weights: np.ndarray | None) -> np.ndarray:
    return np.full(n, 1 / n) if weights is None else np.asarray(weights, dtype=float)


def spend_cdf(m: np.ndarray, x: np.ndarray, p: float, q: float, v: float,
              weights: np.ndarray | None = None) -> np.ndarray:
    """P(mean spend <= each of ``m``) implied by Gamma-Gamma (p, q, v), averaged over customers with ``x`` purchases.

    For one customer with ``x`` purchases, ``x M / (x M + v) ~ Beta(p x, q)``.
    ``weights`` (shares summing to 1) weight the ``x`` when they are distinct counts; None: equal.

    >>> round(float(spend_cdf(np.array([4.0]), np.array([1.0]), 2.0, 3.0, 4.0)[0]), 4)  # Beta(2, 3) at 1/2
    0.6875
    """
    m = np.asarray(m, dtype=float)[:, None]
    x = np.asarray(x, dtype=float)[None, :]
    return special.betainc(p * x, q, x * m / (x * m + v)) @ _shares(x.shape[1], weights)


def spend_density(m: np.ndarray, x: np.ndarray, p: float, q: float, v: float,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """The density of :func:`spend_cdf` at each of ``m`` (BTYD's ``spend.marginal.likelihood``, averaged).

    >>> grid = np.linspace(0.01, 400, 40000)
    >>> round(float(spend_density(grid, np.array([1.0, 3.0]), 6.0, 4.0, 15.0).sum() * (grid[1] - grid[0])), 3)
    1.0
    """
    m = np.asarray(m, dtype=float)[:, None]
    px = p * np.asarray(x, dtype=float)[None, :]
    xm = m * np.asarray(x, dtype=float)[None, :]
    log = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
           + px * np.log(xm) - np.log(m) - (px + q) * np.log(v + xm))
    return np.exp(log) @ _shares(px.shape[1], weights)


def spend_quantiles(levels: tuple[float, ...], x: np.ndarray, p: float, q: float, v: float,
                    weights: np.ndarray | None = None) -> np.ndarray:
    """The quantiles of :func:`spend_cdf` at ``levels``, by bisection on the log of spend (to 1e-6 relative).

    >>> float(spend_quantiles((0.6875,), np.array([1.0]), 2.0, 3.0, 4.0)[0].round(4))
    4.0
    """
    target = np.asarray(levels, dtype=float)
    low = np.full(len(target), 1e-9)
    high = np.full(len(target), 1.0)
    while np.any(short := spend_cdf(high, x, p, q, v, weights) < target):
        high = np.where(short, high * 10, high)
    for _ in range(60):
        mid = np.sqrt(low * high)
        below = spend_cdf(mid, x, p, q, v, weights) < target
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    return np.sqrt(low * high)


@dataclass
class SpendCheck:
    """How well the fitted Gamma-Gamma reproduces the distribution of the repeat buyers' mean spend."""

    spend: pd.Series  # the observed mean spend per repeat purchase of the customers compared
    purchases: pd.Series  # their repeat purchases (the x of the model)
    params: dict[str, float]
    ks: float  # the largest gap between the two cumulative distributions
    at: float  # the spend where it is largest
    gap: float  # observed minus model cumulative share there (> 0: the model has too few customers below)
    quantiles: pd.DataFrame  # index: quantile levels; columns actual, model, ratio (model / actual)

    @property
    def customers(self) -> int:
        """The number of repeat buyers compared."""
        return len(self.spend)

    @property
    def critical(self) -> float:
        """The KS test's 5% critical value for this many customers (lenient here: the parameters are estimated)."""
        return KS_CRITICAL_5PCT / np.sqrt(self.customers)

    @property
    def fits(self) -> bool:
        """True when the KS distance is within :data:`SPEND_KS_TOLERANCE`."""
        return self.ks <= SPEND_KS_TOLERANCE

    def text(self) -> str:
        """The fit in sentences: the KS distance, the quantiles that differ most and what a misfit means."""
        q = self.quantiles
        worst = (np.log(q["ratio"])).abs().idxmax()
        head = (f"Gamma-Gamma against the {self.customers:,} repeat buyers' mean spend per repeat purchase: "
                f"KS distance {self.ks:.3f} (largest gap between the two cumulative distributions, at spend "
                f"{self.at:,.2f}: {abs(self.gap):.1%} {'more' if self.gap > 0 else 'fewer'} customers below it than "
                f"the model says; the test's 5% critical value for {self.customers:,} customers is "
                f"{self.critical:.3f}). Median {q.loc[0.5, 'actual']:,.2f} actual, {q.loc[0.5, 'model']:,.2f} model; "
                f"the {worst:.0%} quantile differs most ({q.loc[worst, 'actual']:,.2f} actual, "
                f"{q.loc[worst, 'model']:,.2f} model).")
        if self.ks <= self.critical:
            return head + (" Within the critical value: the observed distribution cannot be told from the model's; "
                           "its shrinkage of each customer's spend towards the population's is sound.")
        if self.fits:
            return head + (f" Beyond the critical value but within the tolerance of {SPEND_KS_TOLERANCE:.2f}: the "
                           "departure is detectable with this many customers but small; the spend model describes how "
                           "mean spend varies across customers.")
        upper = q.loc[max(q.index), "ratio"]
        tail = ("the model's upper tail is too thin: its prior pulls the big spenders' expected spend too far "
                "towards the mean, so their CLV is understated" if upper < 1 else
                "the model's upper tail is too heavy: it expects more big spenders than there are")
        return head + (f" Beyond the tolerance of {SPEND_KS_TOLERANCE:.2f}: the spend distribution is not one "
                       f"Gamma-Gamma shape ({tail}). The expected spend of customers with few purchases is shrunk "
                       "towards a mean that may describe none of them (a mix of small and large baskets, e.g. "
                       "retail and wholesale buyers, looks like this): read CLV's spend part with care, or model "
                       "the groups apart.")


def spend_check(summary: pd.DataFrame, params: dict[str, float]) -> SpendCheck:
    """Compare the observed mean spend of the repeat buyers with the Gamma-Gamma of ``params`` (p, q, v).

    ``summary`` is the BTYD summary the spend model was fitted on
    (``frequency``, ``monetary_value``); the customers compared are the ones
    :func:`helpers.clv.models.gamma_gamma.fit_spend` uses: repeat buyers with a
    positive mean spend. The KS distance is computed at the observed values
    (both sides of each step of the empirical distribution; the model's
    distribution exactly, or interpolated from :data:`SPEND_GRID` points beyond that many customers).
    """
    used = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    m, x = used["monetary_value"].to_numpy(dtype=float), used["frequency"].to_numpy(dtype=float)
    p, q, v = (float(params[k]) for k in ("p", "q", "v"))
    order = np.argsort(m, kind="stable")
    values = m[order]
    rows, inverse = np.unique(x, return_inverse=True)
    weights = np.bincount(inverse) / len(x)
    n = len(values)
    if n > SPEND_GRID:
        grid = np.geomspace(values[0], values[-1], SPEND_GRID)
        model = np.interp(values, grid, spend_cdf(grid, rows, p, q, v, weights))
    else:
        model = spend_cdf(values, rows, p, q, v, weights)
    above = np.arange(1, n + 1) / n - model  # the empirical distribution just after each value
    below = model - np.arange(0, n) / n  # and just before it
    k = int(np.argmax(np.maximum(above, below)))
    ks = float(max(above[k], below[k]))
    gap = float(above[k]) if above[k] >= below[k] else -float(below[k])
    levels = SPEND_QUANTILES
    model_q = spend_quantiles(levels, rows, p, q, v, weights)
    actual_q = np.quantile(m, levels)
    table = pd.DataFrame({"actual": actual_q, "model": model_q, "ratio": model_q / actual_q},
                         index=pd.Index(levels, name="quantile"))
    return SpendCheck(used["monetary_value"], used["frequency"], {"p": p, "q": q, "v": v}, ks, float(values[k]),
                      gap, table)

