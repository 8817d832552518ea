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

**Regimes** (:data:`REGIMES`, :func:`regime_log`, :func:`write_regime`): small
logs (a few dozen to about 2,000 customers) of the kinds real shops bring and
CDNOW is not - almost all one-time buyers, a log of four months, ten years,
B2B, a fixed monthly subscription, one single day, heavy-tailed spend - each
with a parameter file for :mod:`helpers.run`. ``python -m helpers.synth
--regime b2b --out folder`` writes one.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

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
    extra_quantity: float = 3.0    # mean quantity per line minus 1 (quantity = 1 + Poisson)
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
    rng, n = np.random.default_rng(design.seed), design.customers
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
    who, when = np.concatenate(customers), np.concatenate(times)
    return _purchases(who, when, rng.gamma(spend["p"], 1 / nu[who]))


def order_lines(purchases: pd.DataFrame, design: Design, rng: np.random.Generator, *,
                first_customer: int = 0, first_invoice: int = 500000) -> pd.DataFrame:
    """Split each purchase into product lines (quantity x price adding up to the purchase, to the cent).

    Customer ids start at ``12000 + first_customer``, invoice numbers at ``first_invoice``.
    """
    k = 1 + rng.poisson(design.lines_per_order - 1, len(purchases))
    idx = np.repeat(np.arange(len(purchases)), k)
    share = rng.gamma(1.0, 1.0, idx.size)
    share /= np.bincount(idx, share)[idx]
    quantity = 1 + rng.poisson(design.extra_quantity, idx.size)
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
    lines = order_lines(purchases[purchases["t"] < design.observed_days], design, rng,
                        first_customer=first_customer, first_invoice=first_invoice)
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


# --- regimes: small logs unlike CDNOW, each with a parameter file ----------


def _one_time(design: Design) -> pd.DataFrame:
    """One purchase each, over the whole period; 1.5% of customers come back once or twice."""
    rng = np.random.default_rng([design.seed, 1])
    n, end = design.customers, float(design.observed_days)
    first = rng.uniform(0, end, n)
    back = np.flatnonzero(rng.random(n) < 0.015)
    who = np.repeat(back, 1 + rng.poisson(0.5, back.size))
    when = first[who] + (end - first[who]) * rng.uniform(0.05, 1.0, who.size)
    who, when = np.concatenate([np.arange(n), who]), np.concatenate([first, when])
    return _purchases(who, when, rng.gamma(2.0, 30.0, who.size))


