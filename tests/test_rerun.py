"""Reruns follow the raw data's content: an edit that keeps the file's modification time still reruns."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml
from conftest import copy_workflow

CONFIG = {
    "datasets": {
        "labs": {
            "path": "data/raw/labs.csv",
            "columns": {"outcome": "y", "predictor": "x", "group": "site"},
        }
    }
}


def snakemake(work, *args):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_content_change_with_the_same_mtime_reruns_cleaning(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "config/config.yaml").write_text(yaml.safe_dump(CONFIG))
    raw = work / "data/raw/labs.csv"
    raw.write_text("y,x,site\n" + "".join(f"{i % 5},{i % 3},lab{i % 4}\n" for i in range(40)))
    target = "results/labs/data/clean.csv"
    first = snakemake(work, target)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Nothing to be done" in snakemake(work, "-n", target).stdout
    stamp = os.stat(raw)
    edited = raw.read_text().replace("lab3\n", "lab9\n", 1)  # same size, other content
    raw.write_text(edited)
    os.utime(raw, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # what `cp -p` or `touch -r` do
    assert os.stat(raw).st_mtime_ns == stamp.st_mtime_ns
    plan = snakemake(work, "-n", target)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "rule clean:" in plan.stdout and "Nothing to be done" not in plan.stdout
