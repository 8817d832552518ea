"""Stages 03 and 04 at scale: the clean lines written in the order they were collected, everything read from them
the same as from the lines in the clean order; the customer table in SQL equal to pandas'; duplicates found by hash."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from helpers import summary
from helpers.cleaning import clean_transactions
from helpers.cleaning.engine import COLLECTED_ORDER, clean_select, frame_lines, run_rules
from helpers.cleaning.io import in_clean_order
from helpers.config import CleaningParams, load_params
from helpers.errors import DataError
from helpers.rfm import customers_sql
from helpers.rfm.customer_types import order_sizes, orders_and_lines
from tests_support import collected

AS_OF = dt.date(2020, 1, 31)


def _lines(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "order_ts", "amount", "country"]).assign(
        order_ts=lambda f: pd.to_datetime(f["order_ts"]))


#: Collected out of the clean order: the day's (and the order's) amounts add up differently in file order
#: (-1e16 + 1e16 + 1 = 1) and in the clean order (1e16 + 1 - 1e16 = 0, Kahan's too), and two orders at
#: the same time name different countries (the clean order takes order "a"'s).
ORDER_MATTERS = _lines([
    ("x", "o1", "2020-01-05 12:00", -1e16, None), ("x", "o1", "2020-01-05 09:00", 1e16, None),
    ("x", "o1", "2020-01-05 10:00", 1.0, None), ("y", "b", "2020-01-07 08:00", 2.0, "DE"),
    ("y", "a", "2020-01-07 08:00", 3.0, "FR"), ("y", "a", "2020-01-20 08:00", 4.0, "IT"),
    ("z", "c", "2020-01-02 08:00", 5.0, None), ("z", "c", "2020-02-09 08:00", 6.0, "ES"),  # after as_of
])


@pytest.fixture(scope="module")
def two_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same lines in the order collected (as the DuckDB engine writes them) and in the clean order (pandas)."""
    folder = tmp_path_factory.mktemp("orders")
    collected_file, clean_file = folder / "collected_order.parquet", folder / "clean_order.parquet"
    ORDER_MATTERS.to_parquet(collected_file, index=False)
    in_clean_order(ORDER_MATTERS).to_parquet(clean_file, index=False)
    return collected_file, clean_file


def test_the_lines_read_back_in_the_clean_order_whatever_the_files_order(two_files: tuple[Path, Path]) -> None:
    collected_file, clean_file = two_files
    lines = in_clean_order(pd.read_parquet(collected_file))
    pd.testing.assert_frame_equal(lines, pd.read_parquet(clean_file))
    assert lines["order_id"].tolist()[:5] == ["o1", "o1", "o1", "a", "b"]


def test_purchase_days_and_order_sizes_do_not_depend_on_the_files_order(two_files: tuple[Path, Path]) -> None:
    collected_file, clean_file = two_files
    days = summary.purchase_days(collected_file, AS_OF)
    pd.testing.assert_frame_equal(days, summary.purchase_days(clean_file, AS_OF), check_exact=True)
    assert days.set_index("customer_id").loc["x", "amount"] == 0.0  # the clean order's sum, not the file's 1.0
    assert days.set_index(["customer_id", "day"])["country"].tolist() == [None, "FR", "IT", None]
    for file in two_files:  # an order's spend is an exact sum (see customer_types._orders_sql)
        sizes, has_quantity, counts = orders_and_lines(file, AS_OF)
        assert counts == summary.line_counts(file, AS_OF) == (7, 4) and not has_quantity
        assert sizes["orders"].tolist() == [1, 2, 1]
        pd.testing.assert_frame_equal(order_sizes(file, AS_OF)[0], sizes)


