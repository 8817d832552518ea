"""The runner executes the stages (notebooks with papermill, or in-process) and publishes a run atomically."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from helpers.catalog import Catalog
from helpers import paths, store
from helpers.config import load_params
from helpers.errors import ConfigError
from helpers.run import StageFailed, available_stages, main
from tests_support import NOTEBOOKS, QUICK, pipeline_run, published, tree_digest

pytestmark = pytest.mark.notebooks
DATA_STAGES = ["01-define-customer-data", "02-collect-sources", "03-clean-integrate", "04-rfm-value-tiers",
               "05-clv-lifetimes", "06-cluster-segments", "07-classify-prospects", "08-segment-report"]
#: How the isolation test runs the pipeline: papermill until every stage has its function, then in-process
#: (``run(..., notebooks=False)``); the suite's switch, :data:`tests_support.NOTEBOOKS`.
ISOLATION_NOTEBOOKS = NOTEBOOKS


def _errors(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [o["ename"] for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_every_notebook_has_a_parameters_cell_with_plain_values_and_no_outputs() -> None:
    for stage in available_stages():
        nb = nbformat.read(paths.NOTEBOOKS_DIR / f"{stage}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), stage
        for stmt in ast.parse(code[0].source).body:  # plain values only: papermill does not recompute derived ones
            assert isinstance(stmt, ast.Assign), f"{stage}: {ast.unparse(stmt)} in the parameters cell"
            ast.literal_eval(stmt.value)
        assert all(not c.get("outputs") for c in code), f"{stage} is committed with outputs"
        assert nb.metadata["kernelspec"]["name"] == "python3"


def test_cdnow_runs_end_to_end(isolated: Path) -> None:
    lines: list[str] = []
    folder = pipeline_run("cdnow.yaml", QUICK, log=lines.append)
    assert folder == paths.reports_dir() / "cdnow" / "1998-06-30"
    main_file = folder / ("report.html" if NOTEBOOKS else "customer_segments.parquet")  # in-process: no HTML
    assert lines[-1] == f"report: {main_file}" and main_file.exists()
    for stage in DATA_STAGES if NOTEBOOKS else []:
        assert _errors(folder / f"{stage}.ipynb") == []
    assert any(line.lstrip().startswith("02-collect-sources") for line in lines)
    cdnow = Catalog.of(load_params("cdnow.yaml"))
    assert cdnow.folder == paths.data_dir() / "processed" / "cdnow" / "1998-06-30"
    quality = cdnow.query("select * from quality_log order by step")
    assert quality["rows_before"].iloc[0] == 69_659 and quality["rows_removed"].sum() == 0
    assert cdnow.query("select count(distinct customer_id) as n from transactions")["n"].item() == 23_570
    dictionary = pd.read_csv(cdnow.path("data_dictionary"))
    assert set(dictionary["table"]) == {"transactions", "customers"}
    customers = cdnow.query("select * from customers")
    assert len(customers) == 23_570 and customers["clv"].notna().all()
    assert set(customers["value_tier"]) == {"platinum", "gold", "iron", "lead"}
    validation = store.json_load(cdnow.path("clv_validation"))
    assert validation["calibration_end"] == "1997-09-30" and validation["holdout"]["actual_total"] > 0
    clusters = cdnow.query("select cluster, count(*) as n from clusters group by 1")
    assert clusters["n"].sum() == 23_570 and clusters["cluster"].str.len().gt(0).all()
    predictions = cdnow.query("select * from predictions")
    assert len(predictions) == 23_570 and predictions["p_high_value"].between(0, 1).all()


def test_online_retail_runs_and_experiments_are_kept_apart(isolated: Path, online_retail_xlsx: Path) -> None:
    scheduled = pipeline_run("online_retail_sample.yaml", QUICK)
    variant = pipeline_run("online_retail_sample.yaml", QUICK | {"cleaning.cancellations": "net"}, experiment="net")
    assert scheduled.name == "2011-12-09" and variant.name == "2011-12-09-net"
    assert "cancellations: net" in (variant / "params.yaml").read_text()
    assert "cancellations: drop" in (scheduled / "params.yaml").read_text()
    netted = Catalog.of(load_params("online_retail_sample.yaml", {"experiment": "net"}))
    assert netted.folder.name == "2011-12-09-net" and netted.folder.is_dir()
    quality = pd.read_csv(netted.path("quality_log"))  # the experiment's own artifacts
    assert quality["rows_before"].iloc[0] - quality["rows_removed"].sum() == quality["rows_after"].iloc[-1]
    assert quality.set_index("rule").loc["cancellations", "rows_modified"] > 0
    for stage in DATA_STAGES if NOTEBOOKS else []:
        assert _errors(variant / f"{stage}.ipynb") == [] and _errors(scheduled / f"{stage}.ipynb") == []
    assert len(netted.query("select * from customers")) > 250
    plain = pd.read_csv(Catalog.of(load_params("online_retail_sample.yaml")).path("quality_log"))
    assert plain.set_index("rule").loc["cancellations", "rows_modified"] == 0  # the scheduled run was not netted


def test_parameter_errors_stop_before_anything_runs(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-f", "params/cdnow.yaml", "-p", "clv.horizon", "12"]) == 2
    assert "unknown parameter 'clv.horizon'" in capsys.readouterr().err
    assert main(["-f", "params/cdnow.yaml", "-p", "as_of", "soon"]) == 2
    assert not paths.reports_dir().exists()
    with pytest.raises(ConfigError, match="unknown stage"):
        available_stages(["09"])
    assert main(["-f", "params/cdnow.yaml", "--experiment", "../x"]) == 2


def test_experiments_failed_reruns_and_partial_runs_leave_the_scheduled_run_byte_identical(isolated: Path) -> None:
    """Every file of the scheduled run (``data/processed/<dataset>/<as_of>/`` and its report folder), hashed
    before and after an ``--experiment`` run, a failed rerun of the scheduled run and a partial run: the same bytes.

    The failed rerun keeps its executed notebooks under ``failed/`` and leaves no staging folder; the partial
    run is ``<as_of>-partial``, with only its own stage's notebook.
    """
    scheduled = pipeline_run("cdnow_sample.yaml", QUICK, notebooks=ISOLATION_NOTEBOOKS)
    artifacts = published("cdnow_sample.yaml").folder
    assert artifacts == paths.data_dir() / "processed" / "cdnow_sample" / "1998-06-30"
    before = {"artifacts": tree_digest(artifacts), "report": tree_digest(scheduled)}
    assert {"customers.duckdb", "transactions.parquet", "customers.parquet", "metrics.json"} <= set(before["artifacts"])

    variant = pipeline_run("cdnow_sample.yaml", QUICK | {"rfm.abc_cuts": "[0.1, 0.3]", "clusters.k": "5"}, experiment="k5",
                           notebooks=ISOLATION_NOTEBOOKS)
    experiment = published("cdnow_sample.yaml", {"experiment": "k5"}).folder
    assert variant.name == experiment.name == "1998-06-30-k5"
    assert tree_digest(experiment)["clusters.parquet"] != before["artifacts"]["clusters.parquet"]  # it did differ
    assert {"artifacts": tree_digest(artifacts), "report": tree_digest(scheduled)} == before, "the experiment"

    with pytest.raises(StageFailed, match=r"stage 02-collect-sources failed.*DataError.*'customer' \(mapped to customer_id\) not found"):
        pipeline_run("cdnow_sample.yaml", {"columns.customer_id": "customer"}, notebooks=ISOLATION_NOTEBOOKS)
    assert {"artifacts": tree_digest(artifacts), "report": tree_digest(scheduled)} == before, "the failed rerun"
    failed = list((paths.reports_dir() / "cdnow_sample" / "failed").iterdir())
    assert len(failed) == 1
    if ISOLATION_NOTEBOOKS:
        assert "DataError" in _errors(failed[0] / "02-collect-sources.ipynb")
    for folder in (artifacts.parent, scheduled.parent):
        leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        assert leftovers == [], f"staging folders left in {folder}: {leftovers}"

    partial = pipeline_run("cdnow_sample.yaml", stages=["04"], notebooks=True)  # one notebook: cheap either way
    assert partial.name == "1998-06-30-partial"
    assert [p.name for p in partial.glob("*.ipynb")] == ["04-rfm-value-tiers.ipynb"]
    assert {"artifacts": tree_digest(artifacts), "report": tree_digest(scheduled)} == before, "the partial run"
