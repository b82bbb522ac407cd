"""The four estimators of the site means: no pooling, complete pooling, empirical Bayes, full Bayes."""

from __future__ import annotations

import time
from statistics import NormalDist

import numpy as np
import pandas as pd

from hierpool.simstudy.design import PARTIAL_POOLING_FORMULA


def site_summaries(data: pd.DataFrame) -> pd.DataFrame:
    """Per site: size ``n``, sample mean ``ybar`` and sample variance ``s2`` (ddof 1), in site order."""
    grouped = data.groupby("site", sort=True)["y"]
    return pd.DataFrame(
        {"n": grouped.size(), "ybar": grouped.mean(), "s2": grouped.var(ddof=1)}
    ).reset_index()


# --------------------------------------------------------------------------- estimators


def no_pooling(summary: pd.DataFrame) -> np.ndarray:
    """Each site's own sample mean."""
    return summary["ybar"].to_numpy(dtype=float)


def complete_pooling(summary: pd.DataFrame) -> np.ndarray:
    """The grand mean of all observations (``sum n_j ybar_j / N``), the same for every site."""
    n = summary["n"].to_numpy(dtype=float)
    return np.full(n.size, float(np.sum(n * summary["ybar"].to_numpy(dtype=float)) / n.sum()))


def pooled_sigma2(summary: pd.DataFrame) -> float:
    """Pooled within-site variance ``sum (n_j - 1) s2_j / (N - J)``."""
    n = summary["n"].to_numpy(dtype=float)
    return float(np.sum((n - 1) * summary["s2"].to_numpy(dtype=float)) / (n.sum() - n.size))


def dersimonian_laird_tau2(ybar, v) -> float:
    """Method-of-moments (DerSimonian-Laird) estimate of tau^2 from site means and their variances, truncated at 0."""
    ybar, v = np.asarray(ybar, dtype=float), np.asarray(v, dtype=float)
    w = 1.0 / v
    fixed = np.sum(w * ybar) / w.sum()
    q = np.sum(w * (ybar - fixed) ** 2)
    denominator = w.sum() - np.sum(w**2) / w.sum()
    return float(max(0.0, (q - (ybar.size - 1)) / denominator))


