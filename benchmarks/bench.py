"""Benchmarks: how fast the pipeline is, and how much faster than the plain way, measured in one run.

``make bench`` (``python -m benchmarks.bench``, from the project root) generates synthetic logs with
:mod:`helpers.synth` (10 thousand and 100 thousand customers by default;
``--sizes 1m`` for a million, about 11 million lines) and times each step in
a fresh process while sampling the memory of that process and its children:

==================  =========================================  ==========================================
step                plain way                                  this project
==================  =========================================  ==========================================
clean + summary     pandas: read, map, 7 rules                 what ``make report`` does: stages 02 and
                    (:mod:`helpers.cleaning`), lifetimes'      03 (rules in DuckDB), stage 04's purchase
                    ``summary_data_from_transaction_data``     days in SQL, :func:`helpers.summary.btyd_summary`
BG/NBD, Pareto/NBD  lifetimes fit, one row per customer        weighted fit on distinct (f, r, T) rows
                    (and PyMC-Marketing's MAP fits, in their   from starting values fitted on a sample
                    own environment: ``make bench-peer-env``)
CLV + P(alive)      lifetimes' ``customer_lifetime_value``     :func:`helpers.clv.lifetime_value` and
                    and ``conditional_probability_alive``      :func:`helpers.clv.p_alive`, once per
                                                               distinct row
holdout draws       lifetimes' ``beta_geometric_nbd_model``    :func:`helpers.clv.models.simulate.bgnbd`
                    on a 20k sample (a loop per customer)      (vectorised), same sample and fit
intervals           the point estimates (expected purchases,   :func:`helpers.clv.intervals.customer_intervals`
                    P(alive), CLV) of the same fit, in the     (80%, 95%; delta method, per distinct row)
                    same process
clustering          -                                          :mod:`helpers.clustering` (mini-batch
                                                               above 200k customers)
report              -                                          ``python -m helpers.run`` (``--report``),
                                                               with the time of each stage
==================  =========================================  ==========================================

Each ratio is plain time / fast time from the same run on the same machine,
and each comes with the check that the answers agree (largest relative
difference); the intervals' ratio is their cost over the point estimates'
(``intervals_over_point``: Hessians + intervals / point seconds, same fit,
same process; :mod:`benchmarks.steps_clv`); ``fit_<model>_peer`` is PyMC-Marketing's MAP seconds
(default priors) over ours on the same summary, with its parameters' differences from ours
with its default priors and with flat ones (:mod:`benchmarks.peer_pymc`). Results go to
``benchmarks/results.json`` and a table is printed.
``--out-of-core N`` replicates the 1M log to N million lines, cleans it in
DuckDB under a 6 GB memory limit and groups it into purchase days in SQL.

The benchmark lives outside the ``helpers`` package (it is not part of the
pipeline) and uses only the package's public functions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.measure import PeakMemory, measure
from benchmarks.results import compare, relative_difference, table
from benchmarks.steps_clv import PEER_PYTHON, plain_fit, step_clv, step_fit, step_intervals, step_peer, step_simulate

__all__ = ["compare", "measure", "plain_fit", "relative_difference", "step_clv", "step_fit", "step_intervals",
           "table"]  # bench.table(...), bench.plain_fit(...) and friends, as before

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
BENCH_DIR = Path(__file__).resolve().parent
BENCH_PARAMS = """\
dataset: synthetic_{size}
title: Synthetic BG/NBD log ({customers:,} customers, CDNOW-like parameters)
as_of: {as_of}
source: {{kind: parquet, path: {path}}}
columns: {{customer_id: Customer ID, order_id: Invoice, order_ts: InvoiceDate, amount: null, quantity: Quantity,
  unit_price: Price, country: Country, product_code: StockCode, description: Description}}
cleaning: {{exact_duplicates: true, non_product_lines: true, cancellations: drop, cancellation_prefix: C,
  non_positive_price: true}}
