"""Leave-one-site-out from the full fit, without refitting: integrated importance sampling.

Leaving a whole site out changes the posterior too much for plain PSIS on the site's summed
log-likelihood: the site's own effects are informed by nothing else. Integrating them out
first makes the weights usable (Vehtari, Mononen, Tolvanen, Sivula and Winther 2016, section
3.6.1; Merkle, Furr and Rabe-Hesketh 2019): for a Gaussian model whose site effects are
normal, the site's rows given the other parameters phi (common coefficients, sigma, the site
SDs and correlations) are jointly normal,

    y_j | phi ~ Normal(A_j beta, sigma² I + Z_j T Z_jᵀ),  T = L Lᵀ the covariance of the effects,

and ``log p(y_j | phi)`` follows from the site's cross-products (matrix determinant lemma and
Woodbury's identity, with ``K = sigma² I + Lᵀ Z_jᵀ Z_j L``):

    log det = (n_j − k) log sigma² + log det K,
    quadratic = (rᵀr − vᵀ K⁻¹ v) / sigma²,  r = y_j − A_j beta,  v = Lᵀ Z_jᵀ r.

Importance weights ``1 / p(y_j | phi_s)``, Pareto-smoothed (`hierpool.psis`), turn the full
fit's draws into draws of ``phi`` given every other site; each held-out row then gets the
density of a *new* site's observation, ``Normal(a_iᵀ beta, sigma² + z_iᵀ T z_i)``, averaged
with those weights. That is the quantity the leave-one-site-out refits estimate
(`hierpool.crossval`: the held-out site's effects drawn from the population), per row and
summed per site, with each site's Pareto k saying where the approximation cannot be trusted;
those sites are refitted (`hierpool.refitplan.loso_plan`).

Bernoulli and binomial models (logit link), Poisson and negative binomial ones (log link), and
Gaussian ones with known standard errors (``known_se``; there the rule is exact) get the same
estimate with the integrals done by adaptive Gauss–Hermite quadrature
(`hierpool.quadrature`): ``p(y_j | phi)`` over the site's k effects, and each held-out row's
new-site density over the one-dimensional ``z_iᵀ b``. `tests/test_siteloo.py` checks the
densities against the multivariate normal and SciPy's integration written out, and the
estimates against refits (Gaussian and Bernoulli).
"""

from __future__ import annotations

import math

import bambi as bmb
import numba
import numpy as np
import pandas as pd
import xarray as xr
from bambi.model_components import ConstantComponent
from scipy.special import logsumexp

from hierpool import correlated, linear, psis, quadrature, roles, sufficient
from hierpool.models import known_se_column

COLUMNS = ["site", "n", "elpd", "elpd_joint", "pareto_k"]
CHUNK_MB = 64.0
"""Memory for one block of draws' per-site matrices (draws × sites × effects²)."""


def why_not(model: bmb.Model, formula: str, group: str, predictor: str | None) -> str | None:
    """Why this model's leave-one-site-out needs refits, or None when the fit itself answers it."""
    struct = roles.model_roles(formula, group, predictor)
    if struct.role == "no_pooling":
        return "no pooling: no distribution of site effects"
    if set(struct.factors) - {group}:
        return f"effects varying by {', '.join(sorted(set(struct.factors) - {group}))}"
    if not (linear.applies(model) or _glm_family(model)):
        return (
            "not a Gaussian (identity link, one sigma or known SEs), Bernoulli or binomial (logit), "
            "Poisson or negative binomial (log, one alpha) model"
        )
    return None


GLM_LINKS = {"bernoulli": "logit", "binomial": "logit", "poisson": "log", "negativebinomial": "log"}
"""The GLMs whose site effects `hierpool.quadrature` integrates out (canonical links: log-concave)."""


