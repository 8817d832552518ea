"""The value of the customers acquired, by acquisition month and by country, beside what a new one is worth.

:func:`helpers.clv.periods.new_customer_value` says what one customer acquired
today is expected to bring over the horizon (the same for everyone under a
model without covariates). The analyst's next question is what the customers
already acquired are worth, group by group: for each acquisition cohort (the
calendar month of the first purchase) and, where the log has a country, each
country (the country of the first order), :func:`acquisition_value` gives the
customers acquired, their mean realised spend so far, their mean predicted CLV
from ``as_of`` on, and the sum of the two, with the new-customer ceiling beside
it. A cohort's CLV is lower the older it is (more of its customers dropped out)
and its spend so far higher: the sum is the cohort's value as known today.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.errors import DataError

#: The columns of :func:`acquisition_value`'s tables.
ACQUISITION_COLUMNS = ["customers", "spend_so_far", "clv", "value_so_far_plus_clv", "new_customer_value"]


def acquisition_month(first_purchase: pd.Series) -> pd.Series:
    """The calendar month of each first purchase, as text ("1997-01").

    >>> acquisition_month(pd.Series(pd.to_datetime(["1997-01-31", "1997-02-01"]))).tolist()
    ['1997-01', '1997-02']
    """
    days = pd.to_datetime(first_purchase)
    codes, uniques = pd.factorize(days)  # formatted once per distinct day: strftime of a million dates takes seconds
    months = pd.DatetimeIndex(uniques).strftime("%Y-%m").to_numpy(dtype=object)
    picked = months[np.maximum(codes, 0)] if len(uniques) else np.full(len(codes), np.nan, dtype=object)
    return pd.Series(picked, index=days.index, name=days.name).where(codes >= 0)


def acquisition_value(value: pd.DataFrame, by: str, new_customer: float) -> pd.DataFrame:
    """Per acquisition month (``by="month"``) or country (``by="country"``): customers and their mean value.

    ``value`` is stage 05's customer table (``first_purchase``, ``monetary_total``,
    ``clv`` and, for countries, ``country``); ``new_customer`` the value of one
    newly acquired customer over the horizon (the last ``cumulative_value`` of
    :func:`helpers.clv.periods.new_customer_value`). Columns
    :data:`ACQUISITION_COLUMNS`: means per customer of the group; months in
    calendar order, countries by customers (most first). Customers without a
    country are the group "unknown". Without a forecast (``clv`` missing, ``new_customer``
    NaN) the CLV columns are NaN and the rest stands.

    >>> v = pd.DataFrame({"first_purchase": pd.to_datetime(["2020-01-05", "2020-01-20", "2020-02-03"]),
    ...     "monetary_total": [10.0, 30.0, 5.0], "clv": [4.0, 6.0, 9.0]})
    >>> acquisition_value(v, "month", 7.5).to_dict("index")["2020-01"]
    {'customers': 2, 'spend_so_far': 20.0, 'clv': 5.0, 'value_so_far_plus_clv': 25.0, 'new_customer_value': 7.5}
    """
    if by == "month":
        groups = acquisition_month(value["first_purchase"]).rename("acquisition_month")
    elif by == "country":
        if "country" not in value:
            raise DataError("acquisition value by country: the customer table has no 'country' column "
                            "(map columns.country in the parameters)")
        groups = value["country"].fillna("unknown").rename("country")
    else:
        raise DataError(f"acquisition value: by must be 'month' or 'country', not {by!r}")
    frame = pd.DataFrame({"group": groups, "spend_so_far": value["monetary_total"].astype(float),
                          "clv": value["clv"].astype(float)})
    table = frame.groupby("group", sort=True).agg(customers=("clv", "size"), spend_so_far=("spend_so_far", "mean"),
                                                  clv=("clv", "mean"))
    table["value_so_far_plus_clv"] = table["spend_so_far"] + table["clv"]
    table["new_customer_value"] = float(new_customer)
    if by == "country":
        table = table.sort_values("customers", ascending=False, kind="stable")
    return table.rename_axis(groups.name)[ACQUISITION_COLUMNS]


def acquisition_tables(value: pd.DataFrame, new_customer: float) -> dict[str, pd.DataFrame]:
    """:func:`acquisition_value` by month, and by country when the customer table has a known country."""
    tables = {"month": acquisition_value(value, "month", new_customer)}
    if "country" in value and value["country"].notna().any():
        tables["country"] = acquisition_value(value, "country", new_customer)
    return tables


def compact(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """A table of :func:`acquisition_value` for ``clv_validation.json``: per group, the numbers rounded to cents.

    >>> compact(pd.DataFrame({"customers": [2], "spend_so_far": [1.234], "clv": [2.0],
    ...     "value_so_far_plus_clv": [3.234], "new_customer_value": [7.5]}, index=["FR"]))
    {'FR': {'customers': 2, 'spend_so_far': 1.23, 'clv': 2.0, 'value_so_far_plus_clv': 3.23}}
    """
    def cents(x: float) -> float | None:
        return None if pd.isna(x) else round(float(x), 2)

    return {str(group): {"customers": int(row["customers"]), "spend_so_far": cents(row["spend_so_far"]),
                         "clv": cents(row["clv"]), "value_so_far_plus_clv": cents(row["value_so_far_plus_clv"])}
            for group, row in table.iterrows()}
