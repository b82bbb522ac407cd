"""Snakemake glue: the data, prior/posterior line, forest, posterior predictive and rank-plot figures of a dataset."""

from hierpool.smk import run_logged


def main(smk):
    import arviz as az

    from hierpool import effects as ef
    from hierpool import figures as fg
    from hierpool.clean import load_clean
    from hierpool.io import read_json
    from hierpool.plots import save_figure
    from hierpool.shrinkage import site_estimates

    columns = dict(smk.params.columns)
    dataset = smk.wildcards.dataset
    data = load_clean(smk.input.data, columns["group"])
    scale = ef.PredictorScale.from_summary(read_json(smk.input.summary))
    fits = {m: az.from_netcdf(p) for m, p in zip(smk.params.models, smk.input.fits)}
    families = {ef.family(i, columns): m for m, i in reversed(list(fits.items()))}  # first model of each family
    main_model = next((families[f] for f in ("varying_slopes", "varying_intercepts", "no_pooling", "complete_pooling") if f in families))
    references = {families[f]: fits[families[f]] for f in ("no_pooling",) if f in families and families[f] != main_model}
    panels = int(smk.params.max_panels)

    save_figure(fg.observations_per_site(data, columns, dataset), smk.output.observations)
    save_figure(fg.outcome_vs_predictor(data, columns, scale, dataset, max_panels=panels), smk.output.scatter)
    save_figure(fg.prior_lines(fits[main_model], data, columns, scale, dataset, main_model, max_panels=panels), smk.output.prior_lines)
    save_figure(fg.posterior_lines(fits[main_model], data, columns, scale, dataset, main_model, references=references, max_panels=panels),
                smk.output.posterior_lines)

    estimates = site_estimates(fits, data, columns, scale)
    forest_models = tuple(dict.fromkeys(m for m in (families.get("no_pooling"), main_model) if m))
    population = ef.population_line(fits[main_model], columns, scale)
    for parameter, path, k in (("intercept", smk.output.forest_intercepts, 0), ("slope", smk.output.forest_slopes, 1)):
        pop = float(population[k].mean()) if population is not None else None
        save_figure(fg.forest(estimates, columns, scale, dataset, parameter, models=forest_models, population=pop), path)
    save_figure(fg.ppc(fits, columns, dataset), smk.output.ppc)
    save_figure(fg.rank_plots(fits, columns, dataset, data), smk.output.rank)
    print(f"main model {main_model}; forest plots of {forest_models}")


run_logged(snakemake, main)  # noqa: F821
