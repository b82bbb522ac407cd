"""Unit tests for hierpool.variance on posteriors whose ICC, VPC, between-site SD and R² are known exactly."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import COLS, make_data, make_fit, posterior_dataset

from hierpool import r2, variance
from hierpool.fitinfo import PredictorScale


def fit_of(post):
    return az.InferenceData(posterior=post)


# --------------------------------------------------------------------------- ICC


def test_icc_is_exact_for_fixed_variances():
    post = posterior_dataset("varying_intercepts", ["a", "b"], sd_intercept=1.0, sigma=1.0)
    np.testing.assert_allclose(variance.icc_draws(post, COLS), 0.5)
    post = posterior_dataset("varying_intercepts", ["a", "b"], sd_intercept=0.6, sigma=0.8)
    np.testing.assert_allclose(variance.icc_draws(post, COLS), 0.36 / (0.36 + 0.64))


def test_icc_summary_is_the_posterior_of_the_ratio_not_a_ratio_of_means():
    # half the draws have sd_site^2 = 1, half 9; sigma = 1: ICC is 0.5 or 0.9, mean 0.7.
    sd = np.array([[1.0, 3.0] * 50, [3.0, 1.0] * 50])
    post = posterior_dataset("varying_intercepts", ["a", "b"], sd_intercept=sd, sigma=1.0)
    table = variance.icc_table({"vi": fit_of(post)}, COLS)
    assert table.loc[0, "mean"] == pytest.approx(0.7)
    assert table.loc[0, "mean"] != pytest.approx(5.0 / 6.0)  # ratio of the mean variances
    assert table.loc[0, "hdi_low"] == pytest.approx(0.5) and table.loc[
        0, "hdi_high"
    ] == pytest.approx(0.9)
    assert table.loc[0, "quantity"] == "icc" and table.loc[0, "hdi_prob"] == 0.95


def test_icc_table_lists_only_fits_with_site_effects():
    fits = {
        m: fit_of(posterior_dataset(m, ["a", "b"]))
        for m in ("complete_pooling", "no_pooling", "varying_intercepts", "varying_slopes")
    }
    table = variance.icc_table(fits, COLS)
    assert table["model"].tolist() == ["varying_intercepts", "varying_slopes"]
    assert table["quantity"].tolist() == ["icc", "vpc_at_center"]
    with pytest.raises(ValueError, match="no varying intercept"):
        variance.icc_draws(fits["no_pooling"], COLS)
    assert set(variance.not_applicable(fits, COLS)) == {"complete_pooling", "no_pooling"}
    assert "no varying intercept" in variance.not_applicable(fits, COLS)["no_pooling"]


def _restamp(post, family, link=None, formula=None):
    import arviz as az

    from hierpool.fitinfo import stamp

    idata = az.InferenceData(posterior=post)
    return stamp(idata, formula or post.attrs["hierpool_formula"], family, link)


@pytest.mark.parametrize("link,latent", [("logit", np.pi**2 / 3), ("probit", 1.0)])
def test_latent_scale_icc_of_a_binary_outcome_uses_the_links_variance(link, latent):
    post = posterior_dataset("varying_intercepts", ["a", "b"], sd_intercept=1.2).drop_vars("sigma")
    fit = _restamp(post, "bernoulli", link)
    icc = variance.icc_draws(fit, COLS)
    np.testing.assert_allclose(icc.values, 1.44 / (1.44 + latent))
    assert "latent" in variance.residual_variance(fit, COLS)[1]


def test_poisson_icc_follows_nakagawa_lognormal_approximation():
    """ICC = s^2 / (s^2 + ln(1 + 1/lambda)), lambda = exp(b0 + s^2/2): Nakagawa, Johnson & Schielzeth (2017)."""
    data = make_data([4, 6])
    post = posterior_dataset(
        "varying_intercepts", ["s1", "s2"], intercept=1.0, slope=0.0, sd_intercept=0.5
    ).drop_vars("sigma")
    fit = _restamp(post, "poisson")
    lam = np.exp(1.0 + 0.25 / 2)
    np.testing.assert_allclose(
        variance.icc_draws(fit, COLS, data).values, 0.25 / (0.25 + np.log1p(1 / lam))
    )
    with pytest.raises(ValueError, match="data"):
        variance.icc_draws(fit, COLS)
    post_nb = post.assign(alpha=(("chain", "draw"), np.full((2, 100), 2.0)))
    fit_nb = _restamp(post_nb, "negativebinomial")
    np.testing.assert_allclose(
        variance.icc_draws(fit_nb, COLS, data).values, 0.25 / (0.25 + np.log(1 + 1 / lam + 1 / 2.0))
    )


def test_one_icc_per_grouping_factor_with_every_variance_in_the_denominator():
    import xarray as xr

    post = posterior_dataset("varying_intercepts", ["a", "b"], sd_intercept=1.0, sigma=1.0)
    post["1|site:cls_sigma"] = xr.full_like(post["1|site_sigma"], 2.0)
    fit = _restamp(post, "gaussian", formula="scontrol ~ stress + (1|site) + (1|site:cls)")
    table = variance.icc_table({"nested": fit}, COLS)
    assert table["factor"].tolist() == ["site", "site:cls"]
    np.testing.assert_allclose(table["mean"], [1 / 6, 4 / 6])
    summary = variance.variance_summary(
        table, r2.r2_table({}, make_data([2, 2]), COLS), pd.DataFrame(), {}, "site"
    )
    assert summary["icc"]["nested"]["mean"] == pytest.approx(1 / 6)
    assert summary["icc_other_factors"]["nested"]["site:cls"]["mean"] == pytest.approx(4 / 6)


# --------------------------------------------------------------------------- VPC and between-site SD


def test_vpc_follows_sd0_sd1_and_sigma_on_the_original_scale():
    post = posterior_dataset(
        "varying_slopes", ["a", "b"], sd_intercept=1.0, sd_slope=0.5, sigma=1.0
    )
    scale = PredictorScale(center=3.0, scale=1.0)
    vpc = variance.vpc_draws(post, COLS, [3.0, 5.0, 1.0], scale)
    # var_site(x) = 1 + (x - 3)^2 * 0.25
    np.testing.assert_allclose(vpc.values[0, 0], [0.5, 2.0 / 3.0, 2.0 / 3.0])
    # a scaled predictor: sd_slope 0.5 per model unit = 0.25 per original unit; x = 5 is 1 model unit away
    vpc_scaled = variance.vpc_draws(post, COLS, [5.0], PredictorScale(center=3.0, scale=2.0))
    np.testing.assert_allclose(vpc_scaled.values[0, 0], [1.25 / 2.25])


def test_vpc_of_varying_intercepts_is_flat_and_equals_the_icc():
    post = posterior_dataset("varying_intercepts", ["a"], sd_intercept=0.5, sigma=1.0, spread=0.01)
    curve = variance.vpc_curve({"vi": fit_of(post)}, COLS, PredictorScale(3.0), 1.0, 5.0, n=7)
    assert len(curve) == 7
    np.testing.assert_allclose(curve["vpc_mean"], curve["vpc_mean"].iloc[0])
    assert curve["vpc_mean"].iloc[0] == pytest.approx(float(variance.icc_draws(post, COLS).mean()))
    np.testing.assert_allclose(curve["x"], np.linspace(1, 5, 7))
    np.testing.assert_allclose(curve["x_model"], np.linspace(-2, 2, 7))


def test_vpc_curve_columns_bands_and_skipped_models():
    fits = {
        "cp": fit_of(posterior_dataset("complete_pooling", ["a"])),
        "vs": fit_of(posterior_dataset("varying_slopes", ["a", "b"], spread=0.05)),
    }
    curve = variance.vpc_curve(fits, COLS, PredictorScale(0.0), -1.0, 1.0, n=5)
    assert set(curve["model"]) == {"vs"}
    assert list(curve.columns) == [
        "model",
        "role",
        "x",
        "x_model",
        "vpc_mean",
        "vpc_median",
        "vpc_hdi_low",
        "vpc_hdi_high",
        "site_sd_mean",
        "site_sd_hdi_low",
        "site_sd_hdi_high",
    ]
    assert (curve["vpc_hdi_low"] <= curve["vpc_mean"]).all() and (
        curve["vpc_mean"] <= curve["vpc_hdi_high"]
    ).all()
    # symmetric around the centre, lowest at it
    assert curve["vpc_mean"].iloc[0] == pytest.approx(curve["vpc_mean"].iloc[-1], rel=1e-9)
    assert curve["vpc_mean"].idxmin() == 2
    with pytest.raises(ValueError):
        variance.predictor_grid(2.0, 1.0)
    assert variance.predictor_grid(1.0, 1.0).tolist() == [1.0]


def test_between_site_sd_at_labelled_points():
    post = posterior_dataset("varying_slopes", ["a"], sd_intercept=0.3, sd_slope=0.4, sigma=1.0)
    table = variance.between_site_sd(
        {"vs": fit_of(post)}, COLS, PredictorScale(2.0), {"min": 0.0, "centre": 2.0, "max": 4.5}
    )
    assert table["point"].tolist() == ["min", "centre", "max"]
    expected = np.sqrt(0.09 + 0.16 * np.array([4.0, 0.0, 6.25]))
    np.testing.assert_allclose(table["site_sd_mean"], expected)
    np.testing.assert_allclose(table["site_sd_hdi_low"], expected)


def test_predictor_points_are_on_the_original_scale():
    data = pd.DataFrame({"site": ["a"] * 5, "stress": [-2.0, -1.0, 0.0, 1.0, 2.0], "scontrol": 0.0})
    points = variance.predictor_points(data, COLS, PredictorScale(center=3.0, scale=0.5))
    assert points == {"min": 2.0, "q25": 2.5, "median": 3.0, "q75": 3.5, "max": 4.0}


# --------------------------------------------------------------------------- Bayesian R²


@pytest.fixture(scope="module")
def r2_data():
    return make_data([4, 6, 10], intercepts=[1.0, 2.0, 3.0], slopes=[-0.5, -0.5, -0.5], seed=5)


def test_r2_complete_pooling_is_exact(r2_data):
    b, s = -0.5, 0.7
    fit = make_fit(
        "complete_pooling", r2_data, intercept=2.0, slope=b, sigma=s, spread=0.0, predictive=False
    )
    var_fit = b**2 * np.var(r2_data["stress"], ddof=1)
    expected = var_fit / (var_fit + s**2)
    np.testing.assert_allclose(r2.bayes_r2_draws(fit, r2_data, COLS, "conditional"), expected)
    np.testing.assert_allclose(
        r2.bayes_r2_draws(fit, r2_data, COLS, "marginal"), expected
    )  # no site variance


def test_r2_conditional_and_marginal_for_varying_intercepts(r2_data):
    u = np.array([-1.0, 0.0, 1.0])
    a, b, s, sd0 = 2.0, -0.5, 0.5, 0.8
    fit = make_fit(
        "varying_intercepts",
        r2_data,
        intercept=a,
        slope=b,
        sigma=s,
        sd_intercept=sd0,
        site_intercept=u,
        spread=0.0,
        predictive=False,
    )
    codes = r2_data["site"].cat.codes.to_numpy()
    x = r2_data["stress"].to_numpy()
    mu = a + u[codes] + b * x
    cond = np.var(mu, ddof=1) / (np.var(mu, ddof=1) + s**2)
    pop = a + b * x
    marg = np.var(pop, ddof=1) / (np.var(pop, ddof=1) + sd0**2 + s**2)
    np.testing.assert_allclose(r2.bayes_r2_draws(fit, r2_data, COLS, "conditional"), cond)
    np.testing.assert_allclose(r2.bayes_r2_draws(fit, r2_data, COLS, "marginal"), marg)
    assert marg < cond


def test_r2_marginal_of_varying_slopes_counts_slope_variance(r2_data):
    a, b, s, sd0, sd1 = 2.0, -0.5, 0.5, 0.8, 0.3
    fit = make_fit(
        "varying_slopes",
        r2_data,
        intercept=a,
        slope=b,
        sigma=s,
        sd_intercept=sd0,
        sd_slope=sd1,
        spread=0.0,
        predictive=False,
    )
    x = r2_data["stress"].to_numpy()
    pop = a + b * x
    marg = np.var(pop, ddof=1) / (np.var(pop, ddof=1) + sd0**2 + sd1**2 * np.mean(x**2) + s**2)
    np.testing.assert_allclose(r2.bayes_r2_draws(fit, r2_data, COLS, "marginal"), marg)
    with pytest.raises(ValueError):
        r2.bayes_r2_draws(fit, r2_data, COLS, "adjusted")


def test_r2_table_rows_and_no_marginal_for_no_pooling(r2_data):
    fits = {
        m: make_fit(m, r2_data, predictive=False)
        for m in ("complete_pooling", "no_pooling", "varying_intercepts")
    }
    table = r2.r2_table(fits, r2_data, COLS)
    assert list(zip(table["model"], table["kind"])) == [
        ("complete_pooling", "conditional"),
        ("complete_pooling", "marginal"),
        ("no_pooling", "conditional"),
        ("varying_intercepts", "conditional"),
        ("varying_intercepts", "marginal"),
    ]
    assert ((table["mean"] > 0) & (table["mean"] < 1)).all()
    summary = variance.variance_summary(variance.icc_table(fits, COLS), table, pd.DataFrame())
    assert set(summary["r2"]) == set(fits) and set(summary["icc"]) == {"varying_intercepts"}
