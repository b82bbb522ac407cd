"""Bayesian R² (Gelman, Goodrich, Gabry & Vehtari 2019), conditional and marginal, per posterior draw.

Per draw, ``var_n(mu_n) / (var_n(mu_n) + residual variance)``:

- conditional: ``mu`` includes the site effects;
- marginal: ``mu`` is the population-level line only. What that line leaves unexplained is the
  site variation plus the residual variance, so the denominator adds the model's between-site
  variance at each observation's x, averaged over observations (as in Nakagawa & Schielzeth's
  marginal R²), with the covariance term of a correlated model. Using the residual variance
  alone there would credit the predictor with the between-site variance and overstate the
  marginal R².

No pooling has no population-level line, so it has a conditional R² only. Outside the Gaussian
family every variance is on the link scale and the residual variance is the family's latent one
(`hierpool.variance.residual_variance`). The linear predictor is formed in blocks of draws, so
memory stays bounded however many rows there are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierpool import fitinfo, posterior, summaries
from hierpool.summaries import HDI_PROB
from hierpool.variance import other_factors_variance, residual_variance


def _var_over_obs(mu: np.ndarray) -> np.ndarray:
    return mu.var(axis=-1, ddof=1)


def _mu_variance(
    idata, data: pd.DataFrame, columns: dict, include_site: bool, budget_mb: float = 128
) -> np.ndarray:
    """Variance over observations of the linear predictor, per draw (chain, draw), in blocks of draws.

    A block's draws × observations array stays near ``budget_mb`` (100,000 rows × 8,000 draws
    would be 6.4 GB at once).
    """
    post = fitinfo.posterior_dataset(idata)
    per = max(1, int(budget_mb * 2**20 // (8 * max(1, len(data)) * post.sizes["chain"])))
    return np.concatenate(
        [
            _var_over_obs(
                posterior.mu_draws(
                    post.isel(draw=slice(start, start + per)), data, columns, include_site
                )
            )
            for start in range(0, post.sizes["draw"], per)
        ],
        axis=1,
    )


def bayes_r2_draws(
    idata, data: pd.DataFrame, columns: dict, kind: str = "conditional"
) -> np.ndarray:
    """Bayesian R² per draw, shape (chain, draw); ``kind`` is ``conditional`` or ``marginal`` (module docstring).

    Outside the Gaussian family every variance is on the link scale and the residual variance
    is the distribution-specific one of `residual_variance`.
    """
    resid = residual_variance(idata, columns, data)[0].values
    if kind == "conditional":
        var_fit = _mu_variance(idata, data, columns, include_site=True)
        return var_fit / (var_fit + resid)
    if kind == "marginal":
        var_fit = _mu_variance(idata, data, columns, include_site=False)
        var_site = np.zeros_like(resid) + np.asarray(other_factors_variance(idata, columns))
        sds = posterior.site_sds(idata, columns)
        if sds is not None:
            p = columns.get("predictor")
            x = (
                data[p].to_numpy(dtype=float) if p else np.zeros(1)
            )  # model scale: distance from the centre
            sd0, sd1 = (s.values for s in sds)
            rho = posterior.site_correlation(idata, columns)
            rho = 0.0 if rho is None else rho.values
            var_site = var_site + sd0**2 + 2 * rho * sd0 * sd1 * np.mean(x) + sd1**2 * np.mean(x**2)
        return var_fit / (var_fit + var_site + resid)
    raise ValueError(f"kind must be 'conditional' or 'marginal', got {kind!r}")


R2_DEFINITIONS = {
    "conditional": "var(mu with every varying effect) / (var(mu) + residual variance)",
    "marginal": "var(mu population-level) / (var(mu) + variance of the varying effects + residual variance)",
}


def r2_table(fits: dict, data: pd.DataFrame, columns: dict, prob: float = HDI_PROB) -> pd.DataFrame:
    """Conditional and marginal Bayesian R² per model (no pooling: conditional only), on the link scale."""
    rows = []
    for model, idata in fits.items():
        role = fitinfo.role(idata, columns)
        resid_text = residual_variance(idata, columns, data)[1]
        for kind in ("conditional", "marginal"):
            if kind == "marginal" and role == "no_pooling":
                continue
            rows.append(
                {
                    "model": model,
                    "role": role,
                    "kind": kind,
                    **summaries.summarise(bayes_r2_draws(idata, data, columns, kind), prob),
                    "hdi_prob": prob,
                    "definition": f"{R2_DEFINITIONS[kind]}; residual variance: {resid_text}",
                }
            )
    return pd.DataFrame(
        rows,
        columns=["model", "role", "kind", *summaries.SUMMARY, "hdi_prob", "definition"],
    )
