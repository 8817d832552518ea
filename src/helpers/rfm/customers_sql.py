"""The customer table computed in DuckDB over the run's purchase days: one row per customer comes into pandas.

Stage 04 used to read every purchase day (customer x day, with its country)
into pandas for :func:`helpers.summary.customer_table`; at ten million customers that is 27 million rows of
text keys. :func:`customer_table` gives the same frame, value for value and bit for bit, from SQL over
``purchase_days.parquet``:

- ``monetary_total`` is the compensated (Kahan) sum of the customer's day amounts in day order,
  ``fsum(amount ORDER BY day)``: the sum pandas' ``groupby(...).sum()`` computes over the days in that order;
- ``country`` is the country of the first purchase day that names one (pandas' ``first()``);
- ``recency_days`` and ``tenure_days`` are whole days to ``as_of``; customers are sorted by key (byte order, the
  order pandas sorts Python strings in) and a missing key is left out (pandas' ``groupby`` drops it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from helpers import summary
from helpers.errors import DataError
from helpers.names import shared_texts
from helpers.summary import CUSTOMER_COLUMNS, _literal


def customer_table_sql(days_file: Path, as_of: dt.date, country: bool) -> str:
    """The SQL of the customer table at ``as_of`` from a purchase-days Parquet file (``country``: it has one).

    >>> "fsum(amount ORDER BY day)" in customer_table_sql(Path("d.parquet"), dt.date(2020, 1, 31), False)
    True
    """
    end = f"DATE {_literal(as_of.isoformat())}"
    columns = {
        "customer_id": "customer_id",
        "country": "arg_min(country, day) FILTER (WHERE country IS NOT NULL)",
        "first_purchase": "CAST(min(day) AS TIMESTAMP)",
        "last_purchase": "CAST(max(day) AS TIMESTAMP)",
        "recency_days": f"CAST(date_diff('day', max(day), {end}) AS BIGINT)",
        "frequency": "count(*)",
        "monetary_total": "fsum(amount ORDER BY day)",
        "monetary_avg": "fsum(amount ORDER BY day) / count(*)",
        "tenure_days": f"CAST(date_diff('day', min(day), {end}) AS BIGINT)",
    }
    select = ", ".join(f"{columns[c]} AS {c}" for c in CUSTOMER_COLUMNS if country or c != "country")
    return (f"SELECT {select} FROM read_parquet({_literal(str(days_file))}) "
            f"WHERE day <= {end} AND customer_id IS NOT NULL GROUP BY customer_id ORDER BY customer_id")


def customer_table(days_file: Path, as_of: dt.date, country: bool = True) -> pd.DataFrame:
    """The customer table at ``as_of`` (:func:`helpers.summary.customer_table`'s frame) computed in DuckDB over
    ``days_file`` (the run's ``purchase_days.parquet``); ``country=False`` leaves the country out.

    Raises :class:`~helpers.errors.DataError` when no purchase day is on or before ``as_of``.
    """
    con = summary._connect(Path(days_file).parent)
    try:
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_literal(str(days_file))})").fetchall()]
        table = con.sql(customer_table_sql(days_file, as_of, country and "country" in names)).df()
    finally:
        con.close()
    if table.empty:
        raise DataError(f"no transactions on or before as_of {as_of.isoformat()}")
    for column in ("first_purchase", "last_purchase"):
        table[column] = table[column].astype("datetime64[ns]")
    for column in ("recency_days", "frequency", "tenure_days"):
        table[column] = table[column].astype("int64")
    if "country" in table:  # a few names, one string each (DuckDB gives one per customer)
        table["country"] = shared_texts(table["country"])
    return table
