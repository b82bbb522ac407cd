"""Simulation study: when does partial pooling win?

Every replicate draws site means ``theta_j = mu + tau * z_j`` and observations
``y_ij = theta_j + sigma * e_ij`` (intercept only), then estimates every site's mean four ways:

* **no pooling**: the site's sample mean ``ybar_j``;
* **complete pooling**: the grand mean of all observations;
* **empirical Bayes** (closed form): ``w_j * ybar_j + (1 - w_j) * mu_hat`` with
  ``w_j = tau2 / (tau2 + sigma2 / n_j)``, ``sigma2`` the pooled within-site variance, ``tau2``
  the DerSimonian-Laird (method-of-moments) estimate truncated at 0 and ``mu_hat`` the
  random-effects weighted mean; its interval ``+- z * sqrt(w_j * sigma2 / n_j)`` treats
  the plug-in variances as known;
* **full Bayes**: Bambi ``y ~ 1 + (1|site)`` sampled with nutpie, with the project's
  prior on the between-site SD (`hierpool.models.build_model`).

`score` compares them with the true site means; `aggregate` averages over replicates
with Monte Carlo standard errors; `findings` turns the tables into numbered statements.
Seeds come from `derive_seed` (a hash of the base seed, the cell and the replicate), so a
cell's data do not change when other cells are added to or removed from the grid.
"""

from __future__ import annotations

import hashlib
import math
import time
from statistics import NormalDist

import numpy as np
import pandas as pd

ESTIMATORS = ("no_pooling", "complete_pooling", "empirical_bayes", "full_bayes")
INTERVAL_METHODS = ("empirical_bayes", "full_bayes")
CELL = ["tau", "design", "n_sites"]
LABELS = {
    "no_pooling": "no pooling (site mean)",
    "complete_pooling": "complete pooling (grand mean)",
    "empirical_bayes": "empirical Bayes (plug-in)",
    "full_bayes": "full Bayes (Bambi, nutpie)",
}
PARTIAL_POOLING_FORMULA = "y ~ 1 + (1|site)"


# --------------------------------------------------------------------------- grid and seeds


def grid_frame(grid: dict) -> pd.DataFrame:
    """One row per (tau, design, n_sites, replicate) of a grid ``{tau, design, n_sites, replicates}``.

    The column order (tau, design, n_sites, replicate) is the folder order of the
    Paramspace pattern; tau is always float, so ``1`` and ``1.0`` name the same folder.
    """
    rows = [
        {"tau": float(tau), "design": str(design), "n_sites": int(n_sites), "replicate": int(rep)}
        for tau in grid["tau"]
        for design in grid["design"]
        for n_sites in grid["n_sites"]
        for rep in range(1, int(grid["replicates"]) + 1)
    ]
    frame = pd.DataFrame(rows, columns=["tau", "design", "n_sites", "replicate"])
    return frame.astype({"tau": float, "design": str, "n_sites": int, "replicate": int})


def derive_seed(base_seed: int, tau: float, design: str, n_sites: int, replicate: int) -> int:
    """A 32-bit seed from the base seed, the cell and the replicate (stable across runs and machines).

    A hash, not a counter: adding a tau value to the grid leaves every other cell's seed as it was.
    """
    key = f"{int(base_seed)}|tau={float(tau)!r}|design={design}|n_sites={int(n_sites)}|replicate={int(replicate)}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")


def site_sizes(design: int | list, n_sites: int) -> np.ndarray:
    """Observations per site: an integer gives every site that size, a list is cycled over the sites.

    ``[5, 50, 500]`` with 8 sites gives 5, 50, 500, 5, 50, 500, 5, 50.
    """
    sizes = np.full(n_sites, int(design)) if np.isscalar(design) else np.resize(np.asarray(design, dtype=int), n_sites)
    if (sizes < 2).any():
        raise ValueError("every site needs at least 2 observations (the pooled within-site variance needs them)")
    return sizes


def study_settings(config: dict) -> dict:
    """The ``simulation_study`` block of a validated config, with the chosen grid resolved.

    Raises ConfigError (naming the key) when the grid or a design it names does not exist.
    The site-SD prior is the project's top-level ``site_sd_prior_scale``.
    """
    from hierpool.errors import ConfigError

    block = config["simulation_study"]
    name = block["grid"]
    if name not in block["grids"]:
        raise ConfigError(f"simulation_study.grid is {name!r}, but simulation_study.grids defines only {sorted(block['grids'])}.")
    grid = block["grids"][name]
    unknown = [d for d in grid["design"] if d not in block["designs"]]
    if unknown:
        raise ConfigError(f"simulation_study.grids.{name}.design names {unknown}, which are not in simulation_study.designs "
                          f"(defined: {sorted(block['designs'])}).")
    return {**block, "grid_name": name, "grid": grid, "site_sd_prior_scale": config.get("site_sd_prior_scale", 1.0)}


def study_record(study: dict) -> dict:
    """The settings that define a run of the study (grid name and values, designs, model, sampler), for findings.json."""
    return {"name": study["grid_name"], **{k: study["grid"][k] for k in ("tau", "design", "n_sites", "replicates")},
            "designs": {d: study["designs"][d] for d in study["grid"]["design"]}, "mu": study["mu"], "sigma": study["sigma"],
            "seed": study["seed"], "levels": list(study["levels"]), "sampler": dict(study["sampler"]),
            "site_sd_prior_scale": study["site_sd_prior_scale"], "formula": PARTIAL_POOLING_FORMULA}


