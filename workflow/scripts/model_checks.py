"""Snakemake glue: the checks of the saved fits (no refits): prior sensitivity, new-site predictions,
LOO-PIT (computed by the fit jobs) and posterior predictive checks by site, tables and figures."""

from hierpool.jobs import run_logged


def main(smk):
    import json

    import arviz as az
    import pandas as pd

    from hierpool import calibration, fitinfo, newsite, sensitivity
    from hierpool.clean import load_clean
    from hierpool.figures.checking import loo_pit_ecdf, new_site, ppc_sites
    from hierpool.figures.style import model_colors, save_figure
    from hierpool.io import write_csv
    from hierpool.loo import load_pit

    columns = dict(smk.params.columns)
    data = load_clean(smk.input.data, columns["group"])
    sites = data[columns["group"]].astype(str).to_numpy()
    with open(smk.input.summary) as f:
        scale = fitinfo.PredictorScale.from_summary(json.load(f))
    fits = {m: az.from_netcdf(p) for m, p in zip(smk.params.models, smk.input.fits)}
    dataset = smk.wildcards.dataset

    write_csv(smk.output.sensitivity, sensitivity.dataset_table(fits))

    table = newsite.dataset_table(fits, columns, scale, data, int(smk.params.seed))
    write_csv(smk.output.new_site, table)
    colors = model_colors({m: fitinfo.role(i, columns) for m, i in fits.items()})
    save_figure(new_site(table, colors, columns, dataset), smk.output.new_site_plot)

    pits = {m: load_pit(p) for m, p in zip(smk.params.models, smk.input.loos)}
    pits = {m: v for m, v in pits.items() if v is not None}
    pit_table = calibration.pit_table(pits, sites)
    write_csv(smk.output.pit, pit_table)
    save_figure(loo_pit_ecdf(pits, dataset), smk.output.pit_plot)
    ppc = [
        calibration.ppc_by_site(i, sites).assign(model=m)
        for m, i in fits.items()
        if "posterior_predictive" in i.groups()
    ]
    ppc = pd.concat(ppc, ignore_index=True) if ppc else pd.DataFrame(columns=["model"])
    write_csv(smk.output.ppc, ppc[["model", *[c for c in ppc.columns if c != "model"]]])
    save_figure(ppc_sites(ppc, dataset), smk.output.ppc_plot)
    print(pit_table[pit_table["site"] == "(all)"].to_string())


run_logged(snakemake, main)  # noqa: F821
