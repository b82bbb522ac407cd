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


def analysis_targets(dataset):
    """Final outputs of the analysis rules for one dataset (only those its configured models allow)."""
    models = set(hpconfig.dataset_models(config, dataset))
    targets = list(rules.figures.output)
    if models & {"varying_intercepts", "varying_slopes"}:
        targets += list(rules.variance_partition.output)
    if {"no_pooling", "varying_intercepts"} <= models:
        targets += list(rules.shrinkage.output)
    if is_simulated(dataset):
        targets += list(rules.recovery.output)
    return [t.replace("{dataset}", dataset) for t in targets]
