"""hierpool's PyMC model of a Bambi model: the per-row form equals Bambi's, the sufficient-statistics form equals the rows."""

from __future__ import annotations

import arviz as az
import numpy as np
import pymc as pm
import pytest

from hierpool import pymc_model, sufficient
from hierpool.errors import ModelError
from hierpool.fit import fit
from hierpool.likelihood import choose_likelihood
from hierpool.models import build_model
from hierpool.simulate import SimulationSpec, simulate


@pytest.fixture(scope="module")
def data():
    frame, _ = simulate(SimulationSpec(n_sites=7, site_size={"min": 3, "max": 30}, seed=9))
    rng = np.random.default_rng(1)
    frame["age"] = rng.normal(40, 10, size=len(frame))
    frame["rater"] = np.where(rng.random(len(frame)) < 0.5, "r1", "r2")
    return frame


def spec(formula, **extra):
    return {"name": "m", "formula": formula, "family": "gaussian", **extra}


def test_site_statistics_give_the_residual_sum_of_squares():
    rng = np.random.default_rng(0)
    n, n_sites = 200, 6
    index = rng.integers(0, n_sites, size=n)
    a = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    y = rng.normal(size=n)
    theta = rng.normal(size=(n_sites, 3))
    stats = sufficient.site_statistics(a, y, index, n_sites)
    by_rows = np.sum((y - (a * theta[index]).sum(1)) ** 2)
    assert float(sufficient.residual_sum_of_squares(theta, stats)) == pytest.approx(by_rows, 1e-10)
    sigma = 0.7
    total = float(sufficient.gaussian_log_likelihood(theta, sigma, stats).eval())
    expected = np.sum(
        -np.log(sigma)
        - 0.5 * np.log(2 * np.pi)
        - (y - (a * theta[index]).sum(1)) ** 2 / (2 * sigma**2)
    )
    assert total == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "formula, correlate, noncentered",
    [
        ("scontrol ~ stress + (stress|site)", False, True),
        ("scontrol ~ stress + age + (stress|site)", True, True),
        ("scontrol ~ stress + (1|site)", False, False),
        ("scontrol ~ stress + age", False, True),
    ],
)
def test_the_sufficient_statistics_log_density_equals_the_rows(
    data, formula, correlate, noncentered
):
    model = build_model(spec(formula, noncentered=noncentered), data, 1.0)
    rows = pymc_model.build_pymc(model, correlate=correlate, noncentered=noncentered)
    stats = pymc_model.build_pymc(
        model, correlate=correlate, noncentered=noncentered, likelihood="sufficient"
    )
    assert {v.name for v in rows.free_RVs} == {v.name for v in stats.free_RVs}
    point = {k: v + 0.3 for k, v in rows.initial_point(random_seed=1).items()}
    assert stats.compile_logp()(point) == pytest.approx(rows.compile_logp()(point), rel=1e-10)


def both_log_likelihoods(model, **build):
    """hierpool's and Bambi's pointwise log-likelihood at the same 4 prior draws of hierpool's model."""
    mine = pymc_model.build_pymc(model, **build)
    draws = pm.sample_prior_predictive(draws=4, model=mine, random_seed=3)
    ours = pm.compute_log_likelihood(
        az.InferenceData(posterior=draws.prior),
        model=mine,
        extend_inferencedata=False,
        progressbar=False,
    )
    idata = az.InferenceData(posterior=pymc_model.public_variables(draws.prior))
    return ours, model.compute_log_likelihood(idata, inplace=False).log_likelihood


@pytest.mark.parametrize("correlate", [False, True])
def test_the_per_row_model_has_bambis_log_likelihood(data, correlate):
    """Bambi's own likelihood at the same parameter values: the names, dims and level order match."""
    model = build_model(spec("scontrol ~ stress + age + (stress|site)"), data, 1.0)
    ours, theirs = both_log_likelihoods(model, correlate=correlate)
    np.testing.assert_allclose(theirs["scontrol"].values, ours["scontrol"].values, rtol=1e-8)


