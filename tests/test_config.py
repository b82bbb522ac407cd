"""Tests for hierpool.config (per-dataset settings) and the JSON schema of config/config.yaml."""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from hierpool import config as hc
from hierpool import schema as schema_module
from hierpool.errors import ConfigError
from hierpool.simulate import DEFAULT_COLUMNS, SimulationSpec


@pytest.fixture(scope="module")
def raw_config():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    return yaml.safe_load((root / "config" / "config.yaml").read_text())


@pytest.fixture
def config(raw_config):
    """A fresh copy of config/config.yaml as shipped (not validated, so no defaults filled)."""
    return copy.deepcopy(raw_config)


@pytest.fixture
def ladder_config(raw_config):
    """The shipped config with only its ladder datasets (simulated and radon) and no dataset's own models or covariates."""
    config = copy.deepcopy(raw_config)
    config["datasets"] = {name: config["datasets"][name] for name in ("simulated", "radon")}
    for entry in config["datasets"].values():
        entry.pop("extra_models", None)
        entry.get("cleaning", {}).pop("covariates", None)
    return config


@pytest.fixture
def schema(repo_root):
    return str(repo_root / "workflow" / "schemas" / "config.schema.yaml")


# --------------------------------------------------------------------------- render_formula


COLUMNS = {"outcome": "log_radon", "predictor": "floor", "group": "county"}


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{outcome} ~ {predictor}", "log_radon ~ floor"),
        ("{outcome} ~ 0 + {group} + {group}:{predictor}", "log_radon ~ 0 + county + county:floor"),
        ("{outcome} ~ {predictor} + (1|{group})", "log_radon ~ floor + (1|county)"),
        ("{outcome} ~ {predictor} + ({predictor}|{group})", "log_radon ~ floor + (floor|county)"),
        ("y ~ x", "y ~ x"),
    ],
)
def test_render_formula(template, expected):
    assert hc.render_formula(template, COLUMNS) == expected


def test_render_formula_ignores_extra_column_keys():
    assert (
        hc.render_formula("{outcome} ~ {predictor}", {**COLUMNS, "other": "z"})
        == "log_radon ~ floor"
    )


@pytest.mark.parametrize(
    "template, bad",
    [
        ("{outcome} ~ {x}", "{x}"),
        ("{y} ~ {predictor} + (1|{site})", "{site}"),
        ("{outcome} ~ {}", "{}"),
    ],
)
def test_render_formula_unknown_placeholder_names_model(template, bad):
    with pytest.raises(ConfigError) as err:
        hc.render_formula(template, COLUMNS, model="my_model")
    message = str(err.value)
    assert "models.my_model.formula" in message
    assert bad in message


# --------------------------------------------------------------------------- per-dataset settings


def test_dataset_columns(config):
    assert hc.dataset_columns(config, "radon") == COLUMNS
    assert hc.dataset_columns(config, "simulated") == {
        "outcome": "scontrol",
        "predictor": "stress",
        "group": "site",
    }
    # a simulated dataset without a column mapping uses the simulator's default columns
    del config["datasets"]["simulated"]["columns"]
    assert hc.dataset_columns(config, "simulated") == DEFAULT_COLUMNS
    # a partial mapping is completed with the defaults
    config["datasets"]["simulated"]["columns"] = {"group": "lab"}
    assert hc.dataset_columns(config, "simulated") == {**DEFAULT_COLUMNS, "group": "lab"}


def test_cleaning_override_merges_with_top_level(ladder_config):
    config = ladder_config
    assert hc.cleaning_options(config, "radon") == {
        "min_obs_per_site": 1,
        "center": False,
        "scale": False,
        "covariates": [],
    }
    assert hc.cleaning_options(config, "simulated") == {
        "min_obs_per_site": 2,
        "center": True,
        "scale": False,
        "covariates": [],
    }


def test_cleaning_override_of_one_key_keeps_the_others(config):
    config["cleaning"] = {
        "min_obs_per_site": 3,
        "center": False,
        "scale": True,
        "covariates": ["age"],
    }
    config["datasets"]["simulated"]["cleaning"] = {"scale": False}
    assert hc.cleaning_options(config, "simulated") == {
        "min_obs_per_site": 3,
        "center": False,
        "scale": False,
        "covariates": ["age"],
    }


