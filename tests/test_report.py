"""Stage 08 and the runner's report: export privacy, metrics, migration between runs, experiments compared."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers.catalog import Catalog
from helpers import history, migration, paths
from helpers.config import load_params
from helpers.compare import main as compare_main
from helpers.i18n import translate, translate_frame
from helpers.privacy import pseudonymize
from helpers.report_forecast import NO_INTERVALS, NO_MONTHS, NO_TRACKING
from helpers.names import TIERS
from helpers.plots import report as show
from helpers.run import run
from helpers.stages import run_stage
from helpers.stages.report import report as report_stage
from tests_support import QUICK, assert_raw_intact, pipeline_run, raw_fingerprint

pytestmark = pytest.mark.notebooks
#: The value per customer and month, beside the customer export in the report folder.
MONTH_FILES = ("customer_value_by_month.parquet", "customer_value_by_month.csv")
#: What ``python -m helpers.run`` printed for the later report of :func:`two_reports` (run in a subprocess).
CONSOLE: dict[str, str] = {}
PROGRESS = [r"run \S+ as_of \S+ \(\d+ stages\) -> \S+", r"  \d\d-[a-z-]+ +\d+\.\ds  peak [\d,]+ MB", r"done in \d+\.\ds: \S+",
            r"report: \S+report\.html"]


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
    matrix, flows = migration.migration(before, after)
    assert matrix.to_numpy().sum() == 5
    assert matrix.loc["loyal", "at risk"] == 1 and matrix.loc["(new)", "new customers"] == 1
    assert flows["customers"].sum() == 3


def test_migration_summary_counts_by_state_not_by_segment_name() -> None:
    # a custom map: none of the default names, so name lists would count 0
    states = {"stars": "active", "newbies": "new", "dozing": "cooling", "fading": "slipping", "gone": "lost"}
    before = pd.DataFrame({"customer_key": list("abcdefgh"),
                           "rfm_segment": ["stars", "stars", "newbies", "dozing", "fading", "gone", "fading", "retired"]})
    after = pd.DataFrame({"customer_key": list("abcdefghi"),
                          "rfm_segment": ["fading", "gone", "gone", "gone", "stars", "newbies", "gone", "stars", "gone"]})
    _, flows = migration.migration(before, after)
    s = migration.migration_summary(flows, states)
    # slipping away: a, b (active), c (new), d (cooling); fading -> gone (g) is not a new slip; i is new since
    assert (s["slipping_away"], s["won_back"], s["unplaced"]) == (4, 1, 1)  # won back: e; f went to newbies, not active
    assert s["text"].startswith("Slipping away: 4 customers moved from a new, active or cooling segment into a "
                                "slipping or lost one (fading, gone); won back: 1 moved from there into an active one (stars).")
    assert "1 customers moved from or to segments the segment map gives no state (retired)" in s["text"]
    none = migration.migration_summary(flows, None)
    assert none["has_states"] is False and none["slipping_away"] is None and none["won_back"] is None
    assert "cannot tell customers slipping away from customers won back" in none["text"]


def test_translations_cover_every_segment_tier_stage_and_action() -> None:
    import yaml

    segment_map = yaml.safe_load((paths.PARAMS_DIR / "segment_maps" / "default.yaml").read_text())
    texts = list(segment_map["segments"]) + list(segment_map["tiers"]) + \
        [v["action"] for v in segment_map["segments"].values()] + [v["action"] for v in segment_map["tiers"].values()] + \
        [v[k] for v in segment_map["abc"].values() for k in ("name", "meaning", "action")] + \
        ["acquisition", "growth", "maturity", "decline", "termination"]
    missing = [x for x in texts if translate(x, "zh") == x]
    assert missing == []
    # the material's own terms for the pyramid tiers and the A/B/C classes
    assert [translate(x, "zh") for x in ("platinum", "gold", "iron", "lead")] == ["白金客户", "黄金客户", "铁质客户", "铅质客户"]
    assert [translate(segment_map["abc"][c]["name"], "zh") for c in "ABC"] == ["关键客户", "主要客户", "普通客户"]
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
        earlier = pipeline_run("cdnow_sample.yaml", QUICK | {"as_of": "1998-03-31"})  # in-process: no notebooks, no HTML
        # the later one as a user runs it, through the notebooks, to see everything it prints and the HTML
        quick = [arg for name, value in QUICK.items() for arg in ("-p", name, value)]  # what no test here checks
        done = subprocess.run([sys.executable, "-m", "helpers.run", "-f", "params/cdnow_sample.yaml", *quick], env=os.environ.copy(),
                              cwd=paths.PROJECT_ROOT, capture_output=True, text=True, timeout=1200)
        CONSOLE.update(stdout=done.stdout, stderr=done.stderr, returncode=str(done.returncode))
        assert done.returncode == 0, done.stderr
        later = paths.reports_dir() / "cdnow_sample" / "1998-06-30"
        yield earlier, later
        assert_raw_intact(raw, root / "data")  # after these runs and the reruns of the tests below


def test_a_run_publishes_report_export_metrics_and_manifest(two_reports: tuple[Path, Path]) -> None:
    _, later = two_reports
    for name in ("report.html", "customer_segments.parquet", "customer_segments.csv", "metrics.json", "manifest.json",
                 "params.yaml", "08-segment-report.ipynb", *MONTH_FILES):
        assert (later / name).exists(), name
    export = pd.read_parquet(later / "customer_segments.parquet")
    assert len(export) == 2_357 and "customer_id" not in export.columns
    assert export["customer_key"].str.fullmatch(r"[0-9a-f]{16}").all()
    raw_ids = pd.read_parquet(Catalog.of(load_params("cdnow_sample.yaml")).path("transactions"))["customer_id"].unique()
    html = (later / "report.html").read_text()
    csv = (later / "customer_segments.csv").read_text()
    assert not any(f">{i}<" in html or f"\n{i}," in csv for i in raw_ids[:200])
    assert "<img" in html and "data:image/png;base64" in html and "def " not in html  # no code cells, images embedded
    metrics = json.loads((later / "metrics.json").read_text())
    assert metrics["customers"] == 2_357 and metrics["holdout"]["rmse"] > 0
    manifest = json.loads((later / "manifest.json").read_text())
    assert manifest["input"]["rows"] == 6_919 and len(manifest["input"]["sha256"]) == 64
    assert manifest["packages"]["lifetimes"] == "0.11.3"
    assert manifest["files"] == ["customer_segments.parquet", "customer_segments.csv", *MONTH_FILES, "metrics.json"]
    printed = [line.split() for line in CONSOLE["stdout"].splitlines() if re.fullmatch(PROGRESS[1], line)]
    assert [[s["stage"], f"{s['seconds']:.1f}s", "peak", f"{s['peak_mb']:,}", "MB"] for s in manifest["stages"]] == printed
    assert len(printed) == 8 and all(s["peak_mb"] > 100 for s in manifest["stages"])  # the runner and its kernel
    # the value per customer and month: keyed like the export, no raw ids, the months sum to each customer's CLV
    months = pd.read_parquet(later / MONTH_FILES[0])
    assert "customer_id" not in months.columns and months["customer_key"].tolist() == export["customer_key"].tolist()
    assert months.columns[1:].tolist() == [f"clv_month_{m:02d}" for m in range(1, 13)]
    assert (months.iloc[:, 1:].sum(axis=1) - export["clv"]).abs().max() < 1e-6
    months_csv = (later / MONTH_FILES[1]).read_text()
    assert months_csv.startswith("customer_key,clv_month_01,") and not any(f"\n{i}," in months_csv for i in raw_ids[:200])


def test_the_report_shows_intervals_tracking_and_value_by_month_from_stage_05(two_reports: tuple[Path, Path]) -> None:
    """The forecast sections of report.html say the numbers of stage 05's artifacts (read here, not from stage 08)."""
    from helpers.clv.intervals import tier_changes
    from helpers.tiers import is_high

    _, later = two_reports
    html = (later / "report.html").read_text()
    run05 = Catalog.of(load_params("cdnow_sample.yaml"))
    customers = run05.read_parquet("customers")
    cut = customers.loc[is_high(customers["clv"], 0.2), "clv"].min()  # tiers.potential_high_share
    n80, n95 = (int(tier_changes(customers["clv"], customers[f"clv_low_{lv}"], customers[f"clv_high_{lv}"], [cut])
                    ["uncertain"].sum()) for lv in (80, 95))
    assert 0 < n80 < n95 and f"Within their 80% interval, {n80:,} of 2,357 customers" in html
    assert f"(CLV {cut:,.2f}) and so change value tier; within the 95% interval, {n95:,} could." in html
    holdout = run05.read_parquet("tracking").query("phase == 'holdout'")
    assert (f"they made {holdout['actual'].sum():,.0f} repeat purchases; the model expected "
            f"{holdout['expected'].sum():,.0f}") in html
    months = run05.read_parquet("value_per_period").drop(columns="customer_id")
    assert months.to_numpy().sum() == pytest.approx(customers["clv"].sum(), rel=1e-9)
    assert f"Month by month, the {customers['clv'].sum():,.0f} of value predicted over the next 12 months" in html
    new = run05.read_json("clv_validation")
    assert (f"expected to make {new['new_customer_purchases']:.2f} repeat purchases worth "
            f"{new['new_customer_value']:,.2f} over the same 12 months") in html
    assert "the most it is worth spending to acquire one, before margins" in html
    sections = [html.index(title) for title in ("Model validation", "Repeat purchases: the model against what happened",
                                                "How sure the predicted value is",
                                                "Value month by month, and of a new customer")]
    assert sections == sorted(sections) and html.count("data:image/png;base64") >= 5  # with the two new figures


