"""Snakemake glue: per-site estimates of every model, shrinkage weights and the shrinkage check, with figures."""

from hierpool.smk import load_analysis, run_logged


def main(smk):
    from hierpool import shrinkage as sh
    from hierpool.figures import shrinkage_arrows, shrinkage_by_n
    from hierpool.io import write_csv, write_json
    from hierpool.plots import save_figure

    job = load_analysis(smk)
    table = sh.shrinkage_table(job.fits, job.data, job.columns, job.scale)
    summary = sh.shrinkage_summary(table)
    write_csv(smk.output.table, table)
    write_json(smk.output.summary, summary)
    save_figure(shrinkage_by_n(table, job.columns, job.scale, job.dataset), smk.output.by_n_plot)
    save_figure(
        shrinkage_arrows(table, job.columns, job.scale, job.dataset), smk.output.arrows_plot
    )
    print(summary)


run_logged(snakemake, main)  # noqa: F821
