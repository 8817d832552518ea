"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from helpers import paths
from tests_support import OLIST_DIR, OLIST_TABLES, assert_raw_intact, raw_fingerprint

# Property tests draw the same examples on every run and machine (the suite gives the same answer twice, as the
# project does), and no example database replays a local find: a counterexample found while exploring becomes an
# explicit case in its test. HYPOTHESIS_PROFILE=explore draws at random.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

#: The Online Retail II extract shipped with the project (tracked in git; source and licence in its README).
EXAMPLE_XLSX = paths.PROJECT_ROOT / "data" / "examples" / "online_retail_II_sample.xlsx"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Give the test its own data/ and reports/ folders; afterwards check that no raw data was modified.

    Every run and every collection in the tests goes through here (or through
    :func:`raw_layer_of_the_session`): sources and raw snapshots are hashed
    before, and compared (and snapshots checked against their manifests) after.
    """
    monkeypatch.setenv("CIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CIN_REPORTS_DIR", str(tmp_path / "reports"))
    before = raw_fingerprint(tmp_path / "data")
    yield tmp_path
    assert_raw_intact(before, tmp_path / "data")


@pytest.fixture()
def one_openmp_thread() -> Iterator[None]:
    """Fit on one OpenMP thread, as the stage functions do (helpers.clustering.one_thread): on a shared 2-core
    machine scikit-learn's spinning OpenMP threads make fits called directly many times slower. Used by the
    test files that call the fitting functions directly (``pytestmark = pytest.mark.usefixtures(...)``)."""
    from helpers.clustering import one_thread

    with one_thread():
        yield


@pytest.fixture(scope="session", autouse=True)
def raw_layer_of_the_session() -> Iterator[None]:
    """The same check for the session's data folder (notebooks run by nbval, module fixtures)."""
    data_dir = paths.data_dir()
    before = raw_fingerprint(data_dir)
    yield
    assert_raw_intact(before, data_dir)


@pytest.fixture(scope="session")
def online_retail_xlsx() -> Path:
    """The Online Retail II extract shipped in ``data/examples/`` (every clone has it: no skip)."""
    assert EXAMPLE_XLSX.is_file(), f"{EXAMPLE_XLSX} is missing; it is tracked in git under data/examples/"
    return EXAMPLE_XLSX


@pytest.fixture(scope="session")
def olist_tables() -> Path:
    """The shared Olist tables (three CSVs, beside the project: their licence keeps them out of the repository).

    Skipped, loudly (``-ra`` lists the reason), where they are absent: a clone without ``../shared`` still
    tests everything else.
    """
    missing = [f for f in OLIST_TABLES.values() if not (OLIST_DIR / f).exists()]
    if missing:
        pytest.skip(f"{OLIST_DIR} lacks {', '.join(missing)}: the Olist checks did not run "
                    "(the shared data folder sits beside the project)")
    return OLIST_DIR


#: The test files that take longest (pipeline runs, papermill runs, Spark), longest first: pytest-xdist hands out
#: whole files (``--dist loadfile``), each to the worker that runs out of work first, so started longest first the
#: two workers finish together (the short files fill the end). Seconds per file in one worker of ``make test`` on
#: this 2-core machine (load average 3-4): report 169, regimes 151, spark 121, trust_runs 85, notebooks 82, run 74,
#: speed 106 before its bench clustered on one thread (about 70 after).
SLOWEST_FIRST = ("test_report.py", "test_regimes.py", "test_spark.py", "test_trust_runs.py", "test_notebooks.py",
                 "test_run.py", "test_speed.py")


def pytest_configure(config: pytest.Config) -> None:
    """Keep the collection order (below) under pytest-xdist: from 3.x its ``--loadscope-reorder`` (on by default)
    hands out the files with the most tests first, which sent ``test_notebooks.py`` (one test, a minute) last."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collect the slowest files first (the order inside a file is kept)."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
