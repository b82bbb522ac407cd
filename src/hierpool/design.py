"""Covariates through the formula's own design matrix: the common terms other than the predictor.

`hierpool.posterior` holds them at each site's average (a site-level predictor: the site's
value; a categorical covariate: the site's mix of levels) or at the average over all rows.
The design is built with formulae from the formula's whole common part, so a categorical
covariate gets the same coding (reference level dropped) as in the fitted model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierpool import roles


def coefficient_draws(post, term: str) -> np.ndarray:
    """A common term's coefficients as an array (chain, draw, columns)."""
    values = post[term].values
    return values[..., None] if values.ndim == 2 else values.reshape(*values.shape[:2], -1)


def _common_formula(struct: roles.ModelRoles) -> str:
    return (
        ("1 + " if struct.intercept else "0 + ") + " + ".join(struct.common)
        if struct.common
        else "1"
    )


_DESIGN_CACHE: dict = {}


def covariate_design(
    struct: roles.ModelRoles, data: pd.DataFrame, columns: dict
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per covariate term: its design columns at the data, at predictor 0 and at predictor 1 (model scale).

    Evaluated with the formula's whole common part, so a categorical covariate gets the same
    coding (reference level dropped) as in the fitted model.
    """
    if not struct.covariates:
        return {}
    import formulae

    key = (_common_formula(struct), id(data), len(data))
    if key not in _DESIGN_CACHE:
        design = formulae.design_matrices(
            _common_formula(struct),
            data,
            na_action="error",
            extra_namespace=roles.FORMULA_NAMESPACE,
        ).common
        at = {"data": np.asarray(design)}
        p = columns.get("predictor")
        for name, value in (("x0", 0.0), ("x1", 1.0)):
            if p:
                shifted = data.copy()
                shifted[p] = value
                at[name] = np.asarray(design.evaluate_new_data(shifted))
            else:
                at[name] = at["data"]
        _DESIGN_CACHE.clear()
        _DESIGN_CACHE[key] = {
            t: tuple(at[n][:, design.slices[t]] for n in ("data", "x0", "x1"))
            for t in struct.covariates
        }
    return _DESIGN_CACHE[key]


def covariate_sums(
    post, struct: roles.ModelRoles, data: pd.DataFrame, columns: dict, by_site: bool
):
    """The covariates' contribution to the intercept (at predictor 0) and to the slope, per draw.

    Each term's design columns are averaged over a site's rows (``by_site``) or over every row,
    then multiplied by the term's coefficient draws. Returns ``(intercept, slope, sites)``:
    arrays (chain, draw, site) and the site labels, or (chain, draw) arrays and None; or None
    when the model has no covariates.
    """
    if not struct.covariates:
        return None
    if data is None:
        raise ValueError(
            f"this model has covariates {list(struct.covariates)}: pass the cleaned data to hold them at their averages"
        )
    labels = data[columns["group"]].astype(str).to_numpy()
    sites = list(pd.unique(labels)) if by_site else None
    intercept = slope = 0.0
    for term, (_, x0, x1) in covariate_design(struct, data, columns).items():
        beta = coefficient_draws(post, term)
        if by_site:
            x0 = pd.DataFrame(x0).groupby(labels, sort=False).mean().loc[sites].to_numpy()
            x1 = pd.DataFrame(x1).groupby(labels, sort=False).mean().loc[sites].to_numpy()
        else:
            x0, x1 = x0.mean(axis=0, keepdims=True), x1.mean(axis=0, keepdims=True)
        intercept = intercept + beta @ x0.T
        slope = slope + beta @ (x1 - x0).T
    if by_site:
        return intercept, slope, sites
    return np.asarray(intercept)[..., 0], np.asarray(slope)[..., 0], None
