"""The benchmarks (``make bench``): outside the ``helpers`` package, run from the project root as ``python -m benchmarks.bench``."""
