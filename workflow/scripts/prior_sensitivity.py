"""Snakemake glue: power-scaling prior sensitivity of every fit (hierpool.sensitivity), one table."""

from hierpool.smk import run_logged


def main(smk):
    import arviz as az

    from hierpool.io import write_csv
    from hierpool.sensitivity import dataset_table

    fits = {m: az.from_netcdf(p) for m, p in zip(smk.params.models, smk.input.fits)}
    table = dataset_table(fits)
    write_csv(smk.output.table, table)
    print(table.to_string())


run_logged(snakemake, main)  # noqa: F821
