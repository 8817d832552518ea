"""Stages 01-03 as functions, in-process: the artifacts they write and the results notebooks 01-03 show."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers.catalog import Catalog
from helpers.config import load_params
from helpers.stages import run_stage
from helpers.stages.clean import CleanResult
from helpers.stages.collect import CollectResult
from helpers.stages.define import DefineResult


def _run(params_file: str, folder: Path, overrides: dict | None = None) -> tuple[Catalog, list]:
    params = load_params(params_file, overrides)
    catalog = Catalog.of(params, folder / "run")
    catalog.folder.mkdir(parents=True)
    results = [run_stage(s, params, catalog) for s in ("01-define-customer-data", "02-collect-sources",
                                                         "03-clean-integrate")]
    return catalog, results


def test_stages_01_to_03_on_the_cdnow_sample(isolated: Path) -> None:
    catalog, (defined, collected, cleaned) = _run("cdnow_sample.yaml", isolated)
    assert isinstance(defined, DefineResult) and isinstance(collected, CollectResult) and isinstance(cleaned, CleanResult)
    dictionary = pd.read_csv(catalog.path("data_dictionary"))
    assert set(dictionary["table"]) == {"transactions", "customers"}
    assert defined.mapping.loc["amount", "source column"] == "dollar_value"
    assert defined.mapping.loc["order_id", "source column"] is None
    assert defined.groups.loc["value", "count"] == (defined.customers["group"] == "value").sum()
    assert "data_dictionary.csv" in defined.message
    # stage 02: the snapshot, the table in DuckDB, what the notebook shows
    assert collected.engine == "pandas" and collected.snapshot.file.is_file()
    assert catalog.exists("collected") and catalog.exists("snapshot")
    assert (collected.counts["lines"], collected.counts["customers"], collected.counts["no_customer"]) == (6919, 2357, 0)
    assert collected.unmapped == ["sample_id"] and "sample_id" in collected.message
    assert len(collected.head) == 5 and "customer_key" in collected.head.columns  # pseudonymous by default
    assert len(collected.monthly) == 18 and collected.monthly["lines"].sum() == 6919
    assert collected.monthly["returns"].isna().all()
    assert collected.snapshots["used_by_this_run"].tolist() == [True]
    assert collected.manifest.loc["rows", "manifest"] == 6919
    # stage 03: the clean lines and the log, as files and as tables
    assert catalog.exists("transactions") and catalog.exists("quality_log")
    assert (cleaned.rows_in, cleaned.rows_out) == (6919, 6919) and "(adds up)" in cleaned.balance
    assert cleaned.overview["customers"] == 2357
    assert catalog.query("select count(*) as n from transactions")["n"].item() == 6919
    assert catalog.query("select count(*) as n from quality_log")["n"].item() == 7
    assert set(cleaned.files) == {"transactions", "quality_log"} and "transactions.parquet" in cleaned.written
    assert "pandera" in cleaned.message and "rules ran in DuckDB" in cleaned.message


@pytest.mark.parametrize("mode, rows_out", [("drop", 31_922), ("net", 31_641)])
def test_stages_01_to_03_on_the_online_retail_extract(online_retail_xlsx: Path, isolated: Path, mode: str,
                                                       rows_out: int) -> None:
    catalog, (_, collected, cleaned) = _run("online_retail_sample.yaml", isolated, {"cleaning.cancellations": mode})
    assert collected.counts["lines"] == 34_766 and collected.counts["no_customer"] == 601
    assert collected.monthly["returns"].lt(0).any()  # returns are negative before cleaning
    assert len(collected.monthly) == 25
    assert cleaned.rows_out == rows_out == len(pd.read_parquet(catalog.path("transactions")))
    log = pd.read_csv(catalog.path("quality_log")).set_index("rule")
    assert log.loc["cancellations", "note"].startswith("netted" if mode == "net" else "cancellation lines dropped")
    assert log.loc["non_product_lines", "note"] == "ADJUST 10, C2 4, D 7, M 48, POST 976"


def test_the_figures_of_notebooks_02_and_03_draw_the_results(isolated: Path) -> None:
    from helpers.plots.clean import rows_removed
    from helpers.plots.collect import lines_per_month

    _, (_, collected, cleaned) = _run("cdnow_sample.yaml", isolated)
    bars = lines_per_month(collected, "cdnow_sample").axes[0].patches
    assert [b.get_height() for b in bars] == collected.monthly["lines"].tolist()
    ax = rows_removed(cleaned, "cdnow_sample").axes[0]
    assert len(ax.patches) == 7 and "6,919 in, 6,919 out" in ax.get_title()
    assert ax.patches[0].get_facecolor() != ax.patches[-1].get_facecolor()  # on (red) and off (grey)


def test_stage_03_counts_the_keys_that_went_in_from_stage_02s_count(isolated: Path) -> None:
    """The DuckDB engine's count: tests/test_speed.py::test_duckdb_engine_writes_the_transactions_the_pandas_engine_writes."""
    from helpers.stages.clean import clean

    params = load_params("cdnow_sample.yaml")
    catalog, (_, collected, cleaned) = _run("cdnow_sample.yaml", isolated)
    counted = catalog.query("select count(distinct customer_id) as n from collected")["n"].item()
    kept = catalog.read_json("snapshot")["collected"]
    assert kept["customers"] == counted == cleaned.keys_in > 0 and kept["lines"] == collected.counts["lines"] > 0
    manifest = catalog.read_json("snapshot")
    del manifest["collected"]  # a run folder written before stage 02 kept its count: stage 03 counts itself
    catalog.write_json("snapshot", manifest)
    assert clean(params, catalog).keys_in == counted
