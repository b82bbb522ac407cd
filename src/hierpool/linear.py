"""A Bambi model's linear predictor per draw and row, evaluated with NumPy from its design matrices.

Bambi's own ``compute_log_likelihood`` rebuilds the design and goes through xarray and
PyTensor for every chunk of rows. For the Gaussian family
with identity link and a constant sigma the log-density is a few array operations on the
linear predictor, ``eta = Intercept + X beta + offsets + sum_k z_k b_k[site]``, taken straight
from the terms Bambi built (their data, group indices and the posterior's arrays of the same
names). Measured on 1,048 rows × 8,000 draws of a 1,000-site fit: 0.19 s against Bambi's
0.83 s; equal to Bambi's result to rounding (`tests/test_loo.py`).
"""

from __future__ import annotations

import bambi as bmb
import numpy as np
import xarray as xr
from bambi.model_components import ConstantComponent

OBS = "__obs__"
SAMPLE_DIMS = ("chain", "draw")


def applies(model: bmb.Model) -> bool:
    """Gaussian, identity link, sigma a constant component (no known SEs), terms this module knows."""
    parent = model.family.likelihood.parent
    if model.family.name != "gaussian" or model.family.link[parent].name != "identity":
        return False
    others = [c for n, c in model.components.items() if n != parent]
    if not all(isinstance(c, ConstantComponent) for c in others):
        return False
    return known_terms_only(model)


def known_terms_only(model: bmb.Model) -> bool:
    """Whether the mean's terms are all common, group-specific, offset or intercept terms (no smooths)."""
    component = model.components[model.family.likelihood.parent]
    known = {
        *component.common_terms,
        *component.group_specific_terms,
        *component.offset_terms,
        *([component.intercept_term.name] if component.intercept_term is not None else []),
    }
    return set(component.terms) - {model.response_component.term.name} <= known and not getattr(
        component, "hsgp_terms", {}
    )


def flat_draws(draws: xr.DataArray, first: list[str]) -> np.ndarray:
    """Draws as (samples, *dims) with ``first`` leading the non-sample dims."""
    rest = [d for d in draws.dims if d not in SAMPLE_DIMS and d not in first]
    values = draws.transpose(*SAMPLE_DIMS, *first, *rest).values
    return values.reshape(-1, *values.shape[2:])


def eta_draws(model: bmb.Model, posterior: xr.Dataset, rows) -> np.ndarray:
    """The linear predictor of the parent parameter, shape (chain × draw, rows), for ``rows`` (a slice or row numbers)."""
    component = model.components[model.family.likelihood.parent]
    n_samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    n_rows = len(np.arange(len(model.data))[rows])
    eta = np.zeros((n_samples, n_rows))
    if component.intercept_term is not None:
        eta += flat_draws(posterior[component.intercept_term.name], []).reshape(n_samples, 1)
    for name, term in component.common_terms.items():
        x = np.asarray(term.data, dtype=float).reshape(len(model.data), -1)[rows]
        eta += flat_draws(posterior[name], []).reshape(n_samples, -1) @ x.T
    for term in component.offset_terms.values():
        eta += np.asarray(term.data, dtype=float).reshape(-1)[rows]
    for name, term in component.group_specific_terms.items():
        factor_dim = next(d for d in posterior[name].dims if d.endswith("__factor_dim"))
        coef = flat_draws(posterior[name], [factor_dim])  # (samples, J) or (samples, J, e)
        z = np.asarray(term.predictor, dtype=float).reshape(len(model.data), -1)[rows]
        site = term.group_index[rows]
        if coef.ndim == 2:
            eta += coef[:, site] * z[:, 0]
        else:
            eta += np.einsum("sne,ne->sn", coef[:, site, :], z)
    return eta


def gaussian_log_likelihood(model: bmb.Model, posterior: xr.Dataset, rows) -> xr.Dataset:
    """Pointwise Normal log-likelihood of ``rows``, as Bambi's ``compute_log_likelihood`` names and shapes it."""
    response = model.response_component.term
    y = np.squeeze(np.asarray(response.data, dtype=float))[rows]
    sigma = flat_draws(posterior["sigma"], []).reshape(-1, 1)
    eta = eta_draws(model, posterior, rows)
    values = -0.5 * np.log(2 * np.pi) - np.log(sigma) - 0.5 * ((y - eta) / sigma) ** 2
    shape = (posterior.sizes["chain"], posterior.sizes["draw"], values.shape[1])
    return xr.Dataset(
        {
            response.alias or response.name: (
                ("chain", "draw", OBS),
                values.reshape(shape),
            )
        },
        coords={
            "chain": posterior["chain"].values,
            "draw": posterior["draw"].values,
            OBS: np.arange(len(model.data))[rows],
        },
    )
