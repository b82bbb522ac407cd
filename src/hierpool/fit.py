"""Fit a Bambi model and save a lean, complete InferenceData.

Every fit carries what later stages need and nothing per-observation in the posterior:
posterior, sample_stats, observed_data, pointwise log-likelihood (computed after sampling,
because nutpie ignores ``idata_kwargs``), a thinned set of posterior predictive draws and
prior / prior predictive draws for the prior check.
"""

from __future__ import annotations

import logging
import time
import warnings

import arviz as az
import bambi as bmb
import numpy as np

_log = logging.getLogger(__name__)

PER_OBSERVATION_VARS = ("mu",)


def sample(model: bmb.Model, sampler: dict, cores: int = 1) -> az.InferenceData:
    """Run NUTS with the configured backend (``nutpie`` or ``pymc``)."""
    backend = sampler.get("backend", "nutpie")
    kwargs = dict(
        draws=int(sampler["draws"]),
        tune=int(sampler["tune"]),
        chains=int(sampler["chains"]),
        cores=max(1, min(int(cores), int(sampler["chains"]))),
        random_seed=int(sampler["seed"]),
        target_accept=float(sampler["target_accept"]),
        progressbar=False,
        inference_method=backend,
    )
    if backend == "pymc":
        kwargs["idata_kwargs"] = {"log_likelihood": True}
    elif sampler.get("low_rank_mass_matrix", False):
        # Learns correlations (e.g. intercept vs site offsets) that a diagonal mass matrix cannot;
        # it helped on 20 sites but broke chains on 5 sites (docs/performance.md), so it is opt-in.
        kwargs["nuts_sampler_kwargs"] = {"low_rank_modified_mass_matrix": True}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        return model.fit(**kwargs)


def add_log_likelihood(model: bmb.Model, idata: az.InferenceData) -> None:
    if "log_likelihood" not in idata.groups():
        model.compute_log_likelihood(idata, inplace=True)


def drop_warmup(idata: az.InferenceData) -> None:
    for group in list(idata.groups()):
        if group.startswith("warmup"):
            delattr(idata, group)
            idata._groups_warmup = [g for g in getattr(idata, "_groups_warmup", []) if g != group]


def drop_per_observation(idata: az.InferenceData, group: str = "posterior") -> None:
    """Drop per-observation deterministics (``mu``) and unconstrained copies (``*_log__``)."""
    if group in idata.groups():
        dataset = getattr(idata, group)
        present = [v for v in dataset.data_vars if v in PER_OBSERVATION_VARS or str(v).endswith("__")]
        if present:
            setattr(idata, group, dataset.drop_vars(present))


def thinned_draws(n_chains: int, n_draws: int, total: int) -> np.ndarray:
    """Evenly spaced draw indices so that about ``total`` draws are kept over all chains."""
    per_chain = max(1, min(n_draws, int(np.ceil(total / n_chains))))
    return np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))


def add_posterior_predictive(model: bmb.Model, idata: az.InferenceData, total_draws: int, seed: int) -> None:
    """Posterior predictive draws for a thinned subset of the posterior (enough for checks, small on disk)."""
    post = idata.posterior
    keep = thinned_draws(post.sizes["chain"], post.sizes["draw"], total_draws)
    subset = az.InferenceData(posterior=post.isel(draw=keep))
    model.predict(subset, kind="response", inplace=True, random_seed=seed)
    idata.add_groups(posterior_predictive=subset.posterior_predictive)


def add_prior(model: bmb.Model, idata: az.InferenceData, draws: int, seed: int) -> None:
    prior = model.prior_predictive(draws=draws, random_seed=seed)
    idata.add_groups(prior=prior.prior, prior_predictive=prior.prior_predictive)
    drop_per_observation(idata, "prior")


def fit(model: bmb.Model, sampler: dict, cores: int = 1) -> az.InferenceData:
    """Sample, then add log-likelihood, posterior predictive and prior draws; record timings in attrs."""
    seed = int(sampler["seed"])
    start = time.perf_counter()
    idata = sample(model, sampler, cores=cores)
    sampling_wall = time.perf_counter() - start
    drop_warmup(idata)
    drop_per_observation(idata)
    add_log_likelihood(model, idata)
    add_posterior_predictive(model, idata, int(sampler.get("posterior_predictive_draws", 500)), seed + 1)
    drop_per_observation(idata)
    add_prior(model, idata, int(sampler.get("prior_predictive_draws", 200)), seed + 2)
    idata.posterior.attrs.update(
        {
            "hierpool_backend": sampler.get("backend", "nutpie"),
            "hierpool_fit_wall_s": round(sampling_wall, 3),
            "hierpool_target_accept": float(sampler["target_accept"]),
            "hierpool_seed": seed,
        }
    )
    _log.info("sampled in %.1f s (compile included) with %s", sampling_wall, sampler.get("backend"))
    return idata


LARGE_GROUPS = ("log_likelihood", "posterior_predictive", "prior_predictive")


def shrink_large_groups(idata: az.InferenceData) -> None:
    """Store the per-observation groups as float32: half the size, and PSIS-LOO moves by < 1e-4."""
    for group in LARGE_GROUPS:
        if group in idata.groups():
            dataset = getattr(idata, group)
            setattr(idata, group, dataset.astype({v: "float32" for v in dataset.data_vars if dataset[v].dtype == "float64"}))


def save(idata: az.InferenceData, path) -> None:
    """Write netCDF atomically (compressed), per-observation groups in float32."""
    from hierpool.io import atomic_write

    shrink_large_groups(idata)
    atomic_write(path, lambda p: idata.to_netcdf(str(p), compress=True))
