"""Writing artifacts safely: atomic files and the embedded DuckDB database.

Every file is written to a temporary name beside its target and moved into
place only when complete (``os.replace`` is atomic on one file system), so a
crash never leaves a half-written artifact. Tables go into a run's DuckDB
database (``customers.duckdb`` in the run folder, see :mod:`helpers.catalog`)
inside one transaction, so either all of a stage's tables are replaced or none.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helpers import paths


def _arrow_memory_pool() -> None:
    """Arrow allocates from jemalloc, unless ``ARROW_DEFAULT_MEMORY_POOL`` names a pool (or the build has none).

    Arrow's default pool (mimalloc) kept the memory of the tables read and released: at ten million
    customers the export table held 7.6 GB of the process's memory after it was built, 4.4 GB with
    jemalloc, which gives freed memory back to the system.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, pa.ArrowException):  # a build without jemalloc (Windows): the default pool
        pass


_arrow_memory_pool()

try:
    import fcntl
except ImportError:  # Windows: no locks, and the runner runs its stages one at a time (helpers.run.waves)
    fcntl = None  # type: ignore[assignment]

#: Whether :func:`folder_lock` locks: two stages may then write one database from two processes.
CAN_LOCK = fcntl is not None


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``flock`` of the folder itself: no lock file is left behind).

    DuckDB lets one process at a time open a database file for writing, and refuses another at once;
    the stages that run side by side (:data:`helpers.run.SIDE_BY_SIDE`) take turns on the run's database
    through this lock instead.
    """
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


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


def replace_folder(staging: Path, target: Path) -> None:
    """Move a finished folder into place, replacing the previous one only at the last moment.

    The previous folder is moved aside (``.<name>.old``) first and removed after, so
    ``target`` is missing only between two renames on one file system.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


#: Rows per Parquet row group (pyarrow's default); :func:`write_parquet` converts a larger frame one group at a time.
PARQUET_ROW_GROUP = 1024 * 1024


def _arrow_schema(frame: pd.DataFrame, head: pa.Table) -> pa.Schema:
    """The schema pandas gives ``frame``: ``head``'s (its first row group's), unless a column is missing there."""
    if any(pa.types.is_null(field.type) for field in head.schema):
        return pa.Schema.from_pandas(frame, preserve_index=False)  # infers each column's type from all of it
    return head.schema


def write_parquet(frame: pd.DataFrame, target: Path) -> Path:
    """Write ``frame`` (without its index) to Parquet atomically.

    The file is the one ``frame.to_parquet(index=False)`` writes (pyarrow, its row groups of
    :data:`PARQUET_ROW_GROUP` rows), but a frame of more rows is converted to Arrow one row group at a
    time: pandas converts the whole frame at once, a second copy of it in memory (at ten million
    customers, gigabytes).
    """
    if len(frame) <= PARQUET_ROW_GROUP:
        with atomic_path(target) as tmp:
            frame.to_parquet(tmp, index=False)
        return target
    parts = (frame.iloc[start:start + PARQUET_ROW_GROUP] for start in range(0, len(frame), PARQUET_ROW_GROUP))
    return write_parquet_parts(parts, target, whole=frame)


def write_parquet_parts(parts: Iterable[pd.DataFrame], target: Path, whole: pd.DataFrame | None = None) -> Path:
    """Write consecutive parts of one frame (the same columns) to Parquet atomically, one row group per part.

    Parts of :data:`PARQUET_ROW_GROUP` rows (the last one shorter) give the file ``to_parquet`` writes of
    the frame they make up; ``whole`` is that frame, when there is one, to type a column the first part
    has no value in (otherwise the first part's types hold).
    """
    with atomic_path(target) as tmp:
        writer = schema = None
        try:
            for part in parts:
                table = pa.Table.from_pandas(part, preserve_index=False)
                if writer is None:
                    schema = table.schema if whole is None else _arrow_schema(whole, table)
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(schema), row_group_size=PARQUET_ROW_GROUP)
                del table
        finally:
            if writer is not None:
                writer.close()
        if writer is None:  # checked inside: the empty file is not moved into place
            raise ValueError(f"write_parquet_parts: no parts to write to {target}")
    return target


