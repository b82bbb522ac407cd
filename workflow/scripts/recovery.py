"""Snakemake glue (simulated datasets): compare population parameters and site effects with the known truth."""

from hierpool.smk import run_logged


def main(smk):
    import arviz as az

    from hierpool import recovery as rc
    from hierpool.clean import load_clean
    from hierpool.effects import PredictorScale
    from hierpool.figures import recovery_sites
    from hierpool.io import read_json, write_csv, write_json
    from hierpool.plots import save_figure

    columns = dict(smk.params.columns)
    data = load_clean(smk.input.data, columns["group"])
    scale = PredictorScale.from_summary(read_json(smk.input.summary))
    truth = read_json(smk.input.truth)
    fits = {m: az.from_netcdf(p) for m, p in zip(smk.params.models, smk.input.fits)}

    population = rc.population_recovery(fits, truth, columns, scale)
    sites = rc.site_recovery(fits, data, truth, columns, scale)
    summary = rc.site_recovery_summary(sites)
    verdict = rc.recovery_verdict(population, summary)
    write_csv(smk.output.population, population)
    write_csv(smk.output.sites, sites)
    write_csv(smk.output.summary, summary)
    write_json(smk.output.verdict, verdict)
    save_figure(recovery_sites(sites, columns, scale, smk.wildcards.dataset), smk.output.plot)
    print(population.to_string(), summary.to_string(), verdict, sep="\n\n")
    for parameter, comparison in verdict["no_vs_partial_pooling"].items():
        if not all(comparison["partial_pooling_lower"].values()):
            print(f"WARNING: partial pooling does not beat no pooling on site {parameter}s: {comparison}")


run_logged(snakemake, main)  # noqa: F821
