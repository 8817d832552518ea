"""Pseudonymous customer keys: personal identifiers stay in the raw layer.

Reports and exports carry ``customer_key``: an HMAC-SHA256 of the customer id
under a secret key, cut to 16 hex digits. The same id gives the same key from
run to run (so customers can be followed between reports), but the id cannot
be recovered from the key without the secret. The secret comes from the
environment variable ``CIN_PSEUDONYM_KEY`` or, failing that, from a file
outside the repository (``~/.config/customer-identification/pseudonym.key``,
created with a random secret on first use).

Personal data stays in the raw layer (``data/raw``, the snapshot of the
source): collecting keeps only the columns mapped onto the transaction
contract, so names, e-mails, phone numbers and addresses in other columns of a
source never reach ``data/processed``. The customer id itself is needed there
(to join and to follow customers), but everything a run publishes - exports,
executed notebooks, ``report.html`` - shows ``customer_key`` instead, through
:func:`shown_ids` and :func:`shown_id`, unless the parameter
``privacy.raw_ids: true`` explicitly allows raw ids.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.errors import ConfigError

KEY_FILE = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "customer-identification" / "pseudonym.key"


def secret_key() -> bytes:
    """The pseudonymisation secret (environment first, then the local key file, created if missing)."""
    env = os.environ.get("CIN_PSEUDONYM_KEY")
    if env:
        return env.encode()
    if not KEY_FILE.exists():
        KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        KEY_FILE.write_text(secrets.token_hex(32))
        KEY_FILE.chmod(0o600)
    return KEY_FILE.read_text().strip().encode()


#: SHA-256's block size: HMAC pads (or first hashes) the secret to it.
_BLOCK = 64


def pseudonymize(ids: pd.Series, key: bytes | None = None) -> pd.Series:
    """Keyed hash of each id: HMAC-SHA256 of the id under the secret, its first 16 hex digits.

    HMAC's two keyed SHA-256 states are set up once and copied per id (RFC 2104), the same digest as
    ``hmac.new(key, id, sha256)`` three times faster (a million ids in about 2 s).

    >>> pseudonymize(pd.Series(["12417"]), b"k").tolist()
    ['3872a67554a83ce6']
    >>> pseudonymize(pd.Series(["12417"]), b"k" * 100).item() == hmac.new(b"k" * 100, b"12417", hashlib.sha256).hexdigest()[:16]
    True
    """
    key = key if key is not None else secret_key()
    padded = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
    inner, outer = (hashlib.sha256(bytes(b ^ pad for b in padded)) for pad in (0x36, 0x5C))

    def one(text: str) -> str:
        h, o = inner.copy(), outer.copy()
        h.update(text.encode())
        o.update(h.digest())
        return o.hexdigest()[:16]

    return pd.Series([one(i) for i in ids.astype(str).tolist()], index=ids.index, dtype=object, name=ids.name)


def key_order(keys: pd.Series) -> np.ndarray:
    """The positions that sort pseudonymous keys (16 hex digits, :func:`pseudonymize`), ties in their order.

    As bytes of fixed width (a tenth of the time of a sort of Python strings on a million keys).

    >>> key_order(pd.Series(["b0", "a1", "a0"])).tolist()
    [2, 1, 0]
    """
    return np.argsort(keys.to_numpy().astype("S16"), kind="stable")


def in_key_order(keys: pd.Series, source: pd.DataFrame, columns: list[str],
                 order: np.ndarray | None = None) -> pd.DataFrame:
    """``customer_key`` (``keys``, one per row of ``source``), then ``source``'s ``columns``, sorted by key.

    Built a column at a time, each taken out of ``source`` (which loses it) and released once in key
    order: one copy of the table in memory, where a take of the whole frame makes two (ten million
    customers: gigabytes).

    >>> frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    >>> in_key_order(pd.Series(["k2", "k3", "k1"]), frame, ["y"]).values.tolist(), list(frame.columns)
    ([['k1', 'c'], ['k2', 'a'], ['k3', 'b']], ['x'])
    """
    order = key_order(keys) if order is None else order  # given: the caller's key_order(keys)
    return taken(pd.DataFrame({"customer_key": keys.to_numpy()[order]}), source, columns, order)


def taken(out: pd.DataFrame, source: pd.DataFrame, columns: list[str], order: np.ndarray) -> pd.DataFrame:
    """``out`` with ``source``'s ``columns`` appended in the row order ``order``, each taken out of ``source``
    (which loses it) and released once reordered: one copy of the table in memory at a time.

    >>> frame = pd.DataFrame({"x": [1, 2, 3]})
    >>> taken(pd.DataFrame({"k": ["a", "b", "c"]}), frame, ["x"], np.array([2, 0, 1])).values.tolist(), frame.empty
    ([['a', 3], ['b', 1], ['c', 2]], True)
    """
    for column in columns:
        out[column] = source.pop(column).take(order).set_axis(out.index, copy=False)
    return out


def shown_id(customer_id: object, raw_ids: bool = False, key: bytes | None = None) -> str:
    """One customer as a notebook or report may show them: the pseudonymous key unless ``raw_ids``.

    >>> shown_id("ann@example.com", key=b"k") == pseudonymize(pd.Series(["ann@example.com"]), b"k").item()
    True
    >>> shown_id("ann@example.com", raw_ids=True)
    'ann@example.com'
    """
    return str(customer_id) if raw_ids else pseudonymize(pd.Series([str(customer_id)]), key).item()


def shown_ids(frame: pd.DataFrame, raw_ids: bool = False, key: bytes | None = None) -> pd.DataFrame:
    """A table as a notebook or report may show it: ``customer_id`` replaced by ``customer_key``.

    The id is replaced in the column or index ``customer_id``, and inside order
    ids derived from it (``<customer>@<day>`` when the source has no order
    column). With ``raw_ids`` the table is returned unchanged.

    >>> f = pd.DataFrame({"customer_id": ["ann@x.org"], "order_id": ["ann@x.org@20200101"], "amount": [5.0]})
    >>> out = shown_ids(f, key=b"k")
    >>> out.columns.tolist(), "ann" in out.to_string()
    (['customer_key', 'order_id', 'amount'], False)
    """
    if raw_ids:
        return frame
    out = frame.copy()
    if out.index.name == "customer_id":
        out.index = pseudonymize(out.index.to_series(), key).rename("customer_key").values
        out.index.name = "customer_key"
    if "customer_id" not in out.columns:
        return out
    ids = out["customer_id"]
    keys = pseudonymize(ids.fillna(""), key).where(ids.notna(), None)
    if "order_id" in out.columns:
        out["order_id"] = [o.replace(i, k) if isinstance(o, str) and isinstance(i, str) and i and i in o else o
                           for o, i, k in zip(out["order_id"], ids, keys, strict=True)]
    out["customer_id"] = keys
    return out.rename(columns={"customer_id": "customer_key"})


def find_customer(ids: pd.Series | pd.Index, wanted: str, key: bytes | None = None) -> str:
    """The raw id of the customer named by ``wanted``: a raw id or a pseudonymous ``customer_key``.

    Lets a parameter (``clv.example_customer``) name a customer by the key the
    report shows, so no raw id has to be written into a parameter file.

    >>> find_customer(pd.Series(["a", "b"]), pseudonymize(pd.Series(["b"]), b"k").item(), b"k")
    'b'
    """
    ids = pd.Series(pd.unique(pd.Series(ids).astype(str)))
    if (ids == wanted).any():
        return wanted
    hit = ids[pseudonymize(ids, key) == wanted]
    if hit.empty:
        raise ConfigError(f"customer {wanted!r} not found (neither a customer id nor a customer_key of this data set)")
    return str(hit.iloc[0])
