"""Snakemake glue: predictions for a new site from every partial- and complete-pooling fit, table and figure."""

from hierpool.smk import run_logged


def main(smk):
    import json

    import arviz as az

    from hierpool import effects as ef
    from hierpool.clean import load_clean
    from hierpool.figures.checking import new_site
    from hierpool.io import write_csv
    from hierpool.newsite import dataset_table
    from hierpool.plots import model_colors, save_figure

    columns = dict(smk.params.columns)
    data = load_clean(smk.input.data, columns["group"])
    with open(smk.input.summary) as f:
        scale = ef.PredictorScale.from_summary(json.load(f))
    fits = {m: az.from_netcdf(p) for m, p in zip(smk.params.models, smk.input.fits)}
    table = dataset_table(fits, columns, scale, data, int(smk.params.seed))
    write_csv(smk.output.table, table)
    colors = model_colors({m: ef.role(i, columns) for m, i in fits.items()})
    save_figure(new_site(table, colors, columns, smk.wildcards.dataset), smk.output.plot)
    print(table.to_string())


run_logged(snakemake, main)  # noqa: F821
