"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import paths

SHARED_XLSX = paths.PROJECT_ROOT.parent / "shared" / "data" / "online_retail_II_sample.xlsx"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give the test its own data/ and reports/ folders."""
    monkeypatch.setenv("CIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CIN_REPORTS_DIR", str(tmp_path / "reports"))
    return tmp_path


@pytest.fixture(scope="session")
def online_retail_xlsx() -> Path:
    """The shared Online Retail II extract. Required in CI; skipped elsewhere if absent."""
    if not SHARED_XLSX.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED_XLSX} is missing; CI must have ../shared/data beside the clone")
        pytest.skip(f"{SHARED_XLSX} not found (the shared data folder sits beside the project)")
    return SHARED_XLSX
