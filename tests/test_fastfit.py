"""The fast fits: Pareto/NBD (:mod:`helpers.clv.models.pareto_fit`), BG/NBD and MBG/NBD (:mod:`~.bgnbd_fit`).

Checked against lifetimes itself: its per-customer likelihood (to 1e-10), finite differences of its
objective (the gradient), and its Nelder-Mead optimum on seeded Pareto/NBD populations from lifetimes'
own simulator. Nelder-Mead stops at tol 1e-7 on the natural parameters: from two starts it agrees with
itself to 8e-7 relative (measured on six populations of 800 customers), so the parameters must agree to
1e-5 and the objective must be no worse than Nelder-Mead's (1e-9 relative). BG/NBD and MBG/NBD keep
lifetimes' BFGS and start, so their fits must be lifetimes' own (1e-9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.datasets import load_cdnow_summary
from lifetimes.generate_data import pareto_nbd_model
from lifetimes.utils import ConvergenceError
from scipy.special import hyp2f1

from helpers.clv.models import BetaGeo, ModifiedBetaGeo, ParetoNBD, bgnbd_fit, pareto_fit
from helpers.clv.models.base import quiet
from helpers.clv.summary import distinct_rows

#: Time-scaled parameters (the oldest customer's age is 1): alpha < beta, alpha > beta, alpha = beta, and
#: far apart (the hypergeometric argument above Z_SERIES: scipy's hyp2f1 and differences).
POINTS = [(0.55, 0.136, 0.61, 0.150), (1.2, 0.9, 0.4, 0.05), (0.7, 0.3, 1.5, 0.3), (2.0, 0.5, 0.1, 0.01),
          (0.5, 0.01, 0.3, 3.0)]


class NelderMead(ParetoNBDFitter):
    """lifetimes' fitter with its own optimiser (the fast fit replaces only lifetimes' own class's)."""


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_summary()[["frequency", "recency", "T"]].astype(float)


@pytest.fixture(scope="module")
def scaled(cdnow: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """CDNOW's distinct rows as lifetimes fits them: time scaled so the oldest customer's age is 1, weights."""
    rows, _ = distinct_rows(cdnow)
    scale = 1.0 / cdnow["T"].max()
    return (rows["frequency"].to_numpy(float), rows["recency"].to_numpy() * scale, rows["T"].to_numpy() * scale,
            rows["weight"].to_numpy(float))


@pytest.mark.parametrize("theta", POINTS)
def test_log_likelihood_equals_lifetimes_per_customer(cdnow: pd.DataFrame, theta: tuple[float, ...]) -> None:
    scale = 1.0 / cdnow["T"].max()
    f, r, t = cdnow["frequency"].to_numpy(), cdnow["recency"].to_numpy() * scale, cdnow["T"].to_numpy() * scale
    theirs = ParetoNBDFitter._conditional_log_likelihood(np.array(theta), f, r, t)
    ours = pareto_fit.log_likelihood(np.array(theta), pareto_fit.Rows.of(f, r, t))
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)


