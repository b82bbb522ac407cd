#!/usr/bin/env python3
"""Benchmark the whole workflow at growing sizes: wall time per stage, peak memory, disk, ESS per second.

For each size ROWSxSITES it simulates a dataset of about ROWS rows in SITES sites (site sizes
spread geometrically over a fourfold range, 0.46 to 1.85 times the mean), runs the real workflow to that dataset's report
in a scratch copy (`snakemake --cores CORES`), and reads Snakemake's own `benchmark:` files,
so every number is the workflow's. It prints one markdown table: per size the whole run's
wall time, each stage's wall time and peak RSS (the fit: the largest over the models), the
results folder's size, and the fits' bulk ESS per second of sampling. Not a test: timings
depend on the machine.

    .venv/bin/python tools/benchmark_scale.py                          # 1000x20 10000x100
    .venv/bin/python tools/benchmark_scale.py 100000x1000 --models varying_slopes
    .venv/bin/python tools/benchmark_scale.py 1000x20 --sampler '{draws: 1000}' --keep
    .venv/bin/python tools/benchmark_scale.py 1000x20 10000x100 --brms   # and brms beside it

``--brms`` fits the same models to the same simulated rows (the workflow's `simulated.csv`)
with brms through Rscript (Debian: ``apt-get install r-cran-brms``), with the workflow's
chains, tuning and draws, and prints a second table per fit: hierpool's fit job (start to
saved fit, compilation included) beside brms's `brm()` call (compilation included), each with its
min bulk ESS, max R-hat and divergences. brms keeps its own default priors; the varying
slopes are uncorrelated in both (``(stress || site)`` in brms). R is a measuring tool here, not a
dependency of the workflow.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

COPY = ("workflow", "src", "config", "reports", "data/raw", "environment.yml")


def parse_size(text: str) -> tuple[int, int]:
    rows, sites = text.lower().replace(",", "").replace("_", "").split("x")
    return int(float(rows)), int(float(sites))


def dataset_entry(rows: int, sites: int, models: list[str], seed: int) -> dict:
    # The simulator spreads site sizes geometrically over [min, max]; with max = 4 min their
    # mean is 3 min / ln 4, so min = mean ln 4 / 3 gives about `rows` rows in all.
    low = max(1.0, rows / sites * np.log(4) / 3)
    size = {"min": max(1, round(low)), "max": max(1, round(4 * low))}
    return {
        "simulate": {"n_sites": sites, "site_size": size, "seed": seed},
        "columns": {"outcome": "scontrol", "predictor": "stress", "group": "site"},
        "models": models,
    }


def scratch_copy(work: Path) -> None:
    for name in COPY:
        src, dst = ROOT / name, work / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)


def stage_of(path: Path, dataset_dir: Path) -> str:
    """``fit/varying_slopes.tsv`` -> ``fit``; ``compare.tsv`` -> ``compare``."""
    return path.relative_to(dataset_dir).parts[0].removesuffix(".tsv")


def read_benchmarks(work: Path, dataset: str) -> pd.DataFrame:
    rows = []
    folder = work / "benchmarks" / dataset
    for path in sorted(folder.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "stage": stage_of(path, folder),
                "job": str(path.relative_to(folder)),
                "s": float(table["s"].iloc[0]),
                "max_rss_mb": float(pd.to_numeric(table["max_rss"], errors="coerce").iloc[0]),
            }
        )
    return pd.DataFrame(rows, columns=["stage", "job", "s", "max_rss_mb"])


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def ess_per_second(work: Path, dataset: str) -> str:
    diag = work / "results" / dataset / "diagnostics" / "diagnostics.csv"
    if not diag.is_file():
        return "–"
    table = pd.read_csv(diag)
    values = table["min_ess_bulk"] / table["sampling_time_s"]
    return ", ".join(f"{m}: {v:.0f}" for m, v in zip(table["model"], values))


def run_size(work: Path, rows: int, sites: int, args) -> dict:
    name = f"s{rows}x{sites}"
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["datasets"] = {name: dataset_entry(rows, sites, args.models, args.seed)}
    if args.sampler:
        config["sampler"] = {**config.get("sampler", {}), **yaml.safe_load(args.sampler)}
    configfile = work / f"{name}.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        str(args.cores),
        "--configfile",
        str(configfile),
        "--replace-workflow-config",
        f"results/{name}/report.html",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    bench = read_benchmarks(work, name)
    stages = bench.groupby("stage", sort=False).agg(s=("s", "max"), rss=("max_rss_mb", "max"))
    return {
        "size": f"{rows:,} × {sites:,}",
        "ok": result.returncode == 0,
        "error": "" if result.returncode == 0 else (result.stdout + result.stderr)[-3000:],
        "wall_s": wall,
        "stages": stages,
        "peak_rss_mb": float(bench["max_rss_mb"].max()) if len(bench) else float("nan"),
        "results_mb": folder_mb(work / "results" / name),
        "ess_per_s": ess_per_second(work, name),
    }


FORMULAS_BRMS = {  # the workflow's model names (config/config.yaml) as brms formulas
    "complete_pooling": "scontrol ~ stress",
    "varying_intercepts": "scontrol ~ stress + (1 | site)",
    "varying_slopes": "scontrol ~ stress + (stress || site)",
}
BRMS_SCRIPT = r"""
suppressPackageStartupMessages({library(brms); library(posterior); library(jsonlite)})
# Debian's r-cran-bh is a virtual package whose headers live in /usr/include (libboost-dev)
if (!file.exists(rstan::rstan_options("boost_lib")) && dir.exists("/usr/include/boost"))
  rstan::rstan_options(boost_lib = "/usr/include")
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1]); data$site <- factor(data$site)
chains <- as.integer(args[3]); warmup <- as.integer(args[4]); draws <- as.integer(args[5])
start <- Sys.time()
fit <- brm(as.formula(args[2]), data = data, chains = chains, cores = as.integer(args[6]),
           warmup = warmup, iter = warmup + draws, seed = 1, refresh = 0, silent = 2)
