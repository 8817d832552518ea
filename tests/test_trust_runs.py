"""Trust, end to end: planted personal data never reaches reports/, a run killed mid-stage loses nothing.

One data set, built from the CDNOW sample: every customer id is an e-mail address, and the source also has
name, phone and address columns, and one customer spends about 1,000 times the median. It is run three
times into one data and one reports folder: a good run, a run killed (SIGKILL, whole process group) while a
stage is in progress, and a rerun.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import nbformat
import pandas as pd
import pytest
import yaml

from helpers.privacy import pseudonymize
from helpers.sources import resolve_source_path
from tests_support import QUICK_PARAMS, assert_raw_intact, pipeline_run, raw_fingerprint, tree_digest

pytestmark = pytest.mark.notebooks
KEY = "trust-test-key"
WHALE = 17  # the customer whose spend is raised to about 1,000 times the median


def planted_source(folder: Path) -> tuple[Path, pd.DataFrame]:
    """The CDNOW sample as a shop export with personal data; returns the CSV and one row per customer."""
    raw = pd.read_csv(resolve_source_path("lifetimes:CDNOW_sample.txt"), sep=r"\s+", header=None, dtype=str,
                      names=["cust", "sid", "date", "cds", "usd"])
    people = pd.DataFrame({"cust": raw["cust"].unique()})
    n = people.index.to_series()
    people["email"] = [f"person.{i:04d}@example.com" for i in n]
    people["name"] = [f"Testperson Nr{i:04d}" for i in n]
    people["phone"] = [f"+44 20 7946 {i:04d}" for i in n]
    people["address"] = [f"{i} Privacy Lane, Testtown" for i in n]
    lines = raw.merge(people, on="cust")
    spend = lines.assign(usd=lines["usd"].astype(float)).groupby("email")["usd"].sum()
    whale = people.loc[WHALE, "email"]
    factor = 1000 * spend.median() / spend[whale]
    lines.loc[lines["email"] == whale, "usd"] = (lines.loc[lines["email"] == whale, "usd"].astype(float) * factor).round(2).astype(str)
    source = folder / "shop_export.csv"
    lines[["email", "name", "phone", "address", "date", "cds", "usd"]].to_csv(source, index=False)
    return source, people


def planted_params(folder: Path, source: Path) -> Path:
    params = {
        "dataset": "planted", "title": "CDNOW sample with planted personal data", "as_of": "1998-06-30",
        "source": {"kind": "csv", "path": str(source)},
        "columns": {"customer_id": "email", "order_ts": "date", "order_id": None, "amount": "usd", "quantity": "cds"},
        "date_format": "%Y%m%d",
        "cleaning": {"exact_duplicates": False, "non_product_lines": False, "cancellations": "keep",
                     "cancellation_prefix": None, "non_positive_price": False},
        **QUICK_PARAMS,  # what no test here checks: fewer refits, folds and boosting rounds
    }
    file = folder / "planted.yaml"
    file.write_text(yaml.safe_dump(params, sort_keys=False))
    return file


def _wait_for(proc: subprocess.Popen, pattern: str, timeout: float) -> list[str]:
    """Read the run's progress lines until one matches ``pattern`` (a stage has finished)."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip())
        if re.search(pattern, line):
            return seen
    raise AssertionError(f"the run never printed {pattern!r}; it printed {seen}")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("trust")
    source, people = planted_source(root)
    params_file = planted_params(root, source)
    env = {"CIN_DATA_DIR": str(root / "data"), "CIN_REPORTS_DIR": str(root / "reports"), "CIN_PSEUDONYM_KEY": KEY}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        raw_before = raw_fingerprint(root / "data") | {str(source): hashlib.sha256(source.read_bytes()).hexdigest()}
        good = pipeline_run(params_file)  # in-process once the stage functions exist: the rerun has the notebooks
        raw_after_good = raw_fingerprint(root / "data")
        published_before = tree_digest(good)
        # A second run, killed while stage 03 is in progress.
        proc = subprocess.Popen([sys.executable, "-m", "helpers.run", "-f", str(params_file)], env=os.environ | env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            progress = _wait_for(proc, r"^\s+02-collect-sources\s", timeout=300)
            time.sleep(2)  # well inside stage 03 (stage 02 has written the run's first artifacts)
            staging = [p for p in good.parent.iterdir() if ".running-" in p.name]
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        after_kill = {"published": tree_digest(good), "siblings": sorted(p.name for p in good.parent.iterdir())}
        assert_raw_intact(raw_after_good, root / "data")
        rerun_lines: list[str] = []
        rerun = pipeline_run(params_file, log=rerun_lines.append, notebooks=True)  # its notebooks are searched for PII
        yield {"root": root, "source": source, "people": people, "good": good, "rerun": rerun, "env": env,
               "params_file": params_file, "raw_before": raw_before, "published_before": published_before,
               "progress": progress, "staging": staging, "after_kill": after_kill, "returncode": proc.returncode,
               "rerun_lines": rerun_lines}


def test_a_run_killed_mid_stage_leaves_the_last_report_and_the_raw_snapshot_intact(planted: dict) -> None:
    good = planted["good"]
    assert planted["returncode"] == -signal.SIGKILL
    assert len(planted["staging"]) == 1  # the killed run was working in its staging folder
    assert planted["after_kill"]["published"] == planted["published_before"]  # byte for byte
    # nothing half-published: the report folder, its data set's runs log and the killed run's staging folder
    assert planted["after_kill"]["siblings"] == sorted(["1998-06-30", "runs.jsonl", planted["staging"][0].name])


def test_the_next_run_succeeds_and_keeps_the_killed_runs_notebooks(planted: dict) -> None:
    rerun, dataset_dir = planted["rerun"], planted["good"].parent
    assert rerun == planted["good"] and (rerun / "report.html").exists()
    assert any("interrupted" in line for line in planted["rerun_lines"])
    interrupted = list((dataset_dir / "failed").glob("1998-06-30-*-interrupted"))
    assert len(interrupted) == 1
    assert {"01-define-customer-data.ipynb", "02-collect-sources.ipynb"} <= {p.name for p in interrupted[0].iterdir()}
    assert not [p for p in dataset_dir.iterdir() if p.name.startswith(".")]
    assert len(pd.read_parquet(rerun / "customer_segments.parquet")) == 2_357


def test_raw_data_is_unchanged_after_every_run(planted: dict) -> None:
    source = planted["source"]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == planted["raw_before"][str(source)]
    assert_raw_intact({k: v for k, v in planted["raw_before"].items() if k != str(source)}, planted["root"] / "data")
    assert len(list((planted["root"] / "data" / "raw" / "planted").glob("*/manifest.json"))) == 1  # one snapshot, reused


def _text_without_images(file: Path) -> str:
    """A report file's text, embedded images removed (base64 can contain any short digit string by chance)."""
    if file.suffix == ".ipynb":
        try:
            nb = nbformat.read(file, as_version=4)
        except nbformat.reader.NotJSONError:  # the killed run's notebook, cut off while papermill saved it
            return file.read_text(encoding="utf-8", errors="replace")
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                out.get("data", {}).pop("image/png", None)
        return nbformat.writes(nb)
    if file.suffix == ".parquet":
        return pd.read_parquet(file).astype(str).to_csv()
    text = file.read_text(encoding="utf-8")
    return re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", text)


def test_no_planted_personal_data_anywhere_under_reports(planted: dict) -> None:
    people, reports = planted["people"], planted["root"] / "reports"
    files = [p for p in reports.rglob("*") if p.is_file()]
    assert len(files) > 20 and any(p.suffix == ".parquet" for p in files)
    everything = "\n".join(_text_without_images(f) for f in files)
    assert re.search(r"@example\.com|Testperson|Privacy Lane|\+44 20 7946", everything) is None
    assert "customer_key" in everything
    # the customers are there, under their keys
    export = pd.read_parquet(planted["rerun"] / "customer_segments.parquet")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIN_PSEUDONYM_KEY", KEY)
        keys = pseudonymize(people["email"])
    assert set(export["customer_key"]) == set(keys)


def test_personal_columns_never_leave_the_raw_layer(planted: dict) -> None:
    data = planted["root"] / "data"
    databases = sorted((data / "processed" / "planted").glob("*/customers.duckdb"))
    assert databases, "no run database under data/processed/planted/<run>/"
    con = duckdb.connect(str(databases[0]), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()]
        stored = "\n".join(con.execute(f'select * from "{t}"').df().astype(str).to_csv() for t in tables)
    finally:
        con.close()
    files = [p for p in (data / "processed").rglob("*") if p.is_file() and p.suffix != ".duckdb"]
    stored += "\n".join(_text_without_images(p) for p in files if p.suffix in {".parquet", ".csv", ".json"})
    assert re.search(r"Testperson|Privacy Lane|\+44 20 7946", stored) is None
    snapshot = next((data / "raw" / "planted").glob("*/shop_export.csv"))
    assert "Testperson Nr0001" in snapshot.read_text()  # the raw layer keeps the source as it was


def test_the_extreme_spender_is_flagged_in_the_notebook_and_the_metrics(planted: dict) -> None:
    rerun = planted["rerun"]
    metrics = pd.read_json(rerun / "metrics.json", typ="series")
    assert metrics["spend_outliers"] >= 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIN_PSEUDONYM_KEY", KEY)
        whale_key = pseudonymize(planted["people"].loc[[WHALE], "email"]).item()
    notebook = _text_without_images(rerun / "04-rfm-value-tiers.ipynb")
    assert re.search(r"\d+ customer\(s\) spent more than 100 times the median customer \(kept, flagged\)", notebook)
    assert whale_key in notebook
    export = pd.read_parquet(rerun / "customer_segments.parquet").set_index("customer_key")
    assert export.loc[whale_key, "monetary_total"] == export["monetary_total"].max()
    assert export[["clv", "p_alive", "expected_purchases"]].notna().all().all()


def test_raw_ids_only_when_the_parameter_allows_them(planted: dict, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in planted["env"].items():
            mp.setenv(name, value)
        mp.setenv("CIN_REPORTS_DIR", str(tmp_path / "reports"))  # not beside the pseudonymous reports
        folder = pipeline_run(planted["params_file"], {"privacy.raw_ids": "true"}, stages=["08"])
    export = pd.read_parquet(folder / "customer_segments.parquet")
    assert export.columns[:2].tolist() == ["customer_key", "customer_id"]
    assert export["customer_id"].str.endswith("@example.com").all()
    assert "raw_ids: true" in (folder / "params.yaml").read_text()
