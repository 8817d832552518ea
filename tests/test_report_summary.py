"""Fast tests of the report's generated words: migration by tier and class, the manager summary, the zh report.

Small frames only: a :class:`~helpers.stages.report.ReportResult` is built by hand from a synthetic export
(no pipeline run, no notebook), and every piece notebook 08 shows (texts, tables, figures) is built through
the same functions the notebook calls.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from helpers import i18n, names  # noqa: E402
from helpers import report as content  # noqa: E402
from helpers import report_forecast as forecast_sections  # noqa: E402
from helpers import report_texts as texts  # noqa: E402
from helpers.interpret import report as interpret  # noqa: E402
from helpers.migration import grid_moves, grid_text, ladder_moves, ladder_text, migration, migration_summary  # noqa: E402
from helpers.plots import report as show  # noqa: E402
from helpers.rfm import load_segment_map  # noqa: E402
from helpers.stages.report import ReportResult  # noqa: E402
from helpers.tiers import tier_table  # noqa: E402

AS_OF = dt.date(1998, 6, 30)
CHECK = {"chosen_model": "Pareto/NBD (penalizer 0)", "calibration_end": "1997-09-30", "forecast": True,
         "holdout": {"predicted_total": 1665.5, "actual_total": 1882.0, "total_error_pct": -11.5, "mae": 0.7545,
                     "rmse": 1.6028, "spearman": 0.4597}, "spend_frequency_correlation": 0.07,
         "why": "Pareto/NBD has the lowest holdout RMSE (1.6028; MAE 0.7545) ... (see status).",
         "time_unit": "W", "cohort": 200, "new_customer_value": 51.1338, "new_customer_purchases": 1.4321,
         "tracking": {"calibration": {"actual": 245.0, "expected": 253.3, "error_pct": 3.39},
                      "holdout": {"actual": 188.0, "expected": 174.2, "error_pct": -7.34}},
         "interval_coverage": {"groups": 8, "inside": {"80": 5, "95": 7}}}
#: What stage 08 reads of the run's parameters for the forecast sections.
PARAMS = SimpleNamespace(as_of=AS_OF, tiers=SimpleNamespace(potential_high_share=0.2),
                         clv=SimpleNamespace(time_unit="W", horizon_months=12, margin=1.0))
COMPARISON = pd.DataFrame({"model": ["Pareto/NBD", "MBG/NBD", "BG/NBD"], "rmse": [1.6028, 1.6048, np.nan]})


def _export(n: int = 200, lapsed: float = 0.1, at_risk: int = 20, seed: int = 0) -> pd.DataFrame:
    """A synthetic export: ABC classes by spend rank, tiers, segments, P(alive) (``lapsed``: share below 0.5).

    One customer in ``at_risk`` (counted from the smallest spender) is in the segment "at risk".
    """
    rng = np.random.default_rng(seed)
    spend = np.sort(rng.pareto(1.5, n) * 50 + 5)[::-1]
    abc = np.where(np.arange(n) < n * 0.05, "A", np.where(np.arange(n) < n * 0.2, "B", "C"))
    alive = np.where(rng.random(n) < lapsed, 0.2, 0.9)
    segments = np.array(["champions", "loyal", "lapsed one-time buyers"])[np.arange(n) % 3]
    segments[::-at_risk] = "at risk"
    x = pd.DataFrame({"customer_key": [f"{i:016x}" for i in range(n)], "monetary_total": spend, "abc_class": abc,
                      "rfm_segment": segments, "p_alive": alive, "clv": spend * alive / 2,
                      "lifecycle_stage": np.array(names.LIFECYCLE)[np.arange(n) % 5],
                      "cluster": np.where(np.arange(n) < n // 3, "high-spend, frequent", "low-spend, one-off (2)"),
                      "value_tier": np.array(names.TIERS)[np.minimum(np.arange(n) * 4 // n, 3)],
                      "p_high_value": rng.random(n), "prospect": False})
    for level, half in ((80, 0.1), (95, 0.2)):  # every interval 20% (40%) of CLV wide
        x[f"clv_low_{level}"], x[f"clv_high_{level}"] = x["clv"] * (1 - half), x["clv"] * (1 + half)
    return x


def _months(export: pd.DataFrame, months: int = 12) -> pd.DataFrame:
    """Stage 05's value per customer and month for ``export``: a fading share of each CLV, summing to it."""
    weights = 0.97 ** np.arange(months)
    shares = pd.DataFrame(np.outer(export["clv"].fillna(0), weights / weights.sum()),
                          columns=forecast_sections.month_columns(months))
    return pd.concat([export[["customer_key"]], shares], axis=1)


