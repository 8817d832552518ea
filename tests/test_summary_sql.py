"""Every customer's summaries in DuckDB SQL (helpers.summary_sql) are the pandas summaries of helpers.summary and
stage 07's features, to the last bit; the sample's purchase days are the rows of the sample's customers; stages 05
and 07 give the same answers from the SQL summaries and the sample's days as from every purchase day in pandas."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from helpers import sampling, summary
from helpers import summary_sql as sq
from helpers.classify import splits
from helpers.config import load_params
from helpers.errors import DataError
from test_summary import _synthetic_lines
from tests_support import collected


@pytest.fixture(scope="module", params=["cdnow_sample", "synthetic"])
def days_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """(the purchase-days Parquet file, as_of, the same days in pandas as stage 05 read them)."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "cdnow_sample":
        lines, as_of = collected("cdnow_sample.yaml", folder / "data", clean=True), load_params("cdnow_sample.yaml").as_of
    else:  # negative days (netted cancellations), days without a country, several lines a day
        lines, as_of = _synthetic_lines()
    lines.to_parquet(folder / "transactions.parquet", index=False)
    file = summary.write_purchase_days(folder / "transactions.parquet", as_of, folder / "purchase_days.parquet")
    return file, as_of, sq.sample_days(file, None, ["amount", "country"])


