"""Shared pytest fixtures. Add new shared fixtures here with clear, specific names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

# `import hierpool` without installing the package (e.g. in the conda environment.yml env);
# the .venv made by tasks.py links src/ already, so this is a no-op there.
if str(REPO_ROOT / "src") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "src"))


@pytest.fixture
def repo_root() -> Path:
    """Absolute path of the repository root (tests must not depend on the working directory)."""
    return REPO_ROOT


@pytest.fixture
def write_raw_csv(tmp_path):
    """Factory: ``write_raw_csv(text_or_bytes, name="raw.csv") -> Path`` writes a raw CSV verbatim into tmp_path.

    Text is written as UTF-8 with the exact line endings given; bytes are written as they are.
    """

    def write(content: str | bytes, name: str = "raw.csv") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
        return path

    return write


def copy_workflow(dst: Path) -> Path:
    """Copy what a user's checkout holds (workflow, library, config, report sources, example data) into ``dst``.

    End-to-end tests run Snakemake in such a copy, so their results never touch the repository.
    """
    shutil.copy(REPO_ROOT / "environment.yml", dst / "environment.yml")
    for name in ("workflow", "src", "config", "reports", "data/raw", ".test"):
        shutil.copytree(REPO_ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


# The one end-to-end run that every test in tests/test_e2e.py checks. It starts in the
# background as soon as the tests are collected, and those tests run last, so the workflow
# runs while the unit tests do (they use one core each; the machine has two).
HOSTILE = "<script>alert(1)</script> $x^$"  # markup for the HTML, maths for matplotlib
TINY_CONFIG = yaml.safe_load((REPO_ROOT / ".test/config/config.yaml").read_text())
E2E_TIMEOUT_S = 2700  # beside the unit tests and the SLURM runs (tests/slurm_runs.py)
_E2E: dict = {}


def snakemake_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--cores", "2", *args]


def start_tiny_run(work: Path) -> subprocess.Popen:
    """Copy the workflow into ``work`` with the tiny config and a hostile radon label; start Snakemake."""
    copy_workflow(work)
    radon = (REPO_ROOT / "data/raw/radon.csv").read_text().replace(",AITKIN,", f",{HOSTILE},")
    (work / "data/raw/radon.csv").write_text(radon)
    (work / "config/config.yaml").write_text(yaml.safe_dump(TINY_CONFIG, sort_keys=False))
    log = open(work / "e2e_run.log", "w")  # noqa: SIM115 - closed in e2e_run_result
    return subprocess.Popen(
        snakemake_command(), cwd=work, stdout=log, stderr=subprocess.STDOUT, text=True
    )


@pytest.hookimpl(trylast=True)  # after `-m` / `-k` have deselected: `-m "not e2e"` starts no run
def pytest_collection_modifyitems(session, config, items):
    """Run the end-to-end tests last, and start their shared workflow run now."""
    e2e = [item for item in items if item.get_closest_marker("e2e")]
    items[:] = [item for item in items if not item.get_closest_marker("e2e")] + e2e
    if config.option.collectonly:
        return
    files = {Path(str(item.fspath)).name for item in e2e}
    if "test_e2e.py" in files and not os.environ.get("HIERPOOL_E2E_WORKDIR"):
        work = Path(tempfile.mkdtemp(prefix="hierpool-e2e-"))
        _E2E.update(work=work, process=start_tiny_run(work))
    if "test_slurm.py" in files:
        import slurm_runs

        if slurm_runs.unavailable_reason() is None:  # else its tests skip (or fail under CI)
            slurm_runs.start()


def e2e_run_result() -> Path:
    """Wait for the shared run (started at collection, or ``HIERPOOL_E2E_WORKDIR``) and return its folder."""
    reuse = os.environ.get("HIERPOOL_E2E_WORKDIR")  # development: check a finished run again
    if reuse:
        return Path(reuse)
    if "work" not in _E2E:  # collected without the hook (e.g. a single test by node id)
        _E2E.update(work=Path(tempfile.mkdtemp(prefix="hierpool-e2e-")))
        _E2E["process"] = start_tiny_run(_E2E["work"])
    process, work = _E2E["process"], _E2E["work"]
    returncode = process.wait(timeout=E2E_TIMEOUT_S)
    log = (work / "e2e_run.log").read_text()
    assert returncode == 0, log[-10000:]
    return work


def pytest_sessionfinish(session, exitstatus):
    if "slurm_runs" in sys.modules:
        sys.modules["slurm_runs"].stop()
    process = _E2E.get("process")
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait(timeout=60)
    if "work" in _E2E:
        shutil.rmtree(_E2E["work"], ignore_errors=True)
