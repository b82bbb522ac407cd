"""End to end on a real (single-node, local) SLURM cluster: the tiny config through the project's
SLURM profile, every cluster job checked in sacct, the outputs equal to a local run's.

The cluster comes from tools/slurm_local.sh (Debian's slurm-wlm, munge, slurmdbd, mariadb-server;
root). Without those binaries the test is skipped, except under CI=true, where it fails: CI
(.ci/run) installs them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import slurm_runs
from slurm_runs import (
    ACCOUNT,
    CLUSTER_ARGS,
    CONFIG,
    MODELS,
    PARTITION,
    run,
    unavailable_reason,
)

from hierpool import config as hpconfig
from hierpool import resources as hpresources

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

LOCAL_RULES = {"simulate", "diagnostics", "headline", "loo_plan"}
CLUSTER_RULES = {
    "clean",
    "fit",
    "refit",
    "compare",
    "variance_partition",
    "shrinkage",
    "recovery",
    "figures",
}


@pytest.fixture(scope="session")
def slurm_cluster():
    """Skip (or, under CI=true, fail) where the local cluster cannot run."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


def snakemake(workdir: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = run([sys.executable, "-m", "snakemake", *args], cwd=workdir, timeout=900)
    return result, time.monotonic() - start


@pytest.fixture(scope="module")
def runs(slurm_cluster) -> dict:
    """The same config and seed run locally and through SLURM, in two copies of the workflow
    (started when the tests were collected: tests/slurm_runs.py)."""
    out = slurm_runs.result()
    print(
        f"\nlocal SLURM cluster {out['cluster_note']}; both runs done {out['elapsed_s']:.0f} s after the start"
    )
    return out


def planned_jobs(log: str) -> dict[str, dict]:
    """Snakemake's job id -> {rule, local, wildcards, threads, resources} from its log."""
    jobs = {}
    for block in re.split(r"\n(?=\[\w{3} \w{3} )", log):
        match = re.search(
            r"^(local)?(?:rule|checkpoint) (\w+):\n((?:\s{4}.*\n?)*)", block, flags=re.M
        )
        if not match:
            continue
        fields = dict(re.findall(r"^\s{4}(\w+): (.*)$", match[3], flags=re.M))
        resources = dict(
            item.split("=", 1) for item in fields.get("resources", "").split(", ") if "=" in item
        )
        jobs[fields["jobid"]] = {
            "rule": match[2],
            "local": bool(match[1]),
            "wildcards": fields.get("wildcards", ""),
            "threads": int(fields.get("threads", 1)),
            "resources": resources,
        }
    return jobs


def sacct_jobs(run_id: str, expected: int) -> dict[str, dict]:
    """sacct's records of this run (jobs are named after the run's UUID); waits for slurmdbd to catch up."""
    fields = [
        "JobID",
        "JobName",
        "Account",
        "Partition",
        "State",
        "ReqMem",
        "ReqCPUS",
        "Timelimit",
        "Comment",
    ]
    deadline = time.monotonic() + 60
    while True:
        result = run(
            ["sacct", "-X", "-P", "-n", "--name", run_id, "-S", "now-1days", "-o", ",".join(fields)]
        )
        rows = [
            dict(zip(fields, line.split("|")))
            for line in result.stdout.splitlines()
            if line.strip()
        ]
        done = [
            r
            for r in rows
            if r["State"] not in ("PENDING", "RUNNING") and r["ReqMem"] and r["Timelimit"]
        ]
        if len(done) >= expected or time.monotonic() > deadline:
            return {r["JobID"]: r for r in rows}
        time.sleep(1)


def minutes_to_timelimit(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def test_every_cluster_job_ran_through_slurm_with_its_requested_resources(runs):
    log = runs["log"]
    run_id = re.search(r"SLURM run ID: (\S+)", log)[1]
    jobs = planned_jobs(log)
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    local_rules = {j["rule"] for j in jobs.values() if j["local"]}
    remote_rules = {j["rule"] for j in jobs.values() if not j["local"]}
    assert remote_rules == CLUSTER_RULES, remote_rules
    assert LOCAL_RULES <= local_rules and not local_rules & CLUSTER_RULES, local_rules
    assert {jid for jid, j in jobs.items() if not j["local"]} == set(submitted), (
        "every non-local job, and only those, is submitted"
    )
    records = sacct_jobs(run_id, len(submitted))
    assert set(records) == set(submitted.values()), (records, submitted)
    for jobid, slurm_id in submitted.items():
        job, record = jobs[jobid], records[slurm_id]
        wildcards = (
            "_".join(v.split("=", 1)[1] for v in job["wildcards"].split(", "))
            if job["wildcards"]
            else ""
        )
        assert record["State"] == "COMPLETED", record
        assert record["Comment"] == f"rule_{job['rule']}_wildcards_{wildcards}", record
        assert (record["Account"], record["Partition"]) == (ACCOUNT, PARTITION), record
        assert record["ReqMem"] == f"{job['resources']['mem_mb']}M", (job, record)
        assert int(record["ReqCPUS"]) == job["threads"], (job, record)
        assert record["Timelimit"] == minutes_to_timelimit(int(job["resources"]["runtime"])), (
            job,
            record,
        )


def test_fit_memory_and_time_come_from_the_data(runs):
    """The fits asked for what hierpool.resources computes from the clean data and the sampler settings."""
    jobs = [j for j in planned_jobs(runs["log"]).values() if j["rule"] == "fit"]
    assert sorted(j["wildcards"] for j in jobs) == [f"dataset=tiny, model={m}" for m in MODELS]
    rows = hpresources.count_rows(runs["cluster"] / "results/tiny/data/clean.csv")
    config = hpconfig_with_defaults(runs["cluster"])
    for job in jobs:
        model = job["wildcards"].split("model=")[1]
        formula = hpconfig.model_spec(config, "tiny", model)["formula"]
        sampler = hpconfig.sampler_settings(config, "tiny")
        assert int(job["resources"]["mem_mb"]) == hpresources.fit_mem_mb(rows, formula, sampler)
        assert int(job["resources"]["runtime"]) == hpresources.fit_runtime_min(
            rows, sampler, job["threads"]
        )
        assert job["threads"] == CONFIG["sampler"]["chains"]


def hpconfig_with_defaults(workdir: Path) -> dict:
    """The config as the workflow saw it (the report's config_used.json has the models and sampler)."""
    used = json.loads((workdir / "results/tiny/report/config_used.json").read_text())
    return {
        "datasets": {"tiny": {**CONFIG["datasets"]["tiny"], "sampler": used["sampler"]}},
        "models": used["models"],
        "sampler": used["sampler"],
    }


def test_cluster_outputs_equal_the_local_run(runs):
    """Same seed, same backend: the posterior draws are identical, so every table is too (timings aside)."""
    local, cluster = runs["local"], runs["cluster"]
    assert (local / "results/tiny/data/simulated.csv").read_bytes() == (
        cluster / "results/tiny/data/simulated.csv"
    ).read_bytes()
    assert (local / "results/tiny/data/clean.csv").read_bytes() == (
        cluster / "results/tiny/data/clean.csv"
    ).read_bytes()
    for model in MODELS:
        a = az.from_netcdf(local / f"results/tiny/fits/{model}.nc")
        b = az.from_netcdf(cluster / f"results/tiny/fits/{model}.nc")
        for group in ("posterior", "log_likelihood", "posterior_predictive", "prior"):
            left, right = getattr(a, group), getattr(b, group)
            assert set(left.data_vars) == set(right.data_vars)
            for var in left.data_vars:
                np.testing.assert_array_equal(
                    left[var].values, right[var].values, err_msg=f"{model} {group} {var}"
                )
    timing = ["wall_time_s", "sampling_time_s", "ess_per_second"]  # measured, so they differ
    for table in (
        "diagnostics/diagnostics.csv",
        "compare/compare.csv",
        "compare/loo.csv",
        "variance/icc.csv",
        "variance/bayes_r2.csv",
        "shrinkage/shrinkage.csv",
        "recovery/site_summary.csv",
    ):
        left, right = (pd.read_csv(root / "results/tiny" / table) for root in (local, cluster))
        left, right = (
            frame.drop(columns=[c for c in timing if c in frame]) for frame in (left, right)
        )
        pd.testing.assert_frame_equal(
            left, right, check_exact=False, rtol=1e-12, atol=1e-12, obj=table
        )
    heads = [
        json.loads((root / "results/tiny/report/headline.json").read_text())
        for root in (local, cluster)
    ]
    for head in heads:
        head.pop("created")  # a timestamp
    assert heads[0] == heads[1]


def test_job_logs_and_the_declared_history_are_written_by_the_cluster_jobs(runs):
    cluster = runs["cluster"]
    for model in MODELS:
        assert "Formula:" in (cluster / f"logs/tiny/fit/{model}.log").read_text()
        assert pd.read_csv(cluster / f"benchmarks/tiny/fit/{model}.tsv", sep="\t")["s"].iloc[0] > 0
    history = (cluster / "results/tiny/history/headlines.jsonl").read_text().splitlines()
    assert len(history) == 1


def test_a_failed_cluster_job_names_its_own_log_and_its_slurm_log(runs):
    cluster = runs["cluster"]
    broken = [
        "--config",
        "models={broken: {formula: 'scontrol ~ nosuchcolumn'}}",
        "datasets={tiny: {models: [broken]}}",
    ]
    result, _ = snakemake(
        cluster, *CLUSTER_ARGS, "--retries", "0", *broken, "--", "results/tiny/fits/broken.nc"
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(
        r"log: logs/tiny/fit/broken\.log, \S+/\.snakemake/slurm_logs/rule_fit/tiny_broken/\d+\.log",
        out,
    ), out[-4000:]
    assert "names column(s) ['nosuchcolumn']" in out  # the rule's log, printed by show-failed-logs
    assert not (cluster / "results/tiny/fits/broken.nc").exists()