def replicate_setup(study: dict, instance: dict) -> dict:
    """Everything one replicate job needs (plain Python types, keys sorted): cell, seeds, site sizes, sampler."""
    tau, design = float(instance["tau"]), str(instance["design"])
    n_sites, replicate = int(instance["n_sites"]), int(instance["replicate"])
    seed = derive_seed(study["seed"], tau, design, n_sites, replicate)
    sampler = {**study["sampler"], "seed": derive_seed(study["seed"] + 1, tau, design, n_sites, replicate)}
    return {
        "tau": tau, "design": design, "n_sites": n_sites, "replicate": replicate, "seed": seed,
        "sizes": [int(n) for n in site_sizes(study["designs"][design], n_sites)],
        "mu": float(study["mu"]), "sigma": float(study["sigma"]), "levels": [float(x) for x in study["levels"]],
        "sampler": dict(sorted(sampler.items())), "site_sd_prior_scale": study["site_sd_prior_scale"],
    }


def run_replicate(setup: dict, cores: int = 1, fit_full_bayes=None) -> tuple[pd.DataFrame, dict]:
    """Simulate, estimate and score one replicate described by `replicate_setup`.

    Returns the scored site rows (with the cell's columns) and the replicate record
    (cell, seed, per-estimator MSE, coverage, tau recovery, fit diagnostics).
    """
    levels = tuple(setup["levels"])
    data, truth = simulate_replicate(setup["tau"], setup["sizes"], setup["mu"], setup["sigma"], setup["seed"])
    sites, info = estimate_replicate(data, truth, setup["sampler"], setup["site_sd_prior_scale"], levels, cores,
                                     fit_full_bayes=fit_full_bayes or full_bayes)
    scored, record = score(sites, info, setup["tau"], levels)
    cell = {key: setup[key] for key in ("tau", "design", "n_sites", "replicate", "seed")}
    scored.insert(0, "replicate", setup["replicate"])
    for position, key in enumerate(CELL):
        scored.insert(position, key, setup[key])
    return scored, {**cell, "rows": int(len(data)), **record, "eb": info["empirical_bayes"], "fb": info["full_bayes"]}


# --------------------------------------------------------------------------- simulation


def simulate_replicate(tau: float, sizes, mu: float = 0.0, sigma: float = 1.0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw one dataset: ``theta_j = mu + tau * z_j``, ``y_ij = theta_j + sigma * e_ij``.

    Returns ``(data, truth)``: data has one row per observation (``site``, ``y``), truth one
    row per site (``site``, ``n``, ``theta``).
    """
    from hierpool.simulate import site_labels

    sizes = np.asarray(sizes, dtype=int)
    rng = np.random.default_rng(seed)
    theta = mu + tau * rng.standard_normal(sizes.size)
    labels = np.asarray(site_labels(sizes.size))
    index = np.repeat(np.arange(sizes.size), sizes)
    y = theta[index] + sigma * rng.standard_normal(index.size)
    data = pd.DataFrame({"site": labels[index], "y": y})
    truth = pd.DataFrame({"site": labels, "n": sizes, "theta": theta})
    return data, truth


def site_summaries(data: pd.DataFrame) -> pd.DataFrame:
    """Per site: size ``n``, sample mean ``ybar`` and sample variance ``s2`` (ddof 1), in site order."""
    grouped = data.groupby("site", sort=True)["y"]
    return pd.DataFrame({"n": grouped.size(), "ybar": grouped.mean(), "s2": grouped.var(ddof=1)}).reset_index()


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


def empirical_bayes(summary: pd.DataFrame, levels=(0.9, 0.95), tau2: float | None = None, sigma2: float | None = None) -> tuple[pd.DataFrame, dict]:
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
    out = pd.DataFrame({"site": summary["site"].to_numpy(), "estimate": estimate, "weight": weight, "sd": sd})
    for level in levels:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        out[f"lo_{level:g}"] = estimate - z * sd
        out[f"hi_{level:g}"] = estimate + z * sd
    return out, {"tau2": tau2, "sigma2": sigma2, "mu": mu}


def full_bayes(data: pd.DataFrame, sampler: dict, site_sd_prior_scale: float | None = 1.0, levels=(0.9, 0.95), cores: int = 1) -> tuple[pd.DataFrame, dict]:
    """Fit ``y ~ 1 + (1|site)`` with Bambi (nutpie by default) and summarise every site's mean.

    Per site: posterior mean and SD of ``theta_j = Intercept + (1|site)_j``, equal-tailed
    intervals at each level, and the pooling factor ``E[(sigma^2/n_j) / (sigma^2/n_j + tau^2)]``
    over the draws (0: no pooling, 1: complete pooling). Also returns the posterior of
    tau and sigma and the fit's diagnostics (divergences; max R-hat and min bulk ESS over
    the site means, tau and sigma; sampling and fit time).
    """
    import arviz as az
    import xarray as xr

    from hierpool.fit import sample
    from hierpool.models import build_model

    spec = {"name": "partial_pooling", "formula": PARTIAL_POOLING_FORMULA, "family": "gaussian"}
    model = build_model(spec, data, site_sd_prior_scale)
    start = time.perf_counter()
    idata = sample(model, sampler, cores=cores)
    wall = time.perf_counter() - start
    post = idata.posterior
    effects = post["1|site"].rename({"site__factor_dim": "site"})
    theta = (post["Intercept"] + effects).stack(sample=("chain", "draw")).transpose("site", "sample")
    tau = post["1|site_sigma"].values.ravel()
    sigma = post["sigma"].values.ravel()
    sites = [str(s) for s in theta["site"].values]
    draws = theta.values
    n = data.groupby("site")["y"].size().reindex(sites).to_numpy(dtype=float)
    within = sigma[None, :] ** 2 / n[:, None]
    pooling = np.mean(within / (within + tau[None, :] ** 2), axis=1)
    out = pd.DataFrame({"site": sites, "estimate": draws.mean(axis=1), "sd": draws.std(axis=1, ddof=1), "pooling": pooling})
    for level in levels:
        out[f"lo_{level:g}"] = np.quantile(draws, 0.5 - level / 2, axis=1)
        out[f"hi_{level:g}"] = np.quantile(draws, 0.5 + level / 2, axis=1)
    # Diagnose what the study uses (site means, tau, sigma); the Intercept and the raw site offsets
    # of the non-centred parametrisation mix worse than their sums when some sites are large.
    core = xr.Dataset({"theta": post["Intercept"] + effects, "tau": post["1|site_sigma"], "sigma": post["sigma"]})
    rhat = az.rhat(core) if post.sizes["chain"] > 1 else None
    ess = az.ess(core, method="bulk")
    tau_summary = {"mean": float(tau.mean()), "median": float(np.median(tau)), "sd": float(tau.std(ddof=1))}
    for level in levels:
        tau_summary[f"lo_{level:g}"] = float(np.quantile(tau, 0.5 - level / 2))
        tau_summary[f"hi_{level:g}"] = float(np.quantile(tau, 0.5 + level / 2))
    info = {
        "tau": tau_summary,
        "sigma_mean": float(sigma.mean()),
        "mu_mean": float(post["Intercept"].mean()),
        "divergences": int(idata.sample_stats["diverging"].values.sum()),
        "max_rhat": float(max(float(rhat[v].max()) for v in rhat.data_vars)) if rhat is not None else float("nan"),
        "min_ess_bulk": float(min(float(ess[v].min()) for v in ess.data_vars)),
        "max_rhat_theta": float(rhat["theta"].max()) if rhat is not None else float("nan"),
        "min_ess_bulk_theta": float(ess["theta"].min()),
        "rhat_tau": float(rhat["tau"]) if rhat is not None else float("nan"),
        "ess_bulk_tau": float(ess["tau"]),
        "chains": int(post.sizes["chain"]),
        "draws": int(post.sizes["draw"]),
        "sampling_s": float(post.attrs.get("sampling_time", float("nan"))),
        "fit_wall_s": round(wall, 3),
    }
    return out, info


# --------------------------------------------------------------------------- one replicate


def estimate_replicate(data: pd.DataFrame, truth: pd.DataFrame, sampler: dict, site_sd_prior_scale: float | None = 1.0,
                       levels=(0.9, 0.95), cores: int = 1, fit_full_bayes=full_bayes) -> tuple[pd.DataFrame, dict]:
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
    out = pd.DataFrame({"site": summary["site"], "n": summary["n"].astype(int), "theta": sites["theta"], "ybar": summary["ybar"]})
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
    info = {"empirical_bayes": {**eb_info, "tau": math.sqrt(eb_info["tau2"]), "tau2_is_zero": eb_info["tau2"] == 0.0}, "full_bayes": fb_info}
    return out, info


def score(sites: pd.DataFrame, info: dict, tau: float, levels=(0.9, 0.95)) -> tuple[pd.DataFrame, dict]:
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
            record[f"coverage_{method}_{level:g}"] = float(scored[f"covers_{method}_{level:g}"].mean())
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
    for key in ("divergences", "max_rhat", "min_ess_bulk", "max_rhat_theta", "min_ess_bulk_theta", "rhat_tau", "ess_bulk_tau",
                "sampling_s", "fit_wall_s"):
        record[key] = info["full_bayes"].get(key, float("nan"))
    return scored, record


# --------------------------------------------------------------------------- aggregation


def mc_se(values) -> float:
    """Monte Carlo standard error of a mean over independent replicates: ``sd / sqrt(R)`` (NaN for R < 2)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else float("nan")


