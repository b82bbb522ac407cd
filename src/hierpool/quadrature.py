"""A site's marginal likelihood in a Bernoulli, binomial, Poisson or negative binomial GLM: adaptive Gauss–Hermite.

With the site's effects ``b = L u`` (``u`` standard normal, ``L`` the Cholesky factor of their
covariance) and each row's linear predictor ``eta_i = eta0_i + zl_iᵀ u`` (``zl_i = Lᵀ z_i``),

    log p(y_j | phi) = log ∫ exp(Σ_i log p(y_i | eta_i)) N(u; 0, I) du.

These likelihoods are log-concave in ``eta`` (canonical links: logit, log), so the integrand has
one mode. Newton's method with step halving finds it, ``H = I + Σ_i w_i zl_i zl_iᵀ`` is the
curvature there (``w_i`` minus the second derivative in ``eta``), and the integral is a
Gauss–Hermite rule centred on the mode and scaled by ``H^{-1/2}`` (adaptive quadrature, as lme4's
``nAGQ``; one point is the Laplace approximation). `tests/test_siteloo.py` checks it against
brute-force integration. `hierpool.siteloo` uses it for leave-one-site-out from the fit.
"""

from __future__ import annotations

import math

import numba
import numpy as np

FAMILY_CODES = {"bernoulli": 0, "binomial": 0, "poisson": 1, "negativebinomial": 2}
"""Kernel per family: logit with trials (Bernoulli: one trial), log-Poisson, log-negative binomial."""
POINTS = {1: 9, 2: 5, 3: 3}
"""Gauss–Hermite points per dimension by the number of effects (9, 25 and 27 in all); Laplace above."""


