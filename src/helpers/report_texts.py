"""The report's sentences: the header, no forecast, prospects withheld, the model validation and the classifier.

Split from :mod:`helpers.report` (the export, metrics, caveats and tables), which re-exports them. Every
function takes ``t`` (:func:`helpers.i18n.translator`; English by default) and builds its sentences from
templates with placeholders, translated first and filled afterwards, so the Chinese report never needs
a finished English sentence in its catalogue. The English text is what ``metrics.json`` keeps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

Translate = Callable[[str], str]


def _same(text: str) -> str:
    """English: the template itself."""
    return text


#: What the report says instead of the value pyramid when stage 05 made no forecast.
NO_PYRAMID = "No value pyramid: its growth axis is predicted CLV, and this run made no forecast (see the note above)."


def caveat_text(item: dict[str, str], language: str) -> str:
    """A caveat's sentence in ``language``: read back through the catalogue's templates, else told by its code.

    A stage's caveat is a sentence it generated in English; :func:`helpers.i18n.translate_text` reads it
    back through the templates. When English words remain, the catalogue's ``caveat:<code>`` entry (or that
    of the code's family: ``rfm_no_spread_frequency`` -> ``rfm_no_spread``) says what the caveat means,
    without the run's details. Without either, the sentence stays as the stage wrote it.
    """
    from helpers import i18n

    text = i18n.translate_text(item["text"], language)
    if language == "en" or not i18n.english_runs(text):
        return text
    parts = str(item.get("code") or "").split("_")
    for end in range(len(parts), 0, -1):
        told = i18n.catalogue(language).get("caveat:" + "_".join(parts[:end]))
        if told:
            return told
    return text


def header_markdown(title: str, dataset: str, as_of: dt.date, experiment: str | None = None,
                    t: Translate = _same) -> str:
    """The report's header: the title (the dataset name when the title is empty), ``as_of`` and the experiment.

    >>> header_markdown("", "cdnow", dt.date(1998, 6, 30)).splitlines()[1]
    '**cdnow** · as of 1998-06-30'
    """
    name = title.strip() or dataset
    return (f"# {t('Customer identification report')}\n**{t(name)}** · {t('as of')} {as_of}"
            + (f" · {t('experiment')} `{experiment}`" if experiment else ""))


def no_forecast_text(clv_validation: dict[str, Any], t: Translate = _same) -> str:
    """The sentence that replaces the CLV and P(alive) headlines when stage 05 made no forecast.

    Only the first sentence of stage 05's reason is quoted (the log of every failed fit stays in notebook 05).

    >>> no_forecast_text({"forecast_reason": "no model fits. Tried:\\n - BG/NBD: unsound"})[:55]
    'No lifetime value or P(alive) forecast in this run: no '
    """
    reason = str(clv_validation.get("forecast_reason") or "").strip()
    reason = reason.splitlines()[0].split(". ")[0].rstrip(".:") if reason else ""  # its first sentence, not the fit log
    if reason and t(reason) == reason and t("as of") != "as of":  # another language, and no translation of it
        reason = ""  # stage 05's own words (a fitting log) stay in notebook 05
    return ((t("No lifetime value or P(alive) forecast in this run: {reason}.").format(reason=t(reason)) if reason
             else t("No lifetime value or P(alive) forecast in this run (notebook 05 says why)."))
            + " " + t("The report shows RFM and spend only; value tiers and predicted value are left out."))


def prospects_flagged(export: pd.DataFrame) -> int:
    """How many customers the export flags as prospects (0 without a ``prospect`` column)."""
    return int(export["prospect"].eq(True).sum()) if "prospect" in export.columns else 0


def _baseline(q2: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The name and scores of stage 07's baseline for the high-value question (``None, {}`` without one)."""
    return next(((name, scores) for name, scores in q2.items() if "baseline" in name.lower()
                 and isinstance(scores, dict)), (None, {}))