def _tracking(weeks: int = 20, calibration: int = 12) -> pd.DataFrame:
    """A tracking table of ``weeks`` periods (helpers.clv.tracking.TRACKING_COLUMNS)."""
    actual = np.arange(weeks) % 5 + 3
    expected = np.full(weeks, 4.8)
    return pd.DataFrame({"period": np.arange(1, weeks + 1), "phase": np.where(np.arange(weeks) < calibration,
                         "calibration", "holdout"), "actual": actual, "expected": expected,
                         "actual_cumulative": actual.cumsum(), "expected_cumulative": expected.cumsum()})


def _result(export: pd.DataFrame, language: str = "en", before: pd.DataFrame | None = None,
            check: dict[str, Any] = CHECK) -> ReportResult:
    """A ReportResult built the way stage 08 builds it, from small frames (no catalog, no run)."""
    t = i18n.translator(language)
    smap = load_segment_map("segment_maps/default.yaml")
    caveats = [{"stage": "05-clv-lifetimes", "code": "x", "text": "a caveat"}]
    metrics = {"forecast": True, "holdout": check["holdout"], "caveats": caveats}
    r = ReportResult(language=language, dataset="shop", as_of=AS_OF, export=export, metrics=metrics, files={},
                     header=texts.header_markdown("", "shop", AS_OF, None, t), headline=pd.DataFrame(),
                     caveats_html="", segments=pd.DataFrame(), abc_cuts=(0.05, 0.2),
                     tiers=tier_table(export, smap.tiers), no_pyramid=None, clusters=content.cluster_table(export), prospects=pd.DataFrame(),
                     withheld=texts.prospects_withheld(export, {"q2": {"model": {"ROC-AUC": 0.78},
                                                                       "RFM-score baseline": {"ROC-AUC": 0.80}}}, t),
                     validation=texts.validation_section(check, AS_OF, COMPARISON, t),
                     classifier=texts.classifier_text({"classifier_auc_high_value": 0.78},
                                                      {"q2": {"RFM-score baseline": {"ROC-AUC": 0.8}}}, t),
                     states=smap.states,
                     abc_names={c: f"{t(row['name'])} ({c})" for c, row in smap.abc_classes().iterrows()},
                     **forecast_sections.sections(PARAMS, export, _months(export), check, _tracking(),
                                                  check.get("forecast", True), t))
    if before is not None:
        r.previous = "1998-03-31"
        r.matrix, r.flows = migration(before, export)
        r.changed = i18n.fill("compared with the report of {previous}: {n:,} customers changed segment", language,
                              previous=r.previous, n=int(r.flows["customers"].sum()))
        r.moved = migration_summary(r.flows, smap.states, t)
        r.ladders = {"value_tier": grid_moves(before, export), "abc_class": ladder_moves(before, export, "abc_class", names.ABC)}
        r.ladder_texts = interpret.migration_texts(r)
    r.summary = interpret.summary(r)
    return r


def _moved(export: pd.DataFrame) -> pd.DataFrame:
    """The earlier report of ``export``: ten gold customers were platinum, five gold ones were iron."""
    before = export.copy()
    gold = before.index[before["value_tier"].eq("gold")]
    before.loc[gold[:10], "value_tier"] = "platinum"
    before.loc[gold[10:15], "value_tier"] = "iron"
    before.loc[before.index[:3], "abc_class"] = "B"  # three key customers were major ones
    before.loc[before.index[:4], "rfm_segment"] = "at risk"
    return before


