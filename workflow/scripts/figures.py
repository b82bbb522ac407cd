"""Snakemake glue: the data, prior/posterior line, forest, posterior predictive and rank-plot figures of a dataset."""

from hierpool.jobs import load_analysis, run_logged


def main(smk):
    from hierpool import figures, fitinfo, posterior, roles
    from hierpool.figures.style import save_figure
    from hierpool.io import write_csv
    from hierpool.shrinkage import site_estimates

    job = load_analysis(smk)
    columns, data, scale, fits, dataset = job.columns, job.data, job.scale, job.fits, job.dataset
    formulas = {model: fitinfo.model_info(idata)["formula"] for model, idata in fits.items()}
    by_role = roles.first_of_each_role(formulas, columns["group"], columns.get("predictor"))
    main_model = roles.main_model(formulas, columns["group"], columns.get("predictor"))
    references = (
        {by_role["no_pooling"]: fits[by_role["no_pooling"]]}
        if by_role.get("no_pooling", main_model) != main_model
        else {}
    )
    panels = int(smk.params.max_panels)
    has_x = bool(columns.get("predictor"))
    no_x = "the data have no predictor (summary data)"

    save_figure(figures.observations_per_site(data, columns, dataset), smk.output.observations)
    if has_x:
        save_figure(
            figures.outcome_vs_predictor(data, columns, scale, dataset, max_panels=panels),
            smk.output.scatter,
        )
        save_figure(
            figures.prior_lines(fits[main_model], job.site_data, main_model, max_panels=panels),
            smk.output.prior_lines,
        )
        save_figure(
            figures.posterior_lines(
                fits[main_model], job.site_data, main_model, references, max_panels=panels
            ),
            smk.output.posterior_lines,
        )
    else:
        save_figure(
            figures.not_applicable(dataset, "outcome against predictor", no_x), smk.output.scatter
        )
        save_figure(
            figures.site_intervals(fits[main_model], job.site_data, main_model, "prior"),
            smk.output.prior_lines,
        )
        save_figure(
            figures.site_intervals(fits[main_model], job.site_data, main_model),
            smk.output.posterior_lines,
        )

    estimates = site_estimates(fits, job.site_data)
    write_csv(smk.output.estimates, estimates)
    correlated = [m for m, idata in fits.items() if fitinfo.model_info(idata)["correlated"]]
    forest_models = tuple(
        dict.fromkeys(m for m in (by_role.get("no_pooling"), main_model, *correlated) if m)
    )
    population = posterior.population_line(fits[main_model], columns, scale, data=data)
    for parameter, path, k in (
        ("intercept", smk.output.forest_intercepts, 0),
        ("slope", smk.output.forest_slopes, 1),
    ):
        if parameter == "slope" and not has_x:
            save_figure(figures.not_applicable(dataset, "site slopes", no_x), path)
            continue
        pop = float(population[k].mean()) if population is not None else None
        save_figure(
            figures.forest(
                estimates, columns, scale, dataset, parameter, models=forest_models, population=pop
            ),
            path,
        )
    save_figure(figures.ppc(fits, columns, dataset), smk.output.ppc)
    save_figure(figures.rank_plots(fits, columns, dataset, data), smk.output.rank)
    print(f"main model {main_model}; forest plots of {forest_models}")


run_logged(snakemake, main)  # noqa: F821
