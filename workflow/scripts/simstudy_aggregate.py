"""Snakemake glue: gather every replicate of the simulation study into summary tables with Monte Carlo SEs."""

from hierpool.jobs import run_logged


def main(smk):
    import pandas as pd

    from hierpool.io import read_json, write_csv
    from hierpool.simstudy import aggregate

    records = [read_json(path) for path in smk.input.records]
    replicates = pd.DataFrame(
        [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in records]
    )
    sites = pd.concat([pd.read_csv(path) for path in smk.input.sites], ignore_index=True)
    tables = aggregate(replicates, sites, tuple(smk.params.levels))
    write_csv(smk.output.replicates, replicates, float_format="%.8g")
    write_csv(smk.output.sites, sites, float_format="%.8g")
    for name, table in tables.items():
        write_csv(getattr(smk.output, name), table, float_format="%.6g")
    print(f"{len(replicates)} replicates, {len(sites)} site estimates, grid {smk.params.grid!r}")
    print(tables["mse"].to_string())


run_logged(snakemake, main)  # noqa: F821