def _baseline_auc(q2: dict[str, Any]) -> tuple[str | None, float | None]:
    """The name and ROC-AUC of stage 07's baseline for the high-value question (``None, None`` without one)."""
    name, scores = _baseline(q2)
    return (name, float(scores["ROC-AUC"])) if scores.get("ROC-AUC") is not None else (None, None)


def q2_losses(q2: dict[str, Any]) -> list[tuple[str, float, float]]:
    """The measures on which stage 07's high-value model does not beat its baseline: (measure, model, baseline).

    Stage 07's rule on its table (``classification.json["q2"]``): better on every measure both have, a tie
    is no better (:attr:`helpers.classify.models.Answer.beats_baseline`).

    >>> q2_losses({"model": {"ROC-AUC": 0.888, "precision in the top decile": 0.727},
    ...            "RFM-score baseline": {"ROC-AUC": 0.85, "precision in the top decile": 0.727}})
    [('precision in the top decile', 0.727, 0.727)]
    """
    model, (_, baseline) = q2.get("model") or {}, _baseline(q2)
    pairs = [(m, model.get(m), baseline.get(m)) for m in model]
    return [(m, float(a), float(b)) for m, a, b in pairs
            if a is not None and b is not None and np.isfinite(a) and np.isfinite(b) and not float(a) > float(b)]


def prospects_withheld(export: pd.DataFrame, classification: dict[str, Any], t: Translate = _same) -> str | None:
    """Why no prospects are flagged, when none are (``None`` when some are): the measures the model lost on.

    >>> x = pd.DataFrame({"prospect": [False, False]})
    >>> prospects_withheld(x, {"q2": {"model": {"ROC-AUC": 0.717}, "RFM-score baseline": {"ROC-AUC": 0.75}}})[:78]
    'No prospects are flagged: the high-value classifier did not beat its RFM-score'
    >>> prospects_withheld(x, {"q2_beats_baseline": False, "q2": {"model": {"ROC-AUC": 0.888, "precision in the top decile":
    ...     0.727}, "RFM-score baseline": {"ROC-AUC": 0.85, "precision in the top decile": 0.727}}}).split("period")[1]
    ' (precision in the top decile 0.727 vs 0.727), so its picks would be no better than ranking customers by the simple rule.'
    >>> prospects_withheld(x.assign(prospect=[True, False]), {}) is None
    True
    """
    if prospects_flagged(export):
        return None
    q2 = classification.get("q2") or {}
    model_auc = (q2.get("model") or {}).get("ROC-AUC")
    baseline, baseline_auc = _baseline_auc(q2)
    if not q2:
        return t("No prospects are flagged: the classifier of next period's high-value customers did not run in "
                 "this run (notebook 07 says why).")
    beats = classification.get("q2_beats_baseline")  # stage 07's own decision (ROC-AUC and top-share precision)
    if beats is False or (beats is None and model_auc is not None and baseline_auc is not None
                          and float(model_auc) <= baseline_auc):
        lost = [t(f"{m} {{model}} vs {{baseline}}").format(model=f"{a:.3f}", baseline=f"{b:.3f}")
                for m, a, b in q2_losses(q2)]
        scores = (" " + t("({losses})").format(losses="; ".join(lost)) if lost else
                  " " + t("(ROC-AUC {model:.3f} against {baseline:.3f})").format(model=float(model_auc),
                                                                             baseline=baseline_auc)
                  if model_auc is not None and baseline_auc is not None else "")
        return t("No prospects are flagged: the high-value classifier did not beat its {baseline} on the held-out "
                 "period{scores}, so its picks would be no better than ranking customers by the simple rule.").format(
            baseline=t(baseline or "baseline"), scores=scores)
    if model_auc is None:
        return t("No prospects are flagged: the high-value classifier could not be judged on the held-out period "
                 "(notebook 07 says why).")
    return t("No prospects are flagged in this run (notebook 07 says why).")


