"""Config-to-model building, prior parsing and the checks that run before any sampling."""

from __future__ import annotations

import bambi as bmb
import numpy as np
import pandas as pd
import pytest

from hierpool import config as hpconfig
from hierpool.errors import ModelError
from hierpool.models import build_model, describe_prior, parse_prior, prior_to_dict, priors_used

COLUMNS = {"outcome": "y", "predictor": "x", "group": "g"}
LADDER = {
    "complete_pooling": "{outcome} ~ {predictor}",
    "no_pooling": "{outcome} ~ 0 + {group} + {group}:{predictor}",
    "varying_intercepts": "{outcome} ~ {predictor} + (1|{group})",
    "varying_slopes": "{outcome} ~ {predictor} + ({predictor}|{group})",
}


@pytest.fixture
def small_data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g = np.repeat(["a", "b", "c", "d"], [3, 5, 8, 12])
    x = rng.normal(size=g.size)
    return pd.DataFrame({"g": pd.Categorical(g), "x": x, "y": 1 + 0.5 * x + rng.normal(size=g.size), "source_row": np.arange(1, g.size + 1)})


def spec(name: str, template: str, **extra) -> dict:
    return {"name": name, "formula": hpconfig.render_formula(template, COLUMNS, name), **extra}


@pytest.mark.parametrize("name", list(LADDER))
def test_every_ladder_model_builds_with_the_expected_terms(small_data, name):
    model = build_model(spec(name, LADDER[name]), small_data)
    terms = set(priors_used(model))
    expected = {
        "complete_pooling": {"Intercept", "x", "sigma"},
        "no_pooling": {"g", "g:x", "sigma"},
        "varying_intercepts": {"Intercept", "x", "1|g", "sigma"},
        "varying_slopes": {"Intercept", "x", "1|g", "x|g", "sigma"},
    }[name]
    assert terms == expected


def test_model_spec_from_config_fills_the_dataset_columns():
    config = {
        "datasets": {"d": {"path": "x.csv", "columns": COLUMNS}},
        "models": {"vi": {"formula": "{outcome} ~ {predictor} + (1|{group})"}},
    }
    out = hpconfig.model_spec(config, "d", "vi")
    assert out["formula"] == "y ~ x + (1|g)"
    assert out["family"] == "gaussian" and out["priors"] == {}


def test_nested_prior_parses_to_bambi_prior_and_back():
    cfg = {"dist": "Normal", "mu": 0, "sigma": {"dist": "HalfNormal", "sigma": 0.5}}
    prior = parse_prior(cfg)
    assert isinstance(prior, bmb.Prior) and prior.name == "Normal"
    assert isinstance(prior.args["sigma"], bmb.Prior) and prior.args["sigma"].args["sigma"] == 0.5
    assert prior_to_dict(prior) == {"dist": "Normal", "mu": 0.0, "sigma": {"dist": "HalfNormal", "sigma": 0.5}}
    assert describe_prior(prior_to_dict(prior)) == "Normal(mu=0, sigma=HalfNormal(sigma=0.5))"


def test_configured_priors_are_the_ones_used(small_data):
    priors = {"1|g": {"dist": "Normal", "mu": 0, "sigma": {"dist": "HalfNormal", "sigma": 0.25}}, "x": {"dist": "Normal", "mu": 1, "sigma": 2}}
    model = build_model(spec("vi", LADDER["varying_intercepts"], priors=priors), small_data)
    used = priors_used(model)
    assert used["1|g"]["sigma"] == {"dist": "HalfNormal", "sigma": 0.25}
    assert used["x"] == {"dist": "Normal", "mu": 1.0, "sigma": 2.0}


def test_prior_without_dist_is_rejected_naming_the_model_and_term(small_data):
    with pytest.raises(ModelError, match=r"model 'vi'.*priors\.x.*dist"):
        build_model(spec("vi", LADDER["varying_intercepts"], priors={"x": {"mu": 0}}), small_data)


def test_prior_for_a_term_not_in_the_formula_is_rejected(small_data):
    with pytest.raises(ModelError, match=r"model 'cp'.*not terms"):
        build_model(spec("cp", LADDER["complete_pooling"], priors={"1|g": {"dist": "HalfNormal", "sigma": 1}}), small_data)


def test_formula_naming_a_missing_column_fails_before_sampling(small_data):
    with pytest.raises(ModelError, match=r"model 'typo'.*\['stres'\].*columns"):
        build_model({"name": "typo", "formula": "y ~ stres"}, small_data)


def test_formula_bambi_rejects_names_the_model(small_data):
    with pytest.raises(ModelError, match=r"model 'broken': Bambi rejected"):
        build_model({"name": "broken", "formula": "y ~ (x|"}, small_data)
    with pytest.raises(ModelError, match=r"model 'nolhs'.*no '~'"):
        build_model({"name": "nolhs", "formula": "y x"}, small_data)


def test_unknown_family_is_a_model_error(small_data):
    with pytest.raises(ModelError, match="model 'fam'"):
        build_model({"name": "fam", "formula": "y ~ x", "family": "no_such_family"}, small_data)


def test_no_pooling_with_a_constant_predictor_site_gets_finite_priors_and_a_note(small_data):
    data = small_data.copy()
    data.loc[data["g"] == "a", "x"] = 0.0  # site a: no variation, so its slope column is all zeros
    model = build_model(spec("np", LADDER["no_pooling"]), data)
    sigma = np.asarray(priors_used(model)["g:x"]["sigma"], dtype=float)
    assert np.isfinite(sigma).all()
    assert len(model.hierpool_notes) == 1 and "['a']" in model.hierpool_notes[0]
    clean = build_model(spec("np", LADDER["no_pooling"]), small_data)
    assert clean.hierpool_notes == []


def test_centred_parametrisation_can_be_chosen_per_model(small_data):
    centred = build_model(spec("vi", LADDER["varying_intercepts"], noncentered=False), small_data)
    default = build_model(spec("vi", LADDER["varying_intercepts"]), small_data)
    assert centred.noncentered is False and default.noncentered is True
    assert "1|g_offset" not in centred.backend.model.named_vars
    assert "1|g_offset" in default.backend.model.named_vars
