"""Stage 05: BTYD summaries, the published CDNOW results, validation, CLV, P(alive), lifecycle."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value, load_dataset
from lifetimes.utils import ConvergenceError, summary_data_from_transaction_data

from helpers import clv
from helpers.config import load_params
from helpers.errors import DataError
from tests_support import collected
from tests_support import purchases as tx

CAL_END, AS_OF = dt.date(1997, 9, 30), dt.date(1998, 6, 30)
#: The papers print three decimals: agreement means rounding to the printed value (half a unit of the
#: last digit, at most 2e-3 relative for r = 0.243 and below 1e-4 for the larger parameters).
PRINTED = 5e-4


@pytest.fixture(scope="module")
def sample_tx(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The raw CDNOW 1/10 sample, collected and cleaned by the project's own stages."""
    return collected("cdnow_sample.yaml", tmp_path_factory.mktemp("clv") / "data", clean=True)


@pytest.fixture(scope="module")
def calibration(sample_tx: pd.DataFrame) -> pd.DataFrame:
    return clv.calibration_holdout(sample_tx, CAL_END, AS_OF, "W")


# --- published results: Fader, Hardie and Lee (2005) on the CDNOW sample -------------------------

def test_summary_from_raw_transactions_equals_the_published_cdnow_summary(calibration: pd.DataFrame) -> None:
    raw = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+", names=["cust", "sid", "d", "q", "a"],
                       dtype={"cust": str})
    to_sample_id = raw.drop_duplicates("cust").set_index("cust")["sid"]
    ours = calibration.rename(index=to_sample_id.to_dict())
    published = load_cdnow_summary(index_col=[0])
    ours = ours.loc[published.index]
    assert len(ours) == 2_357
    assert (ours["frequency"] == published["frequency"]).all()
    np.testing.assert_allclose(ours["recency"], published["recency"], atol=0.005)  # published to 2 decimals
    np.testing.assert_allclose(ours["T"], published["T"], atol=0.005)


