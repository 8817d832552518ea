"""Stages 02 and 03 out of core, in DuckDB: map a large Parquet source and run the rules over it.

The cleaning rules are :mod:`helpers.cleaning`'s, defined once in SQL and run
by its DuckDB engine (:func:`helpers.cleaning.run_rules`); here they run over
the raw Parquet file mapped onto the contract in SQL (:func:`canonical_select`),
so a log of tens of millions of lines is cleaned without
entering pandas: only the quality log comes back.

- :func:`clean_lines` builds the view ``clean`` in a DuckDB connection and
  returns the quality log (the same log, notes included, as
  :func:`helpers.cleaning.clean_transactions` on the same lines), with the
  clean-transaction schema checked in SQL (:func:`helpers.schemas.validate_sql`);
- the clean lines then go to a Parquet file (:func:`copy_to`), which
  :func:`helpers.summary.write_purchase_days` groups by customer and day in SQL
  (the one summary of stages 04, 05 and 07).

Stage 02 uses it when ``engine`` says so (``auto``: Parquet sources of 64 MB
and more): :func:`collect` checks the raw snapshot's mapping in one pass and
the run's database keeps it as the view ``collected`` (:func:`collected_sql`),
which stage 03 cleans: the lines are not copied before cleaning. Bad values
are reported by DuckDB's message; the pandas engine names the rows at fault.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from helpers.cleaning import run_rules
from helpers.cleaning.rules import literal as _literal
from helpers.cleaning.rules import quote as _quote
from helpers.config import Params
from helpers.errors import ConfigError, DataError
from helpers.schemas import transaction_schema, validate_sql
from helpers.sources import CANONICAL_ORDER, check_signs, role_columns, source_label

#: Above this size a Parquet source goes through DuckDB when ``engine`` is ``auto``.
DUCKDB_MIN_BYTES = 64 * 2**20

def connect(memory_limit: str = "6GB", temp_directory: Path | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that spills to ``temp_directory`` beyond ``memory_limit``.

    It keeps DuckDB's default ``preserve_insertion_order``: the cleaning steps then keep the lines in the
    order they were collected in, and stage 03 writes them without sorting (:func:`helpers.cleaning.engine.keeps_order`).
    """
    con = duckdb.connect()
    con.execute(f"SET memory_limit = {_literal(memory_limit)}")
    if temp_directory is not None:
        con.execute(f"SET temp_directory = {_literal(str(temp_directory))}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


#: From this many collected lines on, stage 03's step tables are kept in a DuckDB file (:func:`scratch_database`).
#: At 11 million lines (1.4 GB in memory) memory is faster: writing the compressed tables costs more than it saves.
SCRATCH_LINES = 30_000_000


@contextmanager
def scratch_database(con: duckdb.DuckDBPyConnection, folder: Path) -> Iterator[None]:
    """Within it, ``con`` makes the cleaning steps' tables in a DuckDB file in ``folder``, removed afterwards.

    DuckDB's own storage is compressed, so a hundred million lines take less than half the memory of a
    temporary table and need no spilling (:func:`helpers.cleaning.engine.step_table`): at 110 million lines
    the rewritten ids' table held 2.5 GB where the temporary one took 5.7 GB and spilled 3.8 GB more, and
    was read back in 30 s rather than 62; stage 03 took 293 s rather than 380, its peak 6.6 GB rather than 7.7.
    """
    from helpers.cleaning.engine import SCRATCH

    fd, name = tempfile.mkstemp(prefix=".steps.", suffix=".duckdb", dir=folder)
    os.close(fd)
    file = Path(name)
    file.unlink()  # DuckDB makes the file itself
    try:
        con.execute(f"ATTACH {_literal(str(file))} AS {SCRATCH}")
        con.execute(f"USE {SCRATCH}")
        yield
    finally:
        try:
            con.execute("USE memory")
            con.execute(f"DETACH {SCRATCH}")
        except duckdb.Error:
            pass  # the connection is gone: the file is closed with it
        for leftover in (file, file.with_name(file.name + ".wal")):
            leftover.unlink(missing_ok=True)


def engine(params: Params, file: Path) -> str:
    """``pandas``, ``duckdb`` or ``spark``: how stage 02 reads ``file`` (the raw snapshot), and so how stage 03 writes.

    The rules run in DuckDB (in Spark with ``spark``); ``pandas`` reads and parses the source
    with row-level errors and gets the clean lines back as a frame, ``duckdb``
    maps a Parquet source in SQL and never loads the lines into pandas; ``spark``
    maps a Parquet source in Spark (other sources are read by pandas) and cleans in Spark.
    """
    if params.engine in ("pandas", "spark"):
        return params.engine
    possible = params.source.kind == "parquet"
    if params.engine == "duckdb":
        if not possible:
            raise ConfigError(f"engine: duckdb needs a Parquet source (source.kind is {params.source.kind!r})")
        return "duckdb"
    return "duckdb" if possible and Path(file).stat().st_size >= DUCKDB_MIN_BYTES else "pandas"


def _text_columns(params: Params, source: Path) -> set[str]:
    """The text columns of the raw Parquet ``source`` when its numbers may be written as text with another decimal
    mark or a thousands separator (``source.decimal``, ``source.thousands``); none otherwise (nothing is read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if params.source.decimal == "." and params.source.thousands is None:
        return set()
    return {f.name for f in pq.read_schema(source) if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_string_view(f.type)}


def _text_number(params: Params, column: str, text_columns: set[str]) -> str:
    """SQL of the source ``column`` ready to cast to a number: a text column (of ``text_columns``) with
    ``source.thousands`` taken out and ``source.decimal`` made a dot (:func:`helpers.sources.mapping.text_numbers`);
    any other column as it is."""
    spec, quoted = params.source, _quote(column)
    if column not in text_columns:
        return quoted
    if spec.thousands is not None:
        quoted = f"replace({quoted}, {_literal(spec.thousands)}, '')"
    return quoted if spec.decimal == "." else f"replace({quoted}, {_literal(spec.decimal)}, '.')"


def canonical_select(params: Params, source: Path) -> str:
    """SQL selecting the canonical columns (as :func:`helpers.sources.map_columns`) from a raw Parquet ``source``.

    ``source_row`` is the line number in the file (text, as collected), ``_row`` its position.
    """
    if params.source.kind != "parquet":
        raise ConfigError(f"the DuckDB path reads Parquet sources, not {params.source.kind!r}")
    cols = role_columns(params.columns)
    text = {role: f"CAST({_quote(col)} AS VARCHAR)" for role, col in cols.items()}
    ts = _quote(cols["order_ts"])
    order_ts = (f"strptime({text['order_ts']}, {_literal(params.date_format)})" if params.date_format
                else f"CAST({ts} AS TIMESTAMP)")
    text_columns = _text_columns(params, source)
    number = {role: f"CAST({_text_number(params, cols[role], text_columns)} AS DOUBLE)"
              for role in ("quantity", "unit_price", "amount") if role in cols}
    select = {
        "customer_id": text["customer_id"],
        "order_id": text.get("order_id", f"coalesce({text['customer_id']}, '?') || '@' || strftime({order_ts}, '%Y%m%d')"),
        "order_ts": order_ts,
        "amount": number.get("amount", f"{number.get('quantity')} * {number.get('unit_price')}"),
        **{role: number[role] for role in ("quantity", "unit_price") if role in number},
        **{role: text[role] for role in ("product_code", "description", "country", "channel") if role in text},
        "source_row": "CAST(file_row_number + 1 AS VARCHAR)",
        "_row": "file_row_number",
    }
    body = ",\n  ".join(f"{expr} AS {name}" for name, expr in select.items())
    return f"SELECT\n  {body}\nFROM read_parquet({_literal(str(source))}, file_row_number = true)"


def clean_lines(con: duckdb.DuckDBPyConnection, params: Params, source: Path) -> pd.DataFrame:
    """Create the view ``clean`` in ``con`` from the raw Parquet ``source`` and return the quality log.

    The rules of :mod:`helpers.cleaning` run over :func:`collected_sql` (stage 02's view);
    the clean lines are checked against the clean-transaction schema in SQL.
    Any DuckDB failure (a value that does not convert, a file that cannot be
    read) becomes a :class:`~helpers.errors.DataError` naming the file.
    """
    where = str(source)
    try:
        quality = run_rules(con, collected_sql(params, source, row=True), params.cleaning, params.as_of, where)
        validate_sql(con, "clean", transaction_schema, where)
        return quality
    except duckdb.Error as exc:
        raise DataError(f"{source}: DuckDB could not read, map or clean the lines: {str(exc).splitlines()[0]}") from None


# ---------------------------------------------------------------------------
# stage 02 with the DuckDB engine

def copy_to(con: duckdb.DuckDBPyConnection, select: str, target: Path) -> Path:
    """``COPY (select) TO target`` as Parquet, atomically (the target appears only when complete).

    ``con`` may be a :class:`helpers.sparkengine.SparkConnection`: Spark writes the file.
    """
    from helpers import store

    if not isinstance(con, duckdb.DuckDBPyConnection):
        return con.copy_to(select, target)

    with store.atomic_path(target) as tmp:
        con.execute(f"COPY ({select}) TO {_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
    return target


def collected_sql(params: Params, snapshot_file: Path, row: bool = False) -> str:
    """SQL of the collected lines: the raw Parquet snapshot mapped onto the contract, its columns in
    :data:`~helpers.sources.CANONICAL_ORDER` (with ``_row``, the line's position in the file, when ``row``)."""
    view = canonical_select(params, snapshot_file)
    con = duckdb.connect()
    try:
        names = [r[0] for r in con.execute(f"DESCRIBE ({view})").fetchall()]
    finally:
        con.close()
    return _in_canonical_order(view, names, row)


def _in_canonical_order(view: str, names: list[str], row: bool = False) -> str:
    """``view``'s columns ``names`` in :data:`~helpers.sources.CANONICAL_ORDER` (and ``_row`` when ``row``)."""
    return f"SELECT {', '.join(_quote(c) for c in CANONICAL_ORDER if c in names)}{', _row' if row else ''} FROM ({view})"


def collect(params: Params, snapshot_file: Path, target: Path | None = None,
            con: duckdb.DuckDBPyConnection | None = None) -> str | Path:
    """Stage 02 with DuckDB: check the raw Parquet snapshot's mapping onto the contract; return its SQL.

    One pass over the file counts the lines without a timestamp, an amount or an order id
    (a :class:`~helpers.errors.DataError`) and the signs (:func:`helpers.sources.check_signs`).
    The lines are not copied: the SQL (:func:`collected_sql`) is the view ``collected``. With
    ``target`` and ``con`` (a Spark connection, :mod:`helpers.sparkengine`; closed at the end) the mapped
    lines are written to ``target`` (the run's ``collected.parquet``) instead, and ``target`` is returned.
    """
    from helpers import paths

    con = con if con is not None else connect()
    try:
        view = canonical_select(params, snapshot_file)
        names = [r[0] for r in con.execute(f"DESCRIBE ({view})").fetchall()]
        signs = [role for role in ("amount", "quantity", "unit_price") if role in names]
        counts = ", ".join(f"count(*) FILTER ({_quote(r)} < 0), count(*) FILTER (coalesce({_quote(r)}, 0) <> 0)"
                           for r in signs)
        bad = con.execute(f"SELECT count(*) FILTER (order_ts IS NULL), count(*) FILTER (amount IS NULL), "
                          f"count(*) FILTER (order_id IS NULL), {counts} FROM ({view})").fetchone()
        where = f"{source_label(params.source)} (snapshot {paths.shown(snapshot_file)})"
        if any(bad[:3]):
            raise DataError(f"{where}: {bad[0]} lines without a timestamp, {bad[1]} without an amount, "
                            f"{bad[2]} without an order id (run with engine: pandas to see the rows)")
        mapping = role_columns(params.columns)
        check_signs({r: (mapping.get(r), int(bad[3 + 2 * i]), int(bad[4 + 2 * i])) for i, r in enumerate(signs)}, where)
        mapped = _in_canonical_order(view, names)  # the SQL collected_sql gives, without describing the view again
        return mapped if target is None else copy_to(con, mapped, target)
    except duckdb.Error as exc:
        raise DataError(f"{source_label(params.source)} (snapshot {snapshot_file}): DuckDB could not read or map "
                        f"the source: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
