"""Config-to-model building, prior parsing and the checks that run before any sampling."""

from __future__ import annotations

import bambi as bmb
import numpy as np
import pandas as pd
import pytest

from hierpool import config as hpconfig
from hierpool.errors import ModelError
from hierpool.models import build_model, check_formula_columns, formula_columns, varying_terms
from hierpool.priors import describe_prior, parse_prior, prior_to_dict, priors_used

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
    return pd.DataFrame(
        {
            "g": pd.Categorical(g),
            "x": x,
            "y": 1 + 0.5 * x + rng.normal(size=g.size),
            "source_row": np.arange(1, g.size + 1),
        }
    )


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
    assert prior_to_dict(prior) == {
        "dist": "Normal",
        "mu": 0.0,
        "sigma": {"dist": "HalfNormal", "sigma": 0.5},
    }
    assert describe_prior(prior_to_dict(prior)) == "Normal(mu=0, sigma=HalfNormal(sigma=0.5))"


def test_configured_priors_are_the_ones_used(small_data):
    priors = {
        "1|g": {"dist": "Normal", "mu": 0, "sigma": {"dist": "HalfNormal", "sigma": 0.25}},
        "x": {"dist": "Normal", "mu": 1, "sigma": 2},
    }
    model = build_model(spec("vi", LADDER["varying_intercepts"], priors=priors), small_data)
    used = priors_used(model)
    assert used["1|g"]["sigma"] == {"dist": "HalfNormal", "sigma": 0.25}
    assert used["x"] == {"dist": "Normal", "mu": 1.0, "sigma": 2.0}


def test_prior_without_dist_is_rejected_naming_the_model_and_term(small_data):
    with pytest.raises(ModelError, match=r"model 'vi'.*priors\.x.*dist"):
        build_model(spec("vi", LADDER["varying_intercepts"], priors={"x": {"mu": 0}}), small_data)


def test_prior_for_a_term_not_in_the_formula_is_rejected(small_data):
    with pytest.raises(ModelError, match=r"model 'cp'.*not terms"):
        build_model(
            spec(
                "cp", LADDER["complete_pooling"], priors={"1|g": {"dist": "HalfNormal", "sigma": 1}}
            ),
            small_data,
        )


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


@pytest.fixture
def mixed_data() -> pd.DataFrame:
    """Every column the family and structure tests need: counts, trials, binary, nested and crossed groups."""
    rng = np.random.default_rng(1)
    n = 60
    x = rng.normal(scale=2.0, size=n)
    return pd.DataFrame(
        {
            "g": pd.Categorical(rng.choice(list("abcd"), n)),
            "school": pd.Categorical(rng.choice(["s1", "s2", "s3"], n)),
            "klass": pd.Categorical(rng.choice(["k1", "k2"], n)),
            "b": pd.Categorical(rng.choice(["u", "v", "w"], n)),
            "x": x,
            "age": rng.normal(40, 10, n),
            "sex": rng.choice(["f", "m"], n),
            "y": rng.normal(size=n) * 3,
            "yes": rng.integers(0, 2, n),
            "k": rng.integers(0, 6, n),
            "trials": np.full(n, 6),
            "count": rng.poisson(3, n),
            "Uppm": rng.uniform(0.5, 2.0, n),
            "floor": rng.integers(0, 2, n),
            "log_radon": rng.normal(1, 0.7, n),
        }
    )