PUBLISHED = {  # Fader, Hardie and Lee (2005), CDNOW sample, calibration weeks 1-39
    "bgnbd": ({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
    "pareto": ({"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0),
}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_models_reproduce_the_published_parameters_and_likelihood(calibration: pd.DataFrame, model: str) -> None:
    expected, log_likelihood = PUBLISHED[model]
    fit = clv.fit_btyd(model, calibration)
    for name, value in expected.items():
        assert fit.model.params_[name] == pytest.approx(value, abs=PRINTED), name
    assert clv.log_likelihood(fit, calibration) == pytest.approx(log_likelihood, abs=0.05)


def test_gamma_gamma_reproduces_the_published_spend_model(calibration: pd.DataFrame) -> None:
    published = load_cdnow_summary_data_with_monetary_value()  # mean spends rounded to cents
    shipped = clv.fit_spend(published).model.params_
    ours = clv.fit_spend(calibration)  # mean repeat spend computed from the raw transactions
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert shipped[name] == pytest.approx(value, rel=1e-3, abs=0.005), name  # looser of the two
        assert ours.model.params_[name] == pytest.approx(value, abs=0.005), name  # printed to two decimals
    assert ours.used == 946 and ours.excluded_non_positive == 0
    assert abs(ours.correlation) < 0.2  # the independence assumption holds on CDNOW


def test_counting_same_day_purchases_twice_would_fail_the_published_test(sample_tx: pd.DataFrame,
                                                                         calibration: pd.DataFrame) -> None:
    """The tests above are sensitive: a summary that counts every line as a purchase misses the numbers."""
    in_calibration = sample_tx[sample_tx["order_ts"] < pd.Timestamp(CAL_END) + pd.Timedelta(days=1)]
    lines = in_calibration.groupby("customer_id").size() - 1
    wrong = calibration.assign(frequency=lines.reindex(calibration.index).astype(float))
    assert wrong["frequency"].sum() > calibration["frequency"].sum()  # the sample has same-day lines
    fit = clv.fit_btyd("bgnbd", wrong)
    assert fit.model.params_["r"] != pytest.approx(0.243, abs=PRINTED)


# --- summaries --------------------------------------------------------------------------------

def test_daily_summary_matches_lifetimes_own_summary(sample_tx: pd.DataFrame) -> None:
    ours = clv.btyd_summary(sample_tx, AS_OF, "D")
    theirs = summary_data_from_transaction_data(sample_tx, "customer_id", "order_ts", monetary_value_col="amount",
                                                observation_period_end=str(AS_OF), freq="D")
    theirs = theirs.loc[ours.index]
    for col in ("frequency", "recency", "T"):
        np.testing.assert_allclose(ours[col], theirs[col])
    np.testing.assert_allclose(ours["monetary_value"], theirs["monetary_value"], rtol=1e-9)


def test_holdout_counts_only_the_calibration_cohort() -> None:
    frame = tx([("a", "2020-01-01", 1.0), ("a", "2020-02-01", 1.0), ("a", "2020-05-01", 1.0),
                ("a", "2020-05-01 18:00", 1.0), ("b", "2020-04-15", 1.0)])
    ch = clv.calibration_holdout(frame, dt.date(2020, 3, 31), dt.date(2020, 6, 30), "D")
    assert ch.index.tolist() == ["a"]
    assert ch.loc["a", ["frequency", "frequency_holdout", "duration_holdout"]].tolist() == [1.0, 1.0, 91.0]
    with pytest.raises(DataError, match="must be before as_of"):
        clv.calibration_holdout(frame, dt.date(2020, 6, 30), dt.date(2020, 6, 30), "D")


def test_customer_first_seen_on_as_of_gets_finite_predictions(calibration: pd.DataFrame) -> None:
    fit = clv.fit_btyd("bgnbd", calibration)
    newcomer = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0]}, index=["new"])
    assert clv.p_alive(fit, newcomer).item() == 1.0
    assert np.isfinite(clv.expected_purchases(fit, newcomer, 52).item())


def test_bgnbd_gives_one_time_buyers_p_alive_one_by_construction(calibration: pd.DataFrame) -> None:
    bg, mbg = clv.fit_btyd("bgnbd", calibration), clv.fit_btyd("mbgnbd", calibration)
    once = calibration[calibration["frequency"] == 0]
    assert (clv.p_alive(bg, once) == 1).all()
    assert (clv.p_alive(mbg, once) < 1).all()


# --- fitting failures -----------------------------------------------------------------------------

def test_all_one_time_buyers_is_a_clear_error() -> None:
    summary = pd.DataFrame({"frequency": [0.0] * 5, "recency": [0.0] * 5, "T": [10.0] * 5})
    with pytest.raises(DataError, match="none of the 5 customers made a repeat purchase"):
        clv.fit_btyd("bgnbd", summary)


class _FailsFirst(BetaGeoFitter):
    calls = 0

    def fit(self, *args, **kwargs):  # type: ignore[override]
        type(self).calls += 1
        if type(self).calls == 1:
            raise ConvergenceError("The model did not converge. Try adding a larger penalizer")
        return super().fit(*args, **kwargs)


class _AlwaysFails(BetaGeoFitter):
    def fit(self, *args, **kwargs):  # type: ignore[override]
        raise ConvergenceError("The model did not converge.")


def test_a_failed_fit_tries_the_remedies_and_says_so(calibration: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(clv.MODEL_CLASSES, "bgnbd", _FailsFirst)
    fit = clv.fit_btyd("bgnbd", calibration)
    assert fit.ok and fit.message == "converged after remedy (other starting values (seeded))"
    assert fit.attempts[0].startswith("as asked: ConvergenceError")
    # the seeded second start reaches the published optimum too (Fader, Hardie and Lee 2005)
    assert fit.model.params_["a"] == pytest.approx(0.793, abs=5e-4) and fit.model.params_["r"] == pytest.approx(0.243, abs=5e-4)


def test_when_nothing_fits_the_comparison_stops_with_every_reason(calibration: pd.DataFrame,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(clv.MODEL_CLASSES, "bgnbd", _AlwaysFails)
    fit = clv.fit_btyd("bgnbd", calibration)
    assert not fit.ok and fit.message.startswith("did not converge")
    assert "penalizer raised to 0.01" in fit.message
    with pytest.raises(DataError, match=r"(?s)no BTYD model could be fitted.*BG/NBD, penalizer 0: did not converge"):
        clv.compare_models(calibration, ["bgnbd"], [0.0], "rmse")


# --- validation and choice -----------------------------------------------------------------------

def test_model_comparison_scores_every_fit_on_the_holdout(calibration: pd.DataFrame) -> None:
    table, fits = clv.compare_models(calibration, ["bgnbd", "pareto"], [0.0], "rmse")
    assert set(table["key"]) == {"bgnbd", "pareto"}
    assert (table["actual_total"] == calibration["frequency_holdout"].sum()).all()
    assert table["rmse"].is_monotonic_increasing
    key, pen, why = clv.choose_model(table, "rmse")
    assert (key, pen) == (table.iloc[0]["key"], 0.0) and "lowest holdout RMSE" in why
    pred = clv.expected_purchases(fits[(key, pen)], calibration, 39)
    deciles = clv.decile_table(pred, calibration["frequency_holdout"])
    assert deciles["customers"].sum() == 2_357 and deciles["predicted"].is_monotonic_increasing


# --- value --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("unit", "lifetimes_freq", "days_per_month"), [("D", "D", 30.0), ("W", "W", 4.345 * 7)])
def test_clv_equals_lifetimes_customer_lifetime_value(sample_tx: pd.DataFrame, unit: str, lifetimes_freq: str,
                                                      days_per_month: float) -> None:
    summary = clv.btyd_summary(sample_tx, AS_OF, unit)
    fit, spend = clv.fit_btyd("bgnbd", summary), clv.fit_spend(summary)
    per_purchase = clv.expected_spend(spend, summary)
    monthly = 0.01
    annual = (1 + monthly) ** 12 - 1
    ours = clv.lifetime_value(fit, per_purchase, summary, months=12, unit=unit, discount_rate_annual=annual,
                              days_per_month=days_per_month)["clv"]
    theirs = spend.model.customer_lifetime_value(fit.model, summary["frequency"], summary["recency"], summary["T"],
                                                 summary["monetary_value"], time=12, discount_rate=monthly,
                                                 freq=lifetimes_freq)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-6)


def test_a_monthly_horizon_means_the_same_for_daily_and_weekly_models(sample_tx: pd.DataFrame) -> None:
    totals = {}
    for unit in ("D", "W"):
        summary = clv.btyd_summary(sample_tx, AS_OF, unit)
        fit = clv.fit_btyd("bgnbd", summary)
        value = clv.lifetime_value(fit, pd.Series(1.0, index=summary.index), summary, months=12, unit=unit)
        totals[unit] = value["expected_purchases"].sum()
    assert totals["D"] == pytest.approx(totals["W"], rel=2e-3)


def test_p_alive_history_rises_at_each_purchase_and_ends_at_today(calibration: pd.DataFrame,
                                                                   sample_tx: pd.DataFrame) -> None:
    summary = clv.btyd_summary(sample_tx, AS_OF, "W")
    fit = clv.fit_btyd("pareto", summary)
    customer = summary["frequency"].idxmax()
    days = sample_tx.loc[sample_tx["customer_id"] == customer, "order_ts"]
    path = clv.alive_path(fit, days, AS_OF, "W")
    assert path["p_alive"].iloc[-1] == pytest.approx(clv.p_alive(fit, summary).loc[customer])
    assert path.index[0] == days.min().normalize() and path["purchase"].sum() == days.dt.normalize().nunique()
    jumps = path["p_alive"].diff()[path["purchase"]].iloc[1:]
    assert (jumps >= -1e-12).all()


def test_customer_value_fills_the_customer_schema(sample_tx: pd.DataFrame) -> None:
    from helpers.rfm import load_segment_map, rfm_table
    from helpers.schemas import customer_schema, validate

    params = load_params("cdnow_sample.yaml")
    customers = rfm_table(sample_tx, AS_OF, 5, load_segment_map(params.rfm.segment_map), params.rfm.abc_cuts)
    summary = clv.btyd_summary(sample_tx, AS_OF, "W")
    value = clv.customer_value(customers, sample_tx, summary, clv.fit_btyd("mbgnbd", summary), clv.fit_spend(summary),
                               AS_OF, params)
    validate(value, customer_schema, "customer value")
    assert len(value) == 2_357 and value["clv"].ge(0).all() and value["p_alive"].between(0, 1).all()
    assert set(value["value_tier"]) == {"platinum", "gold", "iron", "lead"}
    assert {"growth", "maturity", "decline", "termination"} <= set(value["lifecycle_stage"])
    assert "recency" not in value.columns  # BTYD recency is btyd_recency; RFM recency is recency_days


# --- the package: purchase days, the model wrapper ------------------------------------------------

def test_summaries_from_purchase_days_equal_those_from_transactions(sample_tx: pd.DataFrame) -> None:
    from helpers.clv import purchase_halves

    days = clv.as_purchase_days(sample_tx, AS_OF)
    assert list(days.columns) == clv.PURCHASE_DAY_COLUMNS and not days.duplicated(["customer_id", "day"]).any()
    # a purchase-days table from elsewhere (SQL): other column order, a day after as_of, another index
    later = pd.DataFrame({"amount": [1.0], "customer_id": [days["customer_id"].iloc[0]],
                          "day": [pd.Timestamp(AS_OF) + pd.Timedelta(days=3)]})
    sql = pd.concat([days[["amount", "customer_id", "day"]], later]).iloc[::-1].reset_index(drop=True)
    for frame in (days, sql):
        pd.testing.assert_frame_equal(clv.btyd_summary(frame, AS_OF, "W"), clv.btyd_summary(sample_tx, AS_OF, "W"))
        pd.testing.assert_frame_equal(clv.calibration_holdout(frame, CAL_END, AS_OF, "W"),
                                      clv.calibration_holdout(sample_tx, CAL_END, AS_OF, "W"))
        pd.testing.assert_frame_equal(purchase_halves(frame, AS_OF), purchase_halves(sample_tx, AS_OF))
        assert clv.log_span_days(frame, AS_OF) == clv.log_span_days(sample_tx, AS_OF) == 545
    with pytest.raises(DataError, match="no transactions on or before as_of"):
        clv.as_purchase_days(days, dt.date(1990, 1, 1))


def test_a_fit_built_by_hand_is_its_familys_wrapper(calibration: pd.DataFrame) -> None:
    fitted = clv.fit_btyd("pareto", calibration)
    assert type(fitted) is clv.models.ParetoNBD and isinstance(fitted, clv.BTYDModel)
    by_hand = clv.Fit("pareto", 0.0, fitted.model)
    assert type(by_hand) is clv.models.ParetoNBD and by_hand.label == "Pareto/NBD (penalizer 0)"
    assert by_hand.log_likelihood(calibration) == clv.log_likelihood(fitted, calibration) == pytest.approx(-9595.0,
                                                                                                             abs=0.05)
    assert type(clv.Fit("mbgnbd", 0.0)) is clv.models.ModifiedBetaGeo and not clv.Fit("mbgnbd", 0.0).ok
    assert clv.family_of(_FailsFirst) is clv.models.BetaGeo  # a lifetimes subclass belongs to its family
    assert clv.models.MODEL_LABELS == {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pareto": "Pareto/NBD", "bgbb": "BG/BB"}


def test_the_gamma_gamma_summary_says_whether_independence_is_plausible(calibration: pd.DataFrame) -> None:
    import dataclasses

    spend = clv.fit_spend(calibration)
    lines = spend.describe()
    assert f"repeat buyers used: {spend.used:,}" in lines[0] and "plausible" in lines[1]
    assert f"{spend.mean_spend:,.2f}" in lines[2]
    assert spend.mean_spend == pytest.approx(spend.model.params_["p"] * spend.model.params_["v"]
                                             / (spend.model.params_["q"] - 1))
    skewed = dataclasses.replace(spend, correlation=clv.SPEND_CORRELATION_LIMIT + 0.01, message="converged with x")
    assert not skewed.independent and "NOT close to zero" in skewed.describe()[2]
    assert skewed.describe()[0] == "Gamma-Gamma: converged with x"
