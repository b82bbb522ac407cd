"""Calibration: LOO-PIT and posterior predictive checks by site (bayesplot's ``ppc_stat_grouped`` idea).

LOO-PIT is the leave-one-out predictive probability of each observed value,
``PIT_i = Σ_s w_is [1(ỹ_is < y_i) + U_i 1(ỹ_is = y_i)]``, with PSIS weights ``w_is`` from the
log-likelihood of the *same* posterior draws that made the stored predictive draws ``ỹ``
(the fit keeps a thinned set; `loo_pit` evaluates the log-likelihood at exactly those draws).
The uniform ``U_i`` randomises ties, so the PIT of discrete outcomes is uniform too. A
calibrated model gives uniform PIT values; too many near 0 and 1 mean it is overconfident,
too many near 0.5 that it is too uncertain.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
from scipy import stats

from hierpool.loo import OBS, chunk_size, log_likelihood_at, relative_ess, row_chunks

MIN_SITE_ROWS = 20  # a site's own LOO-PIT test needs this many observations


def _response(idata) -> str:
    return list(idata.observed_data.data_vars)[0]


def pit_values(
    log_lik: np.ndarray,
    replicated: np.ndarray,
    observed: np.ndarray,
    u: np.ndarray,
    reff: float = 1.0,
) -> np.ndarray:
    """LOO-PIT of each observation from draws × rows arrays of log-likelihood and replicated values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lw, _ = az.psislw(-log_lik.T, reff=reff)
    weights = np.exp(lw)  # rows × draws, each row sums to 1
    below = (replicated.T < observed[:, None]).astype(float)
    tied = (replicated.T == observed[:, None]).astype(float)
    pit = (weights * below).sum(1) + u * (weights * tied).sum(1)
    return np.clip(pit, 0.0, 1.0)


def loo_pit(model, idata, seed: int, budget_mb: float = 64) -> np.ndarray:
    """LOO-PIT of every observation, from the fit's stored posterior predictive draws and their own log-likelihood.

    Parameters
    ----------
    model : bambi.Model
        The fitted model.
    idata : arviz.InferenceData
        The fit, with ``posterior_predictive`` (a thinned subset of the posterior's draws).
    seed : int
        Seed of the tie-breaking uniforms.
    budget_mb : float
        Memory of one draws × rows block.
    """
    predictive = idata.posterior_predictive
    draws = idata.posterior.sel(chain=predictive["chain"], draw=predictive["draw"])
    name = _response(idata)
    observed = np.asarray(idata.observed_data[name].values, dtype=float)
    replicated_all = predictive[list(predictive.data_vars)[0]]
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=observed.size)
    reff = relative_ess(draws)
    n_samples = draws.sizes["chain"] * draws.sizes["draw"]
    out = np.empty(observed.size)
    for rows in row_chunks(observed.size, chunk_size(n_samples, budget_mb)):
        index = np.arange(rows.start, rows.stop)
        ll = log_likelihood_at(model, draws, index).stack(s=("chain", "draw")).transpose("s", OBS)
        rep = replicated_all.isel({OBS: rows}).stack(s=("chain", "draw")).transpose("s", OBS)
        out[rows] = pit_values(ll.values, rep.values.astype(float), observed[rows], u[rows], reff)
    return out


def uniformity(pit: np.ndarray) -> dict:
    """How far PIT values are from uniform: KS statistic and p-value, and shares in the outer and middle tenths."""
    pit = np.asarray(pit, dtype=float)
    ks = stats.kstest(pit, "uniform")
    return {
        "n": int(pit.size),
        "ks": float(ks.statistic),
        "p_value": float(ks.pvalue),
        "share_outer_10pct": float(((pit < 0.05) | (pit > 0.95)).mean()),
        "share_middle_10pct": float(((pit > 0.45) & (pit < 0.55)).mean()),
    }


def pit_table(pits: dict, sites: np.ndarray, min_site_rows: int = MIN_SITE_ROWS) -> pd.DataFrame:
    """``checking/loo_pit.csv``: per model, the PIT's uniformity overall and per site with enough rows."""
    sites = np.asarray(sites).astype(str)
    rows = []
    for model, pit in pits.items():
        rows.append({"model": model, "site": "(all)", **uniformity(pit)})
        for site in sorted(set(sites)):
            mask = sites == site
            if mask.sum() >= min_site_rows:
                rows.append({"model": model, "site": site, **uniformity(pit[mask])})
    return pd.DataFrame(rows)


def site_mean_and_sd(
    values: np.ndarray, sites: np.ndarray, order: list[str]
) -> dict[str, np.ndarray]:
    """Per site, the mean and SD of ``values`` (rows on the last axis; any leading draw axes)."""
    means, sds = [], []
    for site in order:
        part = values[..., sites == site]
        means.append(part.mean(-1))
        sds.append(part.std(-1, ddof=1) if part.shape[-1] > 1 else np.full(part.shape[:-1], np.nan))
    return {"mean": np.stack(means, -1), "sd": np.stack(sds, -1)}


def ppc_by_site(idata, sites: np.ndarray) -> pd.DataFrame:
    """Observed site mean and SD against their replicated distribution (posterior predictive p-values).

    Returns
    -------
    DataFrame
        Per site and statistic: ``n``, ``observed``, the replicated ``mean``, ``low``/``high``
        (central 95%) and ``p_value`` = P(replicated ≥ observed), two-sided as
        ``2 min(p, 1 − p)`` in ``p_two_sided``.
    """
    sites = np.asarray(sites).astype(str)
    order = sorted(set(sites))
    name = _response(idata)
    observed = np.asarray(idata.observed_data[name].values, dtype=float)
    predictive = idata.posterior_predictive
    rep = predictive[list(predictive.data_vars)[0]].stack(s=("chain", "draw")).transpose("s", OBS)
    obs_stats = site_mean_and_sd(observed, sites, order)
    rep_stats = site_mean_and_sd(rep.values.astype(float), sites, order)
    counts = pd.Series(sites).value_counts()
    rows = []
    for stat in ("mean", "sd"):
        for j, site in enumerate(order):
            draws = rep_stats[stat][:, j]
            if not np.isfinite(obs_stats[stat][j]):
                continue
            p = float((draws >= obs_stats[stat][j]).mean())
            rows.append(
                {
                    "site": site,
                    "statistic": stat,
                    "n": int(counts[site]),
                    "observed": float(obs_stats[stat][j]),
                    "mean": float(np.mean(draws)),
                    "low": float(np.quantile(draws, 0.025)),
                    "high": float(np.quantile(draws, 0.975)),
                    "p_value": p,
                    "p_two_sided": float(2 * min(p, 1 - p)),
                }
            )
    return pd.DataFrame(rows)
