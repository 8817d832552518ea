"""Writing artifacts safely: atomic files and the embedded DuckDB database.

Every file is written to a temporary name beside its target and moved into
place only when complete (``os.replace`` is atomic on one file system), so a
crash never leaves a half-written artifact. Tables go into the data set's
DuckDB database (``data/processed/<dataset>/customers.duckdb``) inside one
transaction, so an analyst can open it any time and query it with SQL::

    import duckdb
    con = duckdb.connect("data/processed/cdnow/customers.duckdb", read_only=True)
    con.sql("select count(*) from transactions").show()
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from helpers import paths


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place on success.

    On an exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame, target: Path) -> Path:
    """Write ``frame`` (without its index) to Parquet atomically."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return target


def write_text(text: str, target: Path) -> Path:
    """Write text (UTF-8) atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def write_json(obj: Any, target: Path) -> Path:
    """Write JSON (sorted keys, indented, dates as ISO strings) atomically."""
    return write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", target)


def json_load(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def connect(dataset: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the data set's DuckDB customer database (created if missing, unless read-only)."""
    db = paths.database_path(dataset)
    if read_only and not db.exists():
        raise FileNotFoundError(f"no database for data set {dataset!r} at {db}: run notebook 02 (collect) first")
    db.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(db), read_only=read_only)


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop the table or view ``name`` if there is one (the engines store lines as one or the other)."""
    kind = con.execute("select table_type from information_schema.tables where table_name = ?", [name]).fetchone()
    if kind:
        con.execute(f'DROP {"VIEW" if kind[0] == "VIEW" else "TABLE"} "{name}"')


def write_tables(dataset: str, tables: dict[str, pd.DataFrame], parquet: dict[str, Path] | None = None) -> None:
    """Replace tables in the data set's database, all in one transaction.

    ``tables`` come from DataFrames. ``parquet`` names Parquet files too
    large to copy (the DuckDB engine's lines): they become views reading the
    file where it is, so the database stays small and the lines are written
    once. Either everything is replaced or, on error, nothing is.
    """
    con = connect(dataset)
    try:
        con.execute("BEGIN TRANSACTION")
        for name, frame in tables.items():
            _drop(con, name)
            con.register("_incoming", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')
            con.unregister("_incoming")
        for name, file in (parquet or {}).items():
            _drop(con, name)
            path = str(Path(file).resolve()).replace("'", "''")
            con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{path}')")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def append_table(dataset: str, name: str, frame: pd.DataFrame) -> None:
    """Append rows to a table (created on first use) in the data set's database."""
    con = connect(dataset)
    try:
        con.register("_incoming", frame)
        exists = con.execute(
            "select count(*) from information_schema.tables where table_name = ?", [name]
        ).fetchone()[0]
        if exists:
            con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM _incoming')
        else:
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')
    finally:
        con.close()


def query(dataset: str, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    """Run a read-only SQL query on the data set's database and return a DataFrame."""
    con = connect(dataset, read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()
