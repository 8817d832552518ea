"""engine: spark (helpers.sparkengine): the same rules, quality log and purchase days as DuckDB, on a local Spark.

One local-mode session for the module (``local[2]``, two shuffle partitions, no adaptive planning: on a few thousand
lines it costs more than it saves; no UI): the JVM starts once.
Quality logs are compared exactly (rows, money rounded to cents, notes), clean lines and purchase days exactly
(the day's amount is the same in-order Kahan sum on both engines); the distinct-row scores to 1e-12.
Deselect with ``-m "not spark"``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from helpers import sqlclean, summary
from helpers.cleaning import clean_transactions, parquet_lines, run_rules
from helpers.cleaning.engine import clean_select, frame_lines
from helpers.config import CleaningParams, SparkParams, load_params
from helpers.errors import ConfigError
from tests_support import collected, make_lines

pyspark = pytest.importorskip("pyspark")
sparkengine = pytest.importorskip("helpers.sparkengine")
pytestmark = pytest.mark.spark

SPARK = SparkParams(master="local[2]", config={"spark.sql.shuffle.partitions": "2",
                                              "spark.sql.adaptive.enabled": "false"})


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> sparkengine.SparkConnection:
    """The module's Spark connection (one JVM), its datasets under a temporary folder; skipped, loudly, without Java
    (``make system-deps`` installs it)."""
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java: install openjdk-17-jre-headless (make system-deps) to run the Spark engine's tests")
    con = sparkengine.connect(SPARK.model_copy(update={"storage": str(tmp_path_factory.mktemp("spark"))}))
    yield con
    con.close()


def every_rule() -> pd.DataFrame:
    """Lines that each rule acts on: ids with spaces (ASCII and ideographic) and Excel's '.0', no customer, future
    lines, exact duplicates, non-product codes (lower case, padded), cancellations by prefix and by sign, netted
    partly and wholly, zero prices."""
    frame = make_lines([
        ("12417.0", "1", "2020-01-02 10:00", 10.0, 2, 5.0, "A"),
        (" 12417", "2", "2020-01-03 00:00", 6.0, 3, 2.0, "A"),
        ("12417\u3000", "C2", "2020-01-04 00:00", -4.0, -2, 2.0, "A"),     # cancels 4 of order 2
        ("77", "3", "2020-01-05 00:00", 8.0, 1, 8.0, "B"),
        ("77", "3", "2020-01-05 00:00", 8.0, 1, 8.0, "B"),                  # an exact duplicate
        ("77", "C9", "2020-01-06 00:00", -20.0, -3, 8.0, "B"),              # more than was bought
        ("77", "4", "2020-01-07 00:00", 5.0, 1, 5.0, " post "),             # postage
        ("  ", "5", "2020-01-08 00:00", 3.0, 1, 3.0, "A"),                  # blank id
        (None, "6", "2020-01-08 00:00", 3.0, 1, 3.0, "A"),
        ("8.50", "7", "2020-01-09 00:00", 0.0, 1, 0.0, "A"),                # zero price, a '.50' that is not Excel's
        ("9", "8", "2020-12-31 23:00", 4.0, 1, 4.0, "M"),             # future
        ("9", "9", "2020-02-01 00:00", 4.0, -1, 4.0, "A"),                  # negative quantity: a return
        ("9", "10", "2020-01-15 00:00", 7.25, 1, 7.25, "A"),
    ])
    return frame


#: Every rule on, cancellations netted (``drop`` is a plain filter, as the Online Retail sample runs it below).
EVERY_RULE = CleaningParams(cancellation_prefix="C", non_product_codes=["POST", "M"], cancellations="net")


def both_engines(spark: sparkengine.SparkConnection, lines: pd.DataFrame | Path, cfg: CleaningParams,
                 as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The quality log and clean lines of DuckDB and of Spark, from a frame or a collected Parquet file."""
    con = duckdb.connect()
    try:
        duck_lines = parquet_lines(lines) if isinstance(lines, Path) else frame_lines(con, lines)
        duck = run_rules(con, duck_lines, cfg, as_of, "x"), con.execute(clean_select(con)).df()
    finally:
        con.close()
    spark_lines = spark.parquet_lines(lines) if isinstance(lines, Path) else frame_lines(spark, lines)
    return (*duck, run_rules(spark, spark_lines, cfg, as_of, "x"), spark.execute(clean_select(spark)).df())


