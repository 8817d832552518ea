"""Apache Spark as the engine of stages 02-04: the project's DuckDB SQL, transpiled to Spark SQL with SQLGlot.

The cleaning rules (:mod:`helpers.cleaning.rules`), the engine that runs them
(:mod:`helpers.cleaning.engine`, :mod:`helpers.cleaning.netting`), the schema
checks (:func:`helpers.schemas.validate_sql`), stage 02's mapping
(:func:`helpers.sqlclean.canonical_select`) and the purchase days
(:func:`helpers.summary.purchase_days_sql`) are written once, in SQL that
DuckDB runs. :class:`SparkConnection` is the part of DuckDB's connection API
they use (``execute(sql).fetchall()/.fetchone()/.df()``, ``register``,
``DESCRIBE``, temporary tables and views, ``DROP``) on a Spark session: each
statement is parsed as DuckDB SQL and written as Spark SQL by SQLGlot
(``read="duckdb", write="spark"``). The engine's steps use select lists, not
``* REPLACE``/``* EXCLUDE`` (:func:`helpers.cleaning.rules.select_list`). The
rules' SQL is DuckDB's, unchanged (a portable rewrite of the id normalisation
was measurably slower in DuckDB); what SQLGlot does not carry to Spark is
transformed here, on SQLGlot's tree (:func:`to_spark`):

- ``x[1]`` and ``x[-1]`` on a string (the rules' first and last character)
  become ``substring(x, 1, 1)`` and ``substring(x, -1, 1)`` (SQLGlot reads them as
  array indices); ``suffix`` becomes ``endswith``; a ``regexp_replace``
  backreference ``\\1`` becomes Java's ``$1``; ``regexp_full_match(x, p)``
  becomes ``x RLIKE '^(?:p)$'``;
- ``fsum(x ORDER BY o)`` (DuckDB's compensated sum, in order: a purchase day's
  amount) becomes the same Kahan sum over the group's values sorted by ``o``
  (:data:`KAHAN`): the same bits; ``fsum(x)`` without an order (the quality
  log's totals, rounded to cents) becomes ``sum(x)``;
- ``read_parquet(file, file_row_number = true)`` becomes a temporary view of the
  file whose ``file_row_number`` is Spark's ``_metadata.row_index`` (nanosecond
  timestamps, which Spark does not read, arrive as microseconds);
- ``CREATE TEMP TABLE`` becomes a temporary view of a locally checkpointed
  DataFrame (materialised, as DuckDB's table is, by the first statement that
  reads it), ``DESCRIBE`` the DataFrame's schema in DuckDB's type names;
- ``CAST(column AS VARCHAR)``: Spark writes a double of 1e7 or more in scientific
  notation (``1.2345678E7``; DuckDB ``12345678.0``), so a whole double below 1e15
  is written as DuckDB writes it (:data:`DOUBLE_TEXT`; float customer ids); beyond
  that, or with a fraction, the text differs.

Spark writes Parquet datasets (a folder of part files, sorted when the SQL
sorts); :meth:`SparkConnection.copy_to` then joins them into the single
artifact file the later stages read (row group by row group: bounded memory).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.config import SparkParams
from helpers.errors import ConfigError, DataError

#: Settings every session gets (``spark.config`` of the parameter file adds to them and overrides them).
DEFAULTS = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
            "spark.sql.session.timeZone": "UTC", "spark.sql.legacy.parquet.nanosAsLong": "true",
            "spark.sql.execution.arrow.pyspark.enabled": "true", "spark.sql.shuffle.partitions": "8"}
#: ``fsum(value ORDER BY order)``: the compensated (Kahan) sum in that order, as DuckDB and pandas add up a group.
KAHAN = ("aggregate(array_sort(collect_list(named_struct('o', {order}, 'v', {value}))), named_struct('s', 0D, 'c', 0D), "
         "(a, e) -> named_struct('s', a.s + (e.v - a.c), 'c', ((a.s + (e.v - a.c)) - a.s) - (e.v - a.c)), "
         "a -> a.s)")
#: ``CAST(c AS VARCHAR)`` of a column: a whole double below 1e15 as DuckDB writes it (``12345678.0``, where
#: Spark's own cast is scientific from 1e7 on); other values and types as Spark casts them.
DOUBLE_TEXT = ("CASE WHEN typeof({c}) = 'double' AND abs(CAST({c} AS DOUBLE)) < 1e15 "
               "AND CAST({c} AS DOUBLE) = floor(CAST({c} AS DOUBLE)) "
               "THEN concat(CAST(CAST(CAST({c} AS DOUBLE) AS BIGINT) AS STRING), '.0') ELSE CAST({c} AS STRING) END")
#: Spark's type names as DuckDB's DESCRIBE gives them (what :func:`helpers.schemas.validate_sql` compares).
DUCKDB_TYPES = {"string": "VARCHAR", "double": "DOUBLE", "float": "FLOAT", "bigint": "BIGINT", "int": "INTEGER",
                "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP", "date": "DATE", "boolean": "BOOLEAN"}


def session(spark: SparkParams) -> Any:
    """The process's Spark session with ``spark``'s master and settings (started once, then reused).

    A clear :class:`~helpers.errors.ConfigError` when pyspark or Java is missing.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("engine: spark needs pyspark: pip install -r requirements.lock (or pip install pyspark)") from None
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        raise ConfigError("engine: spark needs Java 17 or later: apt-get install openjdk-17-jre-headless "
                          "(make system-deps), or set JAVA_HOME")
    builder = SparkSession.builder.master(spark.master).appName("customer-identification")
    for key, value in {**DEFAULTS, **spark.config}.items():
        builder = builder.config(key, value)
    try:
        active = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM's own message, in one line
        raise ConfigError(f"engine: spark could not start a Spark session (spark.master {spark.master!r}): "
                          f"{str(exc).strip().splitlines()[-1]}") from None
    active.sparkContext.setLogLevel("FATAL")  # errors come back as DataError, in one line
    return active


