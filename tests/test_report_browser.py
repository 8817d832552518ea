"""The HTML report opens in a real browser (headless Chromium) with no console errors and no network."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebooks

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--log-level=0"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (make system-deps)")
        pytest.skip("chromium is not installed (make system-deps installs it)")
    return found


def test_report_renders_in_chromium_without_console_errors(isolated: Path, tmp_path: Path) -> None:
    from tests_support import small_report

    browser = chromium()
    html = small_report()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", html.as_uri()],
                             capture_output=True, text=True, timeout=120)
    assert "Customer identification report" in dom.stdout
    assert dom.stdout.count("data:image/png;base64") >= 3
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    assert "net::ERR" not in dom.stderr  # nothing fetched from the network
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,2400",
                        f"--screenshot={shot}", html.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000  # a page with tables and plots, not a blank one
