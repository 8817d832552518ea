"""The stages as functions: one call per stage, shared by the notebooks, the runner and the tests.

Every stage is ``stage(params, catalog) -> result``: it reads what earlier
stages wrote from the run's :class:`~helpers.catalog.Catalog`, computes,
writes its own artifacts there, and returns a typed result (a dataclass) for
the notebook to explain, tabulate and plot. A stage function prints nothing
and draws nothing; a notebook holds no fitting, no thresholds and no writing.

``python -m helpers.run`` executes the notebooks (the narrative and the HTML
report), each of which calls its stage function; ``python -m helpers.run
--no-notebooks`` and the tests call the functions directly, in one process
(:func:`run_stage`), and get the same artifacts.

=======================  ================================  ====================================================
stage                    function                          writes (artifact names, helpers.catalog)
=======================  ================================  ====================================================
01-define-customer-data  ``helpers.stages.define``         data_dictionary
02-collect-sources       ``helpers.stages.collect``        snapshot, collected (+ raw snapshot)
03-clean-integrate       ``helpers.stages.clean``          transactions, quality_log
04-rfm-value-tiers       ``helpers.stages.rfm``            purchase_days, customers_rfm, customer_types, rfm
05-clv-lifetimes         ``helpers.stages.value``          customers, clv_validation, model_comparison, tracking,
                                                           value_per_period
06-cluster-segments      ``helpers.stages.cluster``        clusters, clusters_summary
07-classify-prospects    ``helpers.stages.classify``       predictions, classification
08-segment-report        ``helpers.stages.report``         customer_segments(+_csv), customer_value_by_month(+_csv),
                                                           metrics
=======================  ================================  ====================================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

#: Stage 05's names, re-exported lazily (:func:`__getattr__`): importing one stage (a notebook's
#: ``from helpers.stages.define import define``) does not import lifetimes and the models.
VALUE_NAMES = ("ONE_TIME_CAVEAT_SHARE", "SPEND_CORRELATION_LIMIT", "WEAK_HOLDOUT_PURCHASES",
               "WEAK_HOLDOUT_RANK_CORRELATION", "ValueResult", "save_value", "value", "value_customers")

#: Each stage's function, as ``module:function`` (imported when first called).
STAGE_FUNCTIONS: dict[str, str] = {
    "01-define-customer-data": "helpers.stages.define:define",
    "02-collect-sources": "helpers.stages.collect:collect",
    "03-clean-integrate": "helpers.stages.clean:clean",
    "04-rfm-value-tiers": "helpers.stages.rfm:rfm",
    "05-clv-lifetimes": "helpers.stages.value:value",
    "06-cluster-segments": "helpers.stages.cluster:cluster",
    "07-classify-prospects": "helpers.stages.classify:classify",
    "08-segment-report": "helpers.stages.report:report",
}


def __getattr__(name: str) -> Any:
    """``helpers.stages.value_customers`` and the other names of :data:`VALUE_NAMES`, imported on first use."""
    if name in VALUE_NAMES:
        return getattr(importlib.import_module("helpers.stages.value"), name)
    raise AttributeError(f"module 'helpers.stages' has no attribute {name!r}")


def stage_function(stage: str) -> Callable[..., Any]:
    """The function of ``stage`` (a name of :data:`STAGE_FUNCTIONS`)."""
    module, name = STAGE_FUNCTIONS[stage].split(":")
    return getattr(importlib.import_module(module), name)


def run_stage(stage: str, params: Any, catalog: Any) -> Any:
    """Run one stage in this process: its function on the run's parameters and catalog."""
    return stage_function(stage)(params, catalog)


__all__ = ["ONE_TIME_CAVEAT_SHARE", "SPEND_CORRELATION_LIMIT", "STAGE_FUNCTIONS", "ValueResult",
           "WEAK_HOLDOUT_PURCHASES", "WEAK_HOLDOUT_RANK_CORRELATION", "run_stage", "save_value", "stage_function",
           "value", "value_customers"]
