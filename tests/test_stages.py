"""Stage 05 as a function: sound fits only, deterministic, and no pretend forecast."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from helpers import clv, rfm, stages
from helpers.config import load_params
from helpers.errors import DataError
from helpers.synth import Design, simulate_purchases

START = dt.date(2021, 1, 1)


def _log(n: int = 600, days: int = 546, seed: int = 3, one_time_share: float = 0.0) -> pd.DataFrame:
    """A BG/NBD population with CDNOW's parameters over ``days``; optionally most customers cut to one purchase."""
    design = Design(n, start=START, observed_days=days, seed=seed)
    p = simulate_purchases(design)
    if one_time_share:
        rng = np.random.default_rng(seed)
        cut = rng.random(n) < one_time_share
        first = ~p.duplicated("customer")
        p = p[first | ~cut[p["customer"].to_numpy()]]
    return pd.DataFrame({"customer_id": "c" + p["customer"].astype(str).str.zfill(4),
                         "order_ts": pd.Timestamp(START) + pd.to_timedelta(p["t"], unit="D"),
                         "amount": p["value"].round(2).clip(lower=0.01)})


def _run(tx: pd.DataFrame, *, segments: bool = False, **overrides: object) -> tuple[stages.ValueResult, object]:
    """Stage 05 on ``tx``: on stage 04's customer table (RFM segments and ABC classes) when ``segments``."""
    as_of = (tx["order_ts"].max()).date()
    params = load_params("cdnow_sample.yaml", {"as_of": as_of.isoformat(), "clv.holdout_days": None,
                                               "clv.penalizers": [0.0, 0.01], **overrides})
    r = params.rfm
    customers = (rfm.rfm_table(tx, params.as_of, r.bins, rfm.load_segment_map(r.segment_map, r.bins), r.abc_cuts)
                 if segments else rfm.customer_table(tx, params.as_of))
    return stages.value_customers(params, tx, customers), params


def test_a_sound_forecast_is_finite_validated_and_repeatable() -> None:
    tx = _log()
    first, params = _run(tx)
    second, _ = _run(tx)
    assert first.forecast and first.forecast_reason is None
    assert first.holdout_days == clv.default_holdout_days(clv.log_span_days(tx, params.as_of))
    value = first.value
    assert np.isfinite(value[["p_alive", "expected_purchases", "clv"]].to_numpy()).all()
    assert value["value_tier"].notna().all()
    # same parameters, same answers: model, parameters to 6 significant digits, tiers and stages exactly
    assert first.cal_fit.label == second.cal_fit.label
    a, b = first.fit.model.params_, second.fit.model.params_
    assert np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-6)
    pd.testing.assert_series_equal(value["value_tier"], second.value["value_tier"])
    pd.testing.assert_series_equal(value["lifecycle_stage"], second.value["lifecycle_stage"])
    validation = first.validation(params)
    assert validation["forecast"] is True and validation["holdout"]["rmse"] > 0
    assert validation["holdout_rule"].startswith("clv.holdout_days not set")
    # the tracking: the cohort's repeat purchases by phase are the calibration/holdout summary's, the model's close
    cal = validation["tracking"]["calibration"]
    assert cal["actual"] == first.calhold["frequency"].sum()
    assert validation["tracking"]["holdout"]["actual"] == first.calhold["frequency_holdout"].sum()
    assert abs(cal["error_pct"]) < 15 and first.tracking["expected_cumulative"].is_monotonic_increasing
    assert "repeat purchases made" in first.tracking_text()
    # intervals: every customer's estimate inside its 80% interval, inside its 95% one; the same on a rerun
    for col in ("expected_purchases", "p_alive", "clv"):
        lo80, hi80, lo95, hi95 = (value[f"{col}_{side}_{lvl}"] for lvl in (80, 95) for side in ("low", "high"))
        tol = 1e-9 * (1 + value[col].abs())
        assert ((lo95 <= lo80 + tol) & (lo80 <= value[col] + tol) & (value[col] <= hi80 + tol) & (hi80 <= hi95 + tol)).all(), col
        assert (hi95 > lo95).any(), col
    assert np.allclose(value["clv_high_95"], second.value["clv_high_95"], rtol=1e-6)
    assert "could cross the high-potential cut" in first.interval_text()
    # ... and checked on the holdout: the groups' actual holdout purchases against the calibration fit's intervals
    check = validation["interval_coverage"]
    assert check["groups"] == len(first.coverage) and first.coverage["customers"].sum() == len(first.calhold)
    assert check["inside"]["80"] <= check["inside"]["95"] <= check["groups"]
    assert f"of {check['inside']['95']} inside its 95% interval" in first.interval_text()
    # value per month: the months add up to each customer's CLV; one new customer's expected value is positive
    by_customer = first.period_value.sum(axis=1).reindex(value["customer_id"]).to_numpy()
    assert np.allclose(by_customer, value["clv"].to_numpy(), rtol=1e-6, atol=1e-9)
    assert validation["clv_by_month"] == first.per_period["value"].round(2).tolist()
    assert len(first.per_period) == params.clv.horizon_months and first.per_period["value"].is_monotonic_decreasing
    assert 0 < validation["new_customer_value"] and "newly acquired customer" in first.period_text()


