"""Warm kernels: the next stage's kernel starts, and imports what its notebook imports, while this stage runs.

A stage notebook pays about a second to start its kernel and three to
import pandas, matplotlib, seaborn, scikit-learn and the helpers before its
first real cell. The stages run one after another, so the runner
(:func:`helpers.run.run`) starts the next stage's kernel in a thread while
the current stage executes (:class:`WarmKernels`): the kernel starts in the
notebooks' folder, exactly as papermill would start it, and runs the import
statements of the notebook's own code cells (:func:`notebook_imports`), so
the notebook then finds them done. Nothing else runs in the kernel before the
notebook: no names are left in its namespace, nothing is drawn, the history is
empty. A kernel that fails to warm is shut down and the stage starts a cold
one as before; the runner shuts every kernel down, warm or not, when its stage
ends or the run fails.
"""

from __future__ import annotations

import ast
import concurrent.futures
import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from helpers import paths

#: The kernel's own log level (errors only), as the runner starts every kernel.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
#: How long a warm kernel may take to start and import, in seconds (then the stage starts a cold one).
WARM_TIMEOUT = 120


def notebook_imports(notebook: Path) -> list[str]:
    """The modules the code cells of ``notebook`` import at their top level, in order, without repeats.

    ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (``c`` may be a module:
    :func:`preload` skips what is not); cells that do not parse are skipped.
    """
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    modules: list[str] = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return list(dict.fromkeys(modules))


def preload(modules: Sequence[str]) -> list[str]:
    """Import each of ``modules`` that is a module; return those imported (others are left to the notebook)."""
    done = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        done.append(name)
    return done


def preload_code(modules: Sequence[str]) -> str:
    """The code a warm kernel runs: :func:`preload` of ``modules``, leaving no name behind."""
    return f"__import__('helpers.kernels').kernels.preload({list(modules)!r})"


def shutdown(km: Any) -> None:
    """Shut ``km``'s kernel down at once (every artifact of a stage is written atomically before it ends)."""
    from jupyter_core.utils import run_sync

    if km is not None and km.has_kernel:
        run_sync(km.shutdown_kernel)(now=True)


def start_warm(manager_class: type, notebook: Path) -> Any:
    """Start a kernel of ``manager_class`` in the notebooks' folder and run ``notebook``'s imports in it."""
    from jupyter_core.utils import run_sync

    km = manager_class(kernel_name="python3")
    try:
        run_sync(km.start_kernel)(cwd=str(paths.NOTEBOOKS_DIR), extra_arguments=KERNEL_ARGUMENTS)
        client = km.client()
        client.start_channels()
        try:
            run_sync(client.wait_for_ready)(timeout=WARM_TIMEOUT)
            code = preload_code(notebook_imports(notebook))
            run_sync(client.execute_interactive)(code, silent=True, store_history=False, timeout=WARM_TIMEOUT)
        finally:
            client.stop_channels()
    except BaseException:
        shutdown(km)
        raise
    return km


def _shutdown_when_started(future: concurrent.futures.Future) -> None:
    """A done-callback: shut down the kernel ``future`` started (it shut itself down if it failed)."""
    if not future.cancelled() and future.exception() is None:
        shutdown(future.result())


class WarmKernels:
    """One kernel warmed ahead: :meth:`warm` the next stage's, :meth:`take` it when the stage starts.

    >>> pool = WarmKernels(object)
    >>> pool.take("01-define-customer-data") is None  # nothing warmed: the stage starts its own kernel
    True
    """

    def __init__(self, manager_class: type) -> None:
        self.manager_class = manager_class
        self._threads = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="warm-kernel")
        self._pending: tuple[str, concurrent.futures.Future] | None = None

    def warm(self, stage: str) -> None:
        """Start ``stage``'s kernel in the background (replacing one warmed for another stage)."""
        self.close_pending()
        notebook = paths.NOTEBOOKS_DIR / f"{stage}.ipynb"
        self._pending = (stage, self._threads.submit(start_warm, self.manager_class, notebook))

    def take(self, stage: str) -> Any:
        """The warm kernel manager of ``stage``, or None (not warmed, or it failed to start: start a cold one)."""
        if self._pending is None or self._pending[0] != stage:
            return None
        _, future = self._pending
        self._pending = None
        try:
            return future.result(timeout=WARM_TIMEOUT)
        except concurrent.futures.TimeoutError:  # still starting: shut it down when it has
            future.add_done_callback(_shutdown_when_started)
        except Exception:  # noqa: BLE001 - a kernel that did not warm: the stage starts its own, as before
            pass
        return None

    def close_pending(self) -> None:
        """Shut down a kernel warmed and not taken (at once, or as soon as it has started)."""
        if self._pending is not None:
            _, future = self._pending
            self._pending = None
            future.add_done_callback(_shutdown_when_started)

    def close(self) -> None:
        """Shut down the pending kernel and the thread."""
        self.close_pending()
        self._threads.shutdown(wait=True)