def test_an_orders_spend_is_its_exact_sum_whatever_the_files_order_row_groups_and_threads(tmp_path: Path) -> None:
    """A plain sum of doubles depends on the order of addition ((0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)), and
    DuckDB's threads add their partial sums in the order they finish: the same command gave other medians."""
    rng = np.random.default_rng(3)
    n = 60_000
    lines = pd.DataFrame({"customer_id": (rng.integers(0, 2_000, n)).astype(str),
                          "order_id": rng.integers(0, 6_000, n).astype(str),
                          "order_ts": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 20, n), unit="D"),
                          "amount": rng.choice([0.1, 0.2, 0.3, 0.7, 1.1, 2.675, 19.99], n),
                          "quantity": rng.choice([0.1, 0.2, 0.3, 1.0], n)})
    lines["order_id"] = lines["customer_id"] + "-" + lines["order_id"]
    files = []
    for k, order in enumerate([np.arange(n), rng.permutation(n), rng.permutation(n)]):
        files.append(tmp_path / f"lines_{k}.parquet")
        lines.iloc[order].to_parquet(files[-1], index=False, row_group_size=4_000)  # 15 row groups, both threads
    sizes = [orders_and_lines(file, AS_OF)[0] for file in files + files[:1]]
    for other in sizes[1:]:
        pd.testing.assert_frame_equal(other, sizes[0], check_exact=True)
    decimal = lines.assign(cents=lambda f: (f["amount"] * 1e6).round().astype("int64"))
    spend = decimal.groupby(["customer_id", "order_id"])["cents"].sum() / 1e6  # the exact sum of 6-decimal values
    expected = spend.groupby("customer_id").median()
    pd.testing.assert_series_equal(sizes[0].set_index("customer_id")["spend_per_order"], expected,
                                   check_names=False, check_exact=True)
    plain = lines.groupby(["customer_id", "order_id"])["amount"].sum().groupby("customer_id").median()
    assert not plain.equals(expected)  # the example is one where the order of addition shows


def test_the_median_order_counts_only_the_orders_whose_units_are_known(tmp_path: Path) -> None:
    lines = pd.DataFrame({"customer_id": list("aaaabbc"), "order_id": list("1234567"),
                          "order_ts": pd.Timestamp("2020-01-02"), "amount": [1.0, 2.0, 3.0, 10.0, 5.0, 7.0, 1.5],
                          "quantity": [1.0, np.nan, 3.0, np.nan, np.nan, np.nan, 2.0]})
    lines.to_parquet(tmp_path / "lines.parquet", index=False)
    sizes, has_quantity, _ = orders_and_lines(tmp_path / "lines.parquet", AS_OF)
    assert has_quantity and sizes["orders"].tolist() == [4, 2, 1]
    assert sizes["items_per_order"].tolist()[::2] == [2.0, 2.0] and np.isnan(sizes["items_per_order"].iloc[1])
    assert sizes["spend_per_order"].tolist() == [2.5, 6.0, 1.5]  # (2 + 3) / 2, (5 + 7) / 2, 1.5


@pytest.mark.parametrize("log", ["cdnow_sample", "online_retail_sample", "order_matters"])
def test_the_customer_table_in_sql_is_the_pandas_one_to_the_last_bit(log: str, tmp_path: Path) -> None:
    if log == "order_matters":
        lines, as_of = ORDER_MATTERS, AS_OF
    else:
        lines, as_of = collected(f"{log}.yaml", tmp_path / "data", clean=True), load_params(f"{log}.yaml").as_of
    lines.to_parquet(tmp_path / "transactions.parquet", index=False)
    days = summary.write_purchase_days(tmp_path / "transactions.parquet", as_of, tmp_path / "purchase_days.parquet")
    frame = pd.read_parquet(days).assign(day=lambda f: f["day"].astype("datetime64[ns]"))
    for country in (True, False):
        pd.testing.assert_frame_equal(customers_sql.customer_table(days, as_of, country),
                                      summary.customer_table(frame, as_of, country), check_exact=True)
    table = customers_sql.customer_table(days, as_of)
    assert ("country" in table.columns) == ("country" in lines.columns)
    if "country" in table:  # one string per country, not per customer (DuckDB's; half a gigabyte at 10M)
        known = table["country"].dropna()
        assert len({id(v) for v in known}) == known.nunique()


def test_the_sql_customer_table_leaves_out_later_days_and_missing_keys_and_says_when_nothing_is_left(
        tmp_path: Path) -> None:
    days = pd.DataFrame({"customer_id": ["a", None, "a"], "day": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-03-01"]),
                         "amount": [1.0, 2.0, 4.0]})
    days.to_parquet(tmp_path / "days.parquet", index=False)
    table = customers_sql.customer_table(tmp_path / "days.parquet", AS_OF)
    assert table[["customer_id", "frequency", "monetary_total", "recency_days"]].values.tolist() == [["a", 1, 1.0, 30]]
    with pytest.raises(DataError, match="no transactions on or before as_of 2019-12-31"):
        customers_sql.customer_table(tmp_path / "days.parquet", dt.date(2019, 12, 31))


