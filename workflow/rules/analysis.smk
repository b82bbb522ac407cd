# Analysis of the fitted models: variance partition, shrinkage, parameter recovery (simulated data only)
# and the report figures. Needs common.smk (hpconfig, is_simulated) and the fits from fit.smk.
#
# Which stages apply is read from the models' formulas (hierpool.roles), never from their names:
# variance_partition needs a model whose intercept varies by site, shrinkage a no-pooling and a
# varying-intercepts model. The helper functions (and
# analysis_targets(dataset), the final outputs for a dataset) live in analysis_common.smk, because
# snakemake --lint wants rules and functions in separate files.


include: "analysis_common.smk"


rule variance_partition:
    input:
        data="results/{dataset}/data/clean.csv",
        summary="results/{dataset}/data/cleaning_summary.json",
        fits=analysis_fits,
    output:
        icc="results/{dataset}/variance/icc.csv",
        vpc="results/{dataset}/variance/vpc_curve.csv",
        site_sd="results/{dataset}/variance/between_site_sd.csv",
        r2="results/{dataset}/variance/bayes_r2.csv",
        correlation="results/{dataset}/variance/correlation.csv",
        summary="results/{dataset}/variance/variance_summary.json",
        icc_plot="results/{dataset}/figures/icc_posterior.png",
        vpc_plot="results/{dataset}/figures/vpc_curve.png",
    log:
        "logs/{dataset}/variance.log",
    benchmark:
        "benchmarks/{dataset}/variance.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=fits_mem_mb(2000),
        runtime=20,
    params:
        models=lambda w: analysis_params(w)["models"],
        columns=lambda w: analysis_params(w)["columns"],
        grid=60,
    script:
        "../scripts/variance.py"


rule shrinkage:
    input:
        data="results/{dataset}/data/clean.csv",
        summary="results/{dataset}/data/cleaning_summary.json",
        fits=analysis_fits,
    output:
        table="results/{dataset}/shrinkage/shrinkage.csv",
        summary="results/{dataset}/shrinkage/shrinkage_summary.json",
        by_n_plot="results/{dataset}/figures/shrinkage_by_n.png",
        arrows_plot="results/{dataset}/figures/shrinkage_arrows.png",
    log:
        "logs/{dataset}/shrinkage.log",
    benchmark:
        "benchmarks/{dataset}/shrinkage.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=fits_mem_mb(2000),
        runtime=20,
    params:
        models=lambda w: analysis_params(w)["models"],
        columns=lambda w: analysis_params(w)["columns"],
    script:
        "../scripts/shrinkage.py"


rule recovery:
    input:
        data="results/{dataset}/data/clean.csv",
        summary="results/{dataset}/data/cleaning_summary.json",
        truth="results/{dataset}/data/truth.json",
        fits=analysis_fits,
    output:
        population="results/{dataset}/recovery/population.csv",
        sites="results/{dataset}/recovery/sites.csv",
        summary="results/{dataset}/recovery/site_summary.csv",
        verdict="results/{dataset}/recovery/recovery.json",
        plot="results/{dataset}/figures/recovery_sites.png",
    log:
        "logs/{dataset}/recovery.log",
    benchmark:
        "benchmarks/{dataset}/recovery.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=fits_mem_mb(2000),
        runtime=20,
    params:
        models=lambda w: analysis_params(w)["models"],
        columns=lambda w: analysis_params(w)["columns"],
    script:
        "../scripts/recovery.py"


rule figures:
    input:
        data="results/{dataset}/data/clean.csv",
        summary="results/{dataset}/data/cleaning_summary.json",
        fits=analysis_fits,
    output:
        # every model's site estimates: the table the forest plots draw
        estimates="results/{dataset}/sites/site_estimates.csv",
        observations="results/{dataset}/figures/observations_per_site.png",
        scatter="results/{dataset}/figures/outcome_vs_predictor.png",
        prior_lines="results/{dataset}/figures/prior_lines.png",
        posterior_lines="results/{dataset}/figures/posterior_lines.png",
        forest_intercepts="results/{dataset}/figures/forest_intercepts.png",
        forest_slopes="results/{dataset}/figures/forest_slopes.png",
        ppc="results/{dataset}/figures/ppc.png",
        rank="results/{dataset}/figures/rank_plots.png",
    log:
        "logs/{dataset}/figures.log",
    benchmark:
        "benchmarks/{dataset}/figures.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=fits_mem_mb(2000),
        runtime=30,
    params:
        models=lambda w: analysis_params(w)["models"],
        columns=lambda w: analysis_params(w)["columns"],
        max_panels=16,
    script:
        "../scripts/figures.py"