def _b2b(design: Design) -> pd.DataFrame:
    """Business accounts ordering at their own regular interval (7 to 35 days, about +-20%); some are lost."""
    rng = np.random.default_rng([design.seed, 2])
    n, end = design.customers, float(design.observed_days)
    first = rng.uniform(0, 45, n)
    interval = rng.uniform(7, 35, n)
    lost = np.where(rng.random(n) < 0.15, rng.uniform(end / 4, end, n), np.inf)
    steps = int(end // 7) + 2
    gaps = interval[:, None] * rng.gamma(25.0, 1 / 25.0, (n, steps))
    gaps[:, 0] = 0.0
    when = first[:, None] + np.cumsum(gaps, axis=1)
    keep = (when < np.minimum(end, lost)[:, None])
    who = np.broadcast_to(np.arange(n)[:, None], when.shape)[keep]
    size = rng.lognormal(np.log(2500.0), 0.7, n)  # an account's typical order value
    return _purchases(who, when[keep], size[who] * rng.gamma(12.0, 1 / 12.0, who.size))


def _subscription(design: Design) -> pd.DataFrame:
    """A box every 30 days from the sign-up day, at the plan's fixed price, until the customer cancels (4% a month)."""
    rng = np.random.default_rng([design.seed, 3])
    n, end = design.customers, float(design.observed_days)
    first = rng.uniform(0, end / 2, n)
    months = rng.geometric(0.04, n)  # boxes paid for before cancelling
    plan = rng.choice([9.99, 19.99, 29.99], n, p=[0.5, 0.35, 0.15])
    k = np.arange(int(end // 30) + 1)
    when = first[:, None] + 30.0 * k[None, :]
    keep = (k[None, :] < months[:, None]) & (when < end)
    who = np.broadcast_to(np.arange(n)[:, None], when.shape)[keep]
    return _purchases(who, when[keep], plan[who])


def _single_day(design: Design) -> pd.DataFrame:
    """Everything on one day (a sale, a market stall): one order each, a fifth order again later that day."""
    rng = np.random.default_rng([design.seed, 4])
    n = design.customers
    who = np.repeat(np.arange(n), 1 + rng.poisson(0.25, n))
    return _purchases(who, rng.uniform(0.3, 0.95, who.size), rng.gamma(2.0, 25.0, who.size))


def _heavy_tail(design: Design) -> pd.DataFrame:
    """CDNOW's purchasing, but customers' mean spend is lognormal (sigma 1.4) and three repeat buyers spend 300 times more."""
    rng = np.random.default_rng([design.seed, 5])
    p = simulate_purchases(design)
    scale = rng.lognormal(np.log(25.0), 1.4, design.customers)
    counts = np.bincount(p["customer"], minlength=design.customers)
    repeaters = np.flatnonzero(counts >= 3)
    whales = rng.choice(repeaters, min(3, repeaters.size), replace=False)
    scale[whales] *= 300.0
    value = scale[p["customer"].to_numpy()] * rng.lognormal(0.0, 0.4, len(p))
    return p.assign(value=value)


def _purchases(who: np.ndarray, when: np.ndarray, value: np.ndarray) -> pd.DataFrame:
    """One row per purchase, ordered by customer and time."""
    order = np.lexsort((when, who))
    return pd.DataFrame({"customer": np.asarray(who)[order], "t": np.asarray(when)[order],
                         "value": np.asarray(value, dtype=float)[order]})


@dataclass(frozen=True)
class Regime:
    """A kind of transaction log: what it is like, its size and period, and how purchases are drawn."""

    description: str
    design: Design
    purchases: Callable[[Design], pd.DataFrame]


#: The regimes of the test matrix (``tests/test_regimes.py``), by name.
REGIMES: dict[str, Regime] = {
    "one_time": Regime("almost all one-time buyers (about 98.5%), one year",
                       Design(1500, start=dt.date(2022, 1, 1), observed_days=365, lines_per_order=2.0), _one_time),
    "short": Regime("a grocery-like log of 120 days: frequent purchases, customers arriving throughout",
                    Design(800, start=dt.date(2023, 3, 1), cohort_days=100, observed_days=120, lines_per_order=4.0),
                    lambda d: simulate_purchases(d, {"r": 1.5, "alpha": 15.0, "a": 1.0, "b": 6.0})),
    "ten_years": Regime("ten years, customers arriving over the first nine, CDNOW's purchasing and dropout",
                        Design(1000, start=dt.date(2014, 1, 1), cohort_days=3287, observed_days=3652), simulate_purchases),
    "b2b": Regime("60 business accounts ordering regularly (every 7 to 35 days), large orders of about 20 lines",
                  Design(60, start=dt.date(2022, 1, 1), observed_days=730, lines_per_order=20.0, extra_quantity=11.0),
                  _b2b),
    "subscription": Regime("a subscription box: every 30 days at a fixed plan price, 4% cancel each month",
                           Design(1000, start=dt.date(2022, 1, 1), observed_days=730, lines_per_order=1.0,
                                  extra_quantity=0.0, postage=0.0), _subscription),
    "single_day": Regime("every purchase on one single day",
                         Design(500, start=dt.date(2024, 11, 29), observed_days=1, lines_per_order=2.5), _single_day),
    "heavy_tail": Regime("CDNOW's purchasing with heavy-tailed spend: lognormal customer means and three huge spenders",
                         Design(1000, start=dt.date(2021, 1, 1)), _heavy_tail),
}


def _regime(name: str) -> Regime:
    try:
        return REGIMES[name]
    except KeyError:
        raise ValueError(f"unknown regime {name!r}; regimes: {', '.join(REGIMES)}") from None


def regime_design(name: str, seed: int = 2005) -> Design:
    """The :class:`Design` (size, period, dirt) of regime ``name`` with ``seed``."""
    return replace(_regime(name).design, seed=seed)


def regime_purchases(name: str, seed: int = 2005) -> pd.DataFrame:
    """The purchases of regime ``name`` (``customer``, ``t`` in days since the start, ``value``), before order lines.

    >>> p = regime_purchases("single_day", seed=1)
    >>> int(p["t"].floordiv(1).nunique()), bool(p["t"].between(0, 1).all())
    (1, True)
    """
    design = regime_design(name, seed)
    p = _regime(name).purchases(design)
    return p[(p["t"] >= 0) & (p["t"] < design.observed_days)].reset_index(drop=True)


def regime_log(name: str, seed: int = 2005) -> pd.DataFrame:
    """The raw log of regime ``name`` (columns :data:`RAW_COLUMNS`, dirt included), deterministic from ``seed``.

    >>> log = regime_log("b2b", seed=7)
    >>> int(log["Customer ID"].nunique()), log.equals(regime_log("b2b", seed=7))
    (60, True)
    """
    design = regime_design(name, seed)
    rng = np.random.default_rng(seed + 1)
    lines = order_lines(regime_purchases(name, seed), design, rng)
    return add_dirt(lines, design, rng)[RAW_COLUMNS]


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, nested dicts key by key (a parameter file and its overrides).

    >>> merge({"clv": {"months": 12, "unit": "D"}}, {"clv": {"months": 6}})
    {'clv': {'months': 6, 'unit': 'D'}}
    """
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def regime_params(name: str, source: Path, seed: int = 2005, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameter file (as a dict) that reads regime ``name``'s log from ``source`` (CSV or Parquet).

    Everything not set here keeps its default: the matrix tests the defaults.
    ``overrides`` (nested, like the YAML) is merged in.

    >>> p = regime_params("short", Path("/tmp/short.csv"))
    >>> p["dataset"], p["as_of"], p["source"]["kind"]
    ('synth_short', datetime.date(2023, 6, 28), 'csv')
    """
    design = regime_design(name, seed)
    params = {
        "dataset": f"synth_{name}",
        "title": f"Synthetic regime {name} (seed {seed})",
        "as_of": design.as_of,
        "source": {"kind": "parquet" if Path(source).suffix == ".parquet" else "csv", "path": str(source)},
        "columns": {"customer_id": "Customer ID", "order_id": "Invoice", "order_ts": "InvoiceDate", "amount": None,
                    "quantity": "Quantity", "unit_price": "Price", "country": "Country",
                    "product_code": "StockCode", "description": "Description"},
    }
    return merge(params, overrides or {})


def write_regime(name: str, folder: Path, seed: int = 2005, *, fmt: str = "csv",
                 overrides: dict[str, Any] | None = None) -> Path:
    """Write regime ``name``'s log (``synth_<name>.csv`` or ``.parquet``) and its parameter file into ``folder``.

    Returns the parameter file (``synth_<name>.yaml``), ready for ``python -m helpers.run -f``.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log = regime_log(name, seed)
    source = folder / f"synth_{name}.{fmt}"
    (log.to_csv if fmt == "csv" else log.to_parquet)(source, index=False)
    target = folder / f"synth_{name}.yaml"
    text = yaml.safe_dump(regime_params(name, source.resolve(), seed, overrides), sort_keys=False, allow_unicode=True)
    target.write_text(f"# {REGIMES[name].description} - written by helpers.synth.write_regime\n{text}", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.synth", description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--customers", type=int, help="a CDNOW-like log of this many customers (one Parquet file)")
    what.add_argument("--regime", choices=list(REGIMES), help="a small regime log and its parameter file")
    parser.add_argument("--out", type=Path, required=True, help="the Parquet file (--customers) or a folder (--regime)")
    parser.add_argument("--seed", type=int, default=2005)
    args = parser.parse_args(argv)
    if args.regime:
        print(f"{write_regime(args.regime, args.out, args.seed)}: {REGIMES[args.regime].description}")
    else:
        design = Design(args.customers, seed=args.seed)
        print(f"{write_log(design, args.out)}: {design.customers:,} customers, as_of {design.as_of}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
