"""Measuring a benchmark step: wall time and the peak memory of a fresh process and its children."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

from helpers.resources import PeakMemory, high_water, tree_rss  # noqa: F401  (the benchmarks' names for them)


#: How a step's process starts: ``spawn`` (a fresh interpreter: what the bench measures). The tests use
#: ``forkserver``, whose children are forks of one server that imported :data:`PRELOAD` once.
START_METHOD = "spawn"
PRELOAD = ["pandas", "lifetimes", "sklearn.cluster", "duckdb", "benchmarks.bench"]


def _child(fn: Callable[..., dict[str, Any]], kwargs: dict[str, Any], queue: Any) -> None:
    warnings.simplefilter("ignore")
    try:
        status, result = "ok", fn(**kwargs)
    except Exception as exc:  # reported by the parent with the step's name
        status, result = "error", f"{type(exc).__name__}: {exc}"
    queue.put((status, result, high_water(os.getpid())))  # the step's own peak, however short it was


def measure(fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(**kwargs)`` in a fresh process; its result plus ``peak_mb`` (process tree) and ``wall_s``.

    ``fn`` times its own work (``seconds``), so interpreter start and imports
    are not counted; ``peak_mb`` includes them (about 200 MB). ``peak_mb`` is the larger of the
    sampled process tree and the child's own high-water mark, which it reports as it ends: a step
    that ends before the first sample (a skipped step, under ``forkserver``) still has its memory.
    """
    ctx = mp.get_context(START_METHOD)
    if START_METHOD == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, kwargs, queue))
    started = time.perf_counter()
    proc.start()
    memory = PeakMemory(proc.pid, interval=0.02)  # the processes a step starts are only sampled: often
    status, result, own_peak = queue.get()
    proc.join()
    peak = max(memory.stop(), own_peak)
    if status == "error":
        result = {"error": result}
    return {**result, "peak_mb": round(peak / 2**20), "wall_s": round(time.perf_counter() - started, 2)}
