"""Resolve the validated workflow config into per-dataset settings.

The top-level `cleaning`, `sampler` and `checking` blocks are defaults; a dataset may override any
of their keys. Model formulas are templates: `{outcome}`, `{predictor}` and `{group}`
are replaced by the dataset's own column names. A model's family is its own, else the
dataset's `family`, else gaussian; a dataset may add models of its own (`extra_models`).
"""

from __future__ import annotations

import codecs
import copy
import string
from pathlib import Path

from hierpool import schema
from hierpool.columns import mapped_column_clashes
from hierpool.errors import ConfigError
from hierpool.families import OUTCOME_KIND
from hierpool.simulate import DEFAULT_COLUMNS

RESERVED_NAMES = frozenset({"simulation_study"})
PLACEHOLDERS = frozenset({"outcome", "predictor", "group"})
DEFAULT_FAMILY = "gaussian"


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
    """The dataset's column roles that are present: outcome, group, and predictor, trials, se where mapped.

    A simulated dataset's mapping is completed with the simulator's default names (and a
    ``trials`` column when it simulates a binomial outcome).
    """
    entry = config["datasets"][dataset]
    if "simulate" not in entry:
        return dict(entry["columns"])
    columns = {**DEFAULT_COLUMNS, **entry.get("columns", {})}
    if entry["simulate"].get("family") == "binomial":
        columns.setdefault("trials", "trials")
    return columns


def cleaning_options(config: dict, dataset: str) -> dict:
    merged = {**config.get("cleaning", {}), **config["datasets"][dataset].get("cleaning", {})}
    merged.setdefault("covariates", [])
    return merged


FILE_FORMAT = ("sep", "encoding", "decimal", "thousands")


def file_format(config: dict, dataset: str) -> dict:
    """How a dataset's CSV is written: separator, encoding, decimal mark, thousands separator."""
    entry = config["datasets"][dataset]
    defaults = {
        "sep": ",",
        "encoding": "utf-8",
        "decimal": ".",
        "thousands": None,
    }  # as in the schema
    return {key: entry.get(key, defaults[key]) for key in FILE_FORMAT}


def sampler_settings(config: dict, dataset: str) -> dict:
    return {**config.get("sampler", {}), **config["datasets"][dataset].get("sampler", {})}


def checking_settings(config: dict, dataset: str) -> dict:
    """Cross-validation settings (``checking``) of a dataset: the top-level block, overridden per dataset."""
    return {**config.get("checking", {}), **config["datasets"][dataset].get("checking", {})}


def refit_sampler(config: dict, dataset: str) -> dict:
    """The sampler settings of a cross-validation refit: the dataset's, with ``checking.refit_draws``
    draws and ``checking.refit_tune`` tuning draws per chain (each ``null``: the sampler's)."""
    checking = checking_settings(config, dataset)
    sampler = dict(sampler_settings(config, dataset))
    for key, setting in (("draws", "refit_draws"), ("tune", "refit_tune")):
        if checking.get(setting):
            sampler[key] = int(checking[setting])
    return sampler


FEW_SITES = 10
TARGET_ACCEPT = {"few_sites": 0.999, "otherwise": 0.99}  # measured: docs/performance.md


def resolve_target_accept(sampler: dict, n_sites: int) -> dict:
    """The sampler settings with ``target_accept: auto`` made a number for this dataset.

    With fewer than ``FEW_SITES`` sites the site-SD posterior is mostly prior, with a long upper
    tail where the intercept and the site effects trade off; 0.99 left 1 to 13 divergences in
    8000 draws on 5 real-shaped sites, 0.999 none (docs/performance.md).

    Parameters
    ----------
    sampler : dict
        Sampler settings as configured.
    n_sites : int
        Number of sites in the cleaned data.

    Returns
    -------
    dict
        A copy with a numeric ``target_accept``.
    """
    out = dict(sampler)
    if out.get("target_accept", "auto") == "auto":
        out["target_accept"] = TARGET_ACCEPT["few_sites" if n_sites < FEW_SITES else "otherwise"]
    return out