def test_pareto_fits_do_not_depend_on_numpys_global_random_state() -> None:
    summary = clv.btyd_summary(_log(400), START + dt.timedelta(days=545))
    np.random.seed(1)
    one = clv.fit_btyd("pareto", summary).model.params_
    np.random.seed(2)
    two = clv.fit_btyd("pareto", summary).model.params_
    assert one.to_dict() == two.to_dict()


def test_almost_only_one_time_buyers_gives_rfm_and_spend_only_with_the_reason() -> None:
    tx = _log(3000, one_time_share=0.99)
    result, params = _run(tx)
    assert not result.forecast
    assert "clv.min_repeat_buyers" in result.forecast_reason and "repeat purchase" in result.forecast_reason
    value = result.value
    assert value[["p_alive", "expected_purchases", "expected_spend", "clv"]].isna().all().all()
    assert value["value_tier"].isna().all()
    assert (value["lifecycle_stage"] != "termination").all()  # P(alive) unknown: that rule does not apply
    validation = result.validation(params)
    assert validation["forecast"] is False and validation["total_clv"] is None and validation["tracking"] is None
    assert value["clv_low_80"].isna().all() and result.interval_text().startswith("No intervals")
    assert result.period_table() is None and validation["new_customer_value"] is None
    assert validation["caveats"][0]["code"] == "no_forecast"
    # lowering the threshold is the analyst's call, and then the models are tried
    forced, _ = _run(tx, **{"clv.min_repeat_buyers": 10})
    assert forced.comparison is not None


def test_a_log_too_short_for_a_holdout_names_the_parameter() -> None:
    tx = _log(300, days=60)
    result, params = _run(tx)
    span = clv.log_span_days(tx, params.as_of)
    assert span < 3 * clv.HOLDOUT_MIN_DAYS
    assert not result.forecast and result.holdout_days is None and result.calhold is None
    assert "too short" in result.forecast_reason and "clv.holdout_days" in result.forecast_reason
    assert result.acquisition_days == clv.default_acquisition_days(span) < 90
    assert np.isfinite(result.value["monetary_total"]).all() and result.value["clv"].isna().all()


def test_an_explicit_holdout_longer_than_the_data_still_stops_naming_it() -> None:
    tx = _log(300)
    with pytest.raises(DataError, match="clv.holdout_days"):
        _run(tx, **{"clv.holdout_days": 600})


def test_a_fit_on_the_models_boundary_is_refused_with_its_meaning() -> None:
    # everyone buys at the same rate: BG/NBD's r and alpha explode (no difference between customers to learn)
    rng = np.random.default_rng(0)
    rows = [(f"c{i:03d}", pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(d)), 20.0)
            for i in range(120) for d in sorted(rng.choice(330, size=int(rng.integers(1, 7)), replace=False))]
    tx = pd.DataFrame(rows, columns=["customer_id", "order_ts", "amount"])
    summary = clv.btyd_summary(tx, dt.date(2021, 12, 31))
    fit = clv.fit_btyd("bgnbd", summary)
    assert not fit.ok and fit.message.startswith("unsound")
    assert "do not vary between customers" in fit.message or "never drop out or drop out at once" in fit.message


def test_when_the_best_models_refit_fails_the_next_best_sound_model_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    tx = _log()
    reference, _ = _run(tx)
    best = reference.cal_fit.name
    real = clv.fit_btyd

    def refit_fails(name: str, summary: pd.DataFrame, penalizer: float = 0.0, **kw: object) -> clv.Fit:
        if name == best and "frequency_holdout" not in summary:  # the refit on the full history
            return clv.Fit(name, penalizer, None, "unsound: planted failure")
        return real(name, summary, penalizer, **kw)

    monkeypatch.setattr(clv, "fit_btyd", refit_fails)
    result, _ = _run(tx)
    assert result.forecast and result.fit.name != best
    assert "planted failure" in result.why and "next-best sound model" in result.why
    assert any(c["code"] == "refit_fallback" for c in result.caveats)


def test_weak_holdouts_and_bgnbd_one_time_buyers_are_caveats() -> None:
    tx = _log(1500, one_time_share=0.9)
    result, _ = _run(tx, **{"clv.min_repeat_buyers": 10, "clv.models": ["bgnbd"]})
    row = result.chosen_row
    assert result.forecast and row["actual_total"] < stages.WEAK_HOLDOUT_PURCHASES  # the premise: a thin holdout
    codes = {c["code"]: c["text"] for c in result.caveats}
    assert "weak_validation" in codes and f"{row['actual_total']:,.0f} purchases" in codes["weak_validation"]
    one_time = (result.summary["frequency"] == 0).mean()
    assert one_time > stages.ONE_TIME_CAVEAT_SHARE and f"{one_time:.0%}" in codes["bgnbd_one_time_p_alive"]
    strong, _ = _run(_log(), **{"clv.models": ["pareto"]})  # 600 CDNOW-like customers: an informative holdout
    assert strong.chosen_row["actual_total"] >= stages.WEAK_HOLDOUT_PURCHASES
    assert not {c["code"] for c in strong.caveats} & {"weak_validation", "bgnbd_one_time_p_alive"}


