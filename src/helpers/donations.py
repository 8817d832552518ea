"""The donations data of Fader, Hardie and Shang (2010) as a transaction log: a discrete-time example.

lifetimes ships the data as its recency/frequency matrix
(``lifetimes.datasets.load_donations``: 22 rows of ``frequency``, ``recency``,
``periods`` and ``weights``): the 11,104 first-time donors of 1995 to a US
non-profit, and in which of the six years 1996-2001 each gave again. Stage 05
reads transaction logs, so :func:`donations_log` expands the matrix into one:

- each donor's first gift is in 1995 (the birth year, not a repeat transaction);
- a donor of a row (x, t_x) gives in year 1995 + t_x and in x - 1 of the years
  before it, drawn at random (the matrix does not say which);
- each gift falls on a random day of its year (one gift per year: the log is
  discrete by construction);
- amounts follow Gamma-Gamma with CDNOW's published spend parameters
  (:data:`helpers.synth.CDNOW_SPEND`, mean about 35 per gift): each donor's
  own mean, gifts Gamma around it, rounded to cents. The published data have
  no amounts, so the CLV of this example is illustrative; its counts are the
  published ones.

Everything is seeded: the same seed gives the same log.
``python -m helpers.donations --out data/examples/donations_log.parquet``
writes the file that ``params/donations.yaml`` reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.synth import CDNOW_SPEND

#: The cohort's first year (its "birth" period) and the seed of the shipped log.
FIRST_YEAR = 1995
SEED = 2010


def donations_log(seed: int = SEED) -> pd.DataFrame:
    """The donations matrix expanded into gifts: ``donor_id``, ``date``, ``amount`` (one row per donor and year).

    >>> log = donations_log()
    >>> log["donor_id"].nunique(), len(log), str(log["date"].min().date()), str(log["date"].max().date())
    (11104, 35719, '1995-01-01', '2001-12-31')
    """
    from lifetimes.datasets import load_donations

    return yearly_log(load_donations(), FIRST_YEAR, seed)


def yearly_log(matrix: pd.DataFrame, first_year: int, seed: int = SEED) -> pd.DataFrame:
    """A recency/frequency matrix (``frequency``, ``recency``, ``weights``: years after ``first_year``) as gifts.

    One row per donor and year with a gift, on a seeded day of the year, with
    a seeded Gamma-Gamma amount (see the module). Columns ``donor_id``, ``date``, ``amount``.

    >>> m = pd.DataFrame({"frequency": [0, 2], "recency": [0, 3], "weights": [1, 2]})
    >>> yearly_log(m, 2000).groupby("donor_id")["date"].count().tolist()
    [1, 3, 3]
    """
    rng = np.random.default_rng(seed)
    donors, years = [], []
    for x, tx, weight in matrix[["frequency", "recency", "weights"]].itertuples(index=False):
        for _ in range(weight):
            before = np.sort(rng.choice(np.arange(1, tx), size=x - 1, replace=False)) if x > 1 else []
            gifts = [0, *before, tx] if x else [0]
            donors.append(np.full(len(gifts), len(years)))
            years.append(np.asarray(gifts))
    donor = np.concatenate(donors)
    year = first_year + np.concatenate(years)
    start = pd.DatetimeIndex(pd.to_datetime(year.astype(str), format="%Y"))
    date = start + pd.to_timedelta(rng.integers(0, np.where(start.is_leap_year, 366, 365)), unit="D")
    nu = rng.gamma(CDNOW_SPEND["q"], 1 / CDNOW_SPEND["v"], len(years))  # each donor's own rate
    amount = np.round(rng.gamma(CDNOW_SPEND["p"], 1 / nu[donor]), 2).clip(min=0.01)
    log = pd.DataFrame({"donor_id": [f"D{i + 1:05d}" for i in donor], "date": date, "amount": amount})
    return log.sort_values(["donor_id", "date"], kind="stable").reset_index(drop=True)


def write_donations(target: Path, seed: int = SEED) -> Path:
    """Write :func:`donations_log` as Parquet to ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    donations_log(seed).to_parquet(target, index=False)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.donations", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the Parquet file to write")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    print(f"{write_donations(args.out, args.seed)}: the donations log ({FIRST_YEAR}-2001)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
