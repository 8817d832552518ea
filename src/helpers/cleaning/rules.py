"""The cleaning rules, each defined once, as SQL over the lines of a DuckDB table.

A rule is a :class:`Rule`: its name (as in ``cleaning:`` of the parameter
file), its kind and the SQL it contributes, given the configuration and the
columns the table has:

- ``rewrite``: an expression replacing one column (``normalise_ids``);
- ``filter``: a condition on a line that removes it (most rules);
- ``dedup``: lines identical in every column but ``source_row`` (``exact_duplicates``);
- ``net``: cancellations netted against the purchases they cancel (:mod:`helpers.cleaning.netting`).

:mod:`helpers.cleaning.engine` runs them in order, one DuckDB statement per
rule, over the collected Parquet file or over a frame pandas parsed, and
writes the quality log; the notes are the rules' own (``Rule.note``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from helpers.config import CleaningParams

#: What Python's ``str.strip()`` strips: DuckDB's ``trim(x, chars)`` with these strips the same. Written out (finding
#: them among the 1.1 million code points took 0.2 s of every import; ``test_cleaning`` checks the list).
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
              "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def quote(name: str) -> str:
    """A SQL identifier.

    >>> print(quote('a"b'))
    "a""b"
    """
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A SQL string literal.

    >>> literal("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def select_list(columns: list[str], replace: dict[str, str] | None = None, row: bool = True) -> str:
    """``columns`` (and ``_row``) as a select list, ``replace`` giving some of them an expression.

    Portable SQL for DuckDB's ``* REPLACE``/``* EXCLUDE``, which Spark has not (:mod:`helpers.sparkengine`).

    >>> select_list(["customer_id", "amount"], {"amount": "abs(amount)"})
    '"customer_id", abs(amount) AS "amount", _row'
    """
    replace = replace or {}
    names = [f"{replace[c]} AS {quote(c)}" if c in replace else quote(c) for c in columns]
    return ", ".join(names + (["_row"] if row else []))


def stripped(column: str) -> str:
    """SQL for ``column`` with surrounding whitespace removed, as Python's ``str.strip()`` removes it.

    The full trim runs only on values that start or end with whitespace (most do not: it is slow).
    """
    ws = literal(WHITESPACE)
    return (f"CASE WHEN contains({ws}, {column}[1]) OR contains({ws}, {column}[-1]) "
            f"THEN trim({column}, {ws}) ELSE {column} END")


def end_of_day(as_of: dt.date) -> str:
    """The first instant after the ``as_of`` day, as a SQL timestamp.

    >>> end_of_day(dt.date(2011, 12, 9))
    "TIMESTAMP '2011-12-10'"
    """
    return f"TIMESTAMP {literal((as_of + dt.timedelta(days=1)).isoformat())}"


def normalised_id(column: str = "customer_id") -> str:
    """A customer key trimmed, with Excel's float suffix removed (``12417.0`` -> ``12417``); blank -> NULL."""
    text = stripped(column)
    return (f"nullif(CASE WHEN suffix({text}, '0') AND contains({text}, '.') "
            f"THEN regexp_replace({text}, '^([0-9]+)\\.0+$', '\\1') ELSE {text} END, '')")


def cancellation(cfg: CleaningParams, columns: list[str]) -> str:
    """Cancellation or return lines: order id starting with the prefix, or a negative quantity or amount."""
    terms = ["amount < 0"]
    if "quantity" in columns:
        terms.append("coalesce(quantity, 0) < 0")
    if cfg.cancellation_prefix:
        terms.append(f"coalesce(starts_with(order_id, {literal(cfg.cancellation_prefix)}), false)")
    return "(" + " OR ".join(terms) + ")"


def non_product_code(cfg: CleaningParams) -> str:
    """A line's product code as the non-product codes are compared with it: trimmed, upper case."""
    return f"upper({stripped('product_code')})"


def non_product(cfg: CleaningParams) -> str:
    """Lines whose product code is a non-product code (postage, fees, adjustments, ...)."""
    codes = ", ".join(literal(c.strip().upper()) for c in cfg.non_product_codes) or "NULL"
    return f"coalesce({non_product_code(cfg)} IN ({codes}), false)"


