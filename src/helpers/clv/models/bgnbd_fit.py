"""BG/NBD and MBG/NBD: one likelihood with its analytic gradient, optional static covariates; lifetimes' fit with it.

The weighted log-likelihood (Fader, Hardie and Lee 2005, equation 6;
Batislam et al. 2007 for MBG/NBD) on distinct rows, and its gradient, in
``theta`` = (log r, log alpha, log a, log b) followed, with ``k`` covariates
``z``, by the coefficients gamma_p, gamma_a, gamma_b of
:mod:`helpers.clv.covariates` (``alpha_i = alpha exp(-gamma_p' z_i)``,
``a_i = a exp(gamma_a' z_i)``, ``b_i = b exp(gamma_b' z_i)``). Each row's
log-likelihood is

    gammaln(r + x) - gammaln(r) + r log(alpha) - (r + x) log(alpha + T)
    + [Beta terms in a, b, x] + log(1 + exp(d)),
    d = log(a) - log(b + x - 1) + (r + x) (log(alpha + T) - log(alpha + t_x)),

the last two for repeat buyers only (MBG/NBD: for everyone, with ``x + 1``
in the Beta terms and ``b + x`` in ``d``); ``expit(d)`` is the probability
that the customer has dropped out. Without covariates the parameters are the
same for every row, so the terms that depend on one of x, T or t_x only are
computed once per distinct value (:class:`Rows`: a BTYD summary has about a
hundred frequencies and a few hundred ages): the per-row work is ``d``, one
``exp`` and one ``log``.

lifetimes fits BG/NBD and MBG/NBD with scipy's BFGS on log parameters, the
gradient from autograd (about ten times the cost of the likelihood) and, at
the end, the Hessian from autograd (for ``variance_matrix_``). Here
(:func:`lifetimes_fit`) the same BFGS runs from the same start with the same
tolerance on the same objective (``_negative_log_likelihood``: the weighted
mean log-likelihood plus ``penalizer_coef * sum(params ** 2)``), with the
analytic gradient; the Hessian is central differences of that gradient. The
iterates are lifetimes' own up to rounding, so the optimum, a
``ConvergenceError`` and everything lifetimes' ``fit`` sets after its
``_fit`` stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent
from typing import Any

import numpy as np
import pandas as pd
from lifetimes import ModifiedBetaGeoFitter
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize
from scipy.special import digamma, gammaln
from threadpoolctl import threadpool_limits


def individual(theta: np.ndarray, z: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``r, alpha_i, a_i, b_i`` from ``theta`` and the covariates ``z`` (rows x k).

    >>> r, al, a, b = individual(np.log([0.2, 4.0, 0.8, 2.4]), np.zeros((2, 0)))
    >>> float(r), al.tolist(), a.tolist()
    (0.2, [4.0, 4.0], [0.8, 0.8])
    """
    r, alpha, a, b = np.exp(theta[:4])
    k = z.shape[1]
    lin = np.einsum("ij,jk->ik", z, np.column_stack([-theta[4:4 + k], theta[4 + k:4 + 2 * k], theta[4 + 2 * k:]]))
    return r, alpha * np.exp(lin[:, 0]), a * np.exp(lin[:, 1]), b * np.exp(lin[:, 2])


