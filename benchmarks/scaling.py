"""The scaling table: ``python -m helpers.run`` at 10k, 100k, 1M and 10M customers, seconds and peak memory per stage.

``make bench-scaling`` (``python -m benchmarks.scaling``, from the project
root) runs the whole pipeline (all eight stages with their notebooks, the
report included) once per size on the bench's synthetic logs
(:func:`benchmarks.bench.dataset`) and prints one table: a row per stage,
a column per size, each cell ``seconds / peak MB`` of the run's process tree
while that stage ran (:func:`benchmarks.bench.run_report`). ``10m`` is the 1M
log copied ten times with shifted customer ids and invoice numbers
(:func:`replicate`: ten million distinct customers, about 110 million lines),
so it costs no pandas memory to make. ``--engines duckdb spark`` adds a run per
engine (``-p engine spark``). The machine's load average is recorded before
and after each run: a figure measured on a busy machine says so.

Results go to ``benchmarks/scaling.json``; the table is printed in Markdown,
ready for the README.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench import BENCH_DIR, BENCH_PARAMS, SIZES, dataset, run_report

#: The sizes the table can have, in customers (``10m`` is ten copies of ``1m``).
SCALING_SIZES = {**SIZES, "10m": 10_000_000}
#: How the big sizes are made from a smaller one: (base size, copies).
REPLICATED = {"10m": ("1m", 10)}


def replicate(source: Path, copies: int, target: Path, temp_directory: Path) -> None:
    """Write ``copies`` copies of the bench log ``source`` to ``target``, each a distinct set of customers.

    Copy ``k`` adds ``1,000,000 * k`` to the customer id and prefixes the
    invoice number with ``k-`` (after the cancellation prefix ``C``), so
    orders stay distinct and cancellations still cancel; DuckDB streams the
    copies to Parquet under a 6 GB memory limit.
    """
    from helpers import sqlclean

    temp_directory.mkdir(parents=True, exist_ok=True)
    con = sqlclean.connect("6GB", temp_directory)
    try:
        copied = con.sql("""SELECT * REPLACE ("Customer ID" + 1000000 * k AS "Customer ID",
                                   regexp_replace(Invoice, '^(C?)', '\\1' || k || '-') AS Invoice)
                            FROM read_parquet($source), range($copies) AS copies(k)""",
                         params={"source": str(source), "copies": copies})
        copied.write_parquet(str(target), compression="zstd")
    finally:
        con.close()


def scaling_dataset(size: str, work: Path) -> Path:
    """The parameter file of the ``size`` log (made once, then reused)."""
    if size not in REPLICATED:
        return dataset(size, work)[1]
    base, copies = REPLICATED[size]
    source, base_params = dataset(base, work)
    target = work / "data" / f"synthetic_{size}.parquet"
    if not target.exists():
        replicate(source, copies, target, work / "tmp")
    as_of = next(line.split(":", 1)[1].strip() for line in base_params.read_text().splitlines()
                 if line.startswith("as_of:"))
    params = work / f"synthetic_{size}.yaml"
    params.write_text(BENCH_PARAMS.format(size=size, customers=SCALING_SIZES[size], as_of=as_of, path=target))
    return params


def measure_size(size: str, engine: str, work: Path) -> dict[str, Any]:
    """One ``python -m helpers.run`` of the ``size`` log on ``engine``, with the load average before and after."""
    params = scaling_dataset(size, work)
    load_before = os.getloadavg()
    result = run_report(params, work / engine, ["-p", "engine", engine])
    return {**result, "size": size, "engine": engine, "customers": SCALING_SIZES[size],
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()]}


def cell(entry: dict[str, Any] | None) -> str:
    """``seconds s / peak MB`` of a stage (or a whole run); ``-`` when not measured.

    >>> cell({"seconds": 12.34, "peak_mb": 850})
    '12.3 s / 850 MB'
    >>> cell(None)
    '-'
    """
    if not entry:
        return "-"
    return f"{entry['seconds']:.1f} s / {entry['peak_mb']:,} MB"


def scaling_table(runs: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: a row per stage (and the whole run), a column per measured (size, engine)."""
    stages = sorted({stage for run in runs for stage in run.get("stages", {})})
    heads = [f"{run['size']} ({run['engine']})" for run in runs]
    lines = ["| stage | " + " | ".join(heads) + " |", "|---" * (len(runs) + 1) + "|"]
    for stage in stages:
        lines.append(f"| {stage} | " + " | ".join(cell(run.get("stages", {}).get(stage)) for run in runs) + " |")
    lines.append("| **whole run** | " + " | ".join(
        ("failed: " + run["error"].splitlines()[-1][:60]) if run.get("error")
        else f"**{cell({'seconds': run['seconds'], 'peak_mb': run['peak_mb']})}**" for run in runs) + " |")
    lines.append("| load average (1 min) before -> after | "
                 + " | ".join(f"{run['load_before'][0]} -> {run['load_after'][0]}" for run in runs) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.scaling``: run the sizes and engines asked for, write the results, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["10k", "100k", "1m"], choices=list(SCALING_SIZES))
    parser.add_argument("--engines", nargs="+", default=["duckdb"], choices=["duckdb", "spark", "auto", "pandas"])
    parser.add_argument("--work", type=Path, default=BENCH_DIR / "work", help="generated data and scratch files")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "scaling.json")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "runs": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        for engine in args.engines:
            run = measure_size(size, engine, args.work)
            results["runs"].append(run)
            print(f"[{size} {engine}] {cell(run)}{' FAILED' if run.get('error') else ''}", flush=True)
            args.out.write_text(json.dumps(results, indent=1, default=str))  # kept if a later size fails
    print(scaling_table(results["runs"]))
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