def test_a_fit_whose_penalizer_a_remedy_raised_still_finds_its_holdout_row(monkeypatch: pytest.MonkeyPatch) -> None:
    real = clv.fit_btyd

    def raised(name: str, summary: pd.DataFrame, penalizer: float = 0.0, **kw: object) -> clv.Fit:
        fit = real(name, summary, penalizer, **kw)
        fit.penalizer = 0.5  # as "penalizer raised to ..." leaves it
        return fit

    monkeypatch.setattr(clv, "fit_btyd", raised)  # the refit on the full history
    monkeypatch.setattr(clv.evaluation, "fit_btyd", raised)  # the comparison's fits
    result, params = _run(_log(), **{"clv.models": ["bgnbd"], "clv.penalizers": [0.0]})
    assert result.choice == ("bgnbd", 0.0) and result.chosen_row is not None
    assert result.validation(params)["holdout"]["rmse"] == result.comparison.loc[0, "rmse"]


class _NoMeanSpend(clv.GammaGammaFitter):
    def fit(self, *args, **kwargs):  # type: ignore[override]
        super().fit(*args, **kwargs)
        self.params_["q"] = 0.8  # q <= 1: the population's mean spend is infinite, one-time buyers' spend negative
        return self


def test_a_gamma_gamma_fit_without_a_finite_mean_spend_falls_back_to_own_spend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clv.models.gamma_gamma, "GammaGammaFitter", _NoMeanSpend)
    with pytest.raises(DataError, match=r"q = 0.8 <= 1"):
        clv.fit_spend(clv.btyd_summary(_log(), START + dt.timedelta(days=545)))
    result, _ = _run(_log())
    assert result.forecast and result.spend is None
    assert any(c["code"] == "no_spend_model" for c in result.caveats)
    value = result.value
    assert (value["expected_spend"] > 0).all() and np.isfinite(value["clv"]).all() and (value["clv"] >= 0).all()


def test_on_a_one_day_log_everyone_was_just_acquired() -> None:
    day = pd.Timestamp("2024-11-29")
    tx = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(200)],
                       "order_ts": [day + pd.Timedelta(hours=i % 12) for i in range(200)],
                       "amount": [10.0 + i % 7 for i in range(200)]})
    result, _ = _run(tx)
    assert not result.forecast and result.acquisition_days == 1
    assert (result.value["lifecycle_stage"] == "acquisition").all()


def test_the_example_customer_copes_with_nobody_below_one_half() -> None:
    summary = pd.DataFrame({"frequency": [0.0, 0.0]}, index=["a", "b"])
    assert clv.example_customer(summary, pd.Series([1.0, 1.0], index=summary.index)) is None


def test_what_notebook_05_shows_comes_from_the_result_with_and_without_a_forecast() -> None:
    from matplotlib.figure import Figure

    from helpers.plots import value as figures

    drawn = [figures.holdout_check, figures.expected_purchases_matrix, figures.p_alive_matrix, figures.alive_path,
             figures.clv_by_segment, figures.pyramid]
    result, params = _run(_log(), segments=True)
    assert all(isinstance(draw(result), Figure) for draw in drawn + [figures.lifecycle])
    path = result.example_path  # the example customer's history, carried by the result
    assert path.index[-1] == pd.Timestamp(params.as_of) and path["purchase"].sum() >= 2
    assert path["p_alive"].iloc[-1] == pytest.approx(clv.p_alive(result.fit, result.summary).loc[result.example])
    assert result.cohort_text().startswith(f"cohort: {len(result.calhold):,} customers")
    assert result.choice_text() == f"Chosen: {result.why}" and "forecast: yes" in result.overview()
    assert result.deciles()["customers"].sum() == len(result.calhold)
    assert list(result.top_customers()["clv"]) == sorted(result.value["clv"].round(2), reverse=True)[:10]
    assert "customer_key" in result.top_customers() or params.privacy.raw_ids
    assert result.lifecycle_table()["customers"].sum() == len(result.value) and result.tier_table() is not None
    assert f"{len(result.stars):,} ordinary (C) customers" in result.stars_text()
    none, _ = _run(_log(3000, one_time_share=0.99), segments=True)
    assert not none.forecast and none.example_path is None and none.tiers is None and none.deciles() is None
    assert all(isinstance(draw(none), figures.Note) for draw in drawn) and "no forecast" in figures.alive_path(none)
    assert isinstance(figures.lifecycle(none), Figure) and list(none.lifecycle_table().columns) == ["customers"]
    assert none.stars_text().startswith("no forecast") and none.stars_table() is None
    assert none.caveat_text().startswith("- No lifetime-value forecast")
