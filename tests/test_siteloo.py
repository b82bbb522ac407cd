"""Leave-one-site-out from the full fit (hierpool.siteloo): the integrated densities written out, and refits."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.special import logsumexp

from hierpool import crossval, psis, quadrature, refitplan, siteloo
from hierpool.fit import fit
from hierpool.models import build_model


def sites_data(seed: int, sizes) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat([f"s{i:02d}" for i in range(len(sizes))], sizes)
    data = pd.DataFrame({"g": pd.Categorical(g), "x": rng.normal(2.0, 1.0, g.size)})
    data["w"] = rng.normal(size=g.size)
    effects = rng.normal(0, [0.7, 0.4], (len(sizes), 2))[data["g"].cat.codes]
    data["y"] = 3 + effects[:, 0] + (0.5 + effects[:, 1]) * data["x"] + 0.3 * data["w"]
    data["y"] += rng.normal(0, 0.8, g.size)
    return data


def fake_posterior(rng, n_samples: int, corr: bool) -> xr.Dataset:
    """Draws of the parameters a varying-slopes model with a covariate has (2 chains)."""

    def draws(values):
        return (("chain", "draw"), np.asarray(values).reshape(2, -1))

    out = {
        "Intercept": draws(rng.normal(3, 0.3, n_samples)),
        "x": draws(rng.normal(0.5, 0.1, n_samples)),
        "w": draws(rng.normal(0.3, 0.1, n_samples)),
        "1|g_sigma": draws(rng.gamma(4, 0.2, n_samples)),
        "x|g_sigma": draws(rng.gamma(4, 0.1, n_samples)),
        "sigma": draws(rng.gamma(20, 0.04, n_samples)),
    }
    if corr:
        out["g_corr"] = (
            ("chain", "draw", "g__corr_pair"),
            rng.uniform(-0.9, 0.9, (2, n_samples // 2, 1)),
        )
    return xr.Dataset(out)


def written_out(data: pd.DataFrame, post: xr.Dataset, slopes: bool) -> np.ndarray:
    """log N(y_j | X_j beta, sigma² I + Z_j T Z_jᵀ) per site and draw, with SciPy's multivariate normal."""
    flat = {k: v.values.reshape(-1, *v.shape[2:]) for k, v in post.items()}
    sites = sorted(data["g"].astype(str).unique())
    out = np.empty((len(sites), flat["sigma"].size))
    for j, site in enumerate(sites):
        rows = data[data["g"].astype(str) == site]
        z = np.column_stack([np.ones(len(rows)), rows["x"]]) if slopes else np.ones((len(rows), 1))
        for s in range(out.shape[1]):
            mean = flat["Intercept"][s] + flat["x"][s] * rows["x"] + flat["w"][s] * rows["w"]
            sd = np.array([flat["1|g_sigma"][s], flat["x|g_sigma"][s]][: z.shape[1]])
            rho = flat["g_corr"][s, 0] if "g_corr" in flat else 0.0
            corr = np.array([[1, rho], [rho, 1]])[: z.shape[1], : z.shape[1]]
            t = corr * np.outer(sd, sd)
            cov = flat["sigma"][s] ** 2 * np.eye(len(rows)) + z @ t @ z.T
            out[j, s] = stats.multivariate_normal(mean.values, cov).logpdf(rows["y"].values)
    return out


@pytest.mark.parametrize(
    ("formula", "corr"),
    [("y ~ x + w + (x|g)", False), ("y ~ x + w + (x|g)", True), ("y ~ x + w + (1|g)", False)],
)
def test_site_log_likelihood_is_the_multivariate_normal_written_out(formula, corr):
    data = sites_data(1, [1, 4, 9, 2, 15])
    model = build_model({"name": "m", "formula": formula}, data, site_sd_prior_scale=1.0)
    model.build()
    post = fake_posterior(np.random.default_rng(2), 40, corr)
    sites = data["g"].astype(str).values
    labels, index = np.unique(sites, return_inverse=True)
    design = siteloo._design(model, post)
    got = siteloo.site_log_likelihood(*design, index, len(labels), chunk_mb=0.001)
    want = written_out(data, post, slopes="(x|g)" in formula)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)