def empirical_bayes(
    summary: pd.DataFrame,
    levels=(0.9, 0.95),
    tau2: float | None = None,
    sigma2: float | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Closed-form empirical Bayes: ``w_j * ybar_j + (1 - w_j) * mu_hat``, ``w_j = tau2 / (tau2 + sigma2 / n_j)``.

    ``tau2`` and ``sigma2`` default to the plug-in estimates (`dersimonian_laird_tau2`,
    `pooled_sigma2`); pass them to use known values. ``mu_hat`` is the random-effects
    weighted mean ``sum ybar_j / (tau2 + v_j) / sum 1 / (tau2 + v_j)``, which is the
    grand mean of all observations when ``tau2 = 0``. Intervals are
    ``estimate +- z * sqrt(w_j * sigma2 / n_j)``: the conditional posterior SD given the
    plug-ins, which ignores their uncertainty (zero width when ``tau2 = 0``).

    Returns per-site columns ``estimate``, ``weight``, ``sd``, ``lo_<level>``, ``hi_<level>``
    and the hyperparameters ``{tau2, sigma2, mu}``.
    """
    n = summary["n"].to_numpy(dtype=float)
    ybar = summary["ybar"].to_numpy(dtype=float)
    sigma2 = pooled_sigma2(summary) if sigma2 is None else float(sigma2)
    v = sigma2 / n
    tau2 = dersimonian_laird_tau2(ybar, v) if tau2 is None else float(tau2)
    precision = 1.0 / (tau2 + v)
    mu = float(np.sum(precision * ybar) / precision.sum())
    weight = tau2 / (tau2 + v)
    estimate = weight * ybar + (1 - weight) * mu
    sd = np.sqrt(weight * v)
    out = pd.DataFrame(
        {"site": summary["site"].to_numpy(), "estimate": estimate, "weight": weight, "sd": sd}
    )
    for level in levels:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        out[f"lo_{level:g}"] = estimate - z * sd
        out[f"hi_{level:g}"] = estimate + z * sd
    return out, {"tau2": tau2, "sigma2": sigma2, "mu": mu}


# Bambi names the intercept-only model's variables after the grouping column; the
# model has no predictor, so the name given for it matches no variable.
COLUMNS = {"group": "site", "predictor": "x", "outcome": "y"}


def full_bayes(
    data: pd.DataFrame,
    sampler: dict,
    site_sd_prior_scale: float | None = 1.0,
    levels=(0.9, 0.95),
    cores: int = 1,
) -> tuple[pd.DataFrame, dict]:
    """Fit ``y ~ 1 + (1|site)`` with Bambi (nutpie by default) and summarise every site's mean.

    Per site: posterior mean and SD of ``theta_j = Intercept + (1|site)_j``, equal-tailed
    intervals at each level, and the pooling factor ``E[(sigma^2/n_j) / (sigma^2/n_j + tau^2)]``
    over the draws (0: no pooling, 1: complete pooling). Also returns the posterior of
    tau and sigma and the fit's diagnostics (`fit_health`) and fit time.
    """
    from hierpool.fit import record_model, sample
    from hierpool.models import build_model

    spec = {"name": "partial_pooling", "formula": PARTIAL_POOLING_FORMULA, "family": "gaussian"}
    model = build_model(spec, data, site_sd_prior_scale)
    start = time.perf_counter()
    idata = sample(model, sampler, cores=cores)
    wall = time.perf_counter() - start
    record_model(model, idata)
    sites, info = summarise_fit(idata, data, levels)
    return sites, {**info, "fit_wall_s": round(wall, 3)}


def summarise_fit(idata, data: pd.DataFrame, levels=(0.9, 0.95)) -> tuple[pd.DataFrame, dict]:
    """The per-site rows and the replicate-level numbers of `full_bayes` from a fit of ``y ~ 1 + (1|site)``."""
    from hierpool import posterior

    theta, _ = posterior.site_lines(idata, COLUMNS)
    tau, _ = posterior.site_sds(idata, COLUMNS)
    sigma = posterior.sigma(idata)
    mu, _ = posterior.population_line(idata, COLUMNS)
    n = (
        data.groupby("site")["y"]
        .size()
        .reindex([str(s) for s in theta["site"].values])
        .to_numpy(dtype=float)
    )
    sites = site_posteriors(
        theta, pooling_factor(n, tau.values.ravel(), sigma.values.ravel()), levels
    )
    info = {
        "tau": draws_summary(tau.values.ravel(), levels),
        "sigma_mean": float(sigma.mean()),
        "mu_mean": float(mu.mean()),
        **fit_health(idata, theta, tau, sigma),
    }
    return sites, info


def pooling_factor(n, tau, sigma) -> np.ndarray:
    """Per site, ``E[(sigma^2/n_j) / (sigma^2/n_j + tau^2)]`` over paired draws of tau and sigma."""
    within = np.asarray(sigma)[None, :] ** 2 / np.asarray(n, dtype=float)[:, None]
    return np.mean(within / (within + np.asarray(tau)[None, :] ** 2), axis=1)


def site_posteriors(theta, pooling, levels) -> pd.DataFrame:
    """Per site: posterior mean, SD, pooling factor and equal-tailed intervals of ``theta`` (dims chain, draw, site)."""
    draws = theta.stack(sample=("chain", "draw")).transpose("site", "sample").values
    out = pd.DataFrame(
        {
            "site": [str(s) for s in theta["site"].values],
            "estimate": draws.mean(axis=1),
            "sd": draws.std(axis=1, ddof=1),
            "pooling": pooling,
        }
    )
    for level in levels:
        out[f"lo_{level:g}"] = np.quantile(draws, 0.5 - level / 2, axis=1)
        out[f"hi_{level:g}"] = np.quantile(draws, 0.5 + level / 2, axis=1)
    return out


def draws_summary(draws, levels) -> dict:
    """Mean, median, SD and equal-tailed interval bounds ``lo_<level>``/``hi_<level>`` of scalar draws."""
    draws = np.asarray(draws, dtype=float)
    out = {
        "mean": float(draws.mean()),
        "median": float(np.median(draws)),
        "sd": float(draws.std(ddof=1)),
    }
    for level in levels:
        out[f"lo_{level:g}"] = float(np.quantile(draws, 0.5 - level / 2))
        out[f"hi_{level:g}"] = float(np.quantile(draws, 0.5 + level / 2))
    return out


def fit_health(idata, theta, tau, sigma) -> dict:
    """`hierpool.diagnostics.fit_diagnostics` over what the study uses: the site means, tau and sigma.

    The Intercept and the raw site offsets of Bambi's non-centred parametrisation mix worse
    than their sums when some sites are large, so they are left out. Returns divergences,
    max R-hat and min bulk ESS over all three (and for the site means and tau alone), chains,
    draws and sampling time.
    """
    import arviz as az
    import xarray as xr

    from hierpool.diagnostics import fit_diagnostics

    def diagnose(**variables) -> dict:
        posterior = xr.Dataset(variables, attrs=idata.posterior.attrs)
        return fit_diagnostics(
            az.InferenceData(posterior=posterior, sample_stats=idata.sample_stats)
        )

    core, site_means, site_sd = (
        diagnose(theta=theta, tau=tau, sigma=sigma),
        diagnose(theta=theta),
        diagnose(tau=tau),
    )
    return {
        "divergences": core["divergences"],
        "max_rhat": core["max_rhat"],
        "min_ess_bulk": core["min_ess_bulk"],
        "max_rhat_theta": site_means["max_rhat"],
        "min_ess_bulk_theta": site_means["min_ess_bulk"],
        "rhat_tau": site_sd["max_rhat"],
        "ess_bulk_tau": site_sd["min_ess_bulk"],
        "chains": core["chains"],
        "draws": core["draws"],
        "sampling_s": core["sampling_time_s"],
    }
