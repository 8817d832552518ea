"""Stage 03, clean and integrate: every rule in order, the quality log, the clean transactions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.cleaning import clean_and_save
from helpers.paths import shown


@dataclass
class CleanResult:
    """Stage 03's result: the quality log, the headline numbers of the clean table, the files, the engine, and
    the distinct customer keys that came in (before the rules merged or removed any)."""

    quality: pd.DataFrame
    overview: pd.Series
    files: dict[str, Path]
    engine: str
    keys_in: int

    @property
    def message(self) -> str:
        """Which engine did what: stage 02 read the source with ``engine``; the rules run in DuckDB (Spark: ``spark``)."""
        ran = "Spark" if self.engine == "spark" else "DuckDB"
        kept = "came into pandas, checked with the pandera schema" if self.engine == "pandas" else \
            f"stayed in {ran}, checked with the same schema in SQL"
        return f"engine: {self.engine} (stage 02); the rules ran in {ran} and the clean lines {kept}"

    @property
    def rows_in(self) -> int:
        """Lines that came in (the first rule's rows before)."""
        return int(self.quality["rows_before"].iloc[0])

    @property
    def rows_out(self) -> int:
        """Clean lines written."""
        return int(self.overview["lines"])

    @property
    def balance(self) -> str:
        """The quality log's sum in a sentence: lines in - removed = lines out, and whether it adds up."""
        removed = int(self.quality["rows_removed"].sum())
        adds_up = "adds up" if self.rows_in - removed == self.rows_out else "DOES NOT ADD UP"
        return f"{self.rows_in:,} lines in - {removed:,} removed by the rules = {self.rows_out:,} lines out ({adds_up})"

    @property
    def written(self) -> str:
        """The files written, one per line."""
        return "\n".join(f"{name:>13}: {shown(path)}" for name, path in self.files.items())


def clean(params: Any, catalog: Any) -> CleanResult:
    """Stage 03 in one call: clean the collected lines, write ``transactions`` and ``quality_log`` (files and tables)."""
    quality, overview, files, engine = clean_and_save(params, catalog)
    keys_in = (catalog.read_json("snapshot").get("collected") or {}).get("customers")  # counted by stage 02
    if keys_in is None:  # a run folder stage 02 wrote before it kept the count
        keys_in = catalog.query("select count(distinct customer_id) as n from collected")["n"].item()
    return CleanResult(quality, overview, files, engine, int(keys_in))
