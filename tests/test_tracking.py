"""The tracking computation and figure on the CDNOW sample (Fader, Hardie and Lee 2005; the R BTYD walkthrough).

The cohort: the 2,357 customers of the CDNOW 1/10 sample, all first buying in
the first quarter of 1997; calibration 1997-01-01 to 1997-09-30 (39 weeks),
holdout the 39 weeks to 1998-06-30. The model: the BG/NBD with the published
parameters r = 0.243, alpha = 4.414, a = 0.793, b = 2.426.

The paper and the BTYD walkthrough show the tracking curves only as figures
(the walkthrough's printed matrices are knitr output that is not in its
source), so the expected totals are checked against lifetimes' own
``expected_cumulative_transactions`` and the actual ones against the
published CDNOW summary.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter
from lifetimes.datasets import load_cdnow_summary
from lifetimes.utils import expected_cumulative_transactions

from helpers import clv
from helpers.clv import tracking as tr
from helpers.errors import DataError
from helpers.plots.tracking import tracking_figure
from helpers.sources import resolve_source_path

CAL_END, AS_OF = dt.date(1997, 9, 30), dt.date(1998, 6, 30)
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie and Lee (2005), table 1
#: lifetimes' expected cumulative repeat purchases of the cohort at weeks 39 and 78 under PUBLISHED.
EXPECTED_WEEK_39, EXPECTED_WEEK_78 = 2505.1, 4171.4


def published_model() -> clv.BTYDModel:
    model = BetaGeoFitter()
    model.params_ = pd.Series(PUBLISHED)
    return clv.BTYDModel("bgnbd", 0.0, model)


@pytest.fixture(scope="module")
def days() -> pd.DataFrame:
    """The CDNOW sample as purchase days (one row per customer and day)."""
    raw = pd.read_csv(resolve_source_path("lifetimes:CDNOW_sample.txt"), sep=r"\s+", header=None,
                      names=["cust", "sid", "date", "cds", "usd"], dtype={"cust": str})
    tx = pd.DataFrame({"customer_id": raw["cust"], "day": pd.to_datetime(raw["date"].astype(str)),
                       "amount": raw["usd"]})
    return tx.groupby(["customer_id", "day"], as_index=False)["amount"].sum()


@pytest.fixture(scope="module")
def table(days: pd.DataFrame) -> pd.DataFrame:
    return tr.tracking(published_model(), days, CAL_END, AS_OF, "W")


def test_the_table_has_39_calibration_and_39_holdout_weeks(table: pd.DataFrame) -> None:
    assert list(table.columns) == tr.TRACKING_COLUMNS
    assert table["phase"].value_counts().to_dict() == {"calibration": 39, "holdout": 39}
    assert table["start"].iloc[0] == pd.Timestamp("1997-01-01")
    assert table["end"].iloc[38] == pd.Timestamp("1997-10-01")  # the day after the calibration end
    assert table["end"].iloc[-1] == pd.Timestamp("1998-07-01")
    assert (table["expected"] > 0).all() and table["expected_cumulative"].is_monotonic_increasing


def test_actual_repeat_purchases_are_the_published_summary_and_the_holdout(table: pd.DataFrame,
                                                                           days: pd.DataFrame) -> None:
    published = load_cdnow_summary(index_col=[0])
    assert len(published) == 2_357
    at_39 = table.loc[table["phase"] == "calibration", "actual"].sum()
    assert at_39 == published["frequency"].sum() == table["actual_cumulative"].iloc[38] == 2_457
    calhold = clv.calibration_holdout(days, CAL_END, AS_OF, "W")
    assert table.loc[table["phase"] == "holdout", "actual"].sum() == calhold["frequency_holdout"].sum() == 1_882
    assert table["actual_cumulative"].iloc[-1] == 4_339


def test_expected_cumulative_matches_lifetimes(table: pd.DataFrame, days: pd.DataFrame) -> None:
    model = published_model().model
    theirs = expected_cumulative_transactions(model, days, "day", "customer_id", 7 * 78, freq="D",
                                              freq_multiplier=7)
    np.testing.assert_allclose(table["expected_cumulative"], theirs["predicted"], rtol=1e-12)
    np.testing.assert_array_equal(table["actual_cumulative"], theirs["actual"])
    assert round(table["expected_cumulative"].iloc[38], 1) == EXPECTED_WEEK_39
    assert round(table["expected_cumulative"].iloc[-1], 1) == EXPECTED_WEEK_78


def test_expected_at_the_calibration_end_is_the_cohort_sum_of_the_unconditional_forecast(table: pd.DataFrame) -> None:
    published = load_cdnow_summary(index_col=[0])  # T to two decimals: ages at the end of week 39 are T + 1 day
    model = published_model().model
    by_customer = model.expected_number_of_purchases_up_to_time(published["T"].to_numpy() + 1 / 7).sum()
    assert table["expected_cumulative"].iloc[38] == pytest.approx(by_customer, rel=1e-3)


def test_totals_quote_the_model_error_by_phase(table: pd.DataFrame) -> None:
    totals = tr.tracking_totals(table)
    assert totals.loc["calibration", "actual"] == 2_457
    assert totals.loc["holdout", "expected"] == pytest.approx(EXPECTED_WEEK_78 - EXPECTED_WEEK_39, abs=0.1)
    assert totals.loc["holdout", "error_pct"] == pytest.approx(-11.5, abs=0.05)  # BG/NBD under-forecasts the holdout


def test_a_refit_on_the_sample_tracks_like_the_published_parameters(days: pd.DataFrame, table: pd.DataFrame) -> None:
    fit = clv.fit_btyd("bgnbd", clv.calibration_holdout(days, CAL_END, AS_OF, "W"))
    assert {k: round(v, 3) for k, v in fit.model.params_.items()} == PUBLISHED
    ours = tr.tracking(fit, days, CAL_END, AS_OF, "W")
    np.testing.assert_allclose(ours["expected_cumulative"], table["expected_cumulative"], rtol=2e-3)


def test_grouping_by_birth_day_equals_summing_over_customers() -> None:
    model = published_model()
    births = pd.Series([3, 1, 2], index=pd.to_datetime(["2020-01-01", "2020-01-04", "2020-01-20"]))
    ends = pd.DatetimeIndex(pd.to_datetime(["2020-01-08", "2020-01-15", "2020-01-22", "2020-01-29"]))
    grouped = tr.expected_cumulative(model, births, ends, 7.0)
    customers = np.repeat(births.index.to_numpy(), births.to_numpy())
    by_hand = [sum(model.model.expected_number_of_purchases_up_to_time((end - b) / np.timedelta64(7, "D"))
                   for b in customers if b < end) for end in ends.to_numpy()]
    np.testing.assert_allclose(grouped, by_hand, rtol=1e-12)


def test_days_and_weeks_agree_and_a_short_last_period_ends_at_as_of(days: pd.DataFrame) -> None:
    model = published_model()
    by_day = tr.tracking(model, days, CAL_END, dt.date(1997, 10, 10), "D")
    assert (by_day["phase"] == "holdout").sum() == 10
    by_week = tr.tracking(model, days, CAL_END, dt.date(1997, 10, 10), "W")  # 10 holdout days: 7 + 3
    assert by_week["end"].iloc[-1] == pd.Timestamp("1997-10-11")
    assert by_week["actual_cumulative"].iloc[-1] == by_day["actual_cumulative"].iloc[-1]
    # the model is in weeks; a day-unit model would have alpha in days (7 x 4.414)
    day_model = BetaGeoFitter()
    day_model.params_ = pd.Series({**PUBLISHED, "alpha": 7 * PUBLISHED["alpha"]})
    by_day = tr.tracking(day_model, days, CAL_END, dt.date(1997, 10, 10), "D")
    assert by_day["expected_cumulative"].iloc[-1] == pytest.approx(by_week["expected_cumulative"].iloc[-1])


def test_no_cohort_or_no_fit_is_a_clear_error(days: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no customer made a first purchase"):
        tr.tracking(published_model(), days, dt.date(1996, 12, 1), AS_OF, "W")
    with pytest.raises(DataError, match="needs a fitted model"):
        tr.tracking(clv.BTYDModel("bgnbd", 0.0, None), days, CAL_END, AS_OF, "W")
    with pytest.raises(DataError, match="unit must be one of"):
        tr.tracking(published_model(), days, CAL_END, AS_OF, "M")
    with pytest.raises(DataError, match="must be before as_of"):
        tr.tracking(published_model(), days, AS_OF, CAL_END, "W")


def test_the_figure_draws_actual_and_model_in_both_panels(table: pd.DataFrame) -> None:
    fig = tracking_figure(table, "BG/NBD")
    weekly, cumulative = fig.axes
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3]  # actual, model, the calibration end
    assert weekly.get_lines()[0].get_ydata().sum() == 4_339
    assert "4,339" in cumulative.get_title() and "-3.9%" in cumulative.get_title()


def test_customers_first_seen_in_the_holdout_are_not_the_cohort() -> None:
    d = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "b"], "amount": 1.0,
                      "day": pd.to_datetime(["2020-01-01", "2020-01-10", "2020-01-20", "2020-01-16", "2020-01-18"])})
    with_b = tr.tracking(published_model(), d, dt.date(2020, 1, 14), dt.date(2020, 1, 28))
    without_b = tr.tracking(published_model(), d[d["customer_id"] == "a"], dt.date(2020, 1, 14), dt.date(2020, 1, 28))
    pd.testing.assert_frame_equal(with_b, without_b)
    assert with_b["actual"].tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize("name, params", [
    ("pareto", {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}),  # Fader, Hardie and Lee (2005)
    ("mbgnbd", {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}),  # clv.fit_btyd("mbgnbd") on the CDNOW summary
])
def test_the_other_families_track_as_lifetimes_computes(name: str, params: dict[str, float],
                                                        days: pd.DataFrame) -> None:
    model = clv.MODEL_CLASSES[name]()
    model.params_ = pd.Series(params)
    ours = tr.tracking(clv.BTYDModel(name, 0.0, model), days, CAL_END, AS_OF, "W")
    theirs = expected_cumulative_transactions(model, days, "day", "customer_id", 7 * 78, freq="D",
                                              freq_multiplier=7)
    np.testing.assert_allclose(ours["expected_cumulative"], theirs["predicted"], rtol=1e-10)
    assert ours["expected_cumulative"].iloc[-1] == pytest.approx(4_339, rel=0.1)  # all near the actual total
