"""A real (tiny) fit through the workflow's code path: groups saved, lean posterior, policy flags it."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from hierpool.diagnostics import ConvergencePolicy, fit_diagnostics, judge
from hierpool.fit import fit, save, thinned_draws
from hierpool.models import build_model


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    rng = np.random.default_rng(3)
    g = np.repeat(["s1", "s2", "s3", "s4"], [4, 6, 10, 20])
    x = rng.normal(size=g.size)
    data = pd.DataFrame({"g": pd.Categorical(g), "x": x, "y": 2 + 0.5 * x + rng.normal(size=g.size)})
    model = build_model({"name": "vi", "formula": "y ~ x + (1|g)"}, data)
    sampler = {"backend": "nutpie", "draws": 20, "tune": 30, "chains": 1, "seed": 1, "target_accept": 0.9,
               "prior_predictive_draws": 15, "posterior_predictive_draws": 10}
    idata = fit(model, sampler, cores=1)
    path = tmp_path_factory.mktemp("fit") / "vi.nc"
    save(idata, path)
    return az.from_netcdf(path), data


def test_saved_fit_has_every_group_later_stages_need(tiny_fit):
    idata, data = tiny_fit
    for group in ("posterior", "log_likelihood", "posterior_predictive", "prior", "prior_predictive", "sample_stats", "observed_data"):
        assert group in idata.groups(), group
    assert idata.log_likelihood["y"].shape == (1, 20, len(data))
    assert idata.posterior_predictive["y"].sizes["draw"] == 10
    assert idata.prior["1|g_sigma"].sizes["draw"] == 15
    assert idata.log_likelihood["y"].dtype == np.float32


def test_posterior_is_lean(tiny_fit):
    idata, _ = tiny_fit
    names = set(idata.posterior.data_vars)
    assert "mu" not in names and not any(n.endswith("__") or n.endswith("_offset") for n in names)
    assert {"Intercept", "x", "1|g", "1|g_sigma", "sigma"} <= names
    assert not any(g.startswith("warmup") for g in idata.groups())


def test_one_chain_of_twenty_draws_is_flagged_by_the_policy(tiny_fit):
    idata, _ = tiny_fit
    problems = judge(fit_diagnostics(idata), ConvergencePolicy())
    assert any("only 1 chain" in p for p in problems) and any("ESS" in p for p in problems)


def test_thinned_draws_spread_over_the_chain():
    idx = thinned_draws(n_chains=4, n_draws=1000, total=500)
    assert len(idx) == 125 and idx[0] == 0 and idx[-1] == 999
    assert len(thinned_draws(2, 10, 500)) == 10