"""


# ---------------------------------------------------------------------------
# the steps (each runs in its own process)


def _params(params_file: str) -> Any:
    """The bench data set's parameters."""
    from helpers.config import load_params

    return load_params(params_file)


def step_plain_clean_summary(params_file: str, out: str) -> dict[str, Any]:
    """pandas read + map, the pandas cleaning rules, lifetimes' summary (daily)."""
    from lifetimes.utils import summary_data_from_transaction_data

    from helpers import cleaning, sources

    params = _params(params_file)
    t0 = time.perf_counter()
    raw, _ = sources.read_snapshot(params.source, Path(params.source.path))
    collected = sources.map_columns(raw, params.columns, params.date_format, params.source.path)
    del raw
    t1 = time.perf_counter()
    clean, quality = cleaning.clean_transactions(collected, params.cleaning, params.as_of)
    del collected
    t2 = time.perf_counter()
    summary = summary_data_from_transaction_data(clean, "customer_id", "order_ts", "amount", freq="D",
                                                 observation_period_end=pd.Timestamp(params.as_of))
    t3 = time.perf_counter()
    summary.index = summary.index.astype(str)
    summary.sort_index().to_parquet(out)
    return {"seconds": round(t3 - t0, 3), "ingest_s": round(t1 - t0, 3), "clean_s": round(t2 - t1, 3),
            "summary_s": round(t3 - t2, 3), "lines_in": int(quality["rows_before"].iloc[0]),
            "lines_clean": int(len(clean)), "customers": int(len(summary))}


#: The Spark session of the bench's ``engine: spark`` step: this machine's two cores, 4 GB for the JVM.
BENCH_SPARK = {"master": "local[2]", "config": {"spark.driver.memory": "4g"}}


def step_pipeline_clean_summary(params_file: str, out: str, work: str, customers_out: str | None = None,
                                engine: str | None = None) -> dict[str, Any]:
    """The path ``make report`` takes: stages 02 and 03 (:func:`helpers.stages.run_stage`) on a run catalog under
    ``work``, stage 04's purchase days in SQL, stage 05's BTYD summary of them (daily, as lifetimes' ``freq="D"``);
    ``customers_out`` gets stage 04's customer table (untimed, for the clustering step). ``engine: spark`` runs
    stages 02-04's SQL on Spark (:data:`BENCH_SPARK`); the JVM's start is timed apart (``spark_start_s``)."""
    os.environ["CIN_DATA_DIR"] = str(Path(work) / "data")  # the source's snapshot: under the bench's work folder
    from helpers import stages, summary
    from helpers.catalog import Catalog

    params = _params(params_file)
    extra: dict[str, Any] = {}
    if engine == "spark":
        from helpers import sparkengine

        params = params.model_validate({**params.model_dump(), "engine": "spark", "spark": BENCH_SPARK})
        started = time.perf_counter()
        sparkengine.session(params.spark)
        extra["spark_start_s"] = round(time.perf_counter() - started, 3)
    catalog = Catalog(params.dataset, params.as_of.isoformat(), Path(work) / "processed" / params.dataset)
    t0 = time.perf_counter()
    stages.run_stage("02-collect-sources", params, catalog)
    t1 = time.perf_counter()
    cleaned = stages.run_stage("03-clean-integrate", params, catalog)
    t2 = time.perf_counter()
    summary.write_purchase_days(catalog.path("transactions"), params.as_of, catalog.path("purchase_days"),
                                params.spark if engine == "spark" else None)
    days = summary.read_purchase_days(catalog, ["amount"])
    btyd = summary.btyd_summary(days, params.as_of, "D")
    t3 = time.perf_counter()
    btyd.to_parquet(out)
    if customers_out:
        summary.customer_table(days, params.as_of).to_parquet(customers_out)
    return {"seconds": round(t3 - t0, 3), "ingest_s": round(t1 - t0, 3), "clean_s": round(t2 - t1, 3),
            "summary_s": round(t3 - t2, 3), "engine": cleaned.engine, "lines_in": cleaned.rows_in,
            "lines_clean": cleaned.rows_out, "customers": int(len(btyd)), **extra}


