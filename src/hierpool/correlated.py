"""Correlated varying effects, as lme4's and brms's ``(x|g)``.

Bambi's ``(x|g)`` gives the site intercepts and slopes independent normal distributions (it
has no correlation term, bambinos/bambi issue 702). With ``correlated: true`` the same formula
gets, for every grouping factor with two or more varying terms, site effects drawn from one
multivariate normal,

    (b_0j, b_1j, ...) ~ MvNormal(0, Sigma),  Sigma = diag(sd) R diag(sd),
    R ~ LKJ(eta),  sd_k ~ the SD prior the independent model gives term k,

with the Cholesky factor of Sigma from ``pm.LKJCholeskyCov`` and, by default, the
non-centred form ``b_j = L z_j`` with ``z_j ~ Normal(0, I)``. `correlated_block` writes one
such block into the PyMC model that `hierpool.pymc_model` builds from the Bambi model.
"""

from __future__ import annotations

import itertools

import bambi as bmb
import numpy as np
import pymc as pm
import pytensor.tensor as pt

from hierpool.errors import ModelError
from hierpool.priors import pymc_distribution, sd_prior

DEFAULT_ETA = 2.0
"""LKJ shape: 1 is uniform over correlation matrices (brms's default); 2 keeps the correlation away
from ±1 when few sites inform it, where lme4 reports singular fits and NUTS diverges."""


def factor_of(term_name: str) -> str:
    """The grouping factor of a Bambi group-specific term name: ``floor|county`` -> ``county``."""
    return term_name.split("|", 1)[1]


def expression_of(term_name: str) -> str:
    """The varying expression: ``1|county`` -> ``Intercept``, ``floor|county`` -> ``floor``."""
    expr = term_name.split("|", 1)[0]
    return "Intercept" if expr == "1" else expr


def correlated_blocks(model: bmb.Model) -> dict[str, list[str]]:
    """Grouping factor -> the names of its varying terms, for every factor with two or more."""
    parent = model.family.likelihood.parent
    by_factor: dict[str, list[str]] = {}
    for name in model.components[parent].group_specific_terms:
        by_factor.setdefault(factor_of(name), []).append(name)
    return {factor: names for factor, names in by_factor.items() if len(names) > 1}


def pair_labels(term_names: list[str]) -> list[str]:
    """One label per pair of terms, in the order of `corr_pairs`: ``"Intercept, floor"``."""
    return [
        f"{expression_of(a)}, {expression_of(b)}" for a, b in itertools.combinations(term_names, 2)
    ]


def corr_pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the strict upper triangle of a k × k matrix (pairs in row order)."""
    return np.triu_indices(k, 1)


def covariance_from_cholesky(chol: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariance ``L Lᵀ``, SDs and correlation matrix from (stacks of) lower Cholesky factors ``L``.

    Parameters
    ----------
    chol : numpy.ndarray
        Shape (..., k, k), lower triangular with a positive diagonal.

    Returns
    -------
    (cov, sd, corr) : tuple of numpy.ndarray
        Shapes (..., k, k), (..., k) and (..., k, k).
    """
    cov = chol @ np.swapaxes(chol, -1, -2)
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    corr = cov / (sd[..., :, None] * sd[..., None, :])
    return cov, sd, corr


def _block_sd_dist(terms: list, factor: str):
    """One distribution of the SDs of a block: the terms' SD priors, which must share a family."""
    priors = [sd_prior(t) for t in terms]
    names = {p.name for p in priors}
    if len(names) > 1 or any(set(p.args) != set(priors[0].args) for p in priors):
        raise ModelError(
            f"correlated effects by {factor!r}: the SD priors of {[t.name for t in terms]} are "
            f"{[str(p) for p in priors]}; give them one distribution (e.g. HalfNormal with a sigma each)."
        )
    args = {k: np.array([float(np.squeeze(p.args[k])) for p in priors]) for k in priors[0].args}
    return pymc_distribution(priors[0]).dist(**args)


def _one_column(term, factor: str) -> np.ndarray:
    predictor = np.asarray(term.predictor, dtype=float)
    if predictor.ndim > 1 and predictor.shape[1] != 1:
        raise ModelError(
            f"correlated effects by {factor!r}: term {term.name!r} has {predictor.shape[1]} columns (a categorical "
            "slope); correlated blocks take the intercept and numeric slopes. Code the levels as 0/1 columns."
        )
    return predictor.reshape(-1)


def correlated_block(model_pm, factor: str, terms: list, eta: float, noncentered: bool):
    """Site effects of one factor's terms from MvNormal(0, L Lᵀ): ``(effects (J, k), z (N, k))``.

    Adds ``<factor>_corr``, ``<factor>_cov``, each term's ``<term>_sigma`` and its site effects
    ``<term>`` (Bambi's names) as deterministics; ``z`` holds the terms' columns per row.
    """
    columns = [_one_column(term, factor) for term in terms]
    levels = list(next(iter(terms[0].coords.values())))
    k = len(terms)
    pair_dim = f"{factor}__corr_pair"
    model_pm.add_coords({pair_dim: pair_labels([t.name for t in terms])})
    chol, corr, sds = pm.LKJCholeskyCov(
        f"{factor}__chol",
        n=k,
        eta=eta,
        sd_dist=_block_sd_dist(terms, factor),
        compute_corr=True,
        store_in_trace=False,
    )
    if noncentered:
        z = pm.Normal(f"{factor}__offset", 0.0, 1.0, shape=(len(levels), k))
        effects = pt.dot(z, chol.T)
    else:
        effects = pm.MvNormal(
            f"{factor}__effects", mu=np.zeros(k), chol=chol, shape=(len(levels), k)
        )
    rows, cols = corr_pairs(k)
    pm.Deterministic(f"{factor}_corr", corr[rows, cols], dims=pair_dim)
    pm.Deterministic(f"{factor}_cov", corr[rows, cols] * sds[rows] * sds[cols], dims=pair_dim)
    for j, term in enumerate(terms):
        pm.Deterministic(f"{term.name}_sigma", sds[j])
        pm.Deterministic(term.name, effects[:, j], dims=list(term.coords))
    return effects, np.column_stack(columns)