def test_hypergeometric_series_and_its_derivatives_equal_scipy() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(0.2, 40, 400)
    b = rng.uniform(0.05, 1.0, 400) * (a + 1)  # as in the likelihood: 0 < b < a + 1
    z = np.concatenate([rng.uniform(0, pareto_fit.Z_SERIES, 300), rng.uniform(pareto_fit.Z_SERIES, 0.99, 100)])
    value, da, db, dz = pareto_fit.log_hyp2f1(a, b, z)
    np.testing.assert_allclose(value, np.log(hyp2f1(a, b, a + 1, z)), rtol=1e-12, atol=1e-13)
    h = 1e-6
    for got, (ea, eb, ez) in ((da, (h, 0, 0)), (db, (0, h, 0)), (dz, (0, 0, h * (1 - z)))):
        up = np.log(hyp2f1(a + ea, b + eb, a + ea + 1, z + ez))
        down = np.log(hyp2f1(a - ea, b - eb, a - ea + 1, z - ez))
        np.testing.assert_allclose(got, (up - down) / (2 * (ea + eb + ez)), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("penalizer", [0.0, 0.05])
@pytest.mark.parametrize("theta", POINTS)
def test_gradient_equals_finite_differences_of_lifetimes_objective(scaled: tuple[np.ndarray, ...],
                                                                   theta: tuple[float, ...], penalizer: float) -> None:
    rows = pareto_fit.Rows.of(*scaled)
    u = np.log(theta)
    value, grad = pareto_fit.objective(u, rows, penalizer)

    def theirs(v: np.ndarray) -> float:
        return ParetoNBDFitter._negative_log_likelihood(np.exp(v), *scaled, penalizer)

    assert value == pytest.approx(theirs(u), rel=1e-12)
    h = 1e-5
    numeric = np.array([(theirs(u + h * e) - theirs(u - h * e)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


def test_a_fit_is_lifetimes_own_fitter_with_what_its_fit_sets(cdnow: pd.DataFrame) -> None:
    with quiet():
        ours = ParetoNBD.fit_lifetimes(0.0, cdnow, 1e-7, weighted=False, initial=np.ones(4))
        theirs = ParetoNBDFitter().fit(*(cdnow[c] for c in ("frequency", "recency", "T")), tol=1e-7,
                                       maxiter=20_000, initial_params=np.ones(4))
    assert type(ours) is ParetoNBDFitter and "_fit" not in vars(ours)
    assert sorted(vars(ours)) == sorted(vars(theirs))
    assert ours._scale == theirs._scale and ours._hessian_ is None
    pd.testing.assert_frame_equal(ours.data, theirs.data)
    np.testing.assert_allclose(ours.params_, theirs.params_, rtol=1e-5)
    assert list(ours.params_.index) == ["r", "alpha", "s", "beta"]
    best = theirs._negative_log_likelihood_
    assert ours._negative_log_likelihood_ <= best + 1e-9 * abs(best)
    f, r, t = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(ours.predict(10, f, r, t), theirs.predict(10, f, r, t), rtol=1e-4)
    assert len(ours.generate_new_data(size=len(f))) == len(f)


def test_a_fit_whose_gradient_does_not_vanish_keeps_the_better_of_it_and_nelder_mead(
        cdnow: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = ParetoNBDFitter._fit

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(pareto_fit, "GRADIENT_TOLERANCE", -1.0)  # never converged: Nelder-Mead runs too
    monkeypatch.setattr(ParetoNBDFitter, "_fit", counted)
    with quiet():
        model = ParetoNBD.fit_lifetimes(0.0, cdnow, 1e-7, weighted=True, initial=np.ones(4))
        plain = ParetoNBD.fit_lifetimes(0.0, cdnow, 1e-7, weighted=True, initial=np.ones(4), fitter=NelderMead)
    assert calls == [1, 1]
    assert model._negative_log_likelihood_ <= plain._negative_log_likelihood_
    np.testing.assert_allclose(model.params_, plain.params_, rtol=1e-5)


def test_a_fit_past_the_shape_boundary_skips_nelder_mead(cdnow: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a ridge to the boundary (a shape past SHAPE_MAX) the fit is refused anyway: no 700 slow evaluations."""
    calls = []
    monkeypatch.setattr(pareto_fit, "GRADIENT_TOLERANCE", -1.0)  # never converged ...
    monkeypatch.setattr(pareto_fit, "SHAPE_MAX", 0.01)  # ... and r, s past the (lowered) boundary
    monkeypatch.setattr(ParetoNBDFitter, "_fit", lambda *a, **k: calls.append(1))
    with quiet():
        model = ParetoNBD.fit_lifetimes(0.0, cdnow, 1e-7, weighted=True, initial=np.ones(4))
    assert calls == [] and model.params_["s"] > 0.01


def population(seed: int, customers: int, r: float, alpha: float, s: float, beta: float) -> pd.DataFrame:
    """A seeded Pareto/NBD population from lifetimes' own simulator (ages 5-80 weeks)."""
    rng = np.random.default_rng(seed)
    state = np.random.get_state()
    try:
        np.random.seed(seed)  # lifetimes' simulator draws from numpy's global generator
        data = pareto_nbd_model(rng.integers(5, 80, customers).astype(float), r, alpha, s, beta, size=customers)
    finally:
        np.random.set_state(state)
    return data[["frequency", "recency", "T"]].astype(float)


populations = st.builds(population, seed=st.integers(0, 10_000), customers=st.integers(300, 600),
                        r=st.floats(0.3, 2.0), alpha=st.floats(2.0, 30.0), s=st.floats(0.2, 2.0),
                        beta=st.floats(2.0, 30.0))


@settings(max_examples=3, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(summary=populations, penalizer=st.sampled_from([0.0, 0.05]))
def test_the_fast_fit_reaches_nelder_meads_optimum(summary: pd.DataFrame, penalizer: float) -> None:
    with quiet():
        ours = ParetoNBD.fit_lifetimes(penalizer, summary, 1e-7, weighted=True, initial=np.ones(4))
        theirs = ParetoNBD.fit_lifetimes(penalizer, summary, 1e-7, weighted=True, initial=np.ones(4),
                                         fitter=NelderMead)
    params = {k: float(v) for k, v in theirs.params_.items()}
    assume(not ParetoNBD.boundary_problems(params, float(summary["T"].max())))  # a ridge: no single optimum
    best = theirs._negative_log_likelihood_
    assert ours._negative_log_likelihood_ <= best + 1e-9 * abs(best)
    np.testing.assert_allclose(ours.params_, theirs.params_, rtol=1e-5)


# --- BG/NBD and MBG/NBD: lifetimes' BFGS with the numpy gradient -----------------------------------------------

BG_FITTERS = {False: BetaGeoFitter, True: ModifiedBetaGeoFitter}


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize("u", [(0.1, 0.1, 0.1, 0.1), (-1.4, -2.9, -0.2, 0.9), (-1.0, 2.0, -3.0, 1.5)])
def test_bg_objective_and_gradient_equal_lifetimes(scaled: tuple[np.ndarray, ...], modified: bool,
                                                   u: tuple[float, ...]) -> None:
    fitter, args, u = BG_FITTERS[modified], (*scaled, 0.03), np.array(u)
    value, grad = bgnbd_fit.objective(u, *args, modified=modified)
    assert value == pytest.approx(fitter._negative_log_likelihood(u, *args), rel=1e-13)
    h = 1e-6
    numeric = np.array([(fitter._negative_log_likelihood(u + h * e, *args)
                         - fitter._negative_log_likelihood(u - h * e, *args)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8 * np.abs(numeric).max())


@pytest.mark.parametrize("family", [BetaGeo, ModifiedBetaGeo])
def test_bg_fit_is_lifetimes_own_fit(cdnow: pd.DataFrame, family: type) -> None:
    own = type("Own", (family.fitter,), {})  # lifetimes' class under another name: its own autograd _fit
    with quiet():
        ours = family.fit_lifetimes(0.01, cdnow, 1e-7, weighted=True)
        theirs = family.fit_lifetimes(0.01, cdnow, 1e-7, weighted=True, fitter=own)
    assert type(ours) is family.fitter and "_fit" not in vars(ours)
    assert sorted(vars(ours)) == sorted(vars(theirs))
    np.testing.assert_allclose(ours.params_, theirs.params_, rtol=1e-9)  # the same BFGS iterates
    assert ours._negative_log_likelihood_ == pytest.approx(theirs._negative_log_likelihood_, rel=1e-12)
    np.testing.assert_allclose(ours._hessian_, theirs._hessian_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.standard_errors_, theirs.standard_errors_, rtol=1e-6)


def test_bg_fit_that_does_not_converge_raises_lifetimes_error(cdnow: pd.DataFrame) -> None:
    with quiet(), pytest.raises(ConvergenceError):
        BetaGeo.new_fitter(BetaGeoFitter, 0.0).fit(*(cdnow[c] for c in ("frequency", "recency", "T")), maxiter=2)


@pytest.mark.parametrize("modified", [False, True])
def test_bg_grouped_likelihood_equals_the_per_row_one_of_the_covariate_fit(scaled: tuple[np.ndarray, ...],
                                                                           modified: bool) -> None:
    """Without covariates the likelihood is computed per distinct frequency, age and recency; with a covariate
    whose coefficients are 0 per row: the same value and gradient (the covariate fit's path, unit weights)."""
    x, tx, T, w = scaled
    customers = [np.repeat(v, w.astype(int)) for v in (x, tx, T)]
    theta = np.array([-1.4, -2.9, -0.2, 0.9])
    grouped = bgnbd_fit.log_likelihood(theta, bgnbd_fit.Rows.of(x, tx, T, w, modified=modified))
    z = np.random.default_rng(0).normal(size=(len(customers[0]), 1))
    per_row = bgnbd_fit.log_likelihood(np.concatenate([theta, np.zeros(3)]),
                                       bgnbd_fit.Rows.of(*customers, z=z, modified=modified))
    assert per_row[0] == pytest.approx(grouped[0], rel=1e-12)
    np.testing.assert_allclose(per_row[1][:4], grouped[1], rtol=1e-10)