def read_parquet(file: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet file into pandas, as ``pd.read_parquet`` does, with the least memory.

    The Arrow table is released column by column as pandas takes it over (``self_destruct``), and
    each column stays its own block (no consolidation copy): at ten million customers a 15-column
    table took 4.6 GB in ``pd.read_parquet``, 2.9 GB this way.
    """
    table = pq.read_table(file, columns=columns, use_pandas_metadata=True)
    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    pa.default_memory_pool().release_unused()
    return frame


def link_or_copy(source: Path, target: Path) -> Path:
    """``target`` as a hard link to ``source`` (no copy of a large export), or a copy across file systems."""
    Path(target).unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return Path(target)


def write_text(text: str, target: Path) -> Path:
    """Write text (UTF-8) atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def write_csv(frame: pd.DataFrame, target: Path, parquet: Path | None = None, pandas_rows: int | None = None) -> Path:
    """Write ``frame`` (without its index) as CSV atomically: pandas' ``to_csv`` up to ``pandas_rows`` rows.

    A larger frame (``pandas_rows`` set and exceeded) is written by DuckDB from ``parquet`` (the same frame,
    written already), in the formats pandas uses: ``True``/``False``, dates without a time when every
    timestamp of the column is midnight, an empty field for a missing value or an empty text; numbers in the
    shortest form that reads back (both do). Pandas' formatting costs about a minute per million rows of
    thirty columns, DuckDB's a few seconds. DuckDB writes on one thread: in order on several threads it holds
    the batches that come early (1M rows of the export: 1.36 GB more and 8.8 s, against 0.17 GB and 5.8 s).
    """
    if pandas_rows is None or len(frame) <= pandas_rows or parquet is None:
        return write_text(frame.to_csv(index=False), target)
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        source = f"read_parquet('{str(Path(parquet).resolve()).replace(chr(39), chr(39) * 2)}')"
        columns = []
        for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall():
            c = '"' + name.replace('"', '""') + '"'
            if kind == "BOOLEAN":
                c = f"CASE WHEN {c} THEN 'True' WHEN NOT {c} THEN 'False' END AS {c}"
            elif kind.startswith("TIMESTAMP") and not con.execute(
                    f"SELECT count(*) FILTER ({c} <> date_trunc('day', {c})) FROM {source}").fetchone()[0]:
                c = f"CAST({c} AS DATE) AS {c}"
            elif kind == "VARCHAR":
                c = f"nullif({c}, '') AS {c}"
            columns.append(c)
        with atomic_path(target) as tmp:
            con.execute(f"COPY (SELECT {', '.join(columns)} FROM {source}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' "
                        "(FORMAT csv, HEADER)")
    finally:
        con.close()
    return target


def write_json(obj: Any, target: Path) -> Path:
    """Write JSON (sorted keys, indented, dates as ISO strings) atomically."""
    return write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", target)


def json_load(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def connect_file(db: Path, read_only: bool = False, missing: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database file (created if missing, unless read-only: then ``missing`` is the error)."""
    db = Path(db)
    if read_only and not db.exists():
        raise FileNotFoundError(missing or f"no database at {paths.shown(db)}")
    db.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(db), read_only=read_only)


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop the table or view ``name`` if there is one (the engines store lines as one or the other)."""
    kind = con.execute("select table_type from information_schema.tables where table_name = ?", [name]).fetchone()
    if kind:
        con.execute(f'DROP {"VIEW" if kind[0] == "VIEW" else "TABLE"} "{name}"')


def _parquet_view(con: duckdb.DuckDBPyConnection, name: str, file: Path) -> None:
    path = str(Path(file).resolve()).replace("'", "''")
    con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{path}')")


#: DuckDB's memory limit while it copies a Parquet file into a table (:func:`write_tables_file`).
COPY_MEMORY = "512MB"


def write_tables_file(db: Path, tables: dict[str, pd.DataFrame | Path], parquet: dict[str, Path] | None = None,
                      queries: dict[str, str] | None = None) -> None:
    """Replace tables in a database file, all in one transaction.

    ``tables`` come from DataFrames, or are copied from Parquet files (a path: the frame written already,
    read by DuckDB in its own bounded memory instead of scanning the frame's Python objects). ``parquet`` names Parquet files too
    large to copy (the DuckDB engine's lines): they become views reading the
    file where it is, so the database stays small and the lines are written
    once. ``queries`` become views of their SQL (the DuckDB engine's collected
    lines: the raw snapshot mapped onto the contract). Either everything is
    replaced or, on error, nothing is.
    """
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(Path(db).parent):
        _write_tables(db, tables, parquet, queries)


def _write_tables(db: Path, tables: dict[str, pd.DataFrame | Path], parquet: dict[str, Path] | None,
                  queries: dict[str, str] | None) -> None:
    con = connect_file(db)
    try:
        con.execute("BEGIN TRANSACTION")
        for name, frame in tables.items():
            _drop(con, name)
            if isinstance(frame, (str, Path)):  # a streaming copy: under its default limit DuckDB buffered 2.3 GB
                path = str(Path(frame).resolve()).replace("'", "''")  # of a 10M x 39 table, 0.5 GB under this one
                con.execute(f"SET memory_limit = '{COPY_MEMORY}'")
                con.execute(f"CREATE TABLE \"{name}\" AS SELECT * FROM read_parquet('{path}')")
                con.execute("RESET memory_limit")
                continue
            con.register("_incoming", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')
            con.unregister("_incoming")
        for name, file in (parquet or {}).items():
            _drop(con, name)
            _parquet_view(con, name, file)
        for name, sql in (queries or {}).items():
            _drop(con, name)
            con.execute(f'CREATE VIEW "{name}" AS {sql}')
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def relink_views(db: Path, old_folder: Path, new_folder: Path) -> None:
    """Point the database's Parquet views from files in ``old_folder`` at the same files in ``new_folder``."""
    con = connect_file(db)
    try:
        views = con.execute("select view_name, sql from duckdb_views() where not internal").fetchall()
        old = str(Path(old_folder).resolve())
        for name, sql in views:
            if old in sql:
                con.execute(sql.replace(old, str(Path(new_folder).resolve())).replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
    finally:
        con.close()
