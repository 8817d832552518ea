"""Parameter files: one YAML file per data set in ``params/``.

A parameter file says where the data comes from (``source``), how its columns
map onto the canonical transaction contract (``columns``), the observation end
(``as_of``, always explicit) and how to clean (``cleaning``). Analysts change a
file or pass overrides; nobody edits code to add a data set.

Overrides use dotted names (``cleaning.cancellations``) and YAML values, so
``-p as_of 1998-03-31`` is a date and ``-p cleaning.exact_duplicates false`` a
boolean. Unknown names and wrong types are errors, raised before anything runs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from helpers import paths
from helpers.config_run import ExportParams, PrivacyParams, ScaleParams, SparkParams, _Strict
from helpers.errors import ConfigError

#: Stock codes that are not products in retail logs like Online Retail II.
DEFAULT_NON_PRODUCT_CODES = [
    "POST", "DOT", "M", "MANUAL", "ADJUST", "ADJUST2", "D", "C2", "CRUK",
    "BANK CHARGES", "AMAZONFEE", "PADS", "B", "S", "TEST001", "TEST002",
]


class SourceParams(_Strict):
    """Where the raw transaction log is and how to read it."""

    kind: Literal["csv", "text", "excel", "parquet", "duckdb", "sqlite"] = Field(
        description="source format: a delimited text file (csv, text), an Excel workbook, a Parquet file, "
                    "or a table or query in a DuckDB or SQLite database")
    path: str | None = Field(None, description="file path (relative to the project root) or 'lifetimes:<file>'; "
                             "optional for a duckdb query, which then runs in an in-memory database whose "
                             "relative file paths (read_csv, read_parquet) start at the project root")
    sep: str = Field(",", description="field separator for csv/text; 'whitespace' for runs of spaces")
    on_bad_lines: Literal["error", "skip"] = Field(
        "error", description="csv/text lines with more fields than the header: error (name them) or skip "
                             "(drop them; the quality log lists them as its first rule, bad_lines)")
    encoding: str = Field("utf-8", description="text encoding of csv/text files, e.g. latin-1 or cp1252")
    decimal: Literal[".", ","] = Field(".", description="the decimal mark of numbers written as text (csv/text "
                                       "files, text cells of a workbook or a Parquet text column): '.' or ','")
    thousands: Literal[".", ",", " ", "'", "\u00a0", "\u202f"] | None = Field(
        None, description="a thousands separator taken out of numbers written as text, e.g. '.' for 1.234,50 "
                          "(with decimal ','), ',' for 1,234.50, ' ' or a no-break space (U+00A0, U+202F) for "
                          "1 234,50; null: none")
    header: bool = Field(True, description="csv/text: the first line holds the column names")
    names: list[str] | None = Field(None, description="column names when the file has no header")
    sheets: Literal["all"] | list[str] = Field("all", description="excel: the sheets to read (all: every sheet, "
                                                "stacked)")
    table: str | None = Field(None, description="duckdb/sqlite: the table to read (a plain name)")
    query: str | None = Field(None, description="duckdb/sqlite: a SQL query whose rows are the transaction lines "
                                                "(e.g. joining tables); instead of table")

    @model_validator(mode="after")
    def _sql_needs_table_or_query(self) -> SourceParams:
        if self.kind in ("duckdb", "sqlite") and not (self.table or self.query):
            raise ValueError("a SQL source needs 'table' or 'query'")
        if self.path is None and not (self.kind == "duckdb" and self.query):
            raise ValueError(f"a {self.kind} source needs 'path' (only a duckdb 'query' can do without a "
                             "database file: it runs in an in-memory DuckDB)")
        if self.table and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", self.table):
            raise ValueError(f"table name {self.table!r} is not a plain identifier; use 'query' instead")
        if not self.header and not self.names:
            raise ValueError("header: false needs 'names' (the column names)")
        if self.thousands == self.decimal:
            raise ValueError(f"source.thousands and source.decimal are both {self.decimal!r}: numbers would not "
                             "read back; the thousands separator is the other mark (or a space)")
        return self


class ColumnMap(_Strict):
    """Which source column becomes which canonical column (``null``: not present)."""

    customer_id: str = Field(description="source column naming the customer (the person, not the order)")
    order_ts: str = Field(description="source column with the purchase date or timestamp")
    order_id: str | None = Field(None, description="null: one order per customer per day")
    amount: str | None = Field(None, description="null: amount = quantity x unit_price")
    quantity: str | None = Field(None, description="source column with the units bought (optional)")
    unit_price: str | None = Field(None, description="source column with the price per unit (with quantity: "
                                                     "amount = quantity x unit_price)")
    country: str | None = Field(None, description="source column with the customer's country (optional)")
    channel: str | None = Field(None, description="source column with the sales channel (optional)")
    product_code: str | None = Field(None, description="source column with the product or stock code (needed by "
                                                       "cleaning.non_product_lines)")
    description: str | None = Field(None, description="source column with the product description (optional)")

    @model_validator(mode="after")
    def _amount_is_mapped(self) -> ColumnMap:
        if self.amount is None and (self.quantity is None or self.unit_price is None):
            raise ValueError("map 'amount', or both 'quantity' and 'unit_price' (amount = quantity x unit_price)")
        return self


class CleaningParams(_Strict):
    """Which cleaning rules run (each is logged in the quality log)."""

    normalise_ids: bool = Field(True, description="trim customer ids and drop Excel's '.0' float suffix, so "
                                                  "'123', ' 123' and '123.0' are one customer")
    missing_customer_id: bool = Field(True, description="drop lines with no customer id (nobody to attribute "
                                                        "them to)")
    future_timestamps: bool = Field(True, description="drop lines dated after the as_of day")
    exact_duplicates: bool = Field(True, description="drop lines identical to an earlier line in every column")
    non_product_lines: bool = Field(True, description="drop lines whose product code is in non_product_codes "
                                                      "(postage, fees, adjustments)")
    non_product_codes: list[str] = Field(default_factory=lambda: list(DEFAULT_NON_PRODUCT_CODES),
                                         description="product codes that are not products (Online Retail II's "
                                                     "by default)")
    cancellations: Literal["drop", "net", "keep"] = Field(
        "drop", description="cancellation and return lines: drop them, net them against the purchases they "
                            "cancel (latest first), or keep them")
    cancellation_prefix: str | None = Field("C", description="order ids starting with this mark cancellations "
                                                             "(negative quantities or amounts always do); null: none")
    non_positive_price: bool = Field(True, description="drop lines with a zero or negative unit price (or "
                                                       "amount, without a price column)")


class RFMParams(_Strict):
    """Stage 04: RFM scores, the segment map, the ABC cuts."""

    bins: int = Field(5, ge=2, le=10, description="score levels (quintiles: 5); equal values get equal scores, so a "
                      "measure with few distinct values may use fewer levels; the segment map's grid must be bins x bins")
    segment_map: str = Field("segment_maps/default.yaml", description="R x F map file, relative to params/")
    abc_cuts: tuple[float, float] = Field((0.05, 0.20), description="cumulative customer shares ending A and B")
    outlier_factor: float = Field(100.0, gt=1, description="spend above this many times the median customer's is flagged")
    intermediary_items: float | None = Field(24, gt=0, description="units in a customer's median order above which "
                                             "they count as an intermediary (reseller); null: units are not used")
    intermediary_spend: float | None = Field(1000, gt=0, description="spend of a customer's median order (data's "
                                             "currency) above which they count as an intermediary; null: not used")

    @field_validator("abc_cuts")
    @classmethod
    def _ordered_cuts(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] < v[1] < 1:
            raise ValueError("abc_cuts must be two shares with 0 < A < B < 1, e.g. [0.05, 0.20]")
        return v


class CLVParams(_Strict):
    """Stage 05: the BTYD models, their validation, and lifetime value."""

    time_unit: Literal["D", "W"] = Field("W", description="model time unit: days or weeks")
    holdout_days: int | None = Field(None, ge=7, description="length of the holdout period before as_of; null: a "
                                     "third of the log's span (first purchase to as_of) in whole weeks, at most 273 "
                                     "days (39 weeks, the holdout of Fader, Hardie and Lee 2005)")
    min_repeat_buyers: int = Field(50, ge=10, description="repeat buyers the calibration period needs for a BTYD "
                                   "forecast; with fewer, stage 05 reports RFM and spend only (no CLV, no P(alive))")
    seed: int = Field(42, description="seed of the optimizers' alternative starting values and of the samples")
    models: list[Literal["bgnbd", "pareto", "mbgnbd"]] = Field(default_factory=lambda: ["bgnbd", "pareto", "mbgnbd"],
                                                             description="BTYD models compared on the holdout: "
                                                             "BG/NBD, Pareto/NBD, MBG/NBD")
    penalizers: list[float] = Field(default_factory=lambda: [0.0, 0.001, 0.01],
                                    description="L2 penalizer coefficients tried with every model (lifetimes' "
                                                "penalizer_coef)")
    selection_sample: int = Field(100_000, ge=1000, description="customers on which the models are compared "
                                  "(the first of scale.sample_customers' sample: a subset of it); the chosen model is "
                                  "then fitted on everyone (or on that sample)")
    selection_metric: Literal["rmse", "mae"] = Field("rmse", description="holdout error per customer by which "
                                                                         "the model is chosen")
    horizon_months: int = Field(12, ge=1, le=120, description="months of future purchases counted in CLV")
    discount_rate_annual: float = Field(0.10, ge=0, lt=1, description="annual discount rate applied to future "
                                                                      "spend in CLV")
    margin: float = Field(1.0, gt=0, le=1, description="share of revenue that is profit")
    discrete_period: Literal["year", "quarter", "month", "week"] | None = Field(
        None, description="one purchase opportunity per calendar period (events, donations, yearly renewals): stage "
        "05 fits BG/BB on the periods with a purchase instead of comparing the continuous-time models; null: "
        "continuous time")
    example_customer: str | None = Field(None, description="customer whose P(alive) history notebook 05 plots, "
                                         "named by the customer_key the report shows (a raw customer id works "
                                         "too, but the runner then stores its key instead); null: picked from "
                                         "the data")
    covariates: list[Literal["first_purchase_value", "country"]] = Field(
        default_factory=lambda: ["first_purchase_value", "country"],
        description="static customer covariates of the BG/NBD covariate analysis beside the chosen model (effects, "
                    "likelihood-ratio test, holdout check; it changes no CLV): first_purchase_value (log spend of the "
                    "first purchase day, standardised), country (indicators of the countries with at least 5% of the "
                    "customers); those the log lacks are skipped; []: no analysis")


    @field_validator("example_customer", mode="before")
    @classmethod
    def _id_as_text(cls, v: Any) -> Any:
        # customer ids are text; YAML and -p read 12417 as a number
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


class TierParams(_Strict):
    """The value pyramid: what counts as high current value and high potential."""

    current_high_share: float = Field(0.2, gt=0, lt=1, description="top share of customers by spend = high current value")
    potential_high_share: float = Field(0.2, gt=0, lt=1, description="top share by predicted CLV = high potential")


#: P(alive) below this is decline (the lifecycle) and a probably lapsed customer (the readings, the cluster
#: names): the default of ``lifecycle.decline_p_alive``, which every reading of a run takes from its parameters.
DECLINE_P_ALIVE = 0.5


class LifecycleParams(_Strict):
    """The lifecycle rule (see helpers.clv.lifecycle_stage)."""

    acquisition_days: int | None = Field(None, ge=0, description="first purchase within this many days of as_of; "
                                         "null: a sixth of the log's span (first purchase to as_of), at most 90 days")
    decline_p_alive: float = Field(DECLINE_P_ALIVE, gt=0, lt=1, description="P(alive) below this: decline")
    termination_p_alive: float = Field(0.2, gt=0, lt=1, description="P(alive) below this: termination (must be "
                                                                    "below decline_p_alive)")
    trend_change: float = Field(0.5, gt=0, lt=1, description="relative change in repeat purchases that counts as growth or decline")

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleParams:
        if self.termination_p_alive >= self.decline_p_alive:
            raise ValueError("termination_p_alive must be below decline_p_alive")
        return self


class ClusterParams(_Strict):
    """Stage 06: which customer features to cluster on, and how."""

    features: list[str] = Field(default_factory=lambda: ["recency_days", "frequency", "monetary_total", "clv",
                                                         "p_alive", "tenure_days"],
                                description="customer table columns to cluster on; a feature empty for every "
                                            "customer (clv, p_alive when stage 05 made no forecast) is left out, "
                                            "and the notebook and clusters.json say so")
    log_features: list[str] = Field(default_factory=lambda: ["recency_days", "frequency", "monetary_total", "clv",
                                                             "tenure_days"], description="log(1 + x) before scaling")
    scaler: Literal["robust", "standard"] = Field("robust", description="feature scaling: robust (median and "
                                                                       "IQR) or standard (mean and sd)")
    k_min: int = Field(3, ge=2, description="smallest number of clusters that can be chosen (k = 2, "
                                            "one-off against repeat, is scanned beside as a reference)")
    k_max: int = Field(8, ge=2, le=30, description="largest number of clusters that can be chosen")
    k: int | None = Field(None, ge=1, description="null: the highest silhouette among the k in k_min..k_max whose "
                                                  "bootstrap stability (mean ARI) is at least 0.8")
    bootstrap: int = Field(20, ge=0, le=500, description="refits on bootstrap samples for the stability check, "
                                                        "of each k scanned and of the chosen clusters")
    sample_size: int = Field(5000, ge=100, description="customers used for silhouette scores and bootstrap fits")
    seed: int = Field(42, description="seed of every sample, k-means, mixture and bootstrap fit of stage 06")

    @model_validator(mode="after")
    def _range(self) -> ClusterParams:
        if self.k_min > self.k_max:
            raise ValueError("k_min must not exceed k_max")
        return self


class ClassifyParams(_Strict):
    """Stage 07: predicting segments of new customers and future high-value customers."""

    early_days: int | None = Field(None, ge=1, description="days of behaviour after the first purchase known for a "
                                   "new customer; null: a quarter of the log's span (first purchase to as_of) in whole "
                                   "weeks, at most 90, at least 7")
    label_days: int | None = Field(None, ge=7, description="length of the future period whose value is predicted; "
                                   "null: a third of the log's span in whole weeks, at most 180, at least 7")
    target_share: float = Field(0.2, gt=0, lt=1, description="top share of customers by future spend = high value")
    test_share: float = Field(0.3, gt=0, lt=1, description="latest-acquired share of customers held out (question 1)")
    prospect_share: float = Field(0.1, gt=0, lt=1, description="share of customers with the highest P(high value) "
                                  "flagged as prospects; nobody is flagged when the model does not beat the RFM-score "
                                  "baseline on the held-out period")
    train_sample: int = Field(25_000, ge=1000, description="models are trained (and cross-validated) on at most this "
                              "many customers (a seeded sample); more change gradient-boosted trees little and cost "
                              "minutes (every shipped data set has fewer customers)")
    cv_folds: int = Field(5, ge=2, le=20, description="folds of the cross-validation on the training customers")
    boosting_rounds: int = Field(200, ge=10, le=5000, description="trees the gradient-boosted classifier adds up "
                                 "(per class; learning rate 0.05): fewer are faster and coarser")
    seed: int = Field(42, description="seed of every sample, fold and model of stage 07")


class Params(_Strict):
    """One run's parameters."""

    dataset: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="short name of the data set: names the "
                         "folders data/processed/<dataset>/ and reports/<dataset>/")
    title: str = Field("", description="the data set's name in the report header (empty: the dataset name)")
    language: Literal["en", "zh"] = Field("en", description="report language: English or Simplified Chinese")
    experiment: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                   description="an analyst's variant: its report goes to <as_of>-<experiment>")
    as_of: dt.date = Field(description="observation end (YYYY-MM-DD), always explicit: lines after this day "
                                       "are future lines, and every measure is taken at this day")
    source: SourceParams
    columns: ColumnMap
    date_format: str | None = Field(None, description="strptime format, e.g. '%m/%d/%Y %H:%M'; null: ISO or typed")
    engine: Literal["auto", "pandas", "duckdb", "spark"] = Field(
        "auto", description="stages 02-03 in pandas (names bad rows) or DuckDB (out of core, for large Parquet "
                            "sources); auto: DuckDB for Parquet sources of 64 MB and more; spark: Parquet sources "
                            "mapped, the rules run and the purchase days summed on Apache Spark (section spark)")
    spark: SparkParams = Field(default_factory=SparkParams)
    cleaning: CleaningParams = Field(default_factory=CleaningParams)
    rfm: RFMParams = Field(default_factory=RFMParams)
    clv: CLVParams = Field(default_factory=CLVParams)
    tiers: TierParams = Field(default_factory=TierParams)
    lifecycle: LifecycleParams = Field(default_factory=LifecycleParams)
    clusters: ClusterParams = Field(default_factory=ClusterParams)
    classify: ClassifyParams = Field(default_factory=ClassifyParams)
    scale: ScaleParams = Field(default_factory=ScaleParams)
    privacy: PrivacyParams = Field(default_factory=PrivacyParams)
    export: ExportParams = Field(default_factory=ExportParams)

    @field_validator("as_of", mode="before")
    @classmethod
    def _no_default_as_of(cls, v: Any) -> Any:
        if v is None or v == "":
            raise ValueError("as_of must be given explicitly (YYYY-MM-DD)")
        return v


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node: Any = data
    model: type[BaseModel] | None = Params
    for depth, key in enumerate(keys):
        fields = model.model_fields if model is not None else {}
        if key not in fields:
            where = ".".join(keys[:depth]) or "top level"
            raise ConfigError(
                f"{source}: unknown parameter {dotted!r} ({key!r} is not a name at {where}); "
                f"known names there: {', '.join(sorted(fields))}"
            )
        annotation = fields[key].annotation
        if depth == len(keys) - 1:
            node[key] = value
            return
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if model is None:
            raise ConfigError(f"{source}: parameter {'.'.join(keys[:depth + 1])!r} has no sub-names")
        node = node.setdefault(key, {})