def test_a_successful_run_prints_only_its_progress_lines(two_reports: tuple[Path, Path]) -> None:
    """No kernel log lines (``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel``), tracebacks or warnings."""
    _, later = two_reports
    assert CONSOLE["stderr"] == "", f"the run wrote to stderr:\n{CONSOLE['stderr']}"
    lines = CONSOLE["stdout"].splitlines()
    unexpected = [line for line in lines if not any(re.fullmatch(p, line) for p in PROGRESS)]
    assert unexpected == [] and len(lines) == 11  # the run line, 8 stages, done, report
    assert lines[-1] == f"report: {later / 'report.html'}"


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--log-level=0"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (make system-deps)")
        pytest.skip("chromium is not installed (make system-deps installs it)")
    return found


def test_report_renders_in_chromium_without_console_errors(two_reports: tuple[Path, Path], tmp_path: Path) -> None:
    """The HTML report opens in a real browser (headless Chromium) with no console errors and no network.

    Before the rerun below replaces the report folder with an in-process run's (no HTML).
    """
    browser = chromium()
    html = two_reports[1] / "report.html"
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", html.as_uri()],
                             capture_output=True, text=True, timeout=120)
    assert "Customer identification report" in dom.stdout
    assert dom.stdout.count("data:image/png;base64") >= 3
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    assert "net::ERR" not in dom.stderr  # nothing fetched from the network
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,2400",
                        f"--screenshot={shot}", html.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000  # a page with tables and plots, not a blank one


