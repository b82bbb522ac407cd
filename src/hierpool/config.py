"""Resolve the validated workflow config into per-dataset settings.

The top-level `cleaning` and `sampler` blocks are defaults; a dataset may override any
of their keys. Model formulas are templates: `{outcome}`, `{predictor}` and `{group}`
are replaced by the dataset's own column names.
"""

from __future__ import annotations

import copy
import string
from pathlib import Path

from hierpool.errors import ConfigError
from hierpool.simulate import DEFAULT_COLUMNS

RESERVED_NAMES = frozenset({"simulation_study"})
PLACEHOLDERS = frozenset({"outcome", "predictor", "group"})


def canonical(obj):
    """The same data with every mapping's keys sorted.

    Snakemake compares rule params as written, key order included; sorting makes a config
    that only lists keys in another order rerun nothing.
    """
    if isinstance(obj, dict):
        return {str(k): canonical(obj[k]) for k in sorted(obj, key=str)}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    return obj


def dataset_columns(config: dict, dataset: str) -> dict:
    entry = config["datasets"][dataset]
    return {**DEFAULT_COLUMNS, **entry.get("columns", {})} if "simulate" in entry else dict(entry["columns"])


def cleaning_options(config: dict, dataset: str) -> dict:
    merged = {**config.get("cleaning", {}), **config["datasets"][dataset].get("cleaning", {})}
    merged.setdefault("covariates", [])
    return merged


def sampler_settings(config: dict, dataset: str) -> dict:
    return {**config.get("sampler", {}), **config["datasets"][dataset].get("sampler", {})}


def dataset_models(config: dict, dataset: str) -> list[str]:
    wanted = config["datasets"][dataset].get("models") or list(config["models"])
    unknown = [m for m in wanted if m not in config["models"]]
    if unknown:
        raise ConfigError(
            f"datasets.{dataset}.models names {unknown}, which are not defined under `models:` "
            f"(defined: {list(config['models'])})."
        )
    return wanted


def render_formula(template: str, columns: dict, model: str = "?") -> str:
    """Fill `{outcome}`/`{predictor}`/`{group}` in a formula template with column names."""
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    unknown = fields - PLACEHOLDERS
    if unknown:
        raise ConfigError(
            f"models.{model}.formula uses unknown placeholder(s) {sorted('{' + u + '}' for u in unknown)}; "
            "only {outcome}, {predictor} and {group} are replaced."
        )
    return template.format(**{k: columns[k] for k in PLACEHOLDERS})


def model_spec(config: dict, dataset: str, model: str) -> dict:
    """The model as it is fitted on this dataset: formula filled in, family and priors as configured."""
    spec = copy.deepcopy(config["models"][model])
    spec["name"] = model
    spec["template"] = spec["formula"]
    spec["formula"] = render_formula(spec["formula"], dataset_columns(config, dataset), model)
    spec.setdefault("family", "gaussian")
    spec.setdefault("priors", {})
    return spec


def check_config(config: dict) -> None:
    """Checks that a JSON schema cannot express; raise ConfigError naming the key."""
    for dataset in config["datasets"]:
        if dataset in RESERVED_NAMES:
            raise ConfigError(f"datasets.{dataset}: the name {dataset!r} is reserved for the workflow's own outputs; choose another.")
        for model in dataset_models(config, dataset):
            model_spec(config, dataset, model)
        entry = config["datasets"][dataset]
        if "path" in entry and not Path(entry["path"]).is_file():
            raise ConfigError(
                f"datasets.{dataset}.path: {entry['path']!r} does not exist (relative paths start at the "
                "directory you run snakemake from). Put the CSV there, or fix the path."
            )
        if "simulate" in entry:
            size = entry["simulate"].get("site_size")
            if isinstance(size, dict) and size["min"] > size["max"]:
                raise ConfigError(f"datasets.{dataset}.simulate.site_size: min ({size['min']}) is larger than max ({size['max']}).")
            if isinstance(size, list) and len(size) != entry["simulate"].get("n_sites", 20):
                raise ConfigError(f"datasets.{dataset}.simulate.site_size lists {len(size)} sizes but n_sites is {entry['simulate'].get('n_sites')}.")
