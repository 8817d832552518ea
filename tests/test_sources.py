"""Stage 02: every kind of source, the immutable snapshot, and errors that name the file, column and rows."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from helpers.catalog import Catalog
from helpers import paths, store
from helpers.config import Params, load_params
from helpers.errors import DataError
from helpers.sources import collect, resolve_source_path, save_collected, sha256_file

US_CSV = (
    "Invoice,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,CR\xc8ME HEART,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
    "536366,71053,WHITE LANTERN,2,12/1/2010 8:28,3.39,17850.0,United Kingdom\n"
    "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527.0,C\xf4te d'Ivoire\n"
)
RETAIL_COLUMNS = {"customer_id": "CustomerID", "order_id": "Invoice", "order_ts": "InvoiceDate",
                  "quantity": "Quantity", "unit_price": "UnitPrice", "product_code": "StockCode",
                  "description": "Description", "country": "Country"}


def params_for(source: dict, columns: dict, **extra) -> Params:
    return Params.model_validate({"dataset": "t", "as_of": "2011-12-09", "source": source, "columns": columns, **extra})


@pytest.fixture
def us_csv(tmp_path: Path) -> Path:
    f = tmp_path / "retail_us.csv"
    f.write_bytes(US_CSV.encode("latin-1"))
    return f


def test_cdnow_master_has_the_published_size(isolated: Path) -> None:
    snap, lines = collect(load_params("cdnow.yaml"))
    assert (len(lines), lines["customer_id"].nunique()) == (69_659, 23_570)
    assert snap.manifest["rows"] == 69_659
    assert snap.manifest["sha256"] == sha256_file(resolve_source_path("lifetimes:CDNOW_master.txt"))
    assert lines["order_ts"].min() == pd.Timestamp("1997-01-01")
    assert lines["customer_id"].iloc[0] == "00001"  # keys stay strings, zeros kept


def test_cdnow_sample_has_2357_customers(isolated: Path) -> None:
    _, lines = collect(load_params("cdnow_sample.yaml"))
    assert (len(lines), lines["customer_id"].nunique()) == (6_919, 2_357)


def test_excel_workbook_reads_every_sheet(isolated: Path, online_retail_xlsx: Path) -> None:
    snap, lines = collect(load_params("online_retail_sample.yaml"))
    assert snap.manifest["sheets"] == {"Year 2009-2010": 14_269, "Year 2010-2011": 20_497}
    assert len(lines) == 34_766
    assert lines["customer_id"].nunique() == 262
    assert lines["customer_id"].isna().sum() == 601
    assert lines["source_row"].iloc[0] == "Year 2009-2010!2"
    first = lines.iloc[0]
    assert first["amount"] == pytest.approx(first["quantity"] * first["unit_price"])


def test_csv_with_us_dates_latin1_and_computed_amount(isolated: Path, us_csv: Path) -> None:
    p = params_for({"kind": "csv", "path": str(us_csv), "encoding": "latin-1"}, RETAIL_COLUMNS,
                   date_format="%m/%d/%Y %H:%M")
    _, lines = collect(p)
    assert lines["order_ts"].tolist()[:2] == [pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2010-12-01 08:28")]
    assert lines["amount"].tolist() == pytest.approx([15.3, 6.78, -27.5])
    assert lines["description"].iloc[0] == "CR\u00c8ME HEART"
    assert lines["country"].iloc[2] == "C\u00f4te d'Ivoire"


def test_wrong_encoding_says_which_file_and_how_to_fix(isolated: Path, us_csv: Path) -> None:
    p = params_for({"kind": "csv", "path": str(us_csv)}, RETAIL_COLUMNS, date_format="%m/%d/%Y %H:%M")
    with pytest.raises(DataError, match=r"retail_us.csv.*utf-8.*source.encoding"):
        collect(p)


def test_parquet_source(isolated: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"cust": [1, 2], "ts": pd.to_datetime(["2011-01-01", "2011-02-01"]), "usd": [3.0, 4.0]})
    frame.to_parquet(tmp_path / "tx.parquet")
    _, lines = collect(params_for({"kind": "parquet", "path": str(tmp_path / "tx.parquet")},
                                  {"customer_id": "cust", "order_ts": "ts", "amount": "usd"}))
    assert lines["customer_id"].tolist() == ["1", "2"]
    assert lines["order_id"].tolist() == ["1@20110101", "2@20110201"]


def _database_rows() -> pd.DataFrame:
    return pd.DataFrame({"cust": ["a", "b", "a"], "ts": ["2011-01-01 10:00", "2011-01-02 11:00", "2011-03-01 09:00"],
                         "total": [10.0, 20.0, 30.0], "status": ["ok", "ok", "void"]})


def test_duckdb_table_and_query(isolated: Path, tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(db))
    con.register("rows_df", _database_rows())
    con.execute("create table orders as select * from rows_df")
    con.close()
    columns = {"customer_id": "cust", "order_ts": "ts", "amount": "total"}
    snap, lines = collect(params_for({"kind": "duckdb", "path": str(db), "table": "orders"}, columns))
    assert len(lines) == 3 and snap.file.suffix == ".parquet"
    _, lines = collect(params_for({"kind": "duckdb", "path": str(db),
                                   "query": "select * from orders where status = 'ok'"}, columns))
    assert lines["amount"].tolist() == [10.0, 20.0]


def test_sqlite_table(isolated: Path, tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as con:
        _database_rows().to_sql("orders", con, index=False)
    con.close()
    before = sha256_file(db)
    _, lines = collect(params_for({"kind": "sqlite", "path": str(db), "table": "orders"},
                                  {"customer_id": "cust", "order_ts": "ts", "amount": "total"}))
    assert lines["customer_id"].tolist() == ["a", "b", "a"]
    assert sha256_file(db) == before  # opened read-only


def test_bad_sql_names_the_database_and_query(isolated: Path, tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    sqlite3.connect(db).close()
    with pytest.raises(DataError, match=r"shop.sqlite.*sqlite query failed.*no such table"):
        collect(params_for({"kind": "sqlite", "path": str(db), "table": "orders"},
                           {"customer_id": "cust", "order_ts": "ts", "amount": "total"}))


def test_misspelled_column_is_named_with_the_columns_found(isolated: Path, us_csv: Path) -> None:
    columns = RETAIL_COLUMNS | {"customer_id": "Customer ID"}
    p = params_for({"kind": "csv", "path": str(us_csv), "encoding": "latin-1"}, columns, date_format="%m/%d/%Y %H:%M")
    with pytest.raises(DataError) as err:
        collect(p)
    message = str(err.value)
    assert "'Customer ID' (mapped to customer_id) not found" in message
    assert "did you mean 'CustomerID'" in message
    assert "'Invoice', 'StockCode'" in message and "retail_us.csv" in message


def test_unparseable_dates_show_example_rows(isolated: Path, us_csv: Path) -> None:
    p = params_for({"kind": "csv", "path": str(us_csv), "encoding": "latin-1"}, RETAIL_COLUMNS,
                   date_format="%d/%m/%Y %H:%M")  # day first: 12/1 reads, 1/13 has no month 13
    us_csv.write_bytes(US_CSV.replace("12/1/2010 8:28", "1/13/2010 8:28").encode("latin-1"))
    with pytest.raises(DataError, match=r"'InvoiceDate' has 1 timestamps that cannot be read.*row 3: '1/13/2010 8:28'"):
        collect(p)


def test_text_in_a_number_column_names_the_rows(isolated: Path, us_csv: Path) -> None:
    us_csv.write_bytes(US_CSV.replace(",2.55,", ",two,").encode("latin-1"))
    p = params_for({"kind": "csv", "path": str(us_csv), "encoding": "latin-1"}, RETAIL_COLUMNS,
                   date_format="%m/%d/%Y %H:%M")
    with pytest.raises(DataError, match=r"'UnitPrice' has 1 values that are not numbers: row 2: 'two'"):
        collect(p)


def test_missing_file_names_the_path(isolated: Path) -> None:
    p = params_for({"kind": "csv", "path": "data/nowhere/tx.csv"}, {"customer_id": "c", "order_ts": "t", "amount": "a"})
    with pytest.raises(DataError, match=r"source file not found: 'data/nowhere/tx.csv'"):
        collect(p)


@pytest.mark.parametrize(("content", "message"), [("", "empty"), ("c,t,a\n", "header but no rows")])
def test_empty_and_header_only_files(isolated: Path, tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "e.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        collect(params_for({"kind": "csv", "path": str(tmp_path / "e.csv")},
                           {"customer_id": "c", "order_ts": "t", "amount": "a"}))


def test_snapshot_is_immutable_reused_and_the_source_untouched(isolated: Path) -> None:
    params = load_params("cdnow_sample.yaml")
    source = resolve_source_path(params.source.path)
    source_sha, source_mtime = sha256_file(source), source.stat().st_mtime_ns
    first, _ = collect(params)
    assert not first.file.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert first.directory.parent == paths.raw_dir("cdnow_sample")
    assert first.directory.name == first.manifest["sha256"][:16]
    again, _ = collect(params)
    assert again.directory == first.directory
    assert again.manifest["collected_at"] == first.manifest["collected_at"]  # reused, not rewritten
    assert (sha256_file(source), source.stat().st_mtime_ns) == (source_sha, source_mtime)
    assert [p.name for p in paths.raw_dir("cdnow_sample").iterdir()] == [first.directory.name]  # no temp left


def test_a_modified_snapshot_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIN_DATA_DIR", str(tmp_path / "data"))  # not `isolated`: this test tampers with the raw layer
    params = load_params("cdnow_sample.yaml")
    snap, _ = collect(params)
    os.chmod(snap.file, 0o644)
    with open(snap.file, "a") as fh:
        fh.write(" 99999 9999 19980101 1 1.00\n")
    with pytest.raises(DataError, match="no longer matches its manifest"):
        collect(params)


def test_collected_lines_are_queryable_in_duckdb(isolated: Path) -> None:
    params = load_params("cdnow_sample.yaml")
    snap, lines = collect(params)
    run = Catalog.of(params)
    save_collected(run, snap, lines)
    save_collected(run, snap, lines)  # collecting again replaces the run's tables
    counts = run.query("select count(*) as n, count(distinct customer_id) as c from collected")
    assert counts.iloc[0].tolist() == [6_919, 2_357]
    snapshots = run.query("select * from snapshots")
    assert len(snapshots) == 1 and snapshots["used_by_this_run"].all()
    assert run.path("collected").exists() and run.folder.parent.parent.name == "processed"


def test_a_failed_collection_leaves_no_partial_files(isolated: Path, us_csv: Path) -> None:
    p = params_for({"kind": "csv", "path": str(us_csv), "encoding": "latin-1"}, RETAIL_COLUMNS | {"order_ts": "Date"})
    with pytest.raises(DataError):
        collect(p)
    raw = paths.raw_dir("t")
    assert [q.name for q in raw.iterdir()] == [next(raw.iterdir()).name]  # one complete snapshot, no staging
    assert (next(raw.iterdir()) / "manifest.json").exists()
    assert not (paths.data_dir() / "processed" / "t").exists()
