"""Pareto/NBD (Schmittlein, Morrison and Colombo 1987): a customer may drop out at any time.

Purchase rates are Gamma (r, alpha) and drop-out rates Gamma (s, beta)
across customers. lifetimes fits it on natural (not log) parameters, sums the
weighted likelihood and draws its default start at random, so this family
fixes its starts (:meth:`ParetoNBD.default_start`). Its optimiser is
:func:`.pareto_fit.lifetimes_fit` (L-BFGS-B with the analytic gradient, same
objective and optimum, several times faster than lifetimes' Nelder-Mead).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lifetimes import ParetoNBDFitter

from helpers.clv.models import pareto_fit, simulate
from helpers.clv.models.base import SCALE_MIN, SHAPE_MAX, SHAPE_MIN, BTYDModel


class ParetoNBD(BTYDModel, key="pareto", title="Pareto/NBD", fitter=ParetoNBDFitter, simulator=simulate.pareto_nbd,
                parameter_names=("r", "alpha", "s", "beta")):
    """The Pareto/NBD wrapper; its drop-out Gamma (s, beta) is what :meth:`drop_out_problems` checks.

    >>> ParetoNBD.boundary_problems({"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}, 78.0)
    []
    >>> ParetoNBD.boundary_problems({"r": 0.55, "alpha": 10.6, "s": 500.0, "beta": 11.7})[0][:14]
    's = 500 explod'
    """
    sums_likelihood = True
    fit_options: dict[str, Any] = {"maxiter": 20_000}
    fast_fit = pareto_fit.lifetimes_fit  # L-BFGS-B with the analytic gradient instead of Nelder-Mead

    @classmethod
    def default_start(cls) -> np.ndarray:
        """The centre of lifetimes' unseeded random start: 1.0 for every (time-scaled) parameter."""
        return np.ones(4)

    @classmethod
    def seeded_start(cls, seed: int) -> np.ndarray:
        """A seeded start drawn around lifetimes' own range."""
        return np.random.default_rng(seed).uniform(0.3, 3.0, 4)

    @classmethod
    def to_start(cls, params: np.ndarray) -> np.ndarray:
        """lifetimes' Pareto/NBD starts from natural parameters."""
        return params

    @classmethod
    def drop_out_problems(cls, params: dict[str, float], t_max: float | None) -> list[str]:
        """The drop-out Gamma's scale collapsing, or its shape exploding or collapsing, in business terms."""
        out = []
        s_, beta = params["s"], params["beta"]
        if t_max and beta / t_max < SCALE_MIN:
            out.append(f"beta = {beta:.3g} collapses to 0: drop-out rates without bound, customers drop out at once")
        if s_ > SHAPE_MAX:
            out.append(f"s = {s_:.4g} explodes (beta = {beta:.4g}): drop-out rates do not vary between customers")
        elif s_ < SHAPE_MIN:
            out.append(f"s = {s_:.3g} collapses to 0: customers either never drop out or drop out at once")
        return out

    @classmethod
    def conditional_log_likelihood(cls, params: np.ndarray, f: np.ndarray, r: np.ndarray, t: np.ndarray) -> float:
        """lifetimes' per-customer Pareto/NBD log-likelihood, summed."""
        return float(np.sum(ParetoNBDFitter._conditional_log_likelihood(params, f, r, t)))
