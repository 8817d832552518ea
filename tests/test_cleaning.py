"""Stage 03: each rule, the quality log adding up, and the real dirt of Online Retail II."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.cleaning import RULES, check_quality_log, clean_transactions, net_cancellations, is_cancellation
from helpers.config import CleaningParams, load_params
from helpers.errors import CleaningError
from helpers.sources import collect
from tests_support import collected, make_lines

AS_OF = dt.date(2011, 12, 9)
ALL_ON = CleaningParams()


def test_rules_run_in_the_documented_order() -> None:
    assert [name for name, _ in RULES] == [
        "normalise_ids", "missing_customer_id", "future_timestamps", "exact_duplicates",
        "non_product_lines", "cancellations", "non_positive_price",
    ]


def test_ids_normalised_before_customers_are_counted() -> None:
    lines = make_lines([("123", "1", "2011-01-01", 5.0), ("123.0", "2", "2011-01-02", 5.0),
                        (" 123", "3", "2011-01-03", 5.0), ("  ", "4", "2011-01-04", 5.0)])
    clean, log = clean_transactions(lines, ALL_ON, AS_OF)
    assert clean["customer_id"].unique().tolist() == ["123"]
    assert log.set_index("rule").loc["normalise_ids", "rows_modified"] == 3
    assert log.set_index("rule").loc["missing_customer_id", "rows_removed"] == 1


def test_future_lines_are_those_after_the_as_of_day() -> None:
    lines = make_lines([("1", "a", "2011-12-09 23:59", 1.0), ("1", "b", "2011-12-10 00:00", 1.0)])
    clean, _ = clean_transactions(lines, ALL_ON, AS_OF)
    assert clean["order_id"].tolist() == ["a"]


def test_duplicates_ignore_where_the_line_came_from() -> None:
    lines = make_lines([("1", "a", "2011-01-01", 2.0, 1, 2.0, "X")] * 2 + [("1", "a", "2011-01-01", 2.0, 2, 1.0, "X")])
    clean, log = clean_transactions(lines, ALL_ON, AS_OF)
    assert len(clean) == 2 and log.set_index("rule").loc["exact_duplicates", "rows_removed"] == 1
    kept, _ = clean_transactions(lines, ALL_ON.model_copy(update={"exact_duplicates": False}), AS_OF)
    assert len(kept) == 3


def test_non_product_codes_match_regardless_of_case_and_spaces() -> None:
    lines = make_lines([("1", "a", "2011-01-01", 2.0, 1, 2.0, "post "), ("1", "a", "2011-01-01", 9.0, 1, 9.0, "BANK CHARGES"),
                        ("1", "a", "2011-01-01", 3.0, 1, 3.0, "85123A")])
    clean, log = clean_transactions(lines, ALL_ON, AS_OF)
    assert clean["product_code"].tolist() == ["85123A"]
    assert log.set_index("rule").loc["non_product_lines", "note"] == "BANK CHARGES 1, POST 1"


def test_non_product_rule_is_skipped_without_product_codes() -> None:
    lines = make_lines([("1", "a", "2011-01-01", 2.0)]).drop(columns="product_code")
    _, log = clean_transactions(lines, ALL_ON, AS_OF)
    assert "skipped" in log.set_index("rule").loc["non_product_lines", "note"]


RETURNS = [
    ("1", "100", "2011-01-01", 10.0, 5, 2.0, "A"),   # bought 5 A
    ("1", "101", "2011-02-01", 4.0, 2, 2.0, "A"),    # bought 2 more A
    ("1", "102", "2011-02-01", 6.0, 1, 6.0, "22423"),  # bought 1 of another product
    ("1", "C103", "2011-03-01", -6.0, -3, 2.0, "A"),  # returned 3 A
    ("2", "C104", "2011-03-01", -8.0, -1, 8.0, "Z"),  # returned something bought before the data starts
]


def test_cancellations_dropped_keep_the_original_purchases() -> None:
    clean, log = clean_transactions(make_lines(RETURNS), ALL_ON, AS_OF)
    assert clean["order_id"].tolist() == ["100", "101", "102"]
    assert clean["amount"].sum() == 20.0


def test_cancellations_netted_reduce_the_latest_matching_purchases_first() -> None:
    cfg = ALL_ON.model_copy(update={"cancellations": "net"})
    clean, log = clean_transactions(make_lines(RETURNS), cfg, AS_OF)
    # 3 A returned: the 2 A of order 101 are used up, then 1 of the 5 A of order 100.
    assert clean[["order_id", "amount", "quantity"]].values.tolist() == [["100", 8.0, 4.0], ["102", 6.0, 1.0]]
    row = log.set_index("rule").loc["cancellations"]
    assert (row["rows_removed"], row["rows_modified"]) == (3, 1)  # two returns and the used-up purchase
    assert row["amount_removed"] == pytest.approx(6.0 - 14.0)  # money before the rule (with returns) minus after


def test_cancellations_kept_leave_negative_lines_for_the_price_rule_to_judge() -> None:
    lines = make_lines(RETURNS)
    assert is_cancellation(lines, "C").tolist() == [False, False, False, True, True]
    with pytest.raises(Exception, match="amount"):  # a negative amount cannot be a clean line
        clean_transactions(lines, ALL_ON.model_copy(update={"cancellations": "keep", "non_positive_price": False}), AS_OF)


def test_netting_never_crosses_customers_or_products() -> None:
    lines = make_lines([("1", "a", "2011-01-01", 5.0, 1, 5.0, "A"), ("2", "Cb", "2011-01-02", -5.0, -1, 5.0, "A"),
                        ("1", "Cc", "2011-01-03", -5.0, -1, 5.0, "22423")])
    out, partly = net_cancellations(lines, is_cancellation(lines, "C"))
    assert out["order_id"].tolist() == ["a"] and out["amount"].tolist() == [5.0] and partly == 0


def test_a_return_before_its_purchase_does_not_cancel_it() -> None:
    lines = make_lines([("1", "Ca", "2011-01-01", -5.0, -1, 5.0, "A"), ("1", "b", "2011-01-02", 5.0, 1, 5.0, "A")])
    out, _ = net_cancellations(lines, is_cancellation(lines, "C"))
    assert out["order_id"].tolist() == ["b"]


def test_the_rule_that_empties_the_table_is_named() -> None:
    lines = make_lines([(None, "x", "2011-06-01", 1.0), ("1", "a", "2012-01-01", 1.0), ("2", "b", "2012-02-01", 1.0)])
    with pytest.raises(CleaningError, match=r"rule 'future_timestamps' removed the last 2 rows.*cleaning.future_timestamps"):
        clean_transactions(lines, ALL_ON, AS_OF, where="test lines")


def test_all_lines_cancelled_names_the_cancellation_rule() -> None:
    lines = make_lines([("1", "C1", "2011-01-01", -1.0, -1, 1.0, "A")])
    with pytest.raises(CleaningError, match="'cancellations' removed the last 1 rows"):
        clean_transactions(lines, ALL_ON, AS_OF)


def test_quality_log_check_fails_when_counts_do_not_add_up() -> None:
    lines = make_lines([("1", "a", "2011-01-01", 1.0), ("", "b", "2011-01-01", 1.0)])
    _, log = clean_transactions(lines, ALL_ON, AS_OF)
    check_quality_log(log, 2, 1)
    with pytest.raises(AssertionError, match="does not add up"):
        check_quality_log(log, 2, 2)


def _assert_accounts(collected: pd.DataFrame, clean: pd.DataFrame, log: pd.DataFrame) -> None:
    assert len(collected) - log["rows_removed"].sum() == len(clean)
    assert collected["amount"].sum() - log["amount_removed"].sum() == pytest.approx(clean["amount"].sum(), abs=0.05)


@pytest.fixture(scope="module")
def online_retail(online_retail_xlsx: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return collected("online_retail_sample.yaml", tmp_path_factory.mktemp("or") / "data")


def test_online_retail_dirt_is_removed_rule_by_rule(online_retail: pd.DataFrame) -> None:
    params = load_params("online_retail_sample.yaml")
    clean, log = clean_transactions(online_retail, params.cleaning, params.as_of)
    removed = log.set_index("rule")["rows_removed"].to_dict()
    assert removed == {"normalise_ids": 0, "missing_customer_id": 601, "future_timestamps": 0, "exact_duplicates": 504,
                       "non_product_lines": 1045, "cancellations": 686, "non_positive_price": 8}
    assert len(clean) == 31_922
    assert not clean["order_id"].str.startswith("C").any() and (clean["quantity"] > 0).all()
    assert (clean["unit_price"] > 0).all()
    _assert_accounts(online_retail, clean, log)


def test_online_retail_duplicates_match_the_data_description(online_retail: pd.DataFrame) -> None:
    # The README of the extract counts 515 exact duplicate lines (11 of them have no customer).
    assert online_retail.drop(columns="source_row").duplicated().sum() == 515


def test_online_retail_netted(online_retail: pd.DataFrame) -> None:
    params = load_params("online_retail_sample.yaml", {"cleaning.cancellations": "net"})
    clean, log = clean_transactions(online_retail, params.cleaning, params.as_of)
    dropped, _ = clean_transactions(online_retail, load_params("online_retail_sample.yaml").cleaning, params.as_of)
    assert clean["amount"].sum() < dropped["amount"].sum()  # returns are no longer counted as revenue
    _assert_accounts(online_retail, clean, log)


def test_cdnow_master_keeps_every_line(isolated: Path) -> None:
    params = load_params("cdnow.yaml")
    _, lines = collect(params)
    clean, log = clean_transactions(lines, params.cleaning, params.as_of)
    assert len(clean) == 69_659 and log["rows_removed"].sum() == 0


line = st.tuples(
    st.sampled_from(["1", "2", " 3", "3.0", None]),
    st.sampled_from(["a", "b", "Cc"]),
    st.sampled_from(["2011-01-01", "2011-06-01", "2012-01-01"]),
    st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 2)),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.5, 2.0]),
    st.sampled_from(["85123A", "22423", "POST"]),
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(line, min_size=1, max_size=25), mode=st.sampled_from(["drop", "net"]))
def test_quality_log_always_accounts_for_every_line_and_every_cent(rows: list[tuple], mode: str) -> None:
    lines = make_lines(rows)
    try:
        clean, log = clean_transactions(lines, ALL_ON.model_copy(update={"cancellations": mode}), AS_OF)
    except CleaningError:
        return  # a rule emptied the table: reported, nothing to account for
    _assert_accounts(lines, clean, log)
    assert (clean["amount"] >= 0).all()


def test_the_duckdb_engine_over_parquet_gives_the_frames_log_notes_included(tmp_path: Path) -> None:
    import duckdb

    from helpers.cleaning import CLEAN_ORDER, parquet_lines, run_rules

    lines = make_lines(RETURNS + [("3", "200", "2011-01-05", 2.0, 1, 2.0, "POST"), ("3", "201", "2011-01-05", 5.0, 1, 5.0, "A")])
    lines.to_parquet(tmp_path / "collected.parquet")
    for mode in ("drop", "net"):
        cfg = ALL_ON.model_copy(update={"cancellations": mode})
        clean, log = clean_transactions(lines, cfg, AS_OF)
        con = duckdb.connect()
        quality = run_rules(con, parquet_lines(tmp_path / "collected.parquet"), cfg, AS_OF, "x")
        pd.testing.assert_frame_equal(quality, log)
        out = con.execute(f"SELECT * EXCLUDE (_row) FROM clean {CLEAN_ORDER}").df()
        pd.testing.assert_frame_equal(out.astype(clean.dtypes.to_dict()), clean)
        assert log.set_index("rule").loc["non_product_lines", "note"] == "POST 1"


def test_ids_are_trimmed_of_every_kind_of_whitespace_as_python_strips_it() -> None:
    from helpers.cleaning import normalise_ids

    ids = ["\t123\u00a0", "123.00\n", "\u2003 ", "1 2", "7.5"]
    out = normalise_ids(pd.DataFrame({"customer_id": ids}), ALL_ON, AS_OF)
    assert out.frame["customer_id"].tolist() == ["123", "123", None, "1 2", "7.5"] and out.rows_modified == 3


def test_the_written_out_whitespace_is_what_str_strip_strips() -> None:
    import sys

    from helpers.cleaning.rules import WHITESPACE

    assert WHITESPACE == "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(line, min_size=1, max_size=25), mode=st.sampled_from(["drop", "net"]))
def test_the_steps_counted_in_one_pass_are_what_each_view_holds(rows: list[tuple], mode: str) -> None:
    # run_rules counts a run of view steps in one query (cleaning.engine.survivors): each step's rows and money
    # after must be what its own view holds, counted alone
    import duckdb

    from helpers.cleaning import run_rules
    from helpers.cleaning.engine import frame_lines

    con = duckdb.connect()
    try:
        try:
            log = run_rules(con, frame_lines(con, make_lines(rows)), ALL_ON.model_copy(update={"cancellations": mode}),
                            AS_OF, "test lines")
        except CleaningError:
            return
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        counted, last = 0, None  # last: the money of the view before, when it was counted
        for entry in log.itertuples():
            name = f"_step{entry.step}"
            if name not in views:
                last = None
                continue
            n, money = con.execute(f"SELECT count(*), coalesce(fsum(amount), 0) FROM {name}").fetchall()[0]
            assert n == entry.rows_after
            if last is not None:
                assert round(last - money, 2) + 0.0 == entry.amount_removed
            last, counted = money, counted + 1
        assert counted >= (5 if mode == "drop" else 1)  # the filters and the duplicates' view (net: a table)
    finally:
        con.close()