def test_complete_pooling_is_plain_psis_of_the_summed_rows():
    data = sites_data(3, [3, 8, 5])
    model = build_model({"name": "m", "formula": "y ~ x + w"}, data, site_sd_prior_scale=1.0)
    model.build()
    post = fake_posterior(np.random.default_rng(4), 60, corr=False)
    table = siteloo.site_loo(model, post, data["g"])
    flat = {k: v.values.reshape(-1) for k, v in post.items()}
    mean = (
        flat["Intercept"][:, None] + np.outer(flat["x"], data["x"]) + np.outer(flat["w"], data["w"])
    )
    rows_ll = stats.norm(mean, flat["sigma"][:, None]).logpdf(data["y"].values)
    codes = data["g"].cat.codes.values
    summed = np.stack([rows_ll[:, codes == j].sum(1) for j in range(3)])
    log_w, k = psis.psis_log_weights(summed)
    np.testing.assert_allclose(table["pareto_k"], k, atol=1e-12)
    np.testing.assert_allclose(table["elpd_joint"], logsumexp(log_w + summed, axis=1), atol=1e-10)
    pointwise = logsumexp(log_w[codes].T + rows_ll, axis=0)
    want = [pointwise[codes == j].sum() for j in range(3)]
    np.testing.assert_allclose(table["elpd"], want, atol=1e-10)
    assert list(table["n"]) == [3, 8, 5]


def test_new_site_rows_average_the_marginal_density_with_the_site_weights():
    data = sites_data(5, [6, 2, 11])
    model = build_model(
        {"name": "m", "formula": "y ~ x + w + (x|g)"}, data, site_sd_prior_scale=1.0
    )
    model.build()
    post = fake_posterior(np.random.default_rng(6), 50, corr=True)
    table = siteloo.site_loo(model, post, data["g"])
    x, beta, y, z, chol, sigma = siteloo._design(model, post)
    codes = data["g"].cat.codes.values
    site_ll = siteloo.site_log_likelihood(x, beta, y, z, chol, sigma, codes, 3)
    log_w, _ = psis.psis_log_weights(site_ll)
    var = sigma[:, None] ** 2 + (np.einsum("nl,slk->snk", z, chol) ** 2).sum(-1)
    rows_ll = stats.norm(beta @ x.T, np.sqrt(var)).logpdf(y)
    pointwise = logsumexp(log_w[codes].T + rows_ll, axis=0)
    np.testing.assert_allclose(
        table["elpd"], [pointwise[codes == j].sum() for j in range(3)], atol=1e-10
    )


def test_which_models_the_fit_answers():
    data = sites_data(7, [4, 5, 6])
    data["rater"] = pd.Categorical(np.arange(len(data)) % 3)
    cases = {
        "y ~ x + (x|g)": None,
        "y ~ x + w": None,
        "y ~ 0 + g + g:x": "no pooling",
        "y ~ x + (1|g) + (1|rater)": "varying by rater",
    }
    for formula, why in cases.items():
        model = build_model({"name": "m", "formula": formula}, data, site_sd_prior_scale=1.0)
        got = siteloo.why_not(model, formula, "g", "x")
        assert (got is None) if why is None else (why in got), (formula, got)
    bern = data.assign(b=(data["y"] > data["y"].median()).astype(int))
    model = build_model(
        {"name": "m", "formula": "b ~ x + (1|g)", "family": "bernoulli"},
        bern,
        site_sd_prior_scale=1.0,
    )
    assert siteloo.why_not(model, "b ~ x + (1|g)", "g", "x") is None
    model = build_model({"name": "m", "formula": "y ~ x + (1|g)", "family": "t"}, data)
    assert "not a Gaussian" in siteloo.why_not(model, "y ~ x + (1|g)", "g", "x")


SAMPLER = {
    "backend": "nutpie",
    "draws": 1000,
    "tune": 500,
    "chains": 2,
    "seed": 8,
    "target_accept": 0.9,
    "prior_predictive_draws": 10,
    "posterior_predictive_draws": 20,
}


