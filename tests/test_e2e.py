"""End to end: the real workflow on a tiny config (few draws) in a temporary copy, outputs checked by content."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import arviz as az
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["complete_pooling", "no_pooling", "varying_intercepts", "varying_slopes"]
pytestmark = pytest.mark.e2e

TINY_CONFIG = {
    "datasets": {
        "tiny": {
            "simulate": {"n_sites": 6, "site_size": {"min": 3, "max": 40}, "seed": 7},
            "columns": {"outcome": "scontrol", "predictor": "stress", "group": "site"},
        },
        "radon": {
            "path": "data/raw/radon.csv",
            "columns": {"outcome": "log_radon", "predictor": "floor", "group": "county"},
            "cleaning": {"min_obs_per_site": 1, "center": False},
        },
    },
    "sampler": {"draws": 100, "tune": 150, "chains": 2, "prior_predictive_draws": 20, "posterior_predictive_draws": 40},
}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir, capture_output=True, text=True, timeout=1500,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("e2e")
    for name in ("Snakefile", "environment.yml"):
        shutil.copy(ROOT / name, work / name)
    for name in ("workflow", "src", "config"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    (work / "data/raw").mkdir(parents=True)
    shutil.copy(ROOT / "data/raw/radon.csv", work / "data/raw/radon.csv")
    (work / "config/config.yaml").write_text(yaml.safe_dump(TINY_CONFIG, sort_keys=False))
    result = snakemake(work)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return work


def test_cleaning_summaries_describe_each_dataset(workdir):
    radon = json.loads((workdir / "results/radon/data/cleaning_summary.json").read_text())
    assert radon["rows_in"] == 919 and radon["rows_out"] == 919 and radon["sites_kept"] == 85
    assert radon["predictor"]["centered"] is False
    tiny = json.loads((workdir / "results/tiny/data/cleaning_summary.json").read_text())
    truth = json.loads((workdir / "results/tiny/data/truth.json").read_text())
    assert tiny["sites_kept"] == 6 and tiny["rows_out"] == sum(s["n"] for s in truth["sites"])
    assert abs(tiny["predictor"]["center"] - pd.read_csv(workdir / "results/tiny/data/simulated.csv")["stress"].mean()) < 1e-9


def test_every_fit_holds_log_likelihood_and_predictive_draws(workdir):
    for dataset, n_obs in (("tiny", None), ("radon", 919)):
        for model in MODELS:
            idata = az.from_netcdf(workdir / f"results/{dataset}/fits/{model}.nc")
            assert {"posterior", "log_likelihood", "posterior_predictive", "prior", "prior_predictive"} <= set(idata.groups())
            assert idata.posterior.sizes["draw"] == 100 and idata.posterior.sizes["chain"] == 2
            if n_obs:
                assert idata.log_likelihood["log_radon"].sizes["__obs__"] == n_obs
            priors = json.loads((workdir / f"results/{dataset}/fits/{model}_priors.json").read_text())
            assert priors["model"] == model and priors["priors"]


def test_radon_varying_intercepts_lands_near_the_reference(workdir):
    idata = az.from_netcdf(workdir / "results/radon/fits/varying_intercepts.nc")
    post = idata.posterior
    # lme4 reference (shared/README): intercept 1.492, floor -0.663, county SD 0.315, residual 0.726
    assert abs(float(post["Intercept"].mean()) - 1.492) < 0.1
    assert abs(float(post["floor"].mean()) + 0.663) < 0.1
    assert abs(float(post["1|county_sigma"].mean()) - 0.315) < 0.12
    assert abs(float(post["sigma"].mean()) - 0.726) < 0.05


def test_diagnostics_and_comparison_cover_every_model(workdir):
    for dataset in ("tiny", "radon"):
        diag = pd.read_csv(workdir / f"results/{dataset}/diagnostics/diagnostics.csv")
        assert sorted(diag["model"]) == sorted(MODELS)
        assert {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi", "wall_time_s", "ess_per_second", "passed"} <= set(diag.columns)
        verdict = json.loads((workdir / f"results/{dataset}/diagnostics/convergence.json").read_text())
        assert verdict["policy"] == "warn" and set(verdict["passed_models"]) | set(verdict["failed_models"]) == set(MODELS)
        table = pd.read_csv(workdir / f"results/{dataset}/compare/compare.csv")
        assert sorted(table["model"]) == sorted(MODELS) and sorted(table["rank"]) == [0, 1, 2, 3]
        assert abs(table["weight"].sum() - 1) < 1e-6
        loo = pd.read_csv(workdir / f"results/{dataset}/compare/loo.csv")
        assert (loo[["k_good", "k_ok", "k_bad", "k_very_bad"]].sum(axis=1) == loo["n_obs"]).all()
        assert (workdir / f"results/{dataset}/compare/loo_comparison.png").stat().st_size > 10_000
    radon = pd.read_csv(workdir / "results/radon/compare/compare.csv").set_index("model")
    assert radon.loc["varying_intercepts", "elpd_loo"] > radon.loc["complete_pooling", "elpd_loo"]


def test_logs_and_benchmarks_are_written(workdir):
    assert "Formula: log_radon ~ floor + (1|county)" in (workdir / "logs/radon/fit/varying_intercepts.log").read_text()
    bench = pd.read_csv(workdir / "benchmarks/radon/fit/varying_intercepts.tsv", sep="\t")
    assert bench["s"].iloc[0] > 0


def test_second_run_has_nothing_to_do(workdir):
    result = snakemake(workdir, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_editing_one_dataset_reruns_only_that_dataset(workdir):
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    config["datasets"]["tiny"]["simulate"]["seed"] = 8
    (workdir / "config/changed.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "-n", "--configfile", "config/changed.yaml")
    assert result.returncode == 0, result.stderr
    planned = [line.split("results/")[1].split("/")[0] for line in result.stdout.splitlines()
               if line.strip().startswith("output: results/")]
    assert planned and set(planned) == {"tiny"}
