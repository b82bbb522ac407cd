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
import xarray as xr

from hierpool import knownse, progress, pymc_model, schema, sensitivity
from hierpool import loo as hploo
from hierpool.likelihood import choose_likelihood as likelihood_for
from hierpool.loo import chunked_loo, posterior_predictive_chunked
from hierpool.models import known_se_column

_log = logging.getLogger(__name__)

PER_OBSERVATION_VARS = ("mu",)
KEEP_LOG_LIKELIHOOD_MAX = (
    20_000_000  # chains × draws × observations kept under "auto" (80 MB in float32)
)


def sample(
    model: bmb.Model,
    sampler: dict,
    cores: int = 1,
    compiled=None,
    keep_unconstrained: bool = False,
) -> az.InferenceData:
    """Run NUTS with the configured backend (``nutpie`` or ``pymc``).

    ``compiled``: nutpie's compilation of hierpool's PyMC model of ``model``, to sample it
    without compiling again (cross-validation refits, `hierpool.crossval`).
    ``keep_unconstrained``: nutpie also returns every draw in its unconstrained space (what
    moment matching transforms, `hierpool.momentmatch.UNCONSTRAINED` in ``sample_stats``).
    """
    sampler = schema.filled("sampler", sampler)
    backend = sampler["backend"]
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
    if backend != "pymc" and uses_low_rank(model, sampler["low_rank_mass_matrix"]):
        # Learns correlations (e.g. intercept vs site effects) that a diagonal mass matrix cannot;
        # it broke chains on 5 sites (docs/performance.md), so `auto` uses it for centred models only.
        kwargs["nuts_sampler_kwargs"] = {"low_rank_modified_mass_matrix": True}
    if backend == "nutpie" and keep_unconstrained:
        kwargs["nuts_sampler_kwargs"] = {
            **kwargs.get("nuts_sampler_kwargs", {}),
            "store_unconstrained": True,
        }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        if pymc_model.settings(model) is None:
            return model.fit(**kwargs)
        return _sample_own(model, kwargs, compiled)


def _sample_own(model: bmb.Model, kwargs: dict, compiled=None) -> az.InferenceData:
    """NUTS on hierpool's PyMC model of ``model`` (`hierpool.pymc_model`), with Bambi's ``fit`` arguments."""
    import pymc as pm

    kwargs = dict(kwargs)
    backend = kwargs.pop("inference_method")
    if backend == "nutpie":  # with its progress in the job's log
        idata = progress.sample(
            pymc_model.pymc_model(model),
            draws=kwargs["draws"],
            tune=kwargs["tune"],
            chains=kwargs["chains"],
            target_accept=kwargs["target_accept"],
            random_seed=kwargs["random_seed"],
            cores=kwargs["cores"],
            compiled=compiled,
            **kwargs.get("nuts_sampler_kwargs", {}),
        )
    else:
        idata = pm.sample(model=pymc_model.pymc_model(model), nuts_sampler=backend, **kwargs)
    idata.posterior = pymc_model.public_variables(idata.posterior)
    if "observed_data" not in idata.groups():  # a sufficient-statistics model observes nothing
        response = model.response_component.term
        observed = np.squeeze(np.asarray(response.data))
        if observed.ndim > 1:  # binomial: successes, trials
            observed = observed[:, 0]
        idata.add_groups(
            observed_data=xr.Dataset(
                {knownse.response_name(model): ((hploo.OBS,), observed)},
                coords={hploo.OBS: np.arange(len(observed))},
            )
        )
    return idata


def choose_likelihood(model: bmb.Model, sampler: dict) -> str:
    """Apply ``sampler.likelihood`` (auto, rows, sufficient) to the model; return what it chose and why.

    nutpie always samples hierpool's PyMC model (its progress goes to the log: `hierpool.progress`);
    PyMC's sampler Bambi's, unless the statistics or a correlated block need hierpool's.
    """
    sampler = schema.filled("sampler", sampler)
    likelihood, why = likelihood_for(model, sampler["likelihood"])
    own = likelihood == "sufficient" or sampler["backend"] == "nutpie"
    if own or (pymc_model.settings(model) or {}).get("likelihood"):
        pymc_model.plan(model, likelihood=likelihood)
    return f"{likelihood} ({why})"


def uses_low_rank(model: bmb.Model, setting) -> bool:
    """``low_rank_mass_matrix``: true, false, or auto = true for a centred model with varying effects.

    A centred model's population intercept moves with every site effect at once, a direction a
    diagonal mass matrix cannot learn (1,000 sites of 40 to 200: bulk ESS of the intercept 95
    with it, 1,678 with the low-rank one; docs/performance.md).
    """
    if setting == "auto":
        parent = model.family.likelihood.parent
        return not model.noncentered and bool(model.components[parent].group_specific_terms)
    return bool(setting)


