"""Diagnostics of stage 05 (holdout by frequency and recency, Gamma-Gamma spend fit) and value per acquisition cohort."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

from helpers import clv
from helpers.clv import cohorts, diagnostics
from helpers.errors import DataError


@pytest.fixture(scope="module")
def calhold() -> pd.DataFrame:
    """A calibration/holdout table of 800 customers (some one-time buyers), with a stand-in prediction."""
    rng = np.random.default_rng(4)
    n = 800
    frequency = np.where(rng.random(n) < 0.4, 0, rng.poisson(3, n)).astype(float)
    T = rng.uniform(10, 39, n)
    recency = np.where(frequency > 0, T * rng.uniform(0, 1, n), 0.0)
    return pd.DataFrame({"frequency": frequency, "recency": recency, "T": T,
                         "frequency_holdout": rng.poisson(0.2 + frequency * 0.5).astype(float),
                         "duration_holdout": 39.0}, index=[f"c{i}" for i in range(n)])


def test_the_binned_holdout_tables_are_a_direct_groupby_of_the_calhold_table(calhold: pd.DataFrame) -> None:
    predicted = pd.Series(np.random.default_rng(5).gamma(2, 0.5, len(calhold)), index=calhold.index)
    frame = calhold.assign(model=predicted)
    by_f = diagnostics.holdout_by_frequency(calhold, predicted)
    direct = frame.groupby(frame["frequency"].clip(upper=7).astype(int))[["frequency_holdout", "model"]].mean()
    assert np.allclose(by_f[["actual", "model"]].to_numpy(), direct.to_numpy())
    assert list(by_f.index)[-1] == "7+" and by_f["customers"].sum() == len(calhold)
    by_r = diagnostics.holdout_by_recency(calhold, predicted, bins=6)
    width = calhold["T"].max() / 6
    repeat = frame[frame["frequency"] > 0]
    code = np.minimum(np.floor(repeat["recency"] / width), 5)
    direct = repeat.groupby(code)[["frequency_holdout", "model"]].mean()
    assert np.allclose(by_r.iloc[1:][["actual", "model"]].to_numpy(), direct.to_numpy())
    one_time = frame[frame["frequency"] == 0]
    assert by_r.loc[diagnostics.ONE_TIME, "customers"] == len(one_time)
    assert by_r.loc[diagnostics.ONE_TIME, "actual"] == pytest.approx(one_time["frequency_holdout"].mean())
    assert by_r["customers"].sum() == len(calhold)


def _gamma_gamma_population(n: int, seed: int, p: float = 6.0, q: float = 4.0, v: float = 15.0) -> pd.DataFrame:
    """Repeat buyers whose purchases follow Gamma-Gamma (p, q, v): per customer nu ~ Gamma(q, rate v), z ~ Gamma(p, nu)."""
    rng = np.random.default_rng(seed)
    x = 1 + rng.poisson(2, n)
    nu = rng.gamma(q, 1 / v, n)
    mean = rng.gamma(p * x, 1 / (nu * x))  # the mean of x purchases of Gamma(p, rate nu)
    return pd.DataFrame({"frequency": x.astype(float), "monetary_value": mean})


def test_the_spend_check_passes_gamma_gamma_data_and_fails_a_bimodal_population() -> None:
    good = _gamma_gamma_population(3000, 1)
    fit = clv.fit_spend(good)
    check = diagnostics.spend_check(good, fit.model.params_.to_dict())
    assert check.ks < 0.03 and check.fits and check.customers == 3000
    assert np.allclose(check.quantiles["ratio"], 1, atol=0.1)
    # the same check from scipy's KS on the exact model distribution agrees
    from scipy import stats

    p = fit.model.params_
    rows, counts = np.unique(good["frequency"], return_counts=True)
    ks = stats.kstest(good["monetary_value"], lambda m: diagnostics.spend_cdf(np.atleast_1d(m), rows, p["p"], p["q"],
                                                                              p["v"], counts / counts.sum()))
    assert check.ks == pytest.approx(ks.statistic, abs=1e-9)
    # retail and wholesale baskets mixed: two tight spend levels 6 times apart (Gamma-Gamma still converges)
    small, large = _gamma_gamma_population(1500, 2, q=20, v=80), _gamma_gamma_population(1500, 3, q=20, v=80)
    large["monetary_value"] *= 6
    mixed = pd.concat([small, large], ignore_index=True)
    bad = diagnostics.spend_check(mixed, clv.fit_spend(mixed).model.params_.to_dict())
    assert bad.ks > 1.5 * diagnostics.SPEND_KS_TOLERANCE and not bad.fits
    assert "not one Gamma-Gamma shape" in bad.text() and "not one" not in check.text()


def test_the_spend_check_on_cdnow_and_its_density_integrates_to_one() -> None:
    cdnow = load_cdnow_summary_data_with_monetary_value()
    params = clv.fit_spend(cdnow).model.params_.to_dict()
    check = diagnostics.spend_check(cdnow, params)
    assert check.customers == int((cdnow["frequency"] > 0).sum())
    assert 0 < check.ks < diagnostics.SPEND_KS_TOLERANCE
    rows, counts = np.unique(check.purchases, return_counts=True)
    grid = np.geomspace(0.01, 1e5, 20001)
    density = diagnostics.spend_density(grid, rows, params["p"], params["q"], params["v"], counts / counts.sum())
    assert np.trapezoid(density, grid) == pytest.approx(1, abs=2e-3)
    # the quantiles invert the distribution
    cdf = diagnostics.spend_cdf(check.quantiles["model"].to_numpy(), rows, params["p"], params["q"], params["v"],
                                counts / counts.sum())
    assert np.allclose(cdf, check.quantiles.index, atol=1e-6)


def test_the_spend_check_interpolates_beyond_its_grid_without_changing_the_distance(monkeypatch) -> None:  # noqa: ANN001
    data = _gamma_gamma_population(2500, 7)
    params = clv.fit_spend(data).model.params_.to_dict()
    exact = diagnostics.spend_check(data, params).ks
    monkeypatch.setattr(diagnostics, "SPEND_GRID", 500)
    assert diagnostics.spend_check(data, params).ks == pytest.approx(exact, abs=1e-4)


def _value_table() -> pd.DataFrame:
    rng = np.random.default_rng(9)
    n = 400
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                         "country": rng.choice(["FR", "DE", None], n, p=[0.5, 0.4, 0.1]),
                         "first_purchase": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 180, n), "D"),
                         "monetary_total": rng.gamma(2, 50, n), "clv": rng.gamma(2, 20, n)})


def test_the_value_per_acquisition_month_and_country_is_a_direct_groupby() -> None:
    value = _value_table()
    tables = cohorts.acquisition_tables(value, 42.0)
    months = tables["month"]
    key = value["first_purchase"].dt.to_period("M").astype(str)
    direct = value.groupby(key)[["monetary_total", "clv"]].mean()
    assert list(months.index) == sorted(key.unique()) and months["customers"].sum() == len(value)
    assert np.allclose(months[["spend_so_far", "clv"]].to_numpy(), direct.to_numpy())
    assert np.allclose(months["value_so_far_plus_clv"], direct.sum(axis=1)) and (months["new_customer_value"] == 42).all()
    countries = tables["country"]
    assert countries.index[0] == "FR" and "unknown" in countries.index
    fr = value[value["country"] == "FR"]
    assert countries.loc["FR", "clv"] == pytest.approx(fr["clv"].mean())
    assert list(cohorts.compact(months)) == list(months.index)
    assert "country" not in cohorts.acquisition_tables(value.drop(columns="country"), 42.0)
    with pytest.raises(DataError, match="country"):
        cohorts.acquisition_value(value.drop(columns="country"), "country", 1.0)


def test_stage_05_carries_the_diagnostics_and_the_acquisition_value_with_and_without_a_forecast() -> None:
    from matplotlib.figure import Figure
    from test_stages import _log, _run

    from helpers.plots import value as figures

    result, params = _run(_log())
    by_f, by_r = result.holdout_by()
    assert by_f["customers"].sum() == by_r["customers"].sum() == len(result.calhold)
    predicted = result.holdout_predicted()
    assert (by_r["model"] * by_r["customers"]).sum() == pytest.approx(predicted.sum())
    assert isinstance(figures.holdout_by_calibration(result), Figure) and isinstance(figures.spend_fit(result), Figure)
    check = result.spend_check()
    assert check.customers == result.spend.used and "KS distance" in result.diagnostics_text()
    saved = result.validation(params)
    assert saved["spend_fit"]["ks"] == round(check.ks, 4) and saved["spend_fit"]["fits"] == check.fits
    months = result.acquisition_tables()["month"]
    assert months["customers"].sum() == len(result.value)
    assert months["new_customer_value"].iloc[0] == pytest.approx(result.new_customer["cumulative_value"].iloc[-1])
    assert saved["acquisition_value"]["month"] == cohorts.compact(months) and "country" not in saved["acquisition_value"]
    assert "acquisition month" in result.acquisition_text()
    none = dataclasses.replace(result, fit=None, spend=None, new_customer=None, value=result.value.assign(clv=np.nan))
    assert none.holdout_by() is None and none.spend_check() is None
    without = none.acquisition_table()  # without a forecast: customers and spend so far, no CLV
    assert without["customers"].sum() == len(result.value) and without["clv"].isna().all()
    assert "need a sound forecast" in none.acquisition_text()
    assert isinstance(figures.holdout_by_calibration(none), figures.Note) and isinstance(figures.spend_fit(none),
                                                                                          figures.Note)
    assert none.validation(params)["spend_fit"] is None and none.diagnostics_text().startswith("No diagnostics")


def test_the_frequency_table_matches_lifetimes_plot_of_holdout_by_calibration_purchases(calhold: pd.DataFrame) -> None:
    import matplotlib.pyplot as plt
    from lifetimes import BetaGeoFitter
    from lifetimes.plotting import plot_calibration_purchases_vs_holdout_purchases

    model = BetaGeoFitter()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})  # CDNOW's published fit
    predicted = pd.Series(model.conditional_expected_number_of_purchases_up_to_time(
        39.0, calhold["frequency"], calhold["recency"], calhold["T"]), index=calhold.index)
    ours = diagnostics.holdout_by_frequency(calhold, predicted, censor=20)  # no censoring below 20
    view = calhold.rename(columns={"frequency": "frequency_cal", "recency": "recency_cal", "T": "T_cal"})
    ax = plot_calibration_purchases_vs_holdout_purchases(model, view, kind="frequency_cal", n=7)
    actual, expected = (line.get_ydata() for line in ax.get_lines()[:2])
    plt.close(ax.figure)
    assert np.allclose(ours["actual"].iloc[:7], actual) and np.allclose(ours["model"].iloc[:7], expected)