def test_cleaning_options_without_top_level_block(ladder_config):
    config = ladder_config
    del config["cleaning"]
    assert hc.cleaning_options(config, "radon") == {
        "min_obs_per_site": 1,
        "center": False,
        "covariates": [],
    }


def test_sampler_override_merges_with_top_level(config):
    before = dict(config["sampler"])
    config["datasets"]["radon"]["sampler"] = {"draws": 200, "backend": "pymc"}
    radon = hc.sampler_settings(config, "radon")
    assert radon["draws"] == 200 and radon["backend"] == "pymc"
    assert (
        radon["tune"] == config["sampler"]["tune"]
        and radon["chains"] == config["sampler"]["chains"]
    )
    assert hc.sampler_settings(config, "simulated") == config["sampler"]
    # the top-level block itself is not modified by the merge
    assert config["sampler"] == before


def test_refits_take_their_own_draws_and_tuning_else_the_samplers(config):
    config["sampler"] = {"draws": 2000, "tune": 1000, "chains": 4}
    config["checking"] = {"refit_draws": 500, "refit_tune": 300}
    config["datasets"]["radon"]["checking"] = {"refit_tune": None}
    refit = hc.refit_sampler(config, "simulated")
    assert (refit["draws"], refit["tune"], refit["chains"]) == (500, 300, 4)
    assert hc.refit_sampler(config, "radon")["tune"] == 1000  # null: the sampler's tuning
    assert config["sampler"]["tune"] == 1000  # the sampler block itself is untouched


def test_dataset_models_default_to_all(ladder_config):
    config = ladder_config
    assert hc.dataset_models(config, "radon") == list(config["models"])
    assert {"complete_pooling", "no_pooling", "varying_intercepts", "varying_slopes"} <= set(
        hc.dataset_models(config, "radon")
    )


def test_dataset_models_subset_keeps_given_order(ladder_config):
    config = ladder_config
    config["datasets"]["radon"]["models"] = ["varying_slopes", "complete_pooling"]
    assert hc.dataset_models(config, "radon") == ["varying_slopes", "complete_pooling"]
    assert hc.dataset_models(config, "simulated") == list(config["models"])


def test_dataset_models_unknown_model_is_an_error(config):
    config["datasets"]["radon"]["models"] = ["complete_pooling", "partial_pooling"]
    with pytest.raises(ConfigError) as err:
        hc.dataset_models(config, "radon")
    message = str(err.value)
    assert "datasets.radon.models" in message and "partial_pooling" in message
    assert "varying_slopes" in message  # lists what is defined


def test_model_spec(config):
    spec = hc.model_spec(config, "radon", "varying_slopes")
    assert spec["name"] == "varying_slopes"
    assert spec["formula"] == "log_radon ~ floor + (floor|county)"
    assert spec["template"] == "{outcome} ~ {predictor} + ({predictor}|{group})"
    assert spec["family"] == "gaussian" and spec["priors"] == {}
    assert spec["description"] == config["models"]["varying_slopes"]["description"]
    # the config itself keeps the template
    assert config["models"]["varying_slopes"]["formula"] == spec["template"]
    assert "name" not in config["models"]["varying_slopes"]

    sim = hc.model_spec(config, "simulated", "no_pooling")
    assert sim["formula"] == "scontrol ~ 0 + site + site:stress"


def test_model_spec_keeps_family_and_priors_and_copies_them(config):
    priors = {"floor": {"dist": "Normal", "mu": 0, "sigma": 1}}
    config["models"]["robust"] = {
        "formula": "{outcome} ~ {predictor}",
        "family": "t",
        "priors": priors,
    }
    spec = hc.model_spec(config, "radon", "robust")
    assert spec["family"] == "t" and spec["priors"] == priors
    spec["priors"]["floor"]["sigma"] = 99
    assert config["models"]["robust"]["priors"]["floor"]["sigma"] == 1


def test_model_spec_unknown_placeholder_names_model(config):
    config["models"]["broken"] = {"formula": "{outcome} ~ {stress}"}
    with pytest.raises(ConfigError, match=r"models\.broken\.formula"):
        hc.model_spec(config, "radon", "broken")


# --------------------------------------------------------------------------- check_config


