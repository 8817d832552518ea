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
