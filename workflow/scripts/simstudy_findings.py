"""Snakemake glue: the simulation study's findings as numbers (findings.json), computed from the summary tables.

The words that state them are written in reports/simulation_study.qmd.
"""

from hierpool.jobs import run_logged


def main(smk):
    from pathlib import Path

    import pandas as pd

    from hierpool.io import write_json
    from hierpool.simstudy import findings

    tables = {
        name: pd.read_csv(getattr(smk.input, name))
        for name in ("mse", "mse_by_size", "coverage", "tau")
    }
    result = findings(tables, dict(smk.params.study), max(smk.params.levels))
    write_json(smk.output.json, result)
    print(Path(smk.output.json).read_text())


run_logged(snakemake, main)  # noqa: F821
