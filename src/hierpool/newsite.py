"""Predictions for a site the model has not seen: a new draw of the site effects from their distribution.

For every posterior draw, a new site's intercept and slope are drawn from the fitted
population distribution (normal with the site SDs and, for a correlated model, their
correlation); effects of grouping factors nested in the site (``site:class``) are drawn
too, those of crossed factors are set to their average (0). The expected outcome of the new
site and a new observation from it follow, along the predictor with covariates held at their
average. No pooling has no population distribution, so it predicts no new site.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierpool import fitinfo, posterior, roles

LEVELS = (0.5, 0.95)  # the intervals of a predictive distribution: 50% and the report's level


def _nested(factor: str, group: str) -> bool:
    return factor != group and group in factor.split(":")


def site_effect_draws(idata, columns: dict, scale: fitinfo.PredictorScale, rng) -> tuple:
    """A new site's intercept and slope (per original unit of the predictor) per draw, shape (chain × draw,)."""
    sds = posterior.site_sds(idata, columns, scale)
    post = idata.posterior
    n_samples = post.sizes["chain"] * post.sizes["draw"]
    z0, z1 = rng.standard_normal((2, n_samples))
    if sds is None:  # complete pooling: every site is the population
        b0 = np.zeros(n_samples)
        b1 = np.zeros(n_samples)
    else:
        sd0, sd1 = (s.values.reshape(-1) for s in sds)
        rho = posterior.site_correlation(idata, columns)
        rho = np.zeros(n_samples) if rho is None else rho.values.reshape(-1)
        b0 = sd0 * z0
        b1 = sd1 * (rho * z0 + np.sqrt(1 - rho**2) * z1)
    for factor, sd in posterior.factor_sds(idata, columns).items():
        if _nested(factor, columns["group"]):
            b0 = b0 + sd.values.reshape(-1) * rng.standard_normal(n_samples)
    return b0, b1


def _observations(mu: np.ndarray, family: str, idata, rng) -> np.ndarray | None:
    """New observations around the expected outcome ``mu`` (draws × grid), or None for a family not drawn here."""
    post = idata.posterior
    if family == "gaussian" and "sigma" in post:
        return rng.normal(mu, post["sigma"].values.reshape(-1, 1))
    if family == "t" and "sigma" in post and "nu" in post:
        sigma, nu = post["sigma"].values.reshape(-1, 1), post["nu"].values.reshape(-1, 1)
        return mu + sigma * rng.standard_t(nu, size=mu.shape)
    if family == "bernoulli":
        return rng.binomial(1, np.clip(mu, 0, 1)).astype(float)
    if family == "poisson":
        return rng.poisson(mu).astype(float)
    if family == "negativebinomial" and "alpha" in post:
        alpha = post["alpha"].values.reshape(-1, 1)
        return rng.negative_binomial(alpha, alpha / (alpha + mu)).astype(float)
    return None


def new_site_predictions(
    idata, columns: dict, scale: fitinfo.PredictorScale, data: pd.DataFrame, grid, seed: int
) -> pd.DataFrame | None:
    """Predictive summaries for a new site along ``grid`` (original units of the predictor); None for no pooling.

    Returns
    -------
    DataFrame
        One row per grid value and quantity: ``expected`` (the new site's mean outcome, response
        scale) and, where the family is drawn here, ``observation`` (one new observation); with
        ``mean``, ``q25``, ``q75`` and the outer interval ``low``, ``high`` at ``LEVELS[1]``.
        Binomial outcomes are proportions (expected only); known-SE models give the new site's
        true effect (``expected``).
    """
    struct = fitinfo.structure(idata, columns)
    if struct.role == "no_pooling":
        return None
    rng = np.random.default_rng(seed)
    intercept, slope = posterior.population_line(idata, columns, scale, data)
    b0, b1 = site_effect_draws(idata, columns, scale, rng)
    grid = np.atleast_1d(np.asarray(grid, dtype=float))
    a = intercept.values.reshape(-1) + b0
    b = slope.values.reshape(-1) + b1
    eta = a[:, None] + b[:, None] * (grid[None, :] - scale.center)
    info = fitinfo.model_info(idata)
    mu = posterior.inverse_link(eta, info["link"])
    quantities = {"expected": mu}
    if not info["known_se"]:
        observed = _observations(mu, info["family"], idata, rng)
        if observed is not None:
            quantities["observation"] = observed
    outer = LEVELS[1]
    rows = []
    for quantity, draws in quantities.items():
        q = np.quantile(draws, [0.25, 0.75, (1 - outer) / 2, (1 + outer) / 2], axis=0)
        for i, x in enumerate(grid):
            rows.append(
                {
                    "x": float(x),
                    "quantity": quantity,
                    "mean": float(draws[:, i].mean()),
                    "q25": float(q[0, i]),
                    "q75": float(q[1, i]),
                    "low": float(q[2, i]),
                    "high": float(q[3, i]),
                }
            )
    return pd.DataFrame(rows)


def predictor_grid(data: pd.DataFrame, columns: dict, scale: fitinfo.PredictorScale, n: int = 25):
    """Evenly spaced predictor values over the data's range (original units); one value without a predictor."""
    p = columns.get("predictor")
    if not p:
        return np.array([scale.center])
    x = scale.to_original(data[p].to_numpy(dtype=float))
    if np.unique(x).size <= 2:  # a 0/1 predictor: its two values
        return np.unique(x)
    return np.linspace(np.nanmin(x), np.nanmax(x), n)


def dataset_table(fits: dict, columns: dict, scale, data: pd.DataFrame, seed: int) -> pd.DataFrame:
    """`new_site_predictions` of every model that has a population distribution, one block per model."""
    grid = predictor_grid(data, columns, scale)
    parts = []
    for model, idata in fits.items():
        table = new_site_predictions(idata, columns, scale, data, grid, seed)
        if table is not None:
            role = fitinfo.role(idata, columns)
            parts.append(table.assign(model=model, role=roles.LABELS[role]))
    columns_out = ["model", "role", "x", "quantity", "mean", "q25", "q75", "low", "high"]
    if not parts:
        return pd.DataFrame(columns=columns_out)
    return pd.concat(parts, ignore_index=True)[columns_out]
