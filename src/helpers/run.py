"""The runner: every stage notebook, in order, under one parameter set.

    python -m helpers.run -f params/cdnow.yaml
    python -m helpers.run -f params/cdnow.yaml -p as_of 1998-03-31 -p cleaning.cancellations net

Parameters are checked (names and types) before anything runs. The resolved
parameters are written to the run folder and handed to every notebook, so all
stages see the same values. Each notebook is executed with papermill (kernel
``python3``) into a temporary folder that is moved to
``reports/<dataset>/<as_of>[-<experiment>]/`` only when every stage succeeded;
the run's artifacts (:mod:`helpers.catalog`) are staged the same way and
published to ``data/processed/<dataset>/<as_of>[-<experiment>]/`` with it, so
another run (an experiment, a different ``as_of``) is never touched and a
failed rerun leaves the last good run's artifacts as they were.
A failed run exits non-zero, keeps its executed notebooks under
``reports/<dataset>/failed/`` and never replaces the last good report. A run
that is killed cannot clean up; the next run of the data set moves its staging
folder to ``failed/`` as ``<run>-<time>-interrupted``.

With notebooks, stages 06 (clusters) and 07 (classification) run side by side
(:data:`SIDE_BY_SIDE`: neither reads what the other writes; each fits on one
thread); each prints its own seconds, and both the peak memory of the two together.
They take turns on the run's DuckDB database (:func:`helpers.store.folder_lock`).
Above :data:`SIDE_BY_SIDE_MAX_CUSTOMERS` customers they run one after the other
(memory: :func:`one_at_a_time_above`).

A successful run prints one progress line per stage and the report's path, nothing
else: the kernels log errors only, and are shut down without the interrupt that
jupyter_client sends first by default (:func:`quiet_kernel_manager`), which an
idle kernel reports as ``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel``.
A raw customer id in ``clv.example_customer`` is replaced by its pseudonymous key
before anything is written (:func:`pseudonymous_example`).
"""

from __future__ import annotations

import argparse
import functools
import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from helpers import catalog as runs
from helpers import kernels, paths, store
from helpers.config import Params, dump_params, load_params
from helpers.errors import ConfigError, DataError
from helpers.resources import PeakMemory, megabytes

#: A pseudonymous customer key (helpers.privacy): 16 hex digits.
CUSTOMER_KEY = re.compile(r"[0-9a-f]{16}")
RAW_EXAMPLE_WARNING = "clv.example_customer looks like a raw customer id; it is stored as its pseudonymous key"

#: The artifacts the runner puts into the report folder beside the notebooks (listed in ``manifest.json``).
PUBLISHED = ("customer_segments", "customer_segments_csv", "customer_value_by_month", "customer_value_by_month_csv",
             "metrics")

#: The stage notebooks, in order. Stages whose notebook does not exist yet are skipped.
STAGES = [
    "01-define-customer-data",
    "02-collect-sources",
    "03-clean-integrate",
    "04-rfm-value-tiers",
    "05-clv-lifetimes",
    "06-cluster-segments",
    "07-classify-prospects",
    "08-segment-report",
]


#: Stages that read nothing the other writes, run side by side with notebooks (:func:`waves`): stage 07 reads
#: stage 03's lines, 04's purchase days and 05's customers and validation, never 06's clusters, and each fits on
#: one thread (:func:`helpers.clustering.one_thread`), so the two use the machine's two cores. Stage 08 reads both.
SIDE_BY_SIDE = (("06-cluster-segments", "07-classify-prospects"),)
#: Above this many customers (stage 02's count) the pair runs one stage after the other, for memory: at ten
#: million, with notebooks, side by side they took 214 s and peaked at 10.1 GB (the run's peak); one after the
#: other 121 + 189 s, 7.6 GB at most, the run's peak then stage 04's 8.5 GB (2026-12-03). Memory that runs
#: out stops the run; the 96 s are the price.
SIDE_BY_SIDE_MAX_CUSTOMERS = 3_000_000


