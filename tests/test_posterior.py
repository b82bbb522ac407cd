"""Unit tests for hierpool.posterior and hierpool.fitinfo: Bambi's names mapped to site lines, scales, and the linear predictor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import COLS, make_data, make_fit, posterior_dataset, site_names

from hierpool import fitinfo, posterior, summaries
from hierpool.fitinfo import PredictorScale
from hierpool.roles import ROLES


@pytest.fixture(scope="module")
def data():
    return make_data(
        [3, 5, 8, 12], intercepts=[1.0, 2.0, 3.0, 4.0], slopes=[-0.2, -0.4, -0.6, 0.0], seed=3
    )


def test_predictor_scale_round_trip_and_from_summary():
    scale = PredictorScale.from_summary(
        {"predictor": {"center": 3.0, "scale": 2.0, "min": 1, "max": 5}}
    )
    assert scale == PredictorScale(3.0, 2.0)
    np.testing.assert_allclose(scale.to_model([1.0, 3.0, 5.0]), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(scale.to_original(scale.to_model([0.3, 7.0])), [0.3, 7.0])


@pytest.mark.parametrize("role", ROLES)
def test_role_is_read_from_the_stamped_formula(role, data):
    assert fitinfo.role(make_fit(role, data, predictive=False), COLS) == role


def test_role_works_with_other_column_names(data):
    cols = {"outcome": "log_radon", "predictor": "floor", "group": "county"}
    post = posterior_dataset("varying_slopes", ["A", "B"], cols)
    assert "floor|county" in post and "1|county_sigma" in post
    assert fitinfo.role(post, cols) == "varying_slopes"
    assert fitinfo.role(post, COLS) == "complete_pooling"  # 'site' appears nowhere in this formula


def test_a_fit_without_a_stamped_formula_is_refused(data):
    post = posterior_dataset("varying_slopes", ["A", "B"])
    post.attrs.clear()
    with pytest.raises(KeyError, match="refit"):
        fitinfo.role(post, COLS)


def test_site_lines_add_population_and_site_parts_and_convert_slope_units():
    sites = ["a", "b", "c"]
    post = posterior_dataset(
        "varying_slopes",
        sites,
        intercept=2.0,
        slope=-0.4,
        site_intercept=[0.1, 0.0, -0.3],
        site_slope=[0.2, 0.0, 0.0],
        draws=4,
    )
    a, b = posterior.site_lines(post, COLS)
    np.testing.assert_allclose(a.mean(("chain", "draw")), [2.1, 2.0, 1.7])
    np.testing.assert_allclose(b.mean(("chain", "draw")), [-0.2, -0.4, -0.4])
    # scale 2: the model's slope is per 2 original units, so per original unit it halves
    _, b2 = posterior.site_lines(post, COLS, PredictorScale(3.0, 2.0))
    np.testing.assert_allclose(b2.mean(("chain", "draw")), [-0.1, -0.2, -0.2])
    assert a.dims == ("chain", "draw", "site")


def test_site_lines_of_complete_pooling_broadcast_over_requested_sites():
    post = posterior_dataset("complete_pooling", ["x"], intercept=1.5, slope=0.3, draws=3)
    a, b = posterior.site_lines(post, COLS, sites=["p", "q"])
    assert a.dims == ("chain", "draw", "site") and list(a["site"].values) == ["p", "q"]
    np.testing.assert_allclose(a.values, 1.5)
    with pytest.raises(KeyError):
        posterior.site_lines(posterior_dataset("no_pooling", ["p"]), COLS, sites=["p", "zzz"])


def test_varying_intercepts_model_has_zero_slope_sd_and_no_pooling_has_none():
    vi = posterior_dataset("varying_intercepts", ["a"], sd_intercept=0.7)
    sd0, sd1 = posterior.site_sds(vi, COLS)
    np.testing.assert_allclose(sd0, 0.7)
    np.testing.assert_allclose(sd1, 0.0)
    assert posterior.site_sds(posterior_dataset("no_pooling", ["a"]), COLS) is None
    assert posterior.population_line(posterior_dataset("no_pooling", ["a"]), COLS) is None


def test_site_summary_hdi_and_mean():
    normal = np.random.default_rng(0).standard_normal((2, 4000))
    post = posterior_dataset(
        "no_pooling",
        ["a", "b"],
        site_intercept=np.stack([1.0 + normal, np.full((2, 4000), 4.0)], -1),
        draws=4000,
    )
    table = summaries.site_summary(posterior.site_lines(post, COLS)[0])
    assert table.loc[0, "mean"] == pytest.approx(1.0, abs=0.05)
    assert table.loc[0, "hdi_low"] == pytest.approx(1.0 - 1.96, abs=0.1)
    assert table.loc[0, "hdi_high"] == pytest.approx(1.0 + 1.96, abs=0.1)
    assert table.loc[1, ["mean", "hdi_low", "hdi_high"]].tolist() == [4.0, 4.0, 4.0]


def test_site_counts():
    data = make_data([2, 3])
    data.loc[data["site"] == "s1", "stress"] = 0.5  # constant predictor in site s1
    counts = summaries.site_counts(data, COLS, PredictorScale(3.0, 1.0)).set_index("site")
    assert counts.loc["s1", "n"] == 2 and counts.loc["s2", "n"] == 3
    assert counts.loc["s1", "predictor_mean"] == pytest.approx(3.5)
    assert not counts.loc["s1", "predictor_varies"] and counts.loc["s2", "predictor_varies"]
    assert counts.loc["s2", "observed_mean"] == pytest.approx(
        data.loc[data["site"] == "s2", "scontrol"].mean()
    )


@pytest.mark.parametrize("family", ROLES)
@pytest.mark.parametrize("include_site", [True, False])
def test_mu_draws_match_bambi_predict(family, include_site, data):
    """The linear predictor from the arrays equals Bambi's own prediction: the name mapping is right."""
    from hierpool.models import build_model

    if family == "no_pooling" and not include_site:
        with pytest.raises(ValueError):
            posterior.mu_draws(
                make_fit(family, data, predictive=False), data, COLS, include_site=False
            )
        return
    formulas = {
        "complete_pooling": "scontrol ~ stress",
        "no_pooling": "scontrol ~ 0 + site + site:stress",
        "varying_intercepts": "scontrol ~ stress + (1|site)",
        "varying_slopes": "scontrol ~ stress + (stress|site)",
    }
    rng = np.random.default_rng(1)
    n_sites = data["site"].nunique()
    fit = make_fit(
        family,
        data,
        draws=6,
        predictive=False,
        site_intercept=rng.normal(0, 1, n_sites),
        site_slope=rng.normal(0, 1, n_sites),
        spread=0.3,
    )
    model = build_model({"name": family, "formula": formulas[family]}, data)
    bambi_mu = (
        model.predict(
            fit, kind="response_params", inplace=False, include_group_specific=include_site
        )
        .posterior["mu"]
        .values
    )
    np.testing.assert_allclose(
        posterior.mu_draws(fit, data, COLS, include_site=include_site), bambi_mu, atol=1e-10
    )


