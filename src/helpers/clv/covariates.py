"""BG/NBD with static (time-invariant) customer covariates, by maximum likelihood (issue 14).

Each customer ``i`` has a row ``z_i`` of covariates (standardised numbers,
0/1 indicators). The population parameters become the customer's own:

- purchase rate  ``lambda_i ~ Gamma(r, alpha_i)``, ``alpha_i = alpha * exp(-gamma_p' z_i)``;
- drop-out       ``p_i ~ Beta(a_i, b_i)``, ``a_i = a * exp(gamma_a' z_i)``, ``b_i = b * exp(gamma_b' z_i)``.

This is PyMC-Marketing's parametrisation (``BetaGeoModel`` with
``purchase_covariate_cols`` / ``dropout_covariate_cols``: ``alpha_scale``,
``purchase_coefficient_alpha``, ``dropout_coefficient_a``, ``dropout_coefficient_b``).
CLVTools (``bgnbd`` on ``clv.data.static.covariates``) links ``alpha`` the same
way but gives ``a`` and ``b`` **one** shared lifetime coefficient; then the
mean drop-out probability ``a_i / (a_i + b_i) = a / (a + b)`` never moves with a
covariate, only the spread of the Beta does. The question asked of a covariate
("do customers with a big first order drop out less?") needs the mean to move,
so the separate coefficients are used here; CLVTools' model is the special
case ``gamma_a = gamma_b``. The mean purchase rate ``r / alpha_i`` is
``exp(gamma_p' z_i)`` times the reference's, so ``exp(gamma_p)`` reads as
"buys that many times as often".

The fit is maximum likelihood on the distinct (frequency, recency, T, z) rows
with their counts as weights (:func:`helpers.clv.summary.distinct_rows`),
with the BG/NBD closed-form likelihood (Fader, Hardie and Lee 2005, no
hypergeometric function) and its analytic gradient (one definition with
lifetimes' fit: :func:`helpers.clv.models.bgnbd_fit.log_likelihood`, whose
optional covariates are these), by scipy's L-BFGS-B in
log space for ``r, alpha, a, b``, time rescaled as lifetimes does (the oldest
customer aged 10). It starts from lifetimes' start (log parameters 0.1) without
covariates, and the covariate fit from that fit with zero coefficients:
deterministic, no random start. Standard errors come from the Hessian of the
log-likelihood (central differences of the analytic gradient). Without
covariates the fit is lifetimes' ``BetaGeoFitter`` (``tests/test_covariates.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from threadpoolctl import threadpool_limits

from helpers.clv.models import bgnbd_fit
from helpers.clv.models.bgnbd_fit import Rows, gradient_hessian, individual
from helpers.clv.summary import distinct_rows
from helpers.errors import DataError

#: The three processes a covariate acts on, in the order of the coefficient vector.
PROCESSES = ("purchase", "dropout_a", "dropout_b")
#: Bounds of the optimizer: log r, log alpha, log a, log b, and each coefficient.
LOG_BOUND = 20.0
COEF_BOUND = 10.0
#: Relative step of the central differences of the gradient (the Hessian).
HESSIAN_STEP = 1e-5


@dataclass
class CovariateFit:
    """One BG/NBD fit with covariates ``names`` (none: the plain BG/NBD).

    ``params`` are r, alpha, a, b (alpha in the summary's time unit) of the
    reference customer (``z = 0``); ``coefficients`` has a row per process and
    covariate: ``estimate``, ``se``, ``z`` and the Wald ``p_value``.
    """

    names: list[str]
    params: pd.Series
    coefficients: pd.DataFrame
    log_likelihood: float
    converged: bool
    message: str
    customers: int
    rows: int
    theta: np.ndarray = field(repr=False)
    covariance: np.ndarray | None = field(default=None, repr=False)
    dropout: bool = True  # False: the covariates act on the purchase rate only (gamma_a = gamma_b = 0)

    @property
    def df(self) -> int:
        """The number of covariate coefficients estimated (the degrees of freedom of the likelihood-ratio test)."""
        return (len(PROCESSES) if self.dropout else 1) * len(self.names)


def log_likelihood(theta: np.ndarray, summary: pd.DataFrame, z: np.ndarray) -> float:
    """The log-likelihood of ``summary`` (frequency, recency, T per customer) at ``theta`` with covariates ``z``."""
    return bgnbd_fit.log_likelihood(theta, _customers(summary, z), grad=False)[0]


def gradient(theta: np.ndarray, summary: pd.DataFrame, z: np.ndarray) -> np.ndarray:
    """The analytic gradient of :func:`log_likelihood` in ``theta`` (what the optimizer and the Hessian use)."""
    g = bgnbd_fit.log_likelihood(theta, _customers(summary, z))[1]
    assert g is not None
    return g


def _customers(summary: pd.DataFrame, z: np.ndarray) -> Rows:
    """One row per customer (weight 1) with covariates ``z``."""
    x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    return Rows.of(x, tx, T, z=np.asarray(z, float).reshape(len(x), -1))


def _rows(summary: pd.DataFrame, z: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """The distinct (frequency, recency, T, z) rows: x, t_x, T, weights, z (rows x k)."""
    names = [f"z{j}" for j in range(z.shape[1])]
    frame = summary[["frequency", "recency", "T"]].reset_index(drop=True)
    frame[names] = z.to_numpy(float)
    rows, _ = distinct_rows(frame, tuple(names))
    return (*(rows[c].to_numpy(float) for c in ("frequency", "recency", "T", "weight")),
            rows[names].to_numpy(float).reshape(len(rows), len(names)))


def _hessian(theta: np.ndarray, rows: Rows, free: np.ndarray) -> np.ndarray:
    """The Hessian of the log-likelihood in the ``free`` parameters (central differences of the gradient)."""
    return gradient_hessian(lambda u: bgnbd_fit.log_likelihood(u, rows)[1], theta, HESSIAN_STEP, relative=True,
                            free=free)


def fit(summary: pd.DataFrame, z: pd.DataFrame | None = None, *, start: np.ndarray | None = None,
        dropout: bool = True, se: bool = True) -> CovariateFit:
    """BG/NBD with the covariate columns of ``z`` (aligned with ``summary``'s rows; None: no covariates), by ML.

    ``dropout`` False keeps the drop-out coefficients at 0 (the covariates
    move the purchase rate only: the fallback when drop-out is not identified);
    ``se`` False skips the Hessian (no standard errors, a third of the time saved).

    Raises :class:`DataError` when the summary cannot identify the model
    (no repeat buyer) or a covariate column does not vary. A fit that does
    not converge is returned with ``converged`` False and the optimizer's message.
    """
    z = pd.DataFrame(index=summary.index) if z is None else z
    if len(z) != len(summary):
        raise DataError(f"covariates: {len(z)} rows for {len(summary)} customers")
    if not (summary["frequency"] > 0).any():
        raise DataError("covariates: no repeat buyer, so BG/NBD has nothing to learn the purchase rate from")
    flat = [c for c in z.columns if z[c].nunique() < 2]
    if flat:
        raise DataError(f"covariates: {', '.join(map(str, flat))} take(s) one value only: no effect can be estimated")
    names, k = [str(c) for c in z.columns], z.shape[1]
    x, tx, T, w, zz = _rows(summary, z)
    scale = 10.0 / T.max()  # lifetimes' _scale_time: the oldest customer is 10 time units old
    rows = Rows.of(x, tx * scale, T * scale, w, z=zz)
    x0 = np.concatenate([np.full(4, 0.1), np.zeros(3 * k)]) if start is None else start.astype(float).copy()
    x0[1] += np.log(scale)  # alpha in the rescaled time

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            ll, g = bgnbd_fit.log_likelihood(theta, rows)
        if not np.isfinite(ll) or not np.all(np.isfinite(g)):  # type: ignore[arg-type]
            return 1e300, np.zeros_like(theta)
        return -ll / w.sum(), -g / w.sum()  # type: ignore[operator]

    fixed = (0.0, 0.0) if not dropout else (-COEF_BOUND, COEF_BOUND)
    bounds = [(-LOG_BOUND, LOG_BOUND)] * 4 + [(-COEF_BOUND, COEF_BOUND)] * k + [fixed] * (2 * k)
    free = np.flatnonzero([lo < hi for lo, hi in bounds])
    x0[4 + k:] *= dropout
    with threadpool_limits(1, user_api="blas"):  # L-BFGS-B's tiny BLAS calls: 4x faster without threads to wake
        res = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"maxiter": 5000, "ftol": 1e-12, "gtol": 1e-8, "maxcor": 20})
    theta = res.x.copy()
    at_bound = [i for i in free if min(theta[i] - bounds[i][0], bounds[i][1] - theta[i]) < 1e-6]
    converged = bool(np.isfinite(res.fun) and not at_bound and np.max(np.abs(res.jac[free])) < 1e-4)
    message = str(res.message) + (f"; {len(at_bound)} parameter(s) at the optimizer's bound" if at_bound else "")
    with np.errstate(all="ignore"):
        hess = _hessian(theta, rows, free) if se and converged else np.full((len(free),) * 2, np.nan)
    covariance = None
    if np.all(np.isfinite(hess)):
        try:
            covariance = np.full((len(theta), len(theta)), np.nan)
            covariance[np.ix_(free, free)] = np.linalg.inv(-hess)
        except np.linalg.LinAlgError:
            covariance = None
    if se and covariance is not None and not np.all(np.diag(covariance)[free] > 0):
        covariance, message = None, message + "; the Hessian is not negative definite (no standard errors)"
    # the density in the summary's time unit: each purchase time's density scales with 1 / scale
    loglik = bgnbd_fit.log_likelihood(theta, rows, grad=False)[0] + float((w * x).sum()) * np.log(scale)
    theta[1] -= np.log(scale)
    se = np.sqrt(np.diag(covariance)) if covariance is not None else np.full(len(theta), np.nan)
    params = pd.Series(np.exp(theta[:4]), index=["r", "alpha", "a", "b"])
    coef = pd.DataFrame({"process": np.repeat(PROCESSES, k), "covariate": names * len(PROCESSES),
                         "estimate": theta[4:], "se": se[4:]})
    coef["z"] = coef["estimate"] / coef["se"]
    coef["p_value"] = 2 * stats.norm.sf(np.abs(coef["z"]))
    return CovariateFit(names, params, coef, float(loglik), converged, message, int(w.sum()), len(w), theta,
                        covariance, dropout)


def _own_params(fitted: CovariateFit, z: pd.DataFrame | np.ndarray | None, n: int) -> tuple[float, ...]:
    """Each customer's r, alpha_i, a_i, b_i under ``fitted``."""
    zz = np.zeros((n, 0)) if z is None else np.asarray(z, float).reshape(n, len(fitted.names))
    return individual(fitted.theta, zz)


def expected_purchases(fitted: CovariateFit, t: float | np.ndarray, summary: pd.DataFrame,
                       z: pd.DataFrame | np.ndarray | None = None) -> np.ndarray:
    """Each customer's expected purchases in the next ``t`` time units (FHL 2005 eq. 10, with their own parameters)."""
    x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    r, al, a, b = _own_params(fitted, z, len(x))
    c, zt = a + b + x - 1, t / (al + T + t)
    with np.errstate(all="ignore"):
        hyp = np.log(special.hyp2f1(r + x, b + x, c, zt))
        alt = np.log(special.hyp2f1(c - r - x, c - b - x, c, zt)) + (c - (r + x) - (b + x)) * np.log1p(-zt)
        hyp = np.where(np.isinf(hyp), alt, hyp)  # lifetimes' fallback (Euler's transformation)
        first = (a + b + x - 1) / (a - 1) * (1 - np.exp(hyp + (r + x) * np.log((al + T) / (al + t + T))))
    return first / (1 + (x > 0) * a / (b + x - 1) * ((al + T) / (al + tx)) ** (r + x))


def p_alive(fitted: CovariateFit, summary: pd.DataFrame, z: pd.DataFrame | np.ndarray | None = None) -> np.ndarray:
    """Each customer's probability of being alive at T (Fader, Hardie and Lee 2008, with their own parameters)."""
    x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    r, al, a, b = _own_params(fitted, z, len(x))
    with np.errstate(all="ignore"):
        odds = a / (b + np.maximum(x, 1) - 1) * ((al + T) / (al + tx)) ** (r + x)
    return np.where(x > 0, 1 / (1 + odds), 1.0)


def lr_test(with_covariates: CovariateFit, without: CovariateFit) -> dict[str, Any]:
    """The likelihood-ratio test of the covariates: 2 x the log-likelihood gain, chi-square with one df per coefficient.

    >>> a = CovariateFit(["v"], pd.Series(dtype=float), pd.DataFrame(), -100.0, True, "", 10, 10, np.zeros(7))
    >>> b = CovariateFit([], pd.Series(dtype=float), pd.DataFrame(), -104.0, True, "", 10, 10, np.zeros(4))
    >>> {k: round(v, 4) for k, v in lr_test(a, b).items()}
    {'statistic': 8.0, 'df': 3, 'p_value': 0.046}
    """
    statistic = max(0.0, 2 * (with_covariates.log_likelihood - without.log_likelihood))
    df = with_covariates.df - without.df
    return {"statistic": statistic, "df": df, "p_value": float(stats.chi2.sf(statistic, df))}


def simulate(z: np.ndarray, params: dict[str, float], coefficients: dict[str, np.ndarray], T: np.ndarray,
             seed: int = 0, day: float | None = None) -> pd.DataFrame:
    """A BG/NBD population with covariates ``z``: frequency, recency, T per customer (seeded).

    Each customer draws ``lambda_i ~ Gamma(r, alpha_i)`` and
    ``p_i ~ Beta(a_i, b_i)`` (the links above, ``coefficients`` keyed by
    :data:`PROCESSES`), buys at rate ``lambda_i`` from time 0 to ``T`` and
    drops out after each purchase with probability ``p_i``. ``day`` rounds
    the purchase times down to multiples of it (a purchase day in weeks: 1/7).

    >>> s = simulate(np.zeros((3, 0)), {"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 3.0}, {}, np.full(3, 10.0), seed=1)
    >>> list(s.columns), bool((s["recency"] <= s["T"]).all())
    (['frequency', 'recency', 'T'], True)
    """
    rng = np.random.default_rng(seed)
    z = np.asarray(z, float)
    theta = np.concatenate([np.log([params[k] for k in ("r", "alpha", "a", "b")]),
                            *[np.asarray(coefficients.get(p, np.zeros(z.shape[1])), float) for p in PROCESSES]])
    r, al, a, b = individual(theta, z)
    lam, p = rng.gamma(r, 1 / al), rng.beta(a, b)
    n = len(T)
    now, x, last, alive = np.zeros(n), np.zeros(n), np.zeros(n), np.ones(n, bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1 / lam[idx])
        bought = idx[now[idx] <= T[idx]]
        alive[idx[now[idx] > T[idx]]] = False
        x[bought] += 1
        last[bought] = now[bought]
        alive[bought[rng.random(len(bought)) < p[bought]]] = False
    recency = last if day is None else np.floor(last / day) * day
    return pd.DataFrame({"frequency": x, "recency": recency, "T": np.asarray(T, float)})
