"""Measuring a benchmark step: wall time and the peak memory of a fresh process and its children."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any


#: How a step's process starts: ``spawn`` (a fresh interpreter: what the bench measures). The tests use
#: ``forkserver``, whose children are forks of one server that imported :data:`PRELOAD` once.
START_METHOD = "spawn"
PRELOAD = ["pandas", "lifetimes", "sklearn.cluster", "duckdb", "benchmarks.bench"]


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes (0 once it is gone)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class PeakMemory:
    """Samples :func:`tree_rss` of ``pid`` every ``interval`` seconds in a thread; ``take()`` returns and resets the peak."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval, self.peak, self._stop = pid, interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            time.sleep(self.interval)

    def take(self) -> int:
        """The peak since the last ``take`` (or the start), in bytes; the next peak starts from now."""
        peak, self.peak = self.peak, tree_rss(self.pid)
        return peak

    def stop(self) -> int:
        """Stop sampling; the peak since the last ``take``, in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak


def _child(fn: Callable[..., dict[str, Any]], kwargs: dict[str, Any], queue: Any) -> None:
    warnings.simplefilter("ignore")
    try:
        queue.put(("ok", fn(**kwargs)))
    except Exception as exc:  # reported by the parent with the step's name
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def measure(fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(**kwargs)`` in a fresh process; its result plus ``peak_mb`` (process tree) and ``wall_s``.

    ``fn`` times its own work (``seconds``), so interpreter start and imports
    are not counted; ``peak_mb`` includes them (about 200 MB).
    """
    ctx = mp.get_context(START_METHOD)
    if START_METHOD == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, kwargs, queue))
    started = time.perf_counter()
    proc.start()
    memory = PeakMemory(proc.pid)
    status, result = queue.get()
    proc.join()
    peak = memory.stop()
    if status == "error":
        result = {"error": result}
    return {**result, "peak_mb": round(peak / 2**20), "wall_s": round(time.perf_counter() - started, 2)}
