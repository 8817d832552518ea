"""Reading a raw snapshot with pandas: delimited text (bad lines, separators), Excel workbooks, Parquet.

pandas reads here because it names the lines at fault: a text line with more fields than the
header, a file split on the wrong separator.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.config import SourceParams
from helpers.errors import DataError


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
        book = pd.ExcelFile(file, engine="calamine")  # Rust's calamine: the same cells as openpyxl, ten times faster
    except Exception as exc:  # the readers raise several unrelated types for a bad workbook
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
