"""What a run costs: the resident memory of a process tree, sampled while a stage runs.

The runner (:mod:`helpers.run`) records each stage's seconds and the peak memory of its
process and children (the notebook kernels) in the run manifest and its progress line;
the benchmarks (``benchmarks.measure``) use the same sampler on their child processes.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path


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


def high_water(pid: int, reset: bool = False) -> int:
    """The most resident memory ``pid`` itself has held (Linux's ``VmHWM``), in bytes; 0 where unknown.

    A sampler misses a peak shorter than its interval (at ten million customers stage 08 had
    one 0.5 GB above every sample); the kernel's high-water mark does not. ``reset`` starts
    it again from the current size (``/proc/<pid>/clear_refs``), after reading it; :func:`can_reset`
    says whether that works here.
    """
    try:
        found = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    except OSError:
        return 0
    if reset:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            pass
    return int(found.group(1)) * 1024 if found else 0


def can_reset(pid: int) -> bool:
    """Whether :func:`high_water` of ``pid`` can be read and started again (Linux, a ``/proc`` that allows it)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return high_water(pid) > 0


class PeakMemory:
    """Samples :func:`tree_rss` of ``pid`` every ``interval`` seconds in a thread; ``take()`` returns and resets the peak.

    When ``pid`` is this process (the runner), the peak is also at least its own :func:`high_water`
    mark since the last ``take`` plus what its children (the notebook kernels, sampled only) hold at
    that moment: a spike of the runner between two samples is counted, on top of the kernels (an
    estimate from above when the kernels' memory changed meanwhile). Another process's mark is left
    alone: its own sampler (the runner's, under the benchmark) resets it, so it is sampled only.

    >>> import os
    >>> memory = PeakMemory(os.getpid(), interval=0.01)
    >>> memory.take() > 0, memory.stop() > 0
    (True, True)
    """

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval, self.peak, self._stop = pid, interval, tree_rss(pid), threading.Event()
        self._marks = pid == os.getpid() and can_reset(pid)  # can_reset starts the mark
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop.wait(self.interval)

    def take(self) -> int:
        """The peak since the last ``take`` (or the start), in bytes; the next peak starts from now."""
        peak, self.peak = max(self.peak, tree_rss(self.pid), self._high_water(reset=True)), tree_rss(self.pid)
        return peak

    def _high_water(self, reset: bool = False) -> int:
        """``pid``'s :func:`high_water` mark plus its children's resident memory now (0 when not used)."""
        import psutil

        if not self._marks:
            return 0
        own = high_water(self.pid, reset)
        try:
            current = psutil.Process(self.pid).memory_info().rss
        except psutil.Error:
            return own
        return own + max(0, tree_rss(self.pid) - current) if own else 0

    def stop(self) -> int:
        """Stop sampling; the peak since the last ``take``, in bytes."""
        self._stop.set()
        self._thread.join()
        return max(self.peak, tree_rss(self.pid), self._high_water())


def megabytes(size: int) -> int:
    """Bytes in whole MB (2**20).

    >>> megabytes(3 * 2**20 + 5)
    3
    """
    return round(size / 2**20)


__all__ = ["PeakMemory", "can_reset", "high_water", "megabytes", "tree_rss"]
