# Helpers for analysis.smk (included from there): input functions, params and analysis_targets(dataset).
# Needs common.smk (hpconfig, is_simulated) to be included first.


def analysis_fits(wildcards):
    return expand(
        "results/{dataset}/fits/{model}.nc",
        dataset=wildcards.dataset,
        model=hpconfig.dataset_models(config, wildcards.dataset),
    )


def analysis_params(wildcards):
    """The models (in config order, matching the fits) and the dataset's column names (keys sorted)."""
    return {
        "models": hpconfig.dataset_models(config, wildcards.dataset),
        "columns": hpconfig.canonical(
            hpconfig.dataset_columns(config, wildcards.dataset)
        ),
    }


def dataset_stages(dataset):
    """Which analysis stages apply to a dataset's models (read from the formulas' structure, hierpool.roles)."""
    columns = hpconfig.dataset_columns(config, dataset)
    formulas = {
        m: hpconfig.model_spec(config, dataset, m)["formula"]
        for m in hpconfig.dataset_models(config, dataset)
    }
    return hproles.stages(formulas, columns["group"], columns.get("predictor"))


def analysis_targets(dataset):
    """Final outputs of the analysis rules for one dataset (only those its configured models allow)."""
    stages = dataset_stages(dataset)
    targets = list(rules.figures.output)
    if not stages["variance"]:
        targets += list(rules.variance_partition.output)
    if not stages["shrinkage"]:
        targets += list(rules.shrinkage.output)
    if is_simulated(dataset):
        targets += list(rules.recovery.output)
    return [t.replace("{dataset}", dataset) for t in targets]


def dataset_benchmarks(dataset):
    """The `benchmark:` files of a dataset's jobs (every fit, the comparison, each analysis stage that applies)."""
    stages = dataset_stages(dataset)
    names = ["compare", "figures"]
    names += [] if stages["variance"] else ["variance"]
    names += [] if stages["shrinkage"] else ["shrinkage"]
    names += ["recovery"] if is_simulated(dataset) else []
    files = [f"benchmarks/{dataset}/{name}.tsv" for name in names]
    files += [
        f"benchmarks/{dataset}/checking/{name}.tsv" for name in ("loso", "model_checks")
    ]
    files += [
        path.replace("results/", "benchmarks/", 1).replace(".json", ".tsv")
        for kind in ("loo", "loso")
        for path in checking_refits(dataset, kind)
    ]
    return files + expand(
        "benchmarks/{dataset}/fit/{model}.tsv",
        dataset=dataset,
        model=hpconfig.dataset_models(config, dataset),
    )


def report_inputs(wildcards):
    """Every file the report reads (its manifest): headline, cleaning, fits' tables, every stage's outputs."""
    dataset = wildcards.dataset
    models = hpconfig.dataset_models(config, dataset)
    files = [
        f"results/{dataset}/report/{name}"
        for name in ("headline.json", "changes.json", "config_used.json", "timings.csv")
    ]
    files += data_targets(dataset) + list(
        rules.diagnostics.output
        + rules.compare.output
        + rules.loso.output
        + rules.model_checks.output
    )
    files += expand(
        "results/{dataset}/fits/{model}_{table}",
        dataset=dataset,
        model=models,
        table=["priors.json", "coefficients.csv"],
    )
    files += analysis_targets(dataset)
    return [f.replace("{dataset}", dataset) for f in files]