def test_formula_functions_are_not_columns_and_the_model_builds(mixed_data):
    formula = (
        "log_radon ~ floor + log(Uppm) + np.log(Uppm + 1) + sqrt(Uppm) + exp(x) + C(sex) + (1|g)"
    )
    assert formula_columns(formula) == {"log_radon", "floor", "Uppm", "x", "sex", "g"}
    assert formula_columns("y ~ poly(x, degree=2) + `my col` + 1e-3") == {"y", "x", "my col"}
    check_formula_columns(formula, mixed_data, "radon")
    model = build_model({"name": "radon", "formula": formula}, mixed_data, site_sd_prior_scale=1.0)
    assert {"log(Uppm)", "np.log(Uppm + 1)", "sqrt(Uppm)", "exp(x)", "1|g"} <= set(
        priors_used(model)
    )
    new = model.components["mu"].design.common.evaluate_new_data(
        mixed_data.iloc[:5]
    )  # prediction rows: same functions
    column = np.asarray(new)[:, model.components["mu"].design.common.slices["log(Uppm)"]].ravel()
    np.testing.assert_allclose(column, np.log(mixed_data["Uppm"].iloc[:5]))
    with pytest.raises(ModelError, match=r"\['Upm'\]"):
        check_formula_columns("log_radon ~ log(Upm)", mixed_data, "radon")


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("y ~ x + (1|school) + (1|school:klass)", ["1|school", "1|school:klass"]),
        ("y ~ x + (1|g) + (1|b)", ["1|g", "1|b"]),
        ("y ~ x + (1|school/klass)", ["1|school", "1|school:klass"]),
        ("y ~ (0 + x|g) + (1 + x|b)", ["x|g", "1|b", "x|b"]),
        ("y ~ (log(Uppm)|g)", ["1|g", "log(Uppm)|g"]),
        ("p(k, trials) ~ x + (x|g)", ["1|g", "x|g"]),
    ],
)
def test_varying_terms_are_named_as_bambi_names_them(formula, expected):
    assert varying_terms(formula) == expected


def _group_sd(model, term):
    return priors_used(model)[term]["sigma"]


@pytest.mark.parametrize(
    ("family", "formula"),
    [
        ("bernoulli", "yes ~ x + (x|g)"),
        ("binomial", "p(k, trials) ~ x + (x|g)"),
        ("poisson", "count ~ x + (x|g)"),
        ("negativebinomial", "count ~ x + (x|g)"),
    ],
)
def test_count_and_binary_families_get_link_scale_site_sd_priors(mixed_data, family, formula):
    model = build_model(
        {"name": family, "formula": formula, "family": family}, mixed_data, site_sd_prior_scale=0.5
    )
    assert model.family.name == family
    assert _group_sd(model, "1|g") == {"dist": "HalfNormal", "sigma": 0.5}
    assert _group_sd(model, "x|g")["sigma"] == pytest.approx(0.5 / mixed_data["x"].std())
    assert "sigma" not in priors_used(model)
    user = {"1|g": {"dist": "Normal", "mu": 0, "sigma": {"dist": "HalfNormal", "sigma": 2}}}
    kept = build_model(
        {"name": family, "formula": formula, "family": family, "priors": user},
        mixed_data,
        site_sd_prior_scale=0.5,
    )
    assert _group_sd(kept, "1|g") == {"dist": "HalfNormal", "sigma": 2.0}


def test_student_t_site_sd_priors_scale_by_the_outcome(mixed_data):
    model = build_model(
        {"name": "t", "formula": "y ~ x + (1|g)", "family": "t"},
        mixed_data,
        site_sd_prior_scale=1.0,
    )
    assert _group_sd(model, "1|g")["sigma"] == pytest.approx(mixed_data["y"].std())
    assert {"sigma", "nu"} <= set(priors_used(model))


def test_several_grouping_factors_all_get_site_sd_priors(mixed_data):
    model = build_model(
        {"name": "nest", "formula": "y ~ x + (1|school) + (1|school:klass) + (1|b)"},
        mixed_data,
        site_sd_prior_scale=1.0,
    )
    for term in ("1|school", "1|school:klass", "1|b"):
        assert _group_sd(model, term)["sigma"] == pytest.approx(mixed_data["y"].std()), term


def test_bernoulli_smoke_fit(mixed_data):
    from hierpool.fit import fit

    model = build_model(
        {"name": "bern", "formula": "yes ~ x + (1|g)", "family": "bernoulli"},
        mixed_data,
        site_sd_prior_scale=1.0,
    )
    sampler = {
        "backend": "nutpie",
        "draws": 200,
        "tune": 200,
        "chains": 1,
        "seed": 2,
        "target_accept": 0.9,
        "prior_predictive_draws": 10,
        "posterior_predictive_draws": 20,
    }
    idata, loo = fit(model, sampler)
    assert {"Intercept", "x", "1|g", "1|g_sigma"} <= set(idata.posterior.data_vars)
    assert idata.log_likelihood["yes"].shape == (1, 200, len(mixed_data)) and np.isfinite(
        loo.elpd_loo
    )
    assert set(np.unique(idata.posterior_predictive["yes"].values)) <= {0, 1}
