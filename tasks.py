#!/usr/bin/env python3
"""Set up the pinned environment, then run the workflow or the tests.

Usage (needs only Python 3.11+ and pip):

    python3 tasks.py run  [extra snakemake arguments]   # set up, then `snakemake --cores 4`
    python3 tasks.py test [extra pytest arguments]      # set up, then the whole test suite
    python3 tasks.py setup                              # only create/refresh .venv
    python3 tasks.py lock                               # re-resolve requirements.lock, then
                                                        # regenerate environment.yml (maintainers)
    python3 tasks.py environment                        # only regenerate environment.yml from
                                                        # the current requirements.lock

The virtual environment lives in `.venv/`. It is (re)installed only when
`requirements.lock` or `pyproject.toml` change, so a second call starts at once.

Where versions live: pyproject.toml holds the compatibility ranges (what works);
requirements.lock holds the exact, tested versions, resolved by `lock` from pyproject's
dependencies plus every extra; environment.yml (conda) is generated from the lock by
`environment_yml()` below and is never edited by hand.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".hierpool-installed"
PYPROJECT = ROOT / "pyproject.toml"
ENVIRONMENT = ROOT / "environment.yml"

# environment.yml, with `{name}` standing for the version requirements.lock pins for `name`
# (pip names, compared case-insensitively with - _ . alike). Conda names that differ from pip's,
# or packages conda must not pin, are written out without a placeholder.
ENVIRONMENT_TEMPLATE = """\
# Conda/mamba environment for the hierpool workflow (alternative to `python3 tasks.py setup`).
#
#   mamba env create -f environment.yml      # or: conda env create -f environment.yml
#   mamba activate hierpool
#   snakemake --cores 4
#
# GENERATED from requirements.lock (the pip lock, tested on Python 3.11, Linux x86-64) by
# `python3 tasks.py environment` (`python3 tasks.py lock` runs it too): do not edit by hand;
# change ENVIRONMENT_TEMPLATE in tasks.py and regenerate. tests/test_environment.py checks
# that this file is up to date.
#
# The local package (src/hierpool) is NOT installed here: the workflow adds src/ to
# sys.path itself (workflow/rules/common.smk), and so does tests/conftest.py for pytest.
# There is no pip section: everything comes from conda-forge/bioconda.
name: hierpool
channels:
  - conda-forge
  - bioconda
dependencies:
  - python=3.11
  # modelling
  - bambi={bambi}
  - pymc={pymc}
  - pytensor={pytensor}
  - arviz={arviz}
  - nutpie={nutpie}
  # data and numerics
  - pandas={pandas}
  - numpy={numpy}
  - scipy={scipy}
  - xarray={xarray}
  - netcdf4  # pip has {netcdf4}, a wheel-only release number conda-forge may not build; unpinned
  - h5netcdf={h5netcdf}
  # plots (matplotlib must stay < 3.11)
  - matplotlib={matplotlib}
  # workflow and reports
  - snakemake={snakemake}
  # running on a SLURM cluster (workflow/profiles/slurm); the jobstep plugin is its dependency
  - snakemake-executor-plugin-slurm={snakemake-executor-plugin-slurm}
  - snakemake-executor-plugin-slurm-jobstep={snakemake-executor-plugin-slurm-jobstep}
  - nbclient={nbclient}
  - nbconvert={nbconvert}
  - nbformat={nbformat}
  - jupytext={jupytext}
  - ipykernel={ipykernel}
  - jsonschema={jsonschema}
  - pyyaml={pyyaml}
  # the pip lock's pypandoc_binary bundles pandoc; with conda they are separate packages
  - pypandoc
  - pandoc
  - quarto
  # development
  - pytest={pytest}
  - snakefmt={snakefmt}
  - ruff={ruff}