def waves(todo: Sequence[str], together: bool = True) -> list[tuple[str, ...]]:
    """``todo`` in the groups the runner starts at once: one stage each, or a pair of :data:`SIDE_BY_SIDE`.

    >>> waves(["05-clv-lifetimes", "06-cluster-segments", "07-classify-prospects", "08-segment-report"])
    [('05-clv-lifetimes',), ('06-cluster-segments', '07-classify-prospects'), ('08-segment-report',)]
    >>> waves(["06-cluster-segments", "07-classify-prospects"], together=False)
    [('06-cluster-segments',), ('07-classify-prospects',)]
    """
    out: list[tuple[str, ...]] = []
    for stage in todo:
        if together and out and (*out[-1], stage) in SIDE_BY_SIDE:
            out[-1] = (*out[-1], stage)
        else:
            out.append((stage,))
    return out


def collected_customers(staged: runs.Catalog) -> int | None:
    """The customer keys stage 02 counted in the run (``snapshot.json``'s ``collected``), None when not known."""
    counted = (staged.read_json("snapshot", {}) or {}).get("collected") or {}
    return counted.get("customers")


def one_at_a_time_above(groups: list[tuple[str, ...]], start: int, customers: int | None,
                        limit: int | None = None) -> list[tuple[str, ...]]:
    """``groups`` with every group from ``start`` on split into single stages when the run has more than
    ``limit`` customers (default :data:`SIDE_BY_SIDE_MAX_CUSTOMERS`).

    >>> one_at_a_time_above([("05",), ("06", "07"), ("08",)], 1, 10_000_000)
    [('05',), ('06',), ('07',), ('08',)]
    >>> one_at_a_time_above([("05",), ("06", "07")], 1, 1_000_000)
    [('05',), ('06', '07')]
    """
    limit = SIDE_BY_SIDE_MAX_CUSTOMERS if limit is None else limit
    if customers is None or customers <= limit:
        return groups
    return [*groups[:start], *((stage,) for group in groups[start:] for stage in group)]


class StageFailed(RuntimeError):
    """A stage notebook raised; the message names the stage and the cell."""


def available_stages(only: Sequence[str] | None = None) -> list[str]:
    """The stage notebooks that exist, optionally filtered by name prefix (``"01"``, ``"02-collect"``)."""
    stages = [s for s in STAGES if (paths.NOTEBOOKS_DIR / f"{s}.ipynb").exists()]
    if only:
        unknown = [o for o in only if not any(s.startswith(o) for s in stages)]
        if unknown:
            raise ConfigError(f"unknown stage(s) {unknown}; stages: {stages}")
        stages = [s for s in stages if any(s.startswith(o) for o in only)]
    return stages


def run_folder(params: Params, partial: bool = False) -> Path:
    """Where a run's report goes: ``reports/<dataset>/<as_of>[-<experiment>][-partial]``.

    A run of only some stages (``--stages``) is published as ``-partial`` so it never
    replaces a complete report.
    """
    name = runs.run_key(params.as_of, params.experiment) + ("-partial" if partial else "")
    return paths.reports_dir() / params.dataset / name


def _failing_cell(notebook: Path) -> str:
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i} ({out.get('ename')}: {out.get('evalue')})"
    return "an unknown cell"


@functools.cache
def quiet_kernel_manager(stderr_log: str | None = None) -> type:
    """The kernel manager the stages run under: jupyter_client's, minus the interrupt before shutdown.

    ``AsyncKernelManager.shutdown_kernel`` sends SIGINT before its shutdown request. After a
    notebook has finished there is nothing to interrupt, but the signal can still land while
    the kernel is inside a message handler: ipykernel then logs ``[IPKernelApp] ERROR |
    KeyboardInterrupt caught in kernel.`` on the run's stderr (seen on about one notebook in
    five), and a signal landing outside the handler's ``try`` can end in a traceback. Papermill only
    shuts a kernel down after the last cell or after a failure it has already recorded, so the
    interrupt is skipped while shutting down; a kernel that ignores the shutdown request is
    still killed by jupyter_client after its wait. Every other interrupt is left as it was.

    With ``stderr_log``, the kernels' own stderr (C libraries write there directly: libzmq's
    ``Assertion failed: pfd.revents & POLLIN`` when a context ends under load, seen once in 64
    kernels) is appended to that file, kept with the run's notebooks, instead of the console;
    cell errors reach the runner through the notebook, not through this stream.
    """
    from jupyter_client import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if getattr(self, "shutting_down", False):
                return
            await super()._async_interrupt_kernel()

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: object) -> None:
            if stderr_log is None:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            with open(stderr_log, "ab") as sink:  # the kernel keeps its own copy of the descriptor
                kw["stderr"] = sink
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return QuietShutdownKernelManager