PREDICTIVE_VALUES_MAX = 20_000_000  # draws × rows of one stored predictive group (80 MB in float32)


def predictive_draws(configured: int, n_rows: int) -> int:
    """The predictive draws stored: as configured, but at most :data:`PREDICTIVE_VALUES_MAX` values (and at least 50).

    At 100,000 rows 500 posterior predictive draws would be 200 MB per fit; 200 draws are
    plenty for the checks drawn from them.
    """
    capped = max(50, PREDICTIVE_VALUES_MAX // max(1, n_rows))
    if configured > capped:
        _log.info("predictive draws: %d instead of %d (%d rows)", capped, configured, n_rows)
    return min(configured, capped)


def keeps_log_likelihood(setting: str, n_values: int) -> bool:
    """``always``, ``never``, or (``auto``) only below :data:`KEEP_LOG_LIKELIHOOD_MAX` values."""
    if setting not in ("auto", "always", "never"):
        raise ValueError(
            f"sampler.keep_log_likelihood must be auto, always or never, not {setting!r}"
        )
    return setting == "always" or (setting == "auto" and n_values < KEEP_LOG_LIKELIHOOD_MAX)


def add_log_likelihood(
    model: bmb.Model, idata: az.InferenceData, sampler: dict
) -> tuple[az.ELPDData, xr.DataArray]:
    """PSIS-LOO from the log-likelihood computed in chunks; the full group is added only if kept.

    Returns the LOO and every draw's total log-likelihood (chain, draw).
    """
    sampler = schema.filled("sampler", sampler)
    post = idata.posterior
    n_values = post.sizes["chain"] * post.sizes["draw"] * len(model.data)
    keep = keeps_log_likelihood(sampler["keep_log_likelihood"], n_values)
    loo_function = knownse.known_se_loo if known_se_column(model) else chunked_loo
    totals = []
    result, log_lik = loo_function(
        model, post, float(sampler["chunk_mb"]), keep=keep, totals=totals
    )
    if log_lik is not None:
        idata.add_groups(log_likelihood=log_lik)
    return result, sum(totals)


def drop_warmup(idata: az.InferenceData) -> None:
    for group in list(idata.groups()):
        if group.startswith("warmup"):
            delattr(idata, group)
            idata._groups_warmup = [g for g in getattr(idata, "_groups_warmup", []) if g != group]


def drop_per_observation(idata: az.InferenceData, group: str = "posterior") -> None:
    """Drop per-observation deterministics (``mu``) and unconstrained copies (``*_log__``)."""
    if group in idata.groups():
        dataset = getattr(idata, group)
        present = [
            v for v in dataset.data_vars if v in PER_OBSERVATION_VARS or str(v).endswith("__")
        ]
        if present:
            setattr(idata, group, dataset.drop_vars(present))


def thinned_draws(n_chains: int, n_draws: int, total: int) -> np.ndarray:
    """Evenly spaced draw indices so that about ``total`` draws are kept over all chains."""
    per_chain = max(1, min(n_draws, int(np.ceil(total / n_chains))))
    return np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))


def add_posterior_predictive(
    model: bmb.Model, idata: az.InferenceData, total_draws: int, seed: int, chunk_mb: float = 64
) -> None:
    """Posterior predictive draws for a thinned subset of the posterior (enough for checks, small on disk)."""
    post = idata.posterior
    keep = thinned_draws(post.sizes["chain"], post.sizes["draw"], total_draws)
    predictive = (
        knownse.known_se_predictive if known_se_column(model) else posterior_predictive_chunked
    )
    idata.add_groups(posterior_predictive=predictive(model, post.isel(draw=keep), seed, chunk_mb))


def add_log_prior(model: bmb.Model, idata: az.InferenceData) -> None:
    """The ``log_prior`` group: each population-level parameter's log prior density per draw (a correlated block's SDs and correlations included)."""
    model_pm = (
        model.backend.model if pymc_model.settings(model) is None else pymc_model.pymc_model(model)
    )
    priors = sensitivity.log_prior(model_pm, idata.posterior)
    idata.add_groups(log_prior=priors.merge(sensitivity.block_log_prior(model, idata.posterior)))