def _model_name(name: str, t: Translate) -> str:
    """A fit's name ("Pareto/NBD (penalizer 0)") in the report's language."""
    if name.endswith(")") and " (penalizer " in name:
        model, penalizer = name[:-1].split(" (penalizer ")
        return t("{model} (penalizer {penalizer})").format(model=model, penalizer=penalizer)
    return name


def _rivals(comparison: pd.DataFrame | None, chosen: str, t: Translate, metric: str = "rmse") -> str:
    """How the chosen fit compares with the best fit of another model on the selection ``metric``
    (:func:`helpers.clv.evaluation.runner_up`, the rule stage 05 chose by), and how many fits were left out."""
    from helpers.clv.evaluation import METRIC_NAMES, MODELS_AGREE_PCT, runner_up

    if comparison is None or comparison.empty or metric not in comparison:
        return ""
    sound = comparison[comparison[metric].notna()]
    text = ""
    if (rival := runner_up(comparison, metric, chosen.split(" (")[0])) is not None:
        other, gap = rival
        verdict = (t("the models agree and the choice matters little") if gap < MODELS_AGREE_PCT
                   else t("the choice matters"))
        text += " " + t("The best other model, {other}, errs {gap:.1f}% more per customer ({metric}): "
                        "{verdict}.").format(other=other, gap=gap, metric=t(METRIC_NAMES[metric]), verdict=verdict)
    left_out = len(comparison) - len(sound)
    if left_out:
        text += " " + t("{n} of {total} fits failed or gave unusable predictions and were left out.").format(
            n=left_out, total=len(comparison))
    return text


def validation_text(clv_check: dict[str, Any], as_of: dt.date, comparison: pd.DataFrame | None = None,
                    t: Translate = _same) -> str:
    """The report's paragraph on how the forecast was validated, from ``clv_validation.json`` (a forecast run).

    Each figure is said once, in words a reader needs no column names for: the holdout's predicted and
    actual purchases, the typical error per customer, the ranking, the best other model (from stage 05's
    ``model_comparison``, when given) and the spend model. Copes with what a thin holdout leaves undefined
    (no rank correlation) and with a run whose spend per purchase came without Gamma-Gamma.

    >>> check = {"chosen_model": "BG/NBD (penalizer 0)", "calibration_end": "1998-01-01", "why": "",
    ...          "holdout": {"predicted_total": 90.0, "actual_total": 100.0, "total_error_pct": -10.0, "mae": 0.5,
    ...                      "rmse": 1.0, "spearman": None}, "spend_frequency_correlation": None}
    >>> text = validation_text(check, dt.date(1998, 6, 30))
    >>> "rank correlation is undefined" in text, "without the Gamma-Gamma model" in text
    (True, True)
    """
    from helpers.stages import SPEND_CORRELATION_LIMIT  # the threshold stage 05's caveat uses

    h = clv_check["holdout"]
    holdout_days = (as_of - pd.Timestamp(clv_check["calibration_end"]).date()).days
    rho = h.get("spearman")
    ranking = (t("the rank correlation is {rho:.2f} between predicted and actual purchases").format(rho=rho)
               if rho is not None and np.isfinite(rho)
               else t("the rank correlation is undefined (too few holdout purchases)"))
    corr = clv_check.get("spend_frequency_correlation")
    if corr is None:
        spend = t("comes without the Gamma-Gamma model (it could not be fitted soundly): each repeat buyer's own "
                  "mean is used")
    elif abs(corr) < SPEND_CORRELATION_LIMIT:
        spend = t("is independent of purchase frequency, as the model assumes")
    else:
        spend = t("**correlates with frequency ({corr:+.2f})**, against the model's assumption: read CLV as a "
                  "ranking more than as money").format(corr=corr)
    chosen = str(clv_check["chosen_model"])
    return (t("Lifetime value comes from **{model}**, chosen on a holdout: fitted on purchases up to {end}, it "
              "predicted **{predicted:,.0f}** repeat purchases in the following {days} days against **{actual:,.0f}** "
              "that happened ({error:+.1f}%). Per customer, it is typically {mae:.2f} purchases off, and "
              "{ranking}.").format(model=_model_name(chosen, t), end=clv_check["calibration_end"],
                                   predicted=h["predicted_total"], days=holdout_days, actual=h["actual_total"],
                                   error=h["total_error_pct"], mae=h["mae"], ranking=ranking)
            + _rivals(comparison, chosen, t, clv_check.get("selection_metric") or "rmse") + " " + t("Spend per purchase {spend}.").format(spend=spend))