def ratio_mc_se(numerator, denominator) -> float:
    """Monte Carlo SE of ``mean(a) / mean(b)`` for paired replicates (delta method, covariance included)."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if a.size < 2:
        return float("nan")
    ratio = a.mean() / b.mean()
    cov = np.cov(a, b, ddof=1)
    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (b.mean() ** 2 * a.size)
    return float(math.sqrt(max(var, 0.0)))


def aggregate_mse(replicates: pd.DataFrame) -> pd.DataFrame:
    """MSE per cell and estimator with MC SE, relative to no pooling (paired ratio and its MC SE), and win rate."""
    rows = []
    for cell, group in replicates.groupby(CELL, sort=True):
        base = group["mse_no_pooling"].to_numpy()
        best = group[[f"mse_{e}" for e in ESTIMATORS]].mean().idxmin().removeprefix("mse_")
        for name in ESTIMATORS:
            values = group[f"mse_{name}"].to_numpy()
            rows.append({
                **dict(zip(CELL, cell)), "estimator": name, "replicates": len(group),
                "mse": values.mean(), "mc_se": mc_se(values),
                "relative_to_no_pooling": values.mean() / base.mean(), "relative_mc_se": ratio_mc_se(values, base),
                "beats_no_pooling_share": float(np.mean(values < base)), "lowest_mse_in_cell": name == best,
            })
    return pd.DataFrame(rows)


def aggregate_by_size(sites: pd.DataFrame) -> pd.DataFrame:
    """MSE per cell, site size ``n`` and estimator (replicate means first, then MC SE over replicates)."""
    per_rep = sites.groupby([*CELL, "replicate", "n"])[[f"se_{e}" for e in ESTIMATORS]].mean().reset_index()
    rows = []
    for key, group in per_rep.groupby([*CELL, "n"], sort=True):
        base = group["se_no_pooling"].to_numpy()
        for name in ESTIMATORS:
            values = group[f"se_{name}"].to_numpy()
            rows.append({**dict(zip([*CELL, "n"], key)), "estimator": name, "replicates": len(group), "mse": values.mean(),
                         "mc_se": mc_se(values), "relative_to_no_pooling": values.mean() / base.mean(),
                         "relative_mc_se": ratio_mc_se(values, base)})
    return pd.DataFrame(rows)


def aggregate_coverage(replicates: pd.DataFrame, levels=(0.9, 0.95)) -> pd.DataFrame:
    """Interval coverage of the site means per cell, method and level, with MC SE over replicates and mean width."""
    rows = []
    for cell, group in replicates.groupby(CELL, sort=True):
        for method in INTERVAL_METHODS:
            for level in levels:
                values = group[f"coverage_{method}_{level:g}"].to_numpy()
                rows.append({**dict(zip(CELL, cell)), "method": method, "level": level, "replicates": len(group),
                             "coverage": values.mean(), "mc_se": mc_se(values), "shortfall": level - values.mean(),
                             "mean_width": group[f"width_{method}_{level:g}"].mean()})
    return pd.DataFrame(rows)


def aggregate_tau(replicates: pd.DataFrame, levels=(0.9, 0.95)) -> pd.DataFrame:
    """Recovery of tau per cell: full-Bayes posterior mean (bias, RMSE), interval coverage; EB's estimate; fit health."""
    rows = []
    for cell, group in replicates.groupby(CELL, sort=True):
        tau = float(cell[0])
        row = {**dict(zip(CELL, cell)), "replicates": len(group),
               "fb_tau_mean": group["fb_tau_mean"].mean(), "fb_tau_mean_mc_se": mc_se(group["fb_tau_mean"]),
               "fb_tau_bias": group["fb_tau_mean"].mean() - tau,
               "fb_tau_rmse": float(np.sqrt(np.mean((group["fb_tau_mean"] - tau) ** 2)))}
        for level in levels:
            row[f"fb_tau_coverage_{level:g}"] = group[f"fb_tau_covers_{level:g}"].astype(float).mean()
            row[f"fb_tau_width_{level:g}"] = (group[f"fb_tau_hi_{level:g}"] - group[f"fb_tau_lo_{level:g}"]).mean()
        row.update({"eb_tau_mean": group["eb_tau"].mean(), "eb_tau_bias": group["eb_tau"].mean() - tau,
                    "eb_tau_rmse": float(np.sqrt(np.mean((group["eb_tau"] - tau) ** 2))),
                    "eb_tau_zero_share": group["eb_tau2_is_zero"].astype(float).mean(),
                    "fits_with_divergences": int((group["divergences"] > 0).sum()), "divergences": int(group["divergences"].sum()),
                    "max_rhat": group["max_rhat"].max(), "min_ess_bulk": group["min_ess_bulk"].min(),
                    "max_rhat_theta": group["max_rhat_theta"].max(), "min_ess_bulk_theta": group["min_ess_bulk_theta"].min(),
                    "max_rhat_tau": group["rhat_tau"].max(), "min_ess_bulk_tau": group["ess_bulk_tau"].min(),
                    "mean_fit_wall_s": group["fit_wall_s"].mean()})
        rows.append(row)
    return pd.DataFrame(rows)


