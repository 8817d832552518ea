"""Stage 01, define the customer data: the contract as data dictionaries, and how this source maps onto it.

Besides the contract it carries the course's view of it (:mod:`helpers.information`): the kind of
information (identity, business, derived) of each mapped column, what this source has and lacks of each
kind, where its information comes from (direct or indirect), and the five steps of identification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.information import column_kinds, identification_steps, kinds_table, source_channel
from helpers.paths import shown
from helpers.schemas import customer_schema, data_dictionary, save_data_dictionary, transaction_schema


@dataclass
class DefineResult:
    """Stage 01's result: the data dictionaries, the run's column mapping (with each column's kind), the kinds
    this source has and lacks, its channel (direct or indirect) and the identification steps."""

    transactions: pd.DataFrame
    customers: pd.DataFrame
    mapping: pd.DataFrame
    written: Path
    kinds: pd.DataFrame
    channel: str
    steps: pd.DataFrame

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
    mapping = column_kinds(column_mapping(params))
    return DefineResult(data_dictionary(transaction_schema), data_dictionary(customer_schema), mapping,
                        save_data_dictionary(catalog), kinds_table(mapping), source_channel(params),
                        identification_steps(params))
