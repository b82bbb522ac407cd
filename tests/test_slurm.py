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
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_workflow

from hierpool import config as hpconfig
from hierpool import resources as hpresources

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools/slurm_local.sh"
pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

BINARIES = (
    "sbatch",
    "sacct",
    "sacctmgr",
    "sinfo",
    "slurmctld",
    "slurmd",
    "slurmdbd",
    "munged",
    "mariadbd",
)
ACCOUNT, PARTITION = "hierpool", "debug"
MODELS = ["no_pooling", "varying_intercepts"]
CONFIG = {  # one small simulated dataset, two models (enough for every analysis rule), few draws
    "datasets": {
        "tiny": {
            "simulate": {"n_sites": 6, "site_size": {"min": 3, "max": 40}, "seed": 7},
            "columns": {"outcome": "scontrol", "predictor": "stress", "group": "site"},
            "models": MODELS,
        }
    },
    "sampler": {
        "draws": 100,
        "tune": 150,
        "chains": 2,
        "prior_predictive_draws": 20,
        "posterior_predictive_draws": 40,
    },
    # few refits for the high Pareto k (they run as cluster jobs: no moment matching first, which
    # could leave none); no leave-one-site-out
    "checking": {"max_moment_match": 0, "max_refits": 2, "kfold_folds": 2, "loso_folds": 0},
}
# Everything but the HTML report (a local rule either way, and the slowest to render).
TARGETS = ["results/tiny/report/headline.json"]
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
SLURM_ENV = {
    "SLURM_CONF": str(
        Path(os.environ.get("HIERPOOL_SLURM_DIR", "/tmp/hierpool-slurm")) / "slurm.conf"
    )
}


def missing_binaries() -> list[str]:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [name for name in BINARIES if shutil.which(name, path=path) is None]


def unavailable_reason() -> str | None:
    missing = missing_binaries()
    if missing:
        return (
            f"SLURM binaries absent ({', '.join(missing)}): apt-get install -y --no-install-recommends "
            "slurm-wlm munge slurmdbd mariadb-server"
        )
    if os.geteuid() != 0:
        return "the local SLURM cluster (tools/slurm_local.sh) needs root"
    return None


def run(
    args: list[str], cwd: Path = ROOT, timeout: int = 600, **env
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **SLURM_ENV, **env}
    full_env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), full_env.get("PATH", ""), "/usr/sbin", "/sbin"]
    )
    return subprocess.run(
        args,
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running local cluster: reuse one that is up already, else start one and tear it down at the end."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    already_up = run(["bash", str(SCRIPT), "status"]).returncode == 0
    started = time.monotonic()
    if not already_up:
        result = run(["bash", str(SCRIPT), "up"], timeout=300)
        if result.returncode != 0:
            run(["bash", str(SCRIPT), "down"])
            pytest.fail(f"tools/slurm_local.sh up failed:\n{result.stdout}\n{result.stderr}")
    print(
        f"\nlocal SLURM cluster {'reused' if already_up else f'up in {time.monotonic() - started:.1f} s'}"
    )
    yield
    if not already_up:
        result = run(["bash", str(SCRIPT), "down", "--purge"], timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def snakemake(workdir: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = run([sys.executable, "-m", "snakemake", *args], cwd=workdir, timeout=900)
    return result, time.monotonic() - start


def workflow_copy(tmp_path_factory, name: str) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp(name))
    (work / "config/config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return work


CLUSTER_ARGS = [
    "--workflow-profile", "workflow/profiles/slurm",
    "--slurm-init-seconds-before-status-checks", "1",  # the profile's 10 s would add ~10 s per job wave here
    "--default-resources", f"slurm_account={ACCOUNT}", f"slurm_partition={PARTITION}",
]  # fmt: skip


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory) -> dict:
    """The same config and seed run locally and through SLURM, in two copies of the workflow."""
    local, cluster = (
        workflow_copy(tmp_path_factory, "local"),
        workflow_copy(tmp_path_factory, "cluster"),
    )
    # at the same time: the cluster run spends most of its time waiting on submissions and status
    # checks, so the local run fits beside it (one after the other they took 159 s + 280 s)
    with ThreadPoolExecutor(max_workers=2) as pool:
        local_job = pool.submit(snakemake, local, "--cores", "1", *TARGETS)
        cluster_job = pool.submit(snakemake, cluster, *CLUSTER_ARGS, "--", *TARGETS)
        (local_result, local_s), (cluster_result, cluster_s) = (
            local_job.result(),
            cluster_job.result(),
        )
    assert local_result.returncode == 0, local_result.stdout[-3000:] + local_result.stderr[-3000:]
    log = cluster_result.stdout + cluster_result.stderr
    assert cluster_result.returncode == 0, log[-6000:]
    print(f"\ntiny config: local run {local_s:.1f} s, SLURM run {cluster_s:.1f} s")
    return {"local": local, "cluster": cluster, "log": log}


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