def to_spark(sql: str, views: Any = None) -> str:
    """DuckDB SQL as Spark SQL (SQLGlot), with this module's transforms; ``views(path, row)`` names a Parquet view.

    >>> to_spark("SELECT coalesce(fsum(amount), 0), x::DOUBLE FROM t WHERE starts_with(y, 'C')")
    "SELECT COALESCE(SUM(amount), 0), CAST(x AS DOUBLE) FROM t WHERE STARTSWITH(y, 'C')"
    """
    import sqlglot
    from sqlglot import exp

    def portable(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "fsum":
            arg = node.expressions[0]
            if not isinstance(arg, exp.Order):
                return exp.Sum(this=arg)
            keys = [o.this.sql("spark") for o in arg.expressions]  # several keys: a struct, compared in turn
            value, order = arg.this.sql("spark"), keys[0] if len(keys) == 1 else f"struct({', '.join(keys)})"
            return sqlglot.parse_one(KAHAN.format(value=value, order=order), read="spark")
        if isinstance(node, exp.Anonymous) and node.name.lower() == "suffix":
            this, suffix = (e.transform(portable) for e in node.expressions)  # a new node: its children too
            return exp.EndsWith(this=this, expression=suffix)
        if isinstance(node, exp.Bracket) and len(node.expressions) == 1 and node.expressions[0].sql() in ("0", "-2"):
            start = 1 if node.expressions[0].sql() == "0" else -1  # SQLGlot's 0-based x[1] and x[-1]
            return exp.Substring(this=node.this, start=exp.Literal.number(start), length=exp.Literal.number(1))
        if isinstance(node, exp.RegexpReplace) and isinstance(node.args.get("replacement"), exp.Literal):
            node.set("replacement", exp.Literal.string(re.sub(r"\\(\d)", r"$\1", node.args["replacement"].this)))
            return node
        if (isinstance(node, exp.Cast) and isinstance(node.this, exp.Column)
                and node.to.this in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT)):
            return sqlglot.parse_one(DOUBLE_TEXT.format(c=node.this.sql("spark")), read="spark")
        if isinstance(node, exp.RegexpFullMatch):
            return exp.RegexpLike(this=node.this, expression=exp.Literal.string(f"^(?:{node.expression.this})$"))
        if isinstance(node, exp.Table) and isinstance(node.this, exp.ReadParquet) and views is not None:
            path, *options = node.this.expressions
            row = any(isinstance(o, exp.EQ) and o.this.name == "file_row_number" and o.expression.this for o in options)
            table = exp.to_table(views(path.name, row))
            return table.as_(node.alias) if node.alias else table
        return node

    return sqlglot.parse_one(sql, read="duckdb").transform(portable).sql(dialect="spark")


