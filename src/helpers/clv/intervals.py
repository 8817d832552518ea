"""Intervals per customer for expected purchases, P(alive) and CLV, from the uncertainty of the fitted parameters.

**Which uncertainty, and why.** Two ways are in use: CLVTools bootstraps over
customers (``predict(..., uncertainty = "boots")``: refit the model on
resampled customers, predict with each refit), PyMC-Marketing draws the
parameters from their posterior. A bootstrap costs one refit per replicate
(seconds to minutes at a million customers, Pareto/NBD the slowest, and a
replicate may fail to converge). Here the parameters' uncertainty is the
**Laplace (normal) approximation of the likelihood at the fit**: the inverse of
the Hessian of the total negative log-likelihood (with the penalty the fit
used) on the log parameters, computed by finite differences on the distinct
(frequency, recency, T) rows with their weights (:func:`parameter_uncertainty`).
It costs a few dozen likelihood evaluations and no refit, works for every
family (:mod:`helpers.clv.uncertainty`; lifetimes has no Hessian for Pareto/NBD, and its ``variance_matrix_``
multiplies the inverse Hessian by ``params ** 2`` column-wise only, so its
off-diagonal terms are not a covariance; its standard errors - the diagonal -
agree with ours, which a test checks), and on log parameters the draws stay
positive. When the Hessian is not positive definite (a flat or saddle
likelihood: parameters not identified, usually next to the model's boundary)
there is no interval: :attr:`Uncertainty.ok` is False, its ``message`` says so
and the intervals are missing (no regularised covariance pretends otherwise).

**How it is propagated.** Two methods over the same approximation:

- ``"delta"`` (default): each prediction is linearised in the log parameters
  on its link scale (log for expected purchases and CLV, logit for P(alive)),
  by forward differences - four extra evaluations of the point estimates per
  distinct row - and the interval is the normal one on that scale, mapped
  back (so it is asymmetric, positive, and P(alive) stays in [0, 1]). At a
  million customers (about 200,000 distinct rows) it costs about five times
  the point estimates (measured: 6 s for BG/NBD, 10 s for Pareto/NBD, plus 1.4 s
  and 4.9 s for the Hessians) and needs no random numbers.
- ``"draws"``: ``draws`` parameter vectors from the normal approximation
  (seeded), every prediction evaluated per draw on all distinct rows
  (vectorised), empirical quantiles. Exact for the approximation, but it costs
  ``draws`` times the point estimates (about 1.3 s a draw at a million
  customers); used by the tests to check ``"delta"`` (total widths within 15%).

Gamma-Gamma's spend uncertainty is propagated the same way (its own
Laplace approximation; independent of the BTYD fit, so the variances add on the
log scale of CLV). Only the parameters' uncertainty is in these intervals,
not the randomness of a customer's future purchases: they say how well the
*expected* values are known (for a cohort's total, :func:`group_intervals`;
``process=True`` adds a Poisson term for the purchases themselves).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from helpers.clv.diagnostics import frequency_groups
from helpers.clv.models import BTYDModel, SpendFit
from helpers.clv.periods import cumulative_purchases, discount_factors, period_ends
from helpers.clv.summary import DAYS_PER_MONTH, distinct_rows
from helpers.clv.uncertainty import Uncertainty, parameter_uncertainty, spend_uncertainty

#: The interval levels of the customer table (80% and 95%).
LEVELS = (0.8, 0.95)
#: Forward-difference step on the log parameters (relative change 1e-5).
STEP = 1e-5


def level_columns(column: str, levels: tuple[float, ...] = LEVELS) -> list[str]:
    """The interval columns of ``column``, low then high per level.

    >>> level_columns("clv", (0.8,))
    ['clv_low_80', 'clv_high_80']
    """
    return [f"{column}_{side}_{round(100 * level)}" for level in levels for side in ("low", "high")]


#: The values that get intervals, and their interval columns at :data:`LEVELS` (the customer table and the export).
INTERVAL_VALUES = ("expected_purchases", "p_alive", "clv")
INTERVAL_COLUMNS = [c for value in INTERVAL_VALUES for c in level_columns(value)]


def _with_params(model: Any, names: tuple[str, ...], theta: np.ndarray) -> Any:
    """A shallow copy of a lifetimes model with other parameters."""
    other = copy.copy(model)
    other.params_ = pd.Series(theta, index=list(names))
    return other


def _row_predictions(model: Any, f: np.ndarray, r: np.ndarray, T: np.ndarray, t: float, ends: np.ndarray,
                     factors: np.ndarray) -> np.ndarray:
    """Expected purchases over ``t``, P(alive) and discounted expected purchases over the horizon, per row (3 x rows)."""
    with np.errstate(all="ignore"):
        purchases = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(t, f, r, T), dtype=float)
        alive = np.clip(np.asarray(model.conditional_probability_alive(f, r, T), dtype=float), 0, 1)
        discounted = np.diff(cumulative_purchases(model, f, r, T, ends), axis=1) @ factors
    return np.stack([purchases, alive, discounted])


def _logit(p: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.log(p) - np.log1p(-p)


def _link(values: np.ndarray) -> np.ndarray:
    """Log of expected purchases and discounted purchases, logit of P(alive) (rows of ``_row_predictions``)."""
    with np.errstate(all="ignore"):
        return np.stack([np.log(values[0]), _logit(values[1]), np.log(values[2])])


def _unlink(z: np.ndarray, which: int) -> np.ndarray:
    return 1 / (1 + np.exp(-z)) if which == 1 else np.exp(z)


def _spend_values(spend: SpendFit, theta: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Gamma-Gamma's expected spend per purchase at parameters ``theta`` (one-time buyers: the population mean)."""
    other = _with_params(spend.model, ("p", "q", "v"), theta)
    return np.asarray(other.conditional_expected_average_profit(x, m), dtype=float)


