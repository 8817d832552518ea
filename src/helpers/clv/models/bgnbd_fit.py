"""BG/NBD and MBG/NBD: lifetimes' own fit, with the gradient and Hessian in numpy instead of autograd.

lifetimes fits both with scipy's BFGS on log parameters, the gradient from
autograd (about ten times the cost of the likelihood) and, at the end, the
Hessian from autograd (for ``variance_matrix_``). Here the same BFGS runs from
the same start with the same tolerance on the same objective
(``_negative_log_likelihood``: the weighted mean log-likelihood plus
``penalizer_coef * sum(params ** 2)``), with its analytic gradient; the
Hessian is central differences of that gradient. The iterates are lifetimes'
own up to rounding, so the optimum, a ``ConvergenceError`` and everything
lifetimes' ``fit`` sets after its ``_fit`` stay as they were.

With ``P`` the weight of the "alive at T" term in each row's likelihood
(Fader, Hardie and Lee 2005, equation 6; Batislam et al. 2007 for MBG/NBD),
the derivatives are those of ``gammaln`` and ``log`` terms: ``digamma`` per
distinct frequency, the rest per row.
"""

from __future__ import annotations

from textwrap import dedent
from typing import Any

import numpy as np
from lifetimes import ModifiedBetaGeoFitter
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln
from threadpoolctl import threadpool_limits


def _per_frequency(fn: Any, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``fn(values + x)`` computed once per distinct frequency (a BTYD summary has few)."""
    ux, ix = np.unique(x, return_inverse=True)
    return fn(values + ux)[ix]


def objective(log_params: np.ndarray, freq: np.ndarray, rec: np.ndarray, T: np.ndarray, weights: np.ndarray,
              penalizer_coef: float, modified: bool = False) -> tuple[float, np.ndarray]:
    """lifetimes' BG/NBD (or, ``modified``, MBG/NBD) ``_negative_log_likelihood`` and its gradient in log parameters."""
    params = np.exp(np.asarray(log_params, dtype=float))
    r, alpha, a, b = params
    x = np.asarray(freq, dtype=float)
    shift = 1.0 if modified else 0.0  # MBG/NBD's Beta terms count one more purchase occasion
    lat, lar = np.log(alpha + T), np.log(alpha + rec)
    a1 = _per_frequency(gammaln, r, x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + _per_frequency(gammaln, b + shift, x) - gammaln(b) - _per_frequency(gammaln, a + b + shift, x)
    a3 = -(r + x) * lat
    if modified:
        a4 = np.log(a) - np.log(b + x) + (r + x) * (lat - lar)
        ll = a1 + a2 + a3 + np.logaddexp(a4, 0.0)
        q = expit(a4)  # the weight of the "dropped out" term
        d_drop_b = -1.0 / (b + x)
    else:
        a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * lar
        top = np.maximum(a3, a4)
        e3, e4 = np.exp(a3 - top), np.exp(a4 - top) * (x > 0)
        ll = a1 + a2 + np.log(e3 + e4) + top
        q = e4 / (e3 + e4)
        d_drop_b = -1.0 / (b + np.maximum(x, 1) - 1)
    p = 1.0 - q
    w = np.asarray(weights, dtype=float)
    total = w.sum()
    da = digamma(a + b) - _per_frequency(digamma, a + b + shift, x)
    # d ll / d (r, alpha, a, b); MBG/NBD's A3 is always there, its A4 adds (log(alpha+T) - log(alpha+t_x)) * q
    if modified:
        dr = -lat + q * (lat - lar)
        dalpha = -(r + x) / (alpha + T) + q * (r + x) * (1.0 / (alpha + T) - 1.0 / (alpha + rec))
    else:
        dr = -p * lat - q * lar
        dalpha = -(r + x) * (p / (alpha + T) + q / (alpha + rec))
    grad = np.array([
        w @ (_per_frequency(digamma, r, x) + dr) + total * (np.log(alpha) - digamma(r)),
        total * r / alpha + w @ dalpha,
        w @ (da + q / a),
        w @ (da + _per_frequency(digamma, b + shift, x) + q * d_drop_b) - total * digamma(b),
    ])
    value = -(w @ ll) / total + penalizer_coef * float(params @ params)
    return float(value), params * (-grad / total + 2.0 * penalizer_coef * params)


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

    def fun(u: np.ndarray, *args: Any) -> tuple[float, np.ndarray]:
        return objective(u, *minimizing_function_args, modified=modified)

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
