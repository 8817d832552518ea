"""Stage 02, collect the sources: snapshot, read, map onto the contract, and what the notebook shows of it.

The work is :func:`helpers.sources.collect_and_save`; this adds what notebook
02 shows, read back from the run's DuckDB database with SQL (the same queries
an analyst would run): the first lines, the counts, the lines and money per
month before cleaning, the new customers per month (their first line in the log), the
log's span with how many customers first bought in its first weeks, and the raw snapshots
of the data set.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import pandas as pd

from helpers import privacy
from helpers.paths import shown
from helpers.sources import Snapshot, collect_and_save, role_columns

#: The log's first weeks: customers who first bought in them are its first cohort (CDNOW's design: one quarter).
COHORT_WEEKS = 13

#: What notebook 02 shows, as SQL over the run's database (tables ``collected`` and ``snapshots``).
QUERIES = {name: textwrap.dedent(sql).strip() for name, sql in {
    "head": "select * from collected limit 5",
    "counts": """
        select count(*) as lines, count(distinct customer_id) as customers,
               count(*) filter (where customer_id is null) as no_customer
        from collected""",
    "monthly": """
        select date_trunc('month', order_ts) as month,
               count(*) as lines,
               count(distinct customer_id) as customers,
               sum(amount) filter (where amount > 0) as sales,
               sum(amount) filter (where amount < 0) as returns
        from collected
        group by 1 order by 1""",
    "acquisition": """
        select date_trunc('month', first_ts) as month, count(*) as new_customers
        from (select customer_id, min(order_ts) as first_ts from collected
              where customer_id is not null group by 1)
        group by 1 order by 1""",
    "span": f"""
        with firsts as (select min(order_ts) as first_ts from collected
                        where customer_id is not null group by customer_id),
             log as (select min(order_ts) as first_line, max(order_ts) as last_line,
                            coalesce(sum(amount) filter (where customer_id is null), 0) as no_customer_amount
                     from collected)
        select any_value(first_line) as first_line, any_value(last_line) as last_line,
               count(first_ts) as customers,
               count(*) filter (where first_ts < first_line + interval {COHORT_WEEKS} week) as first_weeks_customers,
               any_value(no_customer_amount) as no_customer_amount
        from log left join firsts on true""",
    "geography": """
        select count(distinct country) as countries,
               count(*) filter (where country is null) as no_country,
               mode(country) filter (where customer_id is not null) as top_country,
               count(distinct customer_id) filter (where country = (select mode(country) from collected
                                                                    where customer_id is not null)) as top_customers
        from collected""",
    "snapshots": "select snapshot_id, file, rows, collected_at, used_by_this_run from snapshots",
}.items()}


@dataclass
class CollectResult:
    """Stage 02's result: the snapshot, the engine, and the tables notebook 02 shows.

    ``acquisition`` has the new customers per month (month of their first line); ``span`` the log's first and
    last line, its customers, how many of them first bought in its first :data:`COHORT_WEEKS` weeks, and the
    money on lines without a customer; ``geography`` (where the source maps ``country``) the distinct countries,
    the lines without one, the most common country and its customers.
    """

    snapshot: Snapshot
    engine: str
    parameter_engine: str
    unmapped: list[str]
    head: pd.DataFrame
    counts: pd.Series
    monthly: pd.DataFrame
    snapshots: pd.DataFrame
    written: str
    acquisition: pd.DataFrame
    span: pd.Series
    geography: pd.Series | None = None

    @property
    def manifest(self) -> pd.DataFrame:
        """The snapshot's manifest (without the source block), one row per entry."""
        return pd.Series(self.snapshot.manifest).drop(["source"]).to_frame("manifest")

    @property
    def message(self) -> str:
        """Which snapshot and engine were used, and the source columns left in the raw snapshot."""
        text = f"snapshot: {shown(self.snapshot.file)}\nengine:   {self.engine} (parameter engine: {self.parameter_engine})"
        if self.unmapped:
            text += f"\nnot collected (they stay in the raw snapshot only): {', '.join(self.unmapped)}"
        return text

    @property
    def counts_message(self) -> str:
        """Lines, customer keys and lines without a customer, in a sentence."""
        c = self.counts
        return (f"{c['lines']:,} lines from {c['customers']:,} customer keys, "
                f"{c['no_customer']:,} lines without a customer")


def unmapped_columns(params: Any, snapshot: Snapshot) -> list[str]:
    """The source's columns no role of the column mapping names (they stay in the raw snapshot only).

    >>> from helpers.config import load_params
    >>> from pathlib import Path
    >>> snap = Snapshot(Path("."), Path("x"), {"columns": ["customer_id", "sample_id", "date"]})
    >>> unmapped_columns(load_params("cdnow_sample.yaml"), snap)
    ['sample_id']
    """
    mapped = set(role_columns(params.columns).values())
    return [str(col) for col in snapshot.manifest["columns"] if col not in mapped]


#: The columns of ``collected`` the queries after ``head`` read (a view over Parquet is loaded with only these).
QUERIED_COLUMNS = ("customer_id", "order_ts", "amount", "country")


def run_queries(catalog: Any, queries: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Each query over the run's database, on one read-only connection, as frames by name.

    When ``collected`` is a view over Parquet (the DuckDB engine), the queries after ``head`` read a
    temporary table of its :data:`QUERIED_COLUMNS` (loaded once, spilling into the run folder) rather
    than decoding the file once per query: the same rows, so the same answers.
    """
    con = catalog.connect(read_only=True)
    try:
        out = {name: con.execute(sql).df() for name, sql in queries.items() if name == "head"}
        kind = con.execute("select table_type from information_schema.tables where table_name = 'collected'").fetchone()
        if kind and kind[0] == "VIEW":
            have = {r[0] for r in con.execute("DESCRIBE main.collected").fetchall()}
            con.execute(f"SET temp_directory = '{str(catalog.folder).replace(chr(39), chr(39) * 2)}'")
            con.execute(f"CREATE TEMP TABLE collected AS SELECT {', '.join(c for c in QUERIED_COLUMNS if c in have)} "
                        "FROM main.collected")
        out.update({name: con.execute(sql).df() for name, sql in queries.items() if name != "head"})
    finally:
        con.close()
    return out


def collect(params: Any, catalog: Any) -> CollectResult:
    """Stage 02 in one call: snapshot the source, map it, write ``collected`` (Parquet and table); query it back."""
    snapshot, engine = collect_and_save(params, catalog)
    q = run_queries(catalog, {name: sql for name, sql in QUERIES.items()
                              if name != "geography" or params.columns.country is not None})
    # stage 03 reports the customer keys that went in from here (at ten million customers the count took 18 s)
    catalog.write_json("snapshot", {**catalog.read_json("snapshot"),
                                    "collected": {k: int(v) for k, v in q["counts"].iloc[0].items()}})
    return CollectResult(
        snapshot, engine, params.engine, unmapped_columns(params, snapshot),
        privacy.shown_ids(q["head"], params.privacy.raw_ids), q["counts"].iloc[0], q["monthly"], q["snapshots"],
        f"written: {shown(catalog.path('collected'))} and table 'collected' in {shown(catalog.database)}"
        if engine != "duckdb" else f"written: view 'collected' (the raw snapshot mapped in SQL) in {shown(catalog.database)}",
        q["acquisition"], q["span"].iloc[0], q["geography"].iloc[0] if "geography" in q else None)
