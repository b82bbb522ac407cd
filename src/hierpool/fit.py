"""Fit a Bambi model and save a lean, complete InferenceData, plus its PSIS-LOO.

Every fit carries what later stages need and nothing per-observation in the posterior:
posterior, sample_stats, observed_data, a thinned set of posterior predictive draws, prior /
prior predictive draws for the prior check and, where it is small (or asked for), the pointwise
log-likelihood. The log-likelihood and the predictive draws are computed after sampling in
chunks of observations (``hierpool.loo``), and PSIS-LOO with them, so memory stays bounded.
"""

from __future__ import annotations

import logging
import time
import warnings

import arviz as az
import bambi as bmb
import numpy as np

from hierpool.loo import chunked_loo, posterior_predictive_chunked

_log = logging.getLogger(__name__)

PER_OBSERVATION_VARS = ("mu",)
KEEP_LOG_LIKELIHOOD_MAX = 20_000_000  # chains × draws × observations kept under "auto" (80 MB in float32)


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
    if backend != "pymc" and sampler.get("low_rank_mass_matrix", False):
        # Learns correlations (e.g. intercept vs site offsets) that a diagonal mass matrix cannot;
        # it helped on 20 sites but broke chains on 5 sites (docs/performance.md), so it is opt-in.
        kwargs["nuts_sampler_kwargs"] = {"low_rank_modified_mass_matrix": True}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        return model.fit(**kwargs)


def keeps_log_likelihood(setting: str, n_values: int) -> bool:
    """``always``, ``never``, or (``auto``) only below :data:`KEEP_LOG_LIKELIHOOD_MAX` values."""
    if setting not in ("auto", "always", "never"):
        raise ValueError(f"sampler.keep_log_likelihood must be auto, always or never, not {setting!r}")
    return setting == "always" or (setting == "auto" and n_values < KEEP_LOG_LIKELIHOOD_MAX)


def add_log_likelihood(model: bmb.Model, idata: az.InferenceData, sampler: dict) -> az.ELPDData:
    """PSIS-LOO from the log-likelihood computed in chunks; the full group is added only if kept."""
    post = idata.posterior
    n_values = post.sizes["chain"] * post.sizes["draw"] * len(model.data)
    keep = keeps_log_likelihood(sampler.get("keep_log_likelihood", "auto"), n_values)
    result, log_lik = chunked_loo(model, post, float(sampler.get("chunk_mb", 64)), keep=keep)
    if log_lik is not None:
        idata.add_groups(log_likelihood=log_lik)
    return result


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


def add_posterior_predictive(model: bmb.Model, idata: az.InferenceData, total_draws: int, seed: int, chunk_mb: float = 64) -> None:
    """Posterior predictive draws for a thinned subset of the posterior (enough for checks, small on disk)."""
    post = idata.posterior
    keep = thinned_draws(post.sizes["chain"], post.sizes["draw"], total_draws)
    idata.add_groups(posterior_predictive=posterior_predictive_chunked(model, post.isel(draw=keep), seed, chunk_mb))


def add_prior(model: bmb.Model, idata: az.InferenceData, draws: int, seed: int) -> None:
    prior = model.prior_predictive(draws=draws, random_seed=seed)
    idata.add_groups(prior=prior.prior, prior_predictive=prior.prior_predictive)
    drop_per_observation(idata, "prior")


def record_model(model: bmb.Model, idata: az.InferenceData) -> None:
    """Stamp the fit with the formula, family and link it was fitted with (hierpool.effects.stamp)."""
    from hierpool.effects import stamp

    parent = model.family.likelihood.parent
    stamp(idata, str(model.formula.main), model.family.name, model.family.link[parent].name,
          getattr(model, "hierpool_known_se", None))


def fit(model: bmb.Model, sampler: dict, cores: int = 1) -> tuple[az.InferenceData, az.ELPDData]:
    """Sample, compute PSIS-LOO, add posterior predictive and prior draws; record timings in attrs.

    Returns
    -------
    (az.InferenceData, az.ELPDData)
        The fit (with the log-likelihood group only where ``keep_log_likelihood`` keeps it) and
        its pointwise PSIS-LOO, equal to ``az.loo(fit_with_full_log_likelihood, pointwise=True)``.
    """
    seed = int(sampler["seed"])
    start = time.perf_counter()
    idata = sample(model, sampler, cores=cores)
    sampling_wall = time.perf_counter() - start
    drop_warmup(idata)
    drop_per_observation(idata)
    start = time.perf_counter()
    loo = add_log_likelihood(model, idata, sampler)
    loo_wall = time.perf_counter() - start
    add_posterior_predictive(model, idata, int(sampler.get("posterior_predictive_draws", 500)), seed + 1, float(sampler.get("chunk_mb", 64)))
    drop_per_observation(idata)
    add_prior(model, idata, int(sampler.get("prior_predictive_draws", 200)), seed + 2)
    record_model(model, idata)
    idata.posterior.attrs.update(
        {
            "hierpool_backend": sampler.get("backend", "nutpie"),
            "hierpool_fit_wall_s": round(sampling_wall, 3),
            "hierpool_target_accept": float(sampler["target_accept"]),
            "hierpool_seed": seed,
        }
    )
    _log.info("sampled in %.1f s (compile included) with %s; log-likelihood and LOO in %.1f s", sampling_wall, sampler.get("backend"), loo_wall)
    return idata, loo


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