def has_forecast(clv_validation: dict[str, Any]) -> bool:
    """Whether stage 05 made a BTYD forecast (CLV, P(alive)); an artifact without ``forecast`` always did.

    >>> has_forecast({"forecast": False}), has_forecast({}), has_forecast({"forecast": True})
    (False, True, True)
    """
    return clv_validation.get("forecast", True) is not False


#: The segment table's caption when the chosen model is BG/NBD (:func:`helpers.report.one_time_alive_by_construction`).
ONE_TIME_ALIVE_NOTE = ("Mean P(alive) is over each segment's repeat buyers: BG/NBD gives every one-time buyer "
                       "P(alive) = 1 by construction, which says nothing about them, so a segment of one-time "
                       "buyers shows none.")


def sample_text(clv_check: dict[str, Any], t: Translate = _same) -> str:
    """The sentence saying that stages 05-07 fitted on a sample of the customers ('' when they fitted on all).

    >>> sample_text({"sample": {"customers": 100000, "of": 1000000}})
    ' Stages 05 to 07 fitted their models on a fixed sample of 100,000 of the 1,000,000 customers (the same customers in every run: scale.sample_customers); every customer is scored.'
    >>> sample_text({"sample": None})
    ''
    """
    sample = clv_check.get("sample")
    if not sample:
        return ""
    return " " + t("Stages 05 to 07 fitted their models on a fixed sample of {customers:,} of the {of:,} customers "
                   "(the same customers in every run: scale.sample_customers); every customer is scored.").format(
        customers=sample["customers"], of=sample["of"])


def validation_section(clv_check: dict[str, Any], as_of: dt.date, comparison: pd.DataFrame | None = None,
                       t: Translate = _same) -> str:
    """The model validation paragraph: :func:`validation_text`, or :func:`no_forecast_text` without a forecast;
    then :func:`sample_text`."""
    return (validation_text(clv_check, as_of, comparison, t) if has_forecast(clv_check)
            else no_forecast_text(clv_check, t)) + sample_text(clv_check, t)


def classifier_text(metrics: dict[str, Any], classification: dict[str, Any], t: Translate = _same) -> str | None:
    """The classifier's ROC-AUC for next period's high-value customers against its baseline (``None`` without one).

    >>> q2 = {"model": {"ROC-AUC": 0.783}, "RFM-score baseline": {"ROC-AUC": 0.803}}
    >>> classifier_text({"classifier_auc_high_value": 0.783}, {"q2": q2})
    "Classification (notebook 07): ROC-AUC 0.78 for next period's high-value customers, against 0.80 for the RFM-score baseline."
    >>> classifier_text({"classifier_auc_high_value": None}, {"q2": q2}) is None
    True
    """
    auc = metrics.get("classifier_auc_high_value")
    if auc is None:
        return None
    baseline, baseline_auc = _baseline_auc(classification.get("q2") or {})
    if baseline is None:
        return t("Classification (notebook 07): ROC-AUC {auc:.2f} for next period's high-value customers.").format(
            auc=auc)
    return t("Classification (notebook 07): ROC-AUC {auc:.2f} for next period's high-value customers, against "
             "{baseline_auc:.2f} for the {baseline}.").format(auc=auc, baseline_auc=baseline_auc, baseline=t(baseline))
