"""The parameter reference (params/README.md) is generated from the parameter models and cannot drift."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from helpers import paramref, paths
from helpers.config import Params


def _leaves(model: type[BaseModel], prefix: str = "") -> dict[str, object]:
    found = {}
    for key, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found |= _leaves(field.annotation, f"{prefix}{key}.")
        else:
            found[prefix + key] = field
    return found


def test_the_committed_reference_is_current() -> None:
    assert paramref.REFERENCE == paths.PARAMS_DIR / "README.md"
    assert paramref.is_current(), "params/README.md is stale: run python -m helpers.paramref and commit it"


def test_every_parameter_has_a_description() -> None:
    missing = [name for name, field in _leaves(Params).items() if not (field.description or "").strip()]
    assert missing == [], f"add description= to these Fields in helpers/config.py: {missing}"


def test_every_parameter_is_one_row_with_type_default_and_meaning() -> None:
    rows = re.findall(r"^\| `([a-z_.]+)` \| (.+?) \| (.+?) \| (.+) \|$", paramref.render(), flags=re.M)
    names = [r[0] for r in rows]
    assert sorted(names) == sorted(_leaves(Params))  # every parameter, each once
    by_name = {name: (kind, default, meaning) for name, kind, default, meaning in rows}
    assert by_name["clv.time_unit"][:2] == ("one of `D`, `W`", "`W`")
    assert by_name["as_of"][1] == "required" and by_name["clusters.k"][1] == "`null`"
    assert by_name["rfm.bins"][0] == "integer, >= 2, <= 10"
    assert by_name["rfm.abc_cuts"][1] == "`[0.05, 0.2]`"


class _Section(BaseModel):
    """A section."""

    holdout_days: int | None = Field(None, ge=7, description="null: a third of the log's span")
    window: int | None = Field(None, description="null: derived from the log")
    k: int | None = Field(None, description="null: chosen by silhouette")
    mode: Literal["a", "b"] = Field("a", description="a or b | c")


class _Model(BaseModel):
    """Top."""

    name: str = Field(description="the name")
    clv: _Section = Field(default_factory=_Section)


def test_null_defaults_derived_from_the_data_say_so() -> None:
    rows = {e.name: e for e in paramref.entries(_Model)}
    assert rows["clv.holdout_days"].default == paramref.DERIVED_TEXT  # one of the contract's derived parameters
    assert rows["clv.window"].default == paramref.DERIVED_TEXT  # its description says so
    assert rows["clv.k"].default == "`null`"  # null that means something else
    assert rows["name"].default == "required" and rows["clv.mode"].type == "one of `a`, `b`"
    text = paramref.render(_Model)
    assert "## `clv`" in text and "a or b \\| c" in text  # a pipe cannot break the table


def test_check_fails_on_a_stale_copy_and_passes_after_writing(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    target = tmp_path / "README.md"
    target.write_text(paramref.render().replace("`273`", "`100`").replace("| `clv.margin`", "| `clv.marg`"))
    assert paramref.main(["--check", "--output", str(target)]) == 1
    assert "out of date: run python -m helpers.paramref" in capsys.readouterr().err
    assert paramref.main(["--output", str(target)]) == 0
    assert paramref.main(["--check", "--output", str(target)]) == 0
    assert target.read_text() == paramref.render()


def test_the_readme_links_the_reference() -> None:
    readme = (paths.PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert "(params/README.md)" in readme and "python -m helpers.paramref" in readme