def test_agrees_with_refits_that_leave_each_site_out():
    """The estimate from the full fit against refits without the site (Monte Carlo error apart).

    Site s12 (35 rows) is the one whose rows pull the population most: its Pareto k is high,
    and it is the one the estimate gets wrong (the workflow refits such sites).
    """
    sizes = [12, 25, 8, 30, 15, 20, 5, 40, 10, 18, 22, 7, 35, 14, 9, 28, 16, 11, 6, 19]
    data = sites_data(9, sizes)
    model = build_model(
        {"name": "m", "formula": "y ~ x + w + (x|g)"}, data, site_sd_prior_scale=1.0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata, _ = fit(model, SAMPLER, cores=1)
        table = siteloo.site_loo(model, idata.posterior, data["g"]).set_index("site")
        plan = refitplan.loso_plan("varying_slopes", data["g"], 100, 1)
        chosen = ["s00", "s07", "s12", "s18"]  # sizes 12, 40, 35, 6: refit these only
        units = [f"site{plan['site_folds'][s]}" for s in chosen]
        units = crossval.run_batch(model, SAMPLER, plan, units, data["g"])
    good = table["pareto_k"] < refitplan.pareto_threshold(2000)
    assert list(table.index[~good]) == ["s12"]
    refit = crossval.loso_table(units, "m").set_index("site")
    table = table.loc[refit.index]
    good = good.loc[refit.index]
    diff = (table["elpd"] - refit["elpd"])[good]
    assert (diff.abs() <= 0.3 + 0.025 * table["n"][good]).all(), diff
    assert (table["elpd_joint"] - refit["elpd_joint"])[good].abs().max() < 0.3
    assert abs(table.loc["s12", "elpd"] - refit.loc["s12", "elpd"]) > 5  # why it is refitted


def brute_force(family, y, trials, eta0, zl, alpha=3.0):
    """log ∫ Π_i p(y_i | eta0_i + zl_i u) N(u; 0, I) du by SciPy's adaptive integration (k = 1 or 2)."""
    from scipy import integrate

    def density(*u):
        mu = eta0 + zl @ np.array(u)
        if family in ("bernoulli", "binomial"):
            rows = stats.binom.logpmf(y, trials, 1 / (1 + np.exp(-mu)))
        elif family == "poisson":
            rows = stats.poisson.logpmf(y, np.exp(mu))
        else:
            rows = stats.nbinom.logpmf(y, alpha, alpha / (alpha + np.exp(mu)))
        return np.exp(rows.sum()) * stats.norm.pdf(u).prod()

    if zl.shape[1] == 1:
        return np.log(integrate.quad(density, -10, 10, epsabs=0, epsrel=1e-12, limit=200)[0])
    value = integrate.dblquad(lambda a, b: density(b, a), -9, 9, -9, 9, epsabs=0, epsrel=1e-10)
    return np.log(value[0])


@pytest.mark.parametrize("family", ["bernoulli", "binomial", "poisson", "negativebinomial"])
@pytest.mark.parametrize("k", [1, 2])
def test_glm_site_marginal_is_the_integral_written_out(family, k):
    from scipy.special import gammaln

    rng = np.random.default_rng(k + len(family))
    code = quadrature.FAMILY_CODES[family]
    for n in (1, 4, 12):
        eta0, zl = rng.normal(0.3, 0.5, n), rng.normal(0, 0.8, (n, k))
        zl[:, 0] = 0.9  # the intercept's loading: the site SD
        trials = rng.integers(1, 6, n).astype(float) if family == "binomial" else np.ones(n)
        if family in ("bernoulli", "binomial"):
            y = rng.binomial(trials.astype(int), 0.5).astype(float)
        else:
            y = rng.poisson(2.0, n).astype(float)
        const = quadrature.row_constant(family, y, trials).sum()
        if family == "negativebinomial":
            const += (gammaln(y + 3.0) - gammaln(3.0) + 3.0 * np.log(3.0)).sum()
        want = brute_force(family, y, trials, eta0, zl)
        for points, tol in ((None, 1e-3), (15, 1e-6)):
            nodes, log_w = quadrature.rule(k, points)
            got = const + quadrature.log_marginal(code, y, trials, eta0, zl, 3.0, nodes, log_w)
            assert abs(got - want) < tol, (n, points, got, want)


def test_glm_agrees_with_refits_that_leave_each_site_out():
    """A Bernoulli model with varying slopes: the estimate from the fit against refits without the site."""
    rng = np.random.default_rng(11)
    sizes = [12, 25, 8, 30, 15, 20, 5, 40, 10, 18, 22, 7, 35, 14, 9, 28, 16, 11, 6, 19]
    g = np.repeat([f"s{i:02d}" for i in range(len(sizes))], sizes)
    data = pd.DataFrame({"g": pd.Categorical(g), "x": rng.normal(0, 1, g.size)})
    effects = rng.normal(0, [0.8, 0.4], (len(sizes), 2))[data["g"].cat.codes]
    eta = -0.3 + effects[:, 0] + (0.7 + effects[:, 1]) * data["x"]
    data["b"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    spec = {"name": "m", "formula": "b ~ x + (x|g)", "family": "bernoulli"}
    model = build_model(spec, data, site_sd_prior_scale=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata, _ = fit(model, SAMPLER, cores=1)
        table = siteloo.site_loo(model, idata.posterior, data["g"]).set_index("site")
        plan = refitplan.loso_plan("varying_slopes", data["g"], 100, 1)
        chosen = ["s04", "s07", "s10", "s18"]  # sizes 15, 40, 22, 6
        units = crossval.run_batch(
            model, SAMPLER, plan, [f"site{plan['site_folds'][s]}" for s in chosen], data["g"]
        )
    assert (table["pareto_k"] < refitplan.pareto_threshold(2000)).all()
    refit = crossval.loso_table(units, "m").set_index("site")
    table = table.loc[refit.index]
    assert ((table["elpd"] - refit["elpd"]).abs() <= 0.1 + 0.01 * table["n"]).all()
    assert (table["elpd_joint"] - refit["elpd_joint"]).abs().max() < 0.3


def test_glm_site_loo_reads_the_model_binomial_trials_and_offset():
    """site_loo on a binomial model (successes of trials, an offset): each site's marginal and row densities."""
    rng = np.random.default_rng(13)
    data = pd.DataFrame({"g": pd.Categorical(np.repeat(["a", "b", "c"], [2, 5, 3]))})
    data["x"], data["off"] = rng.normal(size=10), rng.normal(0, 0.3, 10)
    data["n"] = rng.integers(1, 8, 10)
    data["y"] = rng.binomial(data["n"], 0.4)
    formula = "p(y, n) ~ x + offset(off) + (1|g)"
    model = build_model({"name": "m", "formula": formula, "family": "binomial"}, data)
    model.build()
    n_samples = 12
    post = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), rng.normal(-0.3, 0.2, (2, 6))),
            "x": (("chain", "draw"), rng.normal(0.5, 0.1, (2, 6))),
            "1|g_sigma": (("chain", "draw"), rng.gamma(4, 0.2, (2, 6))),
        }
    )
    table = siteloo.site_loo(model, post, data["g"])
    flat = {k: v.values.reshape(-1) for k, v in post.items()}
    codes = data["g"].cat.codes.values
    site_ll = np.empty((3, n_samples))
    rows_ll = np.empty((n_samples, 10))
    for s in range(n_samples):
        eta0 = flat["Intercept"][s] + flat["x"][s] * data["x"].values + data["off"].values
        zl = np.full((10, 1), flat["1|g_sigma"][s])
        y, n = data["y"].values.astype(float), data["n"].values.astype(float)
        for j in range(3):
            rows = codes == j
            site_ll[j, s] = brute_force("binomial", y[rows], n[rows], eta0[rows], zl[rows])
        for i in range(10):
            rows_ll[s, i] = brute_force(
                "binomial", y[i : i + 1], n[i : i + 1], eta0[i : i + 1], zl[i : i + 1]
            )
    log_w, k = psis.psis_log_weights(site_ll)
    np.testing.assert_allclose(table["elpd_joint"], logsumexp(log_w + site_ll, axis=1), atol=1e-3)
    np.testing.assert_allclose(table["pareto_k"], k, atol=1e-2)
    pointwise = logsumexp(log_w[codes].T + rows_ll, axis=0)
    np.testing.assert_allclose(
        table["elpd"], [pointwise[codes == j].sum() for j in range(3)], atol=1e-4
    )