def customer_intervals(fit: BTYDModel, summary: pd.DataFrame, *, t: float, months: int, unit: str,
                       spend: SpendFit | pd.Series, discount_rate_annual: float = 0.10, margin: float = 1.0,
                       levels: tuple[float, ...] = LEVELS, method: str = "delta", draws: int = 200,
                       seed: int = 0, uncertainty: Uncertainty | None = None) -> pd.DataFrame:
    """Point estimates and intervals per customer: expected purchases over ``t``, P(alive) and CLV over ``months``.

    Columns ``expected_purchases``, ``p_alive``, ``clv`` (the point estimates,
    as :func:`helpers.clv.value.lifetime_value` and :meth:`BTYDModel.p_alive`
    compute them) and, per level L in ``levels``, ``<column>_low_<100 L>`` and
    ``<column>_high_<100 L>`` (e.g. ``clv_low_80``). ``spend`` is the fitted
    Gamma-Gamma (its uncertainty goes into CLV's interval) or a spend per
    purchase per customer (taken as known). ``method`` is ``"delta"`` or
    ``"draws"`` (module docstring); ``draws`` and ``seed`` are for ``"draws"``.
    Without a covariance (:attr:`Uncertainty.ok` False) the intervals are missing.
    """
    uncertainty = parameter_uncertainty(fit) if uncertainty is None else uncertainty
    rows, inverse = distinct_rows(summary)
    f, r, T = (rows[c].to_numpy() for c in ("frequency", "recency", "T"))
    ends = period_ends(months, unit)
    factors = discount_factors(len(ends), discount_rate_annual, DAYS_PER_MONTH)
    point = _row_predictions(fit.model, f, r, T, t, ends, factors)
    gg = isinstance(spend, SpendFit)
    x = summary["frequency"].to_numpy(dtype=float)
    m = summary["monetary_value"].clip(lower=0).to_numpy(dtype=float) if gg else None
    spend_point = (_spend_values(spend, spend.model.params_.to_numpy(float), x, m) if gg
                   else spend.reindex(summary.index).to_numpy(dtype=float))
    out = pd.DataFrame({"expected_purchases": point[0][inverse], "p_alive": point[1][inverse],
                        "clv": np.clip(point[2][inverse] * spend_point * margin, 0, None)}, index=summary.index)
    columns = ["expected_purchases", "p_alive", "clv"]
    if not uncertainty.ok:
        for level in levels:
            for c in columns:
                out[f"{c}_low_{round(100 * level)}"] = out[f"{c}_high_{round(100 * level)}"] = np.nan
        return out
    spend_u = spend_uncertainty(spend) if gg else None
    if method == "delta":
        bounds = _delta(fit, uncertainty, spend, spend_u, (f, r, T, t, ends, factors), point, inverse, x, m,
                        spend_point, levels)
    elif method == "draws":
        bounds = _draws(fit, uncertainty, spend, spend_u, (f, r, T, t, ends, factors), inverse, x, m, spend_point,
                        levels, draws, seed)
    else:
        raise ValueError(f"method must be 'delta' or 'draws', not {method!r}")
    for level in levels:
        for i, c in enumerate(columns):
            low, high = bounds[level][i]
            if i < 2:
                low, high = low[inverse], high[inverse]
            else:
                low, high = low * margin, high * margin
            value = out[c].to_numpy()
            low, high = np.where(np.isnan(low), value, low), np.where(np.isnan(high), value, high)  # at 0 or 1
            if c == "p_alive":
                known = out["p_alive"].to_numpy() >= 1 - 1e-12  # BG/NBD one-time buyers: 1 by construction
                low, high = np.where(known, 1.0, low), np.where(known, 1.0, high)
            out[f"{c}_low_{round(100 * level)}"] = np.clip(low, 0, None)
            out[f"{c}_high_{round(100 * level)}"] = high
    return out