def extra_models(config: dict, dataset: str) -> dict:
    """The models defined only for this dataset (``datasets.<d>.extra_models``), by name."""
    extra = config["datasets"][dataset].get("extra_models") or {}
    clash = [m for m in extra if m in config.get("models", {})]
    if clash:
        raise ConfigError(
            f"datasets.{dataset}.extra_models defines {clash}, which the top-level `models:` defines too; "
            "give the dataset's own model another name (or drop it from one place)."
        )
    return extra


def all_model_names(config: dict) -> list[str]:
    """Every model name of the config: the top-level models, then each dataset's extra models (once each)."""
    names = list(config.get("models", {}))
    for dataset in config["datasets"]:
        names += [m for m in extra_models(config, dataset) if m not in names]
    return names


def dataset_models(config: dict, dataset: str) -> list[str]:
    """The models fitted on this dataset, in order.

    The dataset's ``models`` list (top-level or extra model names), else every top-level model;
    then each of its ``extra_models`` not already listed.
    """
    extra = extra_models(config, dataset)
    known = {**config.get("models", {}), **extra}
    wanted = list(config["datasets"][dataset].get("models") or config.get("models", {}))
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise ConfigError(
            f"datasets.{dataset}.models names {unknown}, which are not defined under `models:` "
            f"(defined: {list(config.get('models', {}))}) nor under datasets.{dataset}.extra_models ({list(extra)})."
        )
    return wanted + [m for m in extra if m not in wanted]


def model_entry(config: dict, dataset: str, model: str) -> dict:
    """The model's config entry as written (top-level ``models`` or the dataset's ``extra_models``)."""
    extra = extra_models(config, dataset)
    if model in extra:
        return extra[model]
    if model in config.get("models", {}):
        return config["models"][model]
    raise ConfigError(
        f"model {model!r} is defined neither under `models:` nor under datasets.{dataset}.extra_models."
    )


def dataset_family(config: dict, dataset: str) -> str:
    """The default family of a dataset's models: ``family``, else a simulated dataset's ``simulate.family``, else gaussian."""
    entry = config["datasets"][dataset]
    return entry.get("family") or (entry.get("simulate") or {}).get("family") or DEFAULT_FAMILY


def model_family(config: dict, dataset: str, model: str) -> str:
    """The family a model is fitted with on a dataset: the model's own, else the dataset's, else gaussian."""
    return model_entry(config, dataset, model).get("family") or dataset_family(config, dataset)


def outcome_kind(config: dict, dataset: str) -> str:
    """What the dataset's outcome must be (continuous, binary, binomial, count), from its models' families.

    Raises
    ------
    ConfigError
        When the dataset's models have families of different kinds (e.g. gaussian and poisson).
    """
    families = {m: model_family(config, dataset, m) for m in dataset_models(config, dataset)}
    kinds: dict[str, list[str]] = {}
    for model, family in families.items():
        kinds.setdefault(OUTCOME_KIND[family], []).append(f"{model} ({family})")
    if len(kinds) > 1:
        listing = "; ".join(f"{kind}: {', '.join(models)}" for kind, models in kinds.items())
        raise ConfigError(
            f"datasets.{dataset}: its models need different kinds of outcome ({listing}); one outcome column "
            "cannot be all of these. Fit models of one kind per dataset (datasets.<d>.models / family), or "
            "define a second dataset on the same file."
        )
    return next(iter(kinds), OUTCOME_KIND[dataset_family(config, dataset)])


def render_formula(
    template: str, columns: dict, model: str = "?", dataset: str = "?", family: str = DEFAULT_FAMILY
) -> str:
    """Fill `{outcome}`/`{predictor}`/`{group}` in a formula template with column names.

    With the binomial family, ``{outcome}`` becomes Bambi's ``p(<outcome>, <trials>)``.

    Raises
    ------
    ConfigError
        For an unknown placeholder, ``{predictor}`` on a dataset without a predictor column,
        or a binomial model on a dataset without a ``trials`` column.
    """
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    unknown = fields - PLACEHOLDERS
    if unknown:
        raise ConfigError(
            f"models.{model}.formula uses unknown placeholder(s) {sorted('{' + u + '}' for u in unknown)}; "
            "only {outcome}, {predictor} and {group} are replaced."
        )
    if "predictor" in fields and not columns.get("predictor"):
        raise ConfigError(
            f"model {model!r} ({template!r}) uses {{predictor}}, but dataset {dataset!r} has no predictor column "
            f"(columns: {columns}). Choose models without {{predictor}} for it (datasets.{dataset}.models, "
            f"datasets.{dataset}.extra_models), or map columns.predictor."
        )
    values = {k: columns.get(k) for k in PLACEHOLDERS}
    if family == "binomial":
        if not columns.get("trials"):
            raise ConfigError(
                f"model {model!r} on dataset {dataset!r} has the binomial family, which needs the number of trials: "
                f"set datasets.{dataset}.columns.trials to the column with it (the outcome column is the number of "
                "successes), or use family bernoulli for a 0/1 outcome."
            )
        values["outcome"] = f"p({columns['outcome']}, {columns['trials']})"
    return template.format(**values)


