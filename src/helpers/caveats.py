"""The team's caveat contract: what a stage says about reading its numbers.

A stage writes ``"caveats": [caveat(code, text), ...]`` into its JSON
artifact (``rfm.json``, ``clv_validation.json``, ``clusters.json``,
``classification.json``); the report gathers them (``metrics.json["caveats"]``
and the "Read these numbers with care" box). The text is a sentence generated
from this run's numbers; the code is stable, for tests and for the report's
de-duplication.
"""

from __future__ import annotations


def caveat(code: str, text: str) -> dict[str, str]:
    """One caveat: a stable code and a sentence generated from this run's numbers.

    >>> caveat("weak_holdout", "The holdout held 20 purchases.")
    {'code': 'weak_holdout', 'text': 'The holdout held 20 purchases.'}
    """
    return {"code": code, "text": text}
