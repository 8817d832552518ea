"""One summary: the purchase days in DuckDB SQL, and the customer table, BTYD summary, calibration/holdout split,
purchase halves and log start derived from them, each exactly what the line-level pandas functions give."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from helpers import clv, rfm, summary, synth
from helpers.catalog import Catalog
from helpers.config import load_params
from helpers.errors import DataError
from tests_support import collected


def _synthetic_lines() -> tuple[pd.DataFrame, dt.date]:
    """A synthetic log (helpers.synth) as clean lines: several lines per order and day, cancellations kept as
    negative lines (netted into their day), some lines without a country, lines after as_of; one day nets negative."""
    design = synth.Design(400, seed=11, observed_days=300)
    raw = synth.transaction_log(design)
    raw = raw[raw["Customer ID"].notna() & raw["Price"].gt(0)]
    lines = pd.DataFrame({"customer_id": raw["Customer ID"].astype("int64").astype(str), "order_id": raw["Invoice"],
                          "order_ts": raw["InvoiceDate"].astype("datetime64[ns]"),
                          "amount": raw["Quantity"] * raw["Price"], "country": raw["Country"].astype(object)})
    lines.loc[lines.index[::7], "country"] = None
    first = lines.iloc[0]
    refund = pd.DataFrame({"customer_id": [first["customer_id"]], "order_id": ["C-refund"],
                           "order_ts": [first["order_ts"] + pd.Timedelta(hours=1)], "amount": [-1e4], "country": [None]})
    lines = pd.concat([lines, refund], ignore_index=True)
    return lines, design.as_of - dt.timedelta(days=20)


@pytest.fixture(scope="module", params=["cdnow_sample", "synthetic"])
def logs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """(lines in pandas, their Parquet file, as_of, the SQL purchase days of the file)."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "cdnow_sample":
        lines, as_of = collected("cdnow_sample.yaml", folder / "data", clean=True), load_params("cdnow_sample.yaml").as_of
    else:
        lines, as_of = _synthetic_lines()
    file = folder / "transactions.parquet"
    lines.to_parquet(file, index=False)
    return lines, file, as_of, summary.purchase_days(file, as_of)


