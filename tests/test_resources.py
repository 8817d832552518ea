"""helpers.resources: a peak shorter than the sampler's interval is still counted (the kernel's high-water mark)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from helpers.resources import PeakMemory, high_water


@contextlib.contextmanager
def _child(code: str) -> Iterator[subprocess.Popen]:
    """A Python child that runs ``code``, then waits (killed on exit); entered once ``code`` has run."""
    child = subprocess.Popen([sys.executable, "-c", f"import sys, time; {code}; print(1); sys.stdout.flush(); "
                              "time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"1"
        yield child
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM and clear_refs are Linux's")
def test_a_peak_between_two_samples_is_counted_and_the_next_stage_starts_afresh() -> None:
    # a child holds memory too (a notebook kernel; under pytest-xdist, a Spark JVM): the spike comes on top of it
    with _child("x = bytearray(500_000_000)"):
        memory = PeakMemory(os.getpid(), interval=60)  # no sample will fall inside the spike
        floor = memory.take()
        assert floor > 450 * 2**20  # the child's memory is counted
        spike = np.ones(50_000_000)  # 400 MB, touched
        spike[:] = 2.0
        del spike
        first = memory.take()
        assert first - floor > 350 * 2**20
        assert memory.take() < first - 300 * 2**20  # reset: the spike belongs to the first measurement only
        assert high_water(os.getpid()) > 0 and high_water(-1) == 0
        memory.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM and clear_refs are Linux's")
def test_watching_another_process_leaves_its_high_water_mark_alone() -> None:
    # the benchmark samples the runner, whose own PeakMemory reads and resets its mark per stage: a second
    # reader resetting it too would take the runner's spikes away from the runner's stage lines
    with _child("x = bytearray(300_000_000); del x") as child:
        memory = PeakMemory(child.pid, interval=60)
        memory.take()
        memory.stop()
        assert high_water(child.pid) > 280 * 2**20  # still the child's own


def _allocate_and_return() -> dict[str, int]:
    block = np.ones(40 * 2**20 // 8)  # 40 MB, freed before the step ends
    return {"n": int(block.size)}


class _NeverSamples:
    """A sampler that sees nothing: as when a step ends before its first sample."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        pass

    def stop(self) -> int:
        return 0


def test_a_benchmark_step_too_short_to_sample_still_has_its_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import measure

    monkeypatch.setattr(measure, "PeakMemory", _NeverSamples)
    monkeypatch.setattr(measure, "START_METHOD", "forkserver")
    result = measure.measure(_allocate_and_return)
    assert result["n"] == 40 * 2**20 // 8
    assert result["peak_mb"] >= 40  # the child's own high-water mark, reported as it ended
