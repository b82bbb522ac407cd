"""Unit tests for hierpool.shrinkage: exact weights, the shrinkage identity, and like-with-like estimates."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_fixtures import COLS, make_data, make_fit

from hierpool import shrinkage, summaries
from hierpool.fitinfo import PredictorScale
from hierpool.sitedata import SiteData

SCALE = PredictorScale(center=3.0, scale=1.0)


def test_weights_are_exact_for_fixed_variances():
    data = make_data([1, 4, 16])
    fit = make_fit(
        "varying_intercepts", data, sigma=1.0, sd_intercept=0.5, spread=0.0, predictive=False
    )  # sigma^2/sd^2 = 4
    w = shrinkage.weight_draws(fit, [1, 4, 16], COLS, sites=["s1", "s2", "s3"])
    assert w.dims == ("chain", "draw", "site")
    np.testing.assert_allclose(w.values[0, 0], [0.2, 0.5, 0.8])
    np.testing.assert_allclose(w.values, np.broadcast_to([0.2, 0.5, 0.8], w.shape))
    with pytest.raises(ValueError):
        shrinkage.weight_draws(make_fit("no_pooling", data, predictive=False), [1, 4, 16], COLS)


def consistent_fits(data, alpha, beta, sigma, tau, draws=200, seed=0):
    """Fits whose varying-intercepts draws obey the shrinkage identity exactly, draw by draw.

    Hyperparameters vary over draws; each site's draw is set to w_j r_j + (1 - w_j) alpha,
    with r_j the site's mean outcome moved to the centre along the common slope beta.
    The no-pooling intercepts are r_j and its slopes beta, so the only difference between
    the plug-in and exact checks is that products of uncertain values are averaged.
    """
    rng = np.random.default_rng(seed)
    shape = (2, draws)
    a = alpha + 0.05 * rng.standard_normal(shape)
    b = beta + 0.02 * rng.standard_normal(shape)
    s = sigma * np.exp(0.05 * rng.standard_normal(shape))
    t = tau * np.exp(0.1 * rng.standard_normal(shape))
    counts = summaries.site_counts(data, COLS)
    n = counts["n"].to_numpy()
    xbar = data.groupby("site", observed=True)["stress"].mean().to_numpy()  # model scale
    ybar = counts["observed_mean"].to_numpy()
    r = ybar - b[..., None] * xbar
    w = n / (n + (s**2 / t**2)[..., None])
    site = w * r + (1 - w) * a[..., None]
    fits = {
        "no_pooling": make_fit(
            "no_pooling",
            data,
            site_intercept=ybar - beta * xbar,
            site_slope=np.full(len(n), beta),
            sigma=sigma,
            spread=0.0,
            draws=draws,
            predictive=False,
        ),
        "varying_intercepts": make_fit(
            "varying_intercepts",
            data,
            intercept=a,
            slope=b,
            sigma=s,
            sd_intercept=t,
            site_intercept=site - a[..., None],
            draws=draws,
            predictive=False,
        ),
    }
    return fits, w


@pytest.fixture(scope="module")
def data():
    return make_data(
        [2, 3, 5, 9, 20, 60],
        intercepts=[0.0, 3.0, 1.0, 2.5, 1.5, 2.0],
        slopes=[-0.4] * 6,
        sigma=0.6,
        seed=11,
    )


def test_exact_check_is_zero_when_the_fit_obeys_the_identity(data):
    fits, w = consistent_fits(data, alpha=1.8, beta=-0.4, sigma=0.6, tau=0.5)
    table = shrinkage.shrinkage_table(fits, SiteData(data, COLS, SCALE))
    np.testing.assert_allclose(table["deviation_exact"], 0.0, atol=1e-12)
    np.testing.assert_allclose(table.sort_values("site")["weight_mean"], w.mean(axis=(0, 1)))
    summary = shrinkage.shrinkage_summary(table)
    assert summary["max_abs_deviation_exact"] < 1e-12
    # plug-in differs only through averaging products of uncertain values: small but not zero
    assert 0 < summary["max_abs_deviation_plugin"] < 0.05


def test_exact_check_finds_a_site_that_breaks_the_identity(data):
    fits, _ = consistent_fits(data, alpha=1.8, beta=-0.4, sigma=0.6, tau=0.5)
    post = fits["varying_intercepts"].posterior
    post["1|site"].loc[{"site__factor_dim": "s3"}] = (
        post["1|site"].sel(site__factor_dim="s3") + 0.25
    )
    table = shrinkage.shrinkage_table(fits, SiteData(data, COLS, SCALE)).set_index("site")
    assert table.loc["s3", "deviation_exact"] == pytest.approx(0.25)
    summary = shrinkage.shrinkage_summary(table.reset_index())
    assert summary["max_abs_deviation_exact_site"] == "s3"
    assert summary["max_abs_deviation_exact"] == pytest.approx(0.25)


def test_plugin_check_differs_when_site_slopes_differ_from_the_common_one():
    """A site far from the centre with its own steep slope: its no-pooling intercept is not r_j."""
    data = make_data([30, 30], intercepts=[1.0, 2.0], slopes=[-0.4, -0.4], seed=2)
    data.loc[data["site"] == "s1", "stress"] += (
        2.0  # s1's predictor mean is 2 units above the centre
    )
    fits, _ = consistent_fits(data, alpha=1.5, beta=-0.4, sigma=0.6, tau=0.5)
    fits["no_pooling"].posterior["site:stress"].loc[
        {"site:stress_dim": "s1"}
    ] = -1.4  # own slope 1 steeper
    fits["no_pooling"].posterior["site"].loc[{"site_dim": "s1"}] = (
        fits["no_pooling"].posterior["site"].sel(site_dim="s1") + 2.0
    )  # ybar - (-1.4) * 2 instead of ybar - (-0.4) * 2
    table = shrinkage.shrinkage_table(fits, SiteData(data, COLS, SCALE)).set_index("site")
    assert abs(table.loc["s1", "deviation_exact"]) < 1e-12
    assert abs(table.loc["s1", "deviation_plugin"]) > 1.0  # w * 2.0 with w close to 1
    assert abs(table.loc["s2", "deviation_plugin"]) < 0.05


def test_table_columns_order_and_like_with_like(data):
    fits, _ = consistent_fits(data, alpha=1.8, beta=-0.4, sigma=0.6, tau=0.5)
    fits["varying_slopes"] = make_fit(
        "varying_slopes",
        data,
        intercept=1.8,
        site_intercept=np.arange(6) * 0.1,
        site_slope=np.arange(6) * 0.01,
        spread=0.0,
        predictive=False,
    )
    fits["complete_pooling"] = make_fit(
        "complete_pooling", data, intercept=1.7, slope=-0.3, spread=0.0, predictive=False
    )
    table = shrinkage.shrinkage_table(fits, SiteData(data, COLS, SCALE))
    assert table["n"].tolist() == sorted(table["n"])
    for column in (
        "site",
        "n",
        "observed_mean",
        "predictor_mean",
        "no_pooling_intercept",
        "no_pooling_slope",
        "varying_intercepts_intercept",
        "varying_slopes_intercept",
        "varying_slopes_slope",
        "complete_pooling_intercept",
        "population_intercept",
        "weight_mean",
        "weight_hdi_low",
        "weight_hdi_high",
        "deviation_exact",
        "deviation_plugin",
    ):
        assert column in table.columns, column
    row = table.set_index("site").loc["s4"]
    assert row["varying_slopes_intercept"] == pytest.approx(
        1.8 + 0.3
    )  # Intercept + 1|site, at the centre
    assert row["varying_slopes_slope"] == pytest.approx(-0.4 + 0.03)
    assert row["complete_pooling_intercept"] == pytest.approx(1.7)
    assert row["predictor_mean"] == pytest.approx(
        3.0 + data.loc[data["site"] == "s4", "stress"].mean()
    )
    assert (table["weight_hdi_low"] <= table["weight_mean"]).all() and (
        table["weight_mean"] <= table["weight_hdi_high"]
    ).all()
    # small sites get small weights
    assert table["weight_mean"].is_monotonic_increasing


def test_shrinkage_needs_no_pooling_and_varying_intercepts(data):
    fits = {"vi": make_fit("varying_intercepts", data, predictive=False)}
    with pytest.raises(ValueError, match="no_pooling"):
        shrinkage.shrinkage_table(fits, SiteData(data, COLS, SCALE))


def test_site_estimates_long_table_and_identified_flags():
    data = make_data([4, 6])
    data.loc[data["site"] == "s1", "stress"] = 0.7  # s1's predictor never varies
    fits = {m: make_fit(m, data, predictive=False) for m in ("no_pooling", "varying_slopes")}
    est = shrinkage.site_estimates(fits, SiteData(data, COLS, SCALE))
    assert list(est.columns) == [
        "model",
        "role",
        "parameter",
        "site",
        "n",
        "mean",
        "sd",
        "hdi_low",
        "hdi_high",
        "identified",
    ]
    assert len(est) == 2 * 2 * 2
    flags = est.set_index(["model", "parameter", "site"])["identified"]
    assert not flags[("no_pooling", "slope", "s1")]
    assert not flags[("no_pooling", "intercept", "s1")]  # constant predictor away from the centre
    assert flags[("no_pooling", "slope", "s2")] and flags[("varying_slopes", "slope", "s1")]