def non_positive_price(cfg: CleaningParams, columns: list[str]) -> str:
    """Lines with a zero or negative unit price (or amount, without a price column, or where the price is missing)."""
    if "unit_price" in columns:
        return "(coalesce(unit_price <= 0, false) OR (unit_price IS NULL AND coalesce(amount <= 0, false)))"
    return "coalesce(amount <= 0, false)"


#: A note's inputs: the DuckDB connection, the table before the rule, the table after it, the configuration,
#: the columns and ``as_of``.
Note = Callable[[duckdb.DuckDBPyConnection, str, str, CleaningParams, list[str], dt.date], str]


def _fixed(text: str | Callable[[CleaningParams, list[str]], str]) -> Note:
    return lambda con, before, after, cfg, cols, as_of: text if isinstance(text, str) else text(cfg, cols)


def _future_note(con: duckdb.DuckDBPyConnection, before: str, after: str, cfg: CleaningParams, cols: list[str],
                 as_of: dt.date) -> str:
    """``after <as_of>``, and how far before ``as_of`` the last line kept is."""
    note = f"after {as_of.isoformat()}"
    last = con.execute(f"SELECT max(order_ts) FROM {after}").fetchall()[0][0]
    if last is not None and (gap := (as_of - last.date()).days) > 0:
        note += f"; the last line kept is {gap} days before as_of"
    return note


def _codes_note(con: duckdb.DuckDBPyConnection, before: str, after: str, cfg: CleaningParams, cols: list[str],
                as_of: dt.date) -> str:
    """The non-product codes found, with their lines (``POST 976, M 48``), sorted by code."""
    found = con.execute(f"SELECT {non_product_code(cfg)} AS code, count(*) FROM {before} WHERE {non_product(cfg)} "
                        "GROUP BY code").fetchall()
    return ", ".join(f"{code} {n}" for code, n in sorted(found)) or "none found"


@dataclass(frozen=True)
class Rule:
    """One cleaning rule: what it does, in SQL, and what the quality log says of it (its ``note``)."""

    name: str
    kind: str  # rewrite, filter, dedup or net (chosen by the configuration: see kind_for)
    condition: Callable[[CleaningParams, list[str], dt.date], str] | None
    note: Note
    needs: str | None = None  # a column the rule needs; without it the rule is skipped (and says so)

    def enabled(self, cfg: CleaningParams) -> bool:
        """Whether ``cleaning.<name>`` switches the rule on (``cancellations: keep`` is off)."""
        value = getattr(cfg, self.name)
        return value != "keep" if self.name == "cancellations" else bool(value)

    def kind_for(self, cfg: CleaningParams) -> str:
        """The rule's kind under ``cfg``: ``cancellations: net`` nets, ``drop`` filters."""
        return "net" if self.name == "cancellations" and cfg.cancellations == "net" else self.kind


#: The rules, in the order they run (what each does: the table in :mod:`helpers.cleaning`). Each can be
#: switched off in ``cleaning:``.
RULES_IN_ORDER: list[Rule] = [
    Rule("normalise_ids", "rewrite", lambda cfg, cols, as_of: normalised_id(),
         _fixed("trimmed spaces, removed Excel '.0' suffixes")),
    Rule("missing_customer_id", "filter", lambda cfg, cols, as_of: "customer_id IS NULL", _fixed("no customer key")),
    Rule("future_timestamps", "filter", lambda cfg, cols, as_of: f"NOT coalesce(order_ts < {end_of_day(as_of)}, false)",
         _future_note),
    Rule("exact_duplicates", "dedup", None, _fixed("identical in every column")),
    Rule("non_product_lines", "filter", lambda cfg, cols, as_of: non_product(cfg), _codes_note, needs="product_code"),
    Rule("cancellations", "filter", lambda cfg, cols, as_of: cancellation(cfg, cols),
         _fixed(lambda cfg, cols: "netted against the purchases they cancel" if cfg.cancellations == "net"
                else "cancellation lines dropped; purchases kept")),
    Rule("non_positive_price", "filter", lambda cfg, cols, as_of: non_positive_price(cfg, cols),
         _fixed(lambda cfg, cols: "unit_price <= 0 (amount <= 0 where no price)" if "unit_price" in cols
                else "amount <= 0 (no unit_price column)")),
]
