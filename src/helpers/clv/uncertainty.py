"""The uncertainty of fitted parameters: the Laplace (normal) approximation of the likelihood at the fit.

For a BTYD fit (:func:`parameter_uncertainty`) and a Gamma-Gamma fit
(:func:`spend_uncertainty`): the inverse of the Hessian of the total negative
log-likelihood (with the penalty the fit used) in the log parameters, by
central finite differences on the distinct (frequency, recency, T) rows with
their weights, so it costs a few dozen likelihood evaluations at any
population size. lifetimes' own ``variance_matrix_`` (BG/NBD, MBG/NBD,
Gamma-Gamma; none for Pareto/NBD) multiplies the inverse Hessian by
``params ** 2`` along one axis only, so only its diagonal - the standard
errors, which agree with :attr:`Uncertainty.standard_errors` - is usable.
:mod:`helpers.clv.intervals` propagates it to the predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from helpers.clv.models import MODEL_CLASSES, BTYDModel, SpendFit
from helpers.clv.summary import distinct_rows
from helpers.errors import DataError


@dataclass
class Uncertainty:
    """The normal approximation of the fitted parameters on the log scale: mean, covariance, and whether it exists."""

    names: tuple[str, ...]
    mean: np.ndarray
    cov: np.ndarray | None
    message: str = "positive definite"

    @property
    def ok(self) -> bool:
        """True when the Hessian was positive definite (there is a covariance)."""
        return self.cov is not None

    @property
    def standard_errors(self) -> pd.Series:
        """Standard errors of the natural parameters (delta method: parameter x standard error of its log)."""
        se = np.sqrt(np.diag(self.cov)) if self.cov is not None else np.full(len(self.names), np.nan)
        return pd.Series(np.exp(self.mean) * se, index=list(self.names))

    def draws(self, n: int, seed: int) -> np.ndarray:
        """``n`` seeded draws of the natural parameters (n x parameters)."""
        rng = np.random.default_rng(seed)
        return np.exp(rng.multivariate_normal(self.mean, self.cov, size=n, method="cholesky"))


def hessian(func: Any, x: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """Central finite-difference Hessian of a scalar ``func`` at ``x``.

    >>> np.round(hessian(lambda u: u[0] ** 2 + 3 * u[0] * u[1], np.array([1.0, 2.0])), 6).tolist()
    [[2.0, 3.0], [3.0, 0.0]]
    """
    k = len(x)
    out = np.zeros((k, k))
    f0 = func(x)
    for i in range(k):
        e_i = np.eye(k)[i] * step
        out[i, i] = (func(x + e_i) - 2 * f0 + func(x - e_i)) / step ** 2
        for j in range(i):
            e_j = np.eye(k)[j] * step
            out[i, j] = out[j, i] = (func(x + e_i + e_j) - func(x + e_i - e_j) - func(x - e_i + e_j)
                                     + func(x - e_i - e_j)) / (4 * step ** 2)
    return out


def _from_hessian(names: tuple[str, ...], mean: np.ndarray, h: np.ndarray) -> Uncertainty:
    """Invert a Hessian if it is positive definite; otherwise an :class:`Uncertainty` without covariance."""
    if not np.all(np.isfinite(h)):
        return Uncertainty(names, mean, None, "the Hessian is not finite: no intervals")
    h = (h + h.T) / 2
    eig = np.linalg.eigvalsh(h)
    if eig.min() <= 1e-10 * max(abs(eig.max()), 1.0):
        return Uncertainty(names, mean, None, f"the Hessian is not positive definite (smallest eigenvalue "
                           f"{eig.min():.3g}): the likelihood is flat or a saddle at the fit, the parameters are not "
                           "identified by these data, so there are no intervals")
    return Uncertainty(names, mean, np.linalg.inv(h))


def parameter_uncertainty(fit: BTYDModel) -> Uncertainty:
    """The normal approximation of a BTYD fit's log parameters (natural time unit), from the fitting data.

    The Hessian is that of the objective lifetimes minimised (with its
    penalty), on the distinct rows of ``fit.model.data`` with their weights,
    in lifetimes' time scaling, and brought to the scale of the total
    log-likelihood (BG/NBD and MBG/NBD average it over customers, Pareto/NBD
    as the wrapper calls it sums it).
    """
    if not fit.ok:
        raise DataError(f"{fit.label} has no fit, so no parameter uncertainty: {fit.message}")
    model, fitter = fit.model, MODEL_CLASSES[fit.name]
    names = tuple(model.params_.index)
    rows, _ = distinct_rows(model.data)
    scale = float(model._scale)
    f = rows["frequency"].to_numpy()
    r, T, w = rows["recency"].to_numpy() * scale, rows["T"].to_numpy() * scale, rows["weight"].to_numpy(float)
    scaled = model.params_.to_numpy(dtype=float).copy()
    timed = np.array([n in ("alpha", "beta") for n in names])
    scaled[timed] *= scale
    pen = fit.penalizer
    if fit.sums_likelihood:  # Pareto/NBD: natural parameters, summed likelihood (penalty as lifetimes saw it)
        def objective(u: np.ndarray) -> float:
            theta = np.exp(u)
            return float(-(w * fitter._conditional_log_likelihood(theta, f, r, T)).sum() + pen * np.sum(theta ** 2))
    else:
        def objective(u: np.ndarray) -> float:
            return float(w.sum() * fitter._negative_log_likelihood(u, f, r, T, w, pen))
    with np.errstate(all="ignore"):
        h = hessian(objective, np.log(scaled))
    mean = np.log(model.params_.to_numpy(dtype=float))  # the log shift of time scaling leaves the Hessian unchanged
    return _from_hessian(names, mean, h)


def spend_uncertainty(spend: SpendFit) -> Uncertainty:
    """The normal approximation of Gamma-Gamma's log parameters (p, q, v), from its fitting data."""
    model = spend.model
    data = model.data
    x, m, w = (data[c].to_numpy(dtype=float) for c in ("frequency", "monetary_value", "weights"))

    def objective(u: np.ndarray) -> float:
        return float(w.sum() * type(model)._negative_log_likelihood(u, x, m, w, model.penalizer_coef))

    mean = np.log(model.params_.to_numpy(dtype=float))
    with np.errstate(all="ignore"):
        return _from_hessian(tuple(model.params_.index), mean, hessian(objective, mean))