def test_moves_on_the_pyramids_axes_and_up_and_down_the_classes_are_counted_and_worded() -> None:
    after = _export()
    moves = grid_moves(_moved(after), after)  # platinum -> gold: potential lost; iron -> gold: current value won, potential lost
    assert moves.lost == {"current value": 0, "growth potential": 15} and moves.gained == {"current value": 5, "growth potential": 0}
    assert moves.biggest == ("platinum", "gold", 10)
    assert moves.matrix.loc["platinum", "gold"] == 10 and moves.matrix.to_numpy().sum() == len(after)
    text = grid_text(moves, "Value tiers", str)
    assert ("5 rose into high current value and 0 fell out of it; 0 gained high growth potential and 15 lost it. "
            "The largest move: 10 customers from platinum to gold.") in text and "fell from" not in text
    assert grid_text(grid_moves(after, after), "Value tiers", str).endswith("changed place.")
    classes = ladder_moves(_moved(after), after, "abc_class", names.ABC)
    assert classes.up == 3 and classes.down == 0 and classes.fell is None
    assert ladder_moves(after.drop(columns="value_tier"), after, "value_tier", names.TIERS) is None
    unmoved = ladder_text(ladder_moves(after, after, "abc_class", names.ABC), "A/B/C classes", str)
    assert "none of the 200 customers" in unmoved and "new since" not in unmoved  # one cohort: nobody new
    newcomers = ladder_text(ladder_moves(after.iloc[12:], after, "abc_class", names.ABC), "A/B/C classes", str)
    assert newcomers.endswith("12 customers are new since the earlier report; 12 of them started as A or B.")


def test_the_summary_follows_the_data() -> None:
    calm, lapsed, slipping = (_result(_export(lapsed=0.05)), _result(_export(lapsed=0.6)),
                              _result(_export(lapsed=0.05, at_risk=3)))
    assert "First: a personal reactivation offer" in slipping.summary
    assert "First: keep the key customers close" in calm.summary
    assert "First: contact the" in lapsed.summary and "First: contact the" not in calm.summary
    n_calm, n_lapsed = (interpret.slipping_facts(r)["valuable_lapsed"] for r in (calm, lapsed))
    assert n_lapsed > n_calm and f"{n_lapsed:,} key and major customers who have probably lapsed" in lapsed.summary
    assert "hold" in calm.summary and "of revenue" in calm.summary and "-11.5%" in calm.summary
    worse = _result(_export(), check=CHECK | {"holdout": CHECK["holdout"] | {"total_error_pct": -35.0}})
    assert "That is a large miss" in worse.summary and "large miss" not in calm.summary
    assert "1 caveat qualifies these numbers (notebook " in calm.summary
    moved = _result(_export(), before=_moved(_export()))
    assert "Since the last report" in moved.summary and "Since the last report" not in calm.summary


def test_the_validation_paragraph_says_each_figure_once_and_no_column_names() -> None:
    text = texts.validation_text(CHECK, AS_OF, COMPARISON)
    for figure in ("1,666", "1,882", "-11.5%", "0.75", "0.46"):
        assert text.count(figure) == 1, figure
    assert "status" not in text and "RMSE" not in text and "1.6028" not in text  # not stage 05's `why`
    assert "MBG/NBD, errs 0.1% more" in text and "1 of 3 fits failed" in text
    apart = COMPARISON.assign(rmse=[1.6, 1.9, 2.0])
    assert "the choice matters." in texts.validation_text(CHECK, AS_OF, apart)
    # the rule stage 05 chose by: its selection metric and its threshold (1%), whatever the report shows beside
    by_mae = COMPARISON.assign(mae=[0.70, 0.72, np.nan])
    assert ("MBG/NBD, errs 2.9% more per customer (mean absolute error): the choice matters."
            in texts.validation_text(CHECK | {"selection_metric": "mae"}, AS_OF, by_mae))


#: Notebook 08's headings of the forecast sections.
FORECAST_TITLES = ("Repeat purchases: the model against what happened", "How sure the predicted value is",
                   "Value month by month, and of a new customer")


