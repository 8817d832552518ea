"""Notebooks 01-03's CRM side: the kinds of customer information per column, the identification steps, and the
interpretations generated from a run's numbers (changed data, changed text)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from helpers.catalog import Catalog
from helpers.config import load_params
from helpers.interpret.clean import HEAVY_CLEANING_SHARE, cleaning
from helpers.interpret.collect import MISSING_ID_HIGH, ONE_COUNTRY_SHARE, collection
from helpers.interpret.define import information
from helpers.stages import run_stage
from helpers.stages.collect import COHORT_WEEKS
from tests_support import assert_raw_intact, raw_fingerprint

STAGES = ("01-define-customer-data", "02-collect-sources", "03-clean-integrate")


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """Stages 01-03 on the CDNOW sample, once, in a folder of their own: (define, collect, clean) results."""
    folder = tmp_path_factory.mktemp("crm")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIN_DATA_DIR", str(folder / "data"))
        before = raw_fingerprint(folder / "data")
        params = load_params("cdnow_sample.yaml")
        catalog = Catalog.of(params, folder / "run")
        catalog.folder.mkdir(parents=True)
        yield tuple(run_stage(s, params, catalog) for s in STAGES)
        assert_raw_intact(before, folder / "data")


def _define(params_file: str, tmp_path: Path, overrides: dict | None = None):  # noqa: ANN202 - DefineResult
    params = load_params(params_file, overrides)
    catalog = Catalog.of(params, tmp_path / params.dataset)
    catalog.folder.mkdir(parents=True)
    return run_stage(STAGES[0], params, catalog)


def test_each_mapped_column_has_its_kind_of_information(cdnow: tuple, tmp_path: Path) -> None:
    mapping = cdnow[0].mapping
    assert mapping.loc["customer_id", "kind"] == "identity" and mapping.loc["amount", "kind"] == "business"
    assert mapping.loc["country", "kind"] == "identity" and not mapping.loc["country", "in this data set"]
    assert mapping.loc["amount", "source column"] == "dollar_value"
    kinds = cdnow[0].kinds
    assert list(kinds.index) == ["identity", "business", "derived"]
    assert kinds.loc["identity", "this data set has"] == "customer_id"
    assert kinds.loc["identity", "it lacks"].startswith("country, channel")
    assert "clv" in kinds.loc["derived", "this data set has"]
    retail = _define("online_retail_sample.yaml", tmp_path).kinds
    assert retail.loc["identity", "this data set has"] == "customer_id (Customer ID), country (Country)"
    assert "product_code (StockCode)" in retail.loc["business", "this data set has"]


def test_the_define_reading_follows_the_mapping(cdnow: tuple, tmp_path: Path) -> None:
    text = information(cdnow[0])
    assert "4 of the contract's 10 columns are mapped: 1 of identity, 3 of business" in text
    assert "a key and nothing else" in text and "geographic segmentation is impossible" in text
    assert "no order numbers" in text and "no product codes" in text and "direct source" in text
    retail = information(_define("online_retail_sample.yaml", tmp_path))
    assert "8 of the contract's 10 columns are mapped: 2 of identity, 6 of business" in retail
    assert "Identity beyond the key:** `country` (`Country`)" in retail and "a key and nothing else" not in retail
    assert "own order numbers" in retail and "`quantity x unit_price`" in retail and "`excel` source" in retail


def test_the_five_steps_say_where_and_what_on_this_run(cdnow: tuple, tmp_path: Path) -> None:
    steps = cdnow[0].steps
    assert list(steps.index) == ["define", "collect", "integrate", "update", "secure"]
    assert steps.loc["collect", "notebook"] == "02" and "text source" in steps.loc["collect", "what it does here"]
    assert "1998-06-30" in steps.loc["update", "what it does here"]
    assert "pseudonymous" in steps.loc["secure", "what it does here"]
    shown = _define("cdnow_sample.yaml", tmp_path, {"privacy.raw_ids": True, "as_of": "1998-03-31"}).steps
    assert "raw ids shown" in shown.loc["secure", "what it does here"]
    assert "1998-03-31" in shown.loc["update", "what it does here"]


def test_the_collected_log_is_one_cohort_with_a_key_on_every_line(cdnow: tuple) -> None:
    collected = cdnow[1]
    assert collected.span["customers"] == collected.span["first_weeks_customers"] == 2357
    assert collected.acquisition["new_customers"].sum() == 2357 and len(collected.acquisition) == 3
    text = collection(collected)
    assert "6,919 lines from 1997-01-01 to 1998-06-30" in text and "18 months" in text
    assert f"2,357 of 2,357 customers (100%) made their first purchase in the log's first {COHORT_WEEKS} weeks" in text
    assert "0 in its last 3 months" in text and "arrives in 1997-03, 15 months before" in text and "Every line carries a customer key" in text
    assert "Returns" not in text and "sample_id" in text and "`country`" not in text  # CDNOW has no country


def test_a_log_that_keeps_taking_in_customers_reads_differently(cdnow: tuple) -> None:
    months = pd.date_range("2010-01-01", periods=24, freq="MS")
    acquisition = pd.DataFrame({"month": months, "new_customers": [60] + [10] * 23})  # 290 customers
    span = pd.Series({"first_line": months[0], "last_line": pd.Timestamp("2011-12-20"), "customers": 290,
                      "first_weeks_customers": 80, "no_customer_amount": 1234.5})
    counts = pd.Series({"lines": 10_000, "customers": 290, "no_customer": 300})
    monthly = cdnow[1].monthly.assign(returns=-100.0)
    text = collection(replace(cdnow[1], acquisition=acquisition, span=span, counts=counts, monthly=monthly))
    assert "Customers keep arriving.** Only 28% of the 290 customers" in text and "30 are new" in text
    assert "the first month has 60 new customers, 5.0 times" in text and "One cohort" not in text
    assert "300 lines (3.0%) carry no customer key**, worth 1,234" in text and "ask for a key" not in text
    assert "Returns:** 1,800" in text and "`country`" not in text
    spread = pd.Series({"countries": 10, "no_country": 0, "top_country": "France", "top_customers": 95})
    text = collection(replace(cdnow[1], acquisition=acquisition, span=span, geography=spread))
    assert "10 distinct `country` values on the lines (0 lines without one); the most common, France, has 95 of the 290" in text
    assert "spread out" in text
    one = collection(replace(cdnow[1], acquisition=acquisition, span=span, geography=spread.replace(95, 280)))
    assert 280 / 290 >= ONE_COUNTRY_SHARE and "One country holds nearly everyone" in one
    lots = collection(replace(cdnow[1], counts=counts.replace(300, 1000), span=span, acquisition=acquisition))
    assert 1000 / 10_000 > MISSING_ID_HIGH and "ask for a key" in lots


def test_cleaning_reads_nothing_removed_or_names_the_biggest_rule(cdnow: tuple) -> None:
    cleaned = cdnow[2]
    assert cleaned.keys_in == 2357
    text = cleaning(cleaned)
    assert "Nothing removed.** All 6,919 lines" in text and "4 of 7 rules are off" in text
    assert "all 2,357 customer keys" in text
    quality = cleaned.quality.copy()
    quality.loc[quality["rule"] == "missing_customer_id", ["rows_removed", "amount_removed"]] = [100, 50.0]
    quality.loc[quality["rule"] == "cancellations", ["rows_removed", "amount_removed"]] = [300, -900.0]
    dirty = replace(cleaned, quality=quality, keys_in=2400)
    text = cleaning(dirty)
    assert "Cleaning removed 400 of 6,919 lines (5.8%).** The biggest rule is `cancellations`: 300 line(s) (75%" in text
    assert "worth -900" in text and "`missing_customer_id` 100" in text and 400 / 6919 > HEAVY_CLEANING_SHARE
    assert "More than 5% of the lines went" in text and "43 are gone" in text
    quality.loc[quality["rule"] == "cancellations", "rows_removed"] = 10
    light = cleaning(replace(cleaned, quality=quality))
    assert "The biggest rule is `missing_customer_id`" in light and "More than 5%" not in light


def test_notebook_two_draws_lines_and_new_customers_per_month(cdnow: tuple) -> None:
    from helpers.plots.collect import lines_per_month

    fig = lines_per_month(cdnow[1], "cdnow_sample")
    top, bottom = fig.axes
    assert len(top.patches) == 18 and len(bottom.patches) == 3
    assert sum(p.get_height() for p in bottom.patches) == 2357
