"""Predicting segments: which new customers look like the valuable ones.

Stage 07. Clustering (stage 06) finds groups without labels; classification
learns known labels and predicts them for customers whose label we do not know
yet. Two questions, both with splits in time so that nothing from the future
leaks into what the model sees:

**Question 1 - assign new customers to a value tier.** A customer is described
only by what is known ``early_days`` after their first purchase (first order
value, purchases and spend in those days, country). The label is the value
tier at ``as_of``. Customers are split by acquisition date: the model learns
from the earlier-acquired and is tested on the later-acquired.

**Question 2 - who will be high value next period?** At a cut-off date, every
customer is described by RFM features computed from purchases up to the
cut-off; the label is whether their spend in the following ``label_days`` is
in the top ``target_share``. The model is trained with the cut-off one period
earlier (labels ending at the test cut-off) and tested on the latest period,
whose labels are the last ``label_days`` before ``as_of``.

Both are compared with a simple baseline on the same split (question 1: a
one-rule classifier on early spend; question 2: the RFM score).

**Windows that fit the log.** ``classify.early_days`` and ``classify.label_days``
are derived from the log's span when they are null (:func:`derive_windows`,
rule in :data:`WINDOW_RULE`). A question the log has too little history for
raises a :class:`DataError` naming the parameter to change; the stage
(:mod:`helpers.stages.classify`) turns it into a skip (:func:`attempt`), so the other question still runs.

**Honest answers.** A model that does not beat its baseline on the held-out
period flags no prospects (:func:`prospects`); :func:`tier_caveats` and
:func:`value_caveats` turn this run's numbers into the sentences that travel
with the headline numbers (``classification.json["caveats"]``).

The package, by concern: :mod:`~helpers.classify.windows` (the two windows),
:mod:`~helpers.classify.splits` (features, labels, time splits),
:mod:`~helpers.classify.models` (classifier, cross-validation, baselines,
metrics, answers), :mod:`~helpers.classify.caveats`, and
:mod:`~helpers.classify.scoring` (today's customers, JSON helpers). The names
are re-exported here (``from helpers import classify as cf; cf.tier_split``);
:mod:`~helpers.classify.tree` (the readable decision tree beside the boosted
model) and :mod:`~helpers.classify.newcomers` (prospects among new customers).
"""


from __future__ import annotations

from helpers.classify.caveats import (EARLY_TENURE_LIMIT, FEW_POSITIVES, FEW_TRAINING, SEEN_SPEND_LIMIT,
                                      label_overlap, tier_caveats, value_caveats)
from helpers.classify.models import (CV_SAMPLE, HIGH_VALUE_LABELS, IMPORTANCE_SAMPLE, TIER_AUC, Answer, _fmt, _pct,
                                     answer_high_value, answer_tiers, auc, confusion, cross_validate, gains_table,
                                     high_value_metrics, importance, make_model, one_rule_tier, one_rule_tier_proba,
                                     precision_at, precision_label, rfm_baseline_score, tier_metrics, top_share_confusion)
from helpers.classify.scoring import finite_or_none, jsonable, number, prospects, score_customers
from helpers.classify.splits import (EARLY_FEATURES, MIN_CUSTOMERS, RFM_FEATURES, TIERS, TRAIN_SAMPLE, Split,
                                     _sample_rows, _sampled, attempt, early_features, future_high_value,
                                     high_value_split, rfm_features, tier_skip_reason, tier_split)
from helpers.classify.windows import (EARLY_DAYS_CAP, EARLY_SPAN_SHARE, LABEL_DAYS_CAP, LABEL_SPAN_SHARE, WINDOW_RULE,
                                      Windows, derive_windows, whole_weeks)
from helpers.classify.newcomers import VALUABLE, NewProspects, new_prospects
from helpers.classify.tree import (RULE_MIN_CUSTOMERS, TREE_DEPTH, TreeAnswer, answer_tree, leaves, never_predicted,
                                   read_rule, tier_recall, top_rule)
from helpers.summary import log_start

__all__ = ["CV_SAMPLE", "EARLY_DAYS_CAP", "EARLY_FEATURES", "EARLY_SPAN_SHARE", "EARLY_TENURE_LIMIT", "FEW_POSITIVES",
           "FEW_TRAINING", "HIGH_VALUE_LABELS", "IMPORTANCE_SAMPLE", "LABEL_DAYS_CAP", "LABEL_SPAN_SHARE",
           "MIN_CUSTOMERS", "RFM_FEATURES", "SEEN_SPEND_LIMIT", "TIERS", "TIER_AUC", "TRAIN_SAMPLE", "WINDOW_RULE",
           "Answer", "Split", "Windows", "_fmt", "_pct", "_sample_rows", "_sampled", "answer_high_value",
           "answer_tiers", "attempt", "auc", "confusion", "cross_validate", "derive_windows", "early_features",
           "finite_or_none", "future_high_value", "gains_table", "high_value_split", "importance", "jsonable",
           "label_overlap", "log_start", "make_model", "number", "one_rule_tier", "one_rule_tier_proba",
           "precision_at", "precision_label", "prospects", "rfm_baseline_score", "rfm_features", "score_customers",
           "tier_caveats", "tier_skip_reason", "tier_split", "top_share_confusion", "value_caveats", "whole_weeks",
           "VALUABLE", "NewProspects", "new_prospects", "RULE_MIN_CUSTOMERS", "TREE_DEPTH", "TreeAnswer", "answer_tree",
           "leaves", "never_predicted", "read_rule", "tier_recall", "top_rule", "high_value_metrics", "tier_metrics"]