class SparkResult:
    """A statement's result, as DuckDB's: ``fetchall()``, ``fetchone()``, ``df()`` (of a Spark DataFrame or of rows)."""

    def __init__(self, frame: Any = None, rows: list[tuple] | None = None) -> None:
        self.frame, self.rows = frame, rows

    def fetchall(self) -> list[tuple]:
        """Every row as a tuple."""
        return list(self.rows) if self.frame is None else [tuple(row) for row in self.frame.collect()]

    def fetchone(self) -> tuple | None:
        """The first row (None when there is none)."""
        rows = self.rows if self.frame is None else self.frame.take(1)
        return tuple(rows[0]) if rows else None

    def df(self) -> pd.DataFrame:
        """The result as a pandas frame (through Arrow)."""
        return pd.DataFrame(self.rows) if self.frame is None else self.frame.toPandas()


class SparkConnection:
    """DuckDB's connection API, as the engine uses it, on a Spark session: each statement transpiled (:func:`to_spark`)."""

    def __init__(self, spark: Any, storage: str | None = None) -> None:
        self.spark, self.storage = spark, storage
        self._tables: dict[str, Any] = {}
        self._views: dict[tuple[str, bool], str] = {}
        self._names = itertools.count()
        self._made: set[str] = set()  # temporary views made by statements or registered frames

    def parquet_view(self, path: str, row: bool = False, row_column: str = "file_row_number") -> str:
        """A temporary view of the Parquet file ``path`` (with its rows' positions as ``row_column`` when ``row``)."""
        key = (f"{path}\0{row_column}", row)
        if key not in self._views:
            from pyspark.sql import functions as F

            frame = self.spark.read.parquet(path)
            nanos = {f.name for f in pq.read_schema(path) if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}
            frame = frame.select(*[F.timestamp_micros(F.expr(f"`{c}` div 1000")).alias(c) if c in nanos else F.col(c)
                                   for c in frame.columns],
                                 *([F.col("_metadata.row_index").alias(row_column)] if row else []))
            name = f"_parquet{next(self._names)}"
            frame.createOrReplaceTempView(name)
            self._views[key] = name
        return self._views[key]

    def parquet_lines(self, file: Path) -> str:
        """:func:`helpers.cleaning.engine.parquet_lines` on Spark: the lines of ``file`` with ``_row``."""
        return f"SELECT * FROM {self.parquet_view(str(file), True, '_row')}"

    def sql(self, sql: str) -> Any:
        """The Spark DataFrame of a DuckDB ``SELECT``."""
        return self.spark.sql(to_spark(sql, self.parquet_view))

    def execute(self, sql: str) -> SparkResult:
        """Run one DuckDB statement (``SELECT``, ``DESCRIBE``, ``CREATE [OR REPLACE] TEMP TABLE/VIEW``, ``DROP``)."""
        text = sql.strip()
        try:
            if m := re.fullmatch(r"(?is)DESCRIBE\s+(.+)", text):
                return SparkResult(rows=self.describe(m.group(1)))
            if m := re.fullmatch(r"(?is)CREATE\s+(?:OR\s+REPLACE\s+)?TEMP(?:ORARY)?\s+TABLE\s+(\w+)\s+AS\s+(.+)", text):
                self.drop(m.group(1))
                # checkpointed lazily: the first statement that reads the table (the engine's count of the step)
                # fills it, one Spark job fewer per table than an eager checkpoint; later reads use it
                self._tables[m.group(1)] = self.sql(m.group(2)).localCheckpoint(eager=False)
                self._tables[m.group(1)].createOrReplaceTempView(m.group(1))
                return SparkResult(rows=[])
            if m := re.fullmatch(r"(?is)DROP\s+(?:TABLE|VIEW)\s+(?:IF\s+EXISTS\s+)?(\w+)", text):
                self.drop(m.group(1))
                return SparkResult(rows=[])
            if m := re.match(r"(?is)CREATE\s+(?:OR\s+REPLACE\s+)?TEMP(?:ORARY)?\s+VIEW\s+(\w+)", text):
                self._made.add(m.group(1))
            return SparkResult(self.sql(text))
        except (ConfigError, DataError):
            raise
        except Exception as exc:  # noqa: BLE001 - Spark's analysis and runtime errors, in one line
            if type(exc).__module__.startswith(("pyspark", "py4j", "sqlglot")):
                raise DataError(f"Spark could not run the engine's SQL: {str(exc).strip().splitlines()[0]}") from None
            raise

    def describe(self, target: str) -> list[tuple[str, str]]:
        """``DESCRIBE`` of a table, view or query: column names and DuckDB type names."""
        inner = target.strip()
        inner = inner[1:-1] if inner.startswith("(") and inner.endswith(")") else inner
        frame = self.spark.table(inner) if re.fullmatch(r"\w+", inner) else self.sql(inner)
        return [(f.name, DUCKDB_TYPES.get(f.dataType.simpleString(), f.dataType.simpleString().upper()))
                for f in frame.schema.fields]

    def drop(self, name: str) -> None:
        """Drop a temporary table or view (a table's checkpoint is released)."""
        self.spark.catalog.dropTempView(name)
        if (frame := self._tables.pop(name, None)) is not None:
            frame.unpersist()

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """A pandas frame as temporary view ``name`` (through Arrow; an all-missing column as text)."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        fields = [pa.field(f.name, pa.string() if pa.types.is_null(f.type) else
                           pa.timestamp("us") if pa.types.is_timestamp(f.type) else f.type) for f in table.schema]
        self.spark.createDataFrame(table.cast(pa.schema(fields))).createOrReplaceTempView(name)
        self._made.add(name)

    def unregister(self, name: str) -> None:
        """Drop the view a frame was registered as."""
        self.drop(name)

    def copy_to(self, select: str, target: Path) -> Path:
        """``COPY (select) TO target`` on Spark: a Parquet dataset in ``spark.storage`` joined into the file ``target``."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import TimestampType

        from helpers import store

        frame = self.sql(select)
        frame = frame.select(*[F.col(f.name).cast("timestamp_ntz") if isinstance(f.dataType, TimestampType)
                               else F.col(f.name) for f in frame.schema.fields])
        parts = Path(self.storage or Path(target).parent) / f"{Path(target).stem}.spark"
        frame.write.mode("overwrite").parquet(str(parts))
        with store.atomic_path(Path(target)) as tmp:
            join_parts(parts, tmp)
        shutil.rmtree(parts, ignore_errors=True)
        return Path(target)

    def close(self) -> None:
        """Drop every temporary table and view this connection made (the session stays up for the next stage)."""
        for name in [*self._tables, *self._views.values(), *self._made]:
            self.drop(name)
        self._views.clear()
        self._made.clear()


def join_parts(parts: Path, target: Path) -> Path:
    """The part files of a Parquet dataset Spark wrote, in their order, as one Parquet file (zstd)."""
    files = sorted(parts.glob("part-*.parquet"))
    if not files:
        raise DataError(f"{parts}: Spark wrote no Parquet part files")
    schema = pq.read_schema(files[0]).remove_metadata()
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        for file in files:
            for batch in pq.ParquetFile(file).iter_batches():
                writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
    return target


def connect(spark: SparkParams) -> SparkConnection:
    """A :class:`SparkConnection` on the session of ``spark`` (``params.spark``)."""
    return SparkConnection(session(spark), spark.storage)
