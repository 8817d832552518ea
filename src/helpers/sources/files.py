"""Where a source file is, how messages name it, and its checksum."""

from __future__ import annotations

import hashlib
from pathlib import Path


from helpers import paths
from helpers.config import SourceParams
from helpers.errors import DataError


LIFETIMES_PREFIX = "lifetimes:"


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
        near = near_names(resolved)
        raise DataError(f"source file not found: {path!r} (looked for {resolved}){near or '.'} Set source.path in "
                        "the parameter file (a relative path starts at the project root)")
    return resolved


def near_names(missing: Path) -> str:
    """``"; did you mean 'x.csv'?"`` for a file of a close name in ``missing``'s folder, else ``""``.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()); _ = (folder / "shop_c_amounts.tsv").write_text("x")
    >>> near_names(folder / "shop_c_amount.tsv"), near_names(folder / "other.csv")
    ("; did you mean 'shop_c_amounts.tsv'?", '')
    """
    import difflib

    folder = missing.parent
    names = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    close = difflib.get_close_matches(missing.name, names, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
