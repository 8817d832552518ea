"""Bad input met on the way (issue 11): lines with the wrong number of fields, the wrong separator, an
``as_of`` before the data, a flipped sign, and a DuckDB query over files with no database file.

Every message names the user's source (the ``source.path`` of the parameter file), never the raw
snapshot's copy or a temporary folder, and says which parameter to change.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from helpers.catalog import Catalog
from helpers import paths, sqlclean, store
from helpers.cleaning import check_quality_log, clean_and_save, clean_transactions
from helpers.config import CleaningParams, Params, SourceParams, load_params
from helpers.errors import CleaningError, DataError
from helpers.sources import collect, collect_and_save, guess_separator
from tests_support import make_lines

COLUMNS = {"customer_id": "Customer", "order_id": "Order", "order_ts": "Date", "amount": "Amount"}
HEADER = "Customer,Order,Date,Amount,Note\n"


def _params(path: Path | None, columns: dict | None = None, as_of: str = "2011-12-31", **source) -> Params:
    src = {"kind": "csv", **({"path": str(path)} if path is not None else {}), **source}
    return Params.model_validate({"dataset": "t", "as_of": as_of, "source": src, "columns": columns or COLUMNS})


def _lines(n: int, bad: set[int] = frozenset()) -> str:
    """``n`` data lines (file lines 2 .. n + 1); those in ``bad`` get an unquoted comma inside the note."""
    out = []
    for line in range(2, n + 2):
        note = "gift, wrapped" if line in bad else "gift"
        out.append(f"c{line % 7},o{line},2011-{1 + line % 12:02d}-15 10:00,{line}.5,{note}\n")
    return HEADER + "".join(out)


def _names_the_users_file_only(message: str, source: Path) -> None:
    assert message.startswith(str(source)), message
    assert ".collect-" not in message and str(paths.raw_dir("t")) not in message.split(" (snapshot ")[0]


# ---------------------------------------------------------------------------
# lines with the wrong number of fields


def test_bad_lines_are_named_with_the_users_file_and_the_skip_parameter(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text(_lines(20, bad={4, 9, 17}))
    with pytest.raises(DataError) as err:
        collect(_params(source))
    message = str(err.value)
    _names_the_users_file_only(message, source)
    assert "3 lines have more fields than the header's 5: lines 4, 9, 17" in message
    assert "source.on_bad_lines: skip" in message


def test_many_bad_lines_are_capped_in_the_message(isolated: Path) -> None:
    source = isolated / "orders.csv"
    bad = set(range(3, 40, 2))  # 19 bad lines
    source.write_text(_lines(40, bad=bad))
    with pytest.raises(DataError, match=r"19 lines .*: lines 3, 5, 7, 9, 11, 13, 15, 17, 19, 21 and 9 more \("):
        collect(_params(source))


def test_skipped_bad_lines_are_the_first_row_of_the_quality_log(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text(_lines(20, bad={4, 9, 17}))
    params = _params(source, on_bad_lines="skip")
    snap, engine = collect_and_save(params)
    assert engine == "pandas" and snap.manifest["bad_lines"] == 3 and snap.manifest["rows"] == 17
    collected = Catalog.of(params).query("select source_row from collected")["source_row"].astype(int).tolist()
    assert collected == [n for n in range(2, 22) if n not in {4, 9, 17}]  # source_row still points at the file line
    quality, overview, _, _ = clean_and_save(params)
    first = quality.iloc[0]
    assert (first["rule"], first["step"], first["rows_before"], first["rows_removed"]) == ("bad_lines", 0, 20, 3)
    assert first["note"].endswith("lines 4, 9, 17")
    check_quality_log(quality, rows_in=20, rows_out=int(overview["lines"]))
    assert int(quality["rows_before"].iloc[0]) - int(quality["rows_removed"].sum()) == int(overview["lines"])


def test_skip_with_no_bad_lines_says_none_and_a_good_file_has_no_bad_lines_row(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text(_lines(10))
    collect_and_save(_params(source, on_bad_lines="skip"))
    quality, *_ = clean_and_save(_params(source, on_bad_lines="skip"))
    assert quality.iloc[0]["rule"] == "bad_lines" and quality.iloc[0]["rows_removed"] == 0
    assert "none found" in quality.iloc[0]["note"]
    collect_and_save(_params(source))
    quality, *_ = clean_and_save(_params(source))
    assert "bad_lines" not in quality["rule"].tolist()


def test_the_bad_lines_note_is_capped_but_the_count_is_exact(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text(_lines(60, bad=set(range(2, 50))))  # 48 bad lines
    collect_and_save(_params(source, on_bad_lines="skip"))
    quality, overview, _, _ = clean_and_save(_params(source, on_bad_lines="skip"))
    first = quality.iloc[0]
    assert first["rows_removed"] == 48 and first["note"].endswith("lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 38 more")
    assert first["rows_after"] == 12


def test_a_bad_first_line_does_not_shift_the_columns(isolated: Path) -> None:
    source = isolated / "orders.csv"  # pandas would take the first line's extra field as an index
    source.write_text(_lines(6, bad={2}))
    _, lines = collect(_params(source, on_bad_lines="skip"))
    assert lines["source_row"].tolist() == ["3", "4", "5", "6", "7"]
    assert lines["customer_id"].tolist() == [f"c{n % 7}" for n in range(3, 8)]
    assert lines["amount"].tolist() == [n + 0.5 for n in range(3, 8)]


def test_a_headerless_file_whose_first_line_has_more_fields_than_the_names(isolated: Path) -> None:
    source = isolated / "tx.txt"
    source.write_text("1 19970101 2 29.33 extra\n2 19970102 1 11.77\n")
    params = Params.model_validate({"dataset": "t", "as_of": "1998-06-30", "date_format": "%Y%m%d",
                                    "source": {"kind": "text", "path": str(source), "sep": "whitespace", "header": False,
                                               "names": ["cust", "date", "cds", "usd"]},
                                    "columns": {"customer_id": "cust", "order_ts": "date", "amount": "usd"}})
    with pytest.raises(DataError, match=r"^.*tx.txt: line 1 has 5 fields but source.names lists 4"):
        collect(params)


@pytest.mark.parametrize(("content", "encoding", "message"), [
    (b"", "utf-8", "the file is empty"),
    ("Customer,Order,Date,Amount\nc1,o1,2011-01-01,CR\xc8ME\n".encode("latin-1"), "utf-8", "cannot be read as utf-8"),
    (_lines(5, bad={3}).encode(), "utf-8", "more fields than the header"),
])
def test_every_read_error_names_the_users_file_not_the_snapshot(isolated: Path, content: bytes, encoding: str,
                                                                message: str) -> None:
    source = isolated / "export.csv"
    source.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        collect(_params(source, encoding=encoding))
    _names_the_users_file_only(str(err.value), source)


def test_a_relative_source_path_is_named_as_configured_and_resolved(isolated: Path) -> None:
    (isolated / "exports").mkdir()
    (isolated / "exports" / "orders.csv").write_text(_lines(5, bad={3}))
    with pytest.MonkeyPatch.context() as mp, pytest.raises(DataError) as err:  # undone before `isolated` checks the raw layer
        mp.setattr(paths, "PROJECT_ROOT", isolated)
        collect(_params(Path("exports/orders.csv")))
    assert str(err.value).startswith(f"exports/orders.csv ({isolated / 'exports' / 'orders.csv'}): 1 lines")


# ---------------------------------------------------------------------------
# the wrong separator


@pytest.mark.parametrize(("sep", "said"), [(";", "looks ';'-separated: set source.sep: ';'"),
                                           ("\t", 'looks tab-separated: set source.sep: "\\t"')])
def test_a_file_with_another_separator_says_which_to_set(isolated: Path, sep: str, said: str) -> None:
    source = isolated / "orders.csv"
    source.write_text("Customer;Order;Date;Amount\nc1;o1;2011-01-01;12,50\nc2;o2;2011-01-02;3,10\n".replace(";", sep))
    with pytest.raises(DataError) as err:
        collect(_params(source))
    assert str(err.value).startswith(f"{source} {said}")


def test_the_right_separator_reads_the_same_file(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text("Customer;Order;Date;Amount\nc1;o1;2011-01-01;12.50\nc2;o2;2011-01-02;3.10\n")
    _, lines = collect(_params(source, sep=";"))
    assert lines["amount"].tolist() == [12.5, 3.1]


def test_mapped_columns_not_found_because_of_the_separator_say_so(isolated: Path) -> None:
    source = isolated / "orders.csv"  # read as whitespace-separated: the header splits at its spaces
    source.write_text("Customer ID,Order,Order Date,Amount\n1,o1,2011-01-01 10:00,5\n2,o2,2011-01-02 11:00,6\n")
    columns = {"customer_id": "Customer ID", "order_id": "Order", "order_ts": "Order Date", "amount": "Amount"}
    with pytest.raises(DataError) as err:
        collect(_params(source, columns, sep="whitespace"))
    message = str(err.value)
    assert message.startswith(f"{source} looks ','-separated: set source.sep: ','")
    assert "['Customer ID', 'Order Date', 'Order', 'Amount'] not found with source.sep 'whitespace'" in message


def test_a_comma_file_with_semicolons_and_tabs_in_values_gets_no_hint(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text('Customer,Order,Date,Amount,Note\nc1,o1,2011-01-01,5,"a;b\tc"\nc2,o2,2011-01-02,6,x;y\n')
    _, lines = collect(_params(source))
    assert len(lines) == 2
    assert guess_separator(source.read_text().splitlines(keepends=True), ",") is None


# ---------------------------------------------------------------------------
# as_of before the data, and after it


def test_as_of_before_the_first_transaction_is_said_before_any_rule_runs() -> None:
    lines = make_lines([("1", "a", "2012-01-03", 1.0), ("2", "b", "2012-05-01", 1.0)])
    with pytest.raises(CleaningError) as err:
        clean_transactions(lines, CleaningParams(), dt.date(2011, 12, 31), where="orders.csv")
    message = str(err.value)
    assert message.startswith("orders.csv: as_of 2011-12-31 is before the first transaction")
    assert "from 2012-01-03 to 2012-05-01" in message and "-p as_of 2012-05-01" in message
    assert "future_timestamps" not in message  # said at once, not as the rule that emptied the table


def test_as_of_on_the_first_day_and_long_after_the_data_are_fine() -> None:
    lines = make_lines([("1", "a", "2012-01-03", 1.0), ("2", "b", "2012-05-01", 1.0)])
    clean, _ = clean_transactions(lines, CleaningParams(), dt.date(2012, 1, 3))
    assert clean["order_id"].tolist() == ["a"]
    clean, log = clean_transactions(lines, CleaningParams(), dt.date(2013, 5, 1))
    assert len(clean) == 2
    assert log.set_index("rule").loc["future_timestamps", "note"].endswith("the last line kept is 365 days before as_of")


def test_as_of_before_the_data_on_the_duckdb_engine(tmp_path: Path) -> None:
    source = tmp_path / "orders.parquet"
    pd.DataFrame({"Customer": ["1", "2"], "Order": ["a", "b"], "Date": pd.to_datetime(["2012-01-03", "2012-05-01"]),
                  "Amount": [1.0, 2.0]}).to_parquet(source)
    params = _params(source, kind="parquet", as_of="2011-12-31")
    con = sqlclean.connect()
    with pytest.raises(CleaningError, match=r"as_of 2011-12-31 is before the first transaction: .*2012-01-03 to 2012-05-01"):
        sqlclean.clean_lines(con, params, source)


# ---------------------------------------------------------------------------
# a flipped sign


def test_all_amounts_negative_says_the_sign_looks_flipped(isolated: Path) -> None:
    source = isolated / "costs.csv"
    source.write_text(HEADER + "".join(f"c{i},o{i},2011-03-0{1 + i % 9} 10:00,-{i}.5,x\n" for i in range(1, 21)))
    with pytest.raises(DataError) as err:
        collect(_params(source))
    message = str(err.value)
    assert message.startswith(str(source))
    assert "the sign looks flipped: 20 of 20 non-zero amounts are negative (column 'Amount' (amount): 20 of 20" in message


def test_nearly_all_negative_quantities_name_the_quantity_column(isolated: Path) -> None:
    rows = [f"c{i},o{i},2011-03-01,{'-' if i > 1 else ''}{i},2.5\n" for i in range(1, 21)]  # 19 of 20 negative
    source = isolated / "returns.csv"
    source.write_text("Customer,Order,Date,Qty,Price\n" + "".join(rows))
    columns = {"customer_id": "Customer", "order_id": "Order", "order_ts": "Date", "quantity": "Qty",
               "unit_price": "Price"}
    with pytest.raises(DataError, match=r"19 of 20 non-zero amounts are negative \(column 'Qty' \(quantity\): 19 of 20"):
        collect(_params(source, columns))


def test_a_log_with_ordinary_returns_is_not_flipped(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text(HEADER + "".join(f"c{i},o{i},2011-03-01,{'-' if i <= 5 else ''}{i},x\n" for i in range(1, 21)))
    _, lines = collect(_params(source))
    assert (lines["amount"] < 0).sum() == 5


def test_the_flipped_sign_on_the_duckdb_engine(isolated: Path) -> None:
    source = isolated / "costs.parquet"
    pd.DataFrame({"Customer": list("abcd"), "Order": list("1234"), "Date": pd.to_datetime(["2011-01-01"] * 4),
                  "Amount": [-1.0, -2.0, -3.0, -4.0]}).to_parquet(source)
    params = _params(source, kind="parquet").model_copy(update={"engine": "duckdb"})
    with pytest.raises(DataError, match=r"sign looks flipped: 4 of 4 .*column 'Amount'"):
        collect_and_save(params)


# ---------------------------------------------------------------------------
# a DuckDB query over files, with no database file


def _two_tables(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders.csv").write_text("order_id,customer_id,status,ts\n"
                                       "o1,k1,delivered,2011-01-01 10:00\no2,k2,canceled,2011-01-02 10:00\n"
                                       "o3,k3,delivered,2011-02-01 10:00\n")
    (folder / "payments.csv").write_text("order_id,value\no1,10.0\no1,5.5\no2,7.0\no3,2.0\n")
    (folder / "people.csv").write_text("customer_id,person\nk1,p1\nk2,p2\nk3,p1\n")


QUERY = """
    SELECT c.person, o.order_id, o.ts, p.amount
    FROM read_csv('shop/orders.csv') o
    JOIN read_csv('shop/people.csv') c USING (customer_id)
    JOIN (SELECT order_id, sum(value) AS amount FROM read_csv('shop/payments.csv') GROUP BY order_id) p USING (order_id)
    WHERE o.status <> 'canceled';
