"""Stage 08 and the runner's report: export privacy, metrics, migration between runs, experiments compared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from helpers import paths, report
from helpers.compare import main as compare_main
from helpers.i18n import translate, translate_frame
from helpers.privacy import pseudonymize
from helpers.run import run
from tests_support import assert_raw_intact, raw_fingerprint

pytestmark = pytest.mark.notebooks


def test_pseudonyms_are_stable_keyed_and_not_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = pd.Series(["00001", "12417", "00001"])
    monkeypatch.setenv("CIN_PSEUDONYM_KEY", "one")
    first = pseudonymize(ids)
    assert first.iloc[0] == first.iloc[2] and first.iloc[0] != first.iloc[1]
    assert not set(first) & set(ids)
    monkeypatch.setenv("CIN_PSEUDONYM_KEY", "two")
    assert (pseudonymize(ids) != first).all()  # without the key, the mapping cannot be rebuilt


def test_migration_counts_every_customer_once() -> None:
    before = pd.DataFrame({"customer_key": list("abcd"), "rfm_segment": ["loyal", "loyal", "at risk", "lost"]})
    after = pd.DataFrame({"customer_key": list("abcde"), "rfm_segment": ["loyal", "at risk", "loyal", "lost", "new customers"]})
    matrix, flows = report.migration(before, after)
    assert matrix.to_numpy().sum() == 5
    assert matrix.loc["loyal", "at risk"] == 1 and matrix.loc["(new)", "new customers"] == 1
    assert flows["customers"].sum() == 3


def test_translations_cover_every_segment_tier_stage_and_action() -> None:
    import yaml

    segment_map = yaml.safe_load((paths.PARAMS_DIR / "segment_maps" / "default.yaml").read_text())
    texts = list(segment_map["segments"]) + list(segment_map["tiers"]) + \
        [v["action"] for v in segment_map["segments"].values()] + [v["action"] for v in segment_map["tiers"].values()] + \
        ["acquisition", "growth", "maturity", "decline", "termination"]
    missing = [x for x in texts if translate(x, "zh") == x]
    assert missing == []
    table = translate_frame(pd.DataFrame({"customers": [1]}, index=pd.Index(["at risk"], name="segment")), "zh")
    assert table.index.tolist() == ["流失风险客户"] and table.columns.tolist() == ["客户数"]


@pytest.fixture(scope="module")
def two_reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIN_DATA_DIR", str(root / "data"))
        mp.setenv("CIN_REPORTS_DIR", str(root / "reports"))
        mp.setenv("CIN_PSEUDONYM_KEY", "test-key")
        raw = raw_fingerprint(root / "data")
        earlier = run("cdnow_sample.yaml", {"as_of": "1998-03-31"}, log=lambda _: None)
        later = run("cdnow_sample.yaml", log=lambda _: None)
        yield earlier, later
        assert_raw_intact(raw, root / "data")  # after these runs and the reruns of the tests below


def test_a_run_publishes_report_export_metrics_and_manifest(two_reports: tuple[Path, Path]) -> None:
    _, later = two_reports
    for name in ("report.html", "customer_segments.parquet", "customer_segments.csv", "metrics.json", "manifest.json",
                 "params.yaml", "08-segment-report.ipynb"):
        assert (later / name).exists(), name
    export = pd.read_parquet(later / "customer_segments.parquet")
    assert len(export) == 2_357 and "customer_id" not in export.columns
    assert export["customer_key"].str.fullmatch(r"[0-9a-f]{16}").all()
    raw_ids = pd.read_parquet(paths.processed_dir("cdnow_sample") / "transactions.parquet")["customer_id"].unique()
    html = (later / "report.html").read_text()
    csv = (later / "customer_segments.csv").read_text()
    assert not any(f">{i}<" in html or f"\n{i}," in csv for i in raw_ids[:200])
    assert "<img" in html and "data:image/png;base64" in html and "def " not in html  # no code cells, images embedded
    metrics = json.loads((later / "metrics.json").read_text())
    assert metrics["customers"] == 2_357 and metrics["holdout"]["rmse"] > 0
    manifest = json.loads((later / "manifest.json").read_text())
    assert manifest["input"]["rows"] == 6_919 and len(manifest["input"]["sha256"]) == 64
    assert manifest["packages"]["lifetimes"] == "0.11.3"


def test_the_later_report_shows_migration_from_the_earlier_one(two_reports: tuple[Path, Path]) -> None:
    earlier, later = two_reports
    assert report.previous_run("cdnow_sample", pd.Timestamp("1998-06-30").date()) == earlier
    html = (later / "report.html").read_text()
    assert "compared with the report of 1998-03-31" in html
    assert "This is the first report" in (earlier / "report.html").read_text()
    before = pd.read_parquet(earlier / "customer_segments.parquet")
    after = pd.read_parquet(later / "customer_segments.parquet")
    matrix, flows = report.migration(before, after)
    assert matrix.to_numpy().sum() == 2_357 and flows["customers"].sum() > 0


def test_experiments_at_one_as_of_are_kept_apart_and_compared(two_reports: tuple[Path, Path],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, later = two_reports
    variant = run("cdnow_sample.yaml", {"rfm.abc_cuts": "[0.1, 0.3]", "clusters.k": "3"}, experiment="k3",
                  log=lambda _: None)
    assert variant.name == "1998-06-30-k3" and later.exists()
    table = report.compare_runs("cdnow_sample")
    assert table["run"].tolist() == ["1998-03-31", "1998-06-30", "1998-06-30-k3"]
    assert {"as_of", "clusters.k", "experiment", "rfm.abc_cuts"} <= set(table.columns)
    assert table["holdout_rmse"].notna().all()
    assert compare_main(["cdnow_sample"]) == 0
    assert "1998-06-30-k3" in capsys.readouterr().out


def _close(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-5, abs=1e-9)
    return a == b


def test_a_rerun_with_the_same_parameters_gives_the_same_numbers(two_reports: tuple[Path, Path]) -> None:
    """Discrete results are identical; continuous ones agree to floating-point noise.

    Model fits amplify differences in the last bits of numpy's sums (which depend on memory
    alignment), so fitted parameters can differ around the seventh digit between processes.
    """
    _, later = two_reports
    before_export = pd.read_parquet(later / "customer_segments.parquet")
    before_metrics = json.loads((later / "metrics.json").read_text())
    again = run("cdnow_sample.yaml", log=lambda _: None)
    assert again == later
    after_export = pd.read_parquet(again / "customer_segments.parquet")
    discrete = ["customer_key", "r_score", "f_score", "m_score", "rfm_segment", "abc_class", "value_tier",
                "lifecycle_stage", "cluster", "predicted_tier", "prospect"]
    pd.testing.assert_frame_equal(after_export[discrete], before_export[discrete])
    pd.testing.assert_frame_equal(after_export, before_export, check_exact=False, rtol=1e-5)
    assert _close(json.loads((again / "metrics.json").read_text()), before_metrics)