def test_known_standard_errors_marginal_is_the_normal_with_both_variances():
    """Eight schools (one row each, known SEs): p(y_j | mu, tau) = Normal(y_j | mu, se_j² + tau²), exactly."""
    data = pd.DataFrame(
        {
            "school": pd.Categorical(list("ABCDEFGH")),
            "estimate": [28.0, 8, -3, 7, -1, 1, 18, 12],
            "se": [15.0, 10, 16, 11, 9, 11, 10, 18],
        }
    )
    spec = {"name": "m", "formula": "estimate ~ 1 + (1|school)", "known_se": "se"}
    model = build_model(spec, data)
    model.build()
    assert siteloo.why_not(model, spec["formula"], "school", None) is None
    rng = np.random.default_rng(17)
    post = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), rng.normal(8, 4, (2, 20))),
            "1|school_sigma": (("chain", "draw"), rng.gamma(2, 4, (2, 20))),
        }
    )
    table = siteloo.site_loo(model, post, data["school"])
    mu, tau = post["Intercept"].values.reshape(-1), post["1|school_sigma"].values.reshape(-1)
    sd = np.sqrt(data["se"].values[:, None] ** 2 + tau[None, :] ** 2)
    site_ll = stats.norm(mu[None, :], sd).logpdf(data["estimate"].values[:, None])
    log_w, k = psis.psis_log_weights(site_ll)
    want = logsumexp(log_w + site_ll, axis=1)
    np.testing.assert_allclose(table["elpd_joint"], want, atol=1e-9)
    np.testing.assert_allclose(table["elpd"], want, atol=1e-9)  # one row per school: the same
    np.testing.assert_allclose(table["pareto_k"], k, atol=1e-9)
