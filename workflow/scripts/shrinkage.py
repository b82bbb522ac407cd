"""Snakemake glue: per-site estimates of every model, shrinkage weights and the shrinkage check, with figures."""

from hierpool.smk import run_logged


def main(smk):
    import arviz as az

    from hierpool import shrinkage as sh
    from hierpool.clean import load_clean
    from hierpool.effects import PredictorScale
    from hierpool.figures import shrinkage_arrows, shrinkage_by_n
    from hierpool.io import read_json, write_csv, write_json
    from hierpool.plots import save_figure

    columns = dict(smk.params.columns)
    data = load_clean(smk.input.data, columns["group"])
    scale = PredictorScale.from_summary(read_json(smk.input.summary))
    fits = {m: az.from_netcdf(p) for m, p in zip(smk.params.models, smk.input.fits)}

    estimates = sh.site_estimates(fits, data, columns, scale)
    table = sh.shrinkage_table(fits, data, columns, scale)
    summary = sh.shrinkage_summary(table)
    write_csv(smk.output.estimates, estimates)
    write_csv(smk.output.table, table)
    write_json(smk.output.summary, summary)
    dataset = smk.wildcards.dataset
    save_figure(shrinkage_by_n(table, columns, scale, dataset), smk.output.by_n_plot)
    save_figure(shrinkage_arrows(table, columns, scale, dataset), smk.output.arrows_plot)
    print(summary)


run_logged(snakemake, main)  # noqa: F821