def _gradient(fit: BTYDModel, u: Uncertainty, args: tuple, base: np.ndarray) -> np.ndarray:
    """Forward-difference gradient of the linked row predictions in the log parameters (parameters x 3 x rows)."""
    grads = []
    for j in range(len(u.names)):
        shifted = u.mean.copy()
        shifted[j] += STEP
        other = _with_params(fit.model, u.names, np.exp(shifted))
        with np.errstate(all="ignore"):  # at P(alive) 0 or 1 the link is infinite: no width there
            grads.append((_link(_row_predictions(other, *args)) - base) / STEP)
    return np.stack(grads)


Bounds = dict[float, list[tuple[np.ndarray, np.ndarray]]]


def _delta(fit: BTYDModel, u: Uncertainty, spend: Any, spend_u: Uncertainty | None, args: tuple, point: np.ndarray,
           inverse: np.ndarray, x: np.ndarray, m: np.ndarray | None, spend_point: np.ndarray,
           levels: tuple[float, ...]) -> Bounds:
    """Normal intervals on the link scale, mapped back; CLV adds Gamma-Gamma's log-spend variance per customer."""
    base = _link(point)
    g = _gradient(fit, u, args, base)
    sd = np.sqrt(np.einsum("irk,ij,jrk->rk", g, u.cov, g))  # 3 x rows
    spend_var: np.ndarray | float = 0.0
    if spend_u is not None and spend_u.ok:
        log_spend = np.log(spend_point)
        sg = np.stack([(np.log(_spend_values(spend, np.exp(spend_u.mean + STEP * np.eye(3)[j]), x, m)) - log_spend)
                       / STEP for j in range(3)])
        spend_var = np.einsum("ic,ij,jc->c", sg, spend_u.cov, sg)
    with np.errstate(all="ignore"):
        log_clv = base[2][inverse] + np.log(spend_point)
        sd_clv = np.sqrt(sd[2][inverse] ** 2 + spend_var)
    out: Bounds = {}
    for level in levels:
        z = norm.ppf(0.5 + level / 2)
        out[level] = [(_unlink(base[i] - z * sd[i], i), _unlink(base[i] + z * sd[i], i)) for i in range(2)]
        out[level].append((np.exp(log_clv - z * sd_clv), np.exp(log_clv + z * sd_clv)))
    return out


def _draws(fit: BTYDModel, u: Uncertainty, spend: Any, spend_u: Uncertainty | None, args: tuple,
           inverse: np.ndarray, x: np.ndarray, m: np.ndarray | None, spend_point: np.ndarray,
           levels: tuple[float, ...], draws: int, seed: int, chunk: int = 50_000) -> Bounds:
    """Empirical quantiles over seeded parameter draws (per row for purchases and P(alive), per customer for CLV)."""
    thetas = u.draws(draws, seed)
    values = np.stack([_row_predictions(_with_params(fit.model, u.names, th), *args) for th in thetas])
    spend_thetas = spend_u.draws(draws, seed + 1) if spend_u is not None and spend_u.ok else None
    qs = sorted({q for level in levels for q in (0.5 - level / 2, 0.5 + level / 2)})
    rowq = {q: np.quantile(values[:, :2], q, axis=0) for q in qs}
    clvq = {q: np.empty(len(inverse)) for q in qs}
    for start in range(0, len(inverse), chunk):
        part = slice(start, start + chunk)
        disc = values[:, 2, inverse[part]]
        if spend_thetas is None:
            per = disc * spend_point[part][None, :]
        else:
            per = disc * np.stack([_spend_values(spend, th, x[part], m[part]) for th in spend_thetas])
        for q, v in zip(qs, np.quantile(per, qs, axis=0)):
            clvq[q][part] = v
    out: Bounds = {}
    for level in levels:
        lo, hi = 0.5 - level / 2, 0.5 + level / 2
        out[level] = [(rowq[lo][i], rowq[hi][i]) for i in range(2)] + [(clvq[lo], clvq[hi])]
    return out