def step_out_of_core(params_file: str, out: str, temp_directory: str, memory_limit: str = "6GB") -> dict[str, Any]:
    """DuckDB clean straight from the Parquet file (:mod:`helpers.sqlclean`), then stage 04's purchase days in SQL
    (:func:`helpers.summary.write_purchase_days`, into ``out``): nothing of the lines enters pandas."""
    from helpers import sqlclean, summary
    from helpers.cleaning.engine import COLLECTED_ORDER, clean_select

    params, tmp = _params(params_file), Path(temp_directory)
    t0 = time.perf_counter()
    con = sqlclean.connect(memory_limit, tmp)
    try:
        quality = sqlclean.clean_lines(con, params, Path(params.source.path))
        lines = sqlclean.copy_to(con, clean_select(con, COLLECTED_ORDER), tmp / "ooc_lines.parquet")  # as stage 03
        con.close()  # the purchase days get the memory
        con = sqlclean.connect(memory_limit, tmp)
        t1 = time.perf_counter()
        summary.write_purchase_days(lines, params.as_of, Path(out))
        t2 = time.perf_counter()
        customers, days = con.execute("SELECT count(DISTINCT customer_id), count(*) FROM read_parquet(?)",
                                      [out]).fetchone()
    finally:
        con.close()
    return {"seconds": round(t2 - t0, 3), "clean_s": round(t1 - t0, 3), "summary_s": round(t2 - t1, 3),
            "lines_in": int(quality["rows_before"].iloc[0]), "lines_clean": int(quality["rows_after"].iloc[-1]),
            "purchase_days": int(days), "customers": int(customers)}


def step_cluster(customers_file: str) -> dict[str, Any]:
    """Stage 06's work on every customer: features, k chosen on a sample, k-means and Gaussian mixture, on one
    OpenMP/BLAS thread as stage 06 fits (:func:`helpers.clustering.one_thread`; with the spinning threads the
    1,500 customers of the suite's bench took 2.9-7.7 s instead of 0.3-0.5 s beside a busy process)."""
    from helpers import clustering

    customers = pd.read_parquet(customers_file)
    t0 = time.perf_counter()
    features = ["recency_days", "frequency", "monetary_total", "tenure_days"]
    with clustering.one_thread():
        x = clustering.feature_matrix(customers, features, ["frequency", "monetary_total"])
        scan = clustering.scan_k(x, 2, 6)
        k = clustering.best_k(scan)
        km = clustering.fit_kmeans(x, k, customers["monetary_total"])
        gm = clustering.fit_gmm(x, k, customers["monetary_total"])
    from sklearn.metrics import adjusted_rand_score

    return {"seconds": round(time.perf_counter() - t0, 3), "k": k, "kmeans_vs_gmm_ari": round(adjusted_rand_score(km, gm), 3)}


# ---------------------------------------------------------------------------
# the run


def dataset(size: str, work: Path) -> tuple[Path, Path]:
    """The synthetic log of ``size`` (generated once, then reused) and its parameter file."""
    from helpers import synth

    customers = SIZES[size]
    design = synth.Design(customers)
    data = work / "data" / f"synthetic_{size}.parquet"
    if not data.exists():
        synth.write_log(design, data)
    params = work / f"synthetic_{size}.yaml"
    params.write_text(BENCH_PARAMS.format(size=size, customers=customers, as_of=design.as_of, path=data))
    return data, params


#: The runner's progress line of a finished stage ("  05-clv-lifetimes   35.1s  peak 1,250 MB") and its last line
#: ("done in 61.2s: ...").
STAGE_LINE = re.compile(r"\s+(\d\d-[\w-]+)\s+([\d.]+)s(?:\s+peak ([\d,]+) MB)?$")
DONE_LINE = re.compile(r"done in ([\d.]+)s: ")


