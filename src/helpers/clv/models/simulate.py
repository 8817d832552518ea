"""Seeded, vectorised simulators of the buy-till-you-die families: a million customers in a fraction of a second.

lifetimes' simulators (``lifetimes.generate_data``) walk each customer's
purchases in a Python loop and draw from numpy's global generator, so the
holdout check could only afford a sample of 20,000 customers and changed the
global random state. These draw the same processes in closed form, from a
``numpy.random.Generator``:

- **BG/NBD**: purchases arrive as a Poisson process of rate lambda ~ Gamma(r,
  scale 1/alpha); after each purchase the customer drops out with probability
  p ~ Beta(a, b), so the number of purchases before dropping out is
  Geometric(p) on 1, 2, ... and the count in (0, T] is the smaller of that
  and Poisson(lambda T). **MBG/NBD** lets the customer drop out before the
  first repeat purchase too: Geometric(p) - 1.
- **Pareto/NBD**: the customer drops out at tau ~ Exponential(mu), mu ~
  Gamma(s, scale 1/beta), and buys as Poisson(lambda min(tau, T)).
- **BG/BB**: in each of its ``n_periods`` opportunities the customer stays
  alive with probability 1 - theta, theta ~ Beta(gamma, delta), and while
  alive transacts with probability p ~ Beta(alpha, beta).

Recency is the time of the last counted purchase: given that a Poisson
process put ``c`` purchases in a window of length ``w``, their times are
``c`` uniform order statistics on (0, w), so the ``n``-th of them is
``w * Beta(n, c - n + 1)``. The tests compare these draws with lifetimes'
closed-form probabilities P(X(T) = n) and with lifetimes' own simulators.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SIMULATED_COLUMNS = ["frequency", "recency", "T", "alive"]


def _times(rng: np.random.Generator, window: np.ndarray, arrivals: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Time of the ``counted``-th of ``arrivals`` uniform purchase times on (0, ``window``); 0 when none is counted."""
    some = counted > 0
    recency = np.zeros(len(window))
    recency[some] = window[some] * rng.beta(counted[some], arrivals[some] - counted[some] + 1)
    return recency


def _frame(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, alive: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"frequency": frequency.astype(int), "recency": recency, "T": T, "alive": alive},
                        columns=SIMULATED_COLUMNS)


def bgnbd(T: np.ndarray, r: float, alpha: float, a: float, b: float, rng: np.random.Generator,
          modified: bool = False) -> pd.DataFrame:
    """A BG/NBD cohort observed for ``T`` (one customer per entry), or MBG/NBD with ``modified``.

    >>> s = bgnbd(np.full(5000, 39.0), 0.243, 4.414, 0.793, 2.426, np.random.default_rng(1))
    >>> bool((s["recency"] <= s["T"]).all() and ((s["frequency"] == 0) == (s["recency"] == 0)).all())
    True
    """
    T = np.asarray(T, dtype=float)
    rate = rng.gamma(r, 1.0 / alpha, len(T))
    p = rng.beta(a, b, len(T))
    arrivals = rng.poisson(rate * T)
    purchases_before_dropping = rng.geometric(np.clip(p, 1e-300, 1.0)) - (1 if modified else 0)
    counted = np.minimum(arrivals, purchases_before_dropping)
    return _frame(counted, _times(rng, T, arrivals, counted), T, purchases_before_dropping > arrivals)


def mbgnbd(T: np.ndarray, r: float, alpha: float, a: float, b: float, rng: np.random.Generator) -> pd.DataFrame:
    """An MBG/NBD cohort observed for ``T``: :func:`bgnbd` where customers may drop out before any repeat purchase."""
    return bgnbd(T, r, alpha, a, b, rng, modified=True)


def pareto_nbd(T: np.ndarray, r: float, alpha: float, s: float, beta: float,
               rng: np.random.Generator) -> pd.DataFrame:
    """A Pareto/NBD cohort observed for ``T`` (one customer per entry).

    >>> s = pareto_nbd(np.full(5000, 39.0), 0.55, 10.58, 0.61, 11.67, np.random.default_rng(1))
    >>> bool((s["recency"] <= s["T"]).all() and s["alive"].between(0, 1).all())
    True
    """
    T = np.asarray(T, dtype=float)
    rate = rng.gamma(r, 1.0 / alpha, len(T))
    death = rng.exponential(1.0 / rng.gamma(s, 1.0 / beta, len(T)))
    window = np.minimum(death, T)
    arrivals = rng.poisson(rate * window)
    return _frame(arrivals, _times(rng, window, arrivals, arrivals), T, death > T)


def bgbb(n_periods: np.ndarray, alpha: float, beta: float, gamma: float, delta: float,
         rng: np.random.Generator) -> pd.DataFrame:
    """A BG/BB cohort, each customer with its own number of opportunities ``n_periods``.

    Recency is the last opportunity with a transaction (0: none), as in the
    BG/BB summary; ``T`` holds the opportunities.

    >>> s = bgbb(np.array([6, 6, 3, 1] * 500), 1.2, 0.75, 0.66, 2.8, np.random.default_rng(1))
    >>> bool((s["frequency"] <= s["recency"]).all() and (s["recency"] <= s["T"]).all())
    True
    """
    n_periods = np.asarray(n_periods).astype(int)
    n, width = len(n_periods), int(n_periods.max(initial=0))
    p = rng.beta(alpha, beta, n)
    theta = rng.beta(gamma, delta, n)
    alive = np.cumprod(rng.random((n, width)) >= theta[:, None], axis=1).astype(bool)
    alive &= np.arange(width)[None, :] < n_periods[:, None]
    bought = alive & (rng.random((n, width)) < p[:, None])
    last = np.where(bought.any(axis=1), width - np.argmax(bought[:, ::-1], axis=1), 0)
    still = alive[np.arange(n), np.maximum(n_periods - 1, 0)] & (n_periods > 0)
    return _frame(bought.sum(axis=1), last, n_periods, still)


__all__ = ["SIMULATED_COLUMNS", "bgbb", "bgnbd", "mbgnbd", "pareto_nbd"]