def parse_value(text: str) -> Any:
    """Parse an override value from the command line as YAML.

    >>> parse_value("1998-03-31")
    datetime.date(1998, 3, 31)
    >>> parse_value("false"), parse_value("12"), parse_value("net")
    (False, 12, 'net')
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


#: Names a user may write for a parameter, and the parameter (said when a section does not take the name).
SYNONYMS = {"delimiter": "sep", "delim": "sep", "separator": "sep", "decimal_separator": "decimal", "decimal_mark":
            "decimal", "thousands_separator": "thousands", "file": "path", "format": "kind", "type": "kind",
            "sheet": "sheets", "total": "amount", "revenue": "amount", "sales": "amount", "value": "amount",
            "price": "unit_price", "qty": "quantity", "date": "order_ts", "timestamp": "order_ts", "customer":
            "customer_id", "order": "order_id", "invoice": "order_id", "product": "product_code"}


def _known_names(loc: tuple[Any, ...]) -> str:
    """For a name a section does not take (``loc``, pydantic's path to it): the closest it takes, and all of them.

    >>> _known_names(("columns", "total")).split(" It takes: ")
    [". columns takes no 'total'; did you mean 'amount'?", 'customer_id, order_ts, order_id, amount, quantity, unit_price, country, channel, product_code, description']
    >>> _known_names(("source", "delimiter")).split("?")[0], _known_names(("clv", "penalizer")).split("?")[0]
    (". source takes no 'delimiter'; did you mean 'sep'", ". clv takes no 'penalizer'; did you mean 'penalizers'")
    """
    import difflib
    import typing

    model: Any = Params
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        inner = [a for a in (typing.get_args(field.annotation) or (field.annotation,)) if isinstance(a, type)
                 and issubclass(a, BaseModel)] if field is not None else []
        if not inner:
            return ""
        model = inner[0]
    names = list(model.model_fields)
    section = ".".join(str(p) for p in loc[:-1]) or "the parameter file"
    given = str(loc[-1])
    close = [n for n in [SYNONYMS.get(given.lower())] if n in names] or difflib.get_close_matches(given, names, n=1,
                                                                                                   cutoff=0.5)
    return (f". {section} takes no {str(loc[-1])!r}" + (f"; did you mean {close[0]!r}?" if close else ".")
            + f" It takes: {', '.join(names)}")


def load_params(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Params:
    """Read a parameter file, apply dotted overrides, and validate everything.

    ``path`` may be a file name in ``params/`` (``"cdnow.yaml"``) or a path.
    Raises :class:`ConfigError` naming the file and the parameter at fault.
    """
    file = Path(path)
    if not file.is_absolute() and not file.exists():
        candidates = [paths.resolve(file), paths.PARAMS_DIR / file]
        file = next((c for c in candidates if c.exists()), candidates[-1])
    if not file.exists():
        found = ", ".join(sorted(p.name for p in paths.PARAMS_DIR.glob("*.yaml")))
        raise ConfigError(f"parameter file not found: {file} (files in {paths.PARAMS_DIR}: {found})")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of parameters, found {type(data).__name__}")
    for name, value in (overrides or {}).items():
        _set_dotted(data, name, parse_value(value) if isinstance(value, str) else value, "override")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'top level'}: {err['msg']}"
            + (f" (got {err['input']!r})" if err["type"] not in ("missing",) and not isinstance(err["input"], dict) else "")
            + (_known_names(err["loc"]) if err["type"] == "extra_forbidden" else "")
            for err in exc.errors()
        )
        given = f" with overrides {', '.join(overrides)}" if overrides else ""
        raise ConfigError(f"{file}{given}: {problems}") from None


def dump_params(params: Params) -> str:
    """The parameters as YAML, as a run records them."""
    return yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
