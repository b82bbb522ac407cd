#!/usr/bin/env python3
"""Benchmark the NUTS backends on the default models: wall time (compile and sampling), ESS, divergences.

compile_s is everything before the first draw (model compilation, PyMC/nutpie set-up and
initialisation): the fit's wall time minus the sampler's own `sampling_time`.

Fits every model of config/config.yaml to a dataset with each backend and prints one row
per model and backend. It runs the same code path as the workflow (hierpool.fit.sample),
so its numbers are the workflow's. Not a test: timings depend on the machine.

    .venv/bin/python tools/benchmark_backends.py                      # default simulated dataset
    .venv/bin/python tools/benchmark_backends.py --dataset five_sites # 5 sites of 6..174 rows
    .venv/bin/python tools/benchmark_backends.py --dataset radon --backends nutpie
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from snakemake.utils import validate  # noqa: E402

from hierpool import config as hpconfig  # noqa: E402
from hierpool.clean import CleaningOptions, clean, read_raw  # noqa: E402
from hierpool.diagnostics import fit_diagnostics  # noqa: E402
from hierpool.fit import drop_per_observation, sample  # noqa: E402
from hierpool.models import build_model  # noqa: E402
from hierpool.simulate import SimulationSpec, simulate  # noqa: E402

# The shape of a real 5-site study where Bambi's defaults diverged: 415 rows, sites of 6 to 174.
FIVE_SITES = {"n_sites": 5, "site_size": [6, 30, 80, 125, 174], "seed": 5}


def load_config() -> dict:
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    if "site_sd_prior_scale" not in config:
        config["site_sd_prior_scale"] = 1.0
    return config


def dataset_frame(config: dict, name: str) -> tuple[pd.DataFrame, dict]:
    if name == "five_sites":
        columns = hpconfig.dataset_columns(config, "simulated")
        spec = {**config["datasets"]["simulated"]["simulate"], **FIVE_SITES}
        raw, _ = simulate(SimulationSpec.from_config(spec), columns)
        raw = raw.astype(str)
        options = CleaningOptions.from_config(config["cleaning"])
    else:
        entry = config["datasets"][name]
        columns = hpconfig.dataset_columns(config, name)
        if "simulate" in entry:
            raw, _ = simulate(SimulationSpec.from_config(entry["simulate"]), columns)
            raw = raw.astype(str)
        else:
            raw = read_raw(ROOT / entry["path"])
        options = CleaningOptions.from_config(hpconfig.cleaning_options(config, name))
    return clean(raw, columns, options, source=name).data, columns


def run(args) -> pd.DataFrame:
    config = load_config()
    base = "simulated" if args.dataset == "five_sites" else args.dataset
    data, columns = dataset_frame(config, args.dataset)
    rows = []
    for backend in args.backends:
        sampler = {**hpconfig.sampler_settings(config, base), "backend": backend}
        for key in ("draws", "tune", "chains", "target_accept"):
            if getattr(args, key) is not None:
                sampler[key] = getattr(args, key)
        sampler = hpconfig.resolve_target_accept(sampler, data[columns["group"]].nunique())
        for model_name in hpconfig.dataset_models(config, base):
            spec = {**config["models"][model_name], "name": model_name}
            spec["formula"] = hpconfig.render_formula(spec["formula"], columns, model_name)
            model = build_model(spec, data, config.get("site_sd_prior_scale"))
            start = time.perf_counter()
            idata = sample(model, sampler, cores=args.cores)
            total_s = time.perf_counter() - start
            drop_per_observation(idata)
            idata.posterior.attrs["hierpool_fit_wall_s"] = total_s
            diag = fit_diagnostics(idata)
            sampling_s = diag["sampling_time_s"]
            rows.append(
                {
                    "model": model_name,
                    "backend": backend,
                    "compile_s": round(total_s - sampling_s, 1),
                    "sampling_s": round(sampling_s, 1),
                    "total_s": round(total_s, 1),
                    "min_ess_bulk": round(diag["min_ess_bulk"]),
                    "min_ess_tail": round(diag["min_ess_tail"]),
                    "ess_bulk_per_s": round(diag["ess_per_second"], 1),
                    "ess_bulk_per_total_s": round(diag["min_ess_bulk"] / total_s, 1),
                    "divergences": diag["divergences"],
                    "max_rhat": round(diag["max_rhat"], 3),
                }
            )
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset", default="simulated", help="a dataset of config/config.yaml, or five_sites"
    )
    parser.add_argument(
        "--backends", nargs="+", default=["nutpie", "pymc"], choices=["nutpie", "pymc"]
    )
    parser.add_argument("--cores", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--draws", type=int)
    parser.add_argument("--tune", type=int)
    parser.add_argument("--chains", type=int)
    parser.add_argument("--target-accept", dest="target_accept", type=float)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(
        f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"dataset {args.dataset}; cores per fit {args.cores}"
    )
    table = run(args)
    print(
        "\n" + table.to_markdown(index=False)
        if hasattr(table, "to_markdown")
        else table.to_string(index=False)
    )


if __name__ == "__main__":
    main()
