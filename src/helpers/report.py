"""The parameterized report: export, headline metrics, migration between runs, and run records.

Stage 08 and the runner's bookkeeping. What a run publishes under
``reports/<dataset>/<as_of>[-<experiment>]/``:

- the executed notebooks and ``report.html`` (notebook 08 without code);
- ``customer_segments.parquet`` / ``.csv``: one row per customer with a
  pseudonymous ``customer_key`` (never the raw id), scores, segment, tier,
  ABC class, CLV, P(alive), lifecycle stage, cluster and predictions;
- ``metrics.json``: the headline numbers;
- ``manifest.json``: parameters, input checksum, package versions, git commit.

Every published run also appends one line to ``reports/<dataset>/runs.jsonl``,
which :func:`compare_runs` (``python -m helpers.compare <dataset>``) reads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from helpers import paths, store
from helpers.privacy import pseudonymize

EXPORT_COLUMNS = [
    "customer_key", "country", "first_purchase", "last_purchase", "recency_days", "frequency", "monetary_total",
    "r_score", "f_score", "m_score", "rfm_segment", "abc_class", "value_tier", "p_alive", "expected_purchases",
    "clv", "lifecycle_stage", "cluster", "predicted_tier", "p_high_value", "prospect",
]
PACKAGES = ["pandas", "numpy", "scipy", "lifetimes", "scikit-learn", "duckdb", "pandera", "papermill"]


def export_table(dataset: str, raw_ids: bool = False) -> pd.DataFrame:
    """The customer export: stage 05's table joined with clusters and predictions, keyed pseudonymously.

    Raw customer ids are added (as ``customer_id``, after the key) only when ``raw_ids`` is true
    (the parameter ``privacy.raw_ids``).
    """
    folder = paths.processed_dir(dataset)
    customers = pd.read_parquet(folder / "customers.parquet")
    for name in ("clusters", "predictions"):
        file = folder / f"{name}.parquet"
        if file.exists():
            extra = pd.read_parquet(file)
            customers = customers.merge(extra[[c for c in extra.columns if c in EXPORT_COLUMNS or c == "customer_id"]],
                                        on="customer_id", how="left")
    customers.insert(0, "customer_key", pseudonymize(customers["customer_id"]))
    columns = EXPORT_COLUMNS[:1] + (["customer_id"] if raw_ids else []) + EXPORT_COLUMNS[1:]
    return customers[[c for c in columns if c in customers.columns]].sort_values("customer_key").reset_index(drop=True)


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def headline_metrics(dataset: str, export: pd.DataFrame, outlier_factor: float = 100.0) -> dict[str, Any]:
    """The numbers a run is compared by: size, data kept, model and its holdout error, segments, clusters, AUC.

    ``spend_outliers`` counts customers spending more than ``outlier_factor`` times the median customer.
    """
    from helpers.rfm import spend_outliers

    folder = paths.processed_dir(dataset)
    quality = pd.read_csv(folder / "quality_log.csv")
    clv = _json(folder / "clv_validation.json")
    clusters = _json(folder / "clusters.json")
    classification = _json(folder / "classification.json")
    return {
        "customers": int(len(export)),
        "lines_in": int(quality["rows_before"].iloc[0]),
        "lines_kept": int(quality["rows_after"].iloc[-1]),
        "revenue": round(float(export["monetary_total"].sum()), 2),
        "spend_outliers": int(len(spend_outliers(export.assign(customer_id=export["customer_key"]), outlier_factor))),
        "model": clv.get("chosen_model"),
        "model_params": clv.get("params_full_history"),
        "holdout": clv.get("holdout"),
        "total_clv": round(float(export["clv"].sum()), 2),
        "segments": export["rfm_segment"].value_counts().sort_index().to_dict(),
        "tiers": export["value_tier"].value_counts().sort_index().to_dict(),
        "lifecycle": export["lifecycle_stage"].value_counts().sort_index().to_dict(),
        "clusters_k": clusters.get("k"),
        "silhouette": clusters.get("silhouette"),
        "classifier_auc_tier": (classification.get("q1") or {}).get("model", {}).get("ROC-AUC (one-vs-rest, macro)"),
        "classifier_auc_high_value": (classification.get("q2") or {}).get("model", {}).get("ROC-AUC"),
    }


def published_runs(dataset: str) -> list[Path]:
    """Published run folders of a data set, oldest ``as_of`` first (failed and partial runs excluded)."""
    root = paths.reports_dir() / dataset
    if not root.exists():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "failed"
            and not p.name.endswith("-partial") and (p / "customer_segments.parquet").exists()]
    return sorted(runs, key=lambda p: p.name)


def previous_run(dataset: str, as_of: dt.date, experiment: str | None = None) -> Path | None:
    """The latest published run of the same data set (and experiment) with an earlier ``as_of``."""
    suffix = f"-{experiment}" if experiment else ""
    earlier = []
    for run in published_runs(dataset):
        stamp, rest = run.name[:10], run.name[10:]
        if rest == suffix and stamp < as_of.isoformat():
            earlier.append(run)
    return earlier[-1] if earlier else None


def migration(before: pd.DataFrame, after: pd.DataFrame, column: str = "rfm_segment") -> tuple[pd.DataFrame, pd.DataFrame]:
    """How customers moved between segments from one run to the next.

    Returns the transition matrix (rows: segment before, columns: after; a
    customer new since the earlier run is "(new)") and the flows between
    different segments, largest first.

    >>> b = pd.DataFrame({"customer_key": ["x", "y"], "rfm_segment": ["loyal", "loyal"]})
    >>> a = pd.DataFrame({"customer_key": ["x", "y", "z"], "rfm_segment": ["loyal", "at risk", "new"]})
    >>> migration(b, a)[1].values.tolist()
    [['(new)', 'new', 1], ['loyal', 'at risk', 1]]
    """
    joined = after[["customer_key", column]].merge(before[["customer_key", column]], on="customer_key", how="left",
                                                   suffixes=("_after", "_before"))
    joined[f"{column}_before"] = joined[f"{column}_before"].fillna("(new)")
    matrix = pd.crosstab(joined[f"{column}_before"], joined[f"{column}_after"]).rename_axis(index="before", columns="after")
    flows = (joined[joined[f"{column}_before"] != joined[f"{column}_after"]]
             .groupby([f"{column}_before", f"{column}_after"]).size().rename("customers").reset_index()
             .rename(columns={f"{column}_before": "from", f"{column}_after": "to"})
             .sort_values(["customers", "from", "to"], ascending=[False, True, True]).reset_index(drop=True))
    return matrix, flows


def git_commit() -> str | None:
    """The project's current git commit, if it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True, text=True, timeout=10)
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


