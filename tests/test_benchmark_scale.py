"""tools/benchmark_scale.py: sizes, simulated designs and the table it reads from Snakemake's benchmark files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from hierpool.simulate import SimulationSpec, site_sizes

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("benchmark_scale", ROOT / "tools/benchmark_scale.py")
bs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bs)


def test_sizes_parse_and_the_design_has_about_that_many_rows():
    assert bs.parse_size("100000x1000") == (100_000, 1000)
    assert bs.parse_size("1e6x10_000") == (1_000_000, 10_000)
    entry = bs.dataset_entry(100_000, 1000, ["varying_slopes"], seed=7)
    sizes = site_sizes(SimulationSpec(**entry["simulate"]), np.random.default_rng(7))
    assert len(sizes) == 1000 and abs(sizes.sum() - 100_000) < 3_000
    assert entry["models"] == ["varying_slopes"]


def test_stage_table_takes_the_slowest_job_of_each_stage(tmp_path):
    folder = tmp_path / "benchmarks/big"
    (folder / "fit").mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\n"
    (folder / "fit/a.tsv").write_text(header + "12.5\t0:00:12\t900.0\t1\n")
    (folder / "fit/b.tsv").write_text(header + "30.0\t0:00:30\t700.0\t1\n")
    (folder / "compare.tsv").write_text(header + "2.0\t0:00:02\t300.0\t1\n")
    bench = bs.read_benchmarks(tmp_path, "big")
    assert sorted(bench["stage"]) == ["compare", "fit", "fit"]
    stages = bench.groupby("stage").agg(s=("s", "max"), rss=("max_rss_mb", "max"))
    row = {
        "size": "1 × 1",
        "ok": True,
        "wall_s": 40.0,
        "stages": stages,
        "peak_rss_mb": 900.0,
        "results_mb": 1.5,
        "ess_per_s": "m: 10",
    }
    table = bs.markdown([row])
    assert "| fit s (MB) |" in table.splitlines()[0].replace("compare s (MB) | ", "")
    assert "30.0 (900)" in table and "2.0 (300)" in table
    assert isinstance(bench, pd.DataFrame)
