"""Stage 07, prospects: both questions answered, today's customers scored and the artifacts written, in one call.

:func:`classify_customers` is the pure core: from the run's parameters, the
run's purchase days (every feature; :mod:`helpers.summary`), the clean lines
(question 2's labels), stage 05's customer table and its validation it derives the
windows, builds each question's time split (a question the log cannot answer
is skipped with its reason), answers both against their baselines, explains
question 2 (gains, confusion, permutation importance), fits a depth-3
decision tree beside each boosted model (:mod:`helpers.classify.tree`: same
split, same metrics, readable rules), scores today's customers (prospects only
from a model that beats the RFM score), flags the newcomers who look valuable
with a backtest (:mod:`helpers.classify.newcomers`) and words the caveats. The fits run on one OpenMP thread (:func:`helpers.clustering.one_thread`).
:func:`classify` reads from the catalog and writes ``predictions.parquet``,
``classification.json`` and the DuckDB view ``predictions`` (of the Parquet file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers import classify as cf
from helpers import names, privacy, sampling
from helpers import summary_sql as whole_log
from helpers.clustering import one_thread
from helpers.summary import log_start

#: The columns of the clean lines stage 07 reads: question 2's labels sum them (the features come from the purchase days).
TRANSACTION_COLUMNS = ["customer_id", "order_ts", "amount"]
#: The columns of the customer table shown beside the scores (not written to ``predictions.parquet``).
SHOWN_BESIDE = ["value_tier", "rfm_segment"]
#: The columns of stage 05's customer table stage 07 reads (labels, windows, overlap, shown beside the scores).
CUSTOMER_COLUMNS = ["customer_id", *SHOWN_BESIDE, "country", "first_purchase", "frequency", "monetary_total"]


@dataclass
class ClassifyResult:
    """Stage 07's result: the windows, both questions (split, answer or skip reason), the scores and the caveats."""

    windows: cf.Windows
    tiers: cf.Split | None  # question 1's split (None: skipped)
    q1_skipped: str | None
    tier_answer: cf.Answer | None
    q1_overlap: dict[str, float] | None  # what the early features already see of the label
    value: cf.Split | None  # question 2's split (None: skipped)
    q2_skipped: str | None
    value_answer: cf.Answer | None
    importance: pd.DataFrame  # question 2's permutation importance (empty: none)
    flag: bool  # whether prospects are flagged (the question 2 model beat the RFM score)
    scored: pd.DataFrame  # every customer's scores, with its value tier and RFM segment
    caveats: list[dict[str, str]]
    target_share: float
    prospect_share: float
    raw_ids: bool = False  # privacy.raw_ids: show raw customer ids
    tier_tree: cf.TreeAnswer | None = None  # question 1's depth-3 decision tree (None: skipped)
    value_tree: cf.TreeAnswer | None = None  # question 2's depth-3 decision tree (None: skipped)
    newcomers: cf.NewProspects | None = None  # prospects among new customers, and their backtest
    fitted_on: int | None = None  # customers both questions were split, trained and tested on (None: all)

    @property
    def sample_text(self) -> str:
        """One sentence when both questions were answered on a sample (empty otherwise)."""
        return "" if self.fitted_on is None else sampling.sample_note(
            self.fitted_on, len(self.scored), "both questions split, trained and tested")

    def describe_windows(self) -> str:
        """The two windows, set or derived (with the rule when derived)."""
        text = self.windows.describe() + (f"\nrule: {cf.WINDOW_RULE}" if self.windows.derived else "")
        return text + (f"\nsample: {self.sample_text}; every customer is scored" if self.sample_text else "")

    def describe_q1(self) -> str:
        """Question 1's split (or why it was skipped) and its features."""
        if self.tiers is None:
            return f"question 1 skipped: {self.q1_skipped}"
        return f"{self.tiers.description}\nfeatures: {', '.join(self.tiers.x_train.columns)}"

    def q1_counts(self) -> pd.DataFrame | None:
        """Customers per tier in question 1's training and test periods (None when skipped)."""
        if self.tiers is None:
            return None
        return (pd.DataFrame({"train": self.tiers.y_train.value_counts(), "test": self.tiers.y_test.value_counts()})
                .reindex(list(names.TIERS)).fillna(0).astype(int))

    def describe_q1_answer(self) -> str:
        """Cross-validation, the comparison with the baseline and the label overlap of question 1."""
        a = self.tier_answer
        if a is None:
            return f"question 1 skipped: {self.q1_skipped}"
        o = self.q1_overlap
        return (f"training period, {a.cv_note}: ROC-AUC {a.cv_mean:.3f} +/- {a.cv_std:.3f}\n{a.comparison()}\n"
                f"what the features already see of the label: {o['spend_seen']:.0%} of the test customers' spend "
                f"falls in their first {self.windows.early_days} days; {o['no_later_purchase']:.0%} bought nothing later")

    def q1_table(self) -> pd.DataFrame | None:
        """Question 1's metrics on the test period: boosted model, decision tree, one-rule baseline (None when skipped)."""
        return _with_tree(self.tier_answer, self.tier_tree)

    def q1_confusions(self) -> dict[str, pd.DataFrame]:
        """Question 1's confusion matrices on the test period: the model's and the one-rule baseline's (empty: skipped)."""
        a = self.tier_answer
        if a is None:
            return {}
        return {title: cf.confusion(self.tiers.y_test, predicted, list(names.TIERS))
                for title, predicted in [("model", a.predicted), ("one-rule baseline", a.baseline)]}

    def describe_q2(self) -> str:
        """Question 2's split (or why it was skipped), label shares, cross-validation and the verdict."""
        a, v = self.value_answer, self.value
        if a is None:
            return f"question 2 skipped: {self.q2_skipped}"
        return (f"{v.description}\nhigh-value share: train {v.y_train.mean():.1%} of {len(v.y_train):,} customers, "
                f"test {v.y_test.mean():.1%} of {len(v.y_test):,}\n"
                f"training period, {a.cv_note}: ROC-AUC {a.cv_mean:.3f} +/- {a.cv_std:.3f}\n"
                + a.comparison() + ("; prospects will be flagged." if a.beats_baseline
                                    else "; so no customer will be flagged as a prospect."))

    def q2_table(self) -> pd.DataFrame | None:
        """Question 2's metrics on the test period: boosted model, decision tree, RFM-score baseline (None when skipped)."""
        return _with_tree(self.value_answer, self.value_tree)

    def describe_trees(self) -> str:
        """Each question's decision tree as indented rules, and one rule read as a sentence."""
        parts = []
        for title, tree, outcome in [("question 1 (value tier)", self.tier_tree, "platinum"),
                                     ("question 2 (high value next period)", self.value_tree, "high value next period")]:
            if tree is not None:
                parts.append(f"{title}: decision tree of depth {tree.model.get_depth()}, {tree.model.get_n_leaves()} "
                             f"leaves\n{tree.rules()}\nRead one rule: "
                             + (cf.read_rule(tree, outcome=outcome, early_days=self.windows.early_days)
                                or "the target class is absent from the training customers."))
        return "\n\n".join(parts) or "no decision tree: both questions were skipped"

    def tier_recall(self) -> pd.DataFrame | None:
        """Per tier on question 1's test period: support, and what the boosted model and the tree predict (None: skipped)."""
        a, t = self.tier_answer, self.tier_tree
        if a is None or t is None:
            return None
        return cf.tier_recall(a.split.y_test, {"boosted model": a.predicted, "tree": t.predicted},
                              a.split.x_train, a.split.y_train)

    def q2_confusion(self) -> pd.DataFrame | None:
        """Question 2's confusion matrix when the top ``classify.target_share`` by model score are called."""
        if self.value_answer is None:
            return None
        return cf.top_share_confusion(self.value.y_test, self.value_answer.test_scores, self.target_share)

    def gains(self) -> dict[str, pd.DataFrame]:
        """Cumulative gains and lift on question 2's test period: the model's and the RFM score's (empty: skipped)."""
        a = self.value_answer
        if a is None:
            return {}
        return {"model": cf.gains_table(self.value.y_test, a.test_scores),
                "RFM score": cf.gains_table(self.value.y_test, a.baseline)}

    def describe_importance(self) -> str:
        """Which features question 2's model relies on most (or why there is no importance)."""
        if self.value_answer is None:
            return f"no permutation importance: question 2 skipped ({self.q2_skipped})"
        if self.importance.empty:
            return "no permutation importance: the test period has a single class"
        top = self.importance.head(3)
        return "the model relies most on: " + ", ".join(f"{r.feature} ({r.importance:.3f})" for r in top.itertuples())

    def describe_prospects(self) -> str:
        """How many prospects were flagged, and how many customers are still inside their early window."""
        s = self.scored
        return (f"{int(s['prospect'].sum()):,} prospects"
                + ("" if self.flag else " (the high-value model did not earn them: see the caveats below)")
                + f"; {int((~s['early_window_complete']).sum()):,} customers still inside their first "
                  f"{self.windows.early_days} days (predicted tier from partial information)")

    def describe_newcomers(self) -> str:
        """Who counts as new, how many there are and are flagged, and where the backtest comes from."""
        n = self.newcomers
        if n is None or n.model is None:
            return "no prospects among new customers: both questions were skipped"
        which = (f"question 1's tier model flags those it places in {' or '.join(cf.VALUABLE)} (high growth potential)"
                 if n.model == "tier" else
                 f"question 2's model flags the top {self.prospect_share:.0%} of them by P(high value)")
        return (f"newcomers: customers whose first purchase falls in the last {n.early_days} days before as_of "
                f"({n.new:,} of {len(self.scored):,}); {which}: {n.flagged:,} flagged.\n"
                f"backtest: {n.backtest['window']}.")

    def top_scored(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` customers most likely to be high value, as a notebook may show them (pseudonymous ids)."""
        top = names.top_rows(self.scored, "p_high_value", n, key="customer_id").round(3)
        return privacy.shown_ids(top, self.raw_ids)

    def describe_caveats(self) -> str:
        """One line per caveat (or that there are none)."""
        lines = [f"- [{c['code']}] {c['text']}" for c in self.caveats]
        return "\n".join(lines) or "no caveats: both models beat their baselines on data they had not seen"

    def artifact(self) -> pd.DataFrame:
        """``predictions.parquet``: every customer's predicted tier, P(high value) and prospect flag."""
        return self.scored.drop(columns=SHOWN_BESIDE)

    def summary(self) -> dict[str, Any]:
        """``classification.json``: windows, splits, both answers, importance, prospects and caveats."""
        t, v, ta, va = self.tiers, self.value, self.tier_answer, self.value_answer
        return {
            "windows": self.windows.as_dict(),
            "q1_skipped": self.q1_skipped, "q1_split": t.description if t is not None else None,
            "q1": cf.jsonable(ta.table if ta else None), "q1_cv_auc": cf.number(ta.cv_mean) if ta else None,
            "q1_beats_baseline": ta.beats_baseline if ta else None,
            "q1_label_overlap": cf.finite_or_none(self.q1_overlap),
            "q2_skipped": self.q2_skipped, "q2_split": v.description if v is not None else None,
            "q2": cf.jsonable(va.table if va else None), "q2_cv_auc": cf.number(va.cv_mean) if va else None,
            "q2_beats_baseline": va.beats_baseline if va else None,
            "q2_importance": self.importance.set_index("feature")["importance"].astype(float).round(4).to_dict(),
            "prospect_share": self.prospect_share, "prospects_flagged": bool(self.flag),
            "prospects": int(self.scored["prospect"].sum()), "caveats": self.caveats,
            "q1_tree": cf.jsonable(self.tier_tree.metrics.to_frame("tree")) if self.tier_tree else None,
            "q2_tree": cf.jsonable(self.value_tree.metrics.to_frame("tree")) if self.value_tree else None,
            "new_prospects": self.newcomers.as_dict() if self.newcomers else None,
            "sample": self.sample_text or None,
        }


def _with_tree(answer: cf.Answer | None, tree: cf.TreeAnswer | None) -> pd.DataFrame | None:
    """An answer's metrics table with the decision tree's column between the model and the baseline."""
    if answer is None:
        return None
    table = answer.table.copy()
    if tree is not None:
        table.insert(1, f"decision tree (depth {cf.TREE_DEPTH})", tree.metrics)
    return table


def _question_1(params: Any, days: pd.DataFrame, customers: pd.DataFrame, clv_validation: dict[str, Any],
                windows: cf.Windows, whole: whole_log.Whole | None
                ) -> tuple[cf.Split | None, str | None, cf.Answer | None, dict[str, float] | None]:
    """Question 1: the split (or the skip reason), the answer and the label overlap."""
    q = params.classify
    tiers, skipped = None, cf.tier_skip_reason(customers, clv_validation)
    if skipped is None:
        tiers, skipped = cf.attempt(cf.tier_split, days, customers, params.as_of, windows.early_days,
                                    q.test_share, q.train_sample, q.seed, None if whole is None else whole.aggregates)
    if tiers is None:
        return None, skipped, None, None
    answer = cf.answer_tiers(tiers, q.cv_folds, q.seed, q.boosting_rounds)
    return tiers, None, answer, cf.label_overlap(tiers, customers, windows.early_days, params.as_of)


def classify_customers(params: Any, days: pd.DataFrame, transactions: pd.DataFrame, customers: pd.DataFrame,
                       clv_validation: dict[str, Any], whole: whole_log.Whole | None = None) -> ClassifyResult:
    """Stage 07: both questions on their time splits, today's scores and prospects, and the caveats.

    ``days`` are the run's purchase days (``amount``, ``country``: every feature),
    ``transactions`` the clean lines (``customer_id``, ``order_ts``, ``amount``: question 2's labels; those of
    the sample's customers are enough above ``scale.sample_customers``). With ``whole`` (every customer's
    aggregates with the early window, :mod:`helpers.summary_sql`) the features of everyone come from it and
    ``days`` need only hold the sample's.
    """
    q = params.classify
    start = log_start(days, params.as_of) if whole is None else whole_log.log_start(whole.aggregates)
    windows = cf.derive_windows(start, params.as_of, q.early_days, q.label_days)
    keep = _sample(customers, params.scale.sample_customers, whole)  # the questions on the sample, everyone scored
    fit_customers, fit_days, fit_lines = ((customers, days, transactions) if keep is None else
                                          (frame[frame["customer_id"].isin(keep)]
                                           for frame in (customers, days, transactions)))
    with one_thread():
        tiers, q1_skipped, tier_answer, overlap = _question_1(params, days, fit_customers, clv_validation, windows,
                                                              whole)
        found, q2_skipped = cf.attempt(cf.high_value_split, fit_days, fit_lines, params.as_of, windows.label_days,
                                       q.target_share, q.train_sample, q.seed)
        value, now = found if found is not None else (None, None)
        if keep is not None and value is not None:
            now = (cf.rfm_features(days, params.as_of) if whole is None  # today's features of every customer
                   else whole_log.rfm_features(whole.aggregates, params.as_of))
        value_answer = (cf.answer_high_value(value, q.cv_folds, q.seed, q.prospect_share, q.boosting_rounds)
                        if value is not None else None)
        importance = (cf.importance(value_answer.model, value, q.seed) if value_answer is not None
                      else pd.DataFrame(columns=["feature", "importance", "std"]))
        flag = value_answer is not None and value_answer.beats_baseline is True
        scored = cf.score_customers(days, customers, params.as_of, tiers, value, now, windows.early_days,
                                    q.seed, prospect_share=q.prospect_share, flag_prospects=flag,
                                    train_sample=q.train_sample, rounds=q.boosting_rounds)
        tier_tree = cf.answer_tree(tiers, q.seed, 1) if tiers is not None else None
        value_tree = cf.answer_tree(value, q.seed, 2, q.prospect_share) if value is not None else None
    scored = scored.merge(customers[["customer_id", *SHOWN_BESIDE]], on="customer_id")
    newcomers = cf.new_prospects(scored, windows.early_days, q.prospect_share, tier_answer, value_answer)
    present = [t for t in names.TIERS if "value_tier" in customers and (customers["value_tier"] == t).any()]
    caveats = (cf.tier_caveats(tier_answer, q1_skipped, overlap, present, windows.early_days)
               + cf.value_caveats(value_answer, q2_skipped, q.prospect_share))
    return ClassifyResult(windows, tiers, q1_skipped, tier_answer, overlap, value, q2_skipped, value_answer,
                          importance, flag, scored, caveats, q.target_share, q.prospect_share, params.privacy.raw_ids,
                          tier_tree, value_tree, newcomers, None if keep is None else len(keep))


def _sample(customers: pd.DataFrame, size: int, whole: whole_log.Whole | None = None) -> pd.Index | None:
    """The customer ids of the sample (:mod:`helpers.sampling`), or None when every customer is used.

    With ``whole`` the sample is drawn once per stage (``whole`` keeps it: hashing ten million ids takes 20 s).
    """
    if not sampling.is_sampled(len(customers), size):
        return None
    ids = pd.Index(customers["customer_id"])
    return sampling.sample_index(ids, size) if whole is None else whole.sample(size, ids)


def save_classification(catalog: Any, result: ClassifyResult) -> dict[str, Path]:
    """Write stage 07's artifacts: ``predictions.parquet``, ``classification.json`` and the view 'predictions' of the file."""
    artifact = result.artifact()
    written = {"predictions": catalog.write_parquet("predictions", artifact)}
    catalog.write_tables({}, views={"predictions": "predictions"})
    written["classification"] = catalog.write_json("classification", result.summary())
    return written


def classify(params: Any, catalog: Any) -> ClassifyResult:
    """Stage 07 in one call: read the purchase days, the lines, stage 05's customers and validation; answer, score, write."""
    import pyarrow.parquet as pq

    from helpers.cleaning import load_transactions

    q = params.classify
    file = catalog.require("purchase_days", "04-rfm-value-tiers")
    windows = cf.derive_windows(whole_log.first_day(file, params.as_of), params.as_of, q.early_days, q.label_days)
    whole = whole_log.Whole.of(file, params.as_of, windows.early_days)  # everyone's features, in SQL (first)
    present = pq.ParquetFile(catalog.require("customers", "05-clv-lifetimes")).schema_arrow.names
    customers = catalog.read_parquet("customers", [c for c in CUSTOMER_COLUMNS if c in present])
    keep = _sample(customers, params.scale.sample_customers, whole)
    lines = load_transactions(catalog, TRANSACTION_COLUMNS, keep)
    result = classify_customers(params, whole_log.sample_days(file, keep, ["amount", "country"]), lines, customers,
                                catalog.read_json("clv_validation", {}), whole)
    save_classification(catalog, result)
    return result