def test_every_rule_gives_the_same_quality_log_and_lines_on_spark(spark: sparkengine.SparkConnection) -> None:
    duck_log, duck_lines, spark_log, spark_lines = both_engines(spark, every_rule(), EVERY_RULE, dt.date(2020, 6, 30))
    pd.testing.assert_frame_equal(spark_log, duck_log)
    assert spark_log["rows_removed"].gt(0).sum() >= 5 and spark_log["rows_modified"].gt(0).sum() == 2
    pd.testing.assert_frame_equal(spark_lines.astype({"order_ts": "datetime64[ns]"}),
                                  duck_lines.astype({"order_ts": "datetime64[ns]"}), check_exact=True)
    assert clean_transactions(every_rule(), EVERY_RULE, dt.date(2020, 6, 30))[1].equals(duck_log)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The Online Retail sample (every rule on, a country) collected by pandas into Parquet (nanosecond
    timestamps, as stage 02 writes them). CDNOW's rules are mostly off: its lines are the scoring test's."""
    folder = tmp_path_factory.mktemp("shipped")
    params = load_params("online_retail_sample.yaml")
    lines = collected("online_retail_sample.yaml", folder / "data")
    lines.to_parquet(folder / "collected.parquet", index=False)
    return params, folder


def test_a_shipped_data_set_cleans_and_sums_the_same_on_spark(spark: sparkengine.SparkConnection, shipped: tuple) -> None:
    params, folder = shipped
    duck_log, duck_lines, spark_log, spark_lines = both_engines(spark, folder / "collected.parquet", params.cleaning,
                                                                params.as_of)
    pd.testing.assert_frame_equal(spark_log, duck_log)
    pd.testing.assert_frame_equal(spark_lines.astype({"order_ts": "datetime64[ns]"}),
                                  duck_lines.astype({"order_ts": "datetime64[ns]"}), check_exact=True)
    lines = folder / "transactions.parquet"
    duck_lines.to_parquet(lines, index=False)
    written = summary.write_purchase_days(lines, params.as_of, folder / "purchase_days.parquet", spark=SPARK)
    on_spark = pd.read_parquet(written)
    on_spark["day"] = on_spark["day"].astype("datetime64[ns]")
    pd.testing.assert_frame_equal(on_spark, summary.purchase_days(lines, params.as_of), check_exact=True)
    assert "country" in on_spark.columns and duck_log["rows_removed"].gt(0).sum() >= 5


def parquet_source(tmp_path: Path, **update: object):  # noqa: ANN201
    """A small raw Parquet source (float ids of 1e7 and more, a padded id, a return) and its parameters."""
    raw = tmp_path / "raw.parquet"
    pd.DataFrame({"who": [" 1", "2.0", "3"], "when": ["01/02/2020 10:30", "03/04/2020 00:00", "12/31/2020 23:59"],
                  "qty": [1, 2, -1], "price": [2.5, 1.0, 4.0], "inv": [7.0, 12345678.0, 23456789.0]}).to_parquet(raw)
    data = load_params("cdnow_sample.yaml").model_dump()
    data.update(source={"kind": "parquet", "path": str(raw)}, date_format="%m/%d/%Y %H:%M",
                columns={"customer_id": "who", "order_ts": "when", "order_id": "inv", "quantity": "qty",
                         "unit_price": "price"}, **update)
    return type(load_params("cdnow_sample.yaml")).model_validate(data), raw


def test_spark_maps_a_parquet_source_as_duckdb_does(spark: sparkengine.SparkConnection, tmp_path: Path) -> None:
    params, raw = parquet_source(tmp_path)
    duck = pd.read_parquet(sqlclean.collect(params, raw, tmp_path / "duck.parquet"))
    on_spark = pd.read_parquet(sqlclean.collect(params, raw, tmp_path / "spark.parquet", spark))
    pd.testing.assert_frame_equal(on_spark.astype({"order_ts": "datetime64[ns]"}),
                                  duck.astype({"order_ts": "datetime64[ns]"}), check_exact=True)
    assert on_spark["order_id"].tolist()[1:] == ["12345678.0", "23456789.0"]  # float ids as text, not 1.2345678E7


def test_stages_02_and_03_on_spark_keep_the_collected_lines_and_the_databases_view(spark: sparkengine.SparkConnection,
                                                                                   tmp_path: Path) -> None:
    from helpers import stages
    from helpers.catalog import Catalog

    params, _ = parquet_source(tmp_path, engine="spark", as_of="2021-01-31",
                               cleaning=load_params("cdnow_sample.yaml").cleaning.model_dump() | {"cancellations": "drop"},
                               spark=SPARK.model_copy(update={"storage": str(tmp_path / "spark")}).model_dump())
    catalog = Catalog(params.dataset, params.as_of.isoformat(), tmp_path / "run")
    stages.run_stage("02-collect-sources", params, catalog)
    assert len(pd.read_parquet(catalog.path("collected"))) == 3  # Spark wrote the lines; stage 02 kept them
    assert catalog.query("SELECT count(*) AS n FROM collected")["n"].item() == 3  # and the database reads them
    cleaned = stages.run_stage("03-clean-integrate", params, catalog)
    assert cleaned.engine == "spark" and (cleaned.rows_in, cleaned.rows_out) == (3, 2)  # the return is dropped
    assert len(pd.read_parquet(catalog.path("transactions"))) == 2
    assert cleaned.overview.equals(_overview_of(catalog.path("transactions")))


def _overview_of(file: Path) -> pd.Series:
    """Stage 03's headline numbers, computed by pandas from the clean lines written."""
    lines = pd.read_parquet(file)
    return pd.Series({"customers": lines["customer_id"].nunique(), "orders": lines["order_id"].nunique(),
                      "lines": len(lines), "revenue": round(float(lines["amount"].sum()), 2),
                      "first order": lines["order_ts"].min().date().isoformat(),
                      "last order": lines["order_ts"].max().date().isoformat()})


