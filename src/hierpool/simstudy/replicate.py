"""One replicate: simulate, estimate every site's mean four ways, score against the truth."""

from __future__ import annotations

import math

import pandas as pd

from hierpool.simstudy.design import CELL, ESTIMATORS, INTERVAL_METHODS, simulate_replicate
from hierpool.simstudy.estimators import (
    complete_pooling,
    empirical_bayes,
    full_bayes,
    no_pooling,
    site_summaries,
)


def run_replicate(setup: dict, cores: int = 1, fit_full_bayes=None) -> tuple[pd.DataFrame, dict]:
    """Simulate, estimate and score one replicate described by `replicate_setup`.

    Returns the scored site rows (with the cell's columns) and the replicate record
    (cell, seed, per-estimator MSE, coverage, tau recovery, fit diagnostics).
    """
    levels = tuple(setup["levels"])
    data, truth = simulate_replicate(
        setup["tau"], setup["sizes"], setup["mu"], setup["sigma"], setup["seed"]
    )
    sites, info = estimate_replicate(
        data,
        truth,
        setup["sampler"],
        setup["site_sd_prior_scale"],
        levels,
        cores,
        fit_full_bayes=fit_full_bayes or full_bayes,
    )
    scored, record = score(sites, info, setup["tau"], levels)
    cell = {key: setup[key] for key in ("tau", "design", "n_sites", "replicate", "seed")}
    scored.insert(0, "replicate", setup["replicate"])
    for position, key in enumerate(CELL):
        scored.insert(position, key, setup[key])
    return scored, {
        **cell,
        "rows": int(len(data)),
        **record,
        "eb": info["empirical_bayes"],
        "fb": info["full_bayes"],
    }


def estimate_replicate(
    data: pd.DataFrame,
    truth: pd.DataFrame,
    sampler: dict,
    site_sd_prior_scale: float | None = 1.0,
    levels=(0.9, 0.95),
    cores: int = 1,
    fit_full_bayes=full_bayes,
) -> tuple[pd.DataFrame, dict]:
    """All four estimates for every site of one simulated dataset, with their intervals and the true means.

    Returns one row per site (``site, n, theta, ybar, <estimator>`` plus interval columns
    ``<method>_lo_<level>`` / ``<method>_hi_<level>``, ``eb_weight``, ``fb_pooling``) and a dict of
    replicate-level numbers (EB plug-ins, the posterior of tau, the fit's diagnostics).
    ``fit_full_bayes`` is replaceable (tests pass a cheap stand-in).
    """
    summary = site_summaries(data)
    eb, eb_info = empirical_bayes(summary, levels)
    fb, fb_info = fit_full_bayes(data, sampler, site_sd_prior_scale, levels, cores)
    fb = fb.set_index("site").reindex(summary["site"]).reset_index()
    sites = truth.set_index("site").reindex(summary["site"]).reset_index()
    out = pd.DataFrame(
        {
            "site": summary["site"],
            "n": summary["n"].astype(int),
            "theta": sites["theta"],
            "ybar": summary["ybar"],
        }
    )
    out["no_pooling"] = no_pooling(summary)
    out["complete_pooling"] = complete_pooling(summary)
    out["empirical_bayes"] = eb["estimate"].to_numpy()
    out["full_bayes"] = fb["estimate"].to_numpy()
    out["eb_weight"] = eb["weight"].to_numpy()
    out["eb_sd"] = eb["sd"].to_numpy()
    out["fb_pooling"] = fb["pooling"].to_numpy()
    out["fb_sd"] = fb["sd"].to_numpy()
    for level in levels:
        for prefix, frame in (("empirical_bayes", eb), ("full_bayes", fb)):
            out[f"{prefix}_lo_{level:g}"] = frame[f"lo_{level:g}"].to_numpy()
            out[f"{prefix}_hi_{level:g}"] = frame[f"hi_{level:g}"].to_numpy()
    info = {
        "empirical_bayes": {
            **eb_info,
            "tau": math.sqrt(eb_info["tau2"]),
            "tau2_is_zero": eb_info["tau2"] == 0.0,
        },
        "full_bayes": fb_info,
    }
    return out, info


def score(
    sites: pd.DataFrame, info: dict, tau: float, levels=(0.9, 0.95)
) -> tuple[pd.DataFrame, dict]:
    """Squared errors against the true site means and interval coverage, per site and for the replicate.

    Adds ``se_<estimator>`` (squared error), ``covers_<method>_<level>`` and
    ``width_<method>_<level>`` to the site rows; the replicate record holds the means of
    those over sites (``mse_<estimator>``, ``coverage_<method>_<level>``, ``width_...``) and
    the recovery of tau (posterior mean, interval, whether it covers the true tau; EB's estimate).
    """
    scored = sites.copy()
    record: dict = {}
    for name in ESTIMATORS:
        scored[f"se_{name}"] = (scored[name] - scored["theta"]) ** 2
        record[f"mse_{name}"] = float(scored[f"se_{name}"].mean())
    for method in INTERVAL_METHODS:
        for level in levels:
            lo, hi = scored[f"{method}_lo_{level:g}"], scored[f"{method}_hi_{level:g}"]
            scored[f"covers_{method}_{level:g}"] = (lo <= scored["theta"]) & (scored["theta"] <= hi)
            scored[f"width_{method}_{level:g}"] = hi - lo
            record[f"coverage_{method}_{level:g}"] = float(
                scored[f"covers_{method}_{level:g}"].mean()
            )
            record[f"width_{method}_{level:g}"] = float(scored[f"width_{method}_{level:g}"].mean())
    fb_tau = info["full_bayes"]["tau"]
    record["fb_tau_mean"] = fb_tau["mean"]
    record["fb_tau_median"] = fb_tau["median"]
    for level in levels:
        lo, hi = fb_tau[f"lo_{level:g}"], fb_tau[f"hi_{level:g}"]
        record[f"fb_tau_lo_{level:g}"] = lo
        record[f"fb_tau_hi_{level:g}"] = hi
        record[f"fb_tau_covers_{level:g}"] = bool(lo <= tau <= hi)
    record["eb_tau"] = info["empirical_bayes"]["tau"]
    record["eb_tau2_is_zero"] = bool(info["empirical_bayes"]["tau2_is_zero"])
    record["eb_sigma"] = math.sqrt(info["empirical_bayes"]["sigma2"])
    record["fb_sigma_mean"] = info["full_bayes"]["sigma_mean"]
    for key in (
        "divergences",
        "max_rhat",
        "min_ess_bulk",
        "max_rhat_theta",
        "min_ess_bulk_theta",
        "rhat_tau",
        "ess_bulk_tau",
        "sampling_s",
        "fit_wall_s",
    ):
        record[key] = info["full_bayes"].get(key, float("nan"))
    return scored, record