def test_the_later_report_shows_migration_from_the_earlier_one(two_reports: tuple[Path, Path]) -> None:
    earlier, later = two_reports
    assert history.previous_run("cdnow_sample", pd.Timestamp("1998-06-30").date()) == earlier
    html = (later / "report.html").read_text()
    assert "compared with the report of 1998-03-31" in html
    before = pd.read_parquet(earlier / "customer_segments.parquet")
    after = pd.read_parquet(later / "customer_segments.parquet")
    matrix, flows = migration.migration(before, after)
    assert matrix.to_numpy().sum() == 2_357 and flows["customers"].sum() > 0


@pytest.fixture()
def staged_later(two_reports: tuple[Path, Path], tmp_path: Path) -> Catalog:
    """A copy of the later run's artifacts (stage 08 rewrites its export there, not in the run's own folder)."""
    run_catalog = Catalog.of(load_params("cdnow_sample.yaml"))
    shutil.copytree(run_catalog.folder, tmp_path / "run")
    return Catalog(run_catalog.dataset, run_catalog.run, tmp_path / "run")


def test_the_stage_function_returns_what_the_published_report_shows(two_reports: tuple[Path, Path],
                                                                     staged_later: Catalog,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Stage 08 in this process, on the later run's artifacts: the published export and metrics, every section."""
    _, later = two_reports
    r = run_stage("08-segment-report", load_params("cdnow_sample.yaml"), staged_later)
    pd.testing.assert_frame_equal(r.export, pd.read_parquet(later / "customer_segments.parquet"))
    assert pd.read_parquet(staged_later.path("customer_segments")).equals(r.export)
    assert staged_later.path("customer_segments_csv").read_text() == (later / "customer_segments.csv").read_text()
    published = json.loads((later / "metrics.json").read_text())
    assert _close(staged_later.read_json("metrics"), published) and _close(r.metrics, published)
    assert r.headline.loc["customers", "cdnow_sample"] == "2,357" and r.forecast
    assert r.segments["customers"].sum() == 2_357 and set(r.segments.index) == set(r.export["rfm_segment"])
    assert r.segments["action"].notna().all()
    assert list(r.tiers.index) == list(TIERS) and r.tiers["customers"].sum() == 2_357 and r.no_pyramid is None
    assert r.clusters["customers"].sum() == 2_357 and len(r.clusters) == published["clusters_k"]
    assert r.prospects.empty is False and r.withheld.startswith("No prospects are flagged")  # CDNOW: RFM wins
    assert f"ROC-AUC {published['classifier_auc_high_value']:.2f}" in r.classifier
    assert r.validation.startswith("Lifetime value comes from **Pareto/NBD") and "273 days" in r.validation
    assert "Read these numbers with care" in r.caveats_html
    # migration: against the published earlier report, found by its recorded as_of
    assert r.previous == "1998-03-31" and r.no_previous is None and r.matrix.to_numpy().sum() == 2_357
    assert r.changed == f"compared with the report of 1998-03-31: {r.flows['customers'].sum():,} customers changed segment"
    assert r.moved["has_states"] and r.moved["slipping_away"] > 0 and r.moved["won_back"] > 0
    assert set(r.ladders) == {"value_tier", "abc_class"} and len(r.ladder_texts) == 2  # by tier and by class too
    assert r.summary.startswith("The 20% of customers in classes A and B") and len(show.ladder_figure(r).axes) == 2
    assert r.runs is not None and "1998-03-31" in r.runs["run"].tolist()
    assert len(show.value_figure(r).axes) == 2 and len(show.lifecycle_figure(r).axes) == 2
    assert "(1998-03-31)" in show.migration_figure(r).axes[0].get_title()
    assert r.tracking.equals(staged_later.read_parquet("tracking")) and len(show.tracking_figure(r).axes) == 2
    assert r.by_month["value"].sum() == pytest.approx(published["total_clv"], abs=0.01) and r.top_clv is not None
    assert pd.read_parquet(staged_later.path("customer_value_by_month")).equals(pd.read_parquet(later / MONTH_FILES[0]))
    assert show.segments(r).data.index.name == "segment"
    assert r.segments_note == "" and "fixed sample" not in r.validation  # Pareto/NBD, every customer fitted
    import html

    import IPython.display

    capsys.readouterr()
    displayed: list = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IPython.display, "display", lambda *shown, **_: displayed.extend(shown))
        show.prospects(r)  # withheld: the sentence as a paragraph, not the table
        show.runs(r)
    assert [type(d).__name__ for d in displayed] == ["HTML", "DataFrame"]
    assert displayed[0].data == f"<p>{html.escape(r.withheld)}</p>" and "1998-03-31" in displayed[1]["run"].tolist()
    assert capsys.readouterr().out.startswith("parameters that differ between runs")
    assert "None" not in displayed[1].to_string() and "NaN" not in displayed[1].to_string()  # dashes


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_bgnbd_run_fitted_on_a_sample_says_so_and_leaves_one_time_buyers_out_of_p_alive(
        staged_later: Catalog, language: str) -> None:
    """BG/NBD gives every one-time buyer P(alive) = 1: the segment table averages the repeat buyers, and a
    segment of one-time buyers shows none instead of 1.00; a sampled fit is said in the validation paragraph."""
    check = staged_later.read_json("clv_validation")
    check |= {"chosen_model": "BG/NBD (penalizer 0)", "sample": {"customers": 1_000, "of": 2_357}}
    staged_later.write_json("clv_validation", check)
    r = report_stage(load_params("cdnow_sample.yaml", {"language": language}), staged_later)
    repeat = r.export[r.export["frequency"] > 1]
    expected = repeat.groupby("rfm_segment")["p_alive"].mean().reindex(r.segments.index)
    pd.testing.assert_series_equal(r.segments["mean_p_alive"], expected, check_names=False)
    one_time = set(r.export.loc[r.export["frequency"] == 1, "rfm_segment"]) - set(repeat["rfm_segment"])
    assert one_time and r.segments.loc[sorted(one_time), "mean_p_alive"].isna().all()
    note = translate("Mean P(alive) is over each segment's repeat buyers: BG/NBD gives every one-time buyer "
                     "P(alive) = 1 by construction, which says nothing about them, so a segment of one-time "
                     "buyers shows none.", language)
    assert r.segments_note == note and note in show.segments(r).to_html()
    assert ("1,000" in r.validation and "2,357" in r.validation
            and ("fixed sample" in r.validation) == (language == "en"))


