"""Notebook 05's retention what-if, naive lifetime value, pyramid to scale and generated interpretation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ParetoNBDFitter

from helpers.clv import BTYDModel, lifetime_value, retention
from helpers.interpret import value as interpret
from helpers.plots import value as figures

CLV = SimpleNamespace(horizon_months=12, time_unit="W", discount_rate_annual=0.10, margin=1.0)


def _fit(name: str, **params: float) -> BTYDModel:
    model = (ParetoNBDFitter if name == "pareto" else BetaGeoFitter)()
    model.params_ = pd.Series(params)
    return BTYDModel(name, 0.0, model, "converged")


BGNBD = _fit("bgnbd", r=0.24, alpha=4.4, a=0.79, b=2.4)  # CDNOW's published BG/NBD
PARETO = _fit("pareto", r=0.55, alpha=10.6, s=0.61, beta=11.7)


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    frequency = rng.poisson(2, n).astype(float)
    T = rng.uniform(30, 78, n)
    recency = np.where(frequency > 0, T * rng.uniform(0.1, 1, n), 0.0)
    return pd.DataFrame({"frequency": frequency, "recency": recency, "T": T}, index=[f"c{i:03d}" for i in range(n)])


def test_a_drop_out_cut_scales_the_mean_and_keeps_the_spread_without_touching_the_fit() -> None:
    bg = retention.scaled_drop_out(BGNBD, 0.2).model.params_
    assert bg["a"] / (bg["a"] + bg["b"]) == pytest.approx(0.8 * 0.79 / 3.19)
    assert bg["a"] + bg["b"] == pytest.approx(3.19) and bg["r"] == 0.24
    pareto = retention.scaled_drop_out(PARETO, 0.1).model.params_
    assert pareto["s"] / pareto["beta"] == pytest.approx(0.9 * 0.61 / 11.7) and pareto["s"] == 0.61
    assert BGNBD.model.params_["a"] == 0.79 and PARETO.model.params_["beta"] == 11.7
    with pytest.raises(ValueError):
        retention.scaled_drop_out(BGNBD, 1.0)


@pytest.mark.parametrize("fit", [BGNBD, PARETO], ids=["bgnbd", "pareto"])
def test_fewer_drop_outs_raise_value_and_the_uncut_row_is_the_models_clv(fit: BTYDModel, summary: pd.DataFrame) -> None:
    spend = pd.Series(30.0, index=summary.index)
    table = retention.retention_what_if(fit, spend, summary, CLV, new_spend=30.0)
    base = lifetime_value(fit, spend, summary, months=12, unit="W")["clv"].sum()
    assert table.loc["as fitted", "total_clv"] == pytest.approx(base)
    assert list(table.index) == ["as fitted", "-5%", "-10%", "-20%"]
    for column in ("total_clv", "expected_purchases", "new_customer_clv", "new_customer_clv_long"):
        assert table[column].is_monotonic_increasing and table[column].iloc[-1] > table[column].iloc[0]
    # retention compounds: for a new customer the same cut is worth more over five years than over one
    last = table.iloc[-1]
    assert last["clv_change"] > 0 and last["new_customer_long_change"] > last["new_customer_change"] > 0


def _customers() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"], "frequency": [10, 1, 4, 2], "monetary_avg": [50.0, 20.0, 30.0, 10.0],
        "monetary_total": [500.0, 20.0, 120.0, 20.0], "tenure_days": [365, 365, 730, 10],
        "p_alive": [0.05, 0.9, 0.95, 0.99], "expected_purchases": [0.2, 0.5, 2.0, 3.0],
        "expected_spend": [45.0, 22.0, 30.0, 12.0], "clv": [8.0, 10.0, 55.0, 33.0],
        "value_tier": ["gold", "lead", "platinum", "iron"],
        "lifecycle_stage": ["termination", "decline", "maturity", "acquisition"],
        "first_purchase": pd.to_datetime(["2020-01-01", "2020-01-01", "2019-01-01", "2020-12-22"])})


def test_the_naive_sum_is_spend_times_rate_times_years_and_the_model_sits_below_it() -> None:
    customers = _customers()
    naive = retention.naive_value(customers, 12)
    # a: 50 a purchase, 10 purchases in a year; d: 2 purchases in 10 days counts as 2 in 30 days
    assert naive.iloc[0] == pytest.approx(50 * 10 * 365.25 / 365)
    assert naive.iloc[3] == pytest.approx(10 * 2 * 365.25 / 30)
    assert retention.naive_value(customers, 24).sum() == pytest.approx(2 * naive.sum())
    table = retention.naive_vs_model(customers, CLV)
    assert table["total"].iloc[0] == pytest.approx(naive.sum())
    assert table["total"].iloc[-1] == pytest.approx(106.0) and table["vs_model"].iloc[-1] == 1.0
    assert table["total"].iloc[0] > table["total"].iloc[1] > table["total"].iloc[2]
    examples = retention.naive_examples(customers, CLV, example="a")
    assert examples["shown_as"].iloc[0] == "highest naive value" and examples["customer_id"].is_unique
    assert set(examples["customer_id"]) >= {"a", "c"}  # the largest naive value and the largest CLV
    without = customers.assign(clv=np.nan, p_alive=np.nan, expected_purchases=np.nan, expected_spend=np.nan)
    assert len(retention.naive_vs_model(without, CLV)) == 2
    assert "clv" not in retention.naive_examples(without, CLV).columns


def test_the_pyramid_to_scale_gives_each_band_its_share_of_customers() -> None:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    from helpers.tiers import tier_table

    actions = {t: {"meaning": "", "action": ""} for t in ("platinum", "gold", "iron", "lead")}
    tiers = tier_table(_customers(), actions)
    fig, ax = plt.subplots()
    figures.pyramid_to_scale(ax, tiers)
    bands = [p for p in ax.patches if isinstance(p, Polygon)]
    heights = [np.ptp(p.get_xy()[:, 1]) for p in bands]
    assert heights == pytest.approx([0.25, 0.25, 0.25, 0.25])  # one customer in each tier
    assert any("of predicted CLV" in t.get_text() for t in ax.texts)
    plt.close(fig)
    result = SimpleNamespace(tiers=tiers, value=_customers())
    assert len(figures.pyramid(result).axes) == 2
    assert isinstance(figures.pyramid(SimpleNamespace(tiers=None)), figures.Note)


def test_the_interpretation_follows_the_data() -> None:
    customers = _customers()
    as_of = dt.date(2021, 1, 1)
    assert interpret.acquisition_sentence(customers, 30, as_of).startswith("**1 customers (25%)")
    one_cohort = customers[customers["lifecycle_stage"] != "acquisition"]
    assert "one cohort" in interpret.acquisition_sentence(one_cohort, 30, as_of)
    assert "Most of the base is fading" in interpret.decline_sentence(customers.assign(lifecycle_stage="decline"), True)
    assert "mostly active" in interpret.decline_sentence(customers.assign(lifecycle_stage="maturity"), True)
    assert "lapsed big spenders" in interpret.gold_sentence(customers)
    tiers = pd.DataFrame({"customers": [15, 5, 5, 75], "revenue_share": [0.54, 0.14, 0.05, 0.27],
                          "clv_share": [0.75, 0.02, 0.07, 0.16]}, index=["platinum", "gold", "iron", "lead"])
    assert "concentrating further" in interpret.pyramid_sentence(tiers)
    even = interpret.pyramid_sentence(tiers.assign(clv_share=[0.5, 0.2, 0.1, 0.2]))
    assert "no more concentrated" in even and "holds 50% of predicted CLV" in even
    assert "still buying" in interpret.gold_sentence(customers.assign(p_alive=0.9))
    weak = pd.DataFrame({"cut": [0.0, 0.2], "clv_change": [0.0, 0.02], "new_customer_change": [0.0, 0.05],
                         "new_customer_long_change": [0.0, 0.08]})
    assert "value less than in proportion" in interpret.retention_sentence(weak, "BG/NBD", 12, 60)
    strong = interpret.retention_sentence(weak.assign(clv_change=[0.0, 0.3]), "BG/NBD", 12, 60)
    assert "responds strongly" in strong and "+30.0%" in strong
    table = retention.naive_vs_model(customers, CLV)
    assert "overstates by far" in interpret.naive_sentence(table, customers)
    close = table.assign(vs_model=[1.2, 1.1, 1.05, 1.0])
    assert "close to the model" in interpret.naive_sentence(close, customers)
    assert "ignores drop-out" in interpret.naive_sentence(table.drop(columns="vs_model"), customers)


def test_the_interpretation_of_a_run_with_and_without_a_forecast(summary: pd.DataFrame) -> None:
    customers = _customers()
    params = SimpleNamespace(clv=CLV, as_of=dt.date(2021, 1, 1), lifecycle=SimpleNamespace(decline_p_alive=0.5))
    what_if = retention.retention_what_if(BGNBD, pd.Series(30.0, index=summary.index), summary, CLV, 30.0)
    from helpers.tiers import tier_table

    tiers = tier_table(customers, {t: {"meaning": "", "action": ""} for t in ("platinum", "gold", "iron", "lead")})
    result = SimpleNamespace(value=customers, params=params, acquisition_days=30, forecast=True, fit=BGNBD, tiers=tiers,
                             retention=what_if, naive=retention.naive_vs_model(customers, CLV))
    text = interpret.interpretation(result)
    assert text.count("\n- ") == 6 and "BG/NBD" in text and "lapsed big spenders" in text
    assert "P(alive) below 0.5;" in text
    stricter = SimpleNamespace(**{**vars(result), "params": SimpleNamespace(**{**vars(params), "lifecycle": SimpleNamespace(decline_p_alive=0.15)})})
    assert "P(alive) below 0.15;" in interpret.interpretation(stricter)  # the run's own decline threshold
    without = SimpleNamespace(value=customers.assign(clv=np.nan), params=params, acquisition_days=30, forecast=False,
                              forecast_reason="only 12 of 300 customers made a repeat purchase. More text",
                              naive=retention.naive_vs_model(customers.assign(clv=np.nan), CLV))
    text = interpret.interpretation(without)
    assert "only 12 of 300 customers made a repeat purchase (the reasons" in text and "lapsed" not in text


def test_stage_05_carries_the_what_if_the_naive_sum_and_their_views() -> None:
    from test_stages import _log, _run

    result, params = _run(_log(400), segments=True, **{"clv.models": ["bgnbd"], "clv.penalizers": [0.0]})
    assert result.retention is not None and result.retention.loc["as fitted", "total_clv"] == pytest.approx(
        result.value["clv"].sum())
    assert result.naive["total"].iloc[-1] == pytest.approx(result.value["clv"].sum())
    validation = result.validation(params)
    assert set(validation["retention_clv_change"]) == {"-5%", "-10%", "-20%"} and validation["naive_vs_model"] > 1
    assert result.fit.label.split(" (")[0] in result.retention_text() and "not a causal" in result.retention_text()
    assert result.retention_table() is not None and "customer_key" in result.naive_examples_table()
    text = interpret.interpretation(result)
    assert f"{result.retention['clv_change'].iloc[-1]:+.1%}" in text
    cut = result.value.assign(lifecycle_stage="maturity")  # the same run with nobody fading reads differently
    assert "mostly active" in interpret.interpretation(dataclasses.replace(result, value=cut))


def test_without_a_forecast_stage_05_skips_the_what_if_and_keeps_the_naive_sum() -> None:
    from test_stages import _log, _run

    result, params = _run(_log(200, days=60))  # too short for a holdout: no forecast
    assert not result.forecast and result.retention is None and result.retention_table() is None
    assert result.retention_text().startswith("no retention what-if: there is no sound forecast (the log spans only")
    assert len(result.naive) == 2 and "vs_model" not in result.naive and "clv" not in result.naive_examples
    validation = result.validation(params)
    assert validation["naive_vs_model"] is None and validation["naive_total"] == pytest.approx(
        result.naive["total"].iloc[0], abs=0.01)
    assert "ignores drop-out" in interpret.interpretation(result)


@pytest.mark.parametrize("n", [1, 3, 5, 8, 12])
def test_the_top_customers_are_those_of_a_full_sort_with_ties_and_missing_values(n: int) -> None:
    from helpers.clv.value import TOP_COLUMNS, top_customers

    rng = np.random.default_rng(n)
    value = pd.DataFrame({"customer_id": [f"c{i:02d}" for i in rng.permutation(10)], "rfm_segment": "s",
                          "monetary_total": [4.0, 4.0, 4.0, 9.0, np.nan, 1.0, 4.0, np.nan, 2.0, 9.0]},
                         index=[3, 3, 1, 0, 7, 7, 2, 9, 8, 5])  # repeated labels, as after a concatenation
    for c in TOP_COLUMNS[3:] + ["clv_low_80", "clv_high_80"]:
        value[c] = value["monetary_total"] / 2 if c == "clv" else 0.0
    for forecast, by in ((True, "clv"), (False, "monetary_total")):
        columns = (TOP_COLUMNS + ["clv_low_80", "clv_high_80"]) if forecast else TOP_COLUMNS[:3]
        full = value[columns].sort_values([by, "customer_id"], ascending=[False, True]).head(n).round(2)
        pd.testing.assert_frame_equal(top_customers(value, forecast, n), full)