def _groups(values: np.ndarray, weights: np.ndarray,
            by_value: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``values``' distinct values, each row's index among them and their summed ``weights`` (``by_value``);
    otherwise the rows themselves (index None)."""
    if not by_value:
        return values, None, weights
    index, distinct = pd.factorize(values)
    return np.asarray(distinct, dtype=float), index, np.bincount(index, weights, len(distinct))


def _at(table: np.ndarray, index: np.ndarray | None) -> np.ndarray:
    """Each row's entry of a per-group ``table`` (the table itself when the groups are the rows)."""
    return table if index is None else table[index]


@dataclass(frozen=True)
class Rows:
    """Weighted (frequency, recency, T) rows and covariates ``z``, grouped for :func:`log_likelihood`.

    Without covariates (``z`` with no column) T is grouped by value (``uT``,
    ``iT``, weights ``wT``, weighted frequencies ``wxT``), and the rows with
    a drop-out term (``drop``: the repeat buyers; everyone for MBG/NBD) by
    frequency (``ux``, ``ix``, ``wx``) and by recency (``utx``, ``itx``);
    with covariates every group is one row (the indices are None).
    """

    z: np.ndarray
    shift: float  # 1 for MBG/NBD: its Beta terms count one more purchase occasion
    uT: np.ndarray
    iT: np.ndarray | None
    wT: np.ndarray
    wxT: np.ndarray
    drop: np.ndarray  # the rows with a drop-out term
    iTd: np.ndarray  # their T groups
    xd: np.ndarray
    wd: np.ndarray
    ux: np.ndarray
    ix: np.ndarray | None
    wx: np.ndarray
    utx: np.ndarray
    itx: np.ndarray | None

    @classmethod
    def of(cls, freq: Any, rec: Any, T: Any, weights: Any = None, z: Any = None, modified: bool = False) -> Rows:
        """The rows (lifetimes' time scaling already applied by the caller); ``modified``: MBG/NBD."""
        x, tx, T = (np.asarray(v, dtype=float) for v in (freq, rec, T))
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        z = np.zeros((len(x), 0)) if z is None else np.asarray(z, dtype=float).reshape(len(x), -1)
        by_value = z.shape[1] == 0
        uT, iT, wT = _groups(T, w, by_value)
        wxT = np.bincount(iT, w * x, len(uT)) if iT is not None else w * x
        drop = np.arange(len(x)) if modified else np.flatnonzero(x > 0)
        xd, wd = x[drop], w[drop]
        ux, ix, wx = _groups(xd, wd, by_value)
        utx, itx, _ = _groups(tx[drop], wd, by_value)
        return cls(z, float(modified), uT, iT, wT, wxT, drop, drop if iT is None else iT[drop], xd, wd, ux, ix, wx,
                   utx, itx)


def log_likelihood(theta: np.ndarray, rows: Rows, grad: bool = True) -> tuple[float, np.ndarray | None]:
    """The weighted log-likelihood of ``rows`` at ``theta`` and (``grad``) its gradient in ``theta``.

    Arrays named per group hold one entry per T group (``lat``), frequency
    group (``beta``) or recency group (``lar``); without covariates the
    parameters are plain numbers, with covariates each group is a row.
    """
    k, drop, ix = rows.z.shape[1], rows.drop, rows.ix
    if k:
        r, al, a, b = individual(theta, rows.z)
        ald, ad, bd = al[drop], a[drop], b[drop]
    else:
        r, al, a, b = np.exp(theta[:4])
        ald, ad, bd = al, a, b
    ux, bx, abx = rows.ux, bd + rows.ux + rows.shift, ad + bd + rows.ux + rows.shift
    last = bd + ux - 1 + rows.shift  # b + x - 1 (MBG/NBD: b + x), per frequency group
    lat, log_al, rT = np.log(al + rows.uT), np.log(al) * rows.wT, r * rows.wT + rows.wxT
    gap = lat[rows.iTd] - _at(np.log(ald + rows.utx), rows.itx)  # log(alpha + T) - log(alpha + t_x), per row
    d = _at(np.log(ad) - np.log(last), ix) + (r + rows.xd) * gap
    e = np.exp(-np.abs(d))
    beta = gammaln(ad + bd) + gammaln(bx) - gammaln(bd) - gammaln(abx)
    total = (r * log_al.sum() - (lat * rT).sum() + ((gammaln(r + ux) - gammaln(r) + beta) * rows.wx).sum()
             + (rows.wd * (np.log(1 + e) + np.maximum(d, 0))).sum())
    if not grad:
        return float(total), None
    wq = rows.wd * np.where(d > 0, 1.0, e) / (1 + e)  # weight x the probability of having dropped out
    ft = al / (al + rows.uT)
    dg_ab, dg_abx = digamma(ad + bd), digamma(abx)
    # d / d log of alpha_i, a_i, b_i: per group (*_g) and per drop-out row (*_d)
    al_g, al_d = r * rows.wT - ft * rT, wq * (r + rows.xd) * (ft[rows.iTd] - _at(ald / (ald + rows.utx), rows.itx))
    a_g, a_d = ad * (dg_ab - dg_abx) * rows.wx, wq
    b_g, b_d = bd * (dg_ab + digamma(bx) - digamma(bd) - dg_abx) * rows.wx, -wq * _at(bd / last, ix)
    g = np.array([r * (((digamma(r + ux) - digamma(r)) * rows.wx).sum() + log_al.sum() - (lat * rows.wT).sum()
                       + (wq * gap).sum()),
                  al_g.sum() + al_d.sum(), a_g.sum() + a_d.sum(), b_g.sum() + b_d.sum()])
    if not k:
        return float(total), g
    per_row = np.zeros((len(al_g), 3))  # d / d (-log alpha_i, log a_i, log b_i): the coefficients' chain rule
    per_row[:, 0] = -al_g
    per_row[drop, 0] -= al_d
    per_row[drop, 1], per_row[drop, 2] = a_g + a_d, b_g + b_d
    return float(total), np.concatenate([g, np.einsum("ij,ik->kj", rows.z, per_row).ravel()])


def objective(log_params: np.ndarray, freq: np.ndarray, rec: np.ndarray, T: np.ndarray, weights: np.ndarray,
              penalizer_coef: float, modified: bool = False, rows: Rows | None = None) -> tuple[float, np.ndarray]:
    """lifetimes' BG/NBD (or, ``modified``, MBG/NBD) ``_negative_log_likelihood`` and its gradient in log parameters.

    ``rows``: the same rows already grouped (:meth:`Rows.of`), to group them once per fit.
    """
    rows = Rows.of(freq, rec, T, weights, modified=modified) if rows is None else rows
    params = np.exp(np.asarray(log_params, dtype=float))
    total = float(np.sum(weights))
    ll, grad = log_likelihood(np.asarray(log_params, dtype=float), rows)
    assert grad is not None
    return -ll / total + penalizer_coef * float(params @ params), -grad / total + 2.0 * penalizer_coef * params ** 2

def gradient_hessian(grad: Any, u: np.ndarray, h: float = 1e-5, *, relative: bool = False,
                     free: np.ndarray | None = None) -> np.ndarray:
    """The Hessian by central differences of an analytic gradient ``grad(u)``, symmetrised.

    The step is ``h`` (times ``max(1, |u_j|)`` when ``relative``); with ``free`` only those coordinates
    are stepped and the Hessian is theirs. Also the covariate BG/NBD's (:mod:`helpers.clv.covariates`).

    >>> gradient_hessian(lambda u: np.array([2 * u[0] + 3 * u[1], 3 * u[0]]), np.array([1.0, 2.0])).round(6).tolist()
    [[2.0, 3.0], [3.0, 0.0]]
    """
    free = np.arange(len(u)) if free is None else np.asarray(free)
    columns = []
    for j in free:
        step = h * max(1.0, abs(u[j])) if relative else h
        up, down = u.copy(), u.copy()
        up[j] += step
        down[j] -= step
        columns.append((np.asarray(grad(up)) - np.asarray(grad(down)))[free] / (2 * step))
    rows = np.array(columns)
    return (rows + rows.T) / 2


def lifetimes_fit(model: Any, minimizing_function_args: tuple, initial_params: Any, params_size: int, disp: bool,
                  tol: float = 1e-7, bounds: Any = None, **kwargs: Any) -> tuple[np.ndarray, float, np.ndarray]:
    """lifetimes' ``BaseFitter._fit`` (same arguments, optimiser, start and result) with the numpy gradient.

    Installed on one fitter instance by :meth:`~.base.BTYDModel.new_fitter`;
    removes itself on use.
    """
    model.__dict__.pop("_fit", None)
    modified = isinstance(model, ModifiedBetaGeoFitter)

    rows = Rows.of(*minimizing_function_args[:4], modified=modified)  # grouped once for the whole fit

    def fun(u: np.ndarray, *args: Any) -> tuple[float, np.ndarray]:
        return objective(u, *minimizing_function_args, modified=modified, rows=rows)

    x0 = 0.1 * np.ones(params_size) if initial_params is None else initial_params
    with threadpool_limits(1):  # a 4-parameter problem: BLAS threads only wait for each other
        output = minimize(fun, jac=True, method=None, tol=tol, x0=x0, options={"disp": disp, **kwargs},
                          bounds=bounds)
        if output.success:
            return output.x, output.fun, gradient_hessian(lambda u: fun(u)[1], output.x)
    print(output)  # as lifetimes does (the wrapper silences it)
    raise ConvergenceError(dedent("""
        The model did not converge. Try adding a larger penalizer to see if that helps convergence.
        """))