def _engine(lines: pd.DataFrame, cfg: CleaningParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The quality log and the clean lines as the DuckDB engine writes them (collected order), no schema check."""
    con = duckdb.connect()
    try:
        log = run_rules(con, frame_lines(con, lines), cfg, AS_OF, "x")
        return log, con.execute(clean_select(con, COLLECTED_ORDER)).df()
    finally:
        con.close()


def test_exact_duplicates_found_by_hash_are_pandas_duplicates_first_kept() -> None:
    rng = np.random.default_rng(3)
    base = pd.DataFrame({"customer_id": rng.choice(["1", "2", None], 400), "order_id": rng.choice(["o1", "o2"], 400),
                         "order_ts": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 3, 400), "h"),
                         "amount": rng.choice([1.0, 2.5, np.nan, 0.0, -0.0], 400),
                         "product_code": rng.choice(["A", None], 400)})
    base["source_row"] = [str(i + 1) for i in range(len(base))]
    cfg = CleaningParams(normalise_ids=False, missing_customer_id=False, future_timestamps=False,
                         non_product_lines=False, cancellations="keep", non_positive_price=False)
    log, clean = _engine(base, cfg)
    keep = ~base.drop(columns="source_row").duplicated(keep="first")  # missing values equal, 0.0 == -0.0
    assert clean["source_row"].tolist() == base.loc[keep, "source_row"].tolist()
    assert log.set_index("rule").loc["exact_duplicates", "rows_removed"] == (~keep).sum() > 200


def test_the_engine_writes_the_clean_lines_in_the_order_they_were_collected() -> None:
    lines = ORDER_MATTERS.assign(amount=ORDER_MATTERS["amount"].abs(),
                                 source_row=[str(i + 1) for i in range(len(ORDER_MATTERS))])
    cfg = CleaningParams(future_timestamps=False)
    written = _engine(lines, cfg)[1]
    assert written["source_row"].tolist() == lines["source_row"].tolist()
    pd.testing.assert_frame_equal(in_clean_order(written), clean_transactions(lines, cfg, AS_OF)[0]
                                  .reset_index(drop=True), check_dtype=False)


def _many_lines(n: int, seed: int = 5) -> pd.DataFrame:
    """``n`` lines with repeats, missing keys, cancellations and lines after as_of, interleaved."""
    rng = np.random.default_rng(seed)
    lines = pd.DataFrame({"customer_id": rng.choice([f" {i}.0" for i in range(3000)] + [None], n),
                          "order_id": [f"{'C' if c else ''}o{o}" for c, o in zip(rng.random(n) < 0.03,
                                                                                  rng.integers(0, 50_000, n))],
                          "order_ts": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 33 * 24, n), "h"),
                          "amount": rng.choice([1.0, 2.5, 4.0, -2.5], n, p=[0.3, 0.3, 0.3, 0.1]), "product_code": rng.choice(["85123A", "22423"], n)})
    repeats = rng.random(n) < 0.05  # a line repeated some rows later
    lines.iloc[np.flatnonzero(repeats)[1:]] = lines.iloc[np.flatnonzero(repeats)[:-1] - 1].to_numpy()
    return lines.assign(source_row=[str(i + 1) for i in range(n)])


@pytest.mark.parametrize("cancellations", ["drop", "net"])
def test_duckdb_keeps_the_collected_order_without_sorting(cancellations: str) -> None:
    """On a connection preserving insertion order no step reorders the lines: the clean lines come out in the
    order collected with no ``ORDER BY``, the same as the sorted lines of a connection that does not keep it
    (an anti-join for the repeats, or netting's join unsorted, put some out of order at this size)."""
    from helpers import sqlclean
    from helpers.cleaning.engine import keeps_order

    lines, cfg = _many_lines(400_000), CleaningParams(cancellations=cancellations)
    written = {}
    for keep in (True, False):
        con = sqlclean.connect(threads=2)
        try:
            con.execute(f"SET preserve_insertion_order = {str(keep).lower()}")
            log = run_rules(con, frame_lines(con, lines), cfg, AS_OF, "x")
            select = clean_select(con, COLLECTED_ORDER)
            assert keeps_order(con) is keep and ("ORDER BY" in select) is not keep
            written[keep] = log, con.execute(select).df()
        finally:
            con.close()
    (log, ordered), (sorted_log, sorted_lines) = written[True], written[False]
    pd.testing.assert_frame_equal(log, sorted_log)
    assert log.set_index("rule").loc["exact_duplicates", "rows_removed"] > 10_000
    rows = ordered["source_row"].astype(int)
    assert rows.is_monotonic_increasing and rows.is_unique and len(rows) > 250_000
    pd.testing.assert_frame_equal(ordered, sorted_lines)
