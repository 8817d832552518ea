"""Synthetic transaction logs from the BTYD generative processes, for benchmarks and tests.

Customers are simulated the way the BG/NBD and Gamma-Gamma models say they
behave (Fader, Hardie and Lee 2005), with CDNOW's published parameters by
default, and written out like an Online Retail export: several product lines
per order, float customer ids, and the dirty lines stage 03 must remove
(lines with no customer, exact duplicates, postage lines, cancellations,
zero prices).

- acquisition: the first purchase falls uniformly in the first ``cohort_days``;
- purchasing: while alive, purchases follow a Poisson process with rate
  lambda ~ Gamma(r, alpha) per day;
- dropout: after each repeat purchase the customer dies with probability
  p ~ Beta(a, b);
- spend: each purchase's value is Gamma(p, nu) with nu ~ Gamma(q, gamma).

``python -m helpers.synth --customers 1000000 --out data/raw/bench.parquet``
writes one file (about 10 lines per customer).
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: CDNOW's BG/NBD parameters (alpha in days: 4.4136 weeks x 7) and Gamma-Gamma parameters.
CDNOW_BGNBD = {"r": 0.2426, "alpha": 4.4136 * 7, "a": 0.7929, "b": 2.4259}
CDNOW_SPEND = {"p": 6.2496, "q": 3.7442, "v": 15.4435}

RAW_COLUMNS = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]


@dataclass(frozen=True)
class Design:
    """What to simulate: population size, periods, model parameters and the dirt to add."""

    customers: int
    start: dt.date = dt.date(2021, 1, 1)
    cohort_days: int = 84          # first purchases in the first 12 weeks, as CDNOW's cohort
    observed_days: int = 546       # 78 weeks of observation, as CDNOW
    lines_per_order: float = 3.5   # mean product lines per order (1 + Poisson)
    missing_customer: float = 0.02
    duplicates: float = 0.015
    postage: float = 0.3           # share of orders with a postage line
    cancellations: float = 0.02
    zero_price: float = 0.001
    seed: int = 2005

    @property
    def as_of(self) -> dt.date:
        return self.start + dt.timedelta(days=self.observed_days - 1)


def simulate_purchases(design: Design, bgnbd: dict[str, float] = CDNOW_BGNBD,
                       spend: dict[str, float] = CDNOW_SPEND) -> pd.DataFrame:
    """One row per purchase: ``customer``, ``t`` (days since the start) and ``value``.

    >>> p = simulate_purchases(Design(200, seed=1))
    >>> bool(p.groupby("customer")["t"].min().lt(84).all()), int(p["customer"].nunique())
    (True, 200)
    """
    rng = np.random.default_rng(design.seed)
    n = design.customers
    first = rng.uniform(0, design.cohort_days, n)
    end = float(design.observed_days)
    lam = rng.gamma(bgnbd["r"], 1 / bgnbd["alpha"], n)
    drop = rng.beta(bgnbd["a"], bgnbd["b"], n)
    nu = rng.gamma(spend["q"], 1 / spend["v"], n)
    customers, times = [np.arange(n)], [first]
    alive, t = np.arange(n), first.copy()
    while alive.size:
        t = t + rng.exponential(1 / lam[alive])
        keep = t < end
        alive, t = alive[keep], t[keep]
        customers.append(alive)
        times.append(t)
        survive = rng.random(alive.size) >= drop[alive]
        alive, t = alive[survive], t[survive]
    who = np.concatenate(customers)
    when = np.concatenate(times)
    value = rng.gamma(spend["p"], 1 / nu[who])
    order = np.lexsort((when, who))
    return pd.DataFrame({"customer": who[order], "t": when[order], "value": value[order]})


def order_lines(purchases: pd.DataFrame, design: Design, rng: np.random.Generator, *,
                first_customer: int = 0, first_invoice: int = 500000) -> pd.DataFrame:
    """Split each purchase into product lines (quantity x price adding up to the purchase, to the cent).

    Customer ids start at ``12000 + first_customer``, invoice numbers at ``first_invoice``.
    """
    k = 1 + rng.poisson(design.lines_per_order - 1, len(purchases))
    idx = np.repeat(np.arange(len(purchases)), k)
    share = rng.gamma(1.0, 1.0, idx.size)
    share /= np.bincount(idx, share)[idx]
    quantity = 1 + rng.poisson(3, idx.size)
    price = np.maximum(np.round(purchases["value"].to_numpy()[idx] * share / quantity, 2), 0.01)
    ts = pd.Timestamp(design.start) + pd.to_timedelta(np.floor(purchases["t"].to_numpy()[idx] * 86400), unit="s")
    stock = rng.integers(10000, 10000 + 4000, idx.size)
    countries = np.array(["United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands"])
    country_of = rng.choice(countries, design.customers, p=[0.8, 0.06, 0.05, 0.04, 0.03, 0.02])
    cust = purchases["customer"].to_numpy()[idx]
    return pd.DataFrame({
        "Invoice": (first_invoice + idx).astype(str),
        "StockCode": stock.astype(str),
        "Description": "PRODUCT " + stock.astype(str),
        "Quantity": quantity.astype("int64"),
        "InvoiceDate": ts,
        "Price": price,
        "Customer ID": (12000 + first_customer + cust).astype(float),
        "Country": country_of[cust],
    })


def add_dirt(lines: pd.DataFrame, design: Design, rng: np.random.Generator) -> pd.DataFrame:
    """Append the dirty lines stage 03 removes: no customer, duplicates, postage, cancellations, zero price."""
    n = len(lines)

    def pick(share: float) -> pd.DataFrame:
        return lines.iloc[np.sort(rng.choice(n, int(n * share), replace=False))].copy()

    no_customer = pick(design.missing_customer)
    no_customer["Customer ID"] = np.nan
    duplicates = pick(design.duplicates)
    orders = lines.drop_duplicates("Invoice")
    postage = orders.iloc[np.sort(rng.choice(len(orders), int(len(orders) * design.postage), replace=False))].copy()
    postage = postage.assign(StockCode="POST", Description="POSTAGE", Quantity=1, Price=18.0)
    cancelled = pick(design.cancellations)
    cancelled = cancelled.assign(Invoice="C" + cancelled["Invoice"], Quantity=-cancelled["Quantity"],
                                 InvoiceDate=cancelled["InvoiceDate"] + pd.Timedelta(hours=2))
    free = pick(design.zero_price).assign(Price=0.0)
    out = pd.concat([lines, no_customer, duplicates, postage, cancelled, free], ignore_index=True)
    return out.sort_values(["InvoiceDate", "Invoice"], kind="stable").reset_index(drop=True)


def transaction_log(design: Design, *, first_customer: int = 0, first_invoice: int = 500000) -> pd.DataFrame:
    """The whole raw log of ``design``: clean order lines plus dirty lines, in time order.

    >>> log = transaction_log(Design(300, seed=3))
    >>> list(log.columns) == RAW_COLUMNS, bool(log["Customer ID"].isna().any())
    (True, True)
    """
    rng = np.random.default_rng(design.seed + 1)
    purchases = simulate_purchases(design)
    purchases = purchases[purchases["t"] < design.observed_days]
    lines = order_lines(purchases, design, rng, first_customer=first_customer, first_invoice=first_invoice)
    return add_dirt(lines, design, rng)[RAW_COLUMNS]


def write_log(design: Design, target: Path, chunk_customers: int = 250_000) -> Path:
    """Write the log of ``design`` to one Parquet file, simulated in chunks of customers to bound memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    writer = None
    try:
        for i, start in enumerate(range(0, design.customers, chunk_customers)):
            size = min(chunk_customers, design.customers - start)
            chunk = Design(**{**design.__dict__, "customers": size, "seed": design.seed + 7919 * i})
            # invoice numbers stay unique across chunks: a chunk averages under 3 purchases per customer, far below 20
            part = transaction_log(chunk, first_customer=start, first_invoice=500000 + 20 * start)
            table = pa.Table.from_pandas(part, preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=1_000_000)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=2005)
    args = parser.parse_args(argv)
    design = Design(args.customers, seed=args.seed)
    path = write_log(design, args.out)
    print(f"{path}: {design.customers:,} customers, as_of {design.as_of}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
