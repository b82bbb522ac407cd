"""Every `--config` command line that README.md and config/README.md show works as written (dry run)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "config/README.md"]
COMMAND = re.compile(r"(?:python3 tasks\.py run|snakemake)\b[^`\n#]*--config\s[^`\n#]*")


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for match in COMMAND.finditer((ROOT / doc).read_text()):
            found.append((doc, match.group(0).strip()))
    return found


def test_the_docs_show_config_overrides():
    commands = [c for _, c in documented_commands()]
    assert any("sampler='{draws: 500}'" in c for c in commands), commands
    assert len(commands) >= 3, commands


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("docs"))
    # The README's own-data example names data/raw/my_labs.csv with columns scontrol, stress, Site.
    rows = ["scontrol,stress,Site"] + [f"{3 + i % 5 * 0.1},{i % 7},lab{i % 3}" for i in range(30)]
    (work / "data/raw/my_labs.csv").write_text("\n".join(rows) + "\n")
    return work


@pytest.mark.parametrize("doc, command", documented_commands(), ids=lambda v: v[:60])
def test_documented_override_plans_a_run(workdir, doc, command):
    words = shlex.split(command)
    words = words[3:] if words[:3] == ["python3", "tasks.py", "run"] else words[1:]
    while "--cores" in words:  # the test picks its own core count
        del words[words.index("--cores") : words.index("--cores") + 2]
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", *words],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"{doc}: {command}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
