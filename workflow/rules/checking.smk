# Model checking by refitting (plans: hierpool.refitplan; refits: hierpool.crossval): exact leave-one-out where PSIS-LOO's Pareto k
# is too high (K-fold when there are many), and leave-one-site-out cross-validation for the sites
# the fit's own estimate (hierpool.siteloo, in the fit job) cannot judge, or every site where it has none. A plan
# (a checkpoint: how many refits depends on the fit) lists the refits; each batch of refits is
# one job (checking.refits_per_job; 1 fans every refit out to its own cluster job).


localrules:
    loo_plan,
    loso_plan,


checkpoint loo_plan:
    input:
        loo="results/{dataset}/fits/{model}.loo.nc",
    output:
        plan="results/{dataset}/checking/loo/{model}/plan.json",
    log:
        "logs/{dataset}/checking/loo/{model}/plan.log",
    conda:
        "../../environment.yml"
    params:
        settings=lambda w: hpconfig.canonical(
            hpconfig.checking_settings(config, w.dataset)
        ),
    script:
        "../scripts/checking_plan.py"


checkpoint loso_plan:
    input:
        data="results/{dataset}/data/clean.csv",
        loo="results/{dataset}/fits/{model}.loo.nc",
        site_loo="results/{dataset}/fits/{model}.loso.csv",
    output:
        plan="results/{dataset}/checking/loso/{model}/plan.json",
    log:
        "logs/{dataset}/checking/loso/{model}/plan.log",
    conda:
        "../../environment.yml"
    params:
        settings=lambda w: hpconfig.canonical(
            hpconfig.checking_settings(config, w.dataset)
        ),
        formula=lambda w: hpconfig.model_spec(config, w.dataset, w.model)["formula"],
        columns=lambda w: hpconfig.canonical(
            hpconfig.dataset_columns(config, w.dataset)
        ),
    script:
        "../scripts/checking_plan.py"


rule refit:
    input:
        data="results/{dataset}/data/clean.csv",
        plan="results/{dataset}/checking/{kind}/{model}/plan.json",
    output:
        refits="results/{dataset}/checking/{kind}/{model}/batch{batch}.json",
    log:
        "logs/{dataset}/checking/{kind}/{model}/batch{batch}.log",
    benchmark:
        "benchmarks/{dataset}/checking/{kind}/{model}/batch{batch}.tsv"
    wildcard_constraints:
        kind="loo|loso",
        batch=r"\d+",
    conda:
        "../../environment.yml"
    threads: fit_threads
    resources:
        mem_mb=fit_mem_mb,
        runtime=refit_runtime,
    params:
        spec=lambda w: hpconfig.canonical(
            hpconfig.model_spec(config, w.dataset, w.model)
        ),
        sampler=lambda w: hpconfig.canonical(hpconfig.refit_sampler(config, w.dataset)),
        columns=lambda w: hpconfig.canonical(
            hpconfig.dataset_columns(config, w.dataset)
        ),
        site_sd_prior_scale=config["site_sd_prior_scale"],
    script:
        "../scripts/refit.py"


rule loso:
    input:
        plans=lambda w: expand(
            "results/{{dataset}}/checking/loso/{model}/plan.json",
            model=hpconfig.dataset_models(config, w.dataset),
        ),
        refits=lambda w: checking_refits(w.dataset, "loso"),
        estimates=lambda w: expand(
            "results/{{dataset}}/fits/{model}.loso.csv",
            model=hpconfig.dataset_models(config, w.dataset),
        ),
    output:
        table="results/{dataset}/checking/loso.csv",
        sites="results/{dataset}/checking/loso_sites.csv",
        plot="results/{dataset}/figures/loso_sites.png",
    log:
        "logs/{dataset}/checking/loso.log",
    benchmark:
        "benchmarks/{dataset}/checking/loso.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=lambda w: hpconfig.dataset_models(config, w.dataset),
        formulas=lambda w: {
            m: hpconfig.model_spec(config, w.dataset, m)["formula"]
            for m in hpconfig.dataset_models(config, w.dataset)
        },
        columns=lambda w: hpconfig.canonical(
            hpconfig.dataset_columns(config, w.dataset)
        ),
    script:
        "../scripts/loso.py"


# The checks that need no refit, from the saved fits: one job per dataset, each fit opened once.
rule model_checks:
    input:
        data="results/{dataset}/data/clean.csv",
        summary="results/{dataset}/data/cleaning_summary.json",
        fits=analysis_fits,
        loos=lambda w: expand(
            "results/{{dataset}}/fits/{model}.loo.nc",
            model=hpconfig.dataset_models(config, w.dataset),
        ),
    output:
        # power-scaling prior sensitivity (hierpool.sensitivity)
        sensitivity="results/{dataset}/checking/prior_sensitivity.csv",
        # predictions for a new site (hierpool.newsite)
        new_site="results/{dataset}/checking/new_site.csv",
        new_site_plot="results/{dataset}/figures/new_site.png",
        # calibration: LOO-PIT (from the fit jobs) and checks by site (hierpool.calibration)
        pit="results/{dataset}/checking/loo_pit.csv",
        ppc="results/{dataset}/checking/ppc_sites.csv",
        pit_plot="results/{dataset}/figures/loo_pit.png",
        ppc_plot="results/{dataset}/figures/ppc_sites.png",
    log:
        "logs/{dataset}/checking/model_checks.log",
    benchmark:
        "benchmarks/{dataset}/checking/model_checks.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=fits_mem_mb(2000),
        runtime=20,
    params:
        models=lambda w: analysis_params(w)["models"],
        columns=lambda w: analysis_params(w)["columns"],
        seed=lambda w: hpconfig.checking_settings(config, w.dataset)["seed"],
    script:
        "../scripts/model_checks.py"
