"""Warm kernels: the next stage's kernel starts and imports its notebook's modules, and nothing else, ahead of time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_core.utils import run_sync

from helpers import kernels, paths
from helpers.run import quiet_kernel_manager


def test_a_notebooks_imports_are_its_own_top_level_import_statements() -> None:
    modules = kernels.notebook_imports(paths.NOTEBOOKS_DIR / "05-clv-lifetimes.ipynb")
    assert modules[:3] == ["helpers", "helpers.stages", "helpers.notebook"]
    assert "helpers.plots.value" in modules and "IPython.display.Markdown" in modules
    assert len(modules) == len(set(modules))
    assert kernels.preload(["json", "IPython.display.Markdown", "no_such_module_here"]) == ["json"]


def test_the_preload_leaves_no_name_behind() -> None:
    code = kernels.preload_code(["json", "helpers.kernels"]) + "\nprint(sorted(k for k in dir() if k != '__builtins__'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["['__annotations__',", "'__doc__',", "'__loader__',", "'__name__',", "'__package__',",
                           "'__spec__']"]


def test_a_warm_kernel_has_the_modules_and_an_empty_namespace_and_is_shut_down(tmp_path: Path) -> None:
    pool = kernels.WarmKernels(quiet_kernel_manager(str(tmp_path / "kernels.log")))
    try:
        pool.warm("01-define-customer-data")
        assert pool.take("02-collect-sources") is None  # warmed for another stage: that one starts its own
        pool.warm("01-define-customer-data")
        km = pool.take("01-define-customer-data")
        assert km is not None and km.has_kernel
        client = km.client()
        client.start_channels()
        seen = []
        run_sync(client.wait_for_ready)(timeout=60)
        run_sync(client.execute_interactive)(
            "import os, sys\nprint('helpers.notebook' in sys.modules, os.getcwd(), len(In),"
            " [k for k in globals() if not k.startswith('_') and k not in ('In', 'Out', 'exit', 'quit', 'get_ipython',"
            " 'open', 'os', 'sys')])",
            output_hook=lambda msg: seen.append(msg["content"].get("text", "")), timeout=60)
        client.stop_channels()
        assert "".join(seen).split() == ["True", str(paths.NOTEBOOKS_DIR), "2", "[]"]  # history: '' and this cell
        kernels.shutdown(km)
        assert not km.has_kernel
    finally:
        pool.close()


def test_a_kernel_warmed_and_not_taken_is_shut_down_with_the_pool(tmp_path: Path) -> None:
    import psutil

    pool = kernels.WarmKernels(quiet_kernel_manager(str(tmp_path / "kernels.log")))
    pool.warm("01-define-customer-data")
    pool.close()

    def running_kernel(proc: psutil.Process) -> bool:
        try:  # a kernel shut down may linger as a zombie until it is reaped: it is not running
            return proc.status() != psutil.STATUS_ZOMBIE and "ipykernel" in " ".join(proc.cmdline())
        except psutil.Error:
            return False

    assert not [p for p in psutil.Process().children(recursive=True) if running_kernel(p)]
    with pytest.raises(RuntimeError):  # closed: it warms nothing more
        pool.warm("02-collect-sources")
