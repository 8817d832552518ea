"""The customer information model, as pandera schemas.

CRM courses describe the information a firm keeps about a customer in three
layers:

- **identity** - who the customer is (a pseudonymous key, country, when and
  through which channel they were acquired);
- **behaviour** - what they did (purchases: when, how often, how much);
- **value** - what we derive (RFM scores and segments, ABC class, value tier,
  lifetime value, probability of being alive, lifecycle stage, cluster).

The transaction schema is the contract every source is mapped onto; the
customer schema is the table that stages 04-07 fill in. The data dictionary
shown in notebook 01 is rendered from these schemas (:func:`data_dictionary`),
so there is no second copy to drift.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

# With pyspark installed (engine: spark), pandera imports pyspark.pandas to support its frames: 0.3 s in every
# process, and pyspark.pandas patches pandas as it is imported. Only pandas frames are validated here (the Spark
# engine checks its lines in SQL), so pandera is imported without it; pyspark.pandas stays importable afterwards.
_HIDDEN = "pyspark.pandas" not in sys.modules
if _HIDDEN:
    sys.modules["pyspark.pandas"] = None  # type: ignore[assignment]
try:
    import pandera.pandas as pa
    from pandera import extensions
    from pandera.errors import SchemaErrors
finally:
    if _HIDDEN:
        del sys.modules["pyspark.pandas"]

from helpers import names
from helpers.errors import DataError, show_rows

IDENTITY, BEHAVIOUR, VALUE, LINEAGE = "identity", "behaviour", "value", "lineage"

#: The most RFM score levels ``rfm.bins`` may ask for; the customer schema allows scores 1..this.
MAX_SCORE_BINS = 10
SCORE_COLUMNS = ("r_score", "f_score", "m_score")


@dataclass(frozen=True)
class Field:
    """One column of the information model."""

    name: str
    dtype: Any
    group: str
    description: str
    required: bool = True
    nullable: bool = False
    checks: list[pa.Check] = field(default_factory=list)


@extensions.register_check_method(statistics=["pattern"])
def str_not_matches(values: pd.Series, *, pattern: str) -> pd.Series:
    """A pandera check: no value matches ``pattern`` in full (:data:`SQL_CHECKS` has its SQL)."""
    return ~values.str.fullmatch(pattern)


# A customer key after normalisation: no surrounding spaces, no Excel '.0'.
_CLEAN_ID = pa.Check.str_matches(r"^\S(.*\S)?$", error="no surrounding spaces")
_NO_FLOAT_ID = pa.Check.str_not_matches(pattern=r"\d+\.0+", error="not an Excel float such as 12417.0")

TRANSACTION_FIELDS: list[Field] = [
    Field("customer_id", str, IDENTITY, "Customer key, as a string (Excel's 12417.0 becomes 12417 in cleaning)."),
    Field("order_id", str, BEHAVIOUR, "Order (invoice) number; where the source has none, customer and day (one order per customer per day)."),
    Field("order_ts", "datetime64[ns]", BEHAVIOUR, "When the order was placed."),
    Field("amount", float, BEHAVIOUR, "Money of the line: signed before cleaning (returns are negative), never negative after."),
    Field("quantity", float, BEHAVIOUR, "Units on the line (negative for returns before cleaning).", required=False, nullable=True),
    Field("unit_price", float, BEHAVIOUR, "Price per unit, where the source has it.", required=False, nullable=True),
    Field("product_code", str, BEHAVIOUR, "Product (stock) code; also marks non-product lines such as postage.", required=False, nullable=True),
    Field("description", str, BEHAVIOUR, "Product description.", required=False, nullable=True),
    Field("country", str, IDENTITY, "Customer's country.", required=False, nullable=True),
    Field("channel", str, IDENTITY, "Sales channel.", required=False, nullable=True),
    Field("source_row", str, LINEAGE, "Where the line came from in the raw snapshot (line number, or sheet!row)."),
]

CUSTOMER_FIELDS: list[Field] = [
    Field("customer_id", str, IDENTITY, "Customer key (pseudonymous in reports and exports)."),
    Field("country", str, IDENTITY, "Country of the customer's first order.", required=False, nullable=True),
    Field("first_purchase", "datetime64[ns]", IDENTITY, "Date of the first purchase (acquisition)."),
    Field("last_purchase", "datetime64[ns]", BEHAVIOUR, "Date of the latest purchase up to as_of."),
    Field("recency_days", int, BEHAVIOUR, "RFM recency: days from the last purchase to as_of (0 = bought on as_of).",
          checks=[pa.Check.ge(0)]),
    Field("frequency", int, BEHAVIOUR, "Number of purchases (distinct purchase days) up to as_of.", checks=[pa.Check.ge(1)]),
    Field("monetary_total", float, BEHAVIOUR, "Total spend up to as_of (current value).", checks=[pa.Check.ge(0)]),
    Field("monetary_avg", float, BEHAVIOUR, "Average spend per purchase.", checks=[pa.Check.ge(0)]),
    Field("tenure_days", int, BEHAVIOUR, "Days from the first purchase to as_of (customer age).", checks=[pa.Check.ge(0)]),
    Field("r_score", int, VALUE, "Recency score 1..rfm.bins (quintiles by default; highest = most recent).", required=False,
          checks=[pa.Check.in_range(1, MAX_SCORE_BINS)]),
    Field("f_score", int, VALUE, "Frequency score 1..rfm.bins (highest = most purchase days).", required=False,
          checks=[pa.Check.in_range(1, MAX_SCORE_BINS)]),
    Field("m_score", int, VALUE, "Monetary score 1..rfm.bins (highest = highest spend).", required=False,
          checks=[pa.Check.in_range(1, MAX_SCORE_BINS)]),
    Field("rfm_segment", str, VALUE, "Named segment from the recency x frequency map (champions, at risk, ...).", required=False),
    Field("abc_class", str, VALUE, "ABC (80/20) class by revenue share: A top 5%, B next 15%, C the rest.", required=False,
          checks=[pa.Check.isin(["A", "B", "C"])]),
    Field("p_alive", float, VALUE, "Probability the customer is still active (BTYD model); missing when there is no forecast.", required=False, nullable=True,
          checks=[pa.Check.in_range(0, 1)]),
    Field("expected_purchases", float, VALUE, "Expected purchases over the CLV horizon; missing when there is no forecast.", required=False, nullable=True, checks=[pa.Check.ge(0)]),
    Field("clv", float, VALUE, "Predicted lifetime value over the horizon (discounted, after margin): growth potential; missing when there is no forecast.",
          required=False, nullable=True, checks=[pa.Check.ge(0)]),
    Field("value_tier", str, VALUE, "Value pyramid: platinum, gold, iron or lead (current value x potential); missing when there is no forecast.", required=False, nullable=True,
          checks=[pa.Check.isin(list(names.TIERS))]),
    Field("lifecycle_stage", str, VALUE, "Acquisition, growth, maturity, decline or termination.", required=False,
          checks=[pa.Check.isin(list(names.LIFECYCLE))]),
    Field("cluster", str, VALUE, "Discovered segment (clustering), named from its profile.", required=False),
]


def _column(f: Field) -> pa.Column:
    return pa.Column(f.dtype, checks=list(f.checks), nullable=f.nullable, required=f.required,
                     description=f.description, metadata={"group": f.group})


def _transaction_schema(name: str, *, clean: bool) -> pa.DataFrameSchema:
    fields = {f.name: f for f in TRANSACTION_FIELDS}
    if clean:
        fields["customer_id"] = replace(fields["customer_id"], checks=[_CLEAN_ID, _NO_FLOAT_ID])
        fields["amount"] = replace(fields["amount"], checks=[pa.Check.ge(0)])
        fields["quantity"] = replace(fields["quantity"], checks=[pa.Check.ge(0)])
    else:
        # Before cleaning a customer may be missing; removing those is a cleaning rule's job.
        fields["customer_id"] = replace(fields["customer_id"], nullable=True)
    return pa.DataFrameSchema({n: _column(f) for n, f in fields.items()}, name=name, strict=False)


#: Transactions as collected (mapped onto the contract, not yet cleaned).
collected_schema = _transaction_schema("collected transactions", clean=False)
#: Transactions after cleaning: what stages 04+ may rely on.
transaction_schema = _transaction_schema("clean transactions", clean=True)
def customer_schema_for(bins: int = MAX_SCORE_BINS) -> pa.DataFrameSchema:
    """The customer schema with RFM scores restricted to 1..``bins`` (the run's ``rfm.bins``)."""
    if not 2 <= bins <= MAX_SCORE_BINS:
        raise ValueError(f"bins must be 2..{MAX_SCORE_BINS}, got {bins}")
    fields = [replace(f, checks=[pa.Check.in_range(1, bins)]) if f.name in SCORE_COLUMNS else f for f in CUSTOMER_FIELDS]
    return pa.DataFrameSchema({f.name: _column(f) for f in fields}, name="customers", unique=["customer_id"], strict=False)


#: One row per customer, filled in by stages 04-07 (scores 1..MAX_SCORE_BINS; stage 04 checks 1..rfm.bins).
customer_schema = customer_schema_for(MAX_SCORE_BINS)


def describe_check(check: pa.Check) -> str:
    """A check in words, for the data dictionary and error messages.

    >>> describe_check(pa.Check.ge(0)), describe_check(pa.Check.in_range(0, 1))
    ('>= 0', 'between 0 and 1')
    >>> describe_check(pa.Check.isin(["A", "B"]))
    "one of ['A', 'B']"
    """
    stats = check.statistics or {}
    words = {
        "greater_than_or_equal_to": lambda: f">= {stats.get('min_value')}",
        "greater_than": lambda: f"> {stats.get('min_value')}",
        "in_range": lambda: f"between {stats.get('min_value')} and {stats.get('max_value')}",
        "isin": lambda: f"one of {sorted(stats.get('allowed_values', []))}",
    }
    if check.name in words:
        return words[check.name]()
    return str(check.error or check.name)


def data_dictionary(schema: pa.DataFrameSchema) -> pd.DataFrame:
    """The data dictionary of a schema: one row per column, from the schema itself.

    >>> d = data_dictionary(transaction_schema)
    >>> list(d.columns)
    ['group', 'column', 'type', 'required', 'nullable', 'rules', 'description']
    >>> d.loc[d.column == "amount", "rules"].item()
    '>= 0'
    """
    rows = []
    unique = set(schema.unique or [])
    for name, col in schema.columns.items():
        rows.append({
            "group": (col.metadata or {}).get("group", ""),
            "column": name,
            "type": str(col.dtype),
            "required": col.required,
            "nullable": col.nullable,
            "rules": "; ".join((["unique key"] if name in unique else []) + [describe_check(c) for c in col.checks]),
            "description": col.description or "",
        })
    return pd.DataFrame(rows)


#: From this many rows :func:`validate` checks text columns itself (:func:`_without_str_checks`).
_FAST_STR_ROWS = 10_000


def _without_str_checks(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pa.DataFrameSchema:
    """``schema`` without the type check of its text columns that ``frame`` holds as Python strings (or missing).

    Pandera checks a ``str`` column of objects value by value in Python (a million customers' four text columns:
    2.3 s); pandas' ``infer_dtype`` tells the same in C. A column it finds anything else in keeps pandera's check,
    which names the rows at fault.
    """
    from pandera.engines import pandas_engine

    text = [name for name, col in schema.columns.items()
            if isinstance(col.dtype, pandas_engine.NpString) and name in frame.columns
            and frame[name].dtype == object and pd.api.types.infer_dtype(frame[name], skipna=True) in ("string", "empty")]
    return schema.update_columns({name: {"dtype": None} for name in text}) if text else schema


def _without_sorted_unique(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pa.DataFrameSchema:
    """``schema`` without its unique-key check when ``frame``'s key (one column) is strictly increasing.

    Every value larger than the one before is a unique key; pandera hashes every key to find duplicates
    (7.6 s for ten million customers' ids, which stage 04's SQL sorts). A key that is not sorted, or has
    a missing value, keeps pandera's check, which names the rows at fault.

    >>> s = pa.DataFrameSchema({"k": pa.Column(str)}, unique=["k"])
    >>> _without_sorted_unique(s, pd.DataFrame({"k": ["a", "b", "c"]})).unique is None
    True
    >>> _without_sorted_unique(s, pd.DataFrame({"k": ["a", "b", "b"]})).unique
    ['k']
    """
    key = list(schema.unique or [])
    if len(key) != 1 or key[0] not in frame.columns or len(frame) < 2:
        return schema
    values = frame[key[0]]
    if values.isna().any():
        return schema
    array = values.to_numpy()
    try:
        increasing = bool((array[1:] > array[:-1]).all())
    except TypeError:  # values that do not compare (mixed types): pandera's check
        return schema
    if not increasing:
        return schema
    out = copy.copy(schema)
    out.unique = None
    return out


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, where: str) -> pd.DataFrame:
    """Validate ``frame`` and turn pandera's report into a :class:`DataError`.

    The message names the table (``where``), each failing column and check,
    and the first failing rows.
    """
    try:
        # in place: no schema coerces, so pandera changes nothing, and its copy of the frame is saved (0.9 s for
        # a million customers' table); the frame returned is ``frame``
        checked = schema if len(frame) < _FAST_STR_ROWS else _without_sorted_unique(_without_str_checks(schema, frame),
                                                                                    frame)
        return checked.validate(frame, lazy=True, inplace=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        lines = []
        for (column, check), grp in cases.groupby(["column", "check"], dropna=False, sort=True):
            idx = grp["index"].dropna().tolist()
            rows = f"; rows {show_rows(idx)}" if idx else ""
            if idx and "source_row" in frame.columns and frame.index.is_unique:
                rows = f"; source rows {show_rows(frame['source_row'].reindex(idx).tolist())}"
            values = f"; values {show_rows(grp['failure_case'].astype(str).unique())}"
            lines.append(f"  - column {column!r} fails {check!r}{rows}{values}")
        raise DataError(f"{where} does not match the {schema.name} schema:\n" + "\n".join(lines)) from None


def save_data_dictionary(catalog) -> Path:  # noqa: ANN001 - helpers.catalog.Catalog
    """Write stage 01's artifact: the data dictionary of both schemas as one CSV."""
    frames = [data_dictionary(s).assign(table=t) for t, s in (("transactions", transaction_schema),
                                                                ("customers", customer_schema))]
    table = pd.concat(frames, ignore_index=True)
    return catalog.write_text("data_dictionary", table.to_csv(index=False))


# ---------------------------------------------------------------------------
# the same checks in SQL, for tables too large for pandas


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


#: Each kind of pandera check the schemas use, as the SQL condition a valid value ``{c}`` meets.
SQL_CHECKS: dict[str, Any] = {
    "greater_than_or_equal_to": lambda s: f"{{c}} >= {s['min_value']!r}",
    "greater_than": lambda s: f"{{c}} > {s['min_value']!r}",
    "in_range": lambda s: f"{{c}} BETWEEN {s['min_value']!r} AND {s['max_value']!r}",
    "isin": lambda s: "{c} IN (" + ", ".join(_sql_text(str(v)) for v in sorted(s["allowed_values"])) + ")",
    "str_matches": lambda s: f"regexp_matches({{c}}, {_sql_text('^(?:' + s['pattern'] + ')')})",
    "str_not_matches": lambda s: f"NOT regexp_full_match({{c}}, {_sql_text(s['pattern'])})",
}
#: For a pattern of the schemas' string checks, SQL true for every value ``{c}`` that can fail it, tested
#: before the regular expression (at 110 million lines the two patterns' expressions took 40 s): a value
#: not matching ``^\S(.*\S)?$`` is empty, starts or ends with a space or control character, or holds a
#: newline (which ``.`` does not match); one matching ``\d+\.0+`` in full ends in 0 and has a dot.
SUSPECTS: dict[str, str] = {
    r"^\S(.*\S)?$": "({c} = '' OR {c}[1] <= ' ' OR {c}[-1] <= ' ' OR contains({c}, chr(10)))",
    r"\d+\.0+": "(suffix({c}, '0') AND contains({c}, '.'))",
}
#: The DuckDB types that hold each schema dtype.
SQL_TYPES = {"str": ("VARCHAR",), "float64": ("DOUBLE", "FLOAT"), "int64": ("BIGINT", "INTEGER", "HUGEINT"),
             "datetime64[ns]": ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_US", "TIMESTAMP_MS", "TIMESTAMP_S")}


def sql_checks(schema: pa.DataFrameSchema, columns: list[str]) -> list[tuple[str, str, str]]:
    """The schema's checks on the ``columns`` a table has, as ``(column, check, SQL true on a failing row)``.

    Generated from the pandera schema itself (nullability and each check), so
    the SQL path checks exactly what :func:`validate` checks.

    >>> [c[1:] for c in sql_checks(transaction_schema, ["amount"])]
    [('not_nullable', '"amount" IS NULL'), ('greater_than_or_equal_to(0)', '"amount" IS NOT NULL AND NOT ("amount" >= 0)')]
    """
    found = []
    for name, col in schema.columns.items():
        if name not in columns:
            continue
        c = '"' + name.replace('"', '""') + '"'
        if not col.nullable:
            found.append((name, "not_nullable", f"{c} IS NULL"))
        for check in col.checks:
            label = str(check.error or f"{check.name}({', '.join(map(str, (check.statistics or {}).values()))})")
            condition = SQL_CHECKS[check.name](check.statistics).replace("{c}", c)
            suspect = SUSPECTS.get((check.statistics or {}).get("pattern", ""), "").replace("{c}", c)
            found.append((name, label, f"{c} IS NOT NULL AND {suspect + ' AND ' if suspect else ''}NOT ({condition})"))
    return found


def validate_sql(con: Any, table: str, schema: pa.DataFrameSchema, where: str) -> None:
    """:func:`validate` for a DuckDB table: the same schema checks in SQL, the same kind of message.

    The table never enters pandas; a failing check names the column, the check,
    the first failing source rows and values.
    """
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    lines = [f"  - column {name!r} is missing" for name, col in schema.columns.items()
             if col.required and name not in types]
    for name, col in schema.columns.items():
        wanted = SQL_TYPES.get(str(col.dtype))
        if name in types and wanted and not types[name].startswith(wanted):
            lines.append(f"  - column {name!r} fails dtype('{col.dtype}'): found {types[name]}")
    checks = sql_checks(schema, list(types))
    counts = con.execute("SELECT " + ", ".join(f"count(*) FILTER ({cond})" for _, _, cond in checks)
                         + f" FROM {table}").fetchall()[0] if checks else []
    for (name, label, cond), n in zip(checks, counts, strict=True):
        if n:
            rows = con.execute(f'SELECT {"source_row" if "source_row" in types else "NULL"}, "{name}" '
                               f"FROM {table} WHERE {cond} LIMIT 5").fetchall()
            lines.append(f"  - column {name!r} fails {label!r} ({n} rows); source rows "
                         f"{show_rows([r[0] for r in rows])}; values {show_rows(sorted({str(r[1]) for r in rows}))}")
    if lines:
        raise DataError(f"{where} does not match the {schema.name} schema:\n" + "\n".join(lines))
