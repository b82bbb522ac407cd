"""Snakemake glue (simulated datasets): compare population parameters and site effects with the known truth."""

from hierpool.jobs import load_analysis, run_logged


def main(smk):
    from hierpool import recovery
    from hierpool.figures import recovery_sites
    from hierpool.figures.style import save_figure
    from hierpool.io import read_json, write_csv, write_json

    job = load_analysis(smk)
    truth = read_json(smk.input.truth)
    population = recovery.population_recovery(job.fits, truth, job.columns, job.scale)
    sites = recovery.site_recovery(job.fits, job.data, truth, job.columns, job.scale)
    summary = recovery.site_recovery_summary(sites)
    verdict = recovery.recovery_verdict(population, summary)
    write_csv(smk.output.population, population)
    write_csv(smk.output.sites, sites)
    write_csv(smk.output.summary, summary)
    write_json(smk.output.verdict, verdict)
    save_figure(recovery_sites(sites, job.columns, job.scale, job.dataset), smk.output.plot)
    print(population.to_string(), summary.to_string(), verdict, sep="\n\n")
    for parameter, comparison in verdict["no_vs_partial_pooling"].items():
        if not all(comparison["partial_pooling_lower"].values()):
            print(
                f"WARNING: partial pooling does not beat no pooling on site {parameter}s: {comparison}"
            )


run_logged(snakemake, main)  # noqa: F821
