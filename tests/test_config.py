"""Parameter files and overrides: every file loads; bad names and types are errors before anything runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from helpers import paths
from helpers.config import Params, dump_params, load_params
from helpers.errors import ConfigError

PARAM_FILES = sorted(p.name for p in paths.PARAMS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", PARAM_FILES)
def test_every_parameter_file_loads_with_an_explicit_as_of(name: str) -> None:
    params = load_params(name)
    assert isinstance(params.as_of, dt.date)
    assert params.dataset == Path(name).stem


def test_the_three_required_data_sets_exist() -> None:
    assert {"cdnow.yaml", "cdnow_sample.yaml", "online_retail_sample.yaml"} <= set(PARAM_FILES)


def test_overrides_are_typed_from_yaml() -> None:
    params = load_params("cdnow.yaml", {"as_of": "1998-03-31", "cleaning.exact_duplicates": "true"})
    assert params.as_of == dt.date(1998, 3, 31)
    assert params.cleaning.exact_duplicates is True


def test_unknown_override_names_the_parameter_and_the_known_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown parameter 'cleaning.cancelations'.*cancellations"):
        load_params("cdnow.yaml", {"cleaning.cancelations": "net"})
    with pytest.raises(ConfigError, match=r"unknown parameter 'asof'"):
        load_params("cdnow.yaml", {"asof": "1998-01-01"})


@pytest.mark.parametrize(("name", "value", "message"), [
    ("as_of", "next tuesday", "as_of"),
    ("cleaning.cancellations", "nett", "'drop', 'net' or 'keep'"),
    ("cleaning.exact_duplicates", "[1, 2]", "exact_duplicates"),
    ("source.kind", "xls", "source.kind"),
])
def test_wrong_types_are_rejected_with_the_parameter_name(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_params("cdnow.yaml", {name: value})


def test_as_of_is_never_defaulted(tmp_path: Path) -> None:
    text = (paths.PARAMS_DIR / "cdnow.yaml").read_text().replace("as_of: 1998-06-30", "as_of:")
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ConfigError, match="as_of must be given explicitly"):
        load_params(tmp_path / "p.yaml")


def test_amount_must_be_mapped_or_computable(tmp_path: Path) -> None:
    text = (paths.PARAMS_DIR / "cdnow.yaml").read_text().replace("amount: dollar_value", "amount: null")
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ConfigError, match="quantity' and 'unit_price'"):
        load_params(tmp_path / "p.yaml")


def test_missing_file_names_the_path_and_lists_the_files() -> None:
    with pytest.raises(ConfigError, match=r"not found: .*cdnwo.yaml.*cdnow.yaml"):
        load_params("cdnwo.yaml")


def test_dumped_parameters_load_back_identically(tmp_path: Path) -> None:
    params = load_params("online_retail_sample.yaml", {"cleaning.cancellations": "net"})
    (tmp_path / "run.yaml").write_text(dump_params(params))
    assert load_params(tmp_path / "run.yaml") == params
    assert isinstance(params, Params)


def test_a_name_a_section_does_not_take_is_answered_with_the_names_it_takes(tmp_path: Path) -> None:
    file = tmp_path / "shop.yaml"
    file.write_text('dataset: shop\nas_of: 2011-12-09\nsource: {kind: csv, path: x.csv, delimiter: ";"}\n'
                    "columns: {customer_id: cust, order_ts: when, total: montant}\n")
    with pytest.raises(ConfigError) as err:
        load_params(file)
    message = str(err.value)
    assert message.startswith(f"{file}: ")
    assert "source.delimiter: Extra inputs are not permitted (got ';'). source takes no 'delimiter'; did you mean " \
           "'sep'? It takes: kind, path, sep," in message
    assert "columns takes no 'total'; did you mean 'amount'? It takes: customer_id, order_ts, order_id, amount," in message
