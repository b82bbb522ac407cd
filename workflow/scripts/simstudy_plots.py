"""Snakemake glue: figures of the simulation study (MSE against tau, shrinkage against n, full vs empirical Bayes, coverage)."""

from hierpool.jobs import run_logged


def main(smk):
    import pandas as pd

    from hierpool import simstudy
    from hierpool.figures.style import save_figure

    mse = pd.read_csv(smk.input.mse)
    sites = pd.read_csv(smk.input.sites)
    coverage = pd.read_csv(smk.input.coverage)
    save_figure(simstudy.plot_mse_vs_tau(mse), smk.output.mse)
    save_figure(simstudy.plot_shrinkage_vs_n(sites), smk.output.shrinkage)
    save_figure(simstudy.plot_fb_vs_eb(sites), smk.output.fb_vs_eb)
    save_figure(simstudy.plot_coverage(coverage, max(smk.params.levels)), smk.output.coverage)


run_logged(snakemake, main)  # noqa: F821
