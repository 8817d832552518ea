"""The runs of a data set: what was published, what each run recorded, and the runs side by side.

Run bookkeeping, apart from the report's content (:mod:`helpers.report`). Every
published run appends one line to ``reports/<dataset>/runs.jsonl`` (its folder,
parameters and headline metrics; :func:`append_runs_log`) and leaves a
``manifest.json`` (:func:`run_manifest`) in its report folder. The report reads
them back: :func:`previous_run` finds the earlier report that migration compares
with (by the ``as_of`` and experiment each run recorded, never by parsing folder
names), and :func:`compare_runs` (``python -m helpers.compare <dataset>``) lists
the runs with the parameters that differ.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from helpers import paths
from helpers.catalog import Catalog

PACKAGES = ["pandas", "numpy", "scipy", "lifetimes", "scikit-learn", "duckdb", "pandera", "papermill"]
#: The file of a report folder that makes it a published run (the export).
PUBLISHED_FILE = "customer_segments.parquet"


def runs_log(dataset: str) -> Path:
    """The data set's runs log: ``reports/<dataset>/runs.jsonl``."""
    return paths.reports_dir() / dataset / "runs.jsonl"


def published_runs(dataset: str) -> list[Path]:
    """Published run folders of a data set, by name (failed and partial runs excluded)."""
    root = paths.reports_dir() / dataset
    if not root.exists():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "failed"
            and not p.name.endswith("-partial") and (p / PUBLISHED_FILE).exists()]
    return sorted(runs, key=lambda p: p.name)


def append_runs_log(dataset: str, record: dict[str, Any]) -> Path:
    """Add one published run to ``reports/<dataset>/runs.jsonl``."""
    log = runs_log(dataset)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
    return log


def recorded_runs(dataset: str) -> list[dict[str, Any]]:
    """The records of ``reports/<dataset>/runs.jsonl``, oldest first (empty when none were recorded)."""
    log = runs_log(dataset)
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []


def previous_run(dataset: str, as_of: dt.date, experiment: str | None = None) -> Path | None:
    """The published report of the same data set (and experiment) with the latest ``as_of`` before ``as_of``.

    Each run's ``as_of`` and experiment are those it recorded in the runs log (the last record of a
    folder describes what the folder holds now); only folders still published count.
    """
    published = {p.name: p for p in published_runs(dataset)}
    current: dict[str, dict[str, Any]] = {}
    for record in recorded_runs(dataset):
        if record.get("folder") in published:
            current[record["folder"]] = record.get("params") or {}
    earlier = [(dt.date.fromisoformat(str(p["as_of"])), name) for name, p in current.items()
               if (p.get("experiment") or None) == (experiment or None) and p.get("as_of")
               and dt.date.fromisoformat(str(p["as_of"])) < as_of]
    return published[max(earlier)[1]] if earlier else None


def no_previous_text(dataset: str, as_of: dt.date, experiment: str | None = None,
                     t: Callable[[str], str] = lambda s: s) -> str:
    """What the migration section says when :func:`previous_run` finds no report to compare with.

    "The first report" only when nothing was run before; otherwise it says why the runs
    listed under "Earlier runs" (reruns, other experiments, later ``as_of``) are not compared.
    ``t`` translates the templates (filled afterwards).
    """
    recorded, published = recorded_runs(dataset), published_runs(dataset)
    if not recorded and not published:
        return t("This is the first report of this data set: there is nothing to compare with yet.")
    n = max(len(recorded), len(published))
    which = (t("experiment '{experiment}'").format(experiment=experiment) if experiment
             else t("the scheduled runs (no experiment)"))
    return t("No earlier report to compare with: migration needs a published report of {which} with an as_of "
             "before {as_of}, and none of the {n:,} earlier run(s) of this data set (listed below) is one.").format(
        which=which, as_of=as_of, n=n)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameters as dotted names (lists as JSON text).

    >>> _flatten({"rfm": {"bins": 5, "abc_cuts": [0.2, 0.5]}, "as_of": "1998-06-30"})
    {'rfm.bins': 5, 'rfm.abc_cuts': '[0.2, 0.5]', 'as_of': '1998-06-30'}
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= _flatten(v, key + ".")
        else:
            out[key] = json.dumps(v) if isinstance(v, list) else v
    return out


def compare_runs(dataset: str) -> pd.DataFrame:
    """The runs of a data set side by side: the parameters that differ and the headline metrics."""
    records = recorded_runs(dataset)
    if not records:
        raise FileNotFoundError(f"no runs recorded for {dataset!r} yet ({runs_log(dataset)}); "
                                "run python -m helpers.run first")
    params = pd.DataFrame([_flatten(r["params"]) for r in records])
    differing = [c for c in params.columns if params[c].astype(str).nunique() > 1]
    table = pd.DataFrame({
        "run": [r["folder"] for r in records],
        "finished_at": [r["finished_at"] for r in records],
    })
    table = table.join(params[differing])
    metrics = pd.DataFrame([r["metrics"] for r in records])
    table["model"] = metrics.get("model")
    table["holdout_rmse"] = [(h or {}).get("rmse") for h in metrics.get("holdout", [None] * len(records))]
    table["silhouette"] = metrics.get("silhouette")
    table["auc_high_value"] = metrics.get("classifier_auc_high_value")
    seg = pd.DataFrame(list(metrics["segments"])).fillna(0).astype(int).add_prefix("n_")
    return table.join(seg)


def earlier_runs(dataset: str) -> pd.DataFrame | None:
    """:func:`compare_runs`, or ``None`` when no run of the data set was recorded yet."""
    try:
        return compare_runs(dataset)
    except FileNotFoundError:
        return None


def git_commit() -> str | None:
    """The project's current git commit, if it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide the numbers."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def run_manifest(params_yaml: str, catalog: Catalog, experiment: str | None,
                 files: list[str] | None = None, stages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What is needed to reproduce a run: parameters, the input snapshot, package versions, git commit.

    ``files`` lists the exports the report folder holds beside the notebooks (the runner's ``PUBLISHED``);
    ``stages`` what each stage cost (``stage``, ``seconds``, ``peak_mb`` of the runner and its kernels).
    """
    snapshot = catalog.read_json("snapshot", {})
    return {
        "dataset": catalog.dataset, "experiment": experiment, "run": catalog.run,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "params": params_yaml, "input": {k: snapshot.get(k) for k in ("file", "sha256", "rows", "snapshot_id")},
        "files": list(files or []), "packages": package_versions(), "git_commit": git_commit(),
        "stages": list(stages or []),
    }