def add_prior(model: bmb.Model, idata: az.InferenceData, draws: int, seed: int) -> None:
    if pymc_model.settings(model) is None:
        prior = model.prior_predictive(draws=draws, random_seed=seed)
    else:  # the per-row model: a sufficient-statistics one has no response to draw
        import pymc as pm

        prior = pm.sample_prior_predictive(
            draws=draws, model=pymc_model.pymc_model(model, likelihood="rows"), random_seed=seed
        )
        prior.prior = pymc_model.public_variables(prior.prior)
    idata.add_groups(prior=prior.prior, prior_predictive=prior.prior_predictive)
    drop_per_observation(idata, "prior")
    if known_se_column(model) and "sigma" in idata.prior:
        idata.prior = idata.prior.drop_vars("sigma")  # the known SEs themselves, per observation


def record_model(model: bmb.Model, idata: az.InferenceData) -> None:
    """Stamp the fit with the formula, family and link it was fitted with (hierpool.fitinfo.stamp)."""
    from hierpool.fitinfo import stamp

    parent = model.family.likelihood.parent
    stamp(
        idata,
        str(model.formula.main),
        model.family.name,
        model.family.link[parent].name,
        getattr(model, "hierpool_known_se", None),
        pymc_model.correlated_settings(model),
    )


def fit(
    model: bmb.Model, sampler: dict, cores: int = 1, keep_unconstrained: bool = False
) -> tuple[az.InferenceData, az.ELPDData]:
    """Sample, compute PSIS-LOO, add posterior predictive and prior draws; record timings in attrs.

    ``keep_unconstrained``: keep nutpie's unconstrained draws for moment matching
    (`hierpool.momentmatch.remedy`); `save` does not write them.

    Returns
    -------
    (az.InferenceData, az.ELPDData)
        The fit (with the log-likelihood group only where ``keep_log_likelihood`` keeps it) and
        its pointwise PSIS-LOO, equal to ``az.loo(fit_with_full_log_likelihood, pointwise=True)``.
    """
    sampler = schema.filled("sampler", sampler)
    seed = int(sampler["seed"])
    likelihood = choose_likelihood(model, sampler)
    _log.info("likelihood: %s", likelihood)
    start = time.perf_counter()
    idata = sample(model, sampler, cores=cores, keep_unconstrained=keep_unconstrained)
    sampling_wall = time.perf_counter() - start
    drop_warmup(idata)
    drop_per_observation(idata)
    start = time.perf_counter()
    loo, log_lik_total = add_log_likelihood(model, idata, sampler)
    # what power-scaling prior sensitivity needs (hierpool.sensitivity), per draw
    idata.sample_stats[sensitivity.LOG_LIKELIHOOD_TOTAL] = log_lik_total
    add_log_prior(model, idata)
    loo_wall = time.perf_counter() - start
    add_posterior_predictive(
        model,
        idata,
        predictive_draws(int(sampler["posterior_predictive_draws"]), len(model.data)),
        seed + 1,
        float(sampler["chunk_mb"]),
    )
    drop_per_observation(idata)
    add_prior(
        model,
        idata,
        predictive_draws(int(sampler["prior_predictive_draws"]), len(model.data)),
        seed + 2,
    )
    record_model(model, idata)
    idata.posterior.attrs.update(
        {
            "hierpool_backend": sampler["backend"],
            "hierpool_fit_wall_s": round(sampling_wall, 3),
            "hierpool_target_accept": float(sampler["target_accept"]),
            "hierpool_seed": seed,
            "hierpool_likelihood": likelihood,
        }
    )
    _log.info(
        "sampled in %.1f s (compile included) with %s; log-likelihood and LOO in %.1f s",
        sampling_wall,
        sampler["backend"],
        loo_wall,
    )
    return idata, loo


LARGE_GROUPS = ("log_likelihood", "posterior_predictive", "prior_predictive")


def shrink_large_groups(idata: az.InferenceData) -> None:
    """Store the per-observation groups as float32: half the size, and PSIS-LOO moves by < 1e-4."""
    for group in LARGE_GROUPS:
        if group in idata.groups():
            dataset = getattr(idata, group)
            wide = {v: "float32" for v in dataset.data_vars if dataset[v].dtype == "float64"}
            if wide:  # counts and 0/1 outcomes are integers already
                setattr(
                    idata, group, dataset.assign({v: dataset[v].astype("float32") for v in wide})
                )


def save(idata: az.InferenceData, path) -> None:
    """Write netCDF atomically (compressed), per-observation groups in float32, without the unconstrained draws."""
    from hierpool.io import atomic_write
    from hierpool.momentmatch import drop_unconstrained

    drop_unconstrained(idata)

    shrink_large_groups(idata)
    atomic_write(path, lambda p: idata.to_netcdf(str(p), compress=True))
