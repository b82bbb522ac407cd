"""Correlated varying effects (hierpool.correlated): the PyMC model built from Bambi's design."""

from __future__ import annotations

import arviz as az
import numpy as np
import pymc as pm
import pytest

from hierpool import correlated, pymc_model, variance
from hierpool.errors import ModelError
from hierpool.models import build_model
from hierpool.simulate import SimulationSpec, simulate


@pytest.fixture(scope="module")
def data():
    frame, _ = simulate(
        SimulationSpec(
            n_sites=6, site_size=12, sd_intercept=0.5, sd_slope=0.3, correlation=0.6, seed=5
        )
    )
    frame["z"] = np.random.default_rng(0).normal(size=len(frame))
    return frame


def spec(formula, **extra):
    return {"name": "m", "formula": formula, "family": "gaussian", "correlated": True, **extra}


def test_covariance_sd_and_correlation_from_the_cholesky_factor():
    rng = np.random.default_rng(1)
    sd = np.array([0.5, 0.2, 1.5])
    a = rng.normal(size=(3, 3))
    corr = np.corrcoef(a @ a.T + 3 * np.eye(3))
    cov_true = np.outer(sd, sd) * corr
    chol = np.linalg.cholesky(cov_true)
    cov, sd_out, corr_out = correlated.covariance_from_cholesky(np.stack([chol, 2 * chol]))
    np.testing.assert_allclose(cov[0], cov_true, atol=1e-12)
    np.testing.assert_allclose(sd_out, [sd, 2 * sd], atol=1e-12)
    np.testing.assert_allclose(corr_out[1], corr, atol=1e-12)


def test_the_sampled_correlation_and_covariance_match_the_cholesky_factor(data):
    model = build_model(spec("scontrol ~ stress + (stress|site)"), data, 1.0)
    pm_model = pymc_model.pymc_model(model)
    draws = pm.sample_prior_predictive(draws=50, model=pm_model, random_seed=2)
    prior = draws.prior
    packed = prior["site__chol"].values.reshape(-1, 3)
    chol = np.zeros((len(packed), 2, 2))
    chol[:, 0, 0], chol[:, 1, 0], chol[:, 1, 1] = packed[:, 0], packed[:, 1], packed[:, 2]
    cov, sd, corr = correlated.covariance_from_cholesky(chol)
    np.testing.assert_allclose(prior["1|site_sigma"].values.ravel(), sd[:, 0], rtol=1e-10)
    np.testing.assert_allclose(prior["stress|site_sigma"].values.ravel(), sd[:, 1], rtol=1e-10)
    np.testing.assert_allclose(prior["site_corr"].values.ravel(), corr[:, 0, 1], rtol=1e-8)
    np.testing.assert_allclose(prior["site_cov"].values.ravel(), cov[:, 0, 1], rtol=1e-8)
    assert list(prior["site_corr"].coords["site__corr_pair"].values) == ["Intercept, stress"]