def model_spec(config: dict, dataset: str, model: str) -> dict:
    """The model as it is fitted on this dataset: formula filled in, family resolved, priors as configured.

    ``family`` is the model's own, else the dataset's, else gaussian; ``known_se`` names the
    dataset's ``se`` column when it has one.
    """
    spec = copy.deepcopy(model_entry(config, dataset, model))
    columns = dataset_columns(config, dataset)
    spec["name"] = model
    spec["template"] = spec["formula"]
    spec["family"] = model_family(config, dataset, model)
    spec["formula"] = render_formula(spec["formula"], columns, model, dataset, spec["family"])
    spec.setdefault("priors", {})
    if columns.get("se"):
        spec["known_se"] = columns["se"]
    return spec


def check_config(config: dict) -> None:
    """Checks that a JSON schema cannot express; raise ConfigError naming the key."""
    for dataset in config["datasets"]:
        if dataset in RESERVED_NAMES:
            raise ConfigError(
                f"datasets.{dataset}: the name {dataset!r} is reserved for the workflow's own outputs; choose another."
            )
        for model in dataset_models(config, dataset):
            model_spec(config, dataset, model)
        outcome_kind(config, dataset)
        entry = config["datasets"][dataset]
        if "simulate" in entry and entry.get("columns", {}).get("se"):
            raise ConfigError(
                f"datasets.{dataset}.columns.se: the simulator writes no standard-error column; remove it."
            )
        if (
            "simulate" in entry
            and entry.get("columns", {}).get("trials")
            and entry["simulate"].get("family") != "binomial"
        ):
            raise ConfigError(
                f"datasets.{dataset}.columns.trials: the simulator writes a trials column only with simulate.family binomial."
            )
        clash = mapped_column_clashes(
            dataset_columns(config, dataset), cleaning_options(config, dataset)["covariates"]
        )
        if clash:
            raise ConfigError(
                f"datasets.{dataset}.columns: {clash}. Map each role to its own column."
            )
        fmt = file_format(config, dataset)
        if fmt["thousands"] is not None and fmt["thousands"] in (fmt["decimal"], fmt["sep"]):
            raise ConfigError(
                f"datasets.{dataset}: `thousands` ({fmt['thousands']!r}) must differ from `decimal` and `sep`."
            )
        try:
            codecs.lookup(fmt["encoding"])
        except LookupError:
            raise ConfigError(
                f"datasets.{dataset}.encoding: {fmt['encoding']!r} is not a known encoding (try utf-8, cp1252, latin-1)."
            ) from None
        if "path" in entry and not Path(entry["path"]).is_file():
            raise ConfigError(
                f"datasets.{dataset}.path: {entry['path']!r} does not exist (relative paths start at the "
                "directory you run snakemake from). Put the CSV there, or fix the path."
            )
        if "simulate" in entry:
            size = entry["simulate"].get("site_size")
            if isinstance(size, dict) and size["min"] > size["max"]:
                raise ConfigError(
                    f"datasets.{dataset}.simulate.site_size: min ({size['min']}) is larger than max ({size['max']})."
                )
            if isinstance(size, list) and len(size) != entry["simulate"].get(
                "n_sites", schema.defaults("simulate")["n_sites"]
            ):
                raise ConfigError(
                    f"datasets.{dataset}.simulate.site_size lists {len(size)} sizes but n_sites is {entry['simulate'].get('n_sites')}."
                )
