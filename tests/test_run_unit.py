"""The runner's pieces that need no notebook run: the example customer's key, the quiet kernel shutdown, the suite's switch."""

from __future__ import annotations

import asyncio
import signal

import pandas as pd
import pytest

from helpers.config import load_params
from helpers.privacy import pseudonymize
from helpers.run import RAW_EXAMPLE_WARNING, pseudonymous_example, quiet_kernel_manager


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIN_PSEUDONYM_KEY", "unit-key")


def test_a_raw_example_customer_becomes_its_key_with_one_warning(key: None, capsys: pytest.CaptureFixture[str]) -> None:
    params = pseudonymous_example(load_params("online_retail_sample.yaml", {"clv.example_customer": "' 12417.0'"}))
    assert params.clv.example_customer == pseudonymize(pd.Series(["12417"])).item()  # normalised as stage 03 does
    assert capsys.readouterr().err.splitlines() == [f"warning: {RAW_EXAMPLE_WARNING}"]
    assert "12417" not in params.model_dump_json() and params.dataset == "online_retail_sample"


def test_ids_are_hashed_as_given_when_normalising_is_off(key: None) -> None:
    params = load_params("online_retail_sample.yaml", {"clv.example_customer": "'12417.0'",
                                                       "cleaning.normalise_ids": "false"})
    assert pseudonymous_example(params).clv.example_customer == pseudonymize(pd.Series(["12417.0"])).item()


def test_a_key_or_no_example_is_left_alone(key: None, capsys: pytest.CaptureFixture[str]) -> None:
    as_key = pseudonymize(pd.Series(["12417"])).item()
    params = load_params("online_retail_sample.yaml", {"clv.example_customer": as_key})
    assert pseudonymous_example(params) is params
    for unset in (load_params("online_retail_sample.yaml"),
                  load_params("online_retail_sample.yaml", {"clv.example_customer": "''"})):
        assert pseudonymous_example(unset) is unset
    assert capsys.readouterr().err == ""


def _signals_sent(manager_class: type, shutting_down: bool) -> list[int]:
    """The signals ``_async_interrupt_kernel`` sends to a (pretend) running kernel."""
    sent: list[int] = []

    class Provisioner:  # stands in for the kernel process: records signals instead of sending them
        has_process = True

        async def send_signal(self, signum: int) -> None:
            sent.append(signum)

    manager = manager_class(kernel_name="python3")
    manager.provisioner = Provisioner()
    manager.kernel_spec.interrupt_mode = "signal"
    manager.shutting_down = shutting_down
    asyncio.run(manager._async_interrupt_kernel())
    return sent


def test_the_kernel_is_not_interrupted_while_it_is_shut_down() -> None:
    from jupyter_client import AsyncKernelManager

    assert _signals_sent(AsyncKernelManager, shutting_down=True) == [signal.SIGINT]  # the cause of the console noise
    assert _signals_sent(quiet_kernel_manager(), shutting_down=True) == []
    assert _signals_sent(quiet_kernel_manager(), shutting_down=False) == [signal.SIGINT]  # other interrupts still work


def test_what_a_kernel_writes_to_its_stderr_goes_to_the_runs_log_not_the_console(tmp_path, capfd) -> None:  # noqa: ANN001
    import nbformat
    import papermill as pm

    notebook = tmp_path / "writes.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nos.write(2, b'Assertion failed: planted (src/signaler.cpp:238)\\n')")]), notebook)
    log = tmp_path / "kernels-stderr.log"
    pm.execute_notebook(str(notebook), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                        kernel_manager_class=quiet_kernel_manager(str(log)))
    assert "planted" in log.read_text()
    assert "planted" not in capfd.readouterr().err


def test_the_suites_switch_goes_in_process_only_when_every_stage_has_its_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests_support
    from helpers import stages

    monkeypatch.setattr(stages, "STAGE_FUNCTIONS", {"05-clv-lifetimes": "helpers.stages.value:value"})
    assert tests_support.stage_functions_ready()
    monkeypatch.setitem(stages.STAGE_FUNCTIONS, "06-cluster-segments", "helpers.stages.no_such_stage:cluster")
    assert not tests_support.stage_functions_ready()


def test_tree_digest_sees_a_changed_byte_in_a_subfolder(tmp_path) -> None:  # noqa: ANN001
    from tests_support import tree_digest

    (tmp_path / "run" / "sub").mkdir(parents=True)
    (tmp_path / "run" / "sub" / "a.json").write_bytes(b"{}")
    before = tree_digest(tmp_path / "run")
    assert list(before) == ["sub/a.json"] and tree_digest(tmp_path / "missing") == {}
    (tmp_path / "run" / "sub" / "a.json").write_bytes(b"{ }")
    assert tree_digest(tmp_path / "run") != before