FAMILY_CASES = {  # family, formula, how the outcome is made from the simulated Gaussian one
    "bernoulli": ("bernoulli", "y ~ stress + (1|site)", "binary"),
    "binomial": ("binomial", "p(y, n) ~ stress + (stress|site)", "successes"),
    "poisson": ("poisson", "y ~ stress + age + (1|site) + (1|rater)", "counts"),
    "negativebinomial": ("negativebinomial", "y ~ stress + (1|site)", "counts"),
    "t": ("t", "scontrol ~ stress + (1|site:rater)", None),
}


def family_data(data, outcome):
    frame = data.copy()
    rng = np.random.default_rng(5)
    if outcome == "binary":
        frame["y"] = (frame["scontrol"] > frame["scontrol"].median()).astype(int)
    elif outcome == "successes":
        frame["n"] = rng.integers(3, 9, size=len(frame))
        frame["y"] = rng.binomial(frame["n"], 0.4)
    elif outcome == "counts":
        frame["y"] = rng.poisson(3.0, size=len(frame))
    frame["se"] = rng.uniform(0.5, 2.0, size=len(frame))
    return frame


@pytest.mark.parametrize("case", sorted(FAMILY_CASES))
def test_the_per_row_model_has_bambis_log_likelihood_for_every_family(data, case):
    """Every family and several grouping factors: the model a fit samples is Bambi's."""
    family, formula, outcome = FAMILY_CASES[case]
    frame = family_data(data, outcome)
    model = build_model({**spec(formula), "family": family}, frame, 1.0)
    ours, theirs = both_log_likelihoods(model)
    (name,) = theirs.data_vars
    assert np.isfinite(ours[name].values).all()
    np.testing.assert_allclose(theirs[name].values, ours[name].values, rtol=1e-8)


def test_the_per_row_model_with_a_known_se_is_normal_with_that_se(data):
    """Summary data (Bambi's own log-likelihood fails on its offset-only sigma): by hand."""
    from scipy import stats

    frame = family_data(data, None)
    model = build_model(spec("scontrol ~ 1 + (1|site)", known_se="se"), frame, 1.0)
    mine = pymc_model.build_pymc(model)
    draws = pm.sample_prior_predictive(draws=4, model=mine, random_seed=3).prior
    ours = pm.compute_log_likelihood(
        az.InferenceData(posterior=draws), model=mine, extend_inferencedata=False, progressbar=False
    )["scontrol"].values
    site = model.components["mu"].group_specific_terms["1|site"].group_index
    mu = draws["Intercept"].values[..., None] + draws["1|site"].values[..., site]
    by_hand = stats.norm.logpdf(frame["scontrol"].to_numpy(), mu, frame["se"].to_numpy())
    np.testing.assert_allclose(ours, by_hand, rtol=1e-8)


def test_auto_chooses_the_statistics_where_they_are_fewer_than_the_rows(data):
    gaussian = build_model(spec("scontrol ~ stress + (stress|site)"), data, 1.0)
    # 7 sites × 4 design columns (intercept, stress, 1|site, stress|site) = 28 < the rows
    assert len(data) > 28
    assert choose_likelihood(gaussian, "auto")[0] == "sufficient"
    assert choose_likelihood(gaussian, "rows")[0] == "rows"
    few = data.groupby("site", observed=True).head(3)  # 3 rows a site: 21 rows, 28 statistics
    likelihood, why = choose_likelihood(
        build_model(spec("scontrol ~ stress + (stress|site)"), few, 1.0), "auto"
    )
    assert (
        likelihood == "rows" and f"{len(few)} rows, fewer than levels × design columns (28)" in why
    )
    means = build_model(spec("scontrol ~ 1 + (1|site)"), few, 1.0)
    assert choose_likelihood(means, "auto")[0] == "sufficient"  # 21 rows, 7 × 2
    crossed = build_model(spec("scontrol ~ stress + (1|site) + (1|rater)"), data, 1.0)
    likelihood, why = choose_likelihood(crossed, "auto")
    assert likelihood == "rows" and "2 grouping factors" in why
    binary = data.assign(scontrol=(data["scontrol"] > data["scontrol"].median()).astype(int))
    logistic = build_model(
        {**spec("scontrol ~ stress + (1|site)"), "family": "bernoulli"}, binary, 1.0
    )
    assert "bernoulli" in choose_likelihood(logistic, "auto")[1]
    with pytest.raises(ModelError, match="does not apply"):
        choose_likelihood(logistic, "sufficient")