def test_the_stage_function_speaks_the_report_language(staged_later: Catalog) -> None:
    r = report_stage(load_params("cdnow_sample.yaml", {"language": "zh"}), staged_later)
    assert r.t("Headline numbers") == translate("Headline numbers", "zh") != "Headline numbers"
    assert translate("customers", "zh") in r.headline.index and "customers" not in r.headline.index
    assert translate("Read these numbers with care", "zh") in r.caveats_html
    flows = show.flows(r)
    assert list(flows.columns) == [translate(c, "zh") for c in ("from", "to", "customers")]
    assert flows.iloc[:, 0].tolist() == [translate(s, "zh") for s in r.flows["from"].head(10)]


def test_an_as_of_before_every_report_has_nothing_to_compare_with(two_reports: tuple[Path, Path],
                                                                  staged_later: Catalog) -> None:
    r = report_stage(load_params("cdnow_sample.yaml", {"as_of": "1998-03-31"}), staged_later)
    assert r.previous is None and r.matrix is None and r.moved is None
    assert r.no_previous.startswith("No earlier report to compare with: migration needs a published report of the "
                                    "scheduled runs (no experiment) with an as_of before 1998-03-31")


def test_experiments_at_one_as_of_are_kept_apart_and_compared(two_reports: tuple[Path, Path],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, later = two_reports
    raw_id = "00004"  # a CDNOW customer; the report and the run's records must show only its key
    variant = pipeline_run("cdnow_sample.yaml", QUICK | {"rfm.abc_cuts": "[0.1, 0.3]", "clusters.k": "3",
                                                 "clv.example_customer": f"'{raw_id}'"}, experiment="k3")
    assert variant.name == "1998-06-30-k3" and later.exists()
    assert "clv.example_customer looks like a raw customer id; it is stored as its pseudonymous key" in capsys.readouterr().err
    key = pseudonymize(pd.Series([raw_id])).item()
    recorded = json.loads((paths.reports_dir() / "cdnow_sample" / "runs.jsonl").read_text().splitlines()[-1])
    manifest = json.loads((variant / "manifest.json").read_text())
    for stored in (yaml.safe_load((variant / "params.yaml").read_text()), yaml.safe_load(manifest["params"]),
                   recorded["params"]):
        assert stored["clv"]["example_customer"] == key
    for text in ((variant / "params.yaml").read_text(), json.dumps(manifest), json.dumps(recorded)):
        assert f"'{raw_id}'" not in text and f'"{raw_id}"' not in text and f": {raw_id}" not in text
    shown = history.no_previous_text("cdnow_sample", pd.Timestamp("1998-06-30").date(), "k3")  # the report's words
    assert "This is the first report" not in shown and "No earlier report to compare with" in shown  # runs exist
    table = history.compare_runs("cdnow_sample")
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

    The first run went through the notebooks, the rerun calls the stage functions in this process
    (:func:`tests_support.pipeline_run`): the notebooks and the functions give the same report.

    Model fits amplify differences in the last bits of numpy's sums (which depend on memory
    alignment), so fitted parameters can differ around the seventh digit between processes.
    """
    _, later = two_reports
    before_export = pd.read_parquet(later / "customer_segments.parquet")
    before_metrics = json.loads((later / "metrics.json").read_text())
    again = pipeline_run("cdnow_sample.yaml", QUICK)  # the parameters of the run through the notebooks
    assert again == later
    after_export = pd.read_parquet(again / "customer_segments.parquet")
    discrete = ["customer_key", "r_score", "f_score", "m_score", "rfm_segment", "abc_class", "value_tier",
                "lifecycle_stage", "cluster", "predicted_tier", "prospect"]
    pd.testing.assert_frame_equal(after_export[discrete], before_export[discrete])
    pd.testing.assert_frame_equal(after_export, before_export, check_exact=False, rtol=1e-5)
    assert _close(json.loads((again / "metrics.json").read_text()), before_metrics)


def test_caveats_and_the_no_forecast_guard_reach_the_report(two_reports: tuple[Path, Path]) -> None:
    """Stage artifacts with caveats and no forecast (written here), then stage 08 alone, with an empty title."""
    folder = Catalog.of(load_params("cdnow_sample.yaml")).folder
    saved = {name: (folder / name).read_text() for name in ("clv_validation.json", "clusters.json")}
    try:
        clv = json.loads(saved["clv_validation.json"]) | {
            "forecast": False, "forecast_reason": "only 3 customers bought twice",
            "caveats": [{"code": "weak_holdout", "text": "The holdout held 20 purchases & a rank correlation of 0.05."}]}
        clusters = json.loads(saved["clusters.json"]) | {"caveats": [{"code": "tiny_cluster", "text": "One cluster holds 0.6%."}]}
        (folder / "clv_validation.json").write_text(json.dumps(clv))
        (folder / "clusters.json").write_text(json.dumps(clusters))
        partial = run("cdnow_sample.yaml", {"title": "''"}, stages=["08"], log=lambda _: None)
    finally:
        for name, text in saved.items():
            (folder / name).write_text(text)
    metrics = json.loads((partial / "metrics.json").read_text())
    codes = [(c["stage"], c["code"]) for c in metrics["caveats"]]
    assert {("05-clv-lifetimes", "weak_holdout"), ("06-cluster-segments", "tiny_cluster"),
            ("08-segment-report", "no_forecast")} <= set(codes)
    assert metrics["forecast"] is False and metrics["total_clv"] is None
    html = (partial / "report.html").read_text()
    assert html.index("Headline numbers") < html.index("Read these numbers with care") < html.index("Segments and what to do")
    assert "The holdout held 20 purchases &amp; a rank correlation of 0.05." in html
    assert "No lifetime value or P(alive) forecast in this run: only 3 customers bought twice." in html
    assert "predicted value over the horizon" not in html and "probably still active" not in html
    assert "****" not in html and "<strong>cdnow_sample</strong>" in html  # empty title: the dataset name
    for why in (NO_INTERVALS, NO_TRACKING, NO_MONTHS):  # each forecast section says why it is absent
        assert why in html, why
    months = pd.read_parquet(partial / MONTH_FILES[0])  # the month export: empty, with its columns
    assert months.empty and months.columns.tolist() == ["customer_key", *(f"clv_month_{m:02d}" for m in range(1, 13))]


def visible_text(html: str) -> str:
    """What a reader of ``html`` sees: no styles, scripts, embedded images or tags."""
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.DOTALL | re.IGNORECASE)
    html = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", html)
    return re.sub(r"<[^>]+>", " ", html)


def test_the_chinese_report_has_no_english_sentence(two_reports: tuple[Path, Path]) -> None:
    """Stage 08's notebook rendered with ``language: zh`` (on the later run's artifacts): no run of three English words."""
    from helpers.i18n import english_runs

    partial = run("cdnow_sample.yaml", QUICK | {"language": "zh"}, stages=["08"], log=lambda _: None)
    text = visible_text((partial / "report.html").read_text(encoding="utf-8"))
    assert "白金客户" in text and "关键客户" in text  # the course's own terms
    assert english_runs(text) == []
