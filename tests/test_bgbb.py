"""BG/BB for discrete-time logs: the donations data of Fader, Hardie and Shang (2010), lifetimes, recovery."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoBetaBinomFitter
from lifetimes.datasets import load_donations

from helpers import clv
from helpers.clv.models.bgbb import BetaGeoBetaBinom, period_summary, rf_matrix, simulate_bgbb
from helpers.errors import DataError

#: Fader, Hardie and Shang (2010), the 1995 cohort of 11,104 donors, six yearly opportunities 1996-2001.
PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
PUBLISHED_LL = -33_225.6


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    """The published recency/frequency matrix: 22 distinct rows with their counts."""
    return load_donations().rename(columns={"periods": "n_periods", "weights": "weight"})


@pytest.fixture(scope="module")
def fit(donations: pd.DataFrame) -> BetaGeoBetaBinom:
    return BetaGeoBetaBinom.fit(donations)


@pytest.fixture(scope="module")
def donors(donations: pd.DataFrame) -> pd.DataFrame:
    """One row per donor (11,104), from the matrix."""
    return donations.loc[donations.index.repeat(donations["weight"]), ["frequency", "recency", "n_periods"]] \
        .reset_index(drop=True)


def test_the_published_parameters_and_likelihood_are_reproduced(fit: BetaGeoBetaBinom,
                                                                donations: pd.DataFrame) -> None:
    assert fit.ok and fit.message == "converged" and fit.label == "BG/BB (penalizer 0)"
    assert {k: round(v, 3) for k, v in fit.params.items()} == PUBLISHED
    assert round(fit.log_likelihood(donations), 1) == PUBLISHED_LL
    assert int(donations["weight"].sum()) == 11_104 and len(donations) == 22


def test_one_row_per_donor_fits_and_predicts_as_the_matrix(fit: BetaGeoBetaBinom, donors: pd.DataFrame,
                                                           donations: pd.DataFrame) -> None:
    per_donor = BetaGeoBetaBinom.fit(donors)
    np.testing.assert_allclose(list(per_donor.params.values()), list(fit.params.values()), rtol=1e-6)
    assert fit.log_likelihood(donors) == pytest.approx(fit.log_likelihood(donations))
    assert (fit.p_alive(donors) * 1).sum() == pytest.approx((fit.p_alive(donations) * donations["weight"]).sum())


def test_p_alive_and_expected_transactions_are_lifetimes(fit: BetaGeoBetaBinom, donors: pd.DataFrame) -> None:
    theirs = BetaGeoBetaBinomFitter()
    theirs.params_ = fit.model.params_
    x, tx, n = (donors[c].to_numpy() for c in ("frequency", "recency", "n_periods"))
    np.testing.assert_allclose(fit.p_alive(donors), theirs.conditional_probability_alive(1, x, tx, n), rtol=1e-12)
    np.testing.assert_allclose(fit.p_alive(donors, 0), theirs.conditional_probability_alive(0, x, tx, n), rtol=1e-12)
    np.testing.assert_allclose(fit.expected_purchases(donors, 5),
                               theirs.conditional_expected_number_of_purchases_up_to_time(5, x, tx, n), rtol=1e-12)
    # a donor who gave in all six years is more likely alive and expected to give more than one who never did
    alive = fit.p_alive(pd.DataFrame({"frequency": [6, 0], "recency": [6, 0], "n_periods": [6, 6]}))
    assert alive.iloc[0] > 0.9 > 0.2 > alive.iloc[1]


def test_a_new_donor_expects_what_lifetimes_expects_of_a_donor_without_history(fit: BetaGeoBetaBinom) -> None:
    zero = np.zeros(1, dtype=int)
    for n in (1, 5, 10):
        lifetimes_value = fit.model.conditional_expected_number_of_purchases_up_to_time(n, zero, zero, zero)[0]
        assert fit.expected_new(n) == pytest.approx(lifetimes_value, rel=1e-10)
    assert fit.expected_new(0) == 0.0


def test_the_summary_builder_turns_a_donation_log_into_the_published_matrix(donations: pd.DataFrame,
                                                                           donors: pd.DataFrame) -> None:
    # a log that gives each donor's pattern: first gift in 1995, repeat gifts in years recency and x - 1 before it
    rows = []
    for i, (x, tx) in enumerate(zip(donors["frequency"], donors["recency"], strict=True)):
        years = [0] + list(range(1, x)) + ([tx] if x else [])
        rows += [(f"d{i}", dt.date(1995 + y, 6, 1)) for y in years]
        rows.append((f"d{i}", dt.date(1995 + max(years), 12, 1)))  # a second gift in a year is one transaction
    log = pd.DataFrame(rows, columns=["customer_id", "day"]).assign(amount=10.0)
    log["day"] = pd.to_datetime(log["day"])
    summary = period_summary(log, dt.date(2001, 12, 31), "Y")
    assert len(summary) == 11_104
    pd.testing.assert_frame_equal(rf_matrix(summary), donations[["frequency", "recency", "n_periods", "weight"]]
                                  .astype(np.int64), check_like=True)


def test_known_parameters_are_recovered_from_a_simulated_cohort() -> None:
    cohort = simulate_bgbb(20_000, 6, PUBLISHED, seed=3)
    fitted = BetaGeoBetaBinom.fit(cohort)
    np.testing.assert_allclose(list(fitted.params.values()), list(PUBLISHED.values()), rtol=0.05)
    assert len(rf_matrix(cohort)) <= 22  # six opportunities: at most 22 (frequency, recency) cells


def test_unusable_data_is_refused_or_reported() -> None:
    with pytest.raises(DataError, match="only 1 customer"):
        BetaGeoBetaBinom.fit(pd.DataFrame({"frequency": [1], "recency": [1], "n_periods": [2]}))
    with pytest.raises(DataError, match="none of the 20 customers made a repeat purchase"):
        BetaGeoBetaBinom.fit(pd.DataFrame({"frequency": [0] * 20, "recency": [0] * 20, "n_periods": [3] * 20}))
    same = pd.DataFrame({"frequency": [3] * 30 + [0] * 30, "recency": [3] * 30 + [0] * 30, "n_periods": [3] * 60})
    refused = BetaGeoBetaBinom.fit(same)  # everyone gives every year or never: nothing in between
    assert not refused.ok and refused.message.startswith(("unsound", "did not converge"))


def test_it_is_a_family_of_the_model_interface(donations: pd.DataFrame, donors: pd.DataFrame,
                                               fit: clv.BTYDModel) -> None:
    again = clv.fit_btyd("bgbb", donors)
    assert isinstance(again, BetaGeoBetaBinom) and again.params == pytest.approx(fit.params)
    assert fit.non_finite_predictions(donations, 5) == 0
    shares = fit.period_transactions(donors, max_frequency=6, sample=3_000)
    assert shares.index.tolist() == list(range(7))
    assert (shares["actual"] - shares["model"]).abs().max() < 0.03  # the calibration fit of FHS 2010, figure 3
