"""Caveats travel with the headline numbers: gathered from the stage artifacts, added by the report, shown in a box.

Unit tests on synthetic artifacts in a temporary data folder (no notebook runs); the end-to-end check is
in tests/test_report.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from helpers.catalog import Catalog
from helpers import history, paths, report
from helpers.i18n import translate

Q2_WORSE = {"model": {"ROC-AUC": 0.717}, "RFM-score baseline": {"ROC-AUC": 0.75}}


def _export(n: int = 10, p_alive: float | None = 0.4, prospects: int = 0) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_key": [f"{i:016x}" for i in range(n)], "monetary_total": [float(10 + i) for i in range(n)],
        "p_alive": [p_alive] * n, "clv": [None if p_alive is None else 5.0] * n,
        "rfm_segment": ["loyal"] * n, "prospect": [i < prospects for i in range(n)],
    })


def _run(dataset: str) -> Catalog:
    """A run's catalog in the test's data folder."""
    return Catalog(dataset, "2020-01-01", paths.data_dir() / "processed" / dataset / "2020-01-01")


def _write(folder: Path, name: str, content: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(content))


def test_caveats_are_gathered_from_each_stage_with_its_name(isolated: Path) -> None:
    folder = _run("toy").folder
    _write(folder, "clv_validation.json", {"caveats": [{"code": "weak_holdout", "text": "The holdout held 20 purchases."}]})
    _write(folder, "clusters.json", {"caveats": [{"code": "tiny_cluster", "text": "One cluster holds 0.6%."},
                                                 {"code": "empty", "text": "  "}, "A bare sentence."]})
    _write(folder, "classification.json", {"q2": Q2_WORSE, "caveats": [{"text": "AUC near-tautological."}]})
    caveats = report.gather_caveats(_run("toy"), _export())
    assert [(c["stage"], c["code"]) for c in caveats] == [
        ("05-clv-lifetimes", "weak_holdout"), ("06-cluster-segments", "tiny_cluster"),
        ("06-cluster-segments", "unspecified"), ("07-classify-prospects", "unspecified"),
        ("08-segment-report", "no_prospects")]
    assert all(set(c) == {"stage", "code", "text"} and c["text"] for c in caveats)
    assert "(ROC-AUC 0.717 vs 0.750)" in caveats[-1]["text"]


def test_missing_artifacts_and_keys_are_tolerated(isolated: Path) -> None:
    assert report.stage_caveats(_run("nothing")) == []
    folder = _run("old").folder
    _write(folder, "clv_validation.json", {"chosen_model": "BG/NBD"})  # an artifact from before the contract
    _write(folder, "clusters.json", {"caveats": None})
    assert report.gather_caveats(_run("old"), _export(prospects=3)) == []  # a forecast, prospects: nothing to say


def test_no_forecast_means_no_clv_headline_and_a_sentence_why(isolated: Path) -> None:
    folder = _run("toy").folder
    _write(folder, "clv_validation.json", {"forecast": False,
                                           "forecast_reason": "only 12 customers bought twice (a forecast needs 50)"})
    export = _export(p_alive=None, prospects=2)
    caveats = report.gather_caveats(_run("toy"), export)
    assert [c["code"] for c in caveats] == ["no_forecast"]
    assert caveats[0]["text"].startswith("No lifetime value or P(alive) forecast in this run: only 12 customers")
    metrics = {"customers": 10, "lines_in": 20, "lines_kept": 20, "revenue": 145.0, "spend_outliers": 0,
               "forecast": False, "total_clv": None, "prospects": 2}
    rows = report.headline_rows(metrics, export, 12, 100.0)
    assert not [k for k in rows if "predicted value" in k or "P(alive)" in k]
    assert rows["prospects flagged"] == "2"
    with_forecast = report.headline_rows(metrics | {"forecast": True, "total_clv": 50.0}, _export(), 12, 100.0)
    assert with_forecast["predicted value over the horizon (months): 12"] == "50"
    assert with_forecast["customers probably still active (P(alive) >= 0.5)"] == "0%"
    stricter = report.headline_rows(metrics | {"forecast": True, "total_clv": 50.0, "decline_p_alive": 0.0001}, _export(), 12, 100.0)
    assert stricter["customers probably still active (P(alive) >= 0.0001)"] == "100%"  # the run's lifecycle.decline_p_alive


def test_prospects_withheld_say_why_instead_of_listing_none(isolated: Path) -> None:
    _write(_run("toy").folder, "classification.json", {"q2": Q2_WORSE})
    export = _export(prospects=0)
    caveats = report.gather_caveats(_run("toy"), export)
    assert [c["code"] for c in caveats] == ["no_prospects"] and "did not beat its RFM-score baseline" in caveats[0]["text"]
    rows = report.headline_rows({"customers": 10, "lines_in": 1, "lines_kept": 1, "revenue": 1.0, "spend_outliers": 0,
                                 "total_clv": 1.0, "prospects": 0}, export, 12, 100.0)
    assert rows["prospects flagged"] == "none (see the note below)"
    assert "did not run" in report.prospects_withheld(export, {})  # stage 07 skipped the question
    better_auc = {"q2": {"model": {"ROC-AUC": 0.8}, "baseline": {"ROC-AUC": 0.7}}}
    assert report.prospects_withheld(export, better_auc).endswith("(notebook 07 says why).")
    # stage 07's decision wins: a model better on ROC-AUC but worse on top-share precision flags nobody
    lost = report.prospects_withheld(export, better_auc | {"q2_beats_baseline": False})
    assert "did not beat its baseline" in lost and "0.800 against 0.700" in lost
    unjudged = report.prospects_withheld(export, {"q2": {"model": {"ROC-AUC": None}}})
    assert "could not be judged" in unjudged


def test_nearly_everyone_alive_is_called_out() -> None:
    own = report.report_caveats(_export(p_alive=1.0, prospects=1), {}, {})
    assert [c["code"] for c in own] == ["nearly_all_alive"] and "100% of customers" in own[0]["text"]
    assert report.report_caveats(_export(p_alive=0.3, prospects=1), {}, {}) == []


def test_the_caveats_box_is_marked_escaped_and_translated() -> None:
    caveats = [{"stage": "06-cluster-segments", "code": "tiny_cluster", "text": "silhouette <0.9> & one cluster"}]
    box = report.caveats_html(caveats)
    assert "Read these numbers with care" in box and "&lt;0.9&gt; &amp; one cluster" in box and "<0.9>" not in box
    assert "06 · tiny_cluster" in box
    zh = report.caveats_html(caveats, lambda s: translate(s, "zh"))
    assert translate("Read these numbers with care", "zh") in zh and "Read these numbers" not in zh
    assert translate("none (see the note below)", "zh") != "none (see the note below)"


@pytest.mark.parametrize(("title", "shown"), [("", "**shop**"), ("  ", "**shop**"), ("My shop", "**My shop**")])
def test_the_header_never_shows_empty_bold(title: str, shown: str) -> None:
    header = report.header_markdown(title, "shop", dt.date(2020, 1, 31), "k3")
    assert "****" not in header and shown in header and header.endswith("experiment `k3`")


def test_first_report_is_said_only_when_nothing_ran_before(isolated: Path) -> None:
    as_of = dt.date(2020, 6, 30)
    assert history.no_previous_text("shop", as_of).startswith("This is the first report of this data set")
    assert history.earlier_runs("shop") is None
    history.append_runs_log("shop", {"folder": "2020-06-30", "finished_at": "2020-07-01T06:00:00+00:00",
                                    "params": {}, "metrics": {}})
    again = history.no_previous_text("shop", as_of)
    assert "first report" not in again and "none of the 1 earlier run(s)" in again and "scheduled runs" in again
    assert "experiment 'k3'" in history.no_previous_text("shop", as_of, "k3")


def test_a_caveat_a_stage_has_said_is_not_repeated_by_the_report(isolated: Path) -> None:
    folder = _run("toy").folder
    _write(folder, "rfm.json", {"caveats": [{"code": "rfm_no_spread_frequency", "text": "99% bought once."}]})
    _write(folder, "clv_validation.json", {"forecast": False, "forecast_reason": "only 12 repeat buyers",
                                           "caveats": [{"code": "no_forecast", "text": "No forecast: only 12."}]})
    _write(folder, "classification.json", {"q2": Q2_WORSE, "caveats": [
        {"code": "q2_not_beating_baseline", "text": "The model loses to RFM: no prospects."}]})
    caveats = report.gather_caveats(_run("toy"), _export(p_alive=None))
    assert [(c["stage"][:2], c["code"]) for c in caveats] == [
        ("04", "rfm_no_spread_frequency"), ("05", "no_forecast"), ("07", "q2_not_beating_baseline")]
    # without the stage's own word the report still says it
    _write(folder, "classification.json", {"q2": Q2_WORSE})
    assert [c["code"] for c in report.gather_caveats(_run("toy"), _export(p_alive=None))][-1] == "no_prospects"


def test_the_validation_paragraph_copes_with_no_spend_model_and_no_rank_correlation() -> None:
    check = {"chosen_model": "BG/NBD (penalizer 0.01)", "calibration_end": "2021-12-01", "why": "Chosen: lowest RMSE.",
             "holdout": {"predicted_total": 80.0, "actual_total": 100.0, "total_error_pct": -20.0, "mae": 0.4,
                         "rmse": 0.9, "spearman": 0.41}, "spend_frequency_correlation": None}
    text = report.validation_text(check, dt.date(2022, 6, 30))
    assert "211 days" in text and "rank correlation is 0.41" in text and "own mean is used" in text
    strong = report.validation_text(check | {"spend_frequency_correlation": 0.45}, dt.date(2022, 6, 30))
    assert "correlates with frequency (+0.45)" in strong
    assert "independent of purchase frequency" in report.validation_text(
        check | {"spend_frequency_correlation": -0.1}, dt.date(2022, 6, 30))


def _published(dataset: str, folder: str, as_of: str | None, experiment: str | None = None) -> None:
    """A published report folder (its export) and, when ``as_of`` is given, its record in the runs log."""
    target = paths.reports_dir() / dataset / folder
    target.mkdir(parents=True)
    _export().to_parquet(target / history.PUBLISHED_FILE)
    if as_of is not None:
        history.append_runs_log(dataset, {"folder": folder, "finished_at": "2020-07-01T06:00:00+00:00",
                                          "params": {"as_of": as_of, "experiment": experiment}, "metrics": {}})


def test_the_previous_run_is_found_by_the_recorded_as_of_not_by_the_folder_name(isolated: Path) -> None:
    _published("shop", "2020-03-31", "2020-03-31")
    _published("shop", "spring", "2020-04-30")  # a name that is no date: its record says when it was
    _published("shop", "2020-05-31", None)  # published, never recorded: its as_of is unknown, so not compared
    _published("shop", "2020-05-15-k3", "2020-05-15", "k3")  # another experiment
    _published("shop", "2020-06-30", "2020-06-30")  # this run's own (earlier) publication: not before itself
    found = history.previous_run("shop", dt.date(2020, 6, 30))
    assert found == paths.reports_dir() / "shop" / "spring"
    assert history.previous_run("shop", dt.date(2020, 6, 30), "k3").name == "2020-05-15-k3"
    assert history.previous_run("shop", dt.date(2020, 3, 31)) is None
    # a folder rerun at another as_of: its last record says what it holds now
    history.append_runs_log("shop", {"folder": "spring", "finished_at": "2020-07-02T06:00:00+00:00",
                                     "params": {"as_of": "2020-07-31", "experiment": None}, "metrics": {}})
    assert history.previous_run("shop", dt.date(2020, 6, 30)).name == "2020-03-31"


def test_the_classifier_sentence_and_the_cluster_table() -> None:
    assert report.classifier_text({"classifier_auc_high_value": 0.7}, {}) == (
        "Classification (notebook 07): ROC-AUC 0.70 for next period's high-value customers.")
    clusters = report.cluster_table(_export().assign(cluster=[0] * 4 + [1] * 6))
    assert clusters["customers"].tolist() == [4, 6] and clusters["revenue_share"].sum() == pytest.approx(1.0)
    assert list(clusters.columns) == ["customers", "mean_clv", "mean_p_alive", "revenue_share"]
    assert report.validation_section({"forecast": False, "forecast_reason": "3 repeat buyers"}, dt.date(2020, 1, 1)) \
        .startswith("No lifetime value or P(alive) forecast in this run: 3 repeat buyers.")
