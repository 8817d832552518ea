"""The set-up files agree: pyproject.toml (source of truth), environment.yml and requirements.lock."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers import paths

#: conda-forge names that differ from PyPI names.
CONDA_TO_PYPI = {"python-duckdb": "duckdb"}


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((paths.PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    return {canonicalize_name(r.name): str(r.specifier) for r in reqs}


def _environment() -> tuple[dict[str, str], list]:
    env = yaml.safe_load((paths.PROJECT_ROOT / "environment.yml").read_text())
    deps, pip_section = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section = dep["pip"]
            continue
        name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", dep).groups()
        if name in ("python", "pip"):
            continue
        deps[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = str(Requirement(f"x{spec}").specifier)
    return deps, pip_section


def _lock() -> dict[str, str]:
    pins = {}
    for line in (paths.PROJECT_ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def test_environment_yml_mirrors_pyproject() -> None:
    pyproject = _pyproject()
    conda, pip_section = _environment()
    assert sorted(set(pyproject) - set(conda)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(conda) - set(pyproject)) == [], "in environment.yml but not pyproject.toml"
    assert {n: conda[n] for n in pyproject} == pyproject, "version constraints differ"
    assert pip_section == ["-e ."], "environment.yml must end with pip: [-e .]"


def test_lock_pins_every_dependency_within_its_constraint() -> None:
    lock = _lock()
    for name, spec in _pyproject().items():
        assert name in lock, f"{name} is not pinned in requirements.lock (run make lock)"
        assert Requirement(f"{name}{spec}").specifier.contains(lock[name], prereleases=True), (
            f"requirements.lock pins {name}=={lock[name]}, outside pyproject's {spec}"
        )


def test_installed_versions_match_the_lock() -> None:
    from importlib.metadata import version

    lock = _lock()
    for name in ("pandas", "numpy", "scipy", "lifetimes", "autograd", "pandera", "duckdb", "papermill"):
        assert version(name) == lock[name], f"{name} {version(name)} installed, lock says {lock[name]}: rerun make"
