"""Small frames for tests (importable because pyproject puts tests/ on the path)."""

from __future__ import annotations

import pandas as pd


def clean_frame() -> pd.DataFrame:
    """Three clean transaction lines."""
    return pd.DataFrame({
        "customer_id": ["1", "1", "2"],
        "order_id": ["a", "b", "c"],
        "order_ts": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-15"]),
        "amount": [10.0, 5.0, 7.5],
        "source_row": ["2", "3", "4"],
    })


def make_lines(rows: list[tuple]) -> pd.DataFrame:
    """Collected transactions from (customer, order, timestamp, amount[, quantity, price, code]) tuples."""
    cols = ["customer_id", "order_id", "order_ts", "amount", "quantity", "unit_price", "product_code"]
    frame = pd.DataFrame([r + (None,) * (len(cols) - len(r)) for r in rows], columns=cols)
    frame["order_ts"] = pd.to_datetime(frame["order_ts"])
    for c in ("amount", "quantity", "unit_price"):
        frame[c] = frame[c].astype(float)
    frame["source_row"] = [str(i + 2) for i in range(len(frame))]
    return frame


def small_report():  # noqa: ANN201 - test helper
    """Run every stage on the CDNOW sample (into the caller's data and reports folders); return the report."""
    from helpers.run import run

    return run("cdnow_sample.yaml", log=lambda _: None) / "report.html"


def purchases(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """Transactions from (customer, ISO timestamp, amount) tuples."""
    frame = pd.DataFrame(rows, columns=["customer_id", "order_ts", "amount"])
    frame["order_ts"] = pd.to_datetime(frame["order_ts"], format="ISO8601")
    return frame


def collected(params_file: str, data_dir, *, clean: bool = False) -> pd.DataFrame:  # noqa: ANN001
    """Collect (and, with ``clean``, clean) a data set, its files under ``data_dir``; the environment is restored."""
    import pytest

    from helpers.cleaning import clean_transactions
    from helpers.config import load_params
    from helpers.sources import collect

    params = load_params(params_file)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIN_DATA_DIR", str(data_dir))
        lines = collect(params)[1]
    return clean_transactions(lines, params.cleaning, params.as_of)[0] if clean else lines