def _same(sql: pd.DataFrame, pandas: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(sql, pandas, check_exact=True)
    assert sql.index.name == pandas.index.name


@pytest.mark.parametrize("unit", ["W", "D"])
def test_the_btyd_summary_and_halves_in_sql_are_the_pandas_ones_to_the_last_bit(days_file, unit: str) -> None:  # noqa: ANN001
    file, as_of, days = days_file
    aggregates = sq.customer_aggregates(file, as_of)
    _same(sq.btyd_summary(aggregates, as_of, unit), summary.btyd_summary(days, as_of, unit))
    _same(sq.purchase_halves(aggregates), summary.purchase_halves(days, as_of))
    assert sq.log_start(aggregates) == sq.first_day(file, as_of) == summary.log_start(days, as_of)
    assert (aggregates["total"] < 0).any() or file.parent.name.startswith("cdnow")  # the netted refund is kept


@pytest.mark.parametrize("early_days", [1, 30, 90])
def test_stage_07s_features_in_sql_are_the_pandas_ones_to_the_last_bit(days_file, early_days: int) -> None:  # noqa: ANN001
    file, as_of, days = days_file
    aggregates = sq.customer_aggregates(file, as_of, early_days)
    countries = days["country"].value_counts().head(3).index.tolist() if "country" in days else None
    _same(sq.early_features(aggregates, countries), splits.early_features(days, early_days, countries))
    _same(sq.rfm_features(aggregates, as_of), splits.rfm_features(days, as_of))
    assert (aggregates["early_n"] >= 1).all() and (aggregates["recent_n"] == 0).any()


def test_the_sample_days_are_the_rows_of_the_sample_customers_in_file_order(days_file) -> None:  # noqa: ANN001
    file, as_of, days = days_file
    whole = sq.Whole.of(file, as_of)
    keep = whole.sample(50)
    assert len(keep) == 50 and keep.equals(sampling.sample_index(summary.btyd_summary(days, as_of).index, 50))
    expected = days.loc[days["customer_id"].isin(keep), ["customer_id", "day", "amount"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(whole.fit_days(50, ["amount"]), expected, check_exact=True)
    pd.testing.assert_frame_equal(whole.fit_days(None, ["amount"]), days[expected.columns], check_exact=True)
    one = keep[0]
    assert whole.days_of(one)["day"].tolist() == days.loc[days["customer_id"] == one, "day"].tolist()


def test_no_purchase_by_as_of_is_a_clear_error(days_file) -> None:  # noqa: ANN001
    file, _, days = days_file
    with pytest.raises(DataError, match="no transactions on or before as_of"):
        sq.first_day(file, days["day"].min().date() - dt.timedelta(days=1))


def test_stage_05_and_07_give_the_same_answers_from_the_sql_summaries_and_the_sample_days(days_file) -> None:  # noqa: ANN001
    from helpers import classify as cf
    from helpers.stages.classify import classify_customers
    from helpers.stages.value import value_customers

    file, as_of, days = days_file
    if not Path(file).parent.name.startswith("cdnow"):
        pytest.skip("the synthetic log is a summary check only")
    params = load_params("cdnow_sample.yaml", {"scale.sample_customers": 1000, "clv.models": ["bgnbd"],
                                               "clv.penalizers": [0.0], "classify.boosting_rounds": 10,
                                               "classify.cv_folds": 2})
    customers = summary.customer_table(days, as_of).assign(rfm_segment="x", value_tier=None)
    whole = sq.Whole.of(file, as_of)
    before = value_customers(params, days[["customer_id", "day", "amount"]], customers)
    after = value_customers(params, whole.fit_days(1000, ["amount"]), customers, whole)
    pd.testing.assert_frame_equal(after.value, before.value, check_exact=True)
    assert after.validation(params) == before.validation(params) and after.example_path.equals(before.example_path)
    value = before.value.assign(value_tier=before.value["value_tier"].astype(object))
    lines = collected("cdnow_sample.yaml", Path(file).parent / "data", clean=True)
    windows = cf.derive_windows(sq.first_day(file, as_of), as_of, params.classify.early_days,
                                params.classify.label_days)
    keep = whole.sample(1000)
    q_before = classify_customers(params, days, lines, value, {"forecast": True})
    q_after = classify_customers(params, sq.sample_days(file, keep, ["amount", "country"]),
                                 lines[lines["customer_id"].isin(keep)], value, {"forecast": True},
                                 sq.Whole.of(file, as_of, windows.early_days))
    pd.testing.assert_frame_equal(q_after.scored, q_before.scored, check_exact=True)
    assert q_after.summary() == q_before.summary()


def _stage_05_inputs(file: Path, as_of: dt.date, folder: Path):  # noqa: ANN202
    """(params, a catalog in ``folder`` holding stage 04's artifacts) for stage 05 on the CDNOW sample's days ``file``."""
    import shutil

    from helpers import rfm
    from helpers.catalog import Catalog

    if not Path(file).parent.name.startswith("cdnow"):
        pytest.skip("the stage runs on CDNOW")
    params = load_params("cdnow_sample.yaml", {"scale.sample_customers": 300, "clv.models": ["bgnbd"],
                                               "clv.penalizers": [0.0]})
    catalog = Catalog(params.dataset, "test", folder)
    shutil.copy(file, catalog.path("purchase_days"))
    r = params.rfm
    lines = collected("cdnow_sample.yaml", Path(file).parent / "data", clean=True)
    rfm.save_customers(catalog, rfm.rfm_table(lines, as_of, r.bins, rfm.load_segment_map(r.segment_map, r.bins),
                                              r.abc_cuts), "customers_rfm")
    return params, catalog


def test_stage_05_reads_only_the_sample_s_purchase_days(days_file, tmp_path: Path,  # noqa: ANN001
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.stages import value as stage

    file, as_of, days = days_file
    params, catalog = _stage_05_inputs(file, as_of, tmp_path)
    read = []
    monkeypatch.setattr(stage, "read_purchase_days", lambda *a, **k: pytest.fail("every purchase day read"))
    monkeypatch.setattr(sq, "sample_days", lambda f, ids, columns=None: read.append(len(ids)) or
                        days.loc[days["customer_id"].isin(ids), ["customer_id", "day", *(columns or [])]])
    result = stage.value(params, catalog)
    assert read and max(read) == 300 and len(result.value) == days["customer_id"].nunique()


def test_stage_05_fits_the_covariates_while_it_writes_and_publishes_what_one_thread_gets(days_file,  # noqa: ANN001
                                                                                        tmp_path: Path) -> None:
    """The covariate analysis runs on a thread while the tables are written: the same analysis as run in line,
    and ``clv_validation.json`` is written after it (it carries the analysis)."""
    from helpers.rfm import load_customers
    from helpers.stages import value as stage

    file, as_of, _ = days_file
    params, catalog = _stage_05_inputs(file, as_of, tmp_path)
    result = stage.value(params, catalog)
    assert result.pending_covariates is None and result.covariates.reason is None  # it ran, and to the end
    whole = sq.Whole.of(file, as_of)
    days = whole.fit_days(params.scale.sample_customers, ["amount"])
    whole.summaries(as_of, params.clv.time_unit)
    in_line = stage.value_customers(params, days, load_customers(catalog, "customers_rfm"), whole)
    assert in_line.pending_covariates is None
    assert result.covariates.as_json() == in_line.covariates.as_json()
    assert catalog.read_json("clv_validation")["covariates"] == result.validation(params)["covariates"]
    assert catalog.read_json("clv_validation")["covariates"]["lr_test"]  # the fits, not only a reason
    assert set(result.written) == {"customers", "validation", "comparison", "tracking", "value_per_period"}