def _pieces(r: ReportResult) -> list[str]:
    """Every text notebook 08 shows for ``r`` but its figures: its sentences, its tables' labels and cells."""
    found = [r.header, r.summary, r.validation, r.classifier or "", r.withheld or "", r.changed or "",
             (r.moved or {}).get("text", ""), *(r.ladder_texts or []), r.tracking_text, r.uncertainty, r.months_text,
             r.new_customer_text]
    found += [r.t(title) for title in FORECAST_TITLES]
    frames = [show.top_clv_table(r),
              show._shown(r.clusters.round(2), r), show._shown(r.tiers[["customers", "action"]].rename_axis("tier"), r), show.flows(r),
              show._shown(r.export[["customer_key", "rfm_segment", "value_tier", "lifecycle_stage", "cluster"]].iloc[::37], r)]
    for frame in frames:
        found += [str(v) for v in [*frame.columns, *frame.index, *frame.to_numpy().ravel()]]
    return found


def _figure_texts(r: ReportResult, figures: tuple[str, ...]) -> list[str]:
    """Every text of notebook 08's ``figures`` for ``r`` (titles, labels, ticks, legends, annotations)."""
    from matplotlib.text import Text

    return [a.get_text() for name in figures for a in getattr(show, name)(r).findobj(Text)]


@pytest.fixture(scope="module")
def zh() -> ReportResult:
    """The Chinese report's result, with an earlier report to compare with."""
    return _result(_export(), "zh", before=_moved(_export()))


def _no_english(pieces: list[str]) -> str:
    """``pieces`` joined, once no piece holds a run of three or more English words."""
    left = [(p, i18n.english_runs(p)) for p in pieces if i18n.english_runs(p)]
    assert not left, left
    return " ".join(pieces)


def test_the_chinese_report_leaves_no_english_sentence(zh: ReportResult) -> None:
    joined = _no_english(_pieces(zh))
    for term in ("白金客户", "黄金客户", "关键客户", "获取期", "终止期", "客户终身价值", "高消费、经常购买",
                 ):  # the material's terms; cluster names word by word
        assert term in joined, term
    assert "最大的一股流动：10 位客户从白金客户变为黄金客户。" in zh.ladder_texts[0]  # a template, filled after translation


def test_the_chinese_value_and_lifecycle_figures_leave_no_english_label(zh: ReportResult) -> None:
    joined = _no_english(_figure_texts(zh, ("value_figure", "lifecycle_figure")))
    for term in ("累计收入", "客户终身价值占比", "获取期", "低消费、一次性（2）"):
        assert term in joined, term  # the legend, the pyramid's CLV, the lifecycle's ticks, a cluster's name


def test_the_chinese_forecast_figures_leave_no_english_label(zh: ReportResult) -> None:
    joined = _no_english(_figure_texts(zh, ("tracking_figure", "months_figure")))
    for term in ("每周重复购买次数", "校准期 | 留出期", "实际", "逐月预测价值", "累计"):
        assert term in joined, term  # the tracking plot's titles, annotation and legend; the months' figure


def test_the_chinese_migration_figures_leave_no_english_label(zh: ReportResult) -> None:
    joined = _no_english(_figure_texts(zh, ("migration_figure", "ladder_figure")))
    for term in ("普通客户 (C)", "之前（1998-03-31）", "流失风险客户"):
        assert term in joined, term  # the class names on the axes, the dates, the segments


def test_the_english_report_says_the_same_numbers(zh: ReportResult) -> None:
    en = _result(_export(), "en", before=_moved(_export()))
    numbers = lambda s: sorted(__import__("re").findall(r"\d+(?:[.,]\d+)*%?", s))  # noqa: E731
    assert numbers(en.summary) == numbers(zh.summary) and numbers(en.validation) == numbers(zh.validation)
    assert i18n.english_runs(en.summary)  # the scanner does see English


def test_a_caveat_no_template_reads_back_is_told_by_its_code() -> None:
    read_back = {"code": "methods_disagree", "text": "k-means and the Gaussian mixture agree only at ARI 0.197 (below "
                 "0.2): the groups depend on the method; read them as one possible cut, not as structure in the data."}
    assert texts.caveat_text(read_back, "zh").startswith("k-means 与高斯混合模型的一致性只有 ARI 0.197（低于 0.2）")
    unknown = {"code": "rfm_f_levels", "text": "F scores are odd today in a new way."}
    assert texts.caveat_text(unknown, "zh") == i18n.catalogue("zh")["caveat:rfm_f_levels"]
    family = {"code": "rfm_no_spread_frequency", "text": "frequency has almost no spread: a sentence of a new form."}
    assert texts.caveat_text(family, "zh") == i18n.catalogue("zh")["caveat:rfm_no_spread"]
    assert texts.caveat_text(unknown, "en") == unknown["text"]


