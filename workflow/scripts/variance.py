"""Snakemake glue: ICC, VPC curve, between-site SD, Bayesian R² and site-effect correlations per model, with figures."""

from hierpool.jobs import load_analysis, run_logged


def main(smk):
    from hierpool import variance
    from hierpool.figures import icc_posterior, not_applicable, vpc_curve
    from hierpool.figures.style import save_figure
    from hierpool.io import write_csv, write_json
    from hierpool.r2 import r2_table
    from hierpool.summaries import correlation_table

    job = load_analysis(smk)
    columns, data, scale, fits = job.columns, job.data, job.scale, job.fits
    predictor = job.summary["predictor"]
    icc = variance.icc_table(fits, columns, data=data)
    if columns.get("predictor"):
        curve = variance.vpc_curve(
            fits,
            columns,
            scale,
            predictor["min"],
            predictor["max"],
            n=int(smk.params.grid),
            data=data,
        )
        points = variance.predictor_points(data, columns, scale)
    else:  # summary data: no predictor, one point
        curve, points = (
            variance.vpc_curve(fits, columns, scale, 0.0, 0.0, n=1, data=data),
            {"all": 0.0},
        )
    site_sd = variance.between_site_sd(fits, columns, scale, points, data=data)
    r2 = r2_table(fits, data, columns)
    skipped = variance.not_applicable(fits, columns)
    write_csv(smk.output.icc, icc)
    write_csv(smk.output.vpc, curve)
    write_csv(smk.output.site_sd, site_sd)
    write_csv(smk.output.r2, r2)
    write_csv(smk.output.correlation, correlation_table(fits))
    write_json(
        smk.output.summary, variance.variance_summary(icc, r2, site_sd, skipped, columns["group"])
    )
    save_figure(icc_posterior(fits, columns, job.dataset, data=data), smk.output.icc_plot)
    if columns.get("predictor"):
        save_figure(vpc_curve(curve, data, columns, scale, job.dataset), smk.output.vpc_plot)
    else:
        save_figure(
            not_applicable(
                job.dataset,
                "VPC against the predictor",
                "the data have no predictor; the ICC is above",
            ),
            smk.output.vpc_plot,
        )
    print(icc.to_string(), r2.to_string(), site_sd.to_string(), skipped, sep="\n\n")


run_logged(snakemake, main)  # noqa: F821