def aggregate(replicates: pd.DataFrame, sites: pd.DataFrame, levels=(0.9, 0.95)) -> dict[str, pd.DataFrame]:
    """All summary tables: ``mse``, ``mse_by_size``, ``coverage``, ``tau``."""
    return {"mse": aggregate_mse(replicates), "mse_by_size": aggregate_by_size(sites),
            "coverage": aggregate_coverage(replicates, levels), "tau": aggregate_tau(replicates, levels)}


# --------------------------------------------------------------------------- findings


def _cell_name(row) -> str:
    return f"tau={row['tau']:g}, {row['design']}, J={int(row['n_sites'])}"


def findings(tables: dict[str, pd.DataFrame], grid: dict | str = "", level: float = 0.95) -> dict:
    """The study's answers as numbers, computed from the summary tables (nothing typed in).

    Keys: ``partial_vs_no_pooling`` (per tau: full-Bayes and EB MSE relative to no pooling,
    mean and range over cells), ``complete_pooling`` (cells where it has the lowest MSE, and
    its MSE relative to full Bayes by tau), ``empirical_vs_full_bayes`` (ratio of their MSEs
    by tau and number of sites), ``small_sites`` (relative MSE by site size in the mixed-size
    design), ``eb_uncertainty`` (coverage at ``level`` of EB and full Bayes; cells where EB
    falls short by more than 2 MC SE), ``tau_recovery`` (with the fits' health) and
    ``monte_carlo`` (the MC SEs of the relative MSEs of full and empirical Bayes and of coverage);
    ``grid`` holds the run's settings (`study_record`, or just a name).
    """
    mse, by_size, cov, tau_tab = tables["mse"], tables["mse_by_size"], tables["coverage"], tables["tau"]
    out: dict = {"grid": grid if isinstance(grid, dict) else {"name": grid}, "cells": int(len(tau_tab)), "replicates_per_cell": sorted({int(r) for r in tau_tab["replicates"]}),
                 "tau_values": sorted(float(t) for t in tau_tab["tau"].unique()), "designs": sorted(tau_tab["design"].unique()),
                 "n_sites_values": sorted(int(j) for j in tau_tab["n_sites"].unique()), "level": level}

    pp = []
    for tau, group in mse.groupby("tau", sort=True):
        entry = {"tau": float(tau)}
        for name in ("full_bayes", "empirical_bayes", "complete_pooling"):
            rel = group.loc[group["estimator"] == name, "relative_to_no_pooling"]
            entry[name] = {"mean": float(rel.mean()), "min": float(rel.min()), "max": float(rel.max())}
        fb = group[group["estimator"] == "full_bayes"]
        entry["full_bayes_beats_no_pooling_cells"] = int((fb["relative_to_no_pooling"] < 1).sum())
        entry["cells"] = int(len(fb))
        pp.append(entry)
    out["partial_vs_no_pooling"] = pp

    wide = mse.pivot_table(index=CELL, columns="estimator", values="mse").reset_index()
    cp_best = wide[wide[list(ESTIMATORS)].idxmin(axis=1) == "complete_pooling"]
    cp_vs_fb = []
    for tau, group in wide.groupby("tau", sort=True):
        ratio = group["complete_pooling"] / group["full_bayes"]
        cp_vs_fb.append({"tau": float(tau), "mean": float(ratio.mean()), "min": float(ratio.min()), "max": float(ratio.max()),
                         "cells_where_complete_pooling_beats_full_bayes": int((ratio < 1).sum()), "cells": int(len(group))})
    out["complete_pooling"] = {
        "lowest_mse_cells": [{"cell": _cell_name(r), "tau": float(r["tau"]), "design": r["design"], "n_sites": int(r["n_sites"]),
                              "mse_complete_pooling": float(r["complete_pooling"]), "mse_full_bayes": float(r["full_bayes"]),
                              "mse_no_pooling": float(r["no_pooling"])} for _, r in cp_best.iterrows()],
        "relative_to_full_bayes_by_tau": cp_vs_fb,
        "worst_cell": None,
    }
    if len(wide):
        worst = wide.assign(r=wide["complete_pooling"] / wide["no_pooling"]).sort_values("r").iloc[-1]
        out["complete_pooling"]["worst_cell"] = {"cell": _cell_name(worst), "relative_to_no_pooling": float(worst["r"])}

    eb_fb = []
    for (tau, j), group in wide.groupby(["tau", "n_sites"], sort=True):
        ratio = group["empirical_bayes"] / group["full_bayes"]
        eb_fb.append({"tau": float(tau), "n_sites": int(j), "mean": float(ratio.mean()), "min": float(ratio.min()),
                      "max": float(ratio.max()), "cells": int(len(group))})
    out["empirical_vs_full_bayes"] = {"by_tau_and_n_sites": eb_fb,
                                      "cells_where_eb_beats_full_bayes": int((wide["empirical_bayes"] < wide["full_bayes"]).sum()),
                                      "cells": int(len(wide))}

    mixed = by_size[by_size["n"].groupby([by_size[c] for c in CELL]).transform("nunique") > 1]
    small = []
    for (tau, n), group in mixed.groupby(["tau", "n"], sort=True):
        rel = group.groupby("estimator")["relative_to_no_pooling"].mean()
        small.append({"tau": float(tau), "n": int(n), "full_bayes_relative_mse": float(rel["full_bayes"]),
                      "empirical_bayes_relative_mse": float(rel["empirical_bayes"]),
                      "cells": int((group["estimator"] == "full_bayes").sum())})
    eb_small = mixed[mixed["estimator"] == "empirical_bayes"].groupby("n")["relative_to_no_pooling"].mean()
    fb_small = mixed[mixed["estimator"] == "full_bayes"].groupby("n")["relative_to_no_pooling"].mean()
    out["small_sites"] = {"designs": sorted(mixed["design"].unique()), "by_tau_and_n": small,
                          "full_bayes_by_n": {int(k): float(v) for k, v in fb_small.items()},
                          "empirical_bayes_by_n": {int(k): float(v) for k, v in eb_small.items()}}

    at = cov[cov["level"] == level]
    per_method = {}
    for method in INTERVAL_METHODS:
        part = at[at["method"] == method]
        per_method[method] = {"mean": float(part["coverage"].mean()), "min": float(part["coverage"].min()),
                              "by_tau": {f"{t:g}": float(v) for t, v in part.groupby("tau")["coverage"].mean().items()},
                              "by_n_sites": {int(j): float(v) for j, v in part.groupby("n_sites")["coverage"].mean().items()}}
    eb = at[at["method"] == "empirical_bayes"].merge(tau_tab[[*CELL, "eb_tau_zero_share"]], on=CELL)
    fb = at[at["method"] == "full_bayes"].set_index(CELL)["coverage"]
    short = eb[(eb["shortfall"] > 2 * eb["mc_se"].fillna(0)) & (eb["shortfall"] > 0)].sort_values("coverage")
    out["eb_uncertainty"] = {
        **{f"{m}_coverage": v for m, v in per_method.items()},
        "eb_short_cells": [{"cell": _cell_name(r), "eb_coverage": float(r["coverage"]), "eb_mc_se": float(r["mc_se"]),
                            "full_bayes_coverage": float(fb.loc[tuple(r[c] for c in CELL)]),
                            "eb_tau_zero_share": float(r["eb_tau_zero_share"])} for _, r in short.iterrows()],
        "eb_tau_zero_share_by_tau": {f"{t:g}": float(v) for t, v in tau_tab.groupby("tau")["eb_tau_zero_share"].mean().items()},
        "cells": int(len(eb)),
    }

    out["tau_recovery"] = {
        "by_tau": [{"tau": float(t), "fb_tau_mean": float(g["fb_tau_mean"].mean()), "eb_tau_mean": float(g["eb_tau_mean"].mean()),
                    "fb_tau_coverage_0.9": float(g["fb_tau_coverage_0.9"].mean()) if "fb_tau_coverage_0.9" in g else None,
                    "fb_tau_rmse": float(np.sqrt((g["fb_tau_rmse"] ** 2).mean())), "eb_tau_rmse": float(np.sqrt((g["eb_tau_rmse"] ** 2).mean()))}
                   for t, g in tau_tab.groupby("tau", sort=True)],
        "fits_with_divergences": int(tau_tab["fits_with_divergences"].sum()),
        "fits": int(tau_tab["replicates"].sum()),
        "max_rhat": float(tau_tab["max_rhat"].max()),
        "min_ess_bulk": float(tau_tab["min_ess_bulk"].min()),
        "max_rhat_theta": float(tau_tab["max_rhat_theta"].max()),
        "min_ess_bulk_theta": float(tau_tab["min_ess_bulk_theta"].min()),
        "max_rhat_tau": float(tau_tab["max_rhat_tau"].max()),
        "min_ess_bulk_tau": float(tau_tab["min_ess_bulk_tau"].min()),
    }
    rel = mse[mse["estimator"].isin(["full_bayes", "empirical_bayes"])]
    out["monte_carlo"] = {"max_relative_mse_mc_se": float(rel["relative_mc_se"].max()),
                          "median_relative_mse_mc_se": float(rel["relative_mc_se"].median()),
                          "max_coverage_mc_se": float(cov["mc_se"].max()), "median_coverage_mc_se": float(cov["mc_se"].median())}
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def findings_markdown(f: dict) -> str:
    """The findings as prose; every number comes from the dict made by `findings`."""
    lines = [
        "# Simulation study: when does partial pooling win?",
        "",
        f"Grid `{f['grid']['name']}`: {f['cells']} cells (tau in {', '.join(f'{t:g}' for t in f['tau_values'])}; site-size designs "
        f"{', '.join(f['designs'])}; {' or '.join(str(j) for j in f['n_sites_values'])} sites), "
        f"{'/'.join(str(r) for r in f['replicates_per_cell'])} replicates per cell"
        + (f", residual SD {f['grid']['sigma']:g}. " if "sigma" in f["grid"] else ". ")
        + "MSE is the mean squared error of the site means over sites and replicates; "
        "\"relative MSE\" is an estimator's MSE divided by no pooling's in the same cell (below 1: better than no pooling). "
        + (f"Full Bayes: Bambi `{f['grid']['formula']}`, prior on tau HalfNormal({f['grid']['site_sd_prior_scale']:g} × sd(y)), "
           f"{f['grid']['sampler']['chains']} chains × {f['grid']['sampler']['draws']} draws ({f['grid']['sampler']['backend']}). "
           if "sampler" in f["grid"] and f["grid"].get("site_sd_prior_scale") is not None else "")
        + f"Monte Carlo SE of the relative MSE of full or empirical Bayes: median {f['monte_carlo']['median_relative_mse_mc_se']:.3f}, "
        f"at most {f['monte_carlo']['max_relative_mse_mc_se']:.3f}; of a coverage: median "
        f"{f['monte_carlo']['median_coverage_mc_se']:.3f}, at most {f['monte_carlo']['max_coverage_mc_se']:.3f}.",
        "",
        "## 1. Partial pooling against no pooling, across tau",
        "",
        "| tau | full Bayes / no pooling (mean, range over cells) | empirical Bayes / no pooling | complete pooling / no pooling | cells where full Bayes beats no pooling |",
        "|---:|---|---|---|---:|",
    ]
    for e in f["partial_vs_no_pooling"]:
        fmt = lambda d: f"{d['mean']:.2f} ({d['min']:.2f} to {d['max']:.2f})"  # noqa: E731
        lines.append(f"| {e['tau']:g} | {fmt(e['full_bayes'])} | {fmt(e['empirical_bayes'])} | {fmt(e['complete_pooling'])} | "
                     f"{e['full_bayes_beats_no_pooling_cells']} of {e['cells']} |")
    first, last = f["partial_vs_no_pooling"][0], f["partial_vs_no_pooling"][-1]
    change = lambda r: f"{_pct(abs(1 - r))} {'lower' if r < 1 else 'higher'}"  # noqa: E731
    trend = ("the gain shrinks as the sites differ more, because the data then ask for less shrinkage"
             if last["full_bayes"]["mean"] > first["full_bayes"]["mean"] else "the gain does not shrink with tau in this grid")
    lines += ["", f"Partial pooling (full Bayes) has {change(first['full_bayes']['mean'])} MSE than no pooling at tau = "
              f"{first['tau']:g} and {change(last['full_bayes']['mean'])} at tau = {last['tau']:g} (means over cells); {trend}.", ""]

    cp = f["complete_pooling"]
    lines += ["## 2. Where complete pooling wins", ""]
    if cp["lowest_mse_cells"]:
        lines.append(f"Complete pooling has the lowest MSE of the four estimators in {len(cp['lowest_mse_cells'])} cell(s): "
                     + "; ".join(f"{c['cell']} (MSE {c['mse_complete_pooling']:.4f} vs full Bayes {c['mse_full_bayes']:.4f}, "
                                 f"no pooling {c['mse_no_pooling']:.4f})" for c in cp["lowest_mse_cells"]) + ".")
    else:
        lines.append("Complete pooling has the lowest MSE in no cell of this grid.")
    lines += ["", "| tau | complete pooling / full Bayes (mean, range) | cells where complete pooling beats full Bayes |", "|---:|---|---:|"]
    lines += [f"| {e['tau']:g} | {e['mean']:.2f} ({e['min']:.2f} to {e['max']:.2f}) | {e['cells_where_complete_pooling_beats_full_bayes']} of {e['cells']} |"
              for e in cp["relative_to_full_bayes_by_tau"]]
    if cp["worst_cell"] and cp["worst_cell"]["relative_to_no_pooling"] > 1:
        lines += ["", f"Its worst cell is {cp['worst_cell']['cell']}, where its MSE is {cp['worst_cell']['relative_to_no_pooling']:.1f} "
                  "times that of no pooling: there, ignoring real differences between sites costs more than ignoring what the sites share."]
    lines.append("")

    small = f["small_sites"]
    lines += ["## 3. Small sites gain most", ""]
    if small["full_bayes_by_n"]:
        lines.append(f"In the mixed-size design(s) ({', '.join(small['designs'])}), full Bayes' MSE relative to no pooling, by site size "
                     "(mean over tau and number of sites): " + ", ".join(f"n = {n}: {v:.2f}" for n, v in small["full_bayes_by_n"].items())
                     + "; empirical Bayes: " + ", ".join(f"n = {n}: {v:.2f}" for n, v in small["empirical_bayes_by_n"].items()) + ".")
        top = [e for e in small["by_tau_and_n"] if e["tau"] == max(x["tau"] for x in small["by_tau_and_n"])]
        lo, hi = min(top, key=lambda e: e["n"]), max(top, key=lambda e: e["n"])
        lines += ["", f"Even at tau = {lo['tau']:g}, sites of n = {lo['n']} have {change(lo['full_bayes_relative_mse'])} MSE than with no pooling, "
                  f"sites of n = {hi['n']} {change(hi['full_bayes_relative_mse'])}: shrinkage is strongest where a site's own mean is noisiest.",
                  "", "| tau | n | full Bayes / no pooling | empirical Bayes / no pooling |", "|---:|---:|---:|---:|"]
        lines += [f"| {e['tau']:g} | {e['n']} | {e['full_bayes_relative_mse']:.2f} | {e['empirical_bayes_relative_mse']:.2f} |"
                  for e in small["by_tau_and_n"]]
    else:
        lines.append("No design in this grid mixes site sizes.")
    lines.append("")

    ef = f["empirical_vs_full_bayes"]
    lines += ["## 4. Empirical Bayes against full Bayes (point estimates)", "",
              f"Empirical Bayes has the lower MSE in {ef['cells_where_eb_beats_full_bayes']} of {ef['cells']} cells. "
              "Ratio of their MSEs (EB / full Bayes; above 1: full Bayes better), mean and range over site-size designs:", "",
              "| tau | J | EB / full Bayes |", "|---:|---:|---|"]
    lines += [f"| {e['tau']:g} | {e['n_sites']} | {e['mean']:.2f} ({e['min']:.2f} to {e['max']:.2f}) |" for e in ef["by_tau_and_n_sites"]]
    lines.append("")

    eb = f["eb_uncertainty"]
    lvl = _pct(f["level"])
    lines += [f"## 5. Where empirical Bayes underestimates uncertainty ({lvl} intervals)", "",
              f"Mean coverage over cells: full Bayes {_pct(eb['full_bayes_coverage']['mean'])} (lowest cell {_pct(eb['full_bayes_coverage']['min'])}), "
              f"empirical Bayes {_pct(eb['empirical_bayes_coverage']['mean'])} (lowest cell {_pct(eb['empirical_bayes_coverage']['min'])}).",
              "", "| tau | EB coverage | full Bayes coverage | share of replicates with EB tau^2 = 0 |", "|---:|---:|---:|---:|"]
    for t in eb["empirical_bayes_coverage"]["by_tau"]:
        lines.append(f"| {t} | {_pct(eb['empirical_bayes_coverage']['by_tau'][t])} | {_pct(eb['full_bayes_coverage']['by_tau'][t])} | "
                     f"{_pct(eb['eb_tau_zero_share_by_tau'][t])} |")
    by_j = eb["empirical_bayes_coverage"]["by_n_sites"]
    lines += ["", "By number of sites, EB coverage: " + ", ".join(f"J = {j}: {_pct(v)}" for j, v in by_j.items())
              + "; full Bayes: " + ", ".join(f"J = {j}: {_pct(v)}" for j, v in eb["full_bayes_coverage"]["by_n_sites"].items()) + "."]
    if eb["eb_short_cells"]:
        lines += ["", f"EB falls short of {lvl} by more than 2 Monte Carlo SE in {len(eb['eb_short_cells'])} of {eb['cells']} cells; the worst: "
                  + "; ".join(f"{c['cell']} ({_pct(c['eb_coverage'])} vs full Bayes {_pct(c['full_bayes_coverage'])}, tau^2 estimated as 0 in "
                              f"{_pct(c['eb_tau_zero_share'])} of replicates)" for c in eb["eb_short_cells"][:5]) + ". "
                  "The plug-in interval treats tau and sigma as known; when tau^2 is estimated as 0 it has zero width."]
    lines.append("")

    tr = f["tau_recovery"]
    lines += ["## 6. Recovery of tau (full Bayes)", "", "| tau | posterior mean (average) | EB estimate (average) | 90% interval covers tau | RMSE full Bayes | RMSE EB |",
              "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {e['tau']:g} | {e['fb_tau_mean']:.3f} | {e['eb_tau_mean']:.3f} | {_pct(e['fb_tau_coverage_0.9'])} | {e['fb_tau_rmse']:.3f} | {e['eb_tau_rmse']:.3f} |"
              for e in tr["by_tau"]]
    lines += ["", f"Fit health: {tr['fits_with_divergences']} of {tr['fits']} fits had divergent transitions. Site means: max R-hat "
              f"{tr['max_rhat_theta']:.3f}, min bulk ESS {tr['min_ess_bulk_theta']:.0f}; tau: max R-hat {tr['max_rhat_tau']:.3f}, "
              f"min bulk ESS {tr['min_ess_bulk_tau']:.0f} (Bambi's non-centred site effects mix slowly in tau when the sites are "
              "large and differ a lot; the site means, which every MSE and coverage above uses, are not affected).", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots


def _style():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hierpool import plots  # noqa: F401  (figure style: labels drawn literally)

    return plt


def _tau_axis(ax, taus) -> None:
    """Log-scaled x axis with a tick at every tau of the grid."""
    values = sorted(float(t) for t in set(taus))
    ax.set_xscale("log")
    ax.set_xticks(values, [f"{t:g}" for t in values])
    ax.minorticks_off()


COLORS = {"no_pooling": "C0", "complete_pooling": "C3", "empirical_bayes": "C2", "full_bayes": "C1"}


def plot_mse_vs_tau(mse: pd.DataFrame):
    """MSE (log scale, ±2 MC SE, lower bars cut at 10% of the value) against tau per estimator; rows: design, columns: number of sites."""
    plt = _style()
    designs, js = sorted(mse["design"].unique()), sorted(mse["n_sites"].unique())
    fig, axes = plt.subplots(len(designs), len(js), figsize=(4.2 * len(js), 3.2 * len(designs)), squeeze=False, sharex=True)
    for i, design in enumerate(designs):
        for k, j in enumerate(js):
            ax = axes[i][k]
            part = mse[(mse["design"] == design) & (mse["n_sites"] == j)]
            for name in ESTIMATORS:
                line = part[part["estimator"] == name].sort_values("tau")
                bar = 2 * line["mc_se"].fillna(0).to_numpy()
                lower = np.minimum(bar, 0.9 * line["mse"].to_numpy())  # a log axis cannot show a bar below 0
                ax.errorbar(line["tau"], line["mse"], yerr=[lower, bar], marker="o", ms=4, capsize=2,
                            color=COLORS[name], label=LABELS[name])
            ax.set_yscale("log")
            _tau_axis(ax, mse["tau"])
            ax.set_title(f"{design} sites, J = {j}", fontsize=10)
            if k == 0:
                ax.set_ylabel("MSE of site means")
            if i == len(designs) - 1:
                ax.set_xlabel("between-site SD tau (sigma = 1)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Mean squared error of the site means against heterogeneity (bars: ±2 Monte Carlo SE)")
    fig.tight_layout()
    return fig


def plot_shrinkage_vs_n(sites: pd.DataFrame):
    """Full Bayes pooling factor (0: no pooling, 1: complete pooling) against site size, one line per tau."""
    plt = _style()
    js = sorted(sites["n_sites"].unique())
    fig, axes = plt.subplots(1, len(js), figsize=(4.6 * len(js), 3.6), squeeze=False, sharey=True)
    taus = sorted(sites["tau"].unique())
    cmap = plt.get_cmap("viridis")
    for k, j in enumerate(js):
        ax = axes[0][k]
        part = sites[sites["n_sites"] == j]
        for i, tau in enumerate(taus):
            byn = part[part["tau"] == tau].groupby("n")
            fb, eb = byn["fb_pooling"].mean(), 1 - byn["eb_weight"].mean()
            color = cmap(i / max(1, len(taus) - 1))
            ax.plot(fb.index, fb.values, marker="o", color=color, label=f"tau = {tau:g}")
            ax.plot(eb.index, eb.values, ls="--", marker="x", color=color, alpha=0.7)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("site size n_j (log scale)")
        ax.set_title(f"J = {j} sites", fontsize=10)
    axes[0][0].set_ylabel("shrinkage toward the grand mean")
    axes[0][0].legend(fontsize=8, title="solid: full Bayes, dashed: EB", title_fontsize=8)
    fig.suptitle("How far each site's estimate is pulled toward the grand mean (mean over sites and replicates)")
    fig.tight_layout()
    return fig


def plot_fb_vs_eb(sites: pd.DataFrame):
    """Full Bayes posterior mean against the empirical Bayes estimate, per site, one panel per tau."""
    plt = _style()
    taus = sorted(sites["tau"].unique())
    fig, axes = plt.subplots(1, len(taus), figsize=(3.6 * len(taus), 3.6), squeeze=False)
    sizes = sorted(sites["n"].unique())
    cmap = plt.get_cmap("plasma")
    for k, tau in enumerate(taus):
        ax = axes[0][k]
        part = sites[sites["tau"] == tau]
        for i, n in enumerate(sizes):
            pts = part[part["n"] == n]
            ax.scatter(pts["empirical_bayes"], pts["full_bayes"], s=8, alpha=0.6, color=cmap(i / max(1, len(sizes))), label=f"n = {n}")
        lo = float(min(part["empirical_bayes"].min(), part["full_bayes"].min()))
        hi = float(max(part["empirical_bayes"].max(), part["full_bayes"].max()))
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1)
        ax.set_title(f"tau = {tau:g}", fontsize=10)
        ax.set_xlabel("empirical Bayes estimate")
    axes[0][0].set_ylabel("full Bayes posterior mean")
    axes[0][0].legend(fontsize=7, markerscale=2)
    fig.suptitle("Full Bayes against empirical Bayes, every site of every replicate (line: equal)")
    fig.tight_layout()
    return fig