"""
QUERY_COLUMNS = {"customer_id": "person", "order_id": "order_id", "order_ts": "ts", "amount": "amount"}


def test_a_duckdb_query_needs_no_database_file_and_reads_files_from_the_project_root(isolated: Path) -> None:
    root = isolated / "project"
    _two_tables(root / "shop")
    params = _params(None, QUERY_COLUMNS, kind="duckdb", query=QUERY)
    with pytest.MonkeyPatch.context() as mp:  # undone before `isolated` checks the raw layer
        mp.setattr(paths, "PROJECT_ROOT", root)
        mp.chdir(isolated)  # not the project root: relative paths must not depend on it
        snap, lines = collect(params)
        again, _ = collect(params)
    assert lines.sort_values("order_id")[["customer_id", "order_id", "amount"]].values.tolist() == [
        ["p1", "o1", 15.5], ["p1", "o3", 2.0]]
    inputs = {Path(f["resolved"]).name: f for f in snap.manifest["source"]["inputs"]}
    assert sorted(inputs) == ["orders.csv", "payments.csv", "people.csv"]
    assert inputs["orders.csv"]["path"] == "shop/orders.csv" and len(inputs["orders.csv"]["sha256"]) == 64
    assert again.directory == snap.directory  # the query's rows are sorted: the same snapshot every run


def test_a_failing_query_without_a_database_names_the_query(isolated: Path) -> None:
    params = _params(None, QUERY_COLUMNS, kind="duckdb", query="select * from read_csv('nowhere/x.csv')")
    with pytest.raises(DataError, match=r"^the duckdb query \(in-memory database\): the duckdb query failed: .*nowhere/x.csv"):
        collect(params)


@pytest.mark.parametrize("source", [{"kind": "csv"}, {"kind": "duckdb", "table": "orders"}, {"kind": "sqlite", "query": "select 1"}])
def test_only_a_duckdb_query_can_do_without_a_path(source: dict) -> None:
    with pytest.raises(ValidationError, match="needs 'path'"):
        SourceParams.model_validate(source)


# ---------------------------------------------------------------------------
# the Olist tables through params/olist.yaml


OLIST = paths.PROJECT_ROOT.parent / "shared" / "data" / "olist"


@pytest.mark.skipif(not OLIST.exists(), reason="the shared Olist tables sit beside the project (../shared/data/olist)")
def test_olist_parameter_file_collects_people_and_orders_as_the_tables_say(isolated: Path) -> None:
    params = load_params("olist.yaml")
    assert params.source.path is None and "../shared/data/olist/" in (params.source.query or "")
    orders = pd.read_csv(OLIST / "olist_orders_dataset.csv", dtype=str)
    people = pd.read_csv(OLIST / "olist_customers_dataset.csv", dtype=str)
    payments = pd.read_csv(OLIST / "olist_order_payments_dataset.csv", dtype={"order_id": str})
    kept = orders[~orders["order_status"].isin(["canceled", "unavailable"])].merge(people, on="customer_id")
    amount = payments.groupby("order_id")["payment_value"].sum()
    snap, engine = collect_and_save(params)
    collected = Catalog.of(params).query("select * from collected")
    assert len(collected) == len(kept) and collected["customer_id"].nunique() == kept["customer_unique_id"].nunique()
    by_order = collected.set_index("order_id")["amount"]
    assert by_order.sort_index().to_numpy() == pytest.approx(amount.reindex(by_order.index).sort_index().to_numpy())
    assert {Path(f["resolved"]).name for f in snap.manifest["source"]["inputs"]} == {
        "olist_orders_dataset.csv", "olist_customers_dataset.csv", "olist_order_payments_dataset.csv"}
    quality, overview, _, _ = clean_and_save(params)
    assert overview["last order"] <= params.as_of.isoformat() and int(overview["lines"]) > 0.95 * len(kept)


# ---------------------------------------------------------------------------
# numbers written with a decimal comma or thousands separators

DECIMAL_COMMAS = "Customer;Order;Date;Amount\nc1;o1;2011-01-01;2,95\nc2;o2;2011-01-02;1.234,50\nc3;o3;2011-01-03;-3,10\n"


def test_decimal_commas_read_with_source_decimal_and_thousands(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text(DECIMAL_COMMAS)
    _, lines = collect(_params(source, sep=";", decimal=",", thousands="."))
    assert lines["amount"].tolist() == [2.95, 1234.5, -3.1]


def test_decimal_commas_read_with_the_defaults_say_which_parameter_to_set(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text(DECIMAL_COMMAS)
    with pytest.raises(DataError) as err:
        collect(_params(source, sep=";"))
    message = str(err.value)
    _names_the_users_file_only(message, source)
    assert "column 'Amount' has 3 values that are not numbers: row 2: '2,95'" in message
    assert message.endswith("(row 3: '1.234,50'): set source.decimal: ',' and source.thousands: '.'")
    source.write_text(DECIMAL_COMMAS.replace("1.234,50", "1,50"))
    with pytest.raises(DataError, match=r"decimal comma \(row 2: '2,95'\): set source.decimal: ','$"):
        collect(_params(source, sep=";"))
    source.write_text(DECIMAL_COMMAS.replace("2,95", '"2;95"'))  # not a number whatever the marks: no hint
    with pytest.raises(DataError, match=r"1 values that are not numbers with source.decimal ',' and source.thousands "
                                        r"'.': row 2: '2;95'$"):
        collect(_params(source, sep=";", decimal=",", thousands="."))


def test_thousands_commas_say_so(isolated: Path) -> None:
    source = isolated / "orders.csv"
    source.write_text("Customer,Order,Date,Amount\nc1,o1,2011-01-01,\"1,234.50\"\nc2,o2,2011-01-02,7.25\n")
    with pytest.raises(DataError, match=r"thousands separators \(row 2: '1,234.50'\): set source.thousands: ','$"):
        collect(_params(source))
    _, lines = collect(_params(source, thousands=","))
    assert lines["amount"].tolist() == [1234.5, 7.25]


def test_the_same_separator_for_thousands_and_decimals_is_refused() -> None:
    with pytest.raises(ValidationError, match="source.thousands and source.decimal are both ','"):
        _params(Path("x.csv"), decimal=",", thousands=",")


def test_decimal_commas_in_a_workbook_s_text_cells_leave_its_numbers_alone(isolated: Path) -> None:
    source = isolated / "orders.xlsx"
    pd.DataFrame({"Customer": ["c1", "c2", "c3"], "Order": ["o1", "o2", "o3"], "Date": ["2011-01-01"] * 3,
                  "Amount": ["69,35", 12.5, "1.000,25"]}).to_excel(source, index=False)
    _, lines = collect(_params(source, kind="excel", decimal=",", thousands="."))
    assert lines["amount"].tolist() == [69.35, 12.5, 1000.25]


def test_the_duckdb_engine_reads_text_numbers_as_the_pandas_engine_does(isolated: Path) -> None:
    import duckdb

    source = isolated / "orders.parquet"
    pd.DataFrame({"Customer": ["c1", "c2", "c3"], "Order": ["o1", "o2", "o3"],
                  "Date": pd.to_datetime(["2011-01-01", "2011-01-02", "2011-01-03"]),
                  "Amount": ["2,95", "1.234,50", "-3,10"], "Quantity": [1.5, 2.0, 3.0]}).to_parquet(source)
    columns = {**COLUMNS, "amount": "Amount", "quantity": "Quantity"}
    params = _params(source, columns, kind="parquet", decimal=",", thousands=".")
    _, by_pandas = collect(params)
    by_duckdb = duckdb.sql(sqlclean.canonical_select(params, source)).df()
    assert by_duckdb["amount"].tolist() == by_pandas["amount"].tolist() == [2.95, 1234.5, -3.1]
    assert by_duckdb["quantity"].tolist() == [1.5, 2.0, 3.0]  # a typed column: nothing taken out of it
