"""Pseudonymous customer keys: personal identifiers stay in the raw layer.

Reports and exports carry ``customer_key``: an HMAC-SHA256 of the customer id
under a secret key, cut to 16 hex digits. The same id gives the same key from
run to run (so customers can be followed between reports), but the id cannot
be recovered from the key without the secret. The secret comes from the
environment variable ``CIN_PSEUDONYM_KEY`` or, failing that, from a file
outside the repository (``~/.config/customer-identification/pseudonym.key``,
created with a random secret on first use).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import pandas as pd

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


def pseudonymize(ids: pd.Series, key: bytes | None = None) -> pd.Series:
    """Keyed hash of each id.

    >>> pseudonymize(pd.Series(["12417"]), b"k").tolist()
    ['3872a67554a83ce6']
    """
    key = key if key is not None else secret_key()
    return ids.astype(str).map(lambda i: hmac.new(key, i.encode(), hashlib.sha256).hexdigest()[:16])