def test_check_config_accepts_shipped_config(config, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    hc.check_config(config)


def test_check_config_missing_path(config, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    config["datasets"]["radon"]["path"] = "data/raw/nope.csv"
    with pytest.raises(ConfigError, match=r"datasets\.radon\.path.*nope\.csv"):
        hc.check_config(config)


def test_check_config_site_size_min_above_max(config, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    config["datasets"]["simulated"]["simulate"]["site_size"] = {"min": 50, "max": 10}
    with pytest.raises(ConfigError, match=r"datasets\.simulated\.simulate\.site_size"):
        hc.check_config(config)


def test_check_config_site_size_list_length(config, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    config["datasets"]["simulated"]["simulate"]["site_size"] = [5, 6, 7]
    with pytest.raises(ConfigError, match="3 sizes"):
        hc.check_config(config)


def test_check_config_bad_formula_in_model(config, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    config["models"]["varying_intercepts"]["formula"] = "{outcome} ~ {predictor} + (1|{county})"
    with pytest.raises(ConfigError, match=r"models\.varying_intercepts\.formula.*\{county\}"):
        hc.check_config(config)


# --------------------------------------------------------------------------- JSON schema


def test_shipped_config_passes_schema(config, schema):
    radon_cleaning = copy.deepcopy(config["datasets"]["radon"]["cleaning"])
    validate(config, schema)
    # defaults filled where the shipped config leaves keys out
    assert config["cleaning"]["covariates"] == []
    assert config["datasets"]["radon"]["sep"] == ","
    assert (
        "family" not in config["models"]["complete_pooling"]
    )  # unset stays detectable: model_spec resolves it
    assert config["models"]["complete_pooling"]["noncentered"] == "auto"
    # a dataset-level override is not filled with defaults (that would undo the top-level values)
    assert config["datasets"]["radon"]["cleaning"] == radon_cleaning
    assert "sampler" not in config["datasets"]["radon"]


def test_validated_shipped_config_gives_usable_settings(config, schema, repo_root, monkeypatch):
    validate(config, schema)
    monkeypatch.chdir(repo_root)
    hc.check_config(config)
    spec = SimulationSpec.from_config(config["datasets"]["simulated"]["simulate"])
    assert spec.n_sites == 20


def test_schema_fills_sampler_defaults(config, schema):
    del config["sampler"]
    validate(config, schema)
    assert config["sampler"]["backend"] == "nutpie"
    assert config["sampler"]["draws"] == 2000
    assert config["sampler"]["tune"] == 1000
    assert config["sampler"]["chains"] == 4
    assert config["sampler"]["target_accept"] == "auto"
    assert config["sampler"]["low_rank_mass_matrix"] == "auto"


def test_schema_fills_top_level_defaults_of_minimal_config(schema):
    config = {"datasets": {"sim": {"simulate": {"n_sites": 5}}}}
    validate(config, schema)
    assert set(config) == {
        "datasets",
        "cleaning",
        "sampler",
        "models",
        "convergence",
        "site_sd_prior_scale",
        "checking",
    }
    assert config["checking"]["max_refits"] == 10 and config["checking"]["loso_folds"] == 10
    assert config["checking"]["max_moment_match"] == 100
    assert config["site_sd_prior_scale"] == 1.0
    assert config["cleaning"] == {
        "min_obs_per_site": 2,
        "center": True,
        "scale": False,
        "covariates": [],
        "missing_values": ["", "NA", "N/A", "NaN", "NULL", ".", "#N/A", "missing"],
        "group_missing_values": [""],
        "merge_case": True,
        "merge_integer_codes": True,
        "positive_label": None,
        "max_dropped_share": 0.05,
    }
    from dataclasses import asdict

    from hierpool.clean import CleaningOptions

    defaults = {
        k: list(v) if isinstance(v, tuple) else v for k, v in asdict(CleaningOptions()).items()
    }
    assert {k: defaults[k] for k in config["cleaning"]} == config[
        "cleaning"
    ]  # the library's defaults are the schema's
    assert {"complete_pooling", "no_pooling", "varying_intercepts", "varying_slopes"} <= set(
        config["models"]
    )
    assert all("family" not in m for m in config["models"].values())
    assert all(hc.model_spec(config, "sim", m)["family"] == "gaussian" for m in config["models"])
    assert config["convergence"]["policy"] == "warn"
    simulate = config["datasets"]["sim"]["simulate"]
    assert simulate["n_sites"] == 5 and simulate["site_size"] == {"min": 2, "max": 150}
    assert SimulationSpec.from_config(simulate) == SimulationSpec(n_sites=5)


def test_schema_keeps_given_values(config, schema):
    config["sampler"] = {"draws": 50, "backend": "pymc"}
    validate(config, schema)
    assert config["sampler"]["draws"] == 50 and config["sampler"]["backend"] == "pymc"
    assert config["sampler"]["tune"] == 1000


def _set(config, path, value):
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@pytest.mark.parametrize(
    "path, value, fragment",
    [
        # wrong keys
        (("samplr",), {"draws": 10}, "samplr"),
        (("sampler", "draw"), 10, "draw"),
        (("datasets", "radon", "colums"), {}, "colums"),
        (("cleaning", "min_obs"), 2, "min_obs"),
        (("datasets", "simulated", "simulate", "nsites"), 3, "nsites"),
        # wrong types / values
        (("sampler", "draws"), "many", "many"),
        (("sampler", "chains"), 2.5, "2.5"),
        (("sampler", "backend"), "stan", "stan"),
        (("sampler", "target_accept"), 1.0, "target_accept"),
        (("cleaning", "center"), "yes", "yes"),
        (("cleaning", "min_obs_per_site"), 0, "min_obs_per_site"),
        (("datasets", "simulated", "simulate", "n_sites"), 1, "n_sites"),
        (("datasets", "simulated", "simulate", "site_size"), {"min": 0, "max": 5}, "site_size"),
        (("datasets", "simulated", "simulate", "correlation"), 1.5, "correlation"),
        (("datasets", "radon", "columns"), {"outcome": "log_radon", "predictor": "floor"}, "group"),
        (("convergence", "policy"), "ignore", "ignore"),
    ],
)
def test_schema_rejects_wrong_keys_and_types(config, schema, path, value, fragment):
    _set(config, path, value)
    with pytest.raises(WorkflowError) as err:
        validate(config, schema)
    assert fragment in str(err.value)


def test_schema_rejects_dataset_with_both_simulate_and_path(config, schema):
    config["datasets"]["radon"]["simulate"] = {"n_sites": 3}
    with pytest.raises(WorkflowError):
        validate(config, schema)


def test_schema_rejects_dataset_with_neither_simulate_nor_path(config, schema):
    del config["datasets"]["radon"]["path"]
    with pytest.raises(WorkflowError):
        validate(config, schema)


def test_schema_rejects_path_without_columns(config, schema):
    del config["datasets"]["radon"]["columns"]
    with pytest.raises(WorkflowError):
        validate(config, schema)


def test_schema_rejects_bad_dataset_name_and_no_datasets(config, schema):
    bad = copy.deepcopy(config)
    bad["datasets"]["2nd run"] = bad["datasets"].pop("radon")
    with pytest.raises(WorkflowError):
        validate(bad, schema)
    with pytest.raises(WorkflowError):
        validate({"datasets": {}}, schema)
    with pytest.raises(WorkflowError):
        validate({"sampler": {}}, schema)


# --------------------------------------------------------------------------- --config text values


def test_nested_config_text_is_converted_by_the_schema_types(schema):
    loaded = schema_module.load_schema(schema)
    given = {
        "sampler": {
            "draws": "500",
            "target_accept": "0.9",
            "backend": "nutpie",
            "low_rank_mass_matrix": "false",
        },
        "cleaning": {"center": "false", "min_obs_per_site": "3", "covariates": ["age"]},
        "site_sd_prior_scale": "null",
        "datasets": {
            "a": {
                "simulate": {"n_sites": "5", "site_size": {"min": "2", "max": "9"}, "slope": "-0.5"}
            },
            "b": {"simulate": {"site_size": ["3", "4"]}},
            "c": {
                "path": "x.csv",
                "sep": ";",
                "columns": {"outcome": "1", "predictor": "2", "group": "3"},
            },
        },
    }
    out = schema_module.coerce_by_schema(given, loaded)
    assert out["sampler"] == {
        "draws": 500,
        "target_accept": 0.9,
        "backend": "nutpie",
        "low_rank_mass_matrix": False,
    }
    assert out["cleaning"] == {"center": False, "min_obs_per_site": 3, "covariates": ["age"]}
    assert out["site_sd_prior_scale"] is None
    assert out["datasets"]["a"]["simulate"] == {
        "n_sites": 5,
        "site_size": {"min": 2, "max": 9},
        "slope": -0.5,
    }
    assert out["datasets"]["b"]["simulate"]["site_size"] == [3, 4]
    assert out["datasets"]["c"]["columns"] == {
        "outcome": "1",
        "predictor": "2",
        "group": "3",
    }  # strings stay strings


def test_text_that_is_not_of_the_type_is_left_for_the_schema_to_report(schema):
    out = schema_module.coerce_by_schema(
        {"sampler": {"draws": "many", "chains": "2.5"}}, schema_module.load_schema(schema)
    )
    assert out == {"sampler": {"draws": "many", "chains": "2.5"}}


@pytest.mark.parametrize(
    "columns, words",
    [
        ({"outcome": "y", "predictor": "y", "group": "g"}, "outcome and predictor"),
        ({"outcome": "y", "predictor": "x", "group": "x"}, "predictor and group"),
    ],
)
def test_roles_mapped_to_one_column_stop_at_the_config(config, schema, tmp_path, columns, words):
    path = tmp_path / "d.csv"
    path.write_text("y,x,g\n1,2,a\n")
    config["datasets"] = {"mine": {"path": str(path), "columns": columns}}
    validate(config, schema)
    with pytest.raises(ConfigError, match=f"datasets.mine.columns: {words} are both mapped"):
        hc.check_config(config)


def test_unknown_encoding_stops_at_the_config(config, schema, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("y,x,g\n1,2,a\n")
    config["datasets"] = {
        "mine": {
            "path": str(path),
            "encoding": "klingon",
            "columns": {"outcome": "y", "predictor": "x", "group": "g"},
        }
    }
    validate(config, schema)
    with pytest.raises(ConfigError, match="datasets.mine.encoding"):
        hc.check_config(config)


# --------------------------------------------------------------------------- families, extra models, summary data


def _file(tmp_path, text="y,x,g,n,se\n1,2,a,3,0.5\n"):
    path = tmp_path / "d.csv"
    path.write_text(text)
    return str(path)


def test_family_resolves_model_then_dataset_then_gaussian(config):
    assert hc.model_spec(config, "radon", "complete_pooling")["family"] == "gaussian"
    config["datasets"]["radon"]["family"] = "t"
    assert hc.model_spec(config, "radon", "complete_pooling")["family"] == "t"
    assert hc.model_spec(config, "simulated", "complete_pooling")["family"] == "gaussian"
    config["models"]["complete_pooling"]["family"] = "gaussian"
    assert (
        hc.model_spec(config, "radon", "complete_pooling")["family"] == "gaussian"
    )  # the model's own wins
    assert hc.model_spec(config, "radon", "varying_slopes")["family"] == "t"


def test_simulated_dataset_defaults_to_its_simulated_family(config):
    config["datasets"]["simulated"]["simulate"]["family"] = "poisson"
    assert hc.dataset_family(config, "simulated") == "poisson"
    assert hc.model_spec(config, "simulated", "varying_intercepts")["family"] == "poisson"
    assert hc.outcome_kind(config, "simulated") == "count"
    config["datasets"]["simulated"]["family"] = "negativebinomial"
    assert hc.model_spec(config, "simulated", "varying_intercepts")["family"] == "negativebinomial"


def test_simulated_binomial_dataset_has_a_trials_column(config):
    config["datasets"]["simulated"]["simulate"]["family"] = "binomial"
    assert hc.dataset_columns(config, "simulated")["trials"] == "trials"
    assert (
        hc.model_spec(config, "simulated", "complete_pooling")["formula"]
        == "p(scontrol, trials) ~ stress"
    )


@pytest.mark.parametrize("family, kind", sorted(hc.OUTCOME_KIND.items()))
def test_outcome_kind_follows_the_family(config, family, kind):
    config["datasets"]["radon"]["family"] = family
    config["datasets"]["radon"]["columns"]["trials"] = "n"
    assert hc.outcome_kind(config, "radon") == kind


def test_models_of_different_outcome_kinds_on_one_dataset_are_an_error(ladder_config):
    config = ladder_config
    config["models"]["counts"] = {"formula": "{outcome} ~ {predictor}", "family": "poisson"}
    with pytest.raises(ConfigError) as err:
        hc.outcome_kind(config, "radon")
    message = str(err.value)
    assert (
        "datasets.radon" in message
        and "counts (poisson)" in message
        and "complete_pooling (gaussian)" in message
    )
    config["datasets"]["radon"]["models"] = ["counts"]
    assert hc.outcome_kind(config, "radon") == "count"


def test_binomial_outcome_renders_as_successes_of_trials(config):
    config["datasets"]["radon"]["family"] = "binomial"
    config["datasets"]["radon"]["columns"]["trials"] = "n_tests"
    spec = hc.model_spec(config, "radon", "varying_intercepts")
    assert spec["formula"] == "p(log_radon, n_tests) ~ floor + (1|county)"
    assert spec["template"] == "{outcome} ~ {predictor} + (1|{group})"


def test_binomial_without_trials_is_an_error_with_advice(config):
    config["models"]["complete_pooling"]["family"] = "binomial"
    with pytest.raises(ConfigError, match=r"complete_pooling.*radon.*columns\.trials"):
        hc.model_spec(config, "radon", "complete_pooling")


def test_render_formula_without_a_predictor_names_model_and_dataset():
    columns = {"outcome": "estimate", "group": "school", "se": "se"}
    assert hc.render_formula("{outcome} ~ 1 + (1|{group})", columns) == "estimate ~ 1 + (1|school)"
    with pytest.raises(ConfigError) as err:
        hc.render_formula(
            "{outcome} ~ {predictor}", columns, model="complete_pooling", dataset="schools"
        )
    message = str(err.value)
    assert "complete_pooling" in message and "schools" in message and "{predictor}" in message
    assert "datasets.schools.models" in message and "extra_models" in message


def test_extra_models_are_appended_and_found(ladder_config):
    config = ladder_config
    config["datasets"]["radon"]["extra_models"] = {
        "robust": {"formula": "{outcome} ~ {predictor} + (1|{group})", "family": "t"}
    }
    assert hc.dataset_models(config, "radon") == [*config["models"], "robust"]
    assert hc.dataset_models(config, "simulated") == list(config["models"])
    spec = hc.model_spec(config, "radon", "robust")
    assert (
        spec["formula"] == "log_radon ~ floor + (1|county)"
        and spec["family"] == "t"
        and spec["name"] == "robust"
    )
    assert (
        hc.model_entry(config, "radon", "robust")
        is config["datasets"]["radon"]["extra_models"]["robust"]
    )
    with pytest.raises(ConfigError, match="robust"):
        hc.model_spec(config, "simulated", "robust")
    assert hc.all_model_names(config) == [*config["models"], "robust"]
    config["datasets"]["radon"]["models"] = ["robust", "complete_pooling"]
    assert hc.dataset_models(config, "radon") == ["robust", "complete_pooling"]


def test_all_model_names_lists_each_name_once(ladder_config):
    config = ladder_config
    extra = {"only_here": {"formula": "{outcome} ~ 1 + (1|{group})"}}
    config["datasets"]["radon"]["extra_models"] = copy.deepcopy(extra)
    config["datasets"]["simulated"]["extra_models"] = copy.deepcopy(extra)
    assert hc.all_model_names(config) == [*config["models"], "only_here"]


def test_extra_model_named_like_a_global_model_is_an_error(config, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    config["datasets"]["radon"]["extra_models"] = {"no_pooling": {"formula": "{outcome} ~ 1"}}
    with pytest.raises(ConfigError, match=r"datasets\.radon\.extra_models.*no_pooling"):
        hc.check_config(config)
    with pytest.raises(ConfigError):
        hc.all_model_names(config)


def test_summary_data_with_se_and_extra_models(config, schema, tmp_path):
    config["datasets"] = {
        "schools": {
            "path": _file(tmp_path, "school,estimate,se\nA,28,15\nB,8,10\n"),
            "columns": {"outcome": "estimate", "group": "school", "se": "se"},
            "cleaning": {"min_obs_per_site": 1},
            "models": ["partial_pooling"],
            "extra_models": {"partial_pooling": {"formula": "{outcome} ~ 1 + (1|{group})"}},
        }
    }
    validate(config, schema)
    hc.check_config(config)
    assert (
        config["datasets"]["schools"]["extra_models"]["partial_pooling"]["noncentered"] == "auto"
    )  # defaults filled
    assert hc.dataset_models(config, "schools") == ["partial_pooling"]
    assert hc.dataset_columns(config, "schools") == {
        "outcome": "estimate",
        "group": "school",
        "se": "se",
    }
    spec = hc.model_spec(config, "schools", "partial_pooling")
    assert (
        spec["formula"] == "estimate ~ 1 + (1|school)"
        and spec["known_se"] == "se"
        and spec["family"] == "gaussian"
    )
    assert hc.outcome_kind(config, "schools") == "continuous"
    # the global models use {predictor}: fitting them on summary data stops at the config
    del config["datasets"]["schools"]["models"]
    with pytest.raises(ConfigError, match=r"no predictor column.*datasets\.schools\.models"):
        hc.check_config(config)


def test_model_spec_has_no_known_se_without_an_se_column(config):
    assert "known_se" not in hc.model_spec(config, "radon", "complete_pooling")


@pytest.mark.parametrize(
    "path, value",
    [
        (("datasets", "radon", "family"), "beta"),
        (("models", "complete_pooling", "family"), "Gaussian"),
        (
            ("datasets", "radon", "extra_models"),
            {"m": {"formula": "{outcome} ~ 1", "family": "gamma"}},
        ),
        (
            ("datasets", "radon", "extra_models"),
            {"m": {"formula": "{outcome} ~ 1", "colour": "red"}},
        ),
        (("datasets", "radon", "extra_models"), {"2m": {"formula": "{outcome} ~ 1"}}),
        (("datasets", "radon", "columns", "trials"), ""),
        (("datasets", "simulated", "simulate", "family"), "gamma"),
        (("datasets", "simulated", "simulate", "trials"), 0),
        (("cleaning", "positive_label"), 1),
    ],
)
def test_schema_rejects_bad_family_settings(config, schema, path, value):
    _set(config, path, value)
    with pytest.raises(WorkflowError):
        validate(config, schema)


def test_schema_accepts_family_settings_and_fills_simulate_defaults(config, schema):
    config["datasets"]["radon"]["family"] = "bernoulli"
    config["cleaning"]["positive_label"] = "yes"
    validate(config, schema)
    simulate = config["datasets"]["simulated"]["simulate"]
    assert (simulate["family"], simulate["trials"], simulate["alpha"], simulate["nu"]) == (
        "gaussian",
        10,
        5.0,
        4.0,
    )
    assert "family" not in config["models"]["varying_slopes"]


def test_predictor_is_optional_in_the_schema_but_outcome_and_group_are_not(config, schema):
    config["datasets"]["radon"]["columns"] = {"outcome": "log_radon", "group": "county"}
    validate(config, schema)
    config["datasets"]["radon"]["columns"] = {"outcome": "log_radon", "predictor": "floor"}
    with pytest.raises(WorkflowError, match="group"):
        validate(config, schema)


def test_simulated_dataset_cannot_map_columns_the_simulator_does_not_write(
    config, repo_root, monkeypatch
):
    monkeypatch.chdir(repo_root)
    config["datasets"]["simulated"]["columns"]["se"] = "se"
    with pytest.raises(ConfigError, match=r"datasets\.simulated\.columns\.se"):
        hc.check_config(config)
    del config["datasets"]["simulated"]["columns"]["se"]
    config["datasets"]["simulated"]["columns"]["trials"] = "n"
    with pytest.raises(ConfigError, match=r"columns\.trials"):
        hc.check_config(config)
    config["datasets"]["simulated"]["simulate"]["family"] = "binomial"
    hc.check_config(config)
    assert (
        hc.model_spec(config, "simulated", "complete_pooling")["formula"]
        == "p(scontrol, n) ~ stress"
    )


def test_trials_or_se_mapped_to_a_used_column_stop_at_the_config(config, tmp_path):
    config["datasets"] = {
        "mine": {
            "path": _file(tmp_path),
            "columns": {"outcome": "y", "predictor": "x", "group": "g", "se": "x"},
        }
    }
    with pytest.raises(ConfigError, match="predictor and se are both mapped"):
        hc.check_config(config)


def test_the_schemas_families_are_the_supported_ones(schema):
    from hierpool.families import FAMILIES

    assert schema_module.load_schema(schema)["definitions"]["family"]["enum"] == list(FAMILIES)
