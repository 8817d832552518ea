"""Scores of every customer from a model fitted on the driver: computed once per distinct row, joined back in Spark.

A BTYD model sees a customer only through (frequency, recency, T) and the
Gamma-Gamma spend model through (frequency, monetary value)
(:func:`helpers.clv.summary.distinct_rows`). However many customers there are,
these rows are few (a few hundred thousand at ten million customers), so
:func:`score_customers` collects the DISTINCT rows of a Spark DataFrame of the
BTYD summary to the driver, scores them in pandas as stage 05 does
(:func:`score_rows`: P(alive), expected purchases over the horizon, expected
spend, CLV) and joins the scores back to the customers in Spark, written as
Parquet partitioned by a bucket of the customer key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.clv.models import BTYDModel, SpendFit, expected_spend
from helpers.clv.value import lifetime_value
from helpers.config import CLVParams

#: The columns a customer's scores depend on (the spend model adds ``monetary_value``).
ROW_COLUMNS = ["frequency", "recency", "T"]


def score_rows(rows: pd.DataFrame, fit: BTYDModel, spend: SpendFit | None, c: CLVParams) -> pd.DataFrame:
    """P(alive), expected purchases over ``c.horizon_months``, expected spend and CLV of each row of a BTYD summary.

    The formulas of stage 05 (:func:`helpers.clv.value.customer_value`); without a spend model the spend and the
    CLV are missing.
    """
    out = rows.reset_index(drop=True)
    scores = pd.DataFrame({"p_alive": np.asarray(fit.p_alive(out), dtype=float)}, index=out.index)
    scores["expected_spend"] = expected_spend(spend, out).to_numpy() if spend is not None else np.nan
    value = lifetime_value(fit, scores["expected_spend"], out, months=c.horizon_months, unit=c.time_unit,
                           discount_rate_annual=c.discount_rate_annual, margin=c.margin)
    return out.join(scores).join(value)


def score_customers(customers: Any, fit: BTYDModel, spend: SpendFit | None, c: CLVParams, target: Path | str,
                    key: str = "customer_id", buckets: int = 8) -> Path:
    """Score every customer of the Spark DataFrame ``customers`` (``key`` and the BTYD summary) into Parquet at ``target``.

    The distinct (frequency, recency, T[, monetary_value]) rows come to the
    driver (:func:`score_rows`); their scores are joined back on those columns
    in Spark and written partitioned by ``bucket`` (a hash of ``key`` modulo
    ``buckets``), one folder per bucket.
    """
    from pyspark.sql import functions as F

    columns = ROW_COLUMNS + (["monetary_value"] if spend is not None else [])
    rows = customers.select(*columns).distinct().toPandas()
    scores = score_rows(rows, fit, spend, c)
    scored = customers.join(customers.sparkSession.createDataFrame(scores), on=columns, how="left")
    scored = scored.withColumn("bucket", F.pmod(F.xxhash64(F.col(key)), F.lit(buckets)))
    scored.repartition("bucket").write.mode("overwrite").partitionBy("bucket").parquet(str(target))
    return Path(target)
