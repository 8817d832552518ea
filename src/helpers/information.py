"""Customer information in the CRM course's terms: its three kinds, where it comes from, the identification steps.

The course sorts what a firm records about a customer into three kinds:

- **identity** (basic) information: who the customer is - for a person age, sex, job, family; for a firm its
  trading terms, credit and key people. Here: the customer key, and country or channel where a source has them.
- **business** information: the customer's dealings with the firm - what was bought, when, how much.
  Here: every column of a transaction line but the key.
- **derived** information: what the firm learns beyond the bare record - preferences, habits, value.
  Here: what notebooks 04-07 compute from the business information (RFM, ABC class, tier, CLV, lifecycle, cluster).

The kind of each column is not a second list: it is the group the column has in :mod:`helpers.schemas`
(identity, behaviour, value), named the course's way by :data:`KINDS`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from helpers.schemas import BEHAVIOUR, CUSTOMER_FIELDS, IDENTITY, TRANSACTION_FIELDS, VALUE

#: The schema's groups under the course's names for the three kinds of customer information.
KINDS = {IDENTITY: "identity", BEHAVIOUR: "business", VALUE: "derived"}
#: What each kind records, in the course's examples (a transaction log never carries the personal ones).
KIND_EXAMPLES = {
    "identity": "who the customer is: a key; for a person age, sex, job, family; for a firm its terms, credit, key people",
    "business": "the dealings with the firm: what was bought, when, how much, in which order",
    "derived": "what the firm works out beyond the record: preferences, habits, value and potential",
}
#: Where customer information comes from (the course's two channels), with its examples.
SOURCE_CHANNELS = {
    "direct": "recorded by the firm in its own contacts with the customer: orders on its website, sales, "
              "marketing campaigns, after-sales service, conversations and surveys",
    "indirect": "obtained from others: bought from data and consumer-research firms, or exchanged with firms in "
                "related trades (telecoms, airlines, banks, travel agencies)",
}


def column_kinds(mapping: pd.DataFrame) -> pd.DataFrame:
    """The column mapping with each canonical column's kind of information and whether this source has it.

    >>> m = pd.DataFrame({"source column": {"customer_id": "id", "country": None}})
    >>> column_kinds(m)[["kind", "in this data set"]].to_dict("list")
    {'kind': ['identity', 'identity'], 'in this data set': [True, False]}
    """
    groups = {f.name: f.group for f in TRANSACTION_FIELDS}
    out = mapping.copy()
    out["kind"] = [KINDS.get(groups.get(str(c), ""), "") for c in out.index]
    out["in this data set"] = out["source column"].notna()
    return out


def _names(columns: pd.DataFrame) -> str:
    """The canonical columns of ``columns`` with their source names where they differ, or ``-``."""
    return ", ".join(f"{c} ({s})" if s != c else str(c) for c, s in columns["source column"].items()) or "-"


def kinds_table(kinds: pd.DataFrame) -> pd.DataFrame:
    """Per kind of information: what the course means by it, what this data set has of it and what it lacks.

    ``kinds`` is :func:`column_kinds`' table. Derived information is never in the source: it lists the customer
    table's value columns, which notebooks 04-07 compute from the business columns.
    """
    rows = []
    for kind in KINDS.values():
        cols = kinds[kinds["kind"] == kind]
        has, lacks = cols[cols["in this data set"]], cols[~cols["in this data set"]]
        if kind == "derived":
            derived = [f.name for f in CUSTOMER_FIELDS if f.group == VALUE]
            rows.append({"kind": kind, "in the course": KIND_EXAMPLES[kind],
                         "this data set has": "computed by notebooks 04-07: " + ", ".join(derived),
                         "it lacks": "stated preferences, habits, family and friends (never in a transaction log)"})
            continue
        lacking = ", ".join(map(str, lacks.index))
        if kind == "identity":
            lacking = (lacking + "; " if lacking else "") + "everything personal (name, age, sex, job, family)"
        rows.append({"kind": kind, "in the course": KIND_EXAMPLES[kind], "this data set has": _names(has),
                     "it lacks": lacking or "-"})
    return pd.DataFrame(rows).set_index("kind")


def identification_steps(params: Any) -> pd.DataFrame:
    """The five steps of customer identification and where this project does each (notebook, what it does here).

    >>> from helpers.config import load_params
    >>> identification_steps(load_params("cdnow_sample.yaml")).loc["update", "notebook"]
    '08 (the next run)'
    """
    raw = "raw ids shown (privacy.raw_ids: true)" if params.privacy.raw_ids else \
        "reports show pseudonymous customer_key only (privacy.raw_ids: false)"
    rows = [
        ("define", "01", "the contract: which columns, of which kind; how this source maps onto it"),
        ("collect", "02", f"a read-only snapshot of the {params.source.kind} source, mapped onto the contract"),
        ("integrate", "03", "the cleaning rules: one key per customer, only real purchases, one DuckDB database"),
        ("update", "08 (the next run)",
         f"a rerun with a later as_of (this run: {params.as_of}); notebook 08 shows who moved since the last report"),
        ("secure", "02, 08", f"personal columns stay in the read-only raw layer; {raw}"),
    ]
    return pd.DataFrame(rows, columns=["step", "notebook", "what it does here"]).set_index("step")


def source_channel(params: Any) -> str:
    """The course's channel of this run's source, in a sentence: a transaction log is the firm's own record.

    >>> from helpers.config import load_params
    >>> source_channel(load_params("cdnow_sample.yaml")).split(":")[0]
    'a direct source'
    """
    where = params.source.path or "an in-memory DuckDB query"
    return (f"a direct source: the `{params.source.kind}` source ({where}) holds the firm's own order records, "
            "written down while it traded with each customer. For anyone else who obtains the published file "
            "it is an indirect source (data obtained from others)")
