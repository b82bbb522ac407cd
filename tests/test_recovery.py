"""Unit tests for hierpool.recovery: truth converted to the model's centring, intervals, coverage and RMSE."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import make_fit

from hierpool import recovery
from hierpool.clean import CleaningOptions, clean
from hierpool.fitinfo import PredictorScale
from hierpool.simulate import DEFAULT_COLUMNS as COLS
from hierpool.simulate import SimulationSpec, simulate


def small_truth(center_sites=None):
    sites = center_sites or [("s1", 3, 3.0, -0.5), ("s2", 5, 4.0, -0.3), ("s3", 8, 2.5, -0.4)]
    return {
        "population": {
            "intercept": 3.5,
            "slope": -0.4,
            "sd_intercept": 0.5,
            "sd_slope": 0.2,
            "correlation": 0.5,
            "sigma": 0.6,
        },
        "sites": [{"site": s, "n": n, "intercept": b0, "slope": b1} for s, n, b0, b1 in sites],
    }


def test_true_population_is_converted_to_the_centre():
    table = recovery.true_population(small_truth(), PredictorScale(center=3.0)).set_index(
        "parameter"
    )
    assert table.loc["intercept", "truth"] == pytest.approx(3.5 - 0.4 * 3.0)
    assert table.loc["intercept", "truth_spec"] == 3.5
    # var(b0 + 3 b1) = 0.25 + 9 * 0.04 + 2 * 0.5 * 3 * 0.5 * 0.2
    assert table.loc["sd_intercept", "truth"] == pytest.approx(np.sqrt(0.25 + 0.36 + 0.3))
    assert (
        table.loc["slope", "truth"] == -0.4
        and table.loc["sd_slope", "truth"] == 0.2
        and table.loc["sigma", "truth"] == 0.6
    )
    # realised: the drawn sites' own mean and SD at the centre
    at_centre = np.array([3.0 - 1.5, 4.0 - 0.9, 2.5 - 1.2])
    assert table.loc["intercept", "truth_realised"] == pytest.approx(at_centre.mean())
    assert table.loc["sd_intercept", "truth_realised"] == pytest.approx(at_centre.std(ddof=1))


def test_no_conversion_when_the_predictor_is_not_centred():
    table = recovery.true_population(small_truth(), PredictorScale(center=0.0)).set_index(
        "parameter"
    )
    assert table.loc["intercept", "truth"] == 3.5 and table.loc[
        "sd_intercept", "truth"
    ] == pytest.approx(0.5)
    sites = recovery.true_site_effects(small_truth(), PredictorScale(center=2.0))
    np.testing.assert_allclose(sites["intercept"], [2.0, 3.4, 1.7])


def data_for(truth, center=3.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in truth["sites"]:
        x = rng.normal(0, 0.7, s["n"])
        y = s["intercept"] + s["slope"] * (x + center) + rng.normal(0, 0.6, s["n"])
        rows.append(pd.DataFrame({"site": s["site"], "stress": x, "scontrol": y}))
    data = pd.concat(rows, ignore_index=True)
    data["site"] = pd.Categorical(data["site"], categories=[s["site"] for s in truth["sites"]])
    return data


def test_population_intervals_catch_the_converted_truth_but_not_the_spec_value():
    truth = small_truth()
    scale = PredictorScale(center=3.0)
    target = recovery.true_population(truth, scale).set_index("parameter")["truth"]
    data = data_for(truth)
    at_truth = make_fit(
        "varying_slopes",
        data,
        intercept=target["intercept"],
        slope=-0.4,
        sd_intercept=target["sd_intercept"],
        sd_slope=0.2,
        sigma=0.6,
        spread=0.01,
        draws=300,
        predictive=False,
    )
    at_spec = make_fit(
        "varying_slopes",
        data,
        intercept=3.5,
        slope=-0.4,
        sd_intercept=0.5,
        sd_slope=0.2,
        sigma=0.6,
        spread=0.01,
        draws=300,
        predictive=False,
    )
    table = recovery.population_recovery(
        {"ok": at_truth, "uncentred": at_spec}, truth, COLS, scale
    ).set_index(["model", "parameter"])
    assert table.xs("ok")["in_95"].all() and table.xs("ok")["in_90"].all()
    assert not table.loc[("uncentred", "intercept"), "in_95"]
    assert not table.loc[("uncentred", "sd_intercept"), "in_95"]
    assert table.loc[("ok", "intercept"), "error"] == pytest.approx(0.0, abs=0.01)
    assert set(table.xs("ok").index) == {"intercept", "slope", "sd_intercept", "sd_slope", "sigma"}


def test_site_recovery_rmse_coverage_and_verdict_with_known_errors():
    truth = small_truth()
    scale = PredictorScale(center=3.0)
    true_sites = recovery.true_site_effects(truth, scale)
    data = data_for(truth)
    big, small = np.array([0.6, -0.6, 0.3]), np.array([0.1, -0.1, 0.05])
    fits = {
        "np": make_fit(
            "no_pooling",
            data,
            site_intercept=true_sites["intercept"] + big,
            site_slope=true_sites["slope"] + big,
            spread=0.01,
            predictive=False,
        ),
        "vi": make_fit(
            "varying_intercepts",
            data,
            intercept=0.0,
            site_intercept=true_sites["intercept"] + small,
            spread=0.01,
            predictive=False,
        ),
    }
    sites = recovery.site_recovery(fits, data, truth, COLS, scale)
    assert set(zip(sites["model"], sites["parameter"])) == {
        ("np", "intercept"),
        ("np", "slope"),
        ("vi", "intercept"),
    }
    assert (
        ~sites["in_90"] | sites["in_95"]
    ).all()  # inside the 90% interval implies inside the 95% one
    summary = recovery.site_recovery_summary(sites).set_index(["model", "parameter"])
    assert summary.loc[("np", "intercept"), "rmse"] == pytest.approx(
        np.sqrt(np.mean(big**2)), abs=0.005
    )
    assert summary.loc[("vi", "intercept"), "rmse"] == pytest.approx(
        np.sqrt(np.mean(small**2)), abs=0.005
    )
    assert (
        summary.loc[("np", "intercept"), "coverage_95"] == 0.0
    )  # errors of 0.3+ against intervals of about ±0.02
    verdict = recovery.recovery_verdict(
        recovery.population_recovery(fits, truth, COLS, scale), summary.reset_index()
    )
    assert verdict["no_vs_partial_pooling"]["intercept"]["partial_pooling_lower"] == {
        "varying_intercepts": True
    }
    json.dumps(verdict)  # plain types only


def test_site_recovery_refuses_data_without_the_truths_sites():
    truth = small_truth()
    data = data_for(small_truth([("x1", 3, 1.0, 0.0), ("x2", 3, 1.0, 0.0)]))
    with pytest.raises(ValueError, match="truth.json"):
        recovery.site_recovery(
            {"vi": make_fit("varying_intercepts", data, predictive=False)},
            data,
            truth,
            COLS,
            PredictorScale(3.0),
        )


def oracle_fits(data, truth, scale, draws=400, seed=0):
    """Exact posteriors of the site means at the centre given the true hyperparameters (no MCMC).

    Partial pooling: conjugate normal posterior of alpha + u_j with prior N(alpha, tau^2).
    No pooling: N(r_j, sigma^2 / n_j), the site's own mean moved to the centre.
    """
    rng = np.random.default_rng(seed)
    target = recovery.true_population(truth, scale).set_index("parameter")["truth"]
    alpha, beta, tau, sigma = (
        target["intercept"],
        target["slope"],
        target["sd_intercept"],
        target["sigma"],
    )
    sites = list(data["site"].cat.categories)
    grouped = data.assign(r=data["scontrol"] - beta * data["stress"]).groupby(
        "site", observed=True
    )["r"]
    n, r = grouped.size().reindex(sites).to_numpy(), grouped.mean().reindex(sites).to_numpy()
    precision = n / sigma**2 + 1 / tau**2
    mean = (n * r / sigma**2 + alpha / tau**2) / precision
    shape = (2, draws, len(sites))
    partial = mean + rng.standard_normal(shape) / np.sqrt(precision)
    none = r + rng.standard_normal(shape) * sigma / np.sqrt(n)
    return {
        "no_pooling": make_fit(
            "no_pooling",
            data,
            site_intercept=none,
            site_slope=np.full(shape, beta),
            sigma=sigma,
            draws=draws,
            predictive=False,
        ),
        "varying_intercepts": make_fit(
            "varying_intercepts",
            data,
            intercept=np.full(shape[:2], alpha),
            slope=beta,
            sigma=sigma,
            sd_intercept=tau,
            site_intercept=partial - alpha,
            draws=draws,
            predictive=False,
        ),
    }


def test_recovery_on_simulated_data_with_exact_posteriors():
    """Simulate (slopes equal across sites, so varying intercepts is the true model), clean, and recover."""
    spec = SimulationSpec(
        n_sites=30,
        site_size={"min": 2, "max": 60},
        sd_slope=0.0,
        predictor_mean=3.0,
        predictor_sd=0.7,
        seed=7,
    )
    raw, truth = simulate(spec)
    result = clean(raw.astype(str), COLS, CleaningOptions(min_obs_per_site=1))
    data = result.data.assign(
        site=lambda d: pd.Categorical(d["site"], categories=sorted(d["site"].unique()))
    )
    scale = PredictorScale.from_summary(result.summary)
    assert scale.center == pytest.approx(
        3.0, abs=0.2
    )  # the intercept truth must move by slope * centre = -1.2
    fits = oracle_fits(data, truth, scale)
    sites = recovery.site_recovery(fits, data, truth, COLS, scale)
    summary = recovery.site_recovery_summary(sites).set_index(["model", "parameter"])
    assert (
        summary.loc[("varying_intercepts", "intercept"), "rmse"]
        < summary.loc[("no_pooling", "intercept"), "rmse"]
    )
    assert summary.loc[("varying_intercepts", "intercept"), "coverage_95"] >= 0.8
    assert summary.loc[("no_pooling", "intercept"), "coverage_95"] >= 0.8
