"""The workflow as a whole: dry-run and lint on the shipped config, formatting, and the CI entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dry_run_of_the_default_config_plans_every_stage():
    result = snakemake("-n", "--forceall", "--cores", "4")
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    import re

    planned = set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", out, flags=re.M))
    stages = {
        "simulate",
        "clean",
        "fit",
        "diagnostics",
        "compare",
        "variance_partition",
        "shrinkage",
        "recovery",
        "figures",
        "headline",
        "report",
        # model checking (checking.smk); the refits follow their checkpoints' plans
        "loo_plan",
        "loso_plan",
        "model_checks",
    }
    assert stages <= planned, stages - planned
    assert "results/radon/fits/varying_slopes.nc" in out and "results/radon/fits/uranium.nc" in out
    assert (
        "results/simulated/fits/no_pooling.nc" in out
        and "results/eight_schools/fits/schools_partial.nc" in out
    )
    assert "results/simulated_binary/report.html" in out


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_snakefmt_is_clean():
    files = [
        str(ROOT / "workflow/Snakefile"),
        *map(str, sorted((ROOT / "workflow/rules").glob("*.smk"))),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", *files], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_config_value_stops_the_run_naming_the_key():
    result = snakemake("-n", "--config", "sampler={'draws': 'many'}")
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "['sampler']['draws']" in message and "'many' is not of type 'integer'" in message


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert "python3 tasks.py test" in readme
    assert "python3 tasks.py test" in ci


def test_a_plain_snakemake_loads_the_default_profile():
    """`workflow/Snakefile` is where Snakemake looks, so `workflow/profiles/default` (rerun-incomplete) applies."""
    result = snakemake("-n")
    assert result.returncode == 0, result.stderr + result.stdout
    assert (
        "Using workflow specific profile workflow/profiles/default" in result.stdout + result.stderr
    )