def group_intervals(fit: BTYDModel, summary: pd.DataFrame, groups: pd.Series, *, t: float,
                    levels: tuple[float, ...] = LEVELS, process: bool = False, method: str = "delta",
                    draws: int = 200, seed: int = 0, uncertainty: Uncertainty | None = None) -> pd.DataFrame:
    """Expected purchases over ``t`` of each group of customers (e.g. by calibration frequency) with intervals.

    ``groups`` labels the customers of ``summary``. The interval is that of
    the group's *expected* total from the parameters' uncertainty (lognormal
    by the delta method, or quantiles of ``draws``); ``process=True`` adds the
    variance of the purchases themselves as if Poisson (a lower bound: BTYD
    counts are over-dispersed), which is what an actual total is compared with.
    Columns ``customers``, ``expected`` and ``low_<L>``/``high_<L>`` per level.
    """
    uncertainty = parameter_uncertainty(fit) if uncertainty is None else uncertainty
    rows, inverse = distinct_rows(summary)
    f, r, T = (rows[c].to_numpy() for c in ("frequency", "recency", "T"))
    codes, labels = pd.factorize(groups.reindex(summary.index), sort=True)

    def totals(model: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            per_row = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(t, f, r, T), dtype=float)
        return np.bincount(codes, per_row[inverse], minlength=len(labels))

    expected = totals(fit.model)
    out = pd.DataFrame({"customers": np.bincount(codes, minlength=len(labels)), "expected": expected},
                       index=pd.Index(labels, name=groups.name))
    if not uncertainty.ok:
        for level in levels:
            out[f"low_{round(100 * level)}"] = out[f"high_{round(100 * level)}"] = np.nan
        return out
    poisson = 1 / expected if process else 0.0  # Var(log total) of Poisson purchases: 1 / total
    if method == "delta":
        g = np.stack([(np.log(totals(_with_params(fit.model, uncertainty.names,
                                                  np.exp(uncertainty.mean + STEP * np.eye(len(uncertainty.names))[j]))))
                       - np.log(expected)) / STEP for j in range(len(uncertainty.names))])
        sd = np.sqrt(np.einsum("ig,ij,jg->g", g, uncertainty.cov, g) + poisson)
        for level in levels:
            z = norm.ppf(0.5 + level / 2)
            out[f"low_{round(100 * level)}"] = expected * np.exp(-z * sd)
            out[f"high_{round(100 * level)}"] = expected * np.exp(z * sd)
        return out
    sims = np.stack([totals(_with_params(fit.model, uncertainty.names, th)) for th in uncertainty.draws(draws, seed)])
    if process:
        sims = np.random.default_rng(seed + 2).poisson(np.clip(sims, 0, None)).astype(float)
    for level in levels:
        out[f"low_{round(100 * level)}"] = np.quantile(sims, 0.5 - level / 2, axis=0)
        out[f"high_{round(100 * level)}"] = np.quantile(sims, 0.5 + level / 2, axis=0)
    return out


def coverage(table: pd.DataFrame, actual: pd.Series, levels: tuple[float, ...] = LEVELS) -> dict[float, float]:
    """Share of the rows of a :func:`group_intervals` table whose ``actual`` total lies inside each level's interval.

    >>> t = pd.DataFrame({"low_80": [1.0, 5.0], "high_80": [3.0, 6.0]})
    >>> coverage(t, pd.Series([2.0, 7.0]), (0.8,))
    {0.8: 0.5}
    """
    a = actual.to_numpy(dtype=float)
    return {level: float(np.mean((table[f"low_{round(100 * level)}"].to_numpy() <= a)
                                 & (a <= table[f"high_{round(100 * level)}"].to_numpy()))) for level in levels}


