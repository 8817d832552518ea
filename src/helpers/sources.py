"""Collecting a raw transaction log: read a source, snapshot it, map it.

Stage 02 of the customer identification process. A source is described by a
parameter file (:class:`helpers.config.SourceParams`): a CSV or whitespace
text file, an Excel workbook (all or some sheets), a Parquet file, or a table
or query in a DuckDB or SQLite database. A DuckDB query needs no database
file: it then runs in an in-memory DuckDB whose relative file paths start at
the project root (a query joining CSV or Parquet tables).

Collecting does three things:

1. **Snapshot.** The source is copied byte for byte (a database extract is
   written as Parquet) to ``data/raw/<dataset>/<sha256[:16]>/`` with a
   ``manifest.json`` (source, rows, columns, sha256, bytes, time). Snapshots
   are content-addressed and read-only: collecting the same data again reuses
   the snapshot; new data gets a new one. Raw files are never modified.
2. **Read** the snapshot (never the live source), keeping where each line
   came from in ``source_row``.
3. **Map** its columns onto the canonical transaction contract
   (:data:`helpers.schemas.collected_schema`) with the column mapping of the
   parameter file, parsing dates and numbers with errors that name the rows.

Every error names the user's source as the parameter file gives it
(:func:`source_label`), never the snapshot's copy. Bad input said at once:
text lines with more fields than the header (their line numbers, and
``source.on_bad_lines: skip``), a file split on the wrong separator
(:func:`guess_separator`: "looks ';'-separated: set source.sep: ';'") and
amounts that are nearly all negative (:func:`check_signs`: the sign looks
flipped).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import difflib
import glob
import hashlib
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from helpers import paths, store
from helpers.config import ColumnMap, Params, SourceParams
from helpers.errors import DataError, show_rows
from helpers.schemas import collected_schema, validate

LIFETIMES_PREFIX = "lifetimes:"
CANONICAL_ORDER = ["customer_id", "order_id", "order_ts", "amount", "quantity", "unit_price",
                   "product_code", "description", "country", "channel", "source_row"]


@dataclass(frozen=True)
class Snapshot:
    """An immutable raw snapshot and its manifest."""

    directory: Path
    file: Path
    manifest: dict[str, Any]


def source_label(spec: SourceParams) -> str:
    """How messages name the user's source: the configured path, and what it resolved to when that differs.

    Every read error names this, never the raw snapshot's (or a temporary) copy.

    >>> source_label(SourceParams(kind="csv", path="/tmp/x.csv"))
    '/tmp/x.csv'
    >>> source_label(SourceParams(kind="duckdb", query="select 1"))
    'the duckdb query (in-memory database)'
    """
    if spec.path is None:
        return f"the {spec.kind} query (in-memory database)"
    if spec.path.startswith(LIFETIMES_PREFIX):
        return spec.path
    resolved = paths.resolve(spec.path)
    return spec.path if Path(spec.path) == resolved else f"{spec.path} ({resolved})"


def resolve_source_path(path: str) -> Path:
    """Resolve a source path; ``lifetimes:<file>`` is a data set shipped with lifetimes.

    >>> resolve_source_path("lifetimes:CDNOW_sample.txt").name
    'CDNOW_sample.txt'
    """
    if path.startswith(LIFETIMES_PREFIX):
        import lifetimes.datasets

        resolved = Path(lifetimes.datasets.__file__).parent / path[len(LIFETIMES_PREFIX):]
    else:
        resolved = paths.resolve(path)
    if not resolved.is_file():
        raise DataError(f"source file not found: {path!r} (looked for {resolved})")
    return resolved


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# reading


def _line_numbers(n: int, first: int) -> list[str]:
    """``source_row`` values ``first`` .. ``first + n - 1`` as text (vectorised: sources have millions of lines).

    >>> _line_numbers(3, 2)
    ['2', '3', '4']
    """
    return np.arange(first, first + n).astype(str).tolist()


#: Bad line numbers shown in a message or a quality-log note, and kept in the collected metadata.
SHOWN_LINES = 10
KEPT_LINES = 1000
#: Separators recognised when a file looks like it was read with the wrong one.
SEPARATORS = {",": "','", ";": "';'", "\t": '"\\t"', "|": "'|'"}
_SKIPPED = re.compile(r"Skipping line (\d+): [Ee]xpected (\d+) fields(?: in line \d+)?, saw (\d+)")


def show_lines(lines: list[int], count: int | None = None, limit: int = SHOWN_LINES) -> str:
    """Line numbers for a message: the first ``limit`` and how many more.

    >>> show_lines([3, 5, 9])
    '3, 5, 9'
    >>> show_lines(list(range(2, 40)), limit=3)
    '2, 3, 4 and 35 more'
    >>> show_lines([2, 3], count=1200, limit=3)
    '2, 3 and 1198 more'
    """
    count = len(lines) if count is None else count
    head = ", ".join(str(n) for n in lines[:limit])
    rest = count - min(len(lines), limit)
    return head if rest <= 0 else f"{head} and {rest} more"


def _sample_lines(file: Path, encoding: str, size: int = 1 << 16) -> list[str]:
    """The first lines of a text file (up to ``size`` bytes, the cut last line dropped), for sniffing."""
    with open(file, "rb") as fh:
        block = fh.read(size)
    lines = block.decode(encoding, errors="replace").splitlines(keepends=True)
    return lines[:-1] if len(block) == size and len(lines) > 1 else lines


def _fields(lines: list[str], sep: str) -> list[int]:
    """Fields per line of ``lines`` split on ``sep`` (``whitespace``: runs of spaces), honouring quotes."""
    if sep == "whitespace":
        return [len(line.split()) for line in lines if line.strip()]
    if len(sep) != 1:
        return [len(re.split(sep, line.rstrip("\r\n"))) for line in lines if line.strip()]
    return [len(row) for row in csv.reader(lines, delimiter=sep) if row]


def guess_separator(lines: list[str], sep: str) -> str | None:
    r"""Another separator that splits every sample line into the same number (> 1) of fields, when ``sep`` does not.

    Returns None when ``sep`` already splits the lines as well as any other
    candidate (:data:`SEPARATORS`), so a correct file never gets a hint.

    >>> guess_separator(["a;b;c\n", "1;2,5;3\n"], ",")
    ';'
    >>> guess_separator(["a\tb\tc\n", "1\t2\t3\n"], ",")
    '\t'
    >>> guess_separator(["a,b,c\n", "1,2;x,3\n"], ",") is None
    True
    """
    current = _fields(lines, sep)
    if not current:
        return None
    best, best_fields = None, max(current) if len(set(current)) == 1 else 1
    for candidate in SEPARATORS:
        if candidate == sep:
            continue
        counts = set(_fields(lines, candidate))
        if len(counts) == 1 and (n := counts.pop()) > best_fields:
            best, best_fields = candidate, n
    return best


def separator_hint(file: Path, spec: SourceParams, label: str) -> str | None:
    """``"<file> looks ';'-separated: set source.sep: ';'"`` when the sample says so, else None."""
    if spec.kind not in ("csv", "text"):
        return None
    guess = guess_separator(_sample_lines(file, spec.encoding), spec.sep)
    if guess is None:
        return None
    name = "tab" if guess == "\t" else SEPARATORS[guess]
    return f"{label} looks {name}-separated: set source.sep: {SEPARATORS[guess]}"


@dataclass(frozen=True)
class BadLines:
    """Lines of a text source with more fields than the header (pandas' "bad lines").

    ``lines`` are line numbers as in ``source_row`` (the header is line 1),
    the first :data:`KEPT_LINES` of them; ``count`` is exact.
    """

    count: int
    lines: tuple[int, ...]
    expected: int

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "lines": list(self.lines), "expected_fields": self.expected}


def _parse_bad_lines(caught: list[warnings.WarningMessage]) -> tuple[list[int], int]:
    """Line numbers and expected field count from pandas' "Skipping line N" warnings; others are re-issued."""
    lines, expected = [], 0
    for w in caught:
        found = list(_SKIPPED.finditer(str(w.message))) if issubclass(w.category, pd.errors.ParserWarning) else []
        if not found:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        for m in found:
            lines.append(int(m.group(1)))
            expected = int(m.group(2))
    return sorted(lines), expected


def header_names(values: list[Any]) -> list[str]:
    """Column names from a header row as pandas makes them: empty -> ``Unnamed: i``, repeats -> ``name.1``.

    >>> header_names(["a", None, "a", "b", "a"])
    ['a', 'Unnamed: 1', 'a.1', 'b', 'a.2']
    """
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        name = f"Unnamed: {i}" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        while name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        names.append(name)
    return names


def _named(frame: pd.DataFrame, spec: SourceParams, label: str) -> pd.DataFrame:
    """Give a frame read with ``header=None`` and no names its column names: the first row, or ``source.names``."""
    if spec.header:
        names = header_names(frame.iloc[0].tolist()) if len(frame) else []
        frame = frame.iloc[1:].reset_index(drop=True)
        frame.columns = names
        return frame
    names = list(spec.names or [])
    if frame.shape[1] > len(names):
        raise DataError(f"{label}: line 1 has {frame.shape[1]} fields but source.names lists {len(names)} "
                        f"({names}); give every column a name")
    for i in range(frame.shape[1], len(names)):
        frame[i] = None
    frame.columns = names
    return frame


def _read_text(spec: SourceParams, file: Path, label: str, *, tolerate_bad_lines: bool = False) -> tuple[pd.DataFrame, BadLines]:
    """Read a delimited text file with pandas' C engine; lines with too many fields are collected, not fatal.

    Raises a :class:`DataError` naming ``label`` (the user's file) when the
    file looks separated by another character than ``source.sep``, and, unless
    ``source.on_bad_lines`` is ``skip`` (or ``tolerate_bad_lines``), when
    lines have more fields than the header.
    """
    sep = r"\s+" if spec.sep == "whitespace" else spec.sep
    sample = _sample_lines(file, spec.encoding)
    if sample and _fields(sample[:1], spec.sep) == [1] and (hint := separator_hint(file, spec, label)):
        raise DataError(f"{hint} (with source.sep {spec.sep!r} the first line is one field: {sample[0].strip()[:80]!r})")

    def read(plain: bool) -> tuple[pd.DataFrame, list[warnings.WarningMessage]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = pd.read_csv(
                file, sep=sep, dtype=str, encoding=spec.encoding, header=None if plain or not spec.header else 0,
                names=None if plain else spec.names, keep_default_na=False, na_values=[""], skipinitialspace=True,
                on_bad_lines="warn",
            )
        return frame, caught

    try:
        frame, caught = read(plain=False)
        if not isinstance(frame.index, pd.RangeIndex):
            # the first data line has more fields than the header (or names): pandas silently made the
            # extra field(s) the index, shifting every column. Read again with no header, so the first
            # line fixes the number of fields and every longer line is a bad line (slower; rare)
            frame, caught = read(plain=True)
            frame = _named(frame, spec, label)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{label}: cannot be read as {spec.encoding} text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
            "set source.encoding in the parameter file (Online Retail exports are latin-1)"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: the file is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        hint = separator_hint(file, spec, label)
        raise DataError(f"{label}: not a {spec.kind} file with separator {spec.sep!r}: {exc}"
                        + (f"; {hint}" if hint else "")) from None
    numbers, expected = _parse_bad_lines(caught)
    bad = BadLines(len(numbers), tuple(numbers[:KEPT_LINES]), expected)
    if bad.count and spec.on_bad_lines == "error" and not tolerate_bad_lines:
        hint = separator_hint(file, spec, label)
        raise DataError(
            f"{label}: {bad.count} lines have more fields than the {'header' if spec.header else 'first line'}'s "
            f"{expected}: lines {show_lines(numbers, bad.count)}{' (line 1 is the header)' if spec.header else ''}. "
            + (f"{hint}. " if hint else "")
            + "Fix the file (an unquoted separator inside a value?), or set source.on_bad_lines: skip to drop "
            "those lines (the quality log lists them)"
        )
    first_line = 2 if spec.header else 1
    if bad.count:
        kept = np.setdiff1d(np.arange(first_line, first_line + len(frame) + bad.count), numbers)[:len(frame)]
        frame["source_row"] = kept.astype(str).tolist()
    else:
        frame["source_row"] = _line_numbers(len(frame), first_line)
    return frame, bad


def _read_excel(spec: SourceParams, file: Path, label: str) -> tuple[pd.DataFrame, dict[str, int]]:
    try:
        book = pd.ExcelFile(file, engine="openpyxl")
    except Exception as exc:  # openpyxl raises several unrelated types for a bad workbook
        raise DataError(f"{label}: not a readable Excel workbook ({type(exc).__name__}: {exc})") from None
    wanted = book.sheet_names if spec.sheets == "all" else spec.sheets
    missing = [s for s in wanted if s not in book.sheet_names]
    if missing:
        raise DataError(f"{label}: sheet(s) {missing} not found; sheets in the workbook: {book.sheet_names}")
    parts, sizes = [], {}
    for sheet in wanted:
        part = book.parse(sheet, dtype=object, header=0 if spec.header else None, names=spec.names)
        part["source_row"] = [f"{sheet}!{i + 2}" for i in range(len(part))]
        parts.append(part)
        sizes[sheet] = len(part)
    return pd.concat(parts, ignore_index=True), sizes


def read_source(spec: SourceParams, file: Path, label: str | None = None, *,
                tolerate_bad_lines: bool = False) -> tuple[pd.DataFrame, dict[str, int] | None, BadLines | None]:
    """Read a raw snapshot file as a DataFrame of source columns plus ``source_row``.

    Returns the frame, for a workbook the number of rows per sheet, and for a
    text file the lines it skipped (:class:`BadLines`). Errors name ``label``
    (the user's source, :func:`source_label`), not the snapshot's path.
    """
    label = label or str(file)
    if spec.kind in ("csv", "text"):
        frame, bad = _read_text(spec, file, label, tolerate_bad_lines=tolerate_bad_lines)
        return frame, None, bad
    if spec.kind == "excel":
        frame, sheets = _read_excel(spec, file, label)
        return frame, sheets, None
    try:
        frame = pd.read_parquet(file)  # parquet sources, and SQL extracts
    except Exception as exc:
        raise DataError(f"{label}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    frame["source_row"] = _line_numbers(len(frame), 1)
    return frame, None, None


def read_snapshot(spec: SourceParams, file: Path, label: str | None = None) -> tuple[pd.DataFrame, dict[str, int] | None]:
    """:func:`read_source` without the skipped lines: the frame and (workbooks) the rows per sheet."""
    frame, sheets, _ = read_source(spec, file, label)
    return frame, sheets


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


# ---------------------------------------------------------------------------
# snapshots


def _make_read_only(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def snapshot_source(params: Params) -> Snapshot:
    """Copy the source into an immutable, content-addressed raw snapshot.

    Collecting identical data again returns the existing snapshot (its
    checksum verified); a snapshot is never overwritten.
    """
    spec = params.source
    label = source_label(spec)
    source_file = resolve_source_path(spec.path) if spec.path is not None else None
    staging = Path(tempfile.mkdtemp(prefix=".collect-", dir=_ensure(paths.raw_dir(params.dataset))))
    try:
        if spec.kind in ("duckdb", "sqlite"):
            name = f"{spec.table or 'query'}.parquet"
            store.write_parquet(extract_sql(spec, source_file), staging / name)
        else:
            assert source_file is not None  # SourceParams: only a duckdb query has no path
            name = source_file.name
            shutil.copyfile(source_file, staging / name)
        digest = sha256_file(staging / name)
        if spec.kind not in ("duckdb", "sqlite") and digest != sha256_file(source_file):
            raise DataError(f"{label}: the file changed while it was being copied; collect again")
        target = paths.raw_dir(params.dataset) / digest[:16]
        if (target / "manifest.json").exists():
            existing = store.json_load(target / "manifest.json")
            if sha256_file(target / existing["file"]) != existing["sha256"]:
                raise DataError(f"raw snapshot {target} no longer matches its manifest checksum; it was modified")
            return Snapshot(target, target / existing["file"], existing)
        rows, columns, sheets, bad_lines = _shape(spec, staging / name, label)
        source = {"kind": spec.kind, "path": spec.path, "resolved": str(source_file) if source_file else None,
                  "table": spec.table, "query": spec.query, "encoding": spec.encoding}
        if spec.query and spec.kind == "duckdb":
            source["inputs"] = query_inputs(spec.query)
        manifest = {
            "dataset": params.dataset,
            "snapshot_id": digest[:16],
            "source": source,
            "file": name,
            "sha256": digest,
            "bytes": (staging / name).stat().st_size,
            "rows": rows,
            "columns": columns,
            "sheets": sheets,
            "collected_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if bad_lines is not None:
            manifest["bad_lines"] = bad_lines
        store.write_json(manifest, staging / "manifest.json")
        for f in staging.iterdir():
            _make_read_only(f)
        try:
            os.rename(staging, target)
        except OSError:  # another process made the same snapshot first
            if not (target / "manifest.json").exists():
                raise
            return Snapshot(target, target / name, store.json_load(target / "manifest.json"))
        return Snapshot(target, target / name, manifest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _shape(spec: SourceParams, file: Path, label: str) -> tuple[int, list[str], dict[str, int] | None, int | None]:
    """Rows, columns, (workbooks) rows per sheet and (text) bad lines of a snapshot file.

    Parquet from its metadata alone. Text lines with too many fields are
    counted here, not refused (``rows`` counts the others), so the snapshot
    exists and :func:`map_snapshot` names them as ``source.on_bad_lines`` says.
    """
    if spec.kind in ("parquet", "duckdb", "sqlite"):
        try:
            meta = pq.ParquetFile(file)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise DataError(f"{label}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        return meta.metadata.num_rows, meta.schema_arrow.names, None, None
    frame, sheets, bad = read_source(spec, file, label, tolerate_bad_lines=True)
    return len(frame), [c for c in frame.columns if c != "source_row"], sheets, (bad.count if bad else None)


def _ensure(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# ---------------------------------------------------------------------------
# mapping onto the contract


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
    row_of = dict(zip(values.index, rows.astype(str), strict=True))

    def example(mask: pd.Series) -> str:
        i = mask[mask].index[0]
        return f"row {row_of[i]}: {values[i]!r}"

    if day_first.any() and month_first.any():
        return (f". The column mixes formats: {example(day_first)} is day/month, {example(month_first)} is "
                "month/day; fix the source so one format is used")
    if day_first.any():
        return f". They read day first ({example(day_first)}): set date_format, e.g. '%d/%m/%Y'"
    if month_first.any():
        return f". They read month first ({example(month_first)}): set date_format, e.g. '%m/%d/%Y'"
    return (". Every one of these reads both as day/month and as month/day: the order cannot be guessed. "
            "Set date_format ('%d/%m/%Y' or '%m/%d/%Y')")


def parse_numbers(raw: pd.Series, frame: pd.DataFrame, where: str, column: str, *, allow_missing: bool) -> pd.Series:
    """Parse a numeric column; text that is not a number raises a :class:`DataError` with example rows."""
    parsed = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = parsed.isna() & (raw.notna() if allow_missing else True)
    if bad.any():
        what = "values that are not numbers" if raw[bad].notna().any() else "empty values"
        raise DataError(f"{where}: column {column!r} has {int(bad.sum())} {what}: {_examples(raw, bad, frame)}")
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


def map_columns(raw: pd.DataFrame, columns: ColumnMap, date_format: str | None, where: str) -> pd.DataFrame:
    """Map source columns onto the canonical transaction contract.

    Missing columns are named with the columns found; timestamps and numbers
    are parsed with row-level errors. Without an order column, an order is a
    customer's purchases on one day. Without an amount column, amount is
    quantity x unit price.

    >>> raw = pd.DataFrame({"cust": ["7", "7"], "day": ["19970101", "19970102"], "usd": ["1.5", "2"],
    ...                     "source_row": ["2", "3"]})
    >>> cm = ColumnMap(customer_id="cust", order_ts="day", amount="usd")
    >>> map_columns(raw, cm, "%Y%m%d", "x.txt")[["customer_id", "order_id", "amount"]].values.tolist()
    [['7', '7@19970101', 1.5], ['7', '7@19970102', 2.0]]
    """
    found = [c for c in raw.columns if c != "source_row"]
    mapping = {role: col for role, col in columns.model_dump().items() if col is not None}
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
            out[role] = parse_numbers(raw[mapping[role]], raw, where, mapping[role], allow_missing=columns.amount is not None)
    if "amount" in mapping:
        out["amount"] = parse_numbers(raw[mapping["amount"]], raw, where, mapping["amount"], allow_missing=False)
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


def snapshot_history(dataset: str, used: str) -> pd.DataFrame:
    """Every raw snapshot of the data set (from their manifests), newest first; ``used`` marks this run's."""
    rows = []
    for manifest in sorted(paths.raw_dir(dataset).glob("*/manifest.json")):
        m = store.json_load(manifest)
        rows.append({"snapshot_id": m["snapshot_id"], "file": m["file"], "sha256": m["sha256"], "rows": m["rows"],
                     "source_path": m["source"]["path"] or f"{m['source']['kind']} query",
                     "collected_at": m["collected_at"], "used_by_this_run": m["snapshot_id"] == used})
    frame = pd.DataFrame(rows, columns=["snapshot_id", "file", "sha256", "rows", "source_path", "collected_at",
                                        "used_by_this_run"])
    return frame.sort_values(["collected_at", "snapshot_id"], ascending=False, ignore_index=True)


def save_collected(catalog: Any, snap: Snapshot, collected: pd.DataFrame | None, read: dict[str, Any] | None = None) -> Path:
    """Write stage 02's artifacts: ``collected.parquet`` and the run's DuckDB tables.

    The table ``collected`` holds this collection; ``snapshots`` lists every raw
    snapshot of the data set and marks the one this run used (the run's own
    database never reads another run's).
    With ``collected`` None, ``collected.parquet`` was written already (the
    DuckDB engine) and the table is loaded from it. ``snapshot.json`` is the
    snapshot's manifest plus ``read``: how this collection read it
    (``on_bad_lines`` and the lines skipped, :func:`read_info`), which
    stage 03 puts in the quality log. ``read`` defaults to ``collected``'s.
    """
    target = catalog.path("collected")
    if collected is not None:
        catalog.write_parquet("collected", collected)
        read = read if read is not None else read_info(collected)
    catalog.write_json("snapshot", {**snap.manifest, "read": read})
    history = snapshot_history(catalog.dataset, snap.manifest["snapshot_id"])
    if collected is not None:
        catalog.write_tables({"collected": collected, "snapshots": history})
    else:
        catalog.write_tables({"snapshots": history}, views={"collected": "collected"})
    return target


def read_info(collected: pd.DataFrame) -> dict[str, Any] | None:
    """How the collected lines were read: ``{"on_bad_lines": ..., "bad_lines": {count, lines, expected_fields}}``.

    Kept in the frame's ``attrs`` by :func:`map_snapshot` (text sources
    only); None for other sources.
    """
    return collected.attrs.get("read")


def map_snapshot(params: Params, snap: Snapshot) -> pd.DataFrame:
    """Read a raw snapshot and map it onto the contract (the pandas engine of stage 02).

    Errors name the user's source (:func:`source_label`) and the snapshot.
    Text lines with too many fields stop here with their line numbers, or,
    with ``source.on_bad_lines: skip``, are dropped and recorded in the
    result's ``attrs["read"]`` (:func:`read_info`). A mapped column that is
    not found because the file is split on the wrong separator says which
    separator to set.
    """
    spec = params.source
    label = source_label(spec)
    raw, _, bad = read_source(spec, snap.file, label)
    found = [c for c in raw.columns if c != "source_row"]
    missing = [c for c in params.columns.model_dump().values() if c is not None and c not in raw.columns]
    if missing and (hint := separator_hint(snap.file, spec, label)):
        raise DataError(f"{hint} (mapped column(s) {missing} not found with source.sep {spec.sep!r}; "
                        f"columns found: {found[:5]}{' ...' if len(found) > 5 else ''})")
    out = map_columns(raw, params.columns, params.date_format, f"{label} (snapshot {paths.shown(snap.file)})")
    if bad is not None:
        out.attrs["read"] = {"on_bad_lines": spec.on_bad_lines, "bad_lines": bad.as_dict()}
    return out


def collect(params: Params) -> tuple[Snapshot, pd.DataFrame]:
    """Stage 02 in one call: snapshot the source, read the snapshot, map it onto the contract."""
    snap = snapshot_source(params)
    return snap, map_snapshot(params, snap)


def collect_and_save(params: Params, catalog: Any = None) -> tuple[Snapshot, str]:
    """Stage 02 in one call, on the engine the parameters choose; returns the snapshot and the engine.

    pandas: :func:`collect` then :func:`save_collected`. DuckDB (large Parquet
    sources, see :func:`helpers.sqlclean.engine`): the snapshot is mapped onto
    the contract by :func:`helpers.sqlclean.collect` without loading it into pandas.
    """
    from helpers import sqlclean
    from helpers.catalog import Catalog

    catalog = catalog if catalog is not None else Catalog.of(params)  # default: the run folder of params
    snap = snapshot_source(params)
    engine = sqlclean.engine(params, snap.file)
    if engine == "duckdb":
        sqlclean.collect(params, snap.file, catalog.path("collected"))
        save_collected(catalog, snap, None)
    else:
        save_collected(catalog, snap, map_snapshot(params, snap))
    return snap, engine
