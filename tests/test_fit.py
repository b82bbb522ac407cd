"""A real (tiny) fit through the workflow's code path: groups saved, lean posterior, policy flags it."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from hierpool.diagnostics import ConvergencePolicy, fit_diagnostics, judge
from hierpool.fit import fit, save, thinned_draws
from hierpool.models import build_model

SAMPLER = {
    "backend": "nutpie",
    "draws": 20,
    "tune": 30,
    "chains": 1,
    "seed": 1,
    "target_accept": 0.9,
    "prior_predictive_draws": 15,
    "posterior_predictive_draws": 10,
}


def tiny_model():
    rng = np.random.default_rng(3)
    g = np.repeat(["s1", "s2", "s3", "s4"], [4, 6, 10, 20])
    x = rng.normal(size=g.size)
    data = pd.DataFrame(
        {"g": pd.Categorical(g), "x": x, "y": 2 + 0.5 * x + rng.normal(size=g.size)}
    )
    return build_model(
        {"name": "vi", "formula": "y ~ x + (1|g)"}, data, site_sd_prior_scale=1.0
    ), data


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    model, data = tiny_model()
    idata, _ = fit(model, SAMPLER, cores=1)
    path = tmp_path_factory.mktemp("fit") / "vi.nc"
    save(idata, path)
    return az.from_netcdf(path), data


def test_saved_fit_has_every_group_later_stages_need(tiny_fit):
    idata, data = tiny_fit
    for group in (
        "posterior",
        "log_likelihood",
        "posterior_predictive",
        "prior",
        "prior_predictive",
        "sample_stats",
        "observed_data",
    ):
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


def test_same_seed_gives_the_same_posterior(tiny_fit):
    first, _ = tiny_fit
    model, _ = tiny_model()
    again, _ = fit(model, SAMPLER, cores=1)
    for name in ("Intercept", "x", "1|g_sigma", "sigma"):
        np.testing.assert_allclose(
            first.posterior[name].values, again.posterior[name].values, rtol=1e-6
        )


@pytest.mark.parametrize(
    "formula", ["scontrol ~ stress + (1|site)", "scontrol ~ stress + (stress|site)"]
)
def test_default_settings_converge_on_five_unbalanced_sites(formula, repo_root):
    """Few sites are where hierarchical fits break: the shipped defaults must pass the policy there."""
    import yaml
    from snakemake.utils import validate

    from hierpool.simulate import SimulationSpec, simulate

    config = yaml.safe_load((repo_root / "config/config.yaml").read_text())
    validate(config, str(repo_root / "workflow/schemas/config.schema.yaml"))
    spec = {
        **config["datasets"]["simulated"]["simulate"],
        "n_sites": 5,
        "site_size": SIZES,
        "seed": 5,
    }
    raw, _ = simulate(SimulationSpec.from_config(spec))
    assert_default_fit_converges(raw.astype(str), formula, config)


SIZES = [6, 30, 80, 125, 174]  # 415 rows, as a real 5-lab dataset had


def likert_sites(seed: int, sd_intercept: float = 0.05, sd_slope: float = 0.02) -> pd.DataFrame:
    """Real-data shape: a 1-5 Likert predictor (mean 3, ties), a 1-7 outcome in quarter steps, sites that barely differ."""
    rng = np.random.default_rng(seed)
    frames = []
    for j, n in enumerate(SIZES):
        x = np.clip(np.round(rng.normal(3, 0.9, n)), 1, 5)
        b0, b1 = rng.normal(0, sd_intercept), rng.normal(0, sd_slope)
        y = np.clip(
            np.round((4.5 + b0 + (b1 - 0.35) * (x - 3) + rng.normal(0, 0.8, n)) * 4) / 4, 1, 7
        )
        frames.append(
            pd.DataFrame({"scontrol": y.astype(str), "stress": x.astype(str), "site": f"lab{j}"})
        )
    return pd.concat(frames, ignore_index=True)


def assert_default_fit_converges(raw: pd.DataFrame, formula: str, config: dict) -> None:
    from hierpool.clean import clean
    from hierpool.config import resolve_target_accept

    data = clean(raw, {"outcome": "scontrol", "predictor": "stress", "group": "site"}).data
    model = build_model({"name": "m", "formula": formula}, data, config["site_sd_prior_scale"])
    sampler = resolve_target_accept(
        {**config["sampler"], "prior_predictive_draws": 10, "posterior_predictive_draws": 10}, 5
    )
    idata, _ = fit(model, sampler, cores=2)
    diag = fit_diagnostics(idata)
    # The exact draws differ between machines (floating point): the slopes model on the Likert
    # sites gave 0 divergences in 8000 draws on one, 1 on another (0.99 gave 1-13). R-hat and ESS
    # must pass everywhere; at most one divergence.
    assert diag["divergences"] <= 1
    policy = ConvergencePolicy(**{**config["convergence"], "max_divergences": 1})
    assert judge(diag, policy) == []


@pytest.mark.parametrize(
    "formula", ["scontrol ~ stress + (1|site)", "scontrol ~ stress + (stress|site)"]
)
def test_default_settings_converge_on_five_real_shaped_sites(formula, repo_root):
    """Likert data from 5 labs that barely differ: 0.99 left 1-13 divergences here (seed 3: 13), auto (0.999) none."""
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load((repo_root / "config/config.yaml").read_text())
    validate(config, str(repo_root / "workflow/schemas/config.schema.yaml"))
    assert_default_fit_converges(likert_sites(seed=3), formula, config)


def test_auto_target_accept_depends_on_the_number_of_sites():
    from hierpool.config import resolve_target_accept

    assert resolve_target_accept({"target_accept": "auto"}, 5)["target_accept"] == 0.999
    assert resolve_target_accept({"target_accept": "auto"}, 85)["target_accept"] == 0.99
    assert resolve_target_accept({"target_accept": 0.9}, 5)["target_accept"] == 0.9