def test_stage_03_on_duckdb_counts_the_clean_lines_it_wrote(tmp_path: Path) -> None:
    from helpers import stages
    from helpers.catalog import Catalog

    params, _ = parquet_source(tmp_path, engine="duckdb", as_of="2021-01-31",
                               cleaning=load_params("cdnow_sample.yaml").cleaning.model_dump() | {"cancellations": "drop"})
    catalog = Catalog(params.dataset, params.as_of.isoformat(), tmp_path / "run")
    stages.run_stage("02-collect-sources", params, catalog)
    cleaned = stages.run_stage("03-clean-integrate", params, catalog)
    assert cleaned.engine == "duckdb" and cleaned.overview["lines"] == 2 and cleaned.overview["customers"] == 2
    assert cleaned.overview.equals(_overview_of(catalog.path("transactions")))


def test_scores_on_distinct_rows_joined_back_equal_scoring_every_customer(spark: sparkengine.SparkConnection,
                                                                           tmp_path: Path) -> None:
    from helpers import clv, sparkscore

    params = load_params("cdnow_sample.yaml")
    days = summary.purchase_days(Path(_cdnow_lines(tmp_path)), params.as_of)
    btyd = summary.btyd_summary(days, params.as_of, "W")
    fit, spend = clv.fit_btyd("bgnbd", btyd), clv.fit_spend(btyd)
    customers = spark.spark.createDataFrame(btyd.reset_index())
    target = sparkscore.score_customers(customers, fit, spend, params.clv, tmp_path / "scores")
    assert sorted(p.name for p in target.iterdir() if p.is_dir())[0] == "bucket=0"
    scored = pd.read_parquet(target).set_index("customer_id").sort_index()
    every = sparkscore.score_rows(btyd, fit, spend, params.clv).set_axis(btyd.index)
    assert len(scored) == len(btyd) and customers.select(*sparkscore.ROW_COLUMNS).distinct().count() < len(btyd)
    for column in ("p_alive", "expected_purchases", "expected_spend", "clv"):
        pd.testing.assert_series_equal(scored[column], every[column].sort_index(), rtol=1e-12, check_names=False)
    pd.testing.assert_series_equal(every["p_alive"], fit.p_alive(btyd), check_names=False)  # stage 05's numbers


def _cdnow_lines(folder: Path) -> Path:
    lines = collected("cdnow_sample.yaml", folder / "data", clean=True)
    lines.to_parquet(folder / "transactions.parquet", index=False)
    return folder / "transactions.parquet"


def test_no_java_is_a_config_error_that_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sparkengine.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ConfigError, match="openjdk-17-jre-headless"):
        sparkengine.session(SPARK)


def test_no_pyspark_is_a_config_error_that_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pyspark.sql", None)  # import pyspark.sql fails as if missing
    with pytest.raises(ConfigError, match="pip install"):
        sparkengine.session(SPARK)