def test_a_centred_block_and_a_second_independent_factor(data):
    frame = data.assign(rater=np.tile(["r1", "r2", "r3"], len(data) // 3 + 1)[: len(data)])
    model = build_model(
        spec("scontrol ~ stress + (stress|site) + (1|rater)", noncentered=False, lkj_eta=1.0),
        frame,
        1.0,
    )
    assert pymc_model.correlated_settings(model) == {"eta": 1.0, "factors": ["site"]}
    names = set(pymc_model.pymc_model(model).named_vars)
    assert {"site__effects", "site_corr", "1|rater", "1|rater_sigma", "1|site"} <= names
    assert "rater_corr" not in names


def test_three_correlated_terms_give_three_pairs(data):
    model = build_model(spec("scontrol ~ stress + z + (stress + z|site)"), data, 1.0)
    coords = pymc_model.pymc_model(model).coords["site__corr_pair"]
    assert list(coords) == ["Intercept, stress", "Intercept, z", "stress, z"]


def test_correlated_needs_two_terms_by_one_factor(data):
    with pytest.raises(ModelError, match="at least two terms varying by one grouping factor"):
        build_model(spec("scontrol ~ stress + (1|site)"), data, 1.0)


def test_a_categorical_slope_is_refused_with_advice(data):
    frame = data.assign(
        arm=np.where(
            np.arange(len(data)) % 3 == 0, "a", np.where(np.arange(len(data)) % 3 == 1, "b", "c")
        )
    )
    with pytest.raises(ModelError, match="categorical slope"):
        build_model(spec("scontrol ~ stress + (C(arm)|site)"), frame, 1.0)


def test_vpc_includes_the_covariance_term():
    sd0, sd1, rho, sigma2 = 0.5, 0.2, -0.6, 0.36
    x = np.array([-2.0, 0.0, 1.0, 3.0])
    var = variance.between_site_variance(sd0, sd1, rho, x)
    cov = np.array([[sd0**2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1**2]])
    by_hand = np.array([np.array([1, xi]) @ cov @ np.array([1, xi]) for xi in x])
    np.testing.assert_allclose(var, by_hand)
    np.testing.assert_allclose(
        var / (var + sigma2),
        (sd0**2 + 2 * rho * sd0 * sd1 * x + sd1**2 * x**2)
        / (sd0**2 + 2 * rho * sd0 * sd1 * x + sd1**2 * x**2 + sigma2),
    )
    assert variance.between_site_variance(sd0, sd1, 0.0, 2.0) == pytest.approx(sd0**2 + 4 * sd1**2)


def test_a_binomial_correlated_model_builds_with_bambis_likelihood():
    frame, _ = simulate(
        SimulationSpec(family="binomial", trials=6, n_sites=5, site_size=10, seed=4)
    )
    model = build_model(
        {**spec("p(scontrol, trials) ~ stress + (stress|site)"), "family": "binomial"}, frame, 1.0
    )
    draws = pm.sample_prior_predictive(draws=3, model=pymc_model.pymc_model(model), random_seed=1)
    idata = draws.copy()
    idata.add_groups(posterior=pymc_model.public_variables(draws.prior))
    mine = pm.compute_log_likelihood(
        az.InferenceData(posterior=draws.prior),
        model=pymc_model.pymc_model(model),
        extend_inferencedata=False,
        progressbar=False,
    )
    name = next(iter(mine.data_vars))
    theirs = model.compute_log_likelihood(idata, inplace=False).log_likelihood[name]
    np.testing.assert_allclose(theirs.values, mine[name].values, rtol=1e-8)


def test_a_simulated_correlation_of_0_6_is_covered_and_sites_are_recovered_as_well():
    """40 sites of 10: the 95% HDI covers the true correlation, site effects at least as close."""
    from hierpool import posterior, summaries
    from hierpool.fit import record_model, sample

    frame, truth = simulate(
        SimulationSpec(
            n_sites=40,
            site_size=10,
            intercept=0.0,
            slope=0.5,
            sd_intercept=0.6,
            sd_slope=0.4,
            correlation=0.6,
            sigma=0.6,
            seed=1,
        )
    )
    true = np.array([[s["intercept"], s["slope"]] for s in truth["sites"]])
    columns = {"outcome": "scontrol", "predictor": "stress", "group": "site"}
    sampler = {"draws": 500, "tune": 500, "chains": 2, "seed": 1, "target_accept": 0.95}
    errors = {}
    for is_correlated in (False, True):
        model = build_model(
            spec("scontrol ~ stress + (stress|site)", correlated=is_correlated), frame, 1.0
        )
        idata = sample(model, {**sampler, "backend": "nutpie"}, cores=2)
        record_model(model, idata)
        assert int(idata.sample_stats["diverging"].sum()) == 0
        lines = posterior.site_lines(idata, columns)
        means = np.column_stack([v.mean(("chain", "draw")).values for v in lines])
        errors[is_correlated] = float(np.sqrt(np.mean((means - true) ** 2)))
        if is_correlated:
            rho = summaries.summarise(posterior.site_correlation(idata, columns))
            assert rho["hdi_low"] <= 0.6 <= rho["hdi_high"]
            assert rho["mean"] > 0.2
        else:
            assert posterior.site_correlation(idata, columns) is None
    assert errors[True] <= errors[False]


def test_the_schema_default_of_lkj_eta_is_the_librarys():
    import yaml

    schema = yaml.safe_load(
        open(
            correlated.__file__.replace(
                "src/hierpool/correlated.py", "workflow/schemas/config.schema.yaml"
            )
        )
    )
    assert (
        schema["definitions"]["model"]["properties"]["lkj_eta"]["default"] == correlated.DEFAULT_ETA
    )