total <- as.numeric(difftime(Sys.time(), start, units = "secs"))
elapsed <- rstan::get_elapsed_time(fit$fit)
summ <- summarise_draws(as_draws_df(fit), "rhat", "ess_bulk")
summ <- summ[!grepl("^(lp__|lprior)", summ$variable), ]
np <- nuts_params(fit)
cat(toJSON(list(total_s = total, chain_s_max = max(rowSums(elapsed)),
                chain_s_sum = sum(elapsed), min_ess_bulk = min(summ$ess_bulk),
                max_rhat = max(summ$rhat),
                divergences = sum(np$Value[np$Parameter == "divergent__"])),
           auto_unbox = TRUE), "\n")
"""


def brms_fits(work: Path, name: str, models: list[str], args) -> list[dict]:
    """Each model fitted by brms to the rows the workflow simulated for ``name``."""
    import json

    sampler = yaml.safe_load((ROOT / "config/config.yaml").read_text()).get("sampler", {})
    if args.sampler:
        sampler = {**sampler, **yaml.safe_load(args.sampler)}
    script = work / "brms_fit.R"
    script.write_text(BRMS_SCRIPT)
    csv = work / "results" / name / "data" / "simulated.csv"
    rows = []
    for model in models:
        if model not in FORMULAS_BRMS:
            continue
        result = subprocess.run(
            ["Rscript", str(script), str(csv), FORMULAS_BRMS[model],
             str(sampler.get("chains", 4)), str(sampler.get("tune", 1000)),
             str(sampler.get("draws", 2000)), str(args.cores)],
            capture_output=True, text=True,
        )  # fmt: skip
        line = [x for x in result.stdout.splitlines() if x.startswith("{")]
        if result.returncode != 0 or not line:
            rows.append({"model": model, "error": (result.stdout + result.stderr)[-2000:]})
            continue
        rows.append({"model": model, **json.loads(line[-1])})
    return rows


def side_by_side(work: Path, name: str, size: str, brms: list[dict]) -> list[str]:
    """Markdown rows: per model hierpool's fit job beside brms's fit."""
    bench = read_benchmarks(work, name)
    diag_path = work / "results" / name / "diagnostics" / "diagnostics.csv"
    diag = pd.read_csv(diag_path).set_index("model") if diag_path.is_file() else None
    lines = []
    for fit in brms:
        model = fit["model"]
        job = bench[bench["job"] == f"fit/{model}.tsv"]
        ours = f"{job['s'].iloc[0]:.1f}" if len(job) else "–"
        d = diag.loc[model] if diag is not None and model in diag.index else None
        ours_q = (
            f"{d['min_ess_bulk']:.0f} / {d['max_rhat']:.3f} / {int(d['divergences'])}"
            if d is not None
            else "–"
        )
        if "error" in fit:
            lines.append(f"| {size} | {model} | {ours} | {ours_q} | FAILED | – | – |")
            print(fit["error"], file=sys.stderr)
            continue
        lines.append(
            f"| {size} | {model} | {ours} | {ours_q} | {fit['total_s']:.1f} | "
            f"{fit['chain_s_max']:.1f} | {fit['min_ess_bulk']:.0f} / {fit['max_rhat']:.3f} / "
            f"{int(fit['divergences'])} |"
        )
    return lines


SIDE_BY_SIDE_HEAD = [
    "| rows × sites | model | hierpool fit job s | hierpool min bulk ESS / max R-hat / divergences "
    "| brms `brm()` s | brms slowest chain s | brms min bulk ESS / max R-hat / divergences |",
    "|---|---|---:|---|---:|---:|---|",
]


def markdown(results: list[dict]) -> str:
    stages = []
    for r in results:
        stages += [s for s in r["stages"].index if s not in stages]
    head = ["rows × sites", "ok", "whole run s", *[f"{s} s (MB)" for s in stages]]
    head += ["peak RSS MB", "results MB", "bulk ESS/s (sampling)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["size"], "yes" if r["ok"] else "FAILED", f"{r['wall_s']:.0f}"]
        for stage in stages:
            if stage in r["stages"].index:
                row = r["stages"].loc[stage]
                cells.append(f"{row['s']:.1f} ({row['rss']:.0f})")
            else:
                cells.append("–")
        cells += [f"{r['peak_rss_mb']:.0f}", f"{r['results_mb']:.1f}", r["ess_per_s"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", default=["1000x20", "10000x100"])
    parser.add_argument("--models", nargs="+", default=["varying_intercepts", "varying_slopes"])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sampler", help="YAML mapping merged into the sampler settings")
    parser.add_argument(
        "--workdir", type=Path, help="scratch folder (default: a new temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--brms", action="store_true", help="fit the same models with brms (Rscript) beside"
    )
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hierpool-scale-"))
    if not (work / "workflow").exists():
        work.mkdir(parents=True, exist_ok=True)
        scratch_copy(work)
    print(f"# {platform.node()}, {platform.processor() or platform.machine()}, cores={args.cores}")
    print(f"# scratch folder: {work}; models: {' '.join(args.models)}", flush=True)
    results, compared = [], []
    for text in args.sizes:
        rows, sites = parse_size(text)
        results.append(run_size(work, rows, sites, args))
        print(markdown(results[-1:]), flush=True)
        if not results[-1]["ok"]:
            print(results[-1]["error"], file=sys.stderr)
        elif args.brms:
            name = f"s{rows}x{sites}"
            compared += side_by_side(
                work, name, results[-1]["size"], brms_fits(work, name, args.models, args)
            )
            print("\n".join([*SIDE_BY_SIDE_HEAD, *compared[-len(args.models) :]]), flush=True)
    print()
    print(markdown(results))
    if compared:
        print()
        print("\n".join([*SIDE_BY_SIDE_HEAD, *compared]))
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