def _glm_family(model: bmb.Model) -> str | None:
    """The model's family where `hierpool.quadrature` applies to it (``known_se`` for known SEs), else None."""
    family, parent = model.family.name, model.family.likelihood.parent
    others = [c for n, c in model.components.items() if n != parent]
    if known_se_column(model) and model.family.link[parent].name == "identity":
        family = "known_se"  # sigma: the offset log(se), a component of its own
    elif GLM_LINKS.get(family) != model.family.link[parent].name:
        return None
    elif not all(isinstance(c, ConstantComponent) for c in others):
        return None
    if not linear.known_terms_only(model):
        return None
    return family


def _parts(model: bmb.Model, posterior: xr.Dataset):
    """The pieces of the linear predictor ``eta = a beta + offset + z b``, with ``b = L u``, ``u ~ N(0, I)``.

    Returns the common design ``a`` (N, P; the intercept, if any, its first column) with its
    coefficient draws (S, P), the offsets (N,), the effects' design ``z`` (N, k), the Cholesky
    factor ``L`` of their covariance (S, k, k), and whether there is an intercept.
    """
    component = model.components[model.family.likelihood.parent]
    n_rows = len(model.data)
    n_samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    offset = np.zeros(n_rows)
    for term in component.offset_terms.values():
        offset += np.asarray(term.data, dtype=float).reshape(-1)
    columns, coefs = [], []
    if component.intercept_term is not None:
        columns.append(np.ones((n_rows, 1)))
        coefs.append(
            linear.flat_draws(posterior[component.intercept_term.name], []).reshape(n_samples, 1)
        )
    for name, term in component.common_terms.items():
        columns.append(np.asarray(term.data, dtype=float).reshape(n_rows, -1))
        coefs.append(linear.flat_draws(posterior[name], []).reshape(n_samples, -1))
    x = np.column_stack(columns) if columns else np.zeros((n_rows, 0))
    beta = np.column_stack(coefs) if coefs else np.zeros((n_samples, 0))
    z_parts, sd_parts = [], []
    for name, term in component.group_specific_terms.items():
        z = np.asarray(term.predictor, dtype=float).reshape(n_rows, -1)
        sd = linear.flat_draws(posterior[f"{name}_sigma"], []).reshape(n_samples, -1)
        z_parts.append(z)
        sd_parts.append(np.broadcast_to(sd, (n_samples, z.shape[1])))
    z = np.column_stack(z_parts) if z_parts else np.zeros((n_rows, 0))
    sd = np.column_stack(sd_parts) if sd_parts else np.zeros((n_samples, 0))
    chol = sd[:, :, None] * np.eye(sd.shape[1])
    for factor, names in correlated.correlated_blocks(model).items():
        if f"{factor}_corr" not in posterior:
            continue  # fitted without correlation
        k = len(names)
        corr = np.tile(np.eye(k), (n_samples, 1, 1))
        rows, cols = correlated.corr_pairs(k)
        pairs = linear.flat_draws(posterior[f"{factor}_corr"], []).reshape(n_samples, -1)
        corr[:, rows, cols] = pairs
        corr[:, cols, rows] = pairs
        chol = sd[:, :, None] * np.linalg.cholesky(corr)  # diag(sd) chol(R): defined at sd = 0
    return x, beta, offset, z, chol, component.intercept_term is not None


def _design(model: bmb.Model, posterior: xr.Dataset):
    """Rows' common design ``a`` (N, P) with its coefficient draws (S, P), outcome ``y``, effects' ``z`` (N, k), the Cholesky factor of their covariance (S, k, k) and sigma (S,), for a Gaussian model.

    The offsets are taken from the outcome, and the common columns are centred (and the
    outcome with them) so that the per-site cross-products keep their precision; the intercept
    absorbs the shift.
    """
    x, beta, offset, z, chol, intercept = _parts(model, posterior)
    y = np.squeeze(np.asarray(model.response_component.term.data, dtype=float)) - offset
    if intercept:
        x_mean, y_mean = x[:, 1:].mean(axis=0), y.mean()
        x = np.column_stack([x[:, 0], x[:, 1:] - x_mean])
        beta = np.column_stack([beta[:, 0] + beta[:, 1:] @ x_mean - y_mean, beta[:, 1:]])
        y = y - y_mean
    sigma = linear.flat_draws(posterior["sigma"], []).reshape(-1)
    return x, beta, y, z, chol, sigma