def test_a_fit_with_the_statistics_has_every_group_later_stages_read(data):
    model = build_model(spec("scontrol ~ stress + (stress|site)"), data, 1.0)
    sampler = {
        "backend": "nutpie",
        "draws": 150,
        "tune": 150,
        "chains": 2,
        "seed": 4,
        "target_accept": 0.95,
        "likelihood": "sufficient",
        "prior_predictive_draws": 10,
        "posterior_predictive_draws": 20,
    }
    idata, loo = fit(model, sampler, cores=2)
    assert idata.posterior.attrs["hierpool_likelihood"].startswith("sufficient")
    assert {
        "posterior",
        "observed_data",
        "posterior_predictive",
        "prior",
        "prior_predictive",
    } <= set(idata.groups())
    assert idata.observed_data["scontrol"].shape == (len(data),)
    assert {"Intercept", "stress", "1|site", "stress|site_sigma", "sigma"} <= set(idata.posterior)
    assert loo.n_data_points == len(data) and np.isfinite(loo.elpd_loo)


def test_progress_line_counts_and_estimates_the_time_left():
    from hierpool.progress import progress_line

    line = progress_line(3000, 12000, True, 2, 4, 30.0)
    assert line == (
        "sampling: 4 chains, 3000/12000 draws (25%, tuning done), 2 divergences, 30 s, about 90 s left"
    )
    assert "time left unknown" in progress_line(0, 100, False, 0, 2, 1.0)


def test_sampling_with_progress_logs_and_draws_what_pm_sample_draws(data, monkeypatch, caplog):
    import logging

    from hierpool import progress

    model = build_model(spec("scontrol ~ stress + (1|site)"), data, 1.0)
    pm_model = pymc_model.build_pymc(model)
    monkeypatch.setattr(progress, "INTERVAL_S", 0.05)
    monkeypatch.setattr(progress, "POLL_S", 0.01)
    settings = dict(draws=300, tune=300, chains=2, target_accept=0.9, random_seed=5)
    with caplog.at_level(logging.INFO, logger="hierpool.progress"):
        ours = progress.sample(pm_model, **settings)
    assert any(r.getMessage().startswith("sampling: 2 chains,") for r in caplog.records)
    assert any("sampling: done, 2 chains × 300 draws" in r.getMessage() for r in caplog.records)
    theirs = pm.sample(
        model=pm_model,
        nuts_sampler="nutpie",
        progressbar=False,
        **{k: v for k, v in settings.items()},
    )
    np.testing.assert_array_equal(ours.posterior["sigma"].values, theirs.posterior["sigma"].values)
    assert "observed_data" in ours.groups() and ours.posterior.attrs["sampling_time"] > 0


def test_progress_counts_only_the_draws_done_when_chains_wait_for_a_core():
    """nutpie pads lagging chains with NaN: 2 chains run on 2 cores while 2 wait."""
    import arviz as az
    import xarray as xr

    from hierpool.progress import _trace_counts

    def stats(done_per_chain, width, diverging_at=()):
        logp = np.full((4, width), np.nan)
        diverging = np.zeros((4, width), bool)
        for chain, n in enumerate(done_per_chain):
            logp[chain, :n] = -1.0
        for chain, draw in diverging_at:
            diverging[chain, draw] = True
        return xr.Dataset(
            {"logp": (("chain", "draw"), logp), "diverging": (("chain", "draw"), diverging)}
        )

    first_two_tuning = az.InferenceData(
        warmup_sample_stats=stats([300, 280, 0, 0], 300), sample_stats=stats([0, 0, 0, 0], 0)
    )
    assert _trace_counts(first_two_tuning) == (580, False, 0)
    first_two_sampling = az.InferenceData(
        warmup_sample_stats=stats([500, 500, 0, 0], 500),
        sample_stats=stats([700, 650, 0, 0], 700, diverging_at=[(0, 3), (1, 690)]),
    )
    # chain 1's divergence at draw 690 is real (650 done); padded draws never count
    assert _trace_counts(first_two_sampling) == (2350, True, 1)
    one_more_started = az.InferenceData(
        warmup_sample_stats=stats([500, 500, 20, 0], 500),
        sample_stats=stats([1000, 1000, 0, 0], 1000),
    )
    assert _trace_counts(one_more_started) == (3020, False, 0)