def holdout_coverage(fit: BTYDModel, calhold: pd.DataFrame, levels: tuple[float, ...] = LEVELS) -> pd.DataFrame:
    """The calibration fit's intervals checked on the holdout: one row per group of customers by repeat
    purchases in calibration (:func:`helpers.clv.diagnostics.frequency_groups`: 0 .. 6, 7+, as the diagnostics
    figure groups them), its actual holdout purchases, the expected total with its
    intervals (parameter uncertainty plus the purchases' Poisson noise: what an actual total is compared
    with, :func:`group_intervals`) and ``inside_<L>`` per level. ``calhold`` is
    :func:`helpers.clv.summary.calibration_holdout`'s table (one holdout length for everyone)."""
    groups = frequency_groups(calhold)
    table = group_intervals(fit, calhold, groups, t=float(calhold["duration_holdout"].iloc[0]), levels=levels,
                            process=True)
    table["actual"] = (calhold["frequency_holdout"].groupby(groups, observed=True).sum().reindex(table.index)
                       .to_numpy(dtype=float))
    for level in (round(100 * lv) for lv in levels):
        table[f"inside_{level}"] = (table[f"low_{level}"] <= table["actual"]) & (table["actual"] <= table[f"high_{level}"])
    return table


def coverage_summary(table: pd.DataFrame | None) -> dict[str, Any] | None:
    """The JSON form of :func:`holdout_coverage`: groups, and per level how many lie inside (None without it)."""
    if table is None or table.filter(like="low_").isna().all().all():
        return None
    levels = [c[len("inside_"):] for c in table if c.startswith("inside_")]
    return {"groups": len(table), "inside": {level: int(table[f"inside_{level}"].sum()) for level in levels}}


def tier_changes(clv: pd.Series, low: pd.Series, high: pd.Series, cuts: list[float] | np.ndarray) -> pd.DataFrame:
    """Which customers' value tier could change within their CLV interval.

    ``cuts`` are the CLV cut points between tiers, ascending (e.g. the
    quantiles of CLV at which :mod:`helpers.tiers` splits); tier 0 is below
    the first cut, a CLV equal to a cut is in the tier above it. Columns
    ``tier``, ``tier_low``, ``tier_high`` (the tiers of the point, the low and
    the high end) and ``uncertain`` (True when they differ); the number of
    customers whose tier could change is ``out["uncertain"].sum()``.

    >>> clv = pd.Series([1.0, 5.0, 9.0])
    >>> tier_changes(clv, clv - 0.5, clv + 2.0, [6.0])["uncertain"].tolist()
    [False, True, False]
    """
    cuts = np.sort(np.asarray(cuts, dtype=float))

    def tier(values: pd.Series) -> np.ndarray:
        return np.searchsorted(cuts, values.to_numpy(dtype=float), side="right")

    out = pd.DataFrame({"tier": tier(clv), "tier_low": tier(low), "tier_high": tier(high)}, index=clv.index)
    out["uncertain"] = out["tier_low"] != out["tier_high"]
    return out


def tier_uncertainty(table: pd.DataFrame, potential_high_share: float,
                     levels: tuple[float, ...] = LEVELS) -> dict[str, Any] | None:
    """How wide the CLV intervals typically are, and how many customers' value tier could change within them.

    ``table`` holds ``clv`` and its interval columns (the customer table or the export). The value
    pyramid's growth axis is high for the top ``potential_high_share`` of customers by CLV
    (:func:`helpers.tiers.is_high`), so a tier could change when a customer's interval reaches across
    the cut, the lowest high CLV (:func:`tier_changes`). Returns ``cut``, ``customers`` and, per level
    (``80``, ``95``), ``width`` (the median of (high - low) / CLV over customers with a positive CLV)
    and ``changes`` (customers); ``None`` when the intervals are missing (no covariance of the parameters).
    """
    from helpers.tiers import is_high

    columns = level_columns("clv", levels)
    if any(c not in table for c in columns) or table[columns[0]].isna().all():
        return None
    clv = table["clv"]
    high = is_high(clv, potential_high_share)
    cut = float(clv[high].min()) if high.any() else float("inf")
    out: dict[str, Any] = {"cut": cut, "customers": len(table), "width": {}, "changes": {}}
    for level in (round(100 * lv) for lv in levels):
        low, top = table[f"clv_low_{level}"], table[f"clv_high_{level}"]
        out["width"][level] = float(((top - low) / clv).where(clv > 0).median())
        out["changes"][level] = int(tier_changes(clv, low, top, [cut])["uncertain"].sum())
    return out