#: The kernels' stderr, kept beside the executed notebooks of a run (see :func:`quiet_kernel_manager`).
KERNEL_LOG = "kernels-stderr.log"


def execute_stage(stage: str, params_file: Path, out_dir: Path, run_folder: Path | None = None,
                  km: object | None = None) -> Path:
    """Execute one stage notebook with papermill; raise :class:`StageFailed` naming the cell.

    ``km``: a kernel already started for the stage (:class:`helpers.kernels.WarmKernels`), shut down here after it
    ran; without it papermill starts and stops the stage's kernel.
    """
    # jsonschema (under nbformat) checks IRIs with rfc3987_syntax when it is installed: compiling its grammar costs
    # about 2 s a process, and no notebook schema has an IRI field. Without it, that one check is skipped.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import papermill as pm

    out = out_dir / f"{stage}.ipynb"
    warm = {} if km is None else {"km": km}
    try:
        pm.execute_notebook(
            str(paths.NOTEBOOKS_DIR / f"{stage}.ipynb"), str(out),
            parameters={"params_file": str(params_file), "overrides": {},
                        "run_folder": str(run_folder) if run_folder is not None else None},
            kernel_name="python3", cwd=str(paths.NOTEBOOKS_DIR), progress_bar=False,
            extra_arguments=kernels.KERNEL_ARGUMENTS,  # the kernel's own log: errors only
            kernel_manager_class=quiet_kernel_manager(str(out_dir / KERNEL_LOG)),
            # After the last cell the kernel has nothing left to save: every artifact was written atomically
            # and every database connection closed inside the stage call. A graceful shutdown only waits
            # (1-3 s a notebook) for a process that imported pandas, scikit-learn and DuckDB to finalise.
            shutdown_kernel="immediate", **warm,
        )
    except pm.PapermillExecutionError as exc:
        raise StageFailed(f"stage {stage} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}") from None
    except Exception as exc:
        where = _failing_cell(out) if out.exists() else "before the first cell"
        raise StageFailed(f"stage {stage} failed at {where}: {type(exc).__name__}: {exc}") from None
    finally:
        kernels.shutdown(km)
    return out


_STAGING = re.compile(r"^\.(?P<name>.+)\.running-(?P<pid>\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def recover_interrupted(dataset_dir: Path, keep: bool = True) -> list[Path]:
    """Move the staging folders of runs that were killed (their process is gone) to ``failed/``.

    A run killed mid-stage (power cut, ``kill -9``, a scheduler's timeout) cannot
    clean up after itself; its executed notebooks are kept for a look, under
    ``failed/<run>-<time>-interrupted``, when the next run of the data set starts.
    Returns the folders moved. With ``keep`` false (the staged artifacts under
    ``data/processed/``) the folders are removed instead.
    """
    moved = []
    if not dataset_dir.is_dir():
        return moved
    for folder in sorted(dataset_dir.iterdir()):
        match = _STAGING.match(folder.name)
        if not folder.is_dir() or not match or _alive(int(match["pid"])):
            continue
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
            continue
        stamp = dt.datetime.fromtimestamp(folder.stat().st_mtime).strftime("%Y%m%dT%H%M%S")
        target = dataset_dir / "failed" / f"{match['name']}-{stamp}-interrupted"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder, target)
        moved.append(target)
    return moved


def pseudonymous_example(params: Params) -> Params:
    """``params`` with a raw customer id in ``clv.example_customer`` replaced by its pseudonymous key.

    Notebook 05 finds the customer by either (:func:`helpers.privacy.find_customer`), so the
    plot is the same, but the resolved ``params.yaml``, ``manifest.json`` and ``runs.jsonl`` of
    the run then hold no raw id. The id is normalised as stage 03 normalises ids
    (``cleaning.normalise_ids``: ``" 12417.0"`` is customer ``12417``) before it is hashed. A
    value of 16 hex digits is taken to be a key already. Prints one warning line on stderr
    when it replaces an id.
    """
    wanted = params.clv.example_customer
    if not (wanted or "").strip() or CUSTOMER_KEY.fullmatch(wanted):
        return params  # unset (notebook 05 picks a customer), or a key already
    import pandas as pd  # only here: a run through the notebooks leaves pandas and the rules to the kernels

    from helpers.cleaning import normalise_ids
    from helpers.privacy import pseudonymize

    if params.cleaning.normalise_ids:
        ids = normalise_ids(pd.DataFrame({"customer_id": [wanted]}), params.cleaning, params.as_of).frame["customer_id"]
        wanted = ids.iloc[0]
    print(f"warning: {RAW_EXAMPLE_WARNING}", file=sys.stderr, flush=True)
    key = pseudonymize(pd.Series([str(wanted)])).item()
    return params.model_copy(update={"clv": params.clv.model_copy(update={"example_customer": key})})


