"""Stage 04's customer types (transaction vs relationship, end consumer vs intermediary) and notebook 04's
generated interpretation (helpers.interpret.rfm): the text follows the data."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import store
from helpers.catalog import Catalog
from helpers.config import load_params
from helpers.interpret import rfm as text
from helpers.rfm.customer_types import (customer_types, order_sizes, purpose_rule, purposes, relationship_type,
                                        type_summary)
from tests_support import collected

AS_OF = dt.date(2020, 12, 31)


def _lines(quantity: bool = True) -> pd.DataFrame:
    """Clean lines: customer a buys 2 units twice (one order of two lines), b orders 40 units once, c one big order."""
    frame = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "c", "c"],
        "order_id": ["1", "1", "2", "3", "4", "5"],
        "order_ts": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-03-01", "2020-02-01", "2020-06-01", "2021-02-01"]),
        "amount": [10.0, 5.0, 12.0, 80.0, 1500.0, 99.0],
        "quantity": [1.0, 1.0, 2.0, 40.0, 3.0, 1.0],
        "source_row": list("234567"),
    })
    return frame if quantity else frame.drop(columns="quantity")


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return store.write_parquet(_lines(), tmp_path_factory.mktemp("types") / "transactions.parquet")


def test_order_sizes_are_medians_of_orders_up_to_as_of(lines_file: Path) -> None:
    sizes, has_quantity = order_sizes(lines_file, AS_OF)
    assert has_quantity
    assert sizes.values.tolist() == [["a", 2, 2.0, 13.5], ["b", 1, 40.0, 80.0], ["c", 1, 3.0, 1500.0]]  # c's 2021 order is after as_of


def test_without_quantities_only_spend_sorts_and_without_a_spend_rule_nothing(tmp_path: Path) -> None:
    file = store.write_parquet(_lines(quantity=False), tmp_path / "t.parquet")
    sizes, has_quantity = order_sizes(file, AS_OF)
    assert not has_quantity and sizes["items_per_order"].isna().all()
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "frequency": [2, 1, 1], "monetary_total": [27.0, 80.0, 1500.0]})
    types = customer_types(customers, sizes, 24, 1000)
    assert types["purpose"].tolist() == ["end consumer", "end consumer", "intermediary"]  # b's 40 units are unknown here
    assert purpose_rule(24, 1000, False) == "a median order worth more than 1,000"
    spend_only = text.purpose_reading(type_summary(customers, types, "purpose"), purpose_rule(24, 1000, False), "")
    assert spend_only.startswith("**A mix of consumers and intermediaries:** 1 of 3 customers (33%)")
    assert "their typical order: worth 1,500.00 (end consumers: worth 46.75); by spend alone (no quantities)" in spend_only
    none = customer_types(customers, sizes, 24, None)
    assert none["purpose"].isna().all() and purpose_rule(24, None, False) == ""
    assert type_summary(customers, none, "purpose").empty
    assert type_summary(customers, none, "customer_type")["customers"].tolist() == [2, 1]


def test_the_thresholds_decide_the_purpose(lines_file: Path) -> None:
    sizes, _ = order_sizes(lines_file, AS_OF)
    assert purposes(sizes, 24, 1000).tolist() == ["end consumer", "intermediary", "intermediary"]
    assert purposes(sizes, 50, 1000).tolist() == ["end consumer", "end consumer", "intermediary"]
    assert purposes(sizes, 50, None).tolist() == ["end consumer"] * 3
    assert relationship_type(pd.Series([1, 3])).tolist() == ["transaction", "relationship"]


# ---------------------------------------------------------------------------
# the stage on cdnow_sample, and the interpretation when the data changes


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - (catalog, result)
    from helpers.stages.rfm import rfm

    params = load_params("cdnow_sample.yaml")
    base = tmp_path_factory.mktemp("stage04types")
    catalog = Catalog(params.dataset, "test", base / "run")
    catalog.write_parquet("transactions", collected("cdnow_sample.yaml", base / "data", clean=True))
    return catalog, rfm(params, catalog)


def test_cdnow_sample_customers_are_end_consumers_and_half_bought_once(cdnow) -> None:  # noqa: ANN001
    catalog, result = cdnow
    c = result.customers
    rel = result.relationship
    assert rel.index.tolist() == ["transaction", "relationship"]
    assert rel.loc["transaction", "customers"] == c["frequency"].eq(1).sum() == 1_218
    assert rel["revenue"].sum() == pytest.approx(c["monetary_total"].sum())
    assert rel.loc["relationship", "revenue_share"] > 0.8  # the 48% who came back bring most of the revenue
    purpose = result.purpose
    assert purpose.loc["intermediary", "customers"] == 2 and purpose.loc["end consumer", "median_items_per_order"] == 2
    written = catalog.read_parquet("customer_types")
    assert len(written) == len(c) and written["customer_id"].tolist() == c["customer_id"].tolist()
    assert catalog.query("select count(*) n from customer_types where purpose = 'intermediary'")["n"].item() == 2
    assert result.purpose_note.startswith("intermediary: a median order of more than 24 units or worth more than 1,000")


def test_the_reading_of_cdnow_sample(cdnow) -> None:  # noqa: ANN001
    _, result = cdnow
    reading = text.reading(result)
    assert "**Scores are ranks, not dates.**" in reading and "a median of 62 days" in reading
    assert "the cohort as a whole has gone quiet" in reading  # the median customer last bought 473 days ago
    assert "**Revenue is flatter than the 80/20 rule:** the top 20% of customers bring 67% of revenue" in reading
    assert "**Most customers are transaction customers:** 1,218 customers (52%)" in reading
    key_once = int((result.customers["abc_class"].eq("A") & result.customers["frequency"].eq(1)).sum())
    assert f"The key customers are mostly relationship customers: only {key_once} of the 117 bought only once." in reading
    assert "**Almost all customers are end consumers** (99.9% buy for their own use): 2 of 2,357" in reading


def test_a_recent_concentrated_wholesale_shop_reads_differently(cdnow) -> None:  # noqa: ANN001
    _, result = cdnow
    c = result.customers.copy()
    c["recency_days"] = np.where(c["r_score"].eq(5), 3, c["recency_days"] // 10)  # everyone bought lately
    rich = c["abc_class"].eq("A")
    c.loc[rich, "monetary_total"] *= 50  # the key customers now hold most of the revenue
    assert text.RECENT_DAYS >= 3
    recent = text.recency_reading(c, "champions")
    assert recent.startswith("**The top recency score means recent here.**") and "median of 3 days" in recent
    from helpers.rfm import abc_summary, pareto_curve, revenue_share_at

    top20 = revenue_share_at(pareto_curve(c["monetary_total"]), 0.2)
    concentrated = text.concentration_reading(top20, abc_summary(c, result.segment_map, result.abc_cuts))
    assert concentrated.startswith("**Revenue is more concentrated than the 80/20 rule:**") and f"{top20:.0%}" in concentrated
    types = result.types.assign(customer_type=np.where(c["frequency"].le(1) & c.index.isin(range(0, len(c), 4)),
                                                       "transaction", "relationship"))
    rel = type_summary(c, types, "customer_type")
    assert text.relationship_reading(rel).startswith("**Most customers come back:**")
    big_once = c.assign(frequency=np.where(rich, 1, c["frequency"]))  # the key customers' spend on a single day
    assert "**117 of the 117 key (class A) customers bought only once**" in text.relationship_reading(rel, big_once)
    wholesale = result.types.assign(purpose="intermediary")
    wholesale.loc[:9, "purpose"] = "end consumer"
    shop = text.purpose_reading(type_summary(c, wholesale, "purpose"), result.purpose_rule, result.purpose_note)
    assert shop.startswith("**This shop sells mostly to intermediaries:** 2,347 of 2,357 customers (99.6%)")
    mixed = result.types.assign(purpose=np.where(c.index % 3 == 0, "intermediary", "end consumer"))
    assert text.purpose_reading(type_summary(c, mixed, "purpose"), "x", "").startswith("**A mix of consumers")
    unsorted = dataclasses.replace(result, types=result.types.assign(purpose=pd.NA), purpose_rule="")
    assert "**Customers by purpose:** customers are not sorted by purpose" in text.reading(unsorted)


def test_stage_04_label_columns_hold_one_string_per_distinct_value(cdnow) -> None:  # noqa: ANN001
    """A label column made per row holds a Python string per customer (over a gigabyte at ten million
    customers, stage 04's peak); here each label is one object (or one per grid cell), whatever the rows."""
    _, result = cdnow
    frames = {"customers": result.customers, "types": result.types}
    for frame, column in [("customers", "rfm_segment"), ("customers", "rfm_cell"), ("customers", "abc_class"),
                          ("types", "customer_type"), ("types", "purpose")]:  # the country: test_scale_clean
        values = frames[frame][column].dropna()
        assert values.map(type).eq(str).all(), column
        # one object per label where it is made (a segment map's cells may spell a name each), never one per row
        assert len({id(v) for v in values}) < len(values) / 10, f"{frame}.{column}"