def test_without_a_forecast_lapsed_valuable_customers_are_counted_by_segment() -> None:
    export = _export(lapsed=0.0).assign(p_alive=np.nan, clv=np.nan)
    export.loc[export.index[:20], "rfm_segment"] = "lost"  # key and major customers in a lost segment
    r = _result(export, check=CHECK | {"forecast": False})
    r.metrics["forecast"] = False
    r.summary = interpret.summary(r)
    assert "no forecast of future value" in r.summary and "P(alive)" not in r.summary
    gone = {s for s, state in r.states.items() if state in ("slipping", "lost")}
    expected = int(export.head(40)["rfm_segment"].isin(gone).sum())  # the top 40 are classes A and B
    assert 20 <= expected < 40 and f"Of the 40 key and major customers, {expected} are in slipping or lost" in r.summary


def test_every_word_cluster_names_are_built_from_has_a_chinese_term() -> None:
    from helpers.clusternames import COMPARE_WORDS, NAME_WORDS, TYPES

    words = {w for table in (NAME_WORDS, COMPARE_WORDS) for pair in table.values() for w in pair}
    words |= set(TYPES.values()) | {"typical", "mostly one-off", "repeat"}
    assert not [w for w in words if i18n.translate(w, "zh") == w]  # stage 06's vocabulary (the names are built from it)


def test_the_forecast_sections_say_the_numbers_of_the_run() -> None:
    from helpers.clv.intervals import tier_changes
    from helpers.tiers import is_high

    export = _export()
    r = _result(export)
    cut = export.loc[is_high(export["clv"], 0.2), "clv"].min()  # the pyramid's growth cut: the top 20% by CLV
    changes = [int(tier_changes(export["clv"], export[f"clv_low_{lv}"], export[f"clv_high_{lv}"], [cut])["uncertain"]
                   .sum()) for lv in (80, 95)]
    assert 0 < changes[0] < changes[1] < len(export)  # wider intervals, more customers who could change tier
    assert (f"typically 20% of their CLV wide, the 95% interval 40%. Within their 80% interval, {changes[0]:,} of "
            f"200 customers ({changes[0] / 200:.1%}) could cross" in r.uncertainty)
    assert f"CLV {cut:,.2f}) and so change value tier; within the 95% interval, {changes[1]:,} could." in r.uncertainty
    assert r.uncertainty.endswith("of the 8 groups of customers by repeat purchases in calibration, the actual holdout "
                                  "purchases of 5 lie inside the calibration fit's 80% interval and of 7 inside its 95% "
                                  "interval (with the purchases' own noise).")
    assert r.top_clv["clv"].tolist() == export["clv"].nlargest(10).tolist()
    assert (r.top_clv["clv_low_80"] < r.top_clv["clv"]).all() and (r.top_clv["clv"] < r.top_clv["clv_high_80"]).all()
    assert r.by_month["value"].sum() == pytest.approx(export["clv"].sum(), rel=1e-9)  # the months add up to CLV
    assert r.months_text.startswith(f"Month by month, the {export['clv'].sum():,.0f} of value predicted over the "
                                    f"next 12 months (discounted): month 1 brings {r.by_month['value'].iloc[0]:,.0f}")
    assert ("In the 273 days after the calibration they made 188 repeat purchases; the model expected 174 (-7.3%). Over both periods, 433 were made and 428 expected (-1.3%, the right panel)."
            in r.tracking_text) and "the 200 customers who first bought by 1997-09-30, week by week" in r.tracking_text
    assert r.new_customer_text.startswith("A newly acquired customer like these is expected to make 1.43 repeat "
                                          "purchases worth 51.13 over the same 12 months")
    assert "the most it is worth spending to acquire one, before margins" in r.new_customer_text
    thin = forecast_sections.new_customer_text(CHECK, 12, 0.3, True)
    assert "at a margin of 30%" in thin and "before margins" not in thin
    assert len(show.tracking_figure(r).axes) == 2 and len(show.months_figure(r).axes) == 2