def test_site_names_helper_sorts_like_labels():
    assert site_names(12)[:2] == ["s01", "s02"]
    assert list(pd.Series(site_names(3))) == ["s1", "s2", "s3"]


@pytest.fixture(scope="module")
def rich_data():
    """Covariates of every kind: numeric per row (age), categorical (sex), per site (uranium), a nested class."""
    data = make_data([6, 9, 12, 15], intercepts=[1.0, 2.0, 3.0, 4.0], seed=5)
    rng = np.random.default_rng(9)
    data["age"] = rng.normal(40, 10, len(data))
    data["sex"] = rng.choice(["f", "m"], len(data))
    data["uranium"] = data["site"].map({"s1": 0.5, "s2": 1.0, "s3": 2.0, "s4": 4.0}).astype(float)
    data["cls"] = rng.choice(["a", "b"], len(data))
    data["passed"] = (rng.random(len(data)) < 0.5).astype(int)
    return data


def _draws_from_prior(formula, data, family="gaussian"):
    """A Bambi model and 'posterior' draws with every variable it has (its prior draws), stamped as a fit is."""
    import arviz as az
    import bambi as bmb

    from hierpool.roles import FORMULA_NAMESPACE

    model = bmb.Model(formula, data, family=family, extra_namespace=FORMULA_NAMESPACE)
    model.build()
    prior = model.prior_predictive(draws=8, random_seed=1).prior
    fit = fitinfo.stamp(
        az.InferenceData(
            posterior=prior.expand_dims("chain") if "chain" not in prior.dims else prior
        ),
        formula,
        family,
    )
    return model, fit


RICH = [
    ("scontrol ~ stress + age + C(sex) + log(uranium) + (1|site) + (1|site:cls)", "gaussian"),
    ("scontrol ~ 0 + site + site:stress + age", "gaussian"),
    ("scontrol ~ stress + stress:age + (stress|site)", "gaussian"),
    ("passed ~ stress + age + C(sex) + (1|site)", "bernoulli"),
]


@pytest.mark.parametrize("formula,family", RICH)
@pytest.mark.parametrize("include_site", [True, False])
def test_mu_draws_with_covariates_and_other_factors_match_bambi(
    formula, family, include_site, rich_data
):
    model, fit = _draws_from_prior(formula, rich_data, family)
    if "0 + site" in formula and not include_site:
        return
    parent = model.family.likelihood.parent
    predicted = (
        model.predict(
            fit, kind="response_params", inplace=False, include_group_specific=include_site
        )
        .posterior[parent]
        .values
    )
    link = model.family.link[parent].link
    np.testing.assert_allclose(
        posterior.mu_draws(fit, rich_data, COLS, include_site=include_site),
        link(predicted),
        atol=1e-8,
    )


def test_site_lines_hold_covariates_at_each_sites_average(rich_data):
    formula = "scontrol ~ stress + stress:age + log(uranium) + (stress|site)"
    model, fit = _draws_from_prior(formula, rich_data)
    a, b = posterior.site_lines(fit, COLS, data=rich_data)
    sites = a["site"].values.tolist()
    means = rich_data.groupby("site", observed=True)[["age", "uranium"]].mean().loc[sites]
    grid = pd.DataFrame(
        {
            "site": pd.Categorical(np.repeat(sites, 2), categories=sites),
            "stress": np.tile([0.0, 1.0], len(sites)),
            "age": np.repeat(means["age"].to_numpy(), 2),
            "uranium": np.repeat(means["uranium"].to_numpy(), 2),
        }
    )
    mu = model.predict(fit, data=grid, kind="response_params", inplace=False).posterior["mu"].values
    np.testing.assert_allclose(a.values, mu[..., 0::2], atol=1e-8)
    np.testing.assert_allclose(b.values, mu[..., 1::2] - mu[..., 0::2], atol=1e-8)
    with pytest.raises(ValueError, match="covariates"):
        posterior.site_lines(fit, COLS)
