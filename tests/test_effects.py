"""Unit tests for hierpool.effects: Bambi's names mapped to site lines, scales, and the linear predictor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import COLS, make_data, make_fit, posterior_dataset, site_names

from hierpool import effects as ef
from hierpool.effects import PredictorScale


@pytest.fixture(scope="module")
def data():
    return make_data([3, 5, 8, 12], intercepts=[1.0, 2.0, 3.0, 4.0], slopes=[-0.2, -0.4, -0.6, 0.0], seed=3)


def test_predictor_scale_round_trip_and_from_summary():
    scale = PredictorScale.from_summary({"predictor": {"center": 3.0, "scale": 2.0, "min": 1, "max": 5}})
    assert scale == PredictorScale(3.0, 2.0)
    np.testing.assert_allclose(scale.to_model([1.0, 3.0, 5.0]), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(scale.to_original(scale.to_model([0.3, 7.0])), [0.3, 7.0])


@pytest.mark.parametrize("family", ef.FAMILIES)
def test_family_is_read_from_the_variables(family, data):
    assert ef.family(make_fit(family, data, predictive=False), COLS) == family


def test_family_works_with_other_column_names(data):
    cols = {"outcome": "log_radon", "predictor": "floor", "group": "county"}
    post = posterior_dataset("varying_slopes", ["A", "B"], cols)
    assert "floor|county" in post and "1|county_sigma" in post
    assert ef.family(post, cols) == "varying_slopes"
    with pytest.raises(KeyError):
        ef.family(post, COLS)  # the scontrol/stress/site names are not there


def test_site_lines_add_population_and_site_parts_and_convert_slope_units():
    sites = ["a", "b", "c"]
    post = posterior_dataset("varying_slopes", sites, intercept=2.0, slope=-0.4, site_intercept=[0.1, 0.0, -0.3], site_slope=[0.2, 0.0, 0.0], draws=4)
    a, b = ef.site_lines(post, COLS)
    np.testing.assert_allclose(a.mean(("chain", "draw")), [2.1, 2.0, 1.7])
    np.testing.assert_allclose(b.mean(("chain", "draw")), [-0.2, -0.4, -0.4])
    # scale 2: the model's slope is per 2 original units, so per original unit it halves
    _, b2 = ef.site_lines(post, COLS, PredictorScale(3.0, 2.0))
    np.testing.assert_allclose(b2.mean(("chain", "draw")), [-0.1, -0.2, -0.2])
    assert a.dims == ("chain", "draw", "site")


def test_site_lines_of_complete_pooling_broadcast_over_requested_sites():
    post = posterior_dataset("complete_pooling", ["x"], intercept=1.5, slope=0.3, draws=3)
    a, b = ef.site_lines(post, COLS, sites=["p", "q"])
    assert a.dims == ("chain", "draw", "site") and list(a["site"].values) == ["p", "q"]
    np.testing.assert_allclose(a.values, 1.5)
    with pytest.raises(KeyError):
        ef.site_lines(posterior_dataset("no_pooling", ["p"]), COLS, sites=["p", "zzz"])


def test_varying_intercepts_model_has_zero_slope_sd_and_no_pooling_has_none():
    vi = posterior_dataset("varying_intercepts", ["a"], sd_intercept=0.7)
    sd0, sd1 = ef.site_sds(vi, COLS)
    np.testing.assert_allclose(sd0, 0.7)
    np.testing.assert_allclose(sd1, 0.0)
    assert ef.site_sds(posterior_dataset("no_pooling", ["a"]), COLS) is None
    assert ef.population_line(posterior_dataset("no_pooling", ["a"]), COLS) is None


def test_site_summary_hdi_and_mean():
    normal = np.random.default_rng(0).standard_normal((2, 4000))
    post = posterior_dataset("no_pooling", ["a", "b"], site_intercept=np.stack([1.0 + normal, np.full((2, 4000), 4.0)], -1), draws=4000)
    table = ef.site_summary(ef.site_lines(post, COLS)[0])
    assert table.loc[0, "mean"] == pytest.approx(1.0, abs=0.05)
    assert table.loc[0, "hdi_low"] == pytest.approx(1.0 - 1.96, abs=0.1)
    assert table.loc[0, "hdi_high"] == pytest.approx(1.0 + 1.96, abs=0.1)
    assert table.loc[1, ["mean", "hdi_low", "hdi_high"]].tolist() == [4.0, 4.0, 4.0]


def test_site_counts():
    data = make_data([2, 3])
    data.loc[data["site"] == "s1", "stress"] = 0.5  # constant predictor in site s1
    counts = ef.site_counts(data, COLS, PredictorScale(3.0, 1.0)).set_index("site")
    assert counts.loc["s1", "n"] == 2 and counts.loc["s2", "n"] == 3
    assert counts.loc["s1", "predictor_mean"] == pytest.approx(3.5)
    assert not counts.loc["s1", "predictor_varies"] and counts.loc["s2", "predictor_varies"]
    assert counts.loc["s2", "observed_mean"] == pytest.approx(data.loc[data["site"] == "s2", "scontrol"].mean())


@pytest.mark.parametrize("family", ef.FAMILIES)
@pytest.mark.parametrize("include_site", [True, False])
def test_mu_draws_match_bambi_predict(family, include_site, data):
    """The linear predictor from the arrays equals Bambi's own prediction: the name mapping is right."""
    from hierpool.models import build_model

    if family == "no_pooling" and not include_site:
        with pytest.raises(ValueError):
            ef.mu_draws(make_fit(family, data, predictive=False), data, COLS, include_site=False)
        return
    formulas = {
        "complete_pooling": "scontrol ~ stress",
        "no_pooling": "scontrol ~ 0 + site + site:stress",
        "varying_intercepts": "scontrol ~ stress + (1|site)",
        "varying_slopes": "scontrol ~ stress + (stress|site)",
    }
    rng = np.random.default_rng(1)
    n_sites = data["site"].nunique()
    fit = make_fit(family, data, draws=6, predictive=False, site_intercept=rng.normal(0, 1, n_sites), site_slope=rng.normal(0, 1, n_sites), spread=0.3)
    model = build_model({"name": family, "formula": formulas[family]}, data)
    bambi_mu = model.predict(fit, kind="response_params", inplace=False, include_group_specific=include_site).posterior["mu"].values
    np.testing.assert_allclose(ef.mu_draws(fit, data, COLS, include_site=include_site), bambi_mu, atol=1e-10)


def test_site_names_helper_sorts_like_labels():
    assert site_names(12)[:2] == ["s01", "s02"]
    assert list(pd.Series(site_names(3))) == ["s1", "s2", "s3"]