def test_without_a_forecast_each_section_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    export = _export().assign(p_alive=np.nan, clv=np.nan)
    r = _result(export, check=CHECK | {"forecast": False})
    assert r.uncertainty == forecast_sections.NO_INTERVALS and r.tracking_text == forecast_sections.NO_TRACKING
    assert r.months_text == forecast_sections.NO_MONTHS and r.new_customer_text == ""
    assert r.top_clv is None and r.tracking is None and r.by_month is None
    show.top_clv(r), show.tracking(r), show.months(r)  # nothing to show, and no error
    assert capsys.readouterr().out == ""
    flat = _result(_export().assign(clv_low_80=np.nan, clv_high_80=np.nan))  # a forecast without a covariance
    assert flat.uncertainty == forecast_sections.FLAT and flat.top_clv is None
    zh = _result(export, "zh", check=CHECK | {"forecast": False})
    assert not i18n.english_runs(zh.uncertainty + zh.tracking_text + zh.months_text)


def test_the_month_export_is_keyed_pseudonymously_and_sums_to_clv(isolated: Any) -> None:
    from helpers.catalog import Catalog
    from helpers.privacy import pseudonymize

    catalog = Catalog("toy", "2020-01-01", isolated / "run")
    customers = pd.DataFrame({"customer_id": ["b7", "a1", "c3"], "clv": [3.0, 6.0, 0.0]})
    wide = _months(customers.rename(columns={"customer_id": "customer_key"}), 3).rename(
        columns={"customer_key": "customer_id"})
    catalog.write_parquet("value_per_period", wide)
    months = forecast_sections.month_export(catalog, True, 3)
    assert months.columns.tolist() == ["customer_key", "clv_month_01", "clv_month_02", "clv_month_03"]
    assert months["customer_key"].tolist() == sorted(pseudonymize(customers["customer_id"]))
    clv = customers.set_index(pseudonymize(customers["customer_id"]))["clv"]
    np.testing.assert_allclose(months.set_index("customer_key").sum(axis=1), clv.loc[months["customer_key"]], atol=1e-6)
    assert "customer_id" in forecast_sections.month_export(catalog, True, 3, raw_ids=True)  # privacy.raw_ids only
    empty = forecast_sections.month_export(catalog, False, 3)  # no forecast: empty, with its columns
    assert empty.empty and empty.columns.tolist() == months.columns.tolist()
    files = content.save_export(catalog, months, {}, empty)  # written beside the customer export
    assert pd.read_parquet(files["months_parquet"]).columns.tolist() == months.columns.tolist()
    assert files["months_csv"].read_text().startswith("customer_key,clv_month_01,")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_one_customer_is_said_in_the_singular(language: str) -> None:
    from types import SimpleNamespace

    from helpers import i18n
    from helpers.interpret.report import slipping_sentence

    facts = {"moved_away": 1, "segments": ["at risk"], "customers": 1, "revenue_share": 0.01, "valuable": 3,
             "valuable_lapsed": 1, "cut": 0.3}
    said = slipping_sentence(SimpleNamespace(t=i18n.translator(language), forecast=True), facts)
    if language == "en":
        assert said == ("Since the last report, 1 customer slipped into a slipping or lost segment. 1 customer (1% of "
                        "revenue) is in a segment that is slipping away (at risk). Of the 3 key and major customers, "
                        "1 has probably lapsed (P(alive) below 0.3).")
    else:
        assert i18n.english_runs(said) == [] and "1 位客户" in said
    many = slipping_sentence(SimpleNamespace(t=i18n.translator("en"), forecast=False),
                             facts | {"moved_away": 2, "customers": 2, "valuable_lapsed": 2})
    assert "2 customers slipped" in many and "2 customers (1% of revenue) are in segments" in many
    assert many.endswith("2 are in slipping or lost segments.")
