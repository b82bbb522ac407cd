"""Snakemake glue: ICC, VPC curve, between-site SD and Bayesian R² per model, with their figures."""

from hierpool.smk import run_logged


def main(smk):
    import arviz as az

    from hierpool import variance as va
    from hierpool.clean import load_clean
    from hierpool.effects import PredictorScale
    from hierpool.figures import icc_posterior, vpc_curve
    from hierpool.io import read_json, write_csv, write_json
    from hierpool.plots import save_figure

    columns = dict(smk.params.columns)
    data = load_clean(smk.input.data, columns["group"])
    predictor = read_json(smk.input.summary)["predictor"]
    scale = PredictorScale.from_summary(predictor)
    fits = {m: az.from_netcdf(p) for m, p in zip(smk.params.models, smk.input.fits)}

    icc = va.icc_table(fits, columns)
    curve = va.vpc_curve(fits, columns, scale, predictor["min"], predictor["max"], n=int(smk.params.grid))
    site_sd = va.between_site_sd(fits, columns, scale, va.predictor_points(data, columns, scale))
    r2 = va.r2_table(fits, data, columns)
    write_csv(smk.output.icc, icc)
    write_csv(smk.output.vpc, curve)
    write_csv(smk.output.site_sd, site_sd)
    write_csv(smk.output.r2, r2)
    write_json(smk.output.summary, va.variance_summary(icc, r2, site_sd))
    dataset = smk.wildcards.dataset
    save_figure(icc_posterior(fits, columns, dataset), smk.output.icc_plot)
    save_figure(vpc_curve(curve, data, columns, scale, dataset), smk.output.vpc_plot)
    print(icc.to_string(), r2.to_string(), site_sd.to_string(), sep="\n\n")


run_logged(snakemake, main)  # noqa: F821