def test_the_side_by_side_stages_run_at_once_and_report_each_ones_seconds() -> None:
    import threading

    from helpers.run import SIDE_BY_SIDE, side_by_side, waves

    together = threading.Barrier(2, timeout=10)  # one stage after the other would wait here until it broke

    def stage(name: str) -> float:
        together.wait()
        return {"06": 1.5, "07": 2.5}[name]

    assert side_by_side(stage, ("06", "07")) == ({"06": 1.5, "07": 2.5}, None)
    stages = ["05-clv-lifetimes", *SIDE_BY_SIDE[0], "08-segment-report"]
    assert [len(w) for w in waves(stages)] == [1, 2, 1] and [len(w) for w in waves(stages, together=False)] == [1] * 4


@pytest.mark.parametrize("customers,expected", [(1_000, [("06-cluster-segments", "07-classify-prospects")]),
                                                 (10_000_000, [("06-cluster-segments",), ("07-classify-prospects",)])])
def test_above_the_limit_the_pair_runs_one_stage_after_the_other(
        customers: int, expected: list, monkeypatch: pytest.MonkeyPatch, isolated) -> None:  # noqa: ANN001
    """The runner's loop with stand-in stages: stage 02 counts the customers, the waves after it follow the count."""
    import json

    from helpers import run as runner

    started: list[tuple[str, ...]] = []

    def stage(name, resolved, staging, folder, km) -> None:  # noqa: ANN001 - execute_stage's stand-in
        if name.startswith("02"):
            (folder / "snapshot.json").write_text(json.dumps({"collected": {"customers": customers}}))

    class Warm:  # no kernels: the waves are what is checked
        def __init__(self, *_) -> None: ...  # noqa: ANN002
        def warm(self, stage: str) -> None: ...
        def take(self, stage: str) -> None: ...
        def close(self) -> None: ...

    def side_by_side(run_one, group):  # noqa: ANN001, ANN202
        started.append(tuple(group))
        return {s: run_one(s) for s in group}, None

    monkeypatch.setattr(runner, "execute_stage", stage)
    monkeypatch.setattr(runner.kernels, "WarmKernels", Warm)
    monkeypatch.setattr(runner, "side_by_side", side_by_side)
    monkeypatch.setattr(runner.store, "CAN_LOCK", True)
    runner.run("params/cdnow.yaml", stages=["01", "02", "05", "06", "07"], log=lambda _: None)
    assert started[:3] == [("01-define-customer-data",), ("02-collect-sources",), ("05-clv-lifetimes",)]
    assert started[3:] == expected


def test_a_failed_stage_beside_another_is_reported_after_the_other_has_ended() -> None:
    import time

    from helpers.run import StageFailed, side_by_side

    ended: list[str] = []

    def stage(name: str) -> float:
        if name == "07":
            raise StageFailed("stage 07 failed in cell 4: DataError: no lines")
        time.sleep(0.3)
        ended.append(name)
        return 0.3

    seconds, failure = side_by_side(stage, ("06", "07"))
    assert ended == ["06"] and seconds == {"06": 0.3}  # the stage beside it ran to its end
    assert failure is not None and failure[0] == "07" and "no lines" in str(failure[1])
    assert side_by_side(stage, ("07",))[1][0] == "07"  # one stage alone: the same answer, in this thread


def test_two_processes_write_one_database_in_turn(tmp_path) -> None:  # noqa: ANN001
    import subprocess
    import sys

    import duckdb

    from helpers import store

    if not store.CAN_LOCK:
        pytest.skip("no flock here: the runner runs its stages one at a time")
    db = tmp_path / "customers.duckdb"
    writer = ("import sys, pandas as pd; from helpers import store\n"
              "for i in range(40):\n"
              "    store.write_tables_file(sys.argv[1], {sys.argv[2]: pd.DataFrame({'i': range(i + 1)})})\n")
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(db), name], stderr=subprocess.PIPE, text=True)
             for name in ("clusters_side", "predictions_side")]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors  # without the lock DuckDB refuses the second writer
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT (SELECT count(*) FROM clusters_side), (SELECT count(*) FROM predictions_side)").fetchone() \
        == (40, 40)
    con.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.duckdb"]  # no lock file left behind


def test_a_source_file_that_is_not_there_stops_the_run_before_any_stage(isolated, capsys) -> None:  # noqa: ANN001
    """The run stops at once with the parameter file, the path and the close name in the folder; no stage ran, so
    nothing is left behind (no failed run, no staging folder)."""
    from helpers import paths
    from helpers.run import main

    (isolated / "logs").mkdir()
    (isolated / "logs" / "shop_amounts.tsv").write_text("c\tt\ta\n")
    params = isolated / "shop.yaml"
    params.write_text(f"dataset: shop\nas_of: 2011-12-09\nsource: {{kind: csv, path: {isolated}/logs/shop_amount.tsv}}\n"
                      "columns: {customer_id: c, order_ts: t, amount: a}\n")
    assert main(["-f", str(params)]) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"error: {params}: source file not found: '{isolated}/logs/shop_amount.tsv'")
    assert "did you mean 'shop_amounts.tsv'? Set source.path in the parameter file" in said
    assert not (paths.reports_dir() / "shop").exists() and not (paths.processed_dir() / "shop").exists()
