"""The information model: schemas, the data dictionary rendered from them, readable validation errors."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.errors import DataError
from helpers.schemas import (
    CUSTOMER_FIELDS, TRANSACTION_FIELDS, collected_schema, customer_schema, data_dictionary,
    transaction_schema, validate,
)
from tests_support import clean_frame


def test_dictionary_is_rendered_from_the_schema_and_covers_every_column() -> None:
    for schema, fields in ((transaction_schema, TRANSACTION_FIELDS), (customer_schema, CUSTOMER_FIELDS)):
        d = data_dictionary(schema)
        assert d["column"].tolist() == [f.name for f in fields]
        assert (d["description"].str.len() > 10).all()
        assert set(d["group"]) <= {"identity", "behaviour", "value", "lineage"}


def test_customer_model_has_the_three_crm_layers() -> None:
    groups = data_dictionary(customer_schema).groupby("group")["column"].apply(set)
    assert {"customer_id", "first_purchase"} <= groups["identity"]
    assert {"recency_days", "frequency", "monetary_total"} <= groups["behaviour"]
    assert {"clv", "p_alive", "value_tier", "abc_class", "lifecycle_stage"} <= groups["value"]


def test_clean_schema_accepts_clean_rows() -> None:
    validate(clean_frame(), transaction_schema, "fixture")


@pytest.mark.parametrize(("column", "value", "message"), [
    ("customer_id", "12417.0", "not an Excel float"),
    ("customer_id", " 7", "no surrounding spaces"),
    ("amount", -1.0, "greater_than_or_equal_to"),
])
def test_clean_schema_errors_name_the_column_and_row(column: str, value: object, message: str) -> None:
    frame = clean_frame()
    frame.loc[1, column] = value
    with pytest.raises(DataError, match=rf"(?s)fixture .*column '{column}'.*{message}.*source rows 3"):
        validate(frame, transaction_schema, "fixture")  # the line of the source file, not the index label
    with pytest.raises(DataError, match=rf"(?s)fixture .*column '{column}'.*{message}.*; rows 1"):
        validate(frame.drop(columns="source_row"), transaction_schema, "fixture")


@pytest.mark.parametrize("rows", [40, 12_000])  # below and above the size where text columns are checked in C
def test_a_text_column_with_a_number_in_it_fails_naming_the_rows(rows: int) -> None:
    frame = pd.concat([clean_frame()] * (rows // len(clean_frame()) + 1), ignore_index=True).head(rows)
    frame["source_row"], frame["country"] = [str(i) for i in range(2, rows + 2)], "France"
    validate(frame, transaction_schema, "fixture")  # every text column holds text: it passes
    frame.loc[[7, rows - 1], "country"] = 33
    with pytest.raises(DataError, match=rf"(?s)column 'country' fails \"dtype\('str'\)\"; source rows 9, {rows + 1}"):
        validate(frame, transaction_schema, "fixture")
    frame.loc[[7, rows - 1], "country"] = None  # missing is allowed where the column is nullable
    validate(frame, transaction_schema, "fixture")


def test_collected_schema_allows_missing_customers_and_returns() -> None:
    frame = clean_frame()
    frame.loc[0, "customer_id"] = None
    frame.loc[1, "amount"] = -5.0
    validate(frame, collected_schema, "fixture")
    with pytest.raises(DataError):
        validate(frame, transaction_schema, "fixture")


def test_missing_required_column_is_named() -> None:
    with pytest.raises(DataError, match="order_ts"):
        validate(clean_frame().drop(columns="order_ts"), transaction_schema, "fixture")


def test_customer_schema_rejects_duplicate_keys_and_bad_scores() -> None:
    customers = pd.DataFrame({
        "customer_id": ["1", "1"], "first_purchase": pd.to_datetime(["2020-01-01"] * 2),
        "last_purchase": pd.to_datetime(["2020-01-02"] * 2), "recency_days": [3, 3], "frequency": [2, 2],
        "monetary_total": [10.0, 10.0], "monetary_avg": [5.0, 5.0], "tenure_days": [4, 4], "r_score": [6, 1],
    })
    with pytest.raises(DataError, match=r"customer_id.*unique|r_score"):
        validate(customers, customer_schema, "customers")


@pytest.mark.parametrize(("column", "value", "message"), [
    ("customer_id", "12417.0", "not an Excel float"),
    ("customer_id", " 7", "no surrounding spaces"),
    ("customer_id", None, "not_nullable"),
    ("amount", -1.0, "greater_than_or_equal_to"),
])
def test_the_sql_checks_refuse_what_the_pandera_schema_refuses(column: str, value: object, message: str) -> None:
    import duckdb

    from helpers.schemas import validate_sql

    con = duckdb.connect()
    con.register("good", clean_frame())
    validate_sql(con, "good", transaction_schema, "fixture")
    frame = clean_frame()
    frame.loc[1, column] = value
    con.register("bad", frame)
    with pytest.raises(DataError):
        validate(frame, transaction_schema, "fixture")
    with pytest.raises(DataError, match=rf"(?s)fixture .*column '{column}'.*{message}.*source rows 3"):
        validate_sql(con, "bad", transaction_schema, "fixture")
    con.register("short", clean_frame().drop(columns="order_ts"))
    with pytest.raises(DataError, match="'order_ts' is missing"):
        validate_sql(con, "short", transaction_schema, "fixture")


def test_validation_checks_the_frame_in_place_and_changes_nothing() -> None:
    from helpers.schemas import collected_schema as collected  # noqa: F401 - every schema checks without coercing
    from helpers.schemas import customer_schema as customers

    for schema in (transaction_schema, collected, customers):
        assert not schema.coerce and not any(c.coerce for c in schema.columns.values()), schema.name
    frame = pd.concat([clean_frame()] * 5000, ignore_index=True)  # above the size checked as text in C
    frame["source_row"] = [str(i) for i in range(len(frame))]
    before = frame.copy()
    assert validate(frame, transaction_schema, "fixture") is frame
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize("where", ["sorted", "shuffled"])
def test_a_duplicate_key_fails_in_a_large_table_sorted_or_not(where: str) -> None:
    """Above the fast-path size a strictly increasing key skips pandera's hash of every key; a repeated key,
    sorted next to its twin or anywhere, still fails and is named."""
    n = 12_000
    ids = [f"{i:06d}" for i in range(n)]
    customers = pd.DataFrame({
        "customer_id": ids, "first_purchase": pd.Timestamp("2020-01-01"), "last_purchase": pd.Timestamp("2020-01-02"),
        "recency_days": 3, "frequency": 2, "monetary_total": 10.0, "monetary_avg": 5.0, "tenure_days": 4})
    validate(customers, customer_schema, "customers")  # unique keys pass
    customers.loc[n - 1, "customer_id"] = ids[n - 2]  # the last key repeats the one before it
    if where == "shuffled":
        customers = customers.sample(frac=1.0, random_state=3).reset_index(drop=True)
    with pytest.raises(DataError, match=r"column 'customer_id' fails .*unique"):
        validate(customers, customer_schema, "customers")


_ID_TEXT = st.text(alphabet=st.sampled_from(list("0123456789.0 a\t\n\r\f\v\u00a0é")), max_size=8)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(_ID_TEXT, min_size=1, max_size=40))
def test_the_sql_checks_quick_suspects_change_no_verdict(values: list[str]) -> None:
    """A string check's cheap condition (SUSPECTS) only skips the regular expression where it would pass:
    the failing rows are the same with and without it (spaces, control characters, dots, zeros, newlines)."""
    import duckdb

    from helpers.schemas import SUSPECTS, sql_checks

    checks = [(label, cond) for name, label, cond in sql_checks(transaction_schema, ["customer_id"])
              if name == "customer_id" and "regexp" in cond]
    assert len(checks) == 2 and all(cond.count(" AND ") >= 2 for _, cond in checks)
    con = duckdb.connect()
    con.register("v", pd.DataFrame({"customer_id": values, "i": range(len(values))}))
    for label, cond in checks:
        plain = cond
        for suspect in SUSPECTS.values():
            plain = plain.replace(suspect.replace("{c}", '"customer_id"') + " AND ", "")
        assert plain != cond
        fast = con.execute(f"SELECT list(i ORDER BY i) FILTER ({cond}) FROM v").fetchone()[0] or []
        slow = con.execute(f"SELECT list(i ORDER BY i) FILTER ({plain}) FROM v").fetchone()[0] or []
        assert fast == slow, label
