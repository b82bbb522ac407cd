"""The two runs tests/test_slurm.py checks: the tiny config locally and through the local SLURM cluster.

Like the shared e2e run (tests/conftest.py), they start in the background when the tests are
collected (`start`), so they run beside the unit tests instead of after them; the ``runs``
fixture waits for them (`result`), and `stop` ends whatever is left when the session finishes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools/slurm_local.sh"
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
SLURM_ENV = {
    "SLURM_CONF": str(
        Path(os.environ.get("HIERPOOL_SLURM_DIR", "/tmp/hierpool-slurm")) / "slurm.conf"
    )
}
CLUSTER_ARGS = [
    "--workflow-profile", "workflow/profiles/slurm",
    "--slurm-init-seconds-before-status-checks", "1",  # the profile's 10 s would add ~10 s per job wave here
    "--default-resources", f"slurm_account={ACCOUNT}", f"slurm_partition={PARTITION}",
]  # fmt: skip
RUN_TIMEOUT_S = 2400  # beside the unit tests and the shared e2e run, on two cores
_STATE: dict = {}


def missing_binaries() -> list[str]:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [name for name in BINARIES if shutil.which(name, path=path) is None]


def unavailable_reason() -> str | None:
    """Why the local cluster cannot run here (None when it can)."""
    missing = missing_binaries()
    if missing:
        return (
            f"SLURM binaries absent ({', '.join(missing)}): apt-get install -y --no-install-recommends "
            "slurm-wlm munge slurmdbd mariadb-server"
        )
    if os.geteuid() != 0:
        return "the local SLURM cluster (tools/slurm_local.sh) needs root"
    return None


def environment() -> dict:
    env = {**os.environ, **SLURM_ENV}
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), env.get("PATH", ""), "/usr/sbin", "/sbin"]
    )
    return env


def run(args: list[str], cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _workflow_copy(parent: Path, name: str) -> Path:
    from conftest import copy_workflow

    work = parent / name
    work.mkdir()
    copy_workflow(work)
    (work / "config/config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return work


def _popen(work: Path, *args: str) -> subprocess.Popen:
    log = open(work / "run.log", "w")  # noqa: SIM115 - closed in result()
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args],
        cwd=work,
        env=environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def start() -> None:
    """Bring the cluster up (unless it is up already) and start both runs; errors wait for `result`."""
    if _STATE:
        return
    _STATE["started"] = time.monotonic()
    already_up = run(["bash", str(SCRIPT), "status"]).returncode == 0
    _STATE["we_started_cluster"] = not already_up
    if not already_up:
        up = run(["bash", str(SCRIPT), "up"], timeout=300)
        if up.returncode != 0:
            run(["bash", str(SCRIPT), "down"])
            _STATE["error"] = f"tools/slurm_local.sh up failed:\n{up.stdout}\n{up.stderr}"
            return
    _STATE["cluster_note"] = (
        "reused" if already_up else f"up in {time.monotonic() - _STATE['started']:.1f} s"
    )
    parent = Path(tempfile.mkdtemp(prefix="hierpool-slurm-runs-"))
    _STATE["parent"] = parent
    local, cluster = _workflow_copy(parent, "local"), _workflow_copy(parent, "cluster")
    _STATE["dirs"] = {"local": local, "cluster": cluster}
    # at the same time: the cluster run spends most of its time waiting on submissions and status
    # checks, so the local run fits beside it (one after the other they took 159 s + 280 s)
    _STATE["processes"] = {
        "local": _popen(local, "--cores", "1", *TARGETS),
        "cluster": _popen(cluster, *CLUSTER_ARGS, "--", *TARGETS),
    }


def result() -> dict:
    """Wait for both runs: ``{"local": dir, "cluster": dir, "log": the cluster run's output, ...}``.

    Raises AssertionError with the end of a failed run's output.
    """
    start()
    if "error" in _STATE:
        raise AssertionError(_STATE["error"])
    out = {**_STATE["dirs"], "cluster_note": _STATE["cluster_note"]}
    for name, process in _STATE["processes"].items():
        returncode = process.wait(timeout=RUN_TIMEOUT_S)
        log = (_STATE["dirs"][name] / "run.log").read_text()
        assert returncode == 0, f"{name} run failed:\n{log[-6000:]}"
        if name == "cluster":
            out["log"] = log
    out["elapsed_s"] = time.monotonic() - _STATE["started"]
    return out


def stop() -> None:
    """End unfinished runs, bring down a cluster that `start` brought up, delete the copies."""
    for process in _STATE.get("processes", {}).values():
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)
    if _STATE.get("we_started_cluster") and "error" not in _STATE:
        run(["bash", str(SCRIPT), "down", "--purge"], timeout=120)
    if "parent" in _STATE:
        shutil.rmtree(_STATE["parent"], ignore_errors=True)
    _STATE.clear()