def stage_entry(hit: re.Match, sampled_mb: int) -> dict[str, float]:
    """A stage's seconds and peak MB from its progress line (:data:`STAGE_LINE`) and the memory sampled meanwhile.

    The peak is the larger of the two figures: two stages side by side end close together, so the
    second's sampling window is short, and the runner prints the pair's peak on both lines.

    >>> stage_entry(STAGE_LINE.match("  07-classify-prospects   213.7s  peak 10,075 MB"), 443)
    {'seconds': 213.7, 'peak_mb': 10075}
    >>> stage_entry(STAGE_LINE.match("  01-define-customer-data   2.7s"), 646)
    {'seconds': 2.7, 'peak_mb': 646}
    """
    return {"seconds": float(hit[2]), "peak_mb": max(sampled_mb, int(hit[3].replace(",", "")) if hit[3] else 0)}


def run_report(params_file: Path, work: Path, args: Sequence[str] = ()) -> dict[str, Any]:
    """``python -m helpers.run`` (plus ``args``) on the bench data set: wall time and peak memory per stage and in all.

    ``stages`` holds each stage's seconds as the runner printed them and the peak memory while it ran
    (:func:`stage_entry`);
    ``runner_seconds`` is the runner's own total ("done in"), ``printed`` what it printed.
    """
    env = {**os.environ, "CIN_DATA_DIR": str(work / "pipeline" / "data"),
           "CIN_REPORTS_DIR": str(work / "pipeline" / "reports")}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "helpers.run", "-f", str(params_file), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    memory = PeakMemory(proc.pid)
    stages: dict[str, dict[str, float]] = {}
    overall, lines, total = 0, [], None
    for line in proc.stdout:
        lines.append(line.rstrip())
        if hit := STAGE_LINE.match(line.rstrip()):
            peak = memory.take()
            overall = max(overall, peak)
            stages[hit[1]] = stage_entry(hit, round(peak / 2**20))
        elif done := DONE_LINE.match(line):
            total = float(done[1])
    proc.wait()
    overall = max(overall, memory.stop())
    result = {"seconds": round(time.perf_counter() - started, 1), "runner_seconds": total,
              "peak_mb": round(overall / 2**20), "stages": stages, "printed": lines}
    if proc.returncode:
        result["error"] = "\n".join(lines[-5:])
    return result


