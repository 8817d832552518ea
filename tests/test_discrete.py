"""Stage 05 on a discrete-time log (clv.discrete_period): the donations of Fader, Hardie and Shang (2010), recovery."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_donations

from helpers import paths, rfm, stages
from helpers.clv import discrete
from helpers.clv.models.bgbb import BetaGeoBetaBinom, rf_matrix, simulate_bgbb
from helpers.config import load_params
from helpers.donations import donations_log, yearly_log
from helpers.errors import ConfigError, DataError

#: Fader, Hardie and Shang (2010), the 1995 cohort, six yearly opportunities 1996-2001.
PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
AS_OF = dt.date(2001, 12, 31)


def _transactions(log: pd.DataFrame) -> pd.DataFrame:
    return log.rename(columns={"donor_id": "customer_id", "date": "order_ts"})


def _run(tx: pd.DataFrame, **overrides: object) -> tuple[stages.ValueResult, object]:
    """Stage 05 on ``tx`` with params/donations.yaml (BG/BB on years, 2000-2001 held out)."""
    params = load_params("donations.yaml", {"as_of": AS_OF.isoformat(), **overrides})
    return stages.value_customers(params, tx, rfm.customer_table(tx, params.as_of)), params


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return donations_log()


@pytest.fixture(scope="module")
def donations(log: pd.DataFrame) -> tuple[stages.ValueResult, object]:
    return _run(_transactions(log))


def test_the_expanded_log_is_the_shipped_file_and_summarises_to_lifetimes_donations(log: pd.DataFrame) -> None:
    shipped = pd.read_parquet(paths.PROJECT_ROOT / "data" / "examples" / "donations_log.parquet")
    pd.testing.assert_frame_equal(shipped, log, check_dtype=False)
    days = log.rename(columns={"donor_id": "customer_id", "date": "day"})
    summary = discrete.discrete_summary(days, pd.Period(AS_OF, "Y").ordinal, "Y")
    mine = rf_matrix(summary[["frequency", "recency", "n_periods"]].astype(np.int64))
    theirs = load_donations().rename(columns={"periods": "n_periods", "weights": "weight"})
    pd.testing.assert_frame_equal(mine, theirs.astype(np.int64), check_like=True)
    assert discrete.multiple_purchase_share(days, pd.Period(AS_OF, "Y").ordinal, "Y") == 0.0


def test_stage_05_reproduces_the_published_parameters_and_validates_on_two_holdout_years(donations) -> None:
    result, params = donations
    assert result.forecast and result.fit.name == "bgbb" and isinstance(result, stages.ValueResult)
    assert {k: round(v, 3) for k, v in result.fit.params.items()} == PUBLISHED
    assert result.calibration_end == dt.date(1999, 12, 31) and result.holdout_periods == 2
    assert result.calhold["n_periods"].eq(4).all() and result.calhold["duration_holdout"].eq(2).all()
    row = result.chosen_row
    actual = int(result.calhold["frequency_holdout"].sum())
    assert row["actual_total"] == actual and abs(row["total_error_pct"]) < 5  # BG/BB predicts 2000-2001 closely
    for column in ("mae", "rmse", "spearman", "predicted_total", "total_error_pct"):
        assert np.isfinite(row[column])
    tracked = result.tracking.groupby("phase")["actual"].sum()
    assert tracked["holdout"] == actual and tracked["calibration"] == result.calhold["frequency"].sum()


def test_the_customer_table_has_the_continuous_columns_and_prices_years(donations) -> None:
    result, params = donations
    v = result.value
    assert len(v) == 11_104 and v[["p_alive", "expected_purchases", "clv"]].notna().all().all()
    assert v.filter(like="_low_80").isna().all().all()  # no intervals for BG/BB
    assert v["value_tier"].notna().all() and v["lifecycle_stage"].notna().all()
    assert result.horizon_periods == 1  # 12 months = 1 year
    one_year = result.fit.expected_purchases(result.summary, 1)
    np.testing.assert_allclose(v.set_index("customer_id")["expected_purchases"], one_year.loc[v["customer_id"]])
    assert v["clv"].sum() == pytest.approx((v["expected_purchases"] * v["expected_spend"]).sum() / 1.10)
    gave_every_year = v["btyd_frequency"] == 6
    assert v.loc[gave_every_year, "p_alive"].min() > v.loc[v["btyd_frequency"] == 0, "p_alive"].max()
    assert "BG/BB" in result.model_primer and "year" in result.period_text() and result.deciles() is not None
    assert result.validation(params)["discrete_period"] == "year" and result.example_path is not None


def test_known_bgbb_parameters_are_recovered_through_the_stage() -> None:
    truth = {"alpha": 1.5, "beta": 1.0, "gamma": 1.0, "delta": 3.0}
    cohort = simulate_bgbb(6000, 8, truth, seed=11)
    matrix = cohort.groupby(["frequency", "recency"]).size().rename("weights").reset_index()
    result, _ = _run(_transactions(yearly_log(matrix, 1993, seed=5)))
    assert result.forecast and result.summary["n_periods"].eq(8).all()
    fitted = result.fit.params
    assert fitted == pytest.approx(BetaGeoBetaBinom.fit(cohort).params, rel=1e-6)  # the log loses nothing
    np.testing.assert_allclose(list(fitted.values()), list(truth.values()), rtol=0.2)
    for a, b in (("alpha", "beta"), ("gamma", "delta")):  # the mean chance to transact, to drop out
        assert fitted[a] / (fitted[a] + fitted[b]) == pytest.approx(truth[a] / (truth[a] + truth[b]), rel=0.05)


def test_a_continuous_run_is_unchanged_with_the_parameter_null() -> None:
    from helpers.synth import Design, simulate_purchases

    p = simulate_purchases(Design(400, start=dt.date(2021, 1, 1), observed_days=400, seed=2))
    tx = pd.DataFrame({"customer_id": "c" + p["customer"].astype(str), "amount": p["value"].round(2) + 0.01,
                       "order_ts": pd.Timestamp("2021-01-01") + pd.to_timedelta(p["t"], unit="D")})
    runs = []
    for extra in ({}, {"clv.discrete_period": None}):
        params = load_params("cdnow_sample.yaml", {"as_of": "2022-02-04", "clv.holdout_days": None,
                                                   "clv.penalizers": [0.0], "clv.models": ["bgnbd"], **extra})
        result = stages.value_customers(params, tx, rfm.customer_table(tx, params.as_of))
        runs.append((result, params))
    (a, pa), (b, pb) = runs
    assert type(a) is stages.ValueResult and "discrete_period" not in a.validation(pa)
    assert a.validation(pa) == b.validation(pb) and a.value.equals(b.value) and a.model_primer == ""


def test_bad_values_name_the_parameter(log: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="clv.discrete_period"):
        load_params("donations.yaml", {"clv.discrete_period": "decade"})
    with pytest.raises(ConfigError, match="clv.discrete_period"):
        discrete.period_code("fortnight")
    tx = _transactions(log[log["donor_id"].str.endswith("1")])
    with pytest.raises(DataError, match=r"clv.holdout_days = 200 is shorter than one year"):
        _run(tx, **{"clv.holdout_days": 200})
    with pytest.raises(DataError, match=r"clv.holdout_days = 2557 leaves no calibration year"):
        _run(tx, **{"clv.holdout_days": 2557})


def test_a_log_with_several_purchases_a_period_runs_with_its_share_as_a_caveat(log: pd.DataFrame) -> None:
    tx = _transactions(log[log["donor_id"].str.endswith(("1", "2"))])  # a fifth of the donors, of every kind
    doubled = tx.assign(order_ts=tx["order_ts"] - pd.Timedelta(days=1))  # a second gift the day before (same year,
    doubled = doubled[doubled["order_ts"].dt.year == tx["order_ts"].dt.year]  # but for 1 January)
    result, _ = _run(pd.concat([tx, doubled], ignore_index=True), **{"clv.min_repeat_buyers": 10})
    codes = {c["code"]: c["text"] for c in result.caveats}
    share = len(doubled) / len(tx)
    assert result.multiple_share == pytest.approx(share) and f"{share:.1%}" in codes["discrete_multiple_purchases"]
    assert result.summary["frequency"].max() <= 6  # periods with a purchase, not purchases


def test_an_as_of_inside_a_period_counts_it_and_says_so(log: pd.DataFrame) -> None:
    tx = _transactions(log[log["donor_id"].str.endswith(("1", "2"))])
    result, _ = _run(tx, **{"as_of": "2001-12-30", "clv.min_repeat_buyers": 10})  # 2001 runs to the 31st
    assert result.forecast and result.summary["n_periods"].eq(6).all()
    assert "2001-12-31" in {c["code"]: c["text"] for c in result.caveats}["discrete_running_period"]