def site_log_likelihood(
    x, beta, y, z, chol, sigma, index: np.ndarray, n_sites: int, chunk_mb: float = CHUNK_MB
) -> np.ndarray:
    """``log p(y_j | phi_s)`` with site j's effects integrated out, shape (sites, draws).

    Parameters are those of `_design`; ``index`` is each row's site (0 .. n_sites − 1).
    """
    p, k = x.shape[1], z.shape[1]
    stats = sufficient.site_statistics(np.column_stack([x, z]), y, index, n_sites)
    n = np.bincount(index, minlength=n_sites).astype(float)
    aa, zz = stats.aa[:, :p, :p], stats.aa[:, p:, p:]
    za, ay, zy = stats.aa[:, p:, :p], stats.ay[:, :p], stats.ay[:, p:]
    n_samples = sigma.size
    step = max(1, int(chunk_mb * 2**20 / (8 * n_sites * max(k, 1) ** 2 * 4)))
    out = np.empty((n_sites, n_samples))
    for start in range(0, n_samples, step):
        draws = slice(start, start + step)
        b, s2, ell = beta[draws], sigma[draws] ** 2, chol[draws]
        rr = stats.yy[None, :] - 2 * b @ ay.T + np.einsum("sp,jpq,sq->sj", b, aa, b, optimize=True)
        logdet = n[None, :] * np.log(s2)[:, None]
        quad = rr
        if k:
            u = zy[None, :, :] - np.einsum("jkp,sp->sjk", za, b, optimize=True)
            v = np.einsum("slk,sjl->sjk", ell, u, optimize=True)
            m = np.einsum("slk,jlm,smn->sjkn", ell, zz, ell, optimize=True)
            m += s2[:, None, None, None] * np.eye(k)
            c = np.linalg.cholesky(m)
            logdet = logdet - k * np.log(s2)[:, None]
            logdet = logdet + 2 * np.log(np.diagonal(c, axis1=-2, axis2=-1)).sum(-1)
            w = np.linalg.solve(c, v[..., None])[..., 0]  # c⁻¹ v: vᵀ K⁻¹ v = |w|²
            quad = rr - (w**2).sum(-1)
        out[:, draws] = (
            -0.5 * n[None, :] * np.log(2 * np.pi) - 0.5 * logdet - 0.5 * quad / s2[:, None]
        ).T
    return out


@numba.njit(parallel=True, cache=True)
def _new_site_pointwise(y, x, z, site, beta, chol, sigma, log_weights):
    """Per row: ``log sum_s w_js Normal(y_i | x_i beta_s, sigma_s² + |L_sᵀ z_i|²)``."""
    n_rows, n_samples, k = y.size, sigma.size, z.shape[1]
    out = np.empty(n_rows)
    for i in numba.prange(n_rows):
        values = np.empty(n_samples)
        j = site[i]
        for s in range(n_samples):
            mu = 0.0
            for q in range(x.shape[1]):
                mu += x[i, q] * beta[s, q]
            var = sigma[s] ** 2
            for c in range(k):
                t = 0.0
                for r in range(k):
                    t += z[i, r] * chol[s, r, c]
                var += t * t
            values[s] = log_weights[j, s] - 0.5 * (
                math.log(2 * math.pi * var) + (y[i] - mu) ** 2 / var
            )
        top = values.max()
        out[i] = top + math.log(np.exp(values - top).sum())
    return out