def bench_size(size: str, work: Path, report: bool, log: Callable[[str], None], spark: bool = False) -> dict[str, Any]:
    """Every step for one size; ratios and agreement checks."""
    t0 = time.perf_counter()
    data, params_file = dataset(size, work)
    log(f"[{size}] data {data} ({time.perf_counter() - t0:.0f}s)")
    tmp = work / "tmp" / size
    tmp.mkdir(parents=True, exist_ok=True)
    files = {k: str(tmp / f"{k}.parquet") for k in ("plain", "fast", "customers", "clv_plain", "clv_fast",
                                                    "intervals", "spark")}
    steps: dict[str, Any] = {}

    def step(name: str, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        steps[name] = measure(fn, **kwargs)
        shown = {k: v for k, v in steps[name].items() if k in ("seconds", "peak_mb", "converged", "error",
                                                                        "skipped")}
        log(f"[{size}] {name:<26} {shown}")
        return steps[name]

    step("clean_summary_plain", step_plain_clean_summary, params_file=str(params_file), out=files["plain"])
    step("clean_summary_pipeline", step_pipeline_clean_summary, params_file=str(params_file), out=files["fast"],
         work=str(tmp / "pipeline"), customers_out=files["customers"])
    if spark:
        step("clean_summary_spark", step_pipeline_clean_summary, params_file=str(params_file), out=files["spark"],
             work=str(tmp / "spark"), engine="spark")
    for model in ("bgnbd", "pareto"):
        step(f"fit_{model}_plain", step_fit, summary_file=files["fast"], model=model, weighted=False)
        step(f"fit_{model}_fast", step_fit, summary_file=files["fast"], model=model, weighted=True)
    step("fit_peer_pymc", step_peer, summary_file=files["fast"], out=str(tmp / "peer"), python=str(PEER_PYTHON))
    step("fit_bgnbd_plain_weeks", step_fit, summary_file=files["fast"], model="bgnbd", weighted=False, unit_days=7.0)
    step("fit_bgnbd_fast_weeks", step_fit, summary_file=files["fast"], model="bgnbd", weighted=True, unit_days=7.0)
    bg = steps["fit_bgnbd_fast"]["params"]
    step("clv_palive_plain", step_clv, summary_file=files["fast"], bg_params=bg, fast=False, out=files["clv_plain"])
    step("clv_palive_fast", step_clv, summary_file=files["fast"], bg_params=bg, fast=True, out=files["clv_fast"])
    step("simulate_plain", step_simulate, summary_file=files["fast"], bg_params=bg, fast=False)
    step("simulate_fast", step_simulate, summary_file=files["fast"], bg_params=bg, fast=True)
    step("intervals_vs_point", step_intervals, summary_file=files["fast"], out=files["intervals"])
    step("clustering", step_cluster, customers_file=files["customers"])
    if report:
        steps["report"] = run_report(params_file, work)
        log(f"[{size}] report {steps['report']['seconds']}s, peak {steps['report']['peak_mb']} MB")
    return {"customers": SIZES[size], "steps": steps, **compare(steps, files)}


def out_of_core(million_lines: float, work: Path, log: Callable[[str], None], base: str = "1m") -> dict[str, Any]:
    """Replicate the ``base`` log to about ``million_lines`` million lines and clean + summarise it in DuckDB.

    Each copy shifts the customer ids and prefixes the invoice numbers, so the
    copies are distinct customers; nothing of the lines enters pandas.
    """
    source, _ = dataset(base, work)
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    name = f"synthetic_{base}_x_{million_lines:g}m_lines".replace(".", "p")
    target = work / "data" / f"{name}.parquet"
    if not target.exists():
        import duckdb

        from benchmarks.scaling import replicate

        lines = duckdb.sql(f"SELECT count(*) FROM read_parquet('{source}')").fetchall()[0][0]
        replicate(source, max(1, round(million_lines * 1e6 / lines)), target, work / "tmp")
    params = work / f"{name}.yaml"
    params.write_text(BENCH_PARAMS.format(size=name.removeprefix("synthetic_"), customers=0,
                                          as_of=dt.date(2022, 6, 30), path=target))
    result = measure(step_out_of_core, params_file=str(params), out=str(work / "tmp" / "ooc_purchase_days.parquet"),
                     temp_directory=str(work / "tmp"))
    log(f"[out of core] {result}")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.bench``: run the sizes asked for, write the results, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=["10k", "100k"], choices=list(SIZES),
                        help="customer counts to run (none: only --out-of-core)")
    parser.add_argument("--report", action="store_true", help="also time `python -m helpers.run` on each size")
    parser.add_argument("--spark", action="store_true", help="also time stages 02-04 with engine: spark (local[2])")
    parser.add_argument("--out-of-core", type=float, metavar="MILLION_LINES",
                        help="also clean and summarise this many million lines (copies of the 1M log) in DuckDB")
    parser.add_argument("--work", type=Path, default=BENCH_DIR / "work", help="generated data and scratch files")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results.json")
    args = parser.parse_args(argv)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "sizes": {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        results["sizes"][size] = bench_size(size, args.work, args.report, log, args.spark)
        args.out.write_text(json.dumps(results, indent=1, default=str))  # kept if a later size fails
    if args.out_of_core:
        results["out_of_core"] = out_of_core(args.out_of_core, args.work, log)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(table(results))
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