def test_purchase_days_in_sql_are_the_pandas_purchase_days_with_orders_and_lines(logs) -> None:  # noqa: ANN001
    lines, _, as_of, days = logs
    pd.testing.assert_frame_equal(days[["customer_id", "day", "amount"]], rfm.purchase_days(lines, as_of),
                                  check_exact=True)
    known = lines[lines["order_ts"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    g = known.assign(day=known["order_ts"].dt.normalize()).groupby(["customer_id", "day"], sort=True)
    assert days["lines"].tolist() == g.size().tolist() and days["orders"].tolist() == g["order_id"].nunique().tolist()
    assert days["day"].max() <= pd.Timestamp(as_of)


def test_the_customer_table_from_purchase_days_is_rfm_customer_table(logs) -> None:  # noqa: ANN001
    lines, _, as_of, days = logs
    known = lines[lines["order_ts"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]  # stage 03 drops later lines
    pd.testing.assert_frame_equal(summary.customer_table(days, as_of), rfm.customer_table(known, as_of),
                                  check_exact=True)
    pd.testing.assert_frame_equal(summary.customer_table(days, as_of, country=False),
                                  rfm.customer_table(lines, as_of, country=False), check_exact=True)


@pytest.mark.parametrize("unit", ["W", "D"])
def test_btyd_summary_calibration_holdout_and_halves_from_purchase_days_are_clv_s(logs, unit: str) -> None:  # noqa: ANN001
    lines, _, as_of, days = logs
    pd.testing.assert_frame_equal(summary.btyd_summary(days, as_of, unit), clv.btyd_summary(lines, as_of, unit),
                                  check_exact=True)
    end = as_of - dt.timedelta(days=91)
    pd.testing.assert_frame_equal(summary.calibration_holdout(days, end, as_of, unit),
                                  clv.calibration_holdout(lines, end, as_of, unit), check_exact=True)
    pd.testing.assert_frame_equal(summary.purchase_halves(days, as_of), clv.purchase_halves(lines, as_of))
    known = lines.loc[lines["order_ts"] < pd.Timestamp(as_of) + pd.Timedelta(days=1), "order_ts"]
    assert summary.log_start(days, as_of) == known.min().date()


def test_a_cancellation_can_net_a_day_negative_and_the_summaries_keep_it() -> None:
    lines, as_of = _synthetic_lines()
    known = lines[lines["order_ts"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    days = rfm.purchase_days(known, as_of)
    assert (days["amount"] < 0).any()  # the refund's day
    refunded = days.loc[days["amount"].idxmin(), "customer_id"]
    table = summary.customer_table(days, as_of).set_index("customer_id")
    assert table.loc[refunded, "monetary_total"] < 0


def test_purchase_days_are_written_once_as_an_artifact_and_read_back(logs, tmp_path: Path) -> None:  # noqa: ANN001
    _, file, as_of, days = logs
    catalog = Catalog("demo", "run", tmp_path / "run")
    summary.write_purchase_days(file, as_of, catalog.path("purchase_days"))
    assert catalog.path("purchase_days").name == "purchase_days.parquet"
    pd.testing.assert_frame_equal(summary.read_purchase_days(catalog), days, check_exact=True)
    assert summary.read_purchase_days(catalog, ["amount"]).columns.tolist() == ["customer_id", "day", "amount"]
    lines, orders = summary.line_counts(file, as_of)
    assert lines == int(days["lines"].sum()) and orders <= int(days["orders"].sum())
    assert not [p for p in catalog.folder.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_the_same_purchase_days_whatever_the_threads(logs, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    _, file, as_of, days = logs
    connect = summary._connect

    def one_thread(spill: Path):  # noqa: ANN202
        con = connect(spill)
        con.execute("SET threads = 1")
        return con

    monkeypatch.setattr(summary, "_connect", one_thread)
    pd.testing.assert_frame_equal(summary.purchase_days(file, as_of), days, check_exact=True)


def test_errors_name_the_dates() -> None:
    days = pd.DataFrame({"customer_id": ["a", "a"], "day": pd.to_datetime(["2020-03-01", "2020-03-02"]),
                         "amount": [1.0, 2.0]})
    with pytest.raises(DataError, match="no transactions on or before as_of 2020-02-01"):
        summary.customer_table(days, dt.date(2020, 2, 1))
    with pytest.raises(DataError, match="calibration end 2020-03-05 must be before as_of 2020-03-05"):
        summary.calibration_holdout(days, dt.date(2020, 3, 5), dt.date(2020, 3, 5))
    with pytest.raises(DataError, match="no purchases in the calibration period: the first purchase is on 2020-03-01"):
        summary.calibration_holdout(days, dt.date(2020, 2, 20), dt.date(2020, 3, 5))
    with pytest.raises(DataError, match="no purchases in the holdout period 2020-03-02 to 2020-03-05"):
        summary.calibration_holdout(days, dt.date(2020, 3, 2), dt.date(2020, 3, 5))


def test_stage_04_never_loads_the_lines_into_pandas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import cleaning
    from helpers.stages.rfm import rfm as stage

    params = load_params("cdnow_sample.yaml")
    catalog = Catalog(params.dataset, "test", tmp_path / "run")
    catalog.write_parquet("transactions", collected("cdnow_sample.yaml", tmp_path / "data", clean=True))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("stage 04 read the lines into pandas")

    read = pd.read_parquet

    def read_but_not_lines(file: object, *args: object, **kwargs: object) -> pd.DataFrame:
        if Path(str(file)).name == "transactions.parquet":
            refuse()
        return read(file, *args, **kwargs)

    monkeypatch.setattr(cleaning, "load_transactions", refuse)
    monkeypatch.setattr(pd, "read_parquet", read_but_not_lines)
    result = stage(params, catalog)
    assert catalog.exists("purchase_days") and len(result.customers) == 2_357
    assert catalog.query("select sum(lines) from purchase_days").iloc[0, 0] == result.lines == 6_919
