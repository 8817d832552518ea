"""``cleaning.cancellations: net``: each cancellation subtracted from the purchases it cancels, latest first.

A cancellation is matched with earlier purchases of the same customer (and
product, when there is a product code) at or before its time. The purchase
amount (and quantity, in proportion) is reduced; purchases reduced to nothing
are removed, as are the cancellation lines. Returns larger than the matching
purchases (bought before the data starts) are dropped with the cancellation line.

DuckDB selects the lines involved (the cancellations and the purchases that
share their key), in the order netting needs; the allocation itself is
sequential (a return uses up the latest purchases first, so what an earlier
return took decides what a later one finds) and runs over those lines only;
DuckDB then writes the reduced amounts back and drops what was used up.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from helpers.cleaning.rules import quote, select_list


def allocate(groups: np.ndarray, cancel: np.ndarray, amount: np.ndarray, quantity: np.ndarray | None) -> np.ndarray:
    """The amounts left after netting, for lines sorted by key, time, purchases before cancellations, line.

    Purchases stack up per key; a cancellation takes from the top (the latest
    purchase at or before it) down, until its amount (or, for a cancellation
    line with a non-negative amount, its quantity) is used up.

    >>> allocate(np.array([0, 0, 0]), np.array([False, False, True]), np.array([10.0, 4.0, -6.0]), None)
    array([ 8.,  0., -6.])
    """
    left = amount.astype(float).copy()
    stack: list[int] = []
    for i in range(len(left)):
        if i == 0 or groups[i] != groups[i - 1]:
            stack = []
        if not cancel[i]:
            stack.append(i)
            continue
        remaining = -float(amount[i]) if amount[i] < 0 else -float((quantity[i] if quantity is not None else 0) or 0)
        for pos in reversed(stack):
            if remaining <= 0:
                break
            take = min(remaining, left[pos])
            left[pos] -= take
            remaining -= take
    return left


def net(con: duckdb.DuckDBPyConnection, before: str, after: str, mask: str, columns: list[str]) -> int:
    """Create table ``after`` from ``before`` with cancellations (``mask``) netted; return the purchases reduced but kept."""
    key = ["customer_id"] + (["product_code"] if "product_code" in columns else [])
    keys = ", ".join(quote(k) for k in key)
    has_quantity = "quantity" in columns
    match = " AND ".join(f"c.{quote(k)} = p.{quote(k)}" for k in key)
    lines = con.execute(f"""
        WITH c AS (SELECT DISTINCT {keys} FROM {before} WHERE {mask})
        SELECT _row, dense_rank() OVER (ORDER BY {keys}) AS _group, {mask} AS _cancel, amount,
               {'quantity' if has_quantity else 'NULL::DOUBLE'} AS quantity
        FROM {before} p WHERE EXISTS (SELECT 1 FROM c WHERE {match})
        ORDER BY {keys}, order_ts, _cancel, _row""").df()
    cancel = lines["_cancel"].to_numpy(dtype=bool)
    original = lines["amount"].to_numpy(dtype=float)
    quantity = lines["quantity"].to_numpy(dtype=float) if has_quantity else None
    left = allocate(lines["_group"].to_numpy(), cancel, original, quantity)
    changed = ~cancel & (left != original)
    ratio = np.divide(left, original, out=np.ones_like(left), where=original != 0)
    netted = pd.DataFrame({"_net_row": lines["_row"].to_numpy()[changed], "_net_amount": left[changed],
                           "_net_quantity": (quantity * ratio)[changed] if quantity is not None else np.nan})
    con.register("_netted", netted)
    new = {"amount": "coalesce(_net_amount, amount)"}
    if has_quantity:
        new["quantity"] = "CASE WHEN _net_row IS NULL THEN quantity ELSE _net_quantity END"
    from helpers.cleaning.engine import keeps_order, step_table  # (engine imports this module)

    order = " ORDER BY _row" if keeps_order(con) else ""  # the join does not keep the lines' order
    con.execute(f"""
        CREATE OR REPLACE {step_table(con)} {after} AS
        SELECT {select_list(columns, new)}
        FROM {before} LEFT JOIN _netted ON _row = _net_row
        WHERE NOT {mask} AND (coalesce(_net_amount, amount) > 0 OR amount <= 0){order}""")
    con.unregister("_netted")
    return int((changed & (left > 0)).sum())
