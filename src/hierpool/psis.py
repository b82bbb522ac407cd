"""Pareto-smoothed importance sampling LOO for many observations at once, compiled with numba.

ArviZ's ``az.loo`` smooths each observation's importance weights in Python, one observation at
a time: about 1 ms per observation at 8,000 draws, 100 s of a 100,000-row fit job. `psis_loo`
runs the same algorithm (Vehtari, Simpson, Gelman, Yao and Gabry 2024: the generalized Pareto
fit of Zhang and Stephens 2009 with ArviZ's weakly informative prior on k, the same tail length
and cutoff) over observations in parallel on the CPUs the process may use, in compiled code:
0.46 s instead of ArviZ's 1.16 s for 1,048 observations × 8,000 draws on 2 cores (0.66 s
against 0.79 s on one). Its pointwise elpd and Pareto k equal ArviZ's to 1e-8
(`tests/test_psis.py`).
"""

from __future__ import annotations

import os

import numba
import numpy as np

_EPS = float(np.finfo(float).eps)
_CUTOFF_MIN = float(np.log(np.finfo(float).tiny))


@numba.njit(cache=True)
def _gpd_fit(tail):
    """``(k, sigma)`` of a generalized Pareto fitted to the sorted, positive ``tail``."""
    n = tail.size
    m = 30 + int(np.sqrt(n))
    quartile = tail[int(n / 4 + 0.5) - 1]
    b = np.empty(m)
    log_lik = np.empty(m)
    for j in range(m):
        b[j] = (1 - np.sqrt(m / (j + 1 - 0.5))) / (3 * quartile) + 1 / tail[n - 1]
        k = 0.0
        for i in range(n):
            k += np.log1p(-b[j] * tail[i])
        k /= n
        log_lik[j] = n * (np.log(-(b[j] / k)) - k - 1)
    weights = np.empty(m)
    for j in range(m):
        total = 0.0
        for i in range(m):
            total += np.exp(log_lik[i] - log_lik[j])
        weights[j] = 1 / total
    kept = 0.0
    for j in range(m):
        if weights[j] >= 10 * _EPS:
            kept += weights[j]
    b_post = 0.0
    for j in range(m):
        if weights[j] >= 10 * _EPS:
            b_post += b[j] * weights[j] / kept
    k_post = 0.0
    for i in range(n):
        k_post += np.log1p(-b_post * tail[i])
    k_post /= n
    sigma = -k_post / b_post
    return (n * k_post + 10 * 0.5) / (n + 10), sigma


@numba.njit(cache=True)
def _log_sum_exp(x):
    top = np.max(x)
    if not np.isfinite(top):
        return top
    return top + np.log(np.sum(np.exp(x - top)))


@numba.njit(cache=True)
def _smoothed_log_weights(log_lik, cutoff_index):
    """One observation's normalised, smoothed log weights (from ``-log_lik``) and Pareto k."""
    x = -log_lik
    x = x - np.max(x)
    cutoff = max(np.partition(x, cutoff_index)[cutoff_index], _CUTOFF_MIN)
    exp_cutoff = np.exp(cutoff)
    tail_index = np.nonzero(x > cutoff)[0]
    n_tail = tail_index.size
    k = np.inf
    if n_tail > 4:
        tail = x[tail_index]
        tail_order = np.argsort(tail)
        sorted_tail = np.exp(tail[tail_order]) - exp_cutoff
        k, sigma = _gpd_fit(sorted_tail)
        if np.isfinite(k):
            probs = (np.arange(n_tail) + 0.5) / n_tail
            if sigma <= 0:
                smoothed = np.full(n_tail, np.nan)
            elif np.abs(k) < _EPS:
                smoothed = -np.log1p(-probs) * sigma
            else:
                smoothed = np.expm1(-k * np.log1p(-probs)) / k * sigma
            x[tail_index[tail_order]] = np.log(smoothed + exp_cutoff)
            x = np.minimum(x, 0.0)
    return x - _log_sum_exp(x), k


@numba.njit(parallel=True, cache=True)
def _psis_loo_kernel(log_lik, cutoff_index):
    n_obs, n_samples = log_lik.shape
    elpd = np.empty(n_obs)
    lppd = np.empty(n_obs)
    pareto_k = np.empty(n_obs)
    for o in numba.prange(n_obs):
        row = log_lik[o]
        weights, pareto_k[o] = _smoothed_log_weights(row, cutoff_index)
        elpd[o] = _log_sum_exp(weights + row)
        lppd[o] = _log_sum_exp(row) - np.log(n_samples)
    return elpd, lppd, pareto_k


@numba.njit(parallel=True, cache=True)
def _psis_weights_kernel(log_lik, cutoff_index):
    n_obs, n_samples = log_lik.shape
    log_weights = np.empty((n_obs, n_samples))
    pareto_k = np.empty(n_obs)
    for o in numba.prange(n_obs):
        log_weights[o], pareto_k[o] = _smoothed_log_weights(log_lik[o], cutoff_index)
    return log_weights, pareto_k


def _usable_cpus() -> int:
    """The CPUs this process may use (a cluster job's allocation), not every CPU of the node."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere all CPUs
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def cutoff_index(n_samples: int, reff: float) -> int:
    """Index (from the end) of the tail's cutoff among the sorted weights, as ArviZ's ``psislw``."""
    return n_samples - int(np.ceil(min(n_samples / 5.0, 3 * (n_samples / reff) ** 0.5))) - 1


def psis_loo(log_lik: np.ndarray, reff: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise PSIS-LOO of ``log_lik`` (observations × samples).

    Returns
    -------
    (elpd_i, lppd_i, pareto_k) : three arrays over observations
        The leave-one-out log predictive density, the in-sample one (log of the mean density)
        and the Pareto shape of each observation's importance weights.
    """
    log_lik = np.ascontiguousarray(log_lik, dtype=float)
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, _usable_cpus())))
    return _psis_loo_kernel(log_lik, cutoff_index(log_lik.shape[1], reff))


def psis_log_weights(log_lik: np.ndarray, reff: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised, Pareto-smoothed log weights ``∝ -log_lik`` and their Pareto k, per row.

    Parameters
    ----------
    log_lik : numpy.ndarray
        Shape (units, samples): the log-likelihood of each unit left out (a row, a site) per draw.
    reff : float
        Relative efficiency of the draws.

    Returns
    -------
    (log_weights, pareto_k)
        Shapes (units, samples) (each row's weights sum to 1) and (units,).
    """
    log_lik = np.ascontiguousarray(log_lik, dtype=float)
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, _usable_cpus())))
    return _psis_weights_kernel(log_lik, cutoff_index(log_lik.shape[1], reff))
