"""Extracting a table or a query from a DuckDB or SQLite source, and the files a query reads."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from helpers import paths
from helpers.config import SourceParams
from helpers.errors import DataError
from helpers.sources.files import sha256_file, source_label


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def extract_sql(spec: SourceParams, database: Path | None) -> pd.DataFrame:
    """Run the table or query of a DuckDB or SQLite source (read-only) and return its rows.

    A DuckDB ``query`` runs with ``file_search_path`` set to the project
    root, so ``read_csv('../shared/x.csv')`` means the same file from any
    working directory; with ``database`` None it runs in an in-memory DuckDB
    (a query joining CSV or Parquet files needs no database file). Query rows
    are sorted (``ORDER BY ALL``), so the snapshot is identical on every run.
    """
    sql = spec.query or f"SELECT * FROM {spec.table}"
    where = source_label(spec) if database is None else str(database)
    try:
        if spec.kind == "duckdb":
            con = duckdb.connect(str(database), read_only=True) if database is not None else duckdb.connect()
            try:
                con.execute(f"SET file_search_path = {_sql_literal(str(paths.PROJECT_ROOT))}")
                if spec.query:
                    sql = f"SELECT * FROM (\n{spec.query.strip().rstrip(';')}\n) ORDER BY ALL"
                return con.execute(sql).df()
            finally:
                con.close()
        uri = f"file:{database}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as con:  # sqlite3's own `with` does not close
            return pd.read_sql_query(sql, con)
    except (duckdb.Error, sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise DataError(f"{where}: the {spec.kind} query failed: {spec.query or sql!r}: {exc}") from None


def query_inputs(query: str | None) -> list[dict[str, Any]]:
    """The files a query names in string literals (``read_csv('...')``), with their size and sha256.

    Paths are taken from the project root, as :func:`extract_sql` runs them;
    globs are expanded; literals that are not files are ignored. Cheap and
    best effort: a file named some other way is not listed.

    >>> query_inputs("select 'not a file' as x")
    []
    """
    found: list[dict[str, Any]] = []
    for literal in re.findall(r"'((?:[^']|'')*)'", query or ""):
        text = literal.replace("''", "'")
        if not text or "\n" in text:
            continue
        pattern = paths.resolve(text)
        matches = sorted(glob.glob(str(pattern))) if glob.has_magic(text) else [str(pattern)]
        for match in matches:
            file = Path(os.path.normpath(match))
            if file.is_file() and all(f["resolved"] != str(file) for f in found):
                found.append({"path": text if match == str(pattern) else match, "resolved": str(file),
                              "bytes": file.stat().st_size, "sha256": sha256_file(file)})
    return found
