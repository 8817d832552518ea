"""The bench's results: speed ratios, agreement checks between the plain and the fast answers, the printed table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def relative_difference(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray) -> float:
    """Largest ``|a - b| / max(|b|, 1e-12)`` (0 for identical inputs).

    >>> relative_difference(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    0.2
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(all="ignore"):
        rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
    return float(np.round(np.nanmax(rel), 12)) if rel.size else 0.0


def _ratio(plain: dict[str, Any], fast: dict[str, Any]) -> float | None:
    """plain / fast seconds, or None when either failed."""
    if "error" in plain or "error" in fast or not fast.get("seconds"):
        return None
    return round(plain["seconds"] / fast["seconds"], 2)


def _peer(steps: dict[str, Any], checks: dict[str, Any]) -> dict[str, float]:
    """PyMC-Marketing's MAP seconds (default priors) / ours per model; ``checks`` gets its parameters' differences
    from ours, with its default priors and with flat priors (then MAP is maximum likelihood)."""
    peer, ratios = steps.get("fit_peer_pymc", {}), {}
    for model in ("bgnbd", "pareto"):
        ours = steps.get(f"fit_{model}_fast", {})
        if not ours.get("params"):
            continue
        timed = peer.get(f"{model}_default", {})
        if timed.get("seconds") and ours.get("seconds"):
            ratios[f"fit_{model}_peer"] = round(timed["seconds"] / ours["seconds"], 2)
        for priors in ("default", "flat"):
            if theirs := peer.get(f"{model}_{priors}", {}).get("params"):
                checks[f"fit_{model}_peer_{priors}_max_rel_diff"] = relative_difference(
                    [theirs[k] for k in ours["params"]], list(ours["params"].values()))
    return ratios


def compare(steps: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """Speed ratios (plain / fast) and the largest relative differences between the answers."""
    ratios, checks = {}, {}
    ratios["clean_summary"] = _ratio(steps["clean_summary_plain"], steps["clean_summary_pipeline"])
    if Path(files["plain"]).exists() and Path(files["fast"]).exists():
        plain, fast = pd.read_parquet(files["plain"]), pd.read_parquet(files["fast"])
        same = plain.index.equals(fast.index)
        checks["summary_same_customers"] = bool(same)
        if same:
            checks["summary_max_rel_diff"] = max(relative_difference(fast[c], plain[c]) for c in plain.columns)
    if "clean_summary_spark" in steps:
        ratios["clean_summary_spark_over_duckdb"] = _ratio(steps["clean_summary_spark"],
                                                           steps["clean_summary_pipeline"])
        if Path(files["spark"]).exists() and Path(files["fast"]).exists():
            on_spark, fast = pd.read_parquet(files["spark"]), pd.read_parquet(files["fast"])
            checks["spark_summary_identical"] = bool(on_spark.equals(fast))
    for model in ("bgnbd", "pareto"):
        plain, fast = steps[f"fit_{model}_plain"], steps[f"fit_{model}_fast"]
        ratios[f"fit_{model}"] = _ratio(plain, fast) if plain.get("converged") else None
        if plain.get("params") and fast.get("params"):
            names = list(plain["params"])
            checks[f"fit_{model}_max_rel_diff"] = relative_difference([fast["params"][k] for k in names],
                                                                      [plain["params"][k] for k in names])
    checks["bgnbd_days_vs_weeks_rel_diff"] = (
        relative_difference(list(steps["fit_bgnbd_fast"]["params"].values()),
                            list(steps["fit_bgnbd_fast_weeks"]["params"].values()))
        if steps["fit_bgnbd_fast"].get("params") and steps["fit_bgnbd_fast_weeks"].get("params") else None)
    ratios.update(_peer(steps, checks))
    ratios["clv_palive"] = _ratio(steps["clv_palive_plain"], steps["clv_palive_fast"])
    if Path(files["clv_plain"]).exists() and Path(files["clv_fast"]).exists():
        plain, fast = pd.read_parquet(files["clv_plain"]), pd.read_parquet(files["clv_fast"])
        checks["clv_max_rel_diff"] = relative_difference(fast["clv"], plain["clv"])
        checks["p_alive_max_rel_diff"] = relative_difference(fast["p_alive"], plain["p_alive"])
    if "simulate_plain" in steps and "shares" in steps["simulate_plain"] and "shares" in steps.get("simulate_fast", {}):
        ratios["simulate"] = _ratio(steps["simulate_plain"], steps["simulate_fast"])
        checks["simulate_share_max_abs_diff"] = round(float(np.max(np.abs(
            np.subtract(steps["simulate_plain"]["shares"], steps["simulate_fast"]["shares"])))), 4)
    intervals = steps.get("intervals_vs_point", {})
    if "error" not in intervals and intervals.get("point_s"):
        ratios["intervals_over_point"] = intervals["intervals_over_point"]
        checks["intervals_point_max_rel_diff"] = intervals["point_max_rel_diff"]
    return {"ratios": ratios, "checks": checks}


def table(results: dict[str, Any]) -> str:
    """The printed summary: seconds and peak memory per step, ratios and checks per size."""
    out = []
    for size, res in results["sizes"].items():
        out.append(f"\n== {size}: {res['customers']:,} customers, "
                   f"{res['steps']['clean_summary_pipeline'].get('lines_in', 0):,} lines ==")
        out.append(f"{'step':<28}{'seconds':>10}{'peak MB':>10}  note")
        for name, s in res["steps"].items():
            note = s.get("error") or s.get("skipped") or ("" if s.get("converged", True) else s.get("message", ""))
            seconds = "-" if s.get("seconds") is None else s["seconds"]
            out.append(f"{name:<28}{seconds:>10}{s.get('peak_mb', 0):>10}  {note[:60]}")
            for stage, st in s.get("stages", {}).items():
                out.append(f"  {stage:<26}{st['seconds']:>10}{st['peak_mb']:>10}")
        out.append("ratios (plain / fast; *_peer: PyMC-Marketing's MAP / ours; intervals_over_point: intervals / "
                   "point estimates; spark_over_duckdb: Spark / DuckDB): "
                   + ", ".join(f"{k} {v}x" for k, v in res["ratios"].items()))
        out.append("checks: " + ", ".join(f"{k} {v}" for k, v in res["checks"].items()))
    if "out_of_core" in results:
        r = results["out_of_core"]
        out.append(f"\n== out of core: {r.get('lines_in', 0):,} lines, {r.get('customers', 0):,} customers ==")
        out.append(r.get("error") or f"DuckDB clean + purchase days {r['seconds']} s (clean {r['clean_s']} s, "
                                      f"purchase days {r['summary_s']} s), peak {r['peak_mb']} MB")
    return "\n".join(out)
