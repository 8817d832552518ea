"""BG/NBD with static covariates: lifetimes without them, known effects recovered, sound gradient, stage 05."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter
from lifetimes.datasets import load_cdnow_summary

from helpers import clv, rfm, stages
from helpers.clv import covariates as cov
from helpers.config import load_params
from helpers.errors import DataError
from helpers.stages.value_covariates import country_indicators, covariate_analysis
from tests_support import collected

pytestmark = pytest.mark.usefixtures("one_openmp_thread")

TRUE = {"r": 0.5, "alpha": 4.0, "a": 0.8, "b": 2.5}
EFFECTS = {"purchase": np.array([0.4, -0.3]), "dropout_a": np.array([-0.3, 0.2]), "dropout_b": np.array([0.2, 0.0])}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_summary(index_col=[0])


@pytest.fixture(scope="module")
def population() -> tuple[pd.DataFrame, pd.DataFrame]:
    """10,000 simulated customers with a standardised and a 0/1 covariate of known effect, in weeks, by purchase day."""
    rng = np.random.default_rng(14)
    n = 10_000
    z = pd.DataFrame({"value": rng.normal(size=n), "flag": (rng.random(n) < 0.3).astype(float)})
    T = rng.integers(30, 78, n).astype(float)
    return cov.simulate(z.to_numpy(), TRUE, EFFECTS, T, seed=15, day=1 / 7), z


@pytest.fixture(scope="module")
def fits(population: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[cov.CovariateFit, cov.CovariateFit]:
    summary, z = population
    base = cov.fit(summary)
    return base, cov.fit(summary, z, start=np.concatenate([base.theta, np.zeros(6)]))


def test_without_covariates_the_fit_is_lifetimes_betageofitter(cdnow: pd.DataFrame) -> None:
    mine = cov.fit(cdnow)
    theirs = BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert mine.converged and mine.df == 0
    np.testing.assert_allclose(mine.params.to_numpy(), theirs.params_.to_numpy(), rtol=1e-5)
    their_ll = -BetaGeoFitter._negative_log_likelihood(np.log(theirs.params_.to_numpy()), cdnow["frequency"].to_numpy(),
                                                       cdnow["recency"].to_numpy(), cdnow["T"].to_numpy(),
                                                       np.ones(len(cdnow)), 0.0) * len(cdnow)
    assert mine.log_likelihood == pytest.approx(their_ll, rel=1e-6)
    assert mine.log_likelihood == pytest.approx(cov.log_likelihood(mine.theta, cdnow, np.zeros((len(cdnow), 0))))
    twice = cov.fit(pd.concat([cdnow, cdnow]))  # the distinct rows carry the customers as weights
    assert twice.rows == mine.rows < len(cdnow) and twice.log_likelihood == pytest.approx(2 * mine.log_likelihood)
    # the published FHL (2005) estimates, and lifetimes' standard errors from the same Hessian
    assert mine.params.round(2).tolist() == [0.24, 4.41, 0.79, 2.43]
    se = np.sqrt(np.diag(mine.covariance)) * mine.params.to_numpy()
    np.testing.assert_allclose(se, theirs.standard_errors_.to_numpy(), rtol=1e-3)
    # predictions with everyone at the reference are lifetimes' predictions
    f, r, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    np.testing.assert_allclose(cov.expected_purchases(mine, 39.0, cdnow),
                               theirs.conditional_expected_number_of_purchases_up_to_time(39.0, f, r, T), rtol=1e-4)
    np.testing.assert_allclose(cov.p_alive(mine, cdnow), theirs.conditional_probability_alive(f, r, T), rtol=1e-4)


def test_known_covariate_effects_are_recovered_and_the_lr_test_rejects(
        fits: tuple[cov.CovariateFit, cov.CovariateFit]) -> None:
    base, fitted = fits
    assert fitted.converged and fitted.customers == fitted.rows == 10_000  # a continuous covariate: all distinct
    truth = np.concatenate([EFFECTS[p] for p in cov.PROCESSES])
    co = fitted.coefficients
    distance = np.abs(co["estimate"].to_numpy() - truth) / co["se"].to_numpy()
    assert (distance < 3).all(), co.assign(truth=truth)
    assert co.loc[co["process"] == "purchase", "p_value"].max() < 1e-6  # both purchase effects found
    lr = cov.lr_test(fitted, base)
    assert lr["df"] == 6 and lr["statistic"] > 100 and lr["p_value"] < 1e-10
    np.testing.assert_allclose(fitted.params.to_numpy(), list(TRUE.values()), rtol=0.2)


def test_a_covariate_without_effect_is_not_significant(population: tuple[pd.DataFrame, pd.DataFrame],
                                                        fits: tuple[cov.CovariateFit, cov.CovariateFit]) -> None:
    summary, _ = population
    base = fits[0]
    noise = pd.DataFrame({"noise": np.random.default_rng(16).normal(size=len(summary))})
    fitted = cov.fit(summary, noise, start=np.concatenate([base.theta, np.zeros(3)]))
    assert fitted.converged and cov.lr_test(fitted, base)["p_value"] > 0.01
    again = cov.fit(summary, noise, start=np.concatenate([base.theta, np.zeros(3)]))
    assert again.log_likelihood == fitted.log_likelihood  # deterministic


def test_purchase_only_covariates_keep_the_drop_out_coefficients_at_zero(
        population: tuple[pd.DataFrame, pd.DataFrame], fits: tuple[cov.CovariateFit, cov.CovariateFit]) -> None:
    summary, z = population
    base, full = fits
    purchase = cov.fit(summary, z, start=full.theta, dropout=False, se=False)
    co = purchase.coefficients
    assert purchase.converged and purchase.df == 2 and purchase.covariance is None
    assert (co.loc[co["process"] != "purchase", "estimate"] == 0).all()
    # nested models: base <= purchase only <= full, in likelihood
    assert base.log_likelihood < purchase.log_likelihood < full.log_likelihood


def test_the_gradient_agrees_with_finite_differences(cdnow: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    z = np.column_stack([rng.normal(size=len(cdnow)), rng.random(len(cdnow)) < 0.4]).astype(float)
    theta = np.concatenate([np.log([0.3, 5.0, 0.9, 2.0]), rng.normal(scale=0.2, size=6)])
    analytic = cov.gradient(theta, cdnow, z)
    eps = 1e-6
    numeric = np.array([(cov.log_likelihood(theta + eps * e, cdnow, z) - cov.log_likelihood(theta - eps * e, cdnow, z))
                        / (2 * eps) for e in np.eye(len(theta))])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-3)


def test_covariates_that_cannot_be_estimated_are_refused_and_countries_keep_a_reference(cdnow: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="one value"):
        cov.fit(cdnow, pd.DataFrame({"same": np.ones(len(cdnow))}, index=cdnow.index))
    only_one = country_indicators(pd.Series(["UK"] * 20))
    assert only_one.empty
    two = country_indicators(pd.Series(["UK"] * 18 + ["DE"] * 2))  # the largest joins the reference group
    assert list(two.columns) == ["country=DE"]


@pytest.fixture(scope="module")
def cdnow_tx(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The raw CDNOW sample, collected and cleaned by the project's stages."""
    return collected("cdnow_sample.yaml", Path(tmp_path_factory.mktemp("cov")) / "data", clean=True)


