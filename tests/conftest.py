"""Shared pytest fixtures. Add new shared fixtures here with clear, specific names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
    import shutil

    shutil.copy(REPO_ROOT / "environment.yml", dst / "environment.yml")
    for name in ("workflow", "src", "config", "reports", "data/raw", ".test"):
        shutil.copytree(REPO_ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dst
