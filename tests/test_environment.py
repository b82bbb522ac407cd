"""Versions live in one place each: ranges in pyproject.toml, exact versions in requirements.lock,
and environment.yml is generated from the lock by tasks.py (`python3 tasks.py environment`)."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
EXACT_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9._+!-]+$")
CONDA_SPEC = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.\-]*)(?:(?P<op>[=<>!~]+)(?P<version>\S+))?$")
UNPINNED_IN_CONDA = {"netcdf4", "pypandoc", "pandoc", "quarto"}


@pytest.fixture(scope="module")
def tasks():
    """tasks.py, imported as a module (importing it must have no side effects)."""
    spec = importlib.util.spec_from_file_location("hierpool_tasks", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lock_text() -> str:
    return (ROOT / "requirements.lock").read_text()


@pytest.fixture(scope="module")
def lock(lock_text) -> dict[str, str]:
    """canonical name -> version, parsed here independently of tasks.py."""
    pins = {}
    for line in lock_text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def env() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


@pytest.fixture(scope="module")
def conda_specs(env) -> dict[str, tuple[str | None, str | None]]:
    """name -> (operator, version) for every conda dependency (None, None when unpinned)."""
    specs = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"unexpected non-conda entry in environment.yml: {dep!r}"
        match = CONDA_SPEC.match(dep.strip())
        assert match, f"cannot parse conda dependency {dep!r}"
        assert match["name"] not in specs, f"{match['name']} listed twice in environment.yml"
        specs[match["name"]] = (match["op"], match["version"])
    return specs


def test_environment_yml_is_generated_from_lock(tasks, lock_text):
    expected = tasks.environment_yml(lock_text)
    assert (ROOT / "environment.yml").read_text() == expected, (
        "environment.yml is out of date with requirements.lock: run `python3 tasks.py environment`"
    )


def test_environment_versions_come_from_lock(tasks, lock_text):
    bumped = re.sub(r"(?m)^bambi==\S+$", "bambi==9.9.9", lock_text)
    assert bumped != lock_text
    assert "  - bambi=9.9.9\n" in tasks.environment_yml(bumped)
    without = re.sub(r"(?m)^pytensor==\S+\n", "", lock_text)
    with pytest.raises(ValueError, match="pytensor"):
        tasks.environment_yml(without)


def test_lock_has_only_exact_pins(tasks, lock_text, lock):
    for line in lock_text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert EXACT_PIN.match(line), f"requirements.lock line is not an exact pin: {line!r}"
            Version(line.partition("==")[2])  # a valid version, or InvalidVersion
    assert len(lock) > 100, "requirements.lock is suspiciously short"
    assert tasks.lock_pins(lock_text) == lock
    with pytest.raises(ValueError, match="not an exact pin"):
        tasks.lock_pins(lock_text + "numpy>=2\n")


def test_lock_resolves_pyproject_requirements(tasks, pyproject):
    # `tasks.py lock` must resolve exactly pyproject's dependencies plus every extra
    expected = list(pyproject["dependencies"])
    for extra in pyproject["optional-dependencies"].values():
        expected += extra
    text = (ROOT / "pyproject.toml").read_text()
    assert set(tasks.pyproject_requirements(text)) == set(expected)
    assert not hasattr(tasks, "TOP_LEVEL"), "versions to resolve belong in pyproject.toml"


def test_lock_satisfies_pyproject_ranges(tasks, lock):
    requirements = tasks.pyproject_requirements((ROOT / "pyproject.toml").read_text())
    for text in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in lock, (
            f"pyproject.toml requires {req.name}, requirements.lock does not pin it"
        )
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"lock has {name}=={lock[name]}, pyproject wants {req}"
        )
    assert len(requirements) >= 20


def test_ruff_pinned_exactly_in_dev_extra(pyproject, lock):
    # the formatter's output changes between ruff versions (tests/test_lint.py runs it)
    assert f"ruff=={lock['ruff']}" in pyproject["optional-dependencies"]["dev"]


def test_environment_header(env):
    assert env["name"] == "hierpool"
    assert env["channels"][:2] == ["conda-forge", "bioconda"]
    assert "defaults" not in env["channels"]


def test_python_version(conda_specs, pyproject, lock_text):
    assert conda_specs["python"] == ("=", "3.11")
    assert SpecifierSet(pyproject["requires-python"]).contains("3.11")
    assert "Python 3.11" in lock_text.splitlines()[0]


def test_conda_pins_single_equals_and_special_cases(conda_specs, lock):
    for name, (op, version) in conda_specs.items():
        if name in UNPINNED_IN_CONDA:
            assert version is None, f"{name} is deliberately unpinned in environment.yml"
        else:
            assert op == "=", f"{name}: write exact pins as conda name=version, got {op!r}"
            if name != "python":
                assert version == lock[name], f"{name}: {version} in conda, {lock[name]} in lock"
    assert "pypandoc-binary" in lock and "pypandoc_binary" not in conda_specs


def test_matplotlib_below_3_11(conda_specs, lock, pyproject):
    # matplotlib 3.11 breaks `import arviz`
    assert Version(lock["matplotlib"]) < Version("3.11")
    assert Version(conda_specs["matplotlib"][1]) < Version("3.11")
    (req,) = [r for r in map(Requirement, pyproject["dependencies"]) if r.name == "matplotlib"]
    assert not req.specifier.contains("3.11.0")


def test_tasks_needs_only_the_standard_library():
    tree = ast.parse((ROOT / "tasks.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= sys.stdlib_module_names
