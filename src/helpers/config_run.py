"""How a run executes, beside what it computes: samples at scale, privacy, exports, the Spark session.

Part of the parameter file (:mod:`helpers.config`, which re-exports these
classes): ``scale``, ``privacy``, ``export`` and ``spark``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScaleParams(_Strict):
    """Large customer bases: fit on a sample, score everyone (see helpers.sampling)."""

    sample_customers: int = Field(100_000, ge=100, description="above this many customers, stages 05-07 fit, choose "
                                  "and diagnose their models on a sample of this many (the customers with the smallest "
                                  "hash of their id) and score every customer exactly; at or below it nothing is sampled")


class PrivacyParams(_Strict):
    """What may leave the raw layer (see README, Privacy)."""

    raw_ids: bool = Field(False, description="true: exports and notebook tables also show raw customer ids "
                                             "(personal data); false: pseudonymous customer_key only")


class ExportParams(_Strict):
    """How stage 08 writes the customer exports (the Parquet files are always complete)."""

    csv_pandas_rows: int | None = Field(250_000, ge=0, description="exports of up to this many rows are written as "
                                        "CSV by pandas; larger ones by DuckDB from the Parquet export (the same "
                                        "formats, seconds instead of a minute per million customers); null: pandas "
                                        "always")


class SparkParams(_Strict):
    """The Spark session of ``engine: spark`` (see README, Spark)."""

    master: str = Field("local[2]", description="Spark master: local[N] (this machine, N cores), spark://host:7077, "
                                                "yarn, k8s://...")
    config: dict[str, str] = Field(default_factory=dict, description="Spark settings, e.g. "
                                   "spark.sql.shuffle.partitions: '8' or spark.driver.memory: 4g")
    storage: str | None = Field(None, description="folder Spark writes its Parquet datasets to (on a cluster: "
                                "shared storage the driver reads too); null: beside the run's artifacts")