def check_source(params: Params, params_file: str | Path) -> None:
    """Stop before any stage runs when the source file of ``params`` does not exist (a :class:`ConfigError`)."""
    from helpers.sources import resolve_source_path

    if params.source.path is None:
        return  # a DuckDB query in memory: its files are named in the query
    try:
        resolve_source_path(params.source.path)
    except DataError as exc:
        raise ConfigError(f"{params_file}: {exc}") from None


def run(params_file: str | Path, overrides: dict[str, str] | None = None, *, experiment: str | None = None,
        stages: Sequence[str] | None = None, log=functools.partial(print, flush=True), notebooks: bool = True) -> Path:
    """Run the stages and publish the report folder; return its path.

    With ``notebooks`` false the stage functions (:mod:`helpers.stages`) run in this process
    instead of the notebooks: the same artifacts, export, metrics and manifest, but no executed
    notebooks and no ``report.html`` (what the tests and quick parameter sweeps need).
    """
    overrides = dict(overrides or {})
    if experiment is not None:
        overrides["experiment"] = experiment
    params = pseudonymous_example(load_params(params_file, overrides))
    todo = available_stages(stages)
    if "02-collect-sources" in todo:
        check_source(params, params_file)
    partial = bool(stages) and todo != available_stages()
    target = run_folder(params, partial=partial)
    target.parent.mkdir(parents=True, exist_ok=True)
    for folder in recover_interrupted(target.parent):
        log(f"an earlier run was interrupted; its executed notebooks were moved to {folder}")
    recover_interrupted(runs.dataset_folder(params.dataset), keep=False)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.running-{os.getpid()}-", dir=target.parent))
    staged = runs.staging(params, staging.name.split(".running-", 1)[1], partial=partial)
    resolved = store.write_text(dump_params(params), staging / "params.yaml")
    log(f"run {params.dataset} as_of {params.as_of} ({len(todo)} stages) -> {target}")
    started = time.perf_counter()
    warm = kernels.WarmKernels(quiet_kernel_manager(str(staging / KERNEL_LOG))) if notebooks else None
    memory, costs = PeakMemory(os.getpid()), []  # this process and the kernels it starts (the next one warming)
    groups = waves(todo, together=notebooks and store.CAN_LOCK)
    kms: dict[str, object] = {}  # the wave's warm kernel (its last stage's): beside it, the others start their own

    def one(stage: str) -> float:
        """Run ``stage`` (its notebook, or its function in this process); return its seconds."""
        started = time.perf_counter()
        if warm is None:
            run_in_process(stage, params, staged)
        else:
            execute_stage(stage, resolved, staging, staged.folder, kms.get(stage))
        return time.perf_counter() - started

    try:
        i = 0
        while i < len(groups):
            customers = collected_customers(staged)  # known once stage 02 has run (or copied, in a partial run)
            groups = one_at_a_time_above(groups, i, customers)  # before this wave starts or the next one warms
            group = groups[i]
            t0 = time.perf_counter()
            if warm is not None:
                kms = {group[-1]: warm.take(group[-1])}
                if i + 1 < len(groups):
                    warm.warm(groups[i + 1][-1])  # the next wave's kernel starts while this one runs
            seconds, failure = side_by_side(one, group)
            if failure is not None:
                stage, exc = failure
                runs.discard(staged)
                stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
                failed = paths.reports_dir() / params.dataset / "failed" / f"{target.name}-{stamp}"
                failed.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging, failed)
                log(f"  {stage:<28} FAILED after {time.perf_counter() - t0:5.1f}s; executed notebooks kept in {failed}")
                raise exc
            peak = megabytes(memory.take())  # side by side: the peak of both together
            for stage in group:
                costs.append({"stage": stage, "seconds": round(seconds[stage], 1), "peak_mb": peak})
                log(f"  {stage:<28} {costs[-1]['seconds']:5.1f}s  peak {costs[-1]['peak_mb']:,} MB")
            i += 1
    finally:
        memory.stop()
        if warm is not None:
            warm.close()
    report_file = finish_report(params, staged, staging, html=notebooks, stages=costs) \
        if "08-segment-report" in todo else None
    runs.publish(staged)
    store.replace_folder(staging, target)
    if report_file is not None and not partial:
        record_run(params, target)
    log(f"done in {time.perf_counter() - started:.1f}s: {target}")
    if report_file is not None:
        log(f"report: {target / report_file.name}")
    return target