def run_manifest(params_yaml: str, dataset: str, experiment: str | None) -> dict[str, Any]:
    """What is needed to reproduce a run: parameters, the input snapshot, package versions, git commit."""
    snapshot = _json(paths.processed_dir(dataset) / "snapshot.json")
    return {
        "dataset": dataset, "experiment": experiment,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "params": params_yaml, "input": {k: snapshot.get(k) for k in ("file", "sha256", "rows", "snapshot_id")},
        "packages": package_versions(), "git_commit": git_commit(),
    }


def render_html(notebook: Path, target: Path) -> Path:
    """Render an executed notebook to self-contained HTML without code cells (images embedded).

    Cells tagged ``report-hide`` are left out, and so are the outputs of cells tagged ``report-hide-output``.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"report-hide"},
                                                         remove_all_outputs_tags={"report-hide-output"}), enabled=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return store.write_text(offline(body), target)


def offline(html: str) -> str:
    """Drop the scripts nbconvert loads from CDNs (require.js, MathJax): the report must open with no network.

    >>> offline('<p>x</p><script src="https://cdn.example/require.js"></script>')
    '<p>x</p>'
    """
    return re.sub(r'<script[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>', "", html)


def append_runs_log(dataset: str, record: dict[str, Any]) -> Path:
    """Add one published run to ``reports/<dataset>/runs.jsonl``."""
    log = paths.reports_dir() / dataset / "runs.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
    return log


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
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
    log = paths.reports_dir() / dataset / "runs.jsonl"
    if not log.exists():
        raise FileNotFoundError(f"no runs recorded for {dataset!r} yet ({log}); run python -m helpers.run first")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
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


def segment_table(export: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Per RFM segment: customers, revenue share, mean CLV, mean P(alive), and the recommended action."""
    g = export.groupby("rfm_segment")
    table = pd.DataFrame({
        "customers": g.size(),
        "revenue_share": g["monetary_total"].sum() / export["monetary_total"].sum(),
        "mean_clv": g["clv"].mean(),
        "mean_p_alive": g["p_alive"].mean(),
    }).join(actions[["action"]])
    return table.sort_values("revenue_share", ascending=False)


def prospects(export: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """The customers most likely to be high value next period (pseudonymous keys only)."""
    cols = ["customer_key", "rfm_segment", "value_tier", "lifecycle_stage", "monetary_total", "clv", "p_high_value"]
    if "p_high_value" not in export.columns:
        return pd.DataFrame(columns=cols)
    return export.sort_values(["p_high_value", "customer_key"], ascending=[False, True]).head(top)[cols]


def save_export(dataset: str, export: pd.DataFrame, metrics: dict[str, Any]) -> dict[str, Path]:
    """Write the export (Parquet and CSV) and the metrics beside the processed data; the runner publishes them."""
    folder = paths.processed_dir(dataset)
    return {
        "parquet": store.write_parquet(export, folder / "customer_segments.parquet"),
        "csv": store.write_text(export.to_csv(index=False), folder / "customer_segments.csv"),
        "metrics": store.write_json(metrics, folder / "metrics.json"),
    }

