"""The example data a README command uses ships with the repository, with its source and licence."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import paths
from helpers.config import load_params
from helpers.sources import resolve_source_path

EXAMPLES = paths.PROJECT_ROOT / "data" / "examples"


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("git") is None or not (paths.PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run(["git", *args], cwd=paths.PROJECT_ROOT, capture_output=True, text=True, timeout=30)


def test_the_online_retail_extract_is_tracked_and_not_ignored() -> None:
    tracked = _git("ls-files", "data/examples").stdout.split()
    assert {"data/examples/online_retail_II_sample.xlsx", "data/examples/README.md"} <= set(tracked)
    ignored = _git("check-ignore", "--no-index", "data/examples/online_retail_II_sample.xlsx", "data/examples/new.csv")
    assert ignored.returncode == 1, f".gitignore ignores shipped example data: {ignored.stdout}"


def test_the_examples_readme_names_source_licence_and_checksum() -> None:
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for needed in ("Online Retail II", "UCI Machine Learning Repository", "Chen, D. (2012)", "10.24432/C5CG6D",
                   "CC BY 4.0", "34,766", "262 customers", "two sheets"):
        assert needed in text, needed
    digest = hashlib.sha256((EXAMPLES / "online_retail_II_sample.xlsx").read_bytes()).hexdigest()
    assert re.search(r"sha256: `([0-9a-f]{64})`", text).group(1) == digest


def test_the_online_retail_parameter_file_reads_the_shipped_copy() -> None:
    params = load_params("online_retail_sample.yaml")
    source = resolve_source_path(params.source.path)
    assert source == EXAMPLES / "online_retail_II_sample.xlsx"
    assert Path(params.source.path).parts[0] != ".."  # nothing outside the clone
