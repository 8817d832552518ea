"""lifetimes was last released in 2020: catch a break with newer pandas, numpy or scipy.

The published CDNOW parameters (Fader, Hardie and Lee 2005) from the summary
shipped with lifetimes, and the transaction-log helpers on the raw sample.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value, load_dataset
from lifetimes.utils import summary_data_from_transaction_data


def test_bgnbd_on_shipped_cdnow_summary_reproduces_published_parameters() -> None:
    summary = load_cdnow_summary(index_col=[0])
    bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    expected = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in expected.items():
        assert bgf.params_[name] == pytest.approx(value, rel=2e-3), name


def test_gamma_gamma_on_shipped_spend_summary() -> None:
    data = load_cdnow_summary_data_with_monetary_value()
    repeat = data[data["frequency"] > 0]
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    assert dict(ggf.params_.round(2)) == {"p": 6.25, "q": 3.74, "v": 15.45}


def test_summary_from_transactions_runs_on_pinned_pandas() -> None:
    tx = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+",
                      names=["customer_id", "sample_id", "date", "cds", "amount"], dtype={"date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # a pandas deprecation here is the next break
        summary = summary_data_from_transaction_data(
            tx, "customer_id", "date", monetary_value_col="amount", observation_period_end="1998-06-30", freq="D"
        )
    assert len(summary) == 2357
    assert (summary["recency"] <= summary["T"]).all()
    assert summary["frequency"].sum() == tx.groupby("customer_id")["date"].nunique().sum() - 2357
