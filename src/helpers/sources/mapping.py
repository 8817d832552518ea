"""Mapping a source's columns onto the transaction contract, parsing dates and numbers with row-level errors."""

from __future__ import annotations

import difflib
import functools

import pandas as pd

from helpers.config import ColumnMap
from helpers.errors import DataError, show_rows
from helpers.schemas import collected_schema, validate


CANONICAL_ORDER = ["customer_id", "order_id", "order_ts", "amount", "quantity", "unit_price",
                   "product_code", "description", "country", "channel", "source_row"]




def _missing_column_error(where: str, column: str, role: str, found: list[str]) -> DataError:
    close = difflib.get_close_matches(column, found, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return DataError(
        f"{where}: column {column!r} (mapped to {role}) not found{hint} Columns found: {found}. "
        "Fix 'columns' in the parameter file."
    )


def _examples(raw: pd.Series, bad: pd.Series, frame: pd.DataFrame) -> str:
    rows = frame.loc[bad, "source_row"].tolist()
    values = raw[bad].astype(str).tolist()
    pairs = [f"row {r}: {v!r}" for r, v in zip(rows[:5], values[:5], strict=True)]
    more = f" ... ({int(bad.sum())} rows in all)" if bad.sum() > 5 else ""
    return ", ".join(pairs) + more


def parse_timestamps(raw: pd.Series, date_format: str | None, frame: pd.DataFrame, where: str, column: str) -> pd.Series:
    """Parse a timestamp column; unparseable or empty values raise a :class:`DataError` with example rows.

    >>> f = pd.DataFrame({"d": ["12/1/2010 8:26", "1/13/2011 10:00"], "source_row": ["2", "3"]})
    >>> parse_timestamps(f["d"], "%m/%d/%Y %H:%M", f, "x.csv", "d").dt.strftime("%Y-%m-%d").tolist()
    ['2010-12-01', '2011-01-13']
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
    else:
        parsed = pd.to_datetime(raw, format=date_format or "ISO8601", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        how = f"with date_format {date_format!r}" if date_format else "as ISO dates (set date_format in the parameter file)"
        hint = "" if date_format else day_month_hint(raw[bad], frame.loc[bad, "source_row"])
        raise DataError(f"{where}: column {column!r} has {int(bad.sum())} timestamps that cannot be read {how}: "
                        f"{_examples(raw, bad, frame)}{hint}")
    return parsed.astype("datetime64[ns]")


def _first_example(values: pd.Series, rows: pd.Series, mask: pd.Series) -> str:
    """``"row <source row>: <value>"`` of the first of ``values`` where ``mask`` holds (``rows``: their source rows,
    in the same order)."""
    i = mask[mask].index[0]
    return f"row {rows.iloc[values.index.get_loc(i)]}: {values[i]!r}"


_NUMERIC_DATE = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})\b"


def day_month_hint(values: pd.Series, rows: pd.Series) -> str:
    """Say which order (day/month or month/day) non-ISO numeric dates can be read in; never guess.

    A value like ``03/04/2010`` reads both ways; ``13/04/2010`` only day first;
    ``04/13/2010`` only month first. If both unambiguous kinds occur, the
    column mixes formats. Returns a sentence to append to an error message
    ("" when the values are not numeric dates).

    >>> day_month_hint(pd.Series(["03/04/2010", "05/06/2010"]), pd.Series(["2", "3"]))[:62]
    '. Every one of these reads both as day/month and as month/day:'
    >>> "day first" in day_month_hint(pd.Series(["13/04/2010", "03/04/2010"]), pd.Series(["2", "3"]))
    True
    >>> "mixes" in day_month_hint(pd.Series(["13/04/2010", "04/13/2010"]), pd.Series(["2", "3"]))
    True
    """
    parts = values.astype(str).str.extract(_NUMERIC_DATE)
    if parts[0].isna().all():
        return ""
    first, second = pd.to_numeric(parts[0]), pd.to_numeric(parts[1])
    day_first = (first > 12) & (second <= 12)
    month_first = (second > 12) & (first <= 12)
    example = functools.partial(_first_example, values, rows)

    if day_first.any() and month_first.any():
        return (f". The column mixes formats: {example(day_first)} is day/month, {example(month_first)} is "
                "month/day; fix the source so one format is used")
    if day_first.any():
        return f". They read day first ({example(day_first)}): set date_format, e.g. '%d/%m/%Y'"
    if month_first.any():
        return f". They read month first ({example(month_first)}): set date_format, e.g. '%m/%d/%Y'"
    return (". Every one of these reads both as day/month and as month/day: the order cannot be guessed. "
            "Set date_format ('%d/%m/%Y' or '%m/%d/%Y')")


def text_numbers(raw: pd.Series, decimal: str = ".", thousands: str | None = None) -> pd.Series:
    """``raw`` with its text values written as pandas reads numbers: ``thousands`` taken out, the ``decimal`` mark a dot.

    Values that are not text (numbers of a workbook or a typed file, missing values) are left as they are.

    >>> text_numbers(pd.Series(["1.234,50", "2,95", 7.5, None]), ",", ".").tolist()
    ['1234.50', '2.95', 7.5, None]
    """
    if decimal == "." and thousands is None:
        return raw
    is_text = raw.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if not is_text.any():
        return raw
    text = raw[is_text].astype(str)
    if thousands is not None:
        text = text.str.replace(thousands, "", regex=False)
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    values = raw.to_numpy(dtype=object, copy=True)
    values[is_text] = text.to_numpy()
    return pd.Series(values, index=raw.index, name=raw.name)


#: A number written with a decimal comma (``2,95``, ``1.234,50``, ``1 234,5``) and one with thousands commas (``1,234.50``).
_DECIMAL_COMMA = r"^\s*[+-]?\d+(?:[.\u00a0\u202f ']\d{3})*,\d+\s*$"
_THOUSANDS_COMMA = r"^\s*[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?\s*$"


def number_hint(values: pd.Series, rows: pd.Series) -> str:
    """Say which of ``source.decimal`` and ``source.thousands`` reads numbers that failed with the defaults ("" if none).

    >>> number_hint(pd.Series(["2,95"]), pd.Series(["2"]))
    ". They are written with a decimal comma (row 2: '2,95'): set source.decimal: ','"
    >>> number_hint(pd.Series(["1.234,50"]), pd.Series(["7"])).split(" (")[1]
    "row 7: '1.234,50'): set source.decimal: ',' and source.thousands: '.'"
    >>> number_hint(pd.Series(["1,234.50"]), pd.Series(["3"]))
    ". They have thousands separators (row 3: '1,234.50'): set source.thousands: ','"
    >>> "either" in number_hint(pd.Series(["1,234"]), pd.Series(["4"])), number_hint(pd.Series(["n/a"]), pd.Series(["5"]))
    (True, '')
    """
    text = values.astype(str)
    comma, grouped = text.str.match(_DECIMAL_COMMA), text.str.match(_THOUSANDS_COMMA)
    example = functools.partial(_first_example, values, rows)

    decimal_comma, thousands_comma = comma & ~grouped, grouped & ~comma
    if decimal_comma.any():
        dots = decimal_comma & text.str.contains(r"\d\.\d{3}", regex=True)
        also = " and source.thousands: '.'" if dots.any() else ""
        return (f". They are written with a decimal comma ({example(dots if dots.any() else decimal_comma)}): "
                f"set source.decimal: ','{also}")
    if thousands_comma.any():
        return f". They have thousands separators ({example(thousands_comma)}): set source.thousands: ','"
    if comma.any():
        return (f". A comma in them ({example(comma)}) is either a decimal comma or a thousands separator: "
                "set source.decimal: ',' or source.thousands: ','")
    return ""


def parse_numbers(raw: pd.Series, frame: pd.DataFrame, where: str, column: str, *, allow_missing: bool,
                  decimal: str = ".", thousands: str | None = None) -> pd.Series:
    """Parse a numeric column (text with ``decimal`` and ``thousands``, :func:`text_numbers`); text that is not a
    number raises a :class:`DataError` with example rows, and which of the two parameters reads it if one does."""
    parsed = pd.to_numeric(text_numbers(raw, decimal, thousands), errors="coerce").astype(float)
    bad = parsed.isna() & (raw.notna() if allow_missing else True)
    if bad.any():
        what = "values that are not numbers" if raw[bad].notna().any() else "empty values"
        how = (f" with source.decimal {decimal!r}" + (f" and source.thousands {thousands!r}" if thousands else "")
               if decimal != "." or thousands else "")
        hint = number_hint(raw[bad], frame.loc[bad, "source_row"]) if not how else ""
        raise DataError(f"{where}: column {column!r} has {int(bad.sum())} {what}{how}: "
                        f"{_examples(raw, bad, frame)}{hint}")
    return parsed


#: Above this share of negative non-zero amounts the sign of the log looks flipped.
FLIPPED_SHARE = 0.9


def sign_counts(lines: pd.DataFrame, mapping: dict[str, str]) -> dict[str, tuple[str | None, int, int]]:
    """(source column, negative values, non-zero values) of ``amount``, ``quantity`` and ``unit_price``.

    The source column is None for an amount computed as quantity x unit_price.

    >>> f = pd.DataFrame({"amount": [-1.0, -2.0, 0.0]})
    >>> sign_counts(f, {"amount": "usd"})
    {'amount': ('usd', 2, 2)}
    """
    return {role: (mapping.get(role), int((lines[role] < 0).sum()), int((lines[role].fillna(0) != 0).sum()))
            for role in ("amount", "quantity", "unit_price") if role in lines.columns}


def check_signs(counts: dict[str, tuple[str | None, int, int]], where: str) -> None:
    """Refuse a log whose amounts are (nearly) all negative: the sign looks flipped.

    ``counts`` comes from :func:`sign_counts`. Above :data:`FLIPPED_SHARE` of
    the non-zero amounts negative, cleaning would remove every line as a
    return or a non-positive price and leave an empty table; this says why
    first, naming the column(s) that are mostly negative, with the counts.

    >>> check_signs({"amount": ("usd", 95, 100)}, "x.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    helpers.errors.DataError: x.csv: the sign looks flipped: 95 of 100 non-zero amounts are negative (column 'usd' ...
    >>> check_signs({"amount": ("usd", 5, 100)}, "x.csv")  # a few returns are normal
    """
    _, negative, nonzero = counts["amount"]
    if not nonzero or negative / nonzero <= FLIPPED_SHARE:
        return
    flipped = [(role, col, n, m) for role, (col, n, m) in counts.items() if col is not None and m and n / m > 0.5]
    named = "; ".join(f"column {col!r} ({role}): {n:,} of {m:,} negative" for role, col, n, m in flipped) \
        or "amount = quantity x unit_price"
    column = flipped[0][1] if flipped else "<column>"
    raise DataError(
        f"{where}: the sign looks flipped: {negative:,} of {nonzero:,} non-zero amounts are negative ({named}). "
        "Cleaning would drop every negative line as a return and leave nothing. If the source records sales "
        "as negative numbers (a cost or refund export), negate the column, e.g. with a duckdb query source "
        f"(no database file needed): query: SELECT * REPLACE (-\"{column}\" AS \"{column}\") FROM read_csv('<file>')"
    )


def _as_text(raw: pd.Series) -> pd.Series:
    text = raw.astype("string").astype(object)
    return text.where(raw.notna(), None)


def role_columns(columns: ColumnMap) -> dict[str, str]:
    """The roles the parameter file maps, with their source columns (roles mapped to nothing left out).

    >>> role_columns(ColumnMap(customer_id="cust", order_ts="day", amount="usd"))
    {'customer_id': 'cust', 'order_ts': 'day', 'amount': 'usd'}
    """
    return {role: col for role, col in columns.model_dump().items() if col is not None}


def map_columns(raw: pd.DataFrame, columns: ColumnMap, date_format: str | None, where: str,
                decimal: str = ".", thousands: str | None = None) -> pd.DataFrame:
    """Map source columns onto the canonical transaction contract.

    Missing columns are named with the columns found; timestamps and numbers
    are parsed with row-level errors (numbers written as text with the ``decimal``
    mark and the ``thousands`` separator, ``source.decimal`` and ``source.thousands``). Without an order column, an order is a
    customer's purchases on one day. Without an amount column, amount is
    quantity x unit price.

    >>> raw = pd.DataFrame({"cust": ["7", "7"], "day": ["19970101", "19970102"], "usd": ["1.5", "2"],
    ...                     "source_row": ["2", "3"]})
    >>> cm = ColumnMap(customer_id="cust", order_ts="day", amount="usd")
    >>> map_columns(raw, cm, "%Y%m%d", "x.txt")[["customer_id", "order_id", "amount"]].values.tolist()
    [['7', '7@19970101', 1.5], ['7', '7@19970102', 2.0]]
    """
    found = [c for c in raw.columns if c != "source_row"]
    mapping = role_columns(columns)
    for role, col in mapping.items():
        if col not in raw.columns:
            raise _missing_column_error(where, col, role, found)
    if raw.empty:
        raise DataError(f"{where}: the source has a header but no rows")
    out = pd.DataFrame(index=raw.index)
    out["customer_id"] = _as_text(raw[mapping["customer_id"]])
    out["order_ts"] = parse_timestamps(raw[mapping["order_ts"]], date_format, raw, where, mapping["order_ts"])
    for role in ("quantity", "unit_price"):
        if role in mapping:
            out[role] = parse_numbers(raw[mapping[role]], raw, where, mapping[role], allow_missing=columns.amount is not None,
                                      decimal=decimal, thousands=thousands)
    if "amount" in mapping:
        out["amount"] = parse_numbers(raw[mapping["amount"]], raw, where, mapping["amount"], allow_missing=False,
                                      decimal=decimal, thousands=thousands)
    else:
        out["amount"] = out["quantity"] * out["unit_price"]
    check_signs(sign_counts(out, mapping), where)
    if "order_id" in mapping:
        out["order_id"] = _as_text(raw[mapping["order_id"]])
        empty = out["order_id"].isna()
        if empty.any():
            raise DataError(f"{where}: column {mapping['order_id']!r} has {int(empty.sum())} empty order ids: "
                            f"rows {show_rows(raw.loc[empty, 'source_row'])}")
    else:
        out["order_id"] = out["customer_id"].fillna("?") + "@" + out["order_ts"].dt.strftime("%Y%m%d")
    for role in ("product_code", "description", "country", "channel"):
        if role in mapping:
            out[role] = _as_text(raw[mapping[role]])
    out["source_row"] = raw["source_row"].astype(str)
    out = out[[c for c in CANONICAL_ORDER if c in out.columns]].reset_index(drop=True)
    return validate(out, collected_schema, where)