def site_loo(
    model: bmb.Model, posterior: xr.Dataset, sites, reff: float = 1.0, chunk_mb: float = CHUNK_MB
) -> pd.DataFrame:
    """Leave-one-site-out elpd per site from the full fit (see the module's docstring).

    Parameters
    ----------
    model : bambi.Model
        The fitted model (one for which `why_not` is None).
    posterior : xarray.Dataset
        Its posterior draws.
    sites : array (rows,)
        Each row's site label (the dataset's group column).
    reff : float
        Relative efficiency of the draws (`hierpool.loo.relative_ess`).

    Returns
    -------
    pandas.DataFrame
        One row per site (`COLUMNS`): ``n``; ``elpd``, the sum over its rows of each row's
        predictive density as a new site's observation (what the refits' ``elpd`` is);
        ``elpd_joint``, the density of its rows together; ``pareto_k`` of its weights.
    """
    labels, index = np.unique(np.asarray(sites).astype(str), return_inverse=True)
    family = _glm_family(model)
    if family:
        site_ll, pointwise = _glm_site_loo(model, posterior, family, index, len(labels))
        log_weights, pareto_k = psis.psis_log_weights(site_ll, reff)
        return _table(labels, index, site_ll, log_weights, pareto_k, pointwise(log_weights))
    x, beta, y, z, chol, sigma = _design(model, posterior)
    site_ll = site_log_likelihood(x, beta, y, z, chol, sigma, index, len(labels), chunk_mb)
    log_weights, pareto_k = psis.psis_log_weights(site_ll, reff)
    pointwise = _new_site_pointwise(
        y,
        np.ascontiguousarray(x),
        np.ascontiguousarray(z),
        index.astype(np.int64),
        np.ascontiguousarray(beta),
        np.ascontiguousarray(chol),
        sigma,
        log_weights,
    )
    return _table(labels, index, site_ll, log_weights, pareto_k, pointwise)


def _table(labels, index, site_ll, log_weights, pareto_k, pointwise) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site": labels,
            "n": np.bincount(index, minlength=len(labels)),
            "elpd": np.bincount(index, weights=pointwise, minlength=len(labels)),
            "elpd_joint": logsumexp(log_weights + site_ll, axis=1),
            "pareto_k": pareto_k,
        },
        columns=COLUMNS,
    )


def _glm_site_loo(model: bmb.Model, posterior: xr.Dataset, family: str, index, n_sites: int):
    """Per site and draw ``log p(y_j | phi)``, and a function of the site weights giving each row's new-site density."""
    x, beta, offset, z, chol, _ = _parts(model, posterior)
    response = np.asarray(model.response_component.term.data, dtype=float)
    response = response.reshape(len(model.data), -1)
    y = response[:, 0].copy()
    trials = np.ones_like(y)
    if family == "binomial":
        trials = response[:, 1].copy()
    elif family == "known_se":
        trials = model.data[known_se_column(model)].to_numpy(dtype=float)
    n_samples = beta.shape[0]
    alpha = (
        linear.flat_draws(posterior["alpha"], []).reshape(-1)
        if family == "negativebinomial"
        else np.ones(n_samples)
    )
    code = quadrature.FAMILY_CODES[family]
    const = quadrature.row_constant(family, y, trials)
    order = np.argsort(index, kind="stable")
    start = np.concatenate([[0], np.cumsum(np.bincount(index, minlength=n_sites))]).astype(np.int64)
    x, beta, z, chol = (np.ascontiguousarray(a) for a in (x, beta, z, chol))
    nodes, log_w = quadrature.rule(z.shape[1])
    large = quadrature.rule(z.shape[1], quadrature.LARGE_POINTS.get(z.shape[1], 1))
    site_ll = quadrature.site_log_marginals(
        code,
        y[order],
        trials[order],
        const[order],
        np.ascontiguousarray(x[order]),
        offset[order],
        np.ascontiguousarray(z[order]),
        start,
        beta,
        chol,
        alpha,
        nodes,
        log_w,
        large,
    )
    one_nodes, one_log_w = quadrature.rule(1)

    def pointwise(log_weights):
        return quadrature.new_site_pointwise(
            code,
            y,
            trials,
            const,
            x,
            offset,
            z,
            index.astype(np.int64),
            beta,
            chol,
            alpha,
            log_weights,
            one_nodes,
            one_log_w,
        )

    return site_ll, pointwise
