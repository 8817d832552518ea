"""The vectorised simulators draw what the models say: lifetimes' closed-form counts, and fits recover the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes import BetaGeoBetaBinomFitter, BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.datasets import load_cdnow_summary

from helpers import clv
from helpers.clv.models import simulate
from helpers.clv.models.bgnbd import BetaGeo
from helpers.clv.models.pareto import ParetoNBD

#: CDNOW's published fits (Fader, Hardie and Lee 2005; Fader and Hardie 2005) and the donations' BG/BB (FHS 2010).
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
BGBB = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
N = 200_000


def fitted(fitter: type, params: dict[str, float]) -> object:
    """A lifetimes fitter holding ``params`` as if it had fitted them."""
    model = fitter()
    model.params_ = pd.Series(params)
    return model


def within(shares: np.ndarray, probabilities: np.ndarray, n: int, sigmas: float = 4.5) -> bool:
    """Each simulated share lies within ``sigmas`` binomial standard errors of its probability."""
    se = np.sqrt(probabilities * (1 - probabilities) / n)
    return bool((np.abs(shares - probabilities) <= sigmas * se + 1e-12).all())


@pytest.mark.parametrize("key,fitter", [("bgnbd", BetaGeoFitter), ("mbgnbd", ModifiedBetaGeoFitter)])
def test_purchase_counts_follow_lifetimes_closed_form(key: str, fitter: type) -> None:
    sim = getattr(simulate, key)(np.full(N, 39.0), *BGNBD.values(), np.random.default_rng(7))
    model = fitted(fitter, BGNBD)
    counts = np.arange(6)
    expected = np.array([float(model.probability_of_n_purchases_up_to_time(39.0, n)) for n in counts])
    shares = np.array([(sim["frequency"] == n).mean() for n in counts])
    assert within(shares, expected, N), (shares, expected)
    assert sim["frequency"].mean() == pytest.approx(float(model.expected_number_of_purchases_up_to_time(39.0)),
                                                    rel=0.02)


def test_pareto_counts_follow_its_likelihood_and_mean() -> None:
    sim = simulate.pareto_nbd(np.full(N, 39.0), *PARETO.values(), np.random.default_rng(7))
    params = np.array(list(PARETO.values()))
    none = np.exp(ParetoNBD.conditional_log_likelihood(params, np.zeros(1), np.zeros(1), np.full(1, 39.0)))
    assert within(np.array([(sim["frequency"] == 0).mean()]), np.array([none]), N)  # P(X(T) = 0) = L(0, 0, T)
    mean = float(fitted(ParetoNBDFitter, PARETO).expected_number_of_purchases_up_to_time(39.0))
    assert sim["frequency"].mean() == pytest.approx(mean, rel=0.03)
    assert ((sim["frequency"] > 0) | (sim["recency"] == 0)).all() and (sim["recency"] <= sim["T"]).all()


def test_bgbb_counts_follow_lifetimes_closed_form() -> None:
    sim = simulate.bgbb(np.full(N, 6), *BGBB.values(), np.random.default_rng(7))
    model = fitted(BetaGeoBetaBinomFitter, BGBB)
    model.data = pd.DataFrame({"frequency": range(7), "weights": 1})  # lifetimes reads the counts 0..6 from it
    expected = model.expected_number_of_transactions_in_first_n_periods(6)
    shares = sim["frequency"].value_counts(normalize=True).reindex(expected.index, fill_value=0)
    assert within(shares.to_numpy(), expected.iloc[:, 0].to_numpy() / expected.iloc[:, 0].sum(), N)


@pytest.mark.parametrize("family,truth", [(BetaGeo, BGNBD), (ParetoNBD, PARETO)])
def test_a_fit_on_simulated_customers_recovers_the_parameters(family: type, truth: dict[str, float]) -> None:
    # Frequency and recency jointly: the likelihood uses both, so a wrong recency would bias the fit.
    rng = np.random.default_rng(11)
    sim = family.simulator(rng.uniform(27, 39, 60_000).round(1), *truth.values(), rng)
    fit = family.fit(sim[["frequency", "recency", "T"]])
    assert fit.ok, fit.message
    assert fit.params == pytest.approx(truth, rel=0.2)  # seen: within 11%; a uniform recency misses by 65-1700%


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 5), st.floats(0.5, 50), st.floats(0.05, 5), st.floats(0.05, 20), st.integers(0, 2**31))
def test_every_family_draws_a_valid_seeded_summary(r: float, alpha: float, a: float, b: float, seed: int) -> None:
    T = np.random.default_rng(seed).uniform(0, 60, 500)
    for draw in (simulate.bgnbd, simulate.mbgnbd, simulate.pareto_nbd):
        sim = draw(T, r, alpha, a, b, np.random.default_rng(seed))
        assert list(sim.columns) == simulate.SIMULATED_COLUMNS and len(sim) == len(T)
        assert (sim["frequency"] >= 0).all() and (sim["recency"].between(0, sim["T"])).all()
        assert ((sim["frequency"] == 0) == (sim["recency"] == 0)).all()
        pd.testing.assert_frame_equal(sim, draw(T, r, alpha, a, b, np.random.default_rng(seed)))
    periods = np.random.default_rng(seed).integers(0, 12, 500)
    sim = simulate.bgbb(periods, a, b, a, b, np.random.default_rng(seed))
    assert (sim["frequency"] <= sim["recency"]).all() and (sim["recency"] <= periods).all()


def test_the_holdout_check_is_seeded_whole_and_leaves_numpy_alone() -> None:
    cdnow_summary = load_cdnow_summary(index_col=[0])
    fit = clv.fit_btyd("bgnbd", cdnow_summary)
    state = np.random.get_state()[1].copy()
    shares = fit.period_transactions(cdnow_summary)
    assert (np.random.get_state()[1] == state).all()  # the global generator is not touched
    pd.testing.assert_frame_equal(shares, fit.period_transactions(cdnow_summary))
    assert shares.sum().to_numpy() == pytest.approx([1, 1])
    assert (shares["actual"] - shares["model"]).abs().max() < 0.02  # BG/NBD fits CDNOW's repeat counts (FHL fig. 2)