"""
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9][A-Za-z0-9_.-]*)\}")


def normalise(name: str) -> str:
    """A package name as PEP 503 compares them: case-insensitive, runs of - _ . alike."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(lock_text: str) -> dict[str, str]:
    """Normalised name -> version for every line of requirements.lock (each must be name==version)."""
    pins = {}
    for raw in lock_text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if (
            not sep
            or not name.strip()
            or not version.strip()
            or any(c in version for c in "<>=!~;, ")
        ):
            raise ValueError(f"requirements.lock line is not an exact pin: {raw!r}")
        key = normalise(name.strip())
        if key in pins:
            raise ValueError(f"requirements.lock pins {name.strip()} twice")
        pins[key] = version.strip()
    return pins


def environment_yml(lock_text: str) -> str:
    """The whole environment.yml, its versions taken from the given requirements.lock text."""
    pins = lock_pins(lock_text)

    def version(match: re.Match[str]) -> str:
        name = normalise(match[1])
        if name not in pins:
            raise ValueError(
                f"environment.yml needs {match[1]}, which requirements.lock does not pin"
            )
        return pins[name]

    return PLACEHOLDER.sub(version, ENVIRONMENT_TEMPLATE)


def pyproject_requirements(pyproject_text: str) -> list[str]:
    """What `lock` resolves: pyproject's project.dependencies plus every optional-dependencies extra."""
    project = tomllib.loads(pyproject_text)["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return list(dict.fromkeys(requirements))  # drop repeats, keep the order


def write_environment() -> None:
    ENVIRONMENT.write_text(environment_yml(LOCK.read_text()))
    print(f"tasks.py: wrote {ENVIRONMENT.name} from {LOCK.name}")


def venv_python() -> Path:
    return VENV / "bin" / "python"


def wanted_stamp() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, PYPROJECT):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def create_venv() -> None:
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    except Exception as err:  # Debian without python3-venv: fall back to virtualenv
        print(f"tasks.py: python -m venv failed ({err}); trying virtualenv", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--user", "virtualenv"], check=True)
        subprocess.run([sys.executable, "-m", "virtualenv", "--clear", str(VENV)], check=True)


def link_package() -> None:
    """Make `import hierpool` work from src/ without a build step (what an editable install does)."""
    site = subprocess.run(
        [str(venv_python()), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "hierpool-src.pth").write_text(str(ROOT / "src") + "\n")


def ensure_env() -> None:
    if STAMP.exists() and STAMP.read_text() == wanted_stamp() and venv_python().exists():
        return
    print(
        "tasks.py: installing the pinned environment into .venv (once; a few minutes) ...",
        flush=True,
    )
    if not venv_python().exists():
        create_venv()
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["-r", str(LOCK)], check=True)
    link_package()
    STAMP.write_text(wanted_stamp())
    print("tasks.py: environment ready", flush=True)


def run_in_env(args: list[str]) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    return subprocess.run(args, cwd=ROOT, env=env).returncode


def lock() -> int:
    tmp = ROOT / ".venv-lock"
    venv.EnvBuilder(with_pip=True, clear=True).create(tmp)
    py = str(tmp / "bin" / "python")
    requirements = pyproject_requirements(PYPROJECT.read_text())
    subprocess.run([py, "-m", "pip", "install", "-q", *requirements], check=True)
    frozen = subprocess.run(
        [py, "-m", "pip", "freeze"], check=True, capture_output=True, text=True
    ).stdout
    header = (
        "# Exact versions of the whole Python stack, tested together on Python 3.11 (Linux x86-64).\n"
        "# Generated with 'pip freeze' from a fresh venv; regenerate with: python3 tasks.py lock\n"
    )
    LOCK.write_text(header + frozen)
    print(f"tasks.py: wrote {LOCK.name}")
    write_environment()
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "setup", "lock", "environment"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "lock":
        return lock()
    if command == "environment":
        write_environment()
        return 0
    ensure_env()
    if command == "setup":
        return 0
    if command == "run":
        return run_in_env([str(VENV / "bin" / "snakemake"), "--cores", "4", *rest])
    return run_in_env([str(venv_python()), "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
