"""A site's marginal likelihood in a Bernoulli, binomial, Poisson, negative binomial or known-SE model: adaptive Gauss–Hermite.

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

FAMILY_CODES = {"bernoulli": 0, "binomial": 0, "poisson": 1, "negativebinomial": 2, "known_se": 3}
"""Kernel per family: logit with trials (Bernoulli: one trial), log-Poisson, log-negative binomial,
and Normal with a known standard error per row (``trials`` holds it; the integrand is Gaussian,
so the rule is exact)."""
POINTS = {1: 9, 2: 5, 3: 3}
"""Gauss–Hermite points per dimension by the number of effects (9, 25 and 27 in all); Laplace above."""
LARGE_SITE, LARGE_POINTS = 20, {1: 5, 2: 3, 3: 3}
"""Points per dimension for sites of at least LARGE_SITE rows, whose integrand is closer to normal
(a Bernoulli site of 50 rows and two effects: error 5e-4 with 3 points, 1e-5 with 5)."""


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
    if family == "known_se":  # trials: the row's standard error
        return -0.5 * np.log(2 * np.pi * trials**2)
    return np.zeros_like(y, dtype=float)


@numba.njit(cache=True, inline="always")
def _row(family, y, trials, eta, alpha):
    """Log-likelihood of one row without its constants, its derivative in eta, minus its second derivative."""
    if family == 0:
        soft = max(eta, 0.0) + math.log1p(math.exp(-abs(eta)))
        p = 1.0 / (1.0 + math.exp(-eta))
        return y * eta - trials * soft, y - trials * p, trials * p * (1.0 - p)
    if family == 3:  # Normal(eta, se²), se in trials
        precision = 1.0 / (trials * trials)
        return -0.5 * (y - eta) ** 2 * precision, (y - eta) * precision, precision
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
    return _marginal_from(family, y, trials, eta0, zl, alpha, nodes, log_w, np.zeros(zl.shape[1]))


@numba.njit(cache=True)
def _marginal_from(family, y, trials, eta0, zl, alpha, nodes, log_w, u):
    """`log_marginal` with Newton started at ``u``, which is left at the mode (a warm start for the next draw)."""
    k = zl.shape[1]
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


@numba.njit(cache=True)
def log_marginal_1d(family, y, trials, eta0, c, alpha, nodes, log_w):
    """`log_marginal` for one row and one effect (``zl = [[c]]``), without arrays: the new-site density."""
    if c == 0.0:
        return _row(family, y, trials, eta0, alpha)[0]
    u = 0.0
    current = _row(family, y, trials, eta0, alpha)[0]
    for _ in range(100):
        _, g, w = _row(family, y, trials, eta0 + c * u, alpha)
        step = (g * c - u) / (1.0 + w * c * c)
        scale = 1.0
        for _ in range(60):
            trial = u + scale * step
            value = _row(family, y, trials, eta0 + c * trial, alpha)[0] - 0.5 * trial * trial
            if value >= current - 1e-12 * (1.0 + abs(current)):
                break
            scale *= 0.5
        moved = abs(trial - u)
        u, current = trial, value
        if moved < 1e-10:
            break
    w = _row(family, y, trials, eta0 + c * u, alpha)[2]
    root = math.sqrt(1.0 + w * c * c)
    top = -np.inf
    total = 0.0
    for q in range(nodes.shape[0]):
        t = nodes[q, 0]
        v = u + t / root
        value = (
            log_w[q] + _row(family, y, trials, eta0 + c * v, alpha)[0] - 0.5 * v * v + 0.5 * t * t
        )
        if value > top:
            total = total * math.exp(top - value) + 1.0
            top = value
        else:
            total += math.exp(value - top)
    return top + math.log(total) - math.log(root)


@numba.njit(parallel=True, cache=True)
def site_log_marginals(
    family, y, trials, const, x, offset, z, start, beta, chol, alpha, nodes, log_w, large
):
    """``log p(y_j | phi_s)`` per site and draw, shape (sites, draws); rows sorted by site, site j's from ``start[j]``.

    ``nodes, log_w`` is the rule for small sites, ``large`` the (nodes, log weights) for sites
    of at least `LARGE_SITE` rows.
    """
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
        mode = np.zeros(k)  # each draw's Newton starts at the last draw's mode
        site_nodes, site_log_w = large if b - a >= LARGE_SITE else (nodes, log_w)
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
                + _marginal_from(
                    family, y[a:b], trials[a:b], eta0, zl, alpha[s], site_nodes, site_log_w, mode
                )
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
        for s in range(n_samples):
            e = offset[i]
            for q in range(p):
                e += x[i, q] * beta[s, q]
            var = 0.0
            for c in range(k):
                t = 0.0
                for r in range(k):
                    t += z[i, r] * chol[s, r, c]
                var += t * t
            values[s] = log_weights[site[i], s] + const[i] + _alpha_constant(family, y[i], alpha[s])
            values[s] += log_marginal_1d(
                family, y[i], trials[i], e, math.sqrt(var), alpha[s], nodes, log_w
            )
        top = values.max()
        out[i] = top + math.log(np.exp(values - top).sum())
    return out
