# Tiny jobs (reading a few JSON files) run in the Snakemake process, not as cluster jobs.
localrules:
    diagnostics,


rule fit:
    input:
        data="results/{dataset}/data/clean.csv",
    output:
        fit="results/{dataset}/fits/{model}.nc",
        loo="results/{dataset}/fits/{model}.loo.nc",
        # leave-one-site-out per site from this fit (hierpool.siteloo; no rows where it does not apply)
        site_loo="results/{dataset}/fits/{model}.loso.csv",
        priors="results/{dataset}/fits/{model}_priors.json",
        diagnostics="results/{dataset}/fits/{model}_diagnostics.json",
        coefficients="results/{dataset}/fits/{model}_coefficients.csv",
    log:
        "logs/{dataset}/fit/{model}.log",
    benchmark:
        "benchmarks/{dataset}/fit/{model}.tsv"
    conda:
        "../../environment.yml"
    threads: fit_threads
    resources:
        mem_mb=fit_mem_mb,
        runtime=fit_runtime,
    params:
        spec=lambda w: hpconfig.canonical(
            hpconfig.model_spec(config, w.dataset, w.model)
        ),
        sampler=lambda w: hpconfig.canonical(
            hpconfig.sampler_settings(config, w.dataset)
        ),
        columns=lambda w: hpconfig.canonical(
            hpconfig.dataset_columns(config, w.dataset)
        ),
        site_sd_prior_scale=config["site_sd_prior_scale"],
        max_moment_match=lambda w: hpconfig.checking_settings(config, w.dataset)[
            "max_moment_match"
        ],
        site_loo=lambda w: hpconfig.checking_settings(config, w.dataset)["loso_folds"]
        > 0,
    script:
        "../scripts/fit.py"


rule diagnostics:
    input:
        diagnostics=lambda w: expand(
            "results/{{dataset}}/fits/{model}_diagnostics.json",
            model=hpconfig.dataset_models(config, w.dataset),
        ),
    output:
        table="results/{dataset}/diagnostics/diagnostics.csv",
        verdict="results/{dataset}/diagnostics/convergence.json",
    log:
        "logs/{dataset}/diagnostics.log",
    conda:
        "../../environment.yml"
    params:
        models=lambda w: hpconfig.dataset_models(config, w.dataset),
        policy=hpconfig.canonical(config["convergence"]),
    script:
        "../scripts/diagnostics.py"


rule compare:
    input:
        data="results/{dataset}/data/clean.csv",
        loos=lambda w: expand(
            "results/{{dataset}}/fits/{model}.loo.nc",
            model=hpconfig.dataset_models(config, w.dataset),
        ),
        # the remedies for high Pareto k (checking.smk): each model's plan and its refits
        plans=lambda w: expand(
            "results/{{dataset}}/checking/loo/{model}/plan.json",
            model=hpconfig.dataset_models(config, w.dataset),
        ),
        refits=lambda w: checking_refits(w.dataset, "loo"),
    output:
        loo="results/{dataset}/compare/loo.csv",
        compare="results/{dataset}/compare/compare.csv",
        bad_k="results/{dataset}/compare/pareto_k_bad.csv",
        plot="results/{dataset}/compare/loo_comparison.png",
    log:
        "logs/{dataset}/compare.log",
    benchmark:
        "benchmarks/{dataset}/compare.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=fits_mem_mb(4000),
        runtime=30,
    params:
        models=lambda w: hpconfig.dataset_models(config, w.dataset),
        columns=lambda w: hpconfig.canonical(
            hpconfig.dataset_columns(config, w.dataset)
        ),
    script:
        "../scripts/compare.py"
