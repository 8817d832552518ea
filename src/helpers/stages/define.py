"""Stage 01, define the customer data: the contract as data dictionaries, and how this source maps onto it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.paths import shown
from helpers.schemas import customer_schema, data_dictionary, save_data_dictionary, transaction_schema


@dataclass
class DefineResult:
    """Stage 01's result: the data dictionaries of both schemas and the run's column mapping."""

    transactions: pd.DataFrame
    customers: pd.DataFrame
    mapping: pd.DataFrame
    written: Path

    @property
    def groups(self) -> pd.DataFrame:
        """The customer table's columns per layer (identity, behaviour, value): how many, and which."""
        return self.customers.groupby("group", sort=False)["column"].agg(count="count", columns=", ".join)

    @property
    def message(self) -> str:
        """Where the data dictionary was written, as the notebook prints it."""
        return f"data dictionary written to {shown(self.written)}"


def column_mapping(params: Any) -> pd.DataFrame:
    """The parameter file's mapping: canonical column -> source column (None: the source has no such column).

    >>> from helpers.config import load_params
    >>> column_mapping(load_params("cdnow_sample.yaml")).loc["amount", "source column"]
    'dollar_value'
    """
    mapping = pd.Series(params.columns.model_dump(), name="source column").rename_axis("canonical column")
    return mapping.to_frame()


def define(params: Any, catalog: Any) -> DefineResult:
    """Stage 01 in one call: render the data dictionaries, write ``data_dictionary.csv``, show the mapping."""
    return DefineResult(data_dictionary(transaction_schema), data_dictionary(customer_schema),
                        column_mapping(params), save_data_dictionary(catalog))
