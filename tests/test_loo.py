"""Chunked log-likelihood, PSIS-LOO and predictions equal Bambi's and ArviZ's unchunked results."""

from __future__ import annotations

import warnings

import arviz as az
import bambi as bmb
import numpy as np
import pandas as pd
import pytest

from hierpool import compare, loo
from hierpool.fit import (
    KEEP_LOG_LIKELIHOOD_MAX,
    drop_per_observation,
    fit,
    keeps_log_likelihood,
    save,
)
from hierpool.models import build_model

SAMPLER = {
    "backend": "nutpie",
    "draws": 50,
    "tune": 50,
    "chains": 2,
    "seed": 4,
    "target_accept": 0.9,
    "prior_predictive_draws": 10,
    "posterior_predictive_draws": 20,
    "keep_log_likelihood": "always",
}
CHUNK_ROWS = 7  # smaller than most sites, so most chunks lack most sites (and some start mid-site)


def mb_for_rows(rows: int, n_samples: int) -> float:
    return rows * n_samples * 8 / 2**20


def unchunked(model: bmb.Model, posterior) -> az.InferenceData:
    """Bambi's own log-likelihood on all rows at once (float64), with the posterior az.loo needs for r_eff."""
    ll = model.compute_log_likelihood(
        az.InferenceData(posterior=posterior), inplace=False
    ).log_likelihood
    return az.InferenceData(posterior=posterior, log_likelihood=ll)


def assert_same_loo(got: az.ELPDData, want: az.ELPDData) -> None:
    for key in ("elpd_loo", "se", "p_loo"):
        assert abs(got[key] - want[key]) < 1e-8, key
    np.testing.assert_allclose(got.loo_i.values, want.loo_i.values, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got.pareto_k.values, want.pareto_k.values, rtol=0, atol=1e-8)
    for key in ("n_samples", "n_data_points", "warning", "scale", "good_k"):
        assert got[key] == want[key], key
    assert list(got.index) == list(want.index)


def sites_data(seed: int, sizes) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat([f"s{i:02d}" for i in range(len(sizes))], sizes)
    x = rng.normal(size=g.size)
    return pd.DataFrame({"g": g, "x": x})


