"""environment.yml (conda) and requirements.lock (pip) must pin the same versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CORE = ("bambi", "pymc", "arviz", "matplotlib", "snakemake", "pandas")
MAIN = CORE + (
    "nutpie", "numpy", "scipy", "xarray", "jupytext", "nbclient", "nbconvert", "nbformat",
    "ipykernel", "pytest", "snakefmt", "jsonschema", "pyyaml", "h5netcdf",
)  # fmt: skip
# pip's pypandoc_binary bundles pandoc; conda has pypandoc and pandoc as separate packages
# netcdf4: pip's 1.7.5.1.post1 is a wheel-only release number that conda-forge may not build, so it is unpinned there
NOT_COMPARED = {"pypandoc", "pypandoc-binary", "pandoc", "netcdf4"}
CONDA_SPEC = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(?:(?P<op>[=<>!~]+)\s*(?P<version>\S+))?$"
)


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


@pytest.fixture(scope="module")
def env() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


@pytest.fixture(scope="module")
def conda_specs(env) -> dict[str, tuple[str | None, str | None]]:
    """name -> (operator, version) for every conda dependency (operator and version None when unpinned)."""
    specs = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"unexpected non-conda entry in environment.yml: {dep!r}"
        match = CONDA_SPEC.match(dep.strip())
        assert match, f"cannot parse conda dependency {dep!r}"
        name = normalise(match["name"])
        assert name not in specs, f"{name} listed twice in environment.yml"
        specs[name] = (match["op"], match["version"])
    return specs


@pytest.fixture(scope="module")
def conda_pins(conda_specs) -> dict[str, str]:
    return {name: version for name, (op, version) in conda_specs.items() if version is not None}


@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.lock line is not an exact pin: {line!r}"
        pins[normalise(name)] = version.strip()
    return pins


def test_environment_header(env):
    assert env["name"] == "hierpool"
    assert env["channels"][:2] == ["conda-forge", "bioconda"]
    assert "defaults" not in env["channels"]


def test_pins_are_single_equals(conda_specs):
    for name, (op, version) in conda_specs.items():
        if version is not None:
            assert op == "=", f"{name}: write exact pins as conda name=version, got {op!r}"


def test_python_version(conda_pins):
    assert conda_pins["python"] == "3.11"


def test_main_packages_pinned_in_environment(conda_pins):
    missing = [name for name in MAIN if name not in conda_pins]
    assert not missing, f"not pinned in environment.yml: {missing}"


def test_quarto_and_pandoc_listed(conda_specs):
    assert "quarto" in conda_specs and "pandoc" in conda_specs


def test_core_packages_in_both(conda_pins, lock):
    for name in CORE:
        assert name in conda_pins, f"{name} missing from environment.yml"
        assert name in lock, f"{name} missing from requirements.lock"


def test_versions_agree_with_lock(conda_pins, lock):
    compared = {name for name in conda_pins if name in lock and name not in NOT_COMPARED}
    # make sure the comparison is not vacuous (e.g. a parsing mistake leaving nothing to compare)
    assert set(MAIN) <= compared
    mismatches = {
        name: (conda_pins[name], lock[name])
        for name in sorted(compared)
        if conda_pins[name] != lock[name]
    }
    assert not mismatches, f"environment.yml vs requirements.lock (conda, pip): {mismatches}"


def test_pinned_packages_not_in_lock_are_known(conda_pins, lock):
    # anything pinned for conda but absent from the pip lock must be deliberate
    extra = set(conda_pins) - set(lock) - NOT_COMPARED - {"python"}
    assert not extra, f"pinned in environment.yml but not in requirements.lock: {sorted(extra)}"


def test_matplotlib_below_3_11(conda_pins, lock):
    assert Version(conda_pins["matplotlib"]) < Version("3.11")
    assert Version(lock["matplotlib"]) < Version("3.11")


def test_lock_satisfies_pyproject_ranges(lock):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    checked = 0
    for text in requirements:
        req = Requirement(text)
        name = normalise(req.name)
        assert name in lock, (
            f"pyproject.toml requires {req.name} but requirements.lock does not pin it"
        )
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"lock has {name}=={lock[name]}, pyproject wants {req}"
        )
        checked += 1
    assert checked >= 10