def test_no_forecast_means_no_analysis_with_the_reason(cdnow_tx: pd.DataFrame) -> None:
    params = load_params("cdnow_sample.yaml")

    class NoForecast:
        forecast, forecast_reason = False, "too few repeat buyers"

    days = clv.as_purchase_days(cdnow_tx, params.as_of)
    analysis = covariate_analysis(params, days, rfm.customer_table(cdnow_tx, params.as_of), NoForecast())
    assert analysis.effects_table() is None and "too few repeat buyers" in analysis.text()
    assert analysis.as_json()["reason"].startswith("no forecast")


@pytest.fixture(scope="module")
def cdnow_run(cdnow_tx: pd.DataFrame) -> tuple[pd.DataFrame, stages.ValueResult, object]:
    """Stage 05 on the raw CDNOW sample (BG/NBD only, to keep it fast)."""
    params = load_params("cdnow_sample.yaml", {"clv.models": ["bgnbd"], "clv.penalizers": [0.0]})
    return cdnow_tx, stages.value_customers(params, cdnow_tx, rfm.customer_table(cdnow_tx, params.as_of)), params


def test_stage_05_carries_the_covariate_analysis(cdnow_run: tuple[pd.DataFrame, stages.ValueResult, object]) -> None:
    _, result, params = cdnow_run
    entry = result.validation(params)["covariates"]
    assert entry["used"] == ["first_purchase_value"] and "country" in entry["skipped"][0]
    assert entry["lr_test"]["df"] == 3 and entry["lr_test"]["p_value"] < 0.001  # bigger first orders, more purchases
    assert result.covariates.effects_table().loc["first_purchase_value", "purchase_rate_x"] > 1
    holdout = result.covariates.holdout_table()
    assert holdout["group"].tolist()[-1] == "all customers" and holdout["customers"].iloc[-1] == len(result.calhold)
    assert holdout.iloc[-1]["actual"] == result.calhold["frequency_holdout"].sum()
    assert "LR " in result.covariates.text() and "twice as large" in result.covariates.text()


def test_without_covariates_there_is_no_entry_and_the_clv_is_the_same(
        cdnow_run: tuple[pd.DataFrame, stages.ValueResult, object]) -> None:
    tx, result, params = cdnow_run
    off = load_params("cdnow_sample.yaml", {"clv.models": ["bgnbd"], "clv.penalizers": [0.0], "clv.covariates": []})
    plain = stages.value_customers(off, tx, rfm.customer_table(tx, off.as_of))
    assert plain.validation(off)["covariates"] is None and plain.covariates.off
    pd.testing.assert_frame_equal(plain.value, result.value)
    with_cov, without = result.validation(params), plain.validation(off)
    assert {k: v for k, v in with_cov.items() if k != "covariates"} == {k: v for k, v in without.items()
                                                                         if k != "covariates"}