@pytest.fixture(scope="module")
def slopes_fit():
    """A varying-slopes Gaussian fit through the workflow's fit(), LOO computed 7 rows at a time."""
    data = sites_data(5, [3, 12, 5, 20, 9, 15])
    rng = np.random.default_rng(6)
    data["y"] = 1 + 0.5 * data["x"] + rng.normal(size=len(data))
    data["g"] = pd.Categorical(data["g"])
    model = build_model({"name": "vs", "formula": "y ~ x + (x|g)"}, data, site_sd_prior_scale=1.0)
    n_samples = SAMPLER["chains"] * SAMPLER["draws"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata, result = fit(
            model, {**SAMPLER, "chunk_mb": mb_for_rows(CHUNK_ROWS, n_samples)}, cores=1
        )
    return model, idata, result


@pytest.fixture(scope="module", params=["poisson", "bernoulli"])
def poisson_fit(request):
    """A non-Gaussian varying-intercepts model with text site labels, built directly with Bambi."""
    data = sites_data(8, [4, 11, 6, 2, 13])
    rng = np.random.default_rng(9)
    site_effect = dict(zip(sorted(data["g"].unique()), rng.normal(0, 0.5, 5)))
    eta = 0.5 + 0.3 * data["x"] + data["g"].map(site_effect)
    data["y"] = (
        rng.poisson(np.exp(eta))
        if request.param == "poisson"
        else rng.binomial(1, 1 / (1 + np.exp(-eta)))
    )
    model = bmb.Model("y ~ x + (1|g)", data, family=request.param)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = model.fit(
            draws=50, tune=50, chains=2, inference_method="nutpie", progressbar=False, random_seed=2
        )
    drop_per_observation(idata)
    return model, idata.posterior


def test_row_chunks_cover_every_row_once():
    chunks = loo.row_chunks(23, 7)
    assert [(c.start, c.stop) for c in chunks] == [(0, 7), (7, 14), (14, 21), (21, 23)]
    assert loo.chunk_size(n_samples=8000, budget_mb=256) == 4194
    assert loo.chunk_size(n_samples=10**9, budget_mb=1) == 1


def test_chunked_log_likelihood_equals_bambi_varying_slopes(slopes_fit):
    model, idata, _ = slopes_fit
    want = unchunked(model, idata.posterior).log_likelihood["y"]
    got = idata.log_likelihood["y"]  # assembled from 7-row chunks by fit()
    assert (
        got.dtype == np.float64
        and got.dims == ("chain", "draw", "__obs__")
        and got.shape == want.shape
    )
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(got["__obs__"].values, np.arange(len(model.data)))
    # the chunks really lack sites: the first 7 rows hold only two of the six
    assert model.data["g"].iloc[:CHUNK_ROWS].nunique() == 2


def test_chunked_log_likelihood_equals_bambi_poisson(poisson_fit):
    model, posterior = poisson_fit
    want = unchunked(model, posterior).log_likelihood["y"].values
    parts = list(loo.log_likelihood_chunks(model, posterior, size=3))
    assert len(parts) == 12 and all(model.data["g"].iloc[rows].nunique() < 5 for rows, _ in parts)
    got = np.concatenate([part["y"].values for _, part in parts], axis=-1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
    assert np.all(got <= 0)  # a probability mass


def test_chunked_loo_equals_az_loo(slopes_fit, poisson_fit):
    model, idata, result = slopes_fit
    assert_same_loo(result, az.loo(unchunked(model, idata.posterior), pointwise=True))
    model, posterior = poisson_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = az.loo(unchunked(model, posterior), pointwise=True)
        got, kept = loo.chunked_loo(model, posterior, budget_mb=mb_for_rows(4, 100))
    assert kept is None
    assert_same_loo(got, want)


def test_stored_loo_round_trips_and_compares_like_the_fits(slopes_fit, poisson_fit, tmp_path):
    vs_model, vs_idata, vs_loo = slopes_fit
    p_model, p_post = poisson_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_loo, _ = loo.chunked_loo(p_model, p_post, budget_mb=mb_for_rows(4, 100))
        # two models of the same rows, to compare: the varying-slopes fit and its complete-pooling sibling
        cp_model = build_model(
            {"name": "cp", "formula": "y ~ x"}, vs_model.data, site_sd_prior_scale=1.0
        )
        cp_idata, cp_loo = fit(cp_model, {**SAMPLER, "chunk_mb": 0.001}, cores=1)
    for name, result in (("vs", vs_loo), ("cp", cp_loo), ("p", p_loo)):
        loo.save_loo(result, tmp_path / f"{name}.loo.nc")
        assert_same_loo(loo.load_loo(tmp_path / f"{name}.loo.nc"), result)
    stored = {name: loo.load_loo(tmp_path / f"{name}.loo.nc") for name in ("vs", "cp")}
    fits = {
        "vs": unchunked(vs_model, vs_idata.posterior),
        "cp": unchunked(cp_model, cp_idata.posterior),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, want = (
            az.compare(stored, ic="loo", method="stacking"),
            az.compare(fits, ic="loo", method="stacking"),
        )
    assert got.index.tolist() == want.index.tolist()
    numeric = ["rank", "elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse"]
    np.testing.assert_allclose(
        got[numeric].astype(float).values, want[numeric].astype(float).values, rtol=0, atol=1e-8
    )
    assert (got["warning"] == want["warning"]).all() and (got["scale"] == want["scale"]).all()
    assert compare.compare(stored)["model"].tolist() == want.index.tolist()


def test_saved_fit_keeps_the_log_likelihood_only_where_asked(slopes_fit, tmp_path):
    model, idata, _ = slopes_fit
    assert keeps_log_likelihood("auto", KEEP_LOG_LIKELIHOOD_MAX - 1) and not keeps_log_likelihood(
        "auto", KEEP_LOG_LIKELIHOOD_MAX
    )
    assert keeps_log_likelihood("always", 10**12) and not keeps_log_likelihood("never", 1)
    with pytest.raises(ValueError, match="keep_log_likelihood"):
        keeps_log_likelihood("sometimes", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lean, result = fit(model, {**SAMPLER, "keep_log_likelihood": "never"}, cores=1)
    assert "log_likelihood" not in lean.groups() and result.n_data_points == len(model.data)
    save(lean, tmp_path / "lean.nc")
    assert "log_likelihood" not in az.from_netcdf(tmp_path / "lean.nc").groups()


def test_chunked_posterior_predictive_has_every_row_and_known_sites(slopes_fit):
    model, idata, _ = slopes_fit
    pp = idata.posterior_predictive["y"]
    assert (
        pp.sizes["__obs__"] == len(model.data)
        and pp.sizes["draw"] == 10
        and np.isfinite(pp.values).all()
    )
    np.testing.assert_array_equal(pp["__obs__"].values, np.arange(len(model.data)))
    # chunked draws scatter around the same per-row means as Bambi's own (unchunked) call
    post = idata.posterior.isel(draw=slice(0, 25))
    chunked = loo.posterior_predictive_chunked(model, post, seed=3, budget_mb=mb_for_rows(5, 50))[
        "y"
    ]
    whole = loo.posterior_predictive_chunked(model, post, seed=3, budget_mb=100)["y"]
    assert chunked.shape == whole.shape
    sd = whole.std(("chain", "draw")).values
    assert np.all(
        np.abs(chunked.mean(("chain", "draw")).values - whole.mean(("chain", "draw")).values)
        < 4 * sd
    )


@pytest.mark.parametrize(
    "u_dims", [("chain", "draw", "__variables__"), ("chain", "draw", "y_dim", "__variables__")]
)
def test_scipy_product_equals_xarray_sparse_dot(u_dims):
    import scipy.sparse
    import sparse
    import xarray as xr

    z = scipy.sparse.random(9, 4, density=0.4, format="csr", random_state=1)
    z = xr.DataArray(sparse.COO.from_scipy_sparse(z), dims=("__obs__", "__variables__"))
    u = xr.DataArray(
        np.random.default_rng(2).normal(size=(2, 3, 5, 4)[: len(u_dims) - 1] + (4,)), dims=u_dims
    )
    want = xr.dot(z, u).as_numpy()
    got = loo._sparse_times_dense(z, u)
    assert got.dims == want.dims
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + C(sex) + (1|g) + (1|rater)",
        "y ~ 0 + g + g:x",
        "y ~ x + (C(sex)|g)",
        "y ~ 1",
    ],
)
def test_gaussian_log_likelihood_from_the_design_equals_bambis(formula):
    """hierpool.linear's NumPy evaluation against Bambi's compute_log_likelihood (prior draws as a posterior)."""
    from hierpool import linear

    data = sites_data(3, [4, 9, 6, 12])
    rng = np.random.default_rng(2)
    data["y"] = rng.normal(size=len(data))
    data["sex"] = np.where(rng.random(len(data)) < 0.5, "f", "m")
    data["rater"] = np.where(rng.random(len(data)) < 0.4, "r1", "r2")
    model = build_model({"name": "m", "formula": formula}, data, site_sd_prior_scale=1.0)
    assert linear.applies(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = model.prior_predictive(draws=6, random_seed=1).prior
    posterior = prior.drop_vars(
        [v for v in prior.data_vars if prior[v].ndim > 2 and "__obs__" in prior[v].dims]
    )
    want = unchunked(model, posterior).log_likelihood["y"].values
    got = np.concatenate(
        [
            linear.gaussian_log_likelihood(model, posterior, rows)["y"].values
            for rows in loo.row_chunks(len(data), 5)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_the_design_path_is_not_taken_for_other_families_or_known_se(poisson_fit):
    from hierpool import linear

    assert not linear.applies(poisson_fit[0])


def test_stored_predictive_draws_are_capped_for_large_data():
    from hierpool.fit import PREDICTIVE_VALUES_MAX, predictive_draws

    assert predictive_draws(500, 919) == 500
    assert predictive_draws(500, 100_000) == PREDICTIVE_VALUES_MAX // 100_000 == 200
    assert predictive_draws(500, 10**7) == 50
    assert predictive_draws(20, 10**7) == 20


def test_relative_ess_is_kept_per_posterior_object():
    import xarray as xr

    from hierpool import loo as hploo

    rng = np.random.default_rng(5)
    post = xr.Dataset(
        {
            "a": (("chain", "draw"), rng.normal(size=(2, 300))),
            "b": (("chain", "draw"), np.cumsum(rng.normal(size=(2, 300)), axis=1)),
        }
    )
    ess = az.ess(post, method="mean")
    want = float(np.mean([ess["a"].item(), ess["b"].item()]) / 600)
    assert hploo.relative_ess(post) == pytest.approx(want, rel=1e-12)
    assert hploo.relative_ess(post) == pytest.approx(want, rel=1e-12)  # kept
    fewer = post[["a"]]  # another object, other variables: computed again
    assert hploo.relative_ess(fewer) == pytest.approx(ess["a"].item() / 600, rel=1e-12)
    post["c"] = post["a"] * 0 + rng.normal(size=(2, 300))  # the same object, a variable added
    assert hploo.relative_ess(post) != pytest.approx(want, rel=1e-6)