def plot_coverage(coverage: pd.DataFrame, level: float = 0.95):
    """Coverage of the site-mean intervals against tau: full Bayes vs empirical Bayes, per number of sites."""
    plt = _style()
    part = coverage[coverage["level"] == level]
    js = sorted(part["n_sites"].unique())
    designs = sorted(part["design"].unique())
    fig, axes = plt.subplots(1, len(js), figsize=(4.6 * len(js), 3.6), squeeze=False, sharey=True)
    markers = dict(zip(designs, "osd^v"))
    for k, j in enumerate(js):
        ax = axes[0][k]
        for method in INTERVAL_METHODS:
            for design in designs:
                line = part[(part["n_sites"] == j) & (part["method"] == method) & (part["design"] == design)].sort_values("tau")
                ax.errorbar(line["tau"], line["coverage"], yerr=2 * line["mc_se"].fillna(0), marker=markers[design], ms=4, capsize=2,
                            color=COLORS[method], label=f"{LABELS[method].split(' (')[0]}, {design}")
        ax.axhline(level, color="0.4", ls="--", lw=1)
        ax.set_ylim(max(0.0, float(part["coverage"].min()) - 0.1), 1.02)
        _tau_axis(ax, part["tau"])
        ax.set_xlabel("between-site SD tau")
        ax.set_title(f"J = {j} sites", fontsize=10)
    axes[0][0].set_ylabel(f"coverage of {level:.0%} intervals")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Do the {level:.0%} intervals for the site means cover the truth? (bars: ±2 MC SE)")
    fig.tight_layout()
    return fig