def side_by_side(run_one, group: Sequence[str]) -> tuple[dict[str, float], tuple[str, StageFailed] | None]:
    """Run ``run_one(stage)`` for each stage of ``group`` at once (threads; a single stage in this thread).

    Returns each stage's seconds and the first failure in stage order (the stage and its :class:`StageFailed`),
    after every stage of the group has ended: a stage beside a failed one runs to its end, and nothing of the
    run is published.
    """
    import concurrent.futures

    if len(group) == 1:
        try:
            return {group[0]: run_one(group[0])}, None
        except StageFailed as exc:
            return {}, (group[0], exc)
    with concurrent.futures.ThreadPoolExecutor(len(group), thread_name_prefix="stage") as pool:
        futures = {stage: pool.submit(run_one, stage) for stage in group}
        concurrent.futures.wait(futures.values())
    seconds: dict[str, float] = {}
    for stage, future in futures.items():
        exc = future.exception()
        if isinstance(exc, StageFailed):
            return seconds, (stage, exc)
        seconds[stage] = future.result()  # any other error is raised as it is
    return seconds, None


def run_in_process(stage: str, params: Params, staged: runs.Catalog) -> None:
    """Run one stage's function in this process; raise :class:`StageFailed` naming the stage."""
    from helpers.stages import run_stage

    try:
        run_stage(stage, params, staged)
    except (ConfigError, DataError, FileNotFoundError) as exc:
        raise StageFailed(f"stage {stage} failed: {type(exc).__name__}: {exc}") from exc


def finish_report(params: Params, staged: runs.Catalog, staging: Path, html: bool = True,
                  stages: list[dict[str, object]] | None = None) -> Path:
    """Put the report, the export, the metrics and the run manifest into the (unpublished) report folder.

    ``stages`` (each stage's ``seconds`` and ``peak_mb``, as the progress lines print them) goes into
    the manifest. The exports are hard links to the run's artifacts where the file system allows (every
    artifact is replaced, never rewritten in place, so the report's copy cannot change). Returns the
    report's main file: ``report.html``, or without ``html`` (an in-process run) the export.
    """
    from helpers import history, render

    files = [staged.path(name).name for name in PUBLISHED if staged.exists(name)]
    for file in files:
        store.link_or_copy(staged.folder / file, staging / file)
    store.write_json(history.run_manifest(dump_params(params), staged, params.experiment, files, stages),
                     staging / "manifest.json")
    if not html:
        return staging / staged.path("customer_segments").name
    return render.render_html(staging / "08-segment-report.ipynb", staging / "report.html")


def record_run(params: Params, folder: Path) -> None:
    """Append the published run to the data set's runs log (for ``python -m helpers.compare``)."""
    from helpers import history

    history.append_runs_log(params.dataset, {
        "folder": folder.name, "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "params": params.model_dump(mode="json"), "metrics": store.json_load(folder / "metrics.json"),
    })


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.run", description=__doc__.split("\n\n")[0])
    p.add_argument("-f", "--file", required=True, help="parameter file, e.g. params/cdnow.yaml")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a parameter (dotted names, YAML values), e.g. -p as_of 1998-03-31")
    p.add_argument("--experiment", help="name of an analyst's variant: reports/<dataset>/<as_of>-<experiment>")
    p.add_argument("--stages", nargs="+", help="run only these stages (name prefixes, e.g. 01 02)")
    p.add_argument("--no-notebooks", action="store_true",
                   help="run the stage functions in this process: the same artifacts and export, no notebooks or HTML")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # the kernels' "frozen modules" debugger note
    overrides = dict(args.parameter)
    try:
        run(args.file, overrides, experiment=args.experiment, stages=args.stages, notebooks=not args.no_notebooks)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StageFailed as exc:
        print(f"error: {exc}\nThe last good report, if any, is unchanged.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