def rule(k: int, points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (m, k) and log weights (m,) of the tensor Gauss–Hermite rule for N(0, I_k)."""
    q = points if points is not None else POINTS.get(k, 1)
    x, w = np.polynomial.hermite_e.hermegauss(q)
    w = w / w.sum()
    grids = np.meshgrid(*([x] * k), indexing="ij")
    weights = np.meshgrid(*([w] * k), indexing="ij")
    nodes = np.column_stack([g.reshape(-1) for g in grids]) if k else np.zeros((1, 0))
    log_w = (
        np.log(np.prod(np.stack([v.reshape(-1) for v in weights]), axis=0)) if k else np.zeros(1)
    )
    return np.ascontiguousarray(nodes), log_w


def row_constant(family: str, y: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """The part of each row's log-likelihood that depends on neither ``eta`` nor a parameter."""
    from scipy.special import gammaln

    if family == "binomial":
        return gammaln(trials + 1) - gammaln(y + 1) - gammaln(trials - y + 1)
    if family in ("poisson", "negativebinomial"):
        return -gammaln(y + 1)
    return np.zeros_like(y, dtype=float)


@numba.njit(cache=True, inline="always")
def _row(family, y, trials, eta, alpha):
    """Log-likelihood of one row without its constants, its derivative in eta, minus its second derivative."""
    if family == 0:
        soft = max(eta, 0.0) + math.log1p(math.exp(-abs(eta)))
        p = 1.0 / (1.0 + math.exp(-eta))
        return y * eta - trials * soft, y - trials * p, trials * p * (1.0 - p)
    mu = math.exp(min(eta, 700.0))
    if family == 1:
        return y * eta - mu, y - mu, mu
    log_am = math.log(alpha + mu)
    ratio = mu / (alpha + mu)
    return (
        y * eta - (y + alpha) * log_am,
        y - (y + alpha) * ratio,
        (y + alpha) * ratio * (1 - ratio),
    )


@numba.njit(cache=True)
def _alpha_constant(family, y, alpha):
    """The negative binomial's ``lgamma(y + α) − lgamma(α) + α log α`` (0 for the other families)."""
    if family != 2:
        return 0.0
    return math.lgamma(y + alpha) - math.lgamma(alpha) + alpha * math.log(alpha)


@numba.njit(cache=True)
def _objective(family, y, trials, eta0, zl, u, alpha):
    total = 0.0
    for i in range(y.size):
        eta = eta0[i]
        for c in range(u.size):
            eta += zl[i, c] * u[c]
        total += _row(family, y[i], trials[i], eta, alpha)[0]
    for c in range(u.size):
        total -= 0.5 * u[c] * u[c]
    return total


@numba.njit(cache=True)
def _curvature(family, y, trials, eta0, zl, u, alpha, grad, hess):
    """Gradient and ``H`` (minus the Hessian) of the objective at ``u``, in place."""
    k = u.size
    for c in range(k):
        grad[c] = -u[c]
        for d in range(k):
            hess[c, d] = 1.0 if c == d else 0.0
    for i in range(y.size):
        eta = eta0[i]
        for c in range(k):
            eta += zl[i, c] * u[c]
        _, g, w = _row(family, y[i], trials[i], eta, alpha)
        for c in range(k):
            grad[c] += g * zl[i, c]
            for d in range(k):
                hess[c, d] += w * zl[i, c] * zl[i, d]


@numba.njit(cache=True)
def _cholesky(a, out):
    """Lower Cholesky factor of a small positive definite matrix, in place; the log of its determinant's root."""
    k = a.shape[0]
    log_det = 0.0
    for c in range(k):
        s = a[c, c]
        for d in range(c):
            s -= out[c, d] ** 2
        out[c, c] = math.sqrt(s)
        log_det += math.log(out[c, c])
        for r in range(c + 1, k):
            t = a[r, c]
            for d in range(c):
                t -= out[r, d] * out[c, d]
            out[r, c] = t / out[c, c]
        for r in range(c):
            out[r, c] = 0.0
    return log_det


@numba.njit(cache=True)
def log_marginal(family, y, trials, eta0, zl, alpha, nodes, log_w):
    """``log ∫ exp(Σ_i log p(y_i | eta0_i + zl_iᵀ u)) N(u; 0, I) du`` without the rows' constants.

    Parameters
    ----------
    family : int
        `FAMILY_CODES`.
    y, trials, eta0 : arrays (n,)
    zl : array (n, k)
    alpha : float
        The negative binomial's dispersion (unused otherwise).
    nodes, log_w : arrays (m, k), (m,)
        `rule`.
    """
    k = zl.shape[1]
    u = np.zeros(k)
    if k == 0:
        return _objective(family, y, trials, eta0, zl, u, alpha)
    grad, hess, chol = np.empty(k), np.empty((k, k)), np.empty((k, k))
    step, trial = np.empty(k), np.empty(k)
    current = _objective(family, y, trials, eta0, zl, u, alpha)
    for _ in range(100):
        _curvature(family, y, trials, eta0, zl, u, alpha, grad, hess)
        _cholesky(hess, chol)
        for c in range(k):  # step = H⁻¹ grad: forward, then back substitution
            t = grad[c]
            for d in range(c):
                t -= chol[c, d] * step[d]
            step[c] = t / chol[c, c]
        for c in range(k - 1, -1, -1):
            t = step[c]
            for d in range(c + 1, k):
                t -= chol[d, c] * step[d]
            step[c] = t / chol[c, c]
        scale = 1.0
        for _ in range(60):
            for c in range(k):
                trial[c] = u[c] + scale * step[c]
            value = _objective(family, y, trials, eta0, zl, trial, alpha)
            if value >= current - 1e-12 * (1.0 + abs(current)):
                break
            scale *= 0.5
        largest = 0.0
        for c in range(k):
            largest = max(largest, abs(trial[c] - u[c]))
            u[c] = trial[c]
        current = value
        if largest < 1e-10:
            break
    _curvature(family, y, trials, eta0, zl, u, alpha, grad, hess)
    log_det = _cholesky(hess, chol)
    top = -np.inf
    total = 0.0
    for q in range(nodes.shape[0]):
        for c in range(k - 1, -1, -1):  # Lᵀ v = t: the node's offset from the mode
            t = nodes[q, c]
            for d in range(c + 1, k):
                t -= chol[d, c] * step[d]
            step[c] = t / chol[c, c]
        square = 0.0
        for c in range(k):
            trial[c] = u[c] + step[c]
            square += nodes[q, c] ** 2
        value = log_w[q] + _objective(family, y, trials, eta0, zl, trial, alpha) + 0.5 * square
        if value > top:
            total = total * math.exp(top - value) + 1.0
            top = value
        else:
            total += math.exp(value - top)
    return top + math.log(total) - log_det


@numba.njit(parallel=True, cache=True)
def site_log_marginals(
    family, y, trials, const, x, offset, z, start, beta, chol, alpha, nodes, log_w
):
    """``log p(y_j | phi_s)`` per site and draw, shape (sites, draws); rows sorted by site, site j's from ``start[j]``."""
    n_sites, n_samples = start.size - 1, beta.shape[0]
    k, p = z.shape[1], x.shape[1]
    out = np.empty((n_sites, n_samples))
    for j in numba.prange(n_sites):
        a, b = start[j], start[j + 1]
        eta0 = np.empty(b - a)
        zl = np.empty((b - a, k))
        base = 0.0
        for i in range(a, b):
            base += const[i]
        for s in range(n_samples):
            extra = 0.0
            for i in range(a, b):
                e = offset[i]
                for q in range(p):
                    e += x[i, q] * beta[s, q]
                eta0[i - a] = e
                for c in range(k):
                    t = 0.0
                    for r in range(k):
                        t += z[i, r] * chol[s, r, c]
                    zl[i - a, c] = t
                extra += _alpha_constant(family, y[i], alpha[s])
            out[j, s] = (
                base
                + extra
                + log_marginal(family, y[a:b], trials[a:b], eta0, zl, alpha[s], nodes, log_w)
            )
    return out


@numba.njit(parallel=True, cache=True)
def new_site_pointwise(
    family, y, trials, const, x, offset, z, site, beta, chol, alpha, log_weights, nodes, log_w
):
    """Per row: ``log Σ_s w_js p(y_i | phi_s, a new site's effects)``, the effects integrated out (1-D rule)."""
    n_rows, n_samples = y.size, beta.shape[0]
    k, p = z.shape[1], x.shape[1]
    out = np.empty(n_rows)
    for i in numba.prange(n_rows):
        values = np.empty(n_samples)
        yy, tt = y[i : i + 1], trials[i : i + 1]
        eta0 = np.empty(1)
        zl = np.empty((1, 1 if k else 0))
        for s in range(n_samples):
            e = offset[i]
            for q in range(p):
                e += x[i, q] * beta[s, q]
            eta0[0] = e
            if k:
                var = 0.0
                for c in range(k):
                    t = 0.0
                    for r in range(k):
                        t += z[i, r] * chol[s, r, c]
                    var += t * t
                zl[0, 0] = math.sqrt(var)
            values[s] = log_weights[site[i], s] + const[i] + _alpha_constant(family, y[i], alpha[s])
            values[s] += log_marginal(family, yy, tt, eta0, zl, alpha[s], nodes, log_w)
        top = values.max()
        out[i] = top + math.log(np.exp(values - top).sum())
    return out
