"""Power-scaling prior sensitivity: the log prior per draw, and which estimates the prior decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from hierpool import sensitivity
from hierpool.fit import fit
from hierpool.models import build_model
from hierpool.simulate import SimulationSpec, simulate

ROOT = Path(__file__).resolve().parents[1]
SAMPLER = {
    "backend": "nutpie",
    "draws": 1000,
    "tune": 1000,
    "chains": 2,
    "seed": 11,
    "target_accept": 0.95,
    "prior_predictive_draws": 10,
    "posterior_predictive_draws": 20,
}


def test_the_log_prior_is_each_parameters_prior_density_at_its_draws():
    data, _ = simulate(SimulationSpec(n_sites=4, site_size=6, seed=2))
    priors = {
        "Intercept": {"dist": "Normal", "mu": 1, "sigma": 2},
        "sigma": {"dist": "HalfNormal", "sigma": 0.5},
        "1|site": {"dist": "Normal", "mu": 0, "sigma": {"dist": "HalfNormal", "sigma": 0.3}},
    }
    model = build_model(
        {"name": "m", "formula": "scontrol ~ 1 + (1|site)", "priors": priors}, data, 1.0
    )
    model.build()
    rng = np.random.default_rng(0)
    posterior = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), rng.normal(size=(2, 5))),
            "sigma": (("chain", "draw"), rng.gamma(2, 0.3, size=(2, 5))),
            "1|site_sigma": (("chain", "draw"), rng.gamma(2, 0.2, size=(2, 5))),
        },
        coords={"chain": [0, 1], "draw": np.arange(5)},
    )
    lp = sensitivity.log_prior(model.backend.model, posterior)
    assert set(lp.data_vars) == {"Intercept", "sigma", "1|site_sigma"}  # no site effects
    np.testing.assert_allclose(lp["Intercept"], stats.norm.logpdf(posterior["Intercept"], 1, 2))
    np.testing.assert_allclose(lp["sigma"], stats.halfnorm.logpdf(posterior["sigma"], scale=0.5))
    np.testing.assert_allclose(
        lp["1|site_sigma"], stats.halfnorm.logpdf(posterior["1|site_sigma"], scale=0.3)
    )


def test_the_site_sd_of_five_sites_is_flagged():
    data, _ = simulate(SimulationSpec(n_sites=5, site_size={"min": 10, "max": 40}, seed=3))
    model = build_model({"name": "vs", "formula": "scontrol ~ stress + (stress|site)"}, data, 1.0)
    idata, _ = fit(model, SAMPLER)
    table = sensitivity.power_scaling(idata).set_index("parameter")
    site_sds = table[table["site_sd"]]
    assert set(site_sds.index) == {"1|site_sigma", "stress|site_sigma"}
    assert (site_sds["prior"] >= sensitivity.THRESHOLD).any(), table
    assert table.loc["sigma", "prior"] < sensitivity.THRESHOLD  # 100+ rows decide the residual SD


def test_the_population_slope_of_radon_is_not_flagged():
    data = pd.read_csv(ROOT / "data/raw/radon.csv")
    data["county"] = data["county"].astype("category")
    model = build_model({"name": "vi", "formula": "log_radon ~ floor + (1|county)"}, data, 1.0)
    idata, _ = fit(model, SAMPLER)
    table = sensitivity.power_scaling(idata).set_index("parameter")
    assert table.loc["floor", "prior"] < sensitivity.THRESHOLD, table
    assert not table.loc["floor", "prior_dominated"]
    assert table.loc["floor", "likelihood"] > table.loc["floor", "prior"]


def test_a_correlated_blocks_site_sds_and_correlation_get_their_prior():
    """The block's Cholesky factor is not in the posterior: its prior is the SD priors and LKJ(eta)."""
    from hierpool.priors import sd_prior

    data, _ = simulate(SimulationSpec(n_sites=5, site_size={"min": 10, "max": 40}, seed=3))
    spec = {"name": "vsc", "formula": "scontrol ~ stress + (stress|site)", "correlated": True}
    model = build_model(spec, data, 1.0)
    idata, _ = fit(model, SAMPLER)
    lp, post = idata.log_prior, idata.posterior
    assert {"1|site_sigma", "stress|site_sigma", "site_corr"} <= set(lp.data_vars)
    groups = model.components["mu"].group_specific_terms
    for name in ("1|site", "stress|site"):
        scale = float(sd_prior(groups[name]).args["sigma"])
        np.testing.assert_allclose(
            lp[f"{name}_sigma"], stats.halfnorm.logpdf(post[f"{name}_sigma"], scale=scale)
        )
    eta = float(model.hierpool_pymc["eta"])
    r = post["site_corr"].squeeze(drop=True)
    np.testing.assert_allclose(lp["site_corr"], (eta - 1) * np.log(1 - r**2), rtol=1e-8)
    table = sensitivity.power_scaling(idata).set_index("parameter")
    site_sds = table[table["site_sd"]]
    assert {"1|site_sigma", "stress|site_sigma"} <= set(site_sds.index)
    assert (site_sds["prior"] >= sensitivity.THRESHOLD).any(), table
