"""Snakemake glue: per-site estimates of every model, shrinkage weights and the shrinkage check, with figures."""

from hierpool.jobs import load_analysis, run_logged


def main(smk):
    from hierpool import shrinkage
    from hierpool.figures import shrinkage_arrows, shrinkage_by_n
    from hierpool.figures.style import save_figure
    from hierpool.io import write_csv, write_json

    job = load_analysis(smk)
    table = shrinkage.shrinkage_table(job.fits, job.site_data)
    summary = shrinkage.shrinkage_summary(table)
    write_csv(smk.output.table, table)
    write_json(smk.output.summary, summary)
    save_figure(shrinkage_by_n(table, job.columns, job.scale, job.dataset), smk.output.by_n_plot)
    save_figure(
        shrinkage_arrows(table, job.columns, job.scale, job.dataset), smk.output.arrows_plot
    )
    print(summary)


run_logged(snakemake, main)  # noqa: F821
