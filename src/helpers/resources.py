"""What a run costs: the resident memory of a process tree, sampled while a stage runs.

The runner (:mod:`helpers.run`) records each stage's seconds and the peak memory of its
process and children (the notebook kernels) in the run manifest and its progress line;
the benchmarks (``benchmarks.measure``) use the same sampler on their child processes.
"""

from __future__ import annotations

import threading


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
    """Samples :func:`tree_rss` of ``pid`` every ``interval`` seconds in a thread; ``take()`` returns and resets the peak.

    >>> import os
    >>> memory = PeakMemory(os.getpid(), interval=0.01)
    >>> memory.take() > 0, memory.stop() > 0
    (True, True)
    """

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval, self.peak, self._stop = pid, interval, tree_rss(pid), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop.wait(self.interval)

    def take(self) -> int:
        """The peak since the last ``take`` (or the start), in bytes; the next peak starts from now."""
        peak, self.peak = max(self.peak, tree_rss(self.pid)), tree_rss(self.pid)
        return peak

    def stop(self) -> int:
        """Stop sampling; the peak since the last ``take``, in bytes."""
        self._stop.set()
        self._thread.join()
        return max(self.peak, tree_rss(self.pid))


def megabytes(size: int) -> int:
    """Bytes in whole MB (2**20).

    >>> megabytes(3 * 2**20 + 5)
    3
    """
    return round(size / 2**20)


__all__ = ["PeakMemory", "megabytes", "tree_rss"]
