"""The one customer sample of large runs (helpers.sampling): deterministic, sized, nested, and said; below the
threshold nothing changes, above it stages 05-07 fit on the sample and still score every customer exactly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from helpers import clv, rfm, sampling, stages
from helpers.classify.models import make_model, predict_rows
from helpers.clustering import one_thread
from helpers.config import load_params
from helpers.stages.classify import classify_customers
from helpers.stages.cluster import cluster_customers
from helpers.synth import Design, simulate_purchases

START = dt.date(2021, 1, 1)
N, SMALL = 500, 200  # customers of the log, and a sample size below it


def test_the_sample_is_deterministic_exactly_sized_nested_and_independent_of_order() -> None:
    keys = pd.Index([f"k{i:05d}" for i in range(3000)])
    mask = sampling.sample_mask(keys, 700)
    assert mask.sum() == 700 and (mask == sampling.sample_mask(keys, 700)).all()
    assert (mask <= sampling.sample_mask(keys, 1500)).all()  # a smaller sample is a subset of a larger one
    shuffled = keys[np.random.default_rng(1).permutation(len(keys))]
    assert set(sampling.sample_index(shuffled, 700)) == set(keys[mask])  # a customer is in or out whatever the order
    assert sampling.sample_mask(keys, 3000).all() and sampling.sample_mask(keys, None).all()
    # roughly uniform: the sample's share of customers with an even number is about half
    assert 0.45 < (keys[mask].str[-1].astype(int) % 2 == 0).mean() < 0.55
    lines = pd.DataFrame({"customer_id": np.repeat(keys, 2), "x": np.arange(6000)})
    kept = sampling.sample_rows(lines, 700, "customer_id")
    assert kept["customer_id"].nunique() == 700 and len(kept) == 1400  # whole customers
    assert sampling.sample_note(700, 3000) and sampling.sample_note(3000, 3000) == ""


def test_predicting_once_per_binned_row_gives_exactly_the_model_s_predictions() -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.lognormal(size=1500).round(1), "b": rng.integers(0, 4, 1500).astype(float),
                      "c": np.where(rng.random(1500) < 0.05, np.nan, rng.normal(size=1500))})
    y = pd.Series(np.array(["p", "q", "r"])[rng.integers(0, 3, 1500)])
    new = pd.DataFrame({"a": rng.lognormal(size=2000).round(2), "b": rng.integers(0, 5, 2000).astype(float),
                        "c": np.where(rng.random(2000) < 0.05, np.nan, rng.normal(size=2000).round(1))})
    with one_thread():
        model = make_model(1, 20).fit(x, y)
        assert (predict_rows(model, new) == model.predict_proba(new)).all()
        assert (predict_rows(model, new, "predict") == model.predict(new)).all()


def _log() -> pd.DataFrame:
    p = simulate_purchases(Design(N, start=START, observed_days=546, seed=4))
    return pd.DataFrame({"customer_id": "c" + p["customer"].astype(str).str.zfill(4),
                         "order_ts": pd.Timestamp(START) + pd.to_timedelta(p["t"], unit="D"),
                         "amount": p["value"].round(2).clip(lower=0.01)})


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple]:
    """Stage 05 and 06 on one log, without a sample (threshold above the customers) and with one."""
    tx = _log()
    out = {}
    for name, size in (("all", N), ("sample", SMALL)):
        params = load_params("cdnow_sample.yaml", {"as_of": tx["order_ts"].max().date().isoformat(),
                                                   "clv.models": ["bgnbd"], "clv.penalizers": [0.0],
                                                   "clusters.bootstrap": 3, "clusters.k_max": 5,
                                                   "scale.sample_customers": size})
        r = params.rfm
        customers = rfm.rfm_table(tx, params.as_of, r.bins, rfm.load_segment_map(r.segment_map, r.bins), r.abc_cuts)
        value = stages.value_customers(params, tx, customers)
        out[name] = (params, tx, value, cluster_customers(params, value.value))
    return out


def test_stage_05_fits_on_the_sample_and_prices_every_customer_from_that_fit(runs: dict[str, tuple]) -> None:
    params, _, full, _ = runs["all"]
    _, _, sampled, _ = runs["sample"]
    assert full.fit_summary is None and full.sample_text == "" and full.validation(params)["sample"] is None
    sample = sampled.fitted_on.index
    assert len(sample) == SMALL and set(sample) == set(sampling.sample_index(full.summary.index, SMALL))
    assert set(sampled.calhold.index) <= set(sample) and sampled.comparison["customers"].max() <= SMALL
    covariates = sampled.covariates  # fitted on the sample too: its holdout counts the sample's cohort
    assert covariates.reason is None and covariates.holdout.iloc[-1]["customers"] == len(sampled.calhold)
    assert "200 of 500 customers" in sampled.overview() and sampled.validation(params)["sample"]["customers"] == SMALL
    assert sampled.tracking["actual"].sum() < full.tracking["actual"].sum()  # the sample's purchases only
    # every customer is priced, by the sample's fit: P(alive) and CLV of all 500, as the fitted model gives them
    pd.testing.assert_frame_equal(sampled.summary, full.summary)
    value = sampled.value.set_index("customer_id")
    assert len(value) == N and np.isfinite(value[["p_alive", "clv", "clv_high_95"]].to_numpy()).all()
    assert np.allclose(value["p_alive"], clv.p_alive(sampled.fit, sampled.summary).reindex(value.index))
    assert not np.allclose(sampled.fit.model.params_, full.fit.model.params_)  # the fit is the sample's, not all


def test_stage_06_chooses_and_fits_on_the_sample_and_labels_every_customer(runs: dict[str, tuple]) -> None:
    full, sampled = runs["all"][3], runs["sample"][3]
    assert full.fitted_on is None and "sample" not in full.describe_features() and full.summary()["sample"] is None
    assert sampled.fitted_on == SMALL and "200 of 500 customers" in sampled.describe_features()
    assert len(sampled.labels) == len(sampled.gmm) == N and set(sampled.labels) == set(range(sampled.k))
    assert len(sampled.artifact()) == N and sampled.artifact()["cluster"].notna().all()


def test_stage_07_answers_on_the_sample_and_scores_every_customer(runs: dict[str, tuple]) -> None:
    params, tx, value, _ = runs["sample"]
    params = params.model_copy(update={"classify": params.classify.model_copy(
        update={"boosting_rounds": 10, "cv_folds": 2})})
    days = rfm.purchase_days(tx, params.as_of)
    result = classify_customers(params, days, tx, value.value, value.validation(params))
    sample = set(value.fitted_on.index)
    assert result.fitted_on == SMALL and "200 of 500 customers" in result.describe_windows()
    for split in (result.tiers, result.value):
        if split is not None:
            assert set(split.x_train.index) | set(split.x_test.index) <= sample
    assert result.tiers is not None and result.value is not None  # both questions answered on the sample
    assert len(result.scored) == N and result.summary()["sample"] and result.scored["p_high_value"].notna().all()
    assert result.scored["predicted_tier"].notna().all()
