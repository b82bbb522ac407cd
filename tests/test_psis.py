"""hierpool.psis: PSIS-LOO compiled over observations, against ArviZ's az.loo."""

import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr

from hierpool import loo as hploo
from hierpool.psis import psis_loo


def _log_lik(seed, n_obs=40, chains=4, draws=500):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(chains, draws, 1)) * rng.uniform(0.05, 1.5, size=n_obs)
    y = rng.standard_t(3, size=n_obs) * 2  # heavy tails: some observations get high k
    values = -0.5 * np.log(2 * np.pi) - 0.5 * (y - mu) ** 2
    values[..., 0] = -1.0  # the same density in every draw: a tail too short to fit (k = inf)
    values[..., 1] = np.where(rng.uniform(size=(chains, draws)) < 0.5, -1.0, -2.0)  # ties
    return xr.Dataset(
        {"y": (("chain", "draw", hploo.OBS), values)},
        coords={hploo.OBS: np.arange(100, 100 + n_obs)},
    )


@pytest.mark.parametrize("seed, reff", [(0, 1.0), (1, 0.7), (2, 0.3)])
def test_chunk_loo_equals_arviz(seed, reff):
    log_lik = _log_lik(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = az.loo(az.InferenceData(log_likelihood=log_lik), pointwise=True, reff=reff)
    got = hploo._chunk_loo(log_lik, reff)
    np.testing.assert_allclose(got.loo_i.values, expected.loo_i.values, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got.pareto_k.values, expected.pareto_k.values, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(got.loo_i[hploo.OBS].values, expected.loo_i[hploo.OBS].values)
    for key in ("elpd_loo", "se", "p_loo"):
        assert got[key] == pytest.approx(expected[key], abs=1e-8)
    for key in ("n_samples", "n_data_points", "warning", "scale", "good_k"):
        assert got[key] == expected[key]
    assert np.isinf(got.pareto_k.values[0]) and expected.warning


def test_psis_loo_takes_observations_by_samples():
    log_lik = np.random.default_rng(3).normal(size=(5, 1000))
    elpd, lppd, k = psis_loo(log_lik, 1.0)
    assert elpd.shape == lppd.shape == k.shape == (5,)
    assert np.isfinite(elpd).all() and np.isfinite(k).all()
    # normal draws: light tails, and no smoothing can make a held-out row likelier than in-sample
    assert np.all(k < 0.7) and np.all(elpd < lppd)
