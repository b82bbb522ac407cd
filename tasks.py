#!/usr/bin/env python3
"""Set up the pinned environment, then run the workflow or the tests.

Usage (needs only Python 3.11+ and pip):

    python3 tasks.py run  [extra snakemake arguments]   # set up, then `snakemake --cores 4`
    python3 tasks.py test [extra pytest arguments]      # set up, then the whole test suite
    python3 tasks.py setup                              # only create/refresh .venv
    python3 tasks.py lock                               # re-resolve requirements.lock (maintainers)

The virtual environment lives in `.venv/`. It is (re)installed only when
`requirements.lock` or `pyproject.toml` change, so a second call starts at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".hierpool-installed"
TOP_LEVEL = [  # what `lock` resolves; everything else in the lock is a dependency of these
    "bambi==0.17.2",
    "pymc==5.28.5",
    "arviz==0.23.4",
    "nutpie==0.16.8",
    "pandas==3.1.1",
    "matplotlib==3.10.9",
    "snakemake==9.27.1",
    "snakemake-executor-plugin-slurm==2.8.0",
    "nbclient",
    "nbconvert",
    "nbformat",
    "jupytext",
    "ipykernel",
    "pypandoc_binary",
    "pytest",
    "snakefmt",
    "ruff==0.17.6",
    "jsonschema",
    "pyyaml",
    "netcdf4",
]


def venv_python() -> Path:
    return VENV / "bin" / "python"


def wanted_stamp() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
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
    subprocess.run([py, "-m", "pip", "install", "-q", *TOP_LEVEL], check=True)
    frozen = subprocess.run(
        [py, "-m", "pip", "freeze"], check=True, capture_output=True, text=True
    ).stdout
    header = (
        "# Exact versions of the whole Python stack, tested together on Python 3.11 (Linux x86-64).\n"
        "# Generated with 'pip freeze' from a fresh venv; regenerate with: python3 tasks.py lock\n"
    )
    LOCK.write_text(header + frozen)
    print(f"tasks.py: wrote {LOCK.name}; now update environment.yml to the same versions")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "setup", "lock"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "lock":
        return lock()
    ensure_env()
    if command == "setup":
        return 0
    if command == "run":
        return run_in_env([str(VENV / "bin" / "snakemake"), "--cores", "4", *rest])
    return run_in_env([str(venv_python()), "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
