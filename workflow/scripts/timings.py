"""Snakemake glue: one table of the dataset's jobs' wall time and peak memory, from their benchmark files."""

from hierpool.jobs import run_logged


def main(smk):
    from hierpool.io import write_csv
    from hierpool.report.outputs import timings_table

    table = timings_table(list(smk.input.benchmarks), smk.params.root)
    write_csv(smk.output.table, table)
    print(table.to_string())


run_logged(snakemake, main)  # noqa: F821
