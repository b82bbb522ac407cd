import json
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The analysis library lives in src/; make it importable for this file and the scripts.
sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))

from hierpool import config as hpconfig  # noqa: E402
from hierpool import resources as hpresources  # noqa: E402
from hierpool import roles as hproles  # noqa: E402
from hierpool import schema as hpschema  # noqa: E402
from hierpool.clean import file_sha256  # noqa: E402
from hierpool.errors import ConfigError  # noqa: E402

# `--config key='{a: 1}'` gives nested values as text: convert them by the schema's types first.
config.update(
    hpschema.coerce_by_schema(
        dict(config),
        hpschema.load_schema(workflow.source_path("../schemas/config.schema.yaml")),
    )
)
validate(config, schema="../schemas/config.schema.yaml")
try:
    hpconfig.check_config(config)
except ConfigError as err:
    raise WorkflowError(f"config error: {err}")


DATASETS = list(config["datasets"])


# The top-level models and every dataset's extra_models.
MODELS = hpconfig.all_model_names(config)


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(MODELS),


def fit_mem_mb(wildcards, input, attempt):
    """A fit's memory from its rows, posterior draws and varying effects (hierpool.resources)."""
    return hpresources.fit_mem_mb(
        hpresources.count_rows(input.data),
        hpconfig.model_spec(config, wildcards.dataset, wildcards.model)["formula"],
        hpconfig.sampler_settings(config, wildcards.dataset),
        attempt,
    )


def fit_threads(wildcards):
    """A fit's CPUs: its chains, at most half of a local run's --cores (hierpool.resources)."""
    try:
        cores = workflow.cores
    except WorkflowError:  # a cluster run without --cores
        cores = None
    return hpresources.fit_threads(
        hpconfig.sampler_settings(config, wildcards.dataset)["chains"], cores
    )


def fit_runtime(wildcards, input, threads, attempt):
    """A fit's time limit (minutes) from its rows, iterations and chains per thread."""
    return hpresources.fit_runtime_min(
        hpresources.count_rows(input.data),
        hpconfig.sampler_settings(config, wildcards.dataset),
        threads,
        attempt,
    )


def fits_mem_mb(floor_mb):
    """Memory of a job that loads the saved fits: a multiple of their size on disk, at least floor_mb."""
    return lambda wildcards, input, attempt: hpresources.from_input_size_mb(
        hpresources.size_mb(input), floor_mb, attempt=attempt
    )


def is_simulated(dataset):
    return "simulate" in config["datasets"][dataset]


def raw_data(wildcards):
    """The raw CSV of a dataset: simulated by the workflow, or the user's file (never modified)."""
    if is_simulated(wildcards.dataset):
        return f"results/{wildcards.dataset}/data/simulated.csv"
    return config["datasets"][wildcards.dataset]["path"]


def dataset_params(wildcards):
    """Everything about a dataset that its data jobs depend on (a change reruns them)."""
    return hpconfig.canonical(
        {
            "columns": hpconfig.dataset_columns(config, wildcards.dataset),
            "cleaning": hpconfig.cleaning_options(config, wildcards.dataset),
            "format": hpconfig.file_format(config, wildcards.dataset),
            "outcome_kind": hpconfig.outcome_kind(config, wildcards.dataset),
        }
    )


def raw_sha256(wildcards):
    """The user's raw file's SHA-256: a changed content reruns cleaning even if the mtime was kept."""
    if is_simulated(wildcards.dataset):
        return ""  # written by the workflow itself; Snakemake tracks it
    return file_sha256(config["datasets"][wildcards.dataset]["path"])


def data_targets(dataset):
    return [
        f"results/{dataset}/data/clean.csv",
        f"results/{dataset}/data/cleaning_summary.json",
        f"results/{dataset}/data/cleaning_sites.csv",
    ]


def fit_targets(dataset):
    return [
        f"results/{dataset}/diagnostics/convergence.json",
        f"results/{dataset}/compare/compare.csv",
        f"results/{dataset}/checking/loso.csv",
        f"results/{dataset}/checking/prior_sensitivity.csv",
        f"results/{dataset}/checking/new_site.csv",
        f"results/{dataset}/checking/loo_pit.csv",
    ]


def report_config(dataset):
    """The configuration that produced a dataset's results, as the report's appendix prints it."""
    entry = config["datasets"][dataset]
    used = {
        "dataset": dataset,
        "description": entry.get("description", ""),
        "columns": hpconfig.dataset_columns(config, dataset),
        "cleaning": hpconfig.cleaning_options(config, dataset),
        "models": {
            m: hpconfig.model_entry(config, dataset, m)
            for m in hpconfig.dataset_models(config, dataset)
        },
        "sampler": hpconfig.sampler_settings(config, dataset),
        "site_sd_prior_scale": config["site_sd_prior_scale"],
        "convergence": config["convergence"],
    }
    used.update({k: entry[k] for k in ("simulate", "path") if k in entry})
    if "path" in entry:
        used["format"] = hpconfig.file_format(config, dataset)
    return hpconfig.canonical(used)


def all_targets():
    targets = []
    for dataset in DATASETS:
        targets += data_targets(dataset) + fit_targets(dataset)
        targets += analysis_targets(dataset)
        targets.append(f"results/{dataset}/report.html")
    return targets


def refit_runtime(wildcards, input, threads, attempt):
    """A refit batch's time limit (minutes): a fit's, once per refit in the batch."""
    plan = json.loads(Path(input.plan).read_text())
    n_units = len(plan["batches"][int(wildcards.batch)])
    return n_units * fit_runtime(wildcards, input, threads, attempt)


def checking_plan(dataset, model, kind):
    """The refit plan of one model (loo or loso), once its checkpoint has run."""
    checkpoint_ = checkpoints.loo_plan if kind == "loo" else checkpoints.loso_plan
    path = checkpoint_.get(dataset=dataset, model=model).output.plan
    return json.loads(Path(path).read_text())


def checking_refits(dataset, kind, models=None):
    """Every refit batch's output of a dataset's models (kind: loo or loso), as their plans list them."""
    files = []
    for model in models or hpconfig.dataset_models(config, dataset):
        plan = checking_plan(dataset, model, kind)
        files += [
            f"results/{dataset}/checking/{kind}/{model}/batch{i}.json"
            for i in range(len(plan["batches"]))
        ]
    return files
