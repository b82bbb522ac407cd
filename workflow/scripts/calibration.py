"""Snakemake glue: LOO-PIT (computed by the fit jobs) and posterior predictive checks by site, tables and figures."""

from hierpool.smk import run_logged


def main(smk):
    import arviz as az
    import pandas as pd

    from hierpool import calibration
    from hierpool.clean import load_clean
    from hierpool.figures.checking import loo_pit_ecdf, ppc_sites
    from hierpool.io import write_csv
    from hierpool.loo import load_pit
    from hierpool.plots import save_figure

    group = smk.params.columns["group"]
    sites = load_clean(smk.input.data, group)[group].astype(str).to_numpy()
    pits = {}
    for model, path in zip(smk.params.models, smk.input.loos):
        pit = load_pit(path)
        if pit is not None:
            pits[model] = pit
    ppc = []
    for model, path in zip(smk.params.models, smk.input.fits):
        idata = az.from_netcdf(path)
        if "posterior_predictive" in idata.groups():
            ppc.append(calibration.ppc_by_site(idata, sites).assign(model=model))
    ppc = pd.concat(ppc, ignore_index=True) if ppc else pd.DataFrame(columns=["model"])
    ppc = ppc[["model", *[c for c in ppc.columns if c != "model"]]]
    table = calibration.pit_table(pits, sites)
    write_csv(smk.output.pit, table)
    write_csv(smk.output.ppc, ppc)
    save_figure(loo_pit_ecdf(pits, smk.wildcards.dataset), smk.output.pit_plot)
    save_figure(ppc_sites(ppc, smk.wildcards.dataset), smk.output.ppc_plot)
    print(table[table["site"] == "(all)"].to_string())


run_logged(snakemake, main)  # noqa: F821
